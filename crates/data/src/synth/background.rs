//! Backgrounds of the synthetic images — gradients, multi-octave value noise, stripes, checkers,
//! blends of two of them under a lighting ramp — and per-pixel sensor noise.

use image::RgbImage;
use rand::Rng;

use super::geometry::{ffloor, to_byte};

/// The SplitMix64 finaliser: a bijective 64-bit mix.
pub(crate) fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A random colour (HSV with saturation and value spread over their ranges), RGB in `0..=255`.
pub(crate) fn random_color(rng: &mut impl Rng) -> [f32; 3] {
    hsv(rng.random::<f32>(), rng.random::<f32>(), 0.08 + 0.92 * rng.random::<f32>())
}

/// HSV (each in `0..=1`) to RGB in `0..=255`.
pub(crate) fn hsv(h: f32, s: f32, v: f32) -> [f32; 3] {
    let h6 = (h - ffloor(h)) * 6.0;
    let sector = ffloor(h6);
    let (r, g, b) = crate::annotate::hsv_sector_to_rgb(sector as u32, h6 - sector, s, v);
    [r * 255.0, g * 255.0, b * 255.0]
}

fn lerp3(a: [f32; 3], b: [f32; 3], t: f32) -> [f32; 3] {
    [a[0] + (b[0] - a[0]) * t, a[1] + (b[1] - a[1]) * t, a[2] + (b[2] - a[2]) * t]
}

/// A scalar field over the image in `0..=1`, to be mapped through a colour ramp. Evaluated a
/// row at a time.
enum Field {
    /// Linear ramp along a direction.
    Linear { dir: [f32; 2], offset: f32, scale: f32 },
    /// Radial ramp from a centre.
    Radial { center: [f32; 2], inv_radius: f32 },
    /// Smooth value noise: smoothstep interpolation of random lattice values, 1–3 octaves.
    Noise { octaves: Vec<Lattice> },
    /// Soft-edged parallel stripes.
    Stripes { dir: [f32; 2], period: f32, duty: f32 },
    /// A rotated checkerboard.
    Checker { dir: [f32; 2], inv_cell: f32 },
}

/// One octave of value noise.
struct Lattice {
    inv_cell: f32,
    cols: usize,
    values: Vec<f32>,
    weight: f32,
}

fn smoothstep(t: f32) -> f32 {
    t * t * (3.0 - 2.0 * t)
}

impl Lattice {
    fn new(rng: &mut impl Rng, size: u32, cell: f32, weight: f32) -> Self {
        let cols = (size as f32 / cell) as usize + 3;
        let values = (0..cols * cols).map(|_| rng.random::<f32>()).collect();
        Lattice { inv_cell: 1.0 / cell, cols, values, weight }
    }

    /// Adds `weight ×` the noise along row `y` (pixel centres `x + 0.5`) to `out`; `tmp` is
    /// scratch.
    fn add_row(&self, y: f32, out: &mut [f32], tmp: &mut Vec<f32>) {
        let gy = y * self.inv_cell;
        let iy = (gy as i32 as usize).min(self.cols - 2);
        let fy = smoothstep(gy - iy as f32);
        let (top, bottom) = (&self.values[iy * self.cols..], &self.values[(iy + 1) * self.cols..]);
        tmp.clear();
        tmp.extend((0..self.cols).map(|i| top[i] + (bottom[i] - top[i]) * fy));
        for (x, o) in out.iter_mut().enumerate() {
            let gx = (x as f32 + 0.5) * self.inv_cell;
            let ix = (gx as i32 as usize).min(self.cols - 2);
            let fx = smoothstep(gx - ix as f32);
            *o += self.weight * (tmp[ix] + (tmp[ix + 1] - tmp[ix]) * fx);
        }
    }
}

