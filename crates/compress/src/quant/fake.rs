//! Fake quantization: quantize → dequantize in floating point, with the straight-through estimator
//! (Bengio et al. 2013; Jacob et al., CVPR 2018, "Quantization and Training of Neural Networks for
//! Efficient Integer-Arithmetic-Only Inference").
//!
//! `fq(x) = (clamp(round(x / s) + z, q_min, q_max) − z) · s`. The rounding passes gradients straight
//! through (`r(v) = v + (round(v) − v).detach()`), the clamp does not: the gradient of `fq` w.r.t. `x`
//! is the upstream gradient inside the representable range and zero outside it. When the scale is a
//! trainable tensor it receives the LSQ gradient (Esser et al., ICLR 2020) from the same expression.
//!
//! Weights use per-output-channel symmetric scales on the narrow grid `[−127, 127]`; activations one
//! scale per tensor, asymmetric (`[0, 255]` with a zero-point) or symmetric.

use burn::prelude::*;

use super::observer::Grid;

/// The 8-bit grid for weights: symmetric, narrow range `[−127, 127]`.
pub const WEIGHT_GRID: Grid = Grid { symmetric: true, bits: 8 };

/// Smallest scale used, so a constant-zero tensor does not divide by zero.
pub const MIN_SCALE: f32 = 1e-8;

/// Integer bounds `(q_min, q_max)` of a grid: symmetric `[−(2ᵇ⁻¹−1), 2ᵇ⁻¹−1]`, asymmetric `[0, 2ᵇ−1]`.
pub fn grid_bounds(grid: Grid) -> (f32, f32) {
    let bits = grid.bits.clamp(2, 16);
    if grid.symmetric {
        let m = ((1u32 << (bits - 1)) - 1) as f32;
        (-m, m)
    } else {
        (0.0, ((1u32 << bits) - 1) as f32)
    }
}

/// Scale, zero-point and integer bounds of one quantizer (host-side, for reports, the integer
/// reference and int8 storage).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct QParams {
    /// Step between adjacent integer levels.
    pub scale: f32,
    /// Integer that represents 0.0 (0 for symmetric grids).
    pub zero_point: f32,
    /// Lowest integer level.
    pub qmin: f32,
    /// Highest integer level.
    pub qmax: f32,
}

impl QParams {
    /// Parameters covering the clip range `[lo, hi]` (widened to include 0) on `grid`: symmetric
    /// `s = max(|lo|, |hi|) / q_max`, `z = 0`; asymmetric `s = (hi − lo) / (q_max − q_min)`,
    /// `z = round(q_min − lo / s)` clamped to the grid.
    pub fn from_range(lo: f32, hi: f32, grid: Grid) -> Self {
        let (qmin, qmax) = grid_bounds(grid);
        let (lo, hi) = (lo.min(0.0), hi.max(0.0));
        if grid.symmetric {
            let a = lo.abs().max(hi);
            QParams { scale: (a / qmax).max(MIN_SCALE), zero_point: 0.0, qmin, qmax }
        } else {
            let scale = ((hi - lo) / (qmax - qmin)).max(MIN_SCALE);
            let zero_point = (qmin - lo / scale).round().clamp(qmin, qmax);
            QParams { scale, zero_point, qmin, qmax }
        }
    }

    /// The integer level of `x`.
    pub fn quantize(&self, x: f32) -> i32 {
        ((x / self.scale).round() + self.zero_point).clamp(self.qmin, self.qmax) as i32
    }

    /// The real value of level `q`.
    pub fn dequantize(&self, q: i32) -> f32 {
        (q as f32 - self.zero_point) * self.scale
    }

    /// `dequantize(quantize(x))`.
    pub fn fake(&self, x: f32) -> f32 {
        self.dequantize(self.quantize(x))
    }

    /// The representable range `[dequantize(q_min), dequantize(q_max)]`.
    pub fn range(&self) -> (f32, f32) {
        ((self.qmin - self.zero_point) * self.scale, (self.qmax - self.zero_point) * self.scale)
    }
}

