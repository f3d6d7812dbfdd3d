//! Binary cross-entropy with logits, as PyTorch's `nn.BCEWithLogitsLoss(pos_weight=…)` (mean
//! reduction), and the focal variant of ultralytics/yolov5 v7.0 `utils/loss.py` (`FocalLoss`, TF
//! addons form, α = 0.25), both for soft (float) targets.
//!
//! Element-wise, with logit `x`, target `t ∈ [0, 1]` and positive weight `p`:
//!
//! `ℓ = (1 − t)·x − (1 + (p − 1)·t)·log σ(x)`
//!
//! which for `p = 1` is the familiar `max(x, 0) − x·t + log(1 + e^{−|x|})`. `log σ` is evaluated in
//! its overflow-free form, so `|x|` in the hundreds stays finite. The gradient with respect to `x`
//! is attached explicitly as PyTorch's closed form `(1 + (p − 1)·t)·σ(x) − p·t` (`σ(x) − t` for
//! `p = 1`), which is exact at `x = 0` (where an autodiff through `max`/`|·|` would pick a
//! one-sided derivative) and keeps full relative precision where `σ(x)` is tiny. Targets are
//! treated as constants (no gradient flows into them), as in YOLOv5 where they are always built on
//! the host or detached.
//!
//! Shapes: any rank `D`; `logits` and `targets` have the same shape; the reductions return `[1]`.

use burn::prelude::*;
use burn::tensor::activation::{log_sigmoid, sigmoid};

/// Focal-loss α of ultralytics' `FocalLoss` (the default it is always built with).
pub const FOCAL_ALPHA: f64 = 0.25;

/// Element-wise BCE-with-logits `ℓ(x, t)` (see the module docs), same shape as the inputs.
///
/// `pos_weight` multiplies the positive term as PyTorch's `pos_weight` does (1.0 = plain BCE).
/// Targets are detached.
pub fn bce_with_logits_elementwise<const D: usize>(
    logits: Tensor<D>,
    targets: Tensor<D>,
    pos_weight: f64,
) -> Tensor<D> {
    let t = targets.detach();
    let x_const = logits.clone().detach();
    // 1 − t and the log-weight 1 + (p − 1)·t.
    let one_minus_t = t.clone().neg().add_scalar(1.0);
    let plain = pos_weight == 1.0;
    let log_weight = if plain { None } else { Some(t.clone().mul_scalar(pos_weight - 1.0).add_scalar(1.0)) };
    // Value: (1 − t)·x − w·log σ(x), as PyTorch's forward computes it.
    let log_sig = log_sigmoid(x_const.clone());
    let value = match &log_weight {
        None => one_minus_t.mul(x_const.clone()).sub(log_sig),
        Some(w) => one_minus_t.mul(x_const.clone()).sub(w.clone().mul(log_sig)),
    };
    // dℓ/dx = w·σ(x) − p·t (σ(x) − t when p = 1).
    let sig = sigmoid(x_const.clone());
    let grad = match log_weight {
        None => sig.sub(t),
        Some(w) => w.mul(sig).sub(t.mul_scalar(pos_weight)),
    };
    // value + (x − x̄)·g: the value is unchanged (x − x̄ = 0) and dℓ/dx = g.
    value.add(logits.sub(x_const).mul(grad))
}

/// Mean BCE-with-logits over all elements, `[1]` (PyTorch `reduction='mean'`).
pub fn bce_with_logits<const D: usize>(logits: Tensor<D>, targets: Tensor<D>, pos_weight: f64) -> Tensor<1> {
    bce_with_logits_elementwise(logits, targets, pos_weight).mean()
}