impl Field {
    fn random(rng: &mut impl Rng, size: u32) -> Field {
        let s = size as f32;
        let angle = rng.random::<f32>() * std::f32::consts::TAU;
        let dir = [angle.cos(), angle.sin()];
        match rng.random_range(0..6u32) {
            0 => {
                // Project the image corners to normalise the ramp to 0..1.
                let proj = [[0.0, 0.0], [s, 0.0], [0.0, s], [s, s]].map(|p: [f32; 2]| p[0] * dir[0] + p[1] * dir[1]);
                let lo = proj.iter().copied().fold(f32::INFINITY, f32::min);
                let hi = proj.iter().copied().fold(f32::NEG_INFINITY, f32::max);
                Field::Linear { dir, offset: lo, scale: 1.0 / (hi - lo).max(1.0) }
            }
            1 => Field::Radial {
                center: [rng.random::<f32>() * s, rng.random::<f32>() * s],
                inv_radius: 1.0 / (s * rng.random_range(0.4..1.2f32)),
            },
            2 | 3 => {
                let mut cell = s * rng.random_range(0.08..0.5f32);
                let octaves = rng.random_range(1..=3u32);
                let mut weight = 1.0;
                let mut lattices = Vec::new();
                for _ in 0..octaves {
                    lattices.push(Lattice::new(rng, size, cell.max(2.0), weight));
                    cell /= 2.0;
                    weight *= 0.5;
                }
                let total: f32 = lattices.iter().map(|l| l.weight).sum();
                lattices.iter_mut().for_each(|l| l.weight /= total);
                Field::Noise { octaves: lattices }
            }
            4 => Field::Stripes {
                dir,
                period: rng.random_range(4.0..(s / 4.0).max(5.0)),
                duty: rng.random_range(0.2..0.8f32),
            },
            _ => Field::Checker { dir, inv_cell: 1.0 / rng.random_range(4.0..(s / 6.0).max(5.0)) },
        }
    }

    /// The field along row `y` (pixel centres), into `out`; `tmp` is scratch.
    fn row(&self, y: usize, out: &mut [f32], tmp: &mut Vec<f32>) {
        let fy = y as f32 + 0.5;
        match *self {
            Field::Linear { dir, offset, scale } => {
                for (x, o) in out.iter_mut().enumerate() {
                    *o = (((x as f32 + 0.5) * dir[0] + fy * dir[1] - offset) * scale).clamp(0.0, 1.0);
                }
            }
            Field::Radial { center, inv_radius } => {
                let dy2 = (fy - center[1]) * (fy - center[1]);
                for (x, o) in out.iter_mut().enumerate() {
                    let dx = x as f32 + 0.5 - center[0];
                    *o = ((dx * dx + dy2).sqrt() * inv_radius).min(1.0);
                }
            }
            Field::Noise { ref octaves } => {
                out.fill(0.0);
                octaves.iter().for_each(|l| l.add_row(fy, out, tmp));
            }
            Field::Stripes { dir, period, duty } => {
                let inv = 1.0 / period;
                for (x, o) in out.iter_mut().enumerate() {
                    let p = (x as f32 + 0.5) * dir[0] + fy * dir[1];
                    let u = p - ffloor(p * inv) * period;
                    // Signed distance into the band [0, duty·period), one pixel of anti-aliasing.
                    let d = u.min(duty * period - u).max(u - period);
                    *o = (d + 0.5).clamp(0.0, 1.0);
                }
            }
            Field::Checker { dir, inv_cell } => {
                for (x, o) in out.iter_mut().enumerate() {
                    let fx = x as f32 + 0.5;
                    let u = (fx * dir[0] + fy * dir[1]) * inv_cell;
                    let v = (-fx * dir[1] + fy * dir[0]) * inv_cell;
                    *o = ((ffloor(u) as i32 + ffloor(v) as i32) & 1) as f32;
                }
            }
        }
    }
}

/// Entries of a colour ramp's lookup table.
const RAMP_STEPS: usize = 1024;

/// A colour ramp of two or three stops, as a lookup table over `0..=1`.
struct Ramp(Vec<[f32; 3]>);

impl Ramp {
    fn random(rng: &mut impl Rng) -> Ramp {
        let stops = rng.random_range(2..=3usize);
        let first = random_color(rng);
        let mut colors = vec![first];
        // Low-contrast ramps are as common as high-contrast ones.
        let spread = rng.random_range(0.15..1.0f32);
        for _ in 1..stops {
            colors.push(lerp3(first, random_color(rng), spread));
        }
        let n = colors.len() - 1;
        let lut = (0..RAMP_STEPS)
            .map(|i| {
                let x = i as f32 / (RAMP_STEPS - 1) as f32 * n as f32;
                let k = (x as usize).min(n - 1);
                lerp3(colors[k], colors[k + 1], x - k as f32)
            })
            .collect();
        Ramp(lut)
    }

