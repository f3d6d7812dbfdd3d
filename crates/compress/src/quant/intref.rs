//! An integer-arithmetic reference for one quantized convolution: what an int8 engine computes,
//! written out naively so that the fake-quantized model ([`super::QConv`] on fake-quantized
//! inputs) can be checked against it.
//!
//! With input levels `x_q` (scale `s_x`, zero-point `z_x`), weight levels `w_q ∈ [−127, 127]`
//! (per-output-channel scales `s_w[c]`, zero-point 0) and a float bias `b`:
//!
//! ```text
//! acc[c, y, x] = Σ (x_q − z_x) · w_q            (i32 accumulation; padding contributes 0)
//! real[c, y, x] = acc · (s_x · s_w[c]) + b[c]
//! out_q = clamp(round(real / s_out) + z_out)      (optional requantization)
//! ```
//!
//! Padding holds the real value 0, i.e. the level `z_x`, so padded taps add nothing to `acc`. The
//! activation that follows a conv is not part of the reference (engines run it on the
//! dequantized or requantized result).

use burn::prelude::*;

use super::fake::{QParams, WEIGHT_GRID, grid_bounds, weight_scales};
use crate::error::QuantError;

/// Geometry of a 2-D convolution with a square kernel and symmetric padding (NCHW input
/// `[batch, c_in, h, w]`, weight `[c_out, c_in / groups, k, k]`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConvGeometry {
    /// Images in the batch.
    pub batch: usize,
    /// Input channels.
    pub c_in: usize,
    /// Output channels.
    pub c_out: usize,
    /// Kernel size.
    pub k: usize,
    /// Stride.
    pub stride: usize,
    /// Zero padding on every side.
    pub pad: usize,
    /// Groups (`c_in` and `c_out` divisible by it; `groups == c_in == c_out` is depthwise).
    pub groups: usize,
    /// Input height.
    pub h: usize,
    /// Input width.
    pub w: usize,
}

impl ConvGeometry {
    /// Output `(height, width)`: `(h + 2·pad − k) / stride + 1` (`None` when the kernel does not
    /// fit the padded input).
    pub fn out_hw(&self) -> Option<(usize, usize)> {
        let hp = self.h + 2 * self.pad;
        let wp = self.w + 2 * self.pad;
        if self.k == 0 || self.stride == 0 || hp < self.k || wp < self.k {
            return None;
        }
        Some(((hp - self.k) / self.stride + 1, (wp - self.k) / self.stride + 1))
    }

    /// Input elements `batch · c_in · h · w`.
    pub fn input_len(&self) -> usize {
        self.batch * self.c_in * self.h * self.w
    }

    /// Weight elements `c_out · (c_in / groups) · k²`.
    pub fn weight_len(&self) -> usize {
        self.c_out * self.fan_in()
    }

    /// Products summed per output: `(c_in / groups) · k²`.
    pub fn fan_in(&self) -> usize {
        self.c_in.checked_div(self.groups).unwrap_or(0) * self.k * self.k
    }

    fn check(&self) -> Result<(usize, usize), QuantError> {
        let bad = |msg: String| QuantError::Option { name: "geometry", msg };
        if self.groups == 0 || !self.c_in.is_multiple_of(self.groups) || !self.c_out.is_multiple_of(self.groups) {
            return Err(bad(format!("{} groups for {} → {} channels", self.groups, self.c_in, self.c_out)));
        }
        self.out_hw().ok_or_else(|| bad(format!("{self:?}: the kernel does not fit the padded input")))
    }
}

/// Result of [`int8_conv_reference`], all `[batch, c_out, h_out, w_out]` row-major.
#[derive(Clone, Debug, PartialEq)]
pub struct IntConvOutput {
    /// Output height and width.
    pub out_hw: (usize, usize),
    /// The i32 accumulators `Σ (x_q − z_x) · w_q`.
    pub acc: Vec<i32>,
    /// The dequantized result `acc · s_x · s_w[c] + b[c]`.
    pub real: Vec<f32>,
    /// `real` requantized to the output grid, when output parameters were given.
    pub levels: Option<Vec<i32>>,
}