/// Rounding with a straight-through gradient: `v + (round(v) − v).detach()`.
pub fn round_ste<const D: usize>(v: Tensor<D>) -> Tensor<D> {
    v.clone() + (v.clone().round() - v).detach()
}

/// Fake-quantizes `x` with a per-tensor `scale` and `zero_point` given as one-element tensors
/// (`[1]`, broadcast over `x`). Gradients: straight through inside the range, zero outside; the
/// scale receives its LSQ gradient unless the caller detached it.
pub fn fake_quant<const D: usize>(x: Tensor<D>, scale: Tensor<1>, zero_point: Tensor<1>, grid: Grid) -> Tensor<D> {
    let (qmin, qmax) = grid_bounds(grid);
    let s = scale.reshape([1; D]);
    let z = zero_point.reshape([1; D]);
    let q = (round_ste(x / s.clone()) + z.clone()).clamp(qmin, qmax);
    (q - z) * s
}

/// Scale and zero-point tensors (`[1]` each) for a clip range tensor `range = [lo, hi]`, computed on
/// the device so a learnable range gets gradients: as [`QParams::from_range`], with the zero-point
/// rounded and detached.
pub fn range_qparams(range: Tensor<1>, grid: Grid) -> (Tensor<1>, Tensor<1>) {
    let (qmin, qmax) = grid_bounds(grid);
    let lo = range.clone().narrow(0, 0, 1).clamp_max(0.0);
    let hi = range.narrow(0, 1, 1).clamp_min(0.0);
    if grid.symmetric {
        let a = lo.abs().max_pair(hi);
        let s = (a / qmax).clamp_min(MIN_SCALE);
        let z = s.zeros_like().detach();
        (s, z)
    } else {
        let s = ((hi - lo.clone()) / (qmax - qmin)).clamp_min(MIN_SCALE);
        let z = (-(lo / s.clone()) + qmin).round().clamp(qmin, qmax).detach();
        (s, z)
    }
}

/// Per-output-channel symmetric fake quantization of a conv weight `[c_out, c_in/g, kh, kw]`:
/// `s_c = max|w_c| / 127` (detached: the standard min-max weight observer, recomputed every step).
pub fn fake_quant_weight(w: Tensor<4>) -> Tensor<4> {
    let s = weight_scales(w.clone()).detach();
    let (qmin, qmax) = grid_bounds(WEIGHT_GRID);
    let [co, _, _, _] = w.dims();
    let s = s.reshape([co, 1, 1, 1]);
    round_ste(w / s.clone()).clamp(qmin, qmax) * s
}