    #[inline]
    fn at(&self, t: f32) -> [f32; 3] {
        self.0[(t.clamp(0.0, 1.0) * (RAMP_STEPS - 1) as f32 + 0.5) as i32 as usize]
    }
}

/// A random `size × size` background: one field through a colour ramp, sometimes blended with a
/// second, often under a brightness ramp.
pub(crate) fn render_background(rng: &mut impl Rng, size: u32) -> RgbImage {
    let base = (Field::random(rng, size), Ramp::random(rng));
    let overlay = if rng.random_bool(0.3) {
        Some((Field::random(rng, size), Ramp::random(rng), rng.random_range(0.2..0.6f32)))
    } else {
        None
    };
    let light = if rng.random_bool(0.5) {
        let a = rng.random::<f32>() * std::f32::consts::TAU;
        Some(([a.cos() / size as f32, a.sin() / size as f32], rng.random_range(0.1..0.5f32)))
    } else {
        None
    };
    let n = size as usize;
    let mut img = RgbImage::new(size, size);
    let (mut t, mut t2, mut tmp) = (vec![0f32; n], vec![0f32; n], Vec::new());
    let mut rgb = vec![[0f32; 3]; n];
    let half = size as f32 / 2.0;
    for (y, row) in img.as_mut().chunks_exact_mut(3 * n).enumerate() {
        base.0.row(y, &mut t, &mut tmp);
        for (c, &v) in rgb.iter_mut().zip(&t) {
            *c = base.1.at(v);
        }
        if let Some((field, ramp, alpha)) = &overlay {
            field.row(y, &mut t2, &mut tmp);
            for (c, &v) in rgb.iter_mut().zip(&t2) {
                *c = lerp3(*c, ramp.at(v), *alpha);
            }
        }
        if let Some((dir, gain)) = light {
            // 1 ± gain at the image's edges along the light direction.
            let k0 = 1.0 + gain * 2.0 * ((0.5 - half) * dir[0] + (y as f32 + 0.5 - half) * dir[1]);
            let dk = gain * 2.0 * dir[0];
            for (x, c) in rgb.iter_mut().enumerate() {
                let k = k0 + dk * x as f32;
                *c = [c[0] * k, c[1] * k, c[2] * k];
            }
        }
        for (px, c) in row.chunks_exact_mut(3).zip(&rgb) {
            px[0] = to_byte(c[0]);
            px[1] = to_byte(c[1]);
            px[2] = to_byte(c[2]);
        }
    }
    img
}

/// Adds zero-mean noise of standard deviation about `sigma` (grey levels) to every channel of
/// every pixel: triangular noise (the sum of two uniforms: bounded, close enough to Gaussian)
/// looked up from a 256-entry table by the bytes of a xorshift stream, eight values per step.
pub(crate) fn add_noise(img: &mut RgbImage, sigma: f32, seed: u64) {
    if sigma <= 0.0 {
        return;
    }
    // Quantiles of the triangular distribution on (-1, 1) (variance 1/6), scaled to `sigma`.
    let scale = sigma * 6f32.sqrt();
    let table: [i16; 256] = std::array::from_fn(|i| {
        let u = (i as f32 + 0.5) / 256.0;
        let t = if u < 0.5 { (2.0 * u).sqrt() - 1.0 } else { 1.0 - (2.0 * (1.0 - u)).sqrt() };
        (t * scale).round() as i16
    });
    let mut state = mix64(seed) | 1;
    let mut bits = 0u64;
    for (i, v) in img.as_mut().iter_mut().enumerate() {
        if i % 8 == 0 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            bits = state;
        }
        *v = i16::from(*v).wrapping_add(table[(bits & 0xFF) as usize]).clamp(0, 255) as u8;
        bits >>= 8;
    }
}