/// The integer levels and per-output-channel scales of a conv weight `[c_out, c_in/g, kh, kw]`,
/// exactly as [`super::fake::fake_quant_weight`] forms them: `s_c = max|w_c| / 127` (at least
/// [`super::fake::MIN_SCALE`]) and `q = clamp(round(w / s_c), −127, 127)`, computed with the same
/// tensor operations so that `q · s_c` is bit-identical to the fake-quantized weight.
pub fn quantize_weight_int8(w: Tensor<4>) -> (Vec<i8>, Vec<f32>) {
    let [co, _, _, _] = w.dims();
    let s = weight_scales(w.clone());
    let (qmin, qmax) = grid_bounds(WEIGHT_GRID);
    let q = (w / s.clone().reshape([co, 1, 1, 1])).round().clamp(qmin, qmax);
    let to_vec = |t: Tensor<4>| t.into_data().try_into_vec_as::<f32>().unwrap_or_default();
    let levels = to_vec(q).into_iter().map(|v| v as i8).collect();
    let scales = s.into_data().try_into_vec_as::<f32>().unwrap_or_default();
    (levels, scales)
}

/// Direct convolution in integer arithmetic (see the module docs): `x_q` holds the input levels
/// `[batch, c_in, h, w]` on `x_params`' grid, `w_q` the weight levels `[c_out, c_in/g, k, k]` with
/// one scale per output channel in `w_scales`, `bias` one float per output channel. With
/// `out_params` the result is also requantized to that grid.
///
/// Errors (naming the argument) on inconsistent lengths or geometry, input levels outside
/// `x_params`' grid, a non-integer zero-point, or a fan-in large enough to overflow the i32
/// accumulator.
pub fn int8_conv_reference(
    x_q: &[i32],
    x_params: QParams,
    w_q: &[i8],
    w_scales: &[f32],
    bias: &[f32],
    geom: &ConvGeometry,
    out_params: Option<QParams>,
) -> Result<IntConvOutput, QuantError> {
    let (ho, wo) = geom.check()?;
    let len_err = |name: &'static str, got: usize, want: usize| QuantError::Option {
        name,
        msg: format!("{got} values, the geometry {geom:?} needs {want}"),
    };
    if x_q.len() != geom.input_len() {
        return Err(len_err("x_q", x_q.len(), geom.input_len()));
    }
    if w_q.len() != geom.weight_len() {
        return Err(len_err("w_q", w_q.len(), geom.weight_len()));
    }
    if w_scales.len() != geom.c_out {
        return Err(len_err("w_scales", w_scales.len(), geom.c_out));
    }
    if bias.len() != geom.c_out {
        return Err(len_err("bias", bias.len(), geom.c_out));
    }
    if x_params.zero_point.fract() != 0.0 || x_params.qmin > x_params.qmax {
        return Err(QuantError::Option { name: "x_params", msg: format!("not an integer grid: {x_params:?}") });
    }
    let (qmin, qmax, z) = (x_params.qmin as i32, x_params.qmax as i32, x_params.zero_point as i32);
    if let Some(q) = x_q.iter().find(|&&q| q < qmin || q > qmax) {
        return Err(QuantError::Option { name: "x_q", msg: format!("level {q} outside [{qmin}, {qmax}]") });
    }
    // |x_q − z| ≤ max(z − qmin, qmax − z), |w_q| ≤ 128: the worst-case sum must fit an i32.
    let x_span = (i64::from(z) - i64::from(qmin)).max(i64::from(qmax) - i64::from(z));
    if x_span * 128 * geom.fan_in() as i64 > i64::from(i32::MAX) {
        return Err(QuantError::Option {
            name: "geometry",
            msg: format!("fan-in {} can overflow the i32 accumulator", geom.fan_in()),
        });
    }

    let ConvGeometry { batch, c_in, c_out, k, stride, pad, groups, h, w } = *geom;
    let (cig, cog) = (c_in / groups, c_out / groups);
    let mut acc = vec![0i32; batch * c_out * ho * wo];
    for n in 0..batch {
        for co in 0..c_out {
            let g = co / cog;
            let w_c = &w_q[co * cig * k * k..(co + 1) * cig * k * k];
            for oy in 0..ho {
                for ox in 0..wo {
                    let mut sum = 0i32;
                    for ci in 0..cig {
                        let plane = &x_q[((n * c_in) + g * cig + ci) * h * w..][..h * w];
                        for ky in 0..k {
                            let Some(iy) = (oy * stride + ky).checked_sub(pad).filter(|&iy| iy < h) else { continue };
                            for kx in 0..k {
                                let Some(ix) = (ox * stride + kx).checked_sub(pad).filter(|&ix| ix < w) else {
                                    continue;
                                };
                                sum += (plane[iy * w + ix] - z) * i32::from(w_c[(ci * k + ky) * k + kx]);
                            }
                        }
                    }
                    acc[((n * c_out + co) * ho + oy) * wo + ox] = sum;
                }
            }
        }
    }
    let plane = ho * wo;
    let real: Vec<f32> = acc
        .iter()
        .enumerate()
        .map(|(i, &a)| {
            let c = (i / plane) % c_out;
            (f64::from(a) * f64::from(x_params.scale) * f64::from(w_scales[c]) + f64::from(bias[c])) as f32
        })
        .collect();
    let levels = out_params.map(|p| real.iter().map(|&r| p.quantize(r)).collect());
    Ok(IntConvOutput { out_hw: (ho, wo), acc, real, levels })
}