/// The per-output-channel scales `max|w_c| / 127` of a conv weight, `[c_out]`.
pub fn weight_scales(w: Tensor<4>) -> Tensor<1> {
    let [co, ci, kh, kw] = w.dims();
    let (_, qmax) = grid_bounds(WEIGHT_GRID);
    (w.abs().reshape([co, ci * kh * kw]).max_dim(1).reshape([co]) / qmax).clamp_min(MIN_SCALE)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grid(symmetric: bool) -> Grid {
        Grid { symmetric, bits: 8 }
    }

    fn vec1(t: Tensor<1>) -> Vec<f32> {
        t.into_data().convert::<f32>().try_to_vec::<f32>().unwrap()
    }

    #[test]
    fn round_trip_error_is_within_half_a_step() {
        for symmetric in [false, true] {
            let q = QParams::from_range(-1.3, 4.1, grid(symmetric));
            let (lo, hi) = q.range();
            // The rounded zero-point shifts the range by at most half a step.
            assert!(lo <= -1.3 + q.scale * 0.5 && hi >= 4.1 - q.scale * 0.5, "{q:?} {lo} {hi}");
            let mut worst = 0.0f32;
            for i in 0..=2000 {
                let x = -1.3 + 5.4 * i as f32 / 2000.0;
                worst = worst.max((q.fake(x) - x).abs());
            }
            assert!(worst <= q.scale * 0.5 + 1e-6, "worst {worst} scale {}", q.scale);
            // Zero is exact.
            assert_eq!(q.fake(0.0), 0.0);
            // Out of range clips to the edge.
            assert!((q.fake(100.0) - hi).abs() < 1e-5);
        }
    }

    #[test]
    fn tensor_fake_quant_matches_host_params() {
        let device = Device::flex();
        for symmetric in [false, true] {
            let g = grid(symmetric);
            let range = Tensor::<1>::from_floats([-0.7, 2.9], &device);
            let (s, z) = range_qparams(range, g);
            let q = QParams::from_range(-0.7, 2.9, g);
            assert!((vec1(s.clone())[0] - q.scale).abs() < 1e-7);
            assert_eq!(vec1(z.clone())[0], q.zero_point);
            let xs: Vec<f32> = (0..101).map(|i| -1.5 + 0.05 * i as f32).collect();
            let x = Tensor::<1>::from_floats(xs.as_slice(), &device);
            let y = vec1(fake_quant(x, s, z, g));
            for (x, y) in xs.iter().zip(y) {
                assert!((q.fake(*x) - y).abs() < 1e-5, "x {x}: host {} tensor {y}", q.fake(*x));
            }
        }
    }

    #[test]
    fn ste_gradient_is_upstream_inside_and_zero_outside() {
        let device = Device::flex().autodiff();
        let g = grid(false);
        let xs = [-3.0f32, -0.5, 0.0, 0.3, 1.7, 2.4, 9.0];
        let x = Tensor::<1>::from_floats(xs, &device).require_grad();
        let range = Tensor::<1>::from_floats([-1.0, 2.5], &device);
        let (s, z) = range_qparams(range, g);
        let upstream = Tensor::<1>::from_floats([1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0], &device);
        let y = fake_quant(x.clone(), s.detach(), z, g);
        let grads = (y * upstream).sum().backward();
        let gx = vec1(x.grad(&grads).unwrap());
        let q = QParams::from_range(-1.0, 2.5, g);
        let (lo, hi) = q.range();
        for (i, (&x, &gx)) in xs.iter().zip(&gx).enumerate() {
            let inside =
                (x / q.scale).round() + q.zero_point >= q.qmin && (x / q.scale).round() + q.zero_point <= q.qmax;
            let want = if inside { (i + 1) as f32 } else { 0.0 };
            assert!((gx - want).abs() < 1e-5 * (1.0 + want), "x {x}: grad {gx}, want {want} (range {lo}..{hi})");
        }
    }

    #[test]
    fn learnable_scale_gets_the_lsq_gradient() {
        let device = Device::flex().autodiff();
        let g = grid(true);
        let x = Tensor::<1>::from_floats([0.26f32, 20.0], &device);
        let s = Tensor::<1>::from_floats([0.1f32], &device).require_grad();
        let z = Tensor::<1>::zeros([1], &device);
        let y = fake_quant(x, s.clone(), z, g);
        let grads = y.sum().backward();
        // LSQ: d fq / ds = round(x/s) − x/s inside the range (3 − 2.6 for 0.26), q_max outside
        // (20 / 0.1 = 200 clips to 127).
        let want = (3.0 - 2.6) + 127.0;
        let gs = vec1(s.grad(&grads).unwrap())[0];
        assert!((gs - want).abs() < 1e-4, "{gs} vs {want}");
    }

    #[test]
    fn weight_quant_is_per_channel_and_symmetric() {
        let device = Device::flex();
        let w: Vec<f32> =
            (0..2 * 3 * 3).map(|i| ((i * 37 % 17) as f32 - 8.0) * if i < 9 { 0.01 } else { 1.0 }).collect();
        let t = Tensor::<4>::from_data(TensorData::new(w.clone(), [2, 1, 3, 3]), &device);
        let s = vec1(weight_scales(t.clone()));
        assert!((s[0] - 0.08 / 127.0).abs() < 1e-9 && (s[1] - 8.0 / 127.0).abs() < 1e-6, "{s:?}");
        let fq = fake_quant_weight(t).into_data().try_to_vec::<f32>().unwrap();
        for (i, (w, f)) in w.iter().zip(fq).enumerate() {
            let sc = s[i / 9];
            assert!((w - f).abs() <= sc * 0.5 + 1e-7);
            let level = f / sc;
            assert!((level - level.round()).abs() < 1e-3 && level.abs() <= 127.0 + 1e-3);
        }
    }
}