/// Mean focal BCE (ultralytics `FocalLoss(BCEWithLogitsLoss(pos_weight), gamma, alpha)`), `[1]`.
///
/// `ℓ_focal = ℓ · (t·α + (1 − t)·(1 − α)) · (1 − p_t)^γ` with `p = σ(x)` and
/// `p_t = t·p + (1 − t)·(1 − p)`; the modulating factor is differentiated through `σ(x)` as in
/// PyTorch.
pub fn focal_bce_with_logits<const D: usize>(
    logits: Tensor<D>,
    targets: Tensor<D>,
    pos_weight: f64,
    gamma: f64,
    alpha: f64,
) -> Tensor<1> {
    let t = targets.detach();
    let loss = bce_with_logits_elementwise(logits.clone(), t.clone(), pos_weight);
    let p = sigmoid(logits);
    let one_minus_t = t.clone().neg().add_scalar(1.0);
    let p_t = t.clone().mul(p.clone()).add(one_minus_t.clone().mul(p.neg().add_scalar(1.0)));
    let alpha_factor = t.mul_scalar(alpha).add(one_minus_t.mul_scalar(1.0 - alpha));
    let modulating = p_t.neg().add_scalar(1.0).powf_scalar(gamma);
    loss.mul(alpha_factor.mul(modulating)).mean()
}