#[cfg(test)]
mod tests {
    use burn::module::{Param, RunningState};
    use burn::tensor::Distribution;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;
    use yolo_compress_model::blocks::ConvConfig;

    use super::*;
    use crate::quant::fake::fake_quant_weight;
    use crate::quant::observer::Grid;
    use crate::quant::qconv::{Act, QConv};

    const ASYM: Grid = Grid { symmetric: false, bits: 8 };

    fn vec_f32<const D: usize>(t: Tensor<D>) -> Vec<f32> {
        t.into_data().try_into_vec_as::<f32>().unwrap()
    }

    /// A conv block with random BN (statistics and affine), wrapped as a quantized [`QConv`].
    fn random_qconv(geom: &ConvGeometry, rng: &mut ChaCha8Rng, device: &Device) -> QConv {
        let mut c = ConvConfig::new(geom.c_in, geom.c_out)
            .with_k(geom.k)
            .with_s(geom.stride)
            .with_p(Some(geom.pad))
            .with_g(geom.groups)
            .with_act(false)
            .init(device);
        let bn = c.bn.as_mut().unwrap();
        let n = geom.c_out;
        let mut v = |lo: f32, hi: f32| {
            let vals: Vec<f32> = (0..n).map(|_| rng.random_range(lo..hi)).collect();
            Tensor::<1>::from_data(TensorData::new(vals, [n]), device)
        };
        bn.gamma = Param::from_tensor(v(0.3, 2.0));
        bn.beta = Param::from_tensor(v(-0.5, 0.5));
        bn.running_mean = RunningState::new(v(-0.3, 0.3));
        bn.running_var = RunningState::new(v(0.2, 1.5));
        let mut q = QConv::new(c.conv, c.bn, Act::Identity, "test".into());
        q.quantized = true;
        q
    }

    fn check(geom: ConvGeometry, seed: u64) {
        let device = Device::flex();
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let qconv = random_qconv(&geom, &mut rng, &device);

        // Input levels on an asymmetric grid whose zero-point is far from 0.
        let x_params = QParams::from_range(-0.8, 2.6, ASYM);
        assert!(x_params.zero_point > 30.0, "{x_params:?}");
        let x = vec_f32(Tensor::<1>::random([geom.input_len()], Distribution::Uniform(-1.0, 2.9), &device));
        let x_q: Vec<i32> = x.iter().map(|&v| x_params.quantize(v)).collect();
        let x_fq: Vec<f32> = x_q.iter().map(|&q| x_params.dequantize(q)).collect();
        let x_t = Tensor::<4>::from_data(TensorData::new(x_fq, [geom.batch, geom.c_in, geom.h, geom.w]), &device);

        // The integer weight is exactly the fake-quantized one.
        let (w, b) = qconv.folded();
        let (w_q, w_scales) = quantize_weight_int8(w.clone());
        let fq = vec_f32(fake_quant_weight(w));
        let fan = geom.fan_in();
        for (i, (&q, &f)) in w_q.iter().zip(&fq).enumerate() {
            assert_eq!(q as f32 * w_scales[i / fan], f, "weight {i}");
        }
        assert!(w_q.iter().any(|&q| q.abs() == 127) && w_q.iter().all(|&q| q != -128));
        let bias = vec_f32(b);

        let fake = qconv.forward(x_t);
        let [bn_, co, ho, wo] = fake.dims();
        let fake = vec_f32(fake);
        let lo = fake.iter().copied().fold(f32::INFINITY, f32::min);
        let hi = fake.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let out_params = QParams::from_range(lo, hi, ASYM);
        let r = int8_conv_reference(&x_q, x_params, &w_q, &w_scales, &bias, &geom, Some(out_params)).unwrap();
        assert_eq!((bn_, co, ho, wo), (geom.batch, geom.c_out, r.out_hw.0, r.out_hw.1));
        assert_eq!(r.real.len(), fake.len());

        // Before requantization: float accumulation error only.
        let mut worst = 0.0f32;
        for (&a, &f) in r.real.iter().zip(&fake) {
            let err = (a - f).abs();
            assert!(err <= 1e-4 * (1.0 + a.abs()), "{geom:?}: int {a} vs fake {f}");
            worst = worst.max(err);
        }
        // After requantization: at most one output step apart, and mostly identical.
        let levels = r.levels.unwrap();
        let mut off = 0;
        for (&l, &f) in levels.iter().zip(&fake) {
            let d = (l - out_params.quantize(f)).abs();
            assert!(d <= 1, "{geom:?}: level {l} vs fake {}", out_params.quantize(f));
            off += usize::from(d == 1);
        }
        assert!(off * 100 <= levels.len(), "{geom:?}: {off} of {} levels differ", levels.len());
        // The accumulators are genuinely integer sums of non-trivial size.
        assert!(r.acc.iter().any(|a| a.abs() > 1000), "{geom:?}");
        assert!(worst < out_params.scale, "{geom:?}: worst {worst} vs step {}", out_params.scale);
    }

