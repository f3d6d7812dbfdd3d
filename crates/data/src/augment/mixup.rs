//! MixUp: a Beta(32, 32) blend of two samples of the same size with their labels concatenated
//! (ultralytics' `mixup`).

use rand::Rng;

use super::AugmentError;
use crate::sample::Sample;

/// Blends `a` and `b` with ratio `r` for `a`: each byte is `trunc(a * r + b * (1 - r))` in `f64`
/// (numpy's `astype(uint8)`); the boxes of `a` then those of `b`.
pub fn mixup_with_ratio(a: &Sample, b: &Sample, r: f64) -> Result<Sample, AugmentError> {
    if a.image.dimensions() != b.image.dimensions() {
        return Err(AugmentError::SizeMismatch {
            op: "mixup",
            first: a.image.dimensions(),
            second: b.image.dimensions(),
        });
    }
    let mut image = a.image.clone();
    for (o, &q) in image.iter_mut().zip(b.image.iter()) {
        *o = (f64::from(*o) * r + f64::from(q) * (1.0 - r)).clamp(0.0, 255.0) as u8;
    }
    let boxes = a.boxes.iter().chain(&b.boxes).copied().collect();
    Ok(Sample { image, boxes })
}

/// Ultralytics `mixup(im, labels, im2, labels2)`: draws `r ~ Beta(32, 32)` and applies
/// [`mixup_with_ratio`]. Returns the blended sample and `r`.
pub fn mixup(a: &Sample, b: &Sample, rng: &mut impl Rng) -> Result<(Sample, f64), AugmentError> {
    let r = sample_beta(32.0, 32.0, rng);
    Ok((mixup_with_ratio(a, b, r)?, r))
}

/// A standard normal draw (Box-Muller).
fn standard_normal(rng: &mut impl Rng) -> f64 {
    // 1 - u is in (0, 1], so the log is finite.
    let u1 = 1.0 - rng.random::<f64>();
    let u2 = rng.random::<f64>();
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

/// A Gamma(`shape`, 1) draw for `shape >= 1` (Marsaglia and Tsang).
fn sample_gamma(shape: f64, rng: &mut impl Rng) -> f64 {
    let d = shape - 1.0 / 3.0;
    let c = 1.0 / (9.0 * d).sqrt();
    loop {
        let x = standard_normal(rng);
        let v = 1.0 + c * x;
        if v <= 0.0 {
            continue;
        }
        let v = v * v * v;
        let u = 1.0 - rng.random::<f64>();
        if u < 1.0 - 0.0331 * x.powi(4) || u.ln() < 0.5 * x * x + d * (1.0 - v + v.ln()) {
            return d * v;
        }
    }
}

/// A Beta(`alpha`, `beta`) draw for `alpha, beta >= 1`, as the ratio of two Gamma draws.
pub fn sample_beta(alpha: f64, beta: f64, rng: &mut impl Rng) -> f64 {
    let x = sample_gamma(alpha.max(1.0), rng);
    let y = sample_gamma(beta.max(1.0), rng);
    x / (x + y)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn beta_32_32_has_the_right_moments() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
        let n = 20_000;
        let draws: Vec<f64> = (0..n).map(|_| sample_beta(32.0, 32.0, &mut rng)).collect();
        let mean = draws.iter().sum::<f64>() / n as f64;
        let var = draws.iter().map(|d| (d - mean).powi(2)).sum::<f64>() / n as f64;
        // Beta(32, 32): mean 0.5, variance 1 / (4 * 65) = 0.003846.
        assert!((mean - 0.5).abs() < 0.003, "{mean}");
        assert!((var - 0.003846).abs() < 0.0004, "{var}");
        assert!(draws.iter().all(|&d| (0.0..=1.0).contains(&d)));
    }
}