/// YOLOv5's criterion choice: focal BCE (α = [`FOCAL_ALPHA`]) when `fl_gamma > 0`, plain BCE
/// otherwise; mean reduction, `[1]`.
pub fn bce_or_focal<const D: usize>(
    logits: Tensor<D>,
    targets: Tensor<D>,
    pos_weight: f64,
    fl_gamma: f64,
) -> Tensor<1> {
    if fl_gamma > 0.0 {
        focal_bce_with_logits(logits, targets, pos_weight, fl_gamma, FOCAL_ALPHA)
    } else {
        bce_with_logits(logits, targets, pos_weight)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values<const D: usize>(t: Tensor<D>) -> Vec<f32> {
        t.into_data().convert::<f32>().try_to_vec::<f32>().unwrap()
    }

    fn t1(v: &[f32], device: &Device) -> Tensor<1> {
        Tensor::from_data(TensorData::new(v.to_vec(), [v.len()]), device)
    }

    /// Reference in f64: `−w·t·log σ(x) − (1 − t)·log(1 − σ(x))`, fine for moderate `|x|`.
    fn reference(x: f64, t: f64, pw: f64) -> f64 {
        let s = 1.0 / (1.0 + (-x).exp());
        -(pw * t * s.ln() + (1.0 - t) * (1.0 - s).ln())
    }

    fn focal_reference(x: f64, t: f64, pw: f64, gamma: f64, alpha: f64) -> f64 {
        let s = 1.0 / (1.0 + (-x).exp());
        let p_t = t * s + (1.0 - t) * (1.0 - s);
        reference(x, t, pw) * (t * alpha + (1.0 - t) * (1.0 - alpha)) * (1.0 - p_t).powf(gamma)
    }

    const XS: [f32; 8] = [0.0, 2.0, -3.0, 1.5, 1.5, -0.25, 7.0, -9.0];
    const TS: [f32; 8] = [0.5, 1.0, 0.0, 0.3, 0.3, 0.9, 0.0, 1.0];

    #[test]
    fn hand_computed_values() {
        let device = Device::flex();
        let l = values(bce_with_logits_elementwise(t1(&XS[..4], &device), t1(&TS[..4], &device), 1.0));
        // ln 2; ln(1 + e^−2); ln(1 + e^−3); 0.7·1.5 + ln(1 + e^−1.5).
        let want = [std::f64::consts::LN_2, 0.126_928_011_042_972_6, 0.048_587_351_573_742_0, 1.251_413_277_982_752_5];
        for (g, w) in l.iter().zip(want) {
            assert!((*g as f64 - w).abs() < 1e-6, "{g} vs {w}");
        }
        // pos_weight 2 on the soft target t = 0.3: w = 1.3 → 1.05 + 1.3·ln(1 + e^−1.5).
        let l = values(bce_with_logits_elementwise(t1(&[1.5], &device), t1(&[0.3], &device), 2.0));
        assert!((l[0] as f64 - 1.311_837_261_377_578_4).abs() < 1e-6, "{}", l[0]);
    }

    #[test]
    fn matches_reference_soft_targets_and_pos_weight() {
        let device = Device::flex();
        for pw in [1.0, 0.5, 2.0, 3.7] {
            let l = values(bce_with_logits_elementwise(t1(&XS, &device), t1(&TS, &device), pw));
            for ((g, x), t) in l.iter().zip(XS).zip(TS) {
                let w = reference(x as f64, t as f64, pw);
                assert!((*g as f64 - w).abs() < 2e-6 * w.abs().max(1.0), "x {x} t {t} pw {pw}: {g} vs {w}");
            }
            let mean = values(bce_with_logits(t1(&XS, &device), t1(&TS, &device), pw))[0] as f64;
            let want = XS.iter().zip(TS).map(|(&x, t)| reference(x as f64, t as f64, pw)).sum::<f64>() / 8.0;
            assert!((mean - want).abs() < 2e-6 * want, "mean {mean} vs {want}");
        }
    }

    #[test]
    fn large_logits_stay_finite() {
        let device = Device::flex();
        let l = values(bce_with_logits_elementwise(
            t1(&[100.0, -100.0, 100.0, -100.0, 500.0], &device),
            t1(&[0.0, 1.0, 1.0, 0.0, 0.5], &device),
            2.0,
        ));
        assert!((l[0] - 100.0).abs() < 1e-4 && (l[1] - 200.0).abs() < 1e-4, "{l:?}");
        assert!(l[2].abs() < 1e-6 && l[3].abs() < 1e-6, "{l:?}");
        assert!((l[4] - 250.0).abs() < 1e-3, "{l:?}");
    }

    #[test]
    fn gradient_is_pytorch_closed_form() {
        let device = Device::flex().autodiff();
        for pw in [1.0, 2.5] {
            let x = t1(&XS, &device).require_grad();
            let loss = bce_with_logits(x.clone(), t1(&TS, &device), pw);
            let grads = loss.backward();
            let g = values(x.grad(&grads).unwrap());
            for ((g, x), t) in g.iter().zip(XS).zip(TS) {
                let (x, t) = (x as f64, t as f64);
                let s = 1.0 / (1.0 + (-x).exp());
                let want = ((1.0 + (pw - 1.0) * t) * s - pw * t) / 8.0;
                assert!((*g as f64 - want).abs() < 1e-7, "x {x} t {t} pw {pw}: {g} vs {want}");
            }
        }
    }

    #[test]
    fn focal_matches_reference() {
        let device = Device::flex();
        for (pw, gamma) in [(1.0, 1.5), (2.0, 2.0), (1.0, 0.5)] {
            let got = values(focal_bce_with_logits(t1(&XS, &device), t1(&TS, &device), pw, gamma, FOCAL_ALPHA))[0];
            let want = XS
                .iter()
                .zip(TS)
                .map(|(&x, t)| focal_reference(x as f64, t as f64, pw, gamma, FOCAL_ALPHA))
                .sum::<f64>()
                / 8.0;
            assert!((got as f64 - want).abs() < 1e-6 * want.max(1e-3), "pw {pw} γ {gamma}: {got} vs {want}");
        }
        // fl_gamma 0 selects the plain BCE.
        let a = values(bce_or_focal(t1(&XS, &device), t1(&TS, &device), 1.0, 0.0))[0];
        let b = values(bce_with_logits(t1(&XS, &device), t1(&TS, &device), 1.0))[0];
        assert_eq!(a, b);
    }

    #[test]
    fn focal_gradient_matches_finite_differences() {
        let device = Device::flex().autodiff();
        let (pw, gamma) = (1.5, 1.5);
        let x = t1(&XS, &device).require_grad();
        let grads = focal_bce_with_logits(x.clone(), t1(&TS, &device), pw, gamma, FOCAL_ALPHA).backward();
        let g = values(x.grad(&grads).unwrap());
        let f = |xs: &[f64]| {
            xs.iter().zip(TS).map(|(&x, t)| focal_reference(x, t as f64, pw, gamma, FOCAL_ALPHA)).sum::<f64>() / 8.0
        };
        let base: Vec<f64> = XS.iter().map(|&v| v as f64).collect();
        for (i, got) in g.iter().enumerate() {
            let h = 1e-5;
            let (mut p, mut m) = (base.clone(), base.clone());
            p[i] += h;
            m[i] -= h;
            let want = (f(&p) - f(&m)) / (2.0 * h);
            assert!((*got as f64 - want).abs() < 1e-6, "i {i}: {got} vs {want}");
        }
    }
}