    fn geom(c_in: usize, c_out: usize, stride: usize, groups: usize) -> ConvGeometry {
        ConvGeometry { batch: 2, c_in, c_out, k: 3, stride, pad: 1, groups, h: 9, w: 7 }
    }

    #[test]
    fn fake_quant_conv_matches_integer_reference_stride_1() {
        check(geom(5, 6, 1, 1), 1);
    }

    #[test]
    fn fake_quant_conv_matches_integer_reference_stride_2() {
        check(geom(8, 4, 2, 1), 2);
    }

    #[test]
    fn fake_quant_conv_matches_integer_reference_depthwise() {
        check(geom(6, 6, 1, 6), 3);
        check(geom(6, 6, 2, 6), 4);
    }

    #[test]
    fn fake_quant_conv_matches_integer_reference_grouped() {
        check(geom(8, 4, 1, 2), 5);
    }

    #[test]
    fn reference_rejects_inconsistent_inputs() {
        let g = geom(2, 2, 1, 1);
        let p = QParams::from_range(-1.0, 1.0, ASYM);
        let x = vec![128; g.input_len()];
        let w = vec![1i8; g.weight_len()];
        let s = vec![0.1f32; 2];
        assert!(int8_conv_reference(&x, p, &w, &s, &s, &g, None).is_ok());
        let err = int8_conv_reference(&x[1..], p, &w, &s, &s, &g, None).unwrap_err().to_string();
        assert!(err.contains("x_q"), "{err}");
        let err = int8_conv_reference(&x, p, &w, &s[..1], &s, &g, None).unwrap_err().to_string();
        assert!(err.contains("w_scales"), "{err}");
        let mut bad = x.clone();
        bad[3] = 256;
        let err = int8_conv_reference(&bad, p, &w, &s, &s, &g, None).unwrap_err().to_string();
        assert!(err.contains("256"), "{err}");
        let err = int8_conv_reference(&x, p, &w, &s, &s, &ConvGeometry { groups: 3, ..g }, None).unwrap_err();
        assert!(err.to_string().contains("groups"), "{err}");
        let huge = ConvGeometry { batch: 1, c_in: 200_000, c_out: 1, k: 1, stride: 1, pad: 0, groups: 1, h: 1, w: 1 };
        let (x, w) = (vec![128; 200_000], vec![1i8; 200_000]);
        let err = int8_conv_reference(&x, p, &w, &[0.1], &[0.0], &huge, None).unwrap_err().to_string();
        assert!(err.contains("overflow"), "{err}");
    }

    #[test]
    fn reference_handles_padding_and_zero_point_by_hand() {
        // One 2×2 input, 3×3 kernel of ones, pad 1: every output sums the (x_q − z) it covers.
        let g = ConvGeometry { batch: 1, c_in: 1, c_out: 1, k: 3, stride: 1, pad: 1, groups: 1, h: 2, w: 2 };
        let p = QParams { scale: 0.5, zero_point: 10.0, qmin: 0.0, qmax: 255.0 };
        let x = [11, 12, 13, 14]; // (x − z) = 1, 2, 3, 4
        let r = int8_conv_reference(&x, p, &[1; 9], &[2.0], &[0.25], &g, None).unwrap();
        assert_eq!(r.out_hw, (2, 2));
        assert_eq!(r.acc, vec![10, 10, 10, 10]);
        assert_eq!(r.real, vec![10.25; 4]);
        let out = QParams { scale: 1.0, zero_point: 0.0, qmin: 0.0, qmax: 255.0 };
        let r = int8_conv_reference(&x, p, &[0, 0, 0, 0, 1, 0, 0, 0, -2], &[1.0], &[0.0], &g, Some(out)).unwrap();
        // Centre tap minus twice the bottom-right neighbour.
        assert_eq!(r.acc, vec![1 - 2 * 4, 2, 3, 4]);
        assert_eq!(r.levels, Some(vec![0, 1, 2, 2]));
    }
}
