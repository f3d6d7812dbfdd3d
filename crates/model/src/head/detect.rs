//! `Detect`: the YOLOv5 head. One 1×1 conv per pyramid level to `na·(nc+5)` channels, reshaped to
//! `[B, na, ny, nx, nc+5]`, and the decode of Redmon & Farhadi's YOLO with YOLOv5's bounded
//! parametrisation (Jocher et al., ultralytics/yolov5 v6+):
//!
//! `xy = (2σ(t_xy) − 0.5 + grid)·stride`, `wh = (2σ(t_wh))²·anchor`, `obj, cls = σ(·)`.

use burn::nn::PaddingConfig2d;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::prelude::*;
use burn::tensor::activation::sigmoid;

use crate::error::WeightsError;
use crate::state::{NamedTensors, Slot, TensorVisitor, join};

/// Configuration of a [`Detect`] head.
#[derive(Config, Debug)]
pub struct DetectConfig {
    /// Number of classes.
    pub nc: usize,
    /// Anchors per level in input pixels, `[nl][na]` of `(w, h)`.
    pub anchors: Vec<Vec<[f32; 2]>>,
    /// Stride of each level (8, 16, 32 for P3–P5).
    pub strides: Vec<f32>,
    /// Input channels of each level.
    pub ch: Vec<usize>,
}

/// The detection head. See the module docs for the decode.
#[derive(Module, Debug)]
pub struct Detect {
    /// Output convs, one per level: `ch[i] → na·(nc+5)`, with bias.
    pub m: Vec<Conv2d>,
    /// Number of classes.
    pub nc: usize,
    /// Anchors per level.
    pub na: usize,
    /// Anchors in grid units (pixels / stride), flattened `[nl, na, 2]` (state-dict `anchors`).
    #[module(skip)]
    pub anchors: Vec<f32>,
    /// Strides per level.
    #[module(skip)]
    pub strides: Vec<f32>,
}

/// Raw head outputs, one per level: `[B, na, ny, nx, nc+5]` logits (what the loss consumes).
pub type RawOutputs = Vec<Tensor<5>>;

impl DetectConfig {
    /// Builds the head with ultralytics' bias prior: objectness `+= ln(8/(640/s)²)` (≈8 objects per
    /// 640² image), classes `+= ln(0.6/(nc − 0.99999))`.
    pub fn init(&self, device: &Device) -> Detect {
        let na = self.anchors.first().map_or(0, Vec::len);
        let no = self.nc + 5;
        let m = self
            .ch
            .iter()
            .zip(&self.strides)
            .map(|(&c, &s)| {
                let mut conv =
                    Conv2dConfig::new([c, na * no], [1, 1]).with_padding(PaddingConfig2d::Valid).init(device);
                let bias = conv.bias.take().expect("detect conv has a bias");
                let mut prior = vec![0.0f32; na * no];
                for a in 0..na {
                    prior[a * no + 4] = (8.0 / (640.0 / s as f64).powi(2)).ln() as f32;
                    for c in 0..self.nc {
                        prior[a * no + 5 + c] = (0.6 / (self.nc as f64 - 0.99999)).ln() as f32;
                    }
                }
                let prior = Tensor::<1>::from_data(TensorData::new(prior, [na * no]), device);
                conv.bias = Some(burn::module::Param::from_tensor(bias.val() + prior));
                conv
            })
            .collect();
        let anchors = self
            .anchors
            .iter()
            .zip(&self.strides)
            .flat_map(|(lvl, &s)| lvl.iter().flat_map(move |a| [a[0] / s, a[1] / s]))
            .collect();
        Detect { m, nc: self.nc, na, anchors, strides: self.strides.clone() }
    }
}

impl Detect {
    /// Number of outputs per anchor (`nc + 5`).
    pub fn no(&self) -> usize {
        self.nc + 5
    }

    /// Number of levels.
    pub fn nl(&self) -> usize {
        self.m.len()
    }

    /// The largest stride (input sizes must be multiples of it).
    pub fn max_stride(&self) -> usize {
        self.strides.iter().fold(1.0f32, |a, &s| a.max(s)) as usize
    }

    /// Anchors of level `i` in pixels, as ultralytics' `anchor_grid` (`anchors[i]·stride[i]` in f32).
    pub fn anchors_px(&self, i: usize) -> Vec<[f32; 2]> {
        let s = self.strides[i];
        (0..self.na)
            .map(|a| {
                let o = (i * self.na + a) * 2;
                [self.anchors[o] * s, self.anchors[o + 1] * s]
            })
            .collect()
    }

    /// Raw outputs: `feats[i]` `[B, ch[i], ny, nx]` → `[B, na, ny, nx, nc+5]` logits.
    pub fn forward_raw(&self, feats: Vec<Tensor<4>>) -> RawOutputs {
        feats.into_iter().zip(&self.m).map(|(x, conv)| self.to_raw(conv.forward(x))).collect()
    }

    /// One level's conv output `[B, na·(nc+5), ny, nx]` → raw logits `[B, na, ny, nx, nc+5]`.
    pub fn to_raw(&self, y: Tensor<4>) -> Tensor<5> {
        let [b, _, ny, nx] = y.dims();
        y.reshape([b, self.na, self.no(), ny, nx]).permute([0, 1, 3, 4, 2])
    }

    /// Decodes raw outputs to `[B, Σ na·ny·nx, nc+5]` rows `(xc, yc, w, h, obj, cls…)`, xywh in input
    /// pixels, rows ordered level, anchor, row, column — bit-identical to ultralytics' eval output.
    pub fn decode(&self, raw: &RawOutputs) -> Tensor<3> {
        let parts = raw
            .iter()
            .enumerate()
            .map(|(i, r)| {
                let [b, na, ny, nx, no] = r.dims();
                let device = r.device();
                let s = sigmoid(r.clone());
                let mut grid = Vec::with_capacity(ny * nx * 2);
                for y in 0..ny {
                    for x in 0..nx {
                        grid.push(x as f32 - 0.5);
                        grid.push(y as f32 - 0.5);
                    }
                }
                let grid = Tensor::<5>::from_data(TensorData::new(grid, [1, 1, ny, nx, 2]), &device);
                let ag: Vec<f32> = self.anchors_px(i).into_iter().flatten().collect();
                let ag = Tensor::<5>::from_data(TensorData::new(ag, [1, na, 1, 1, 2]), &device);
                let stride = self.strides[i];
                let xy = (s.clone().narrow(4, 0, 2) * 2.0 + grid) * stride;
                let wh2 = s.clone().narrow(4, 2, 2) * 2.0;
                let wh = wh2.clone() * wh2 * ag;
                let rest = s.narrow(4, 4, no - 4);
                Tensor::cat(vec![xy, wh, rest], 4).reshape([b, na * ny * nx, no])
            })
            .collect();
        Tensor::cat(parts, 1)
    }

    /// thop MACs for level inputs of spatial sizes `hw` (bias not counted, as thop).
    pub fn macs(&self, hw: &[(usize, usize)]) -> f64 {
        self.m
            .iter()
            .zip(hw)
            .map(|(c, &(h, w))| {
                let [co, ci, _, _] = c.weight.dims();
                (co * h * w * ci) as f64
            })
            .sum()
    }

    /// PyTorch module count (Detect, ModuleList, one Conv2d per level).
    pub fn torch_modules(&self) -> usize {
        2 + self.m.len()
    }
}

impl NamedTensors for Detect {
    fn visit_tensors(&mut self, prefix: &str, v: &mut dyn TensorVisitor) -> Result<(), WeightsError> {
        let shape = vec![self.nl(), self.na, 2];
        v.visit(&join(prefix, "anchors"), Slot::Host(&mut self.anchors, shape))?;
        for (i, conv) in self.m.iter_mut().enumerate() {
            v.visit(&join(prefix, &format!("m.{i}.weight")), Slot::Param4(&mut conv.weight))?;
            if let Some(b) = conv.bias.as_mut() {
                v.visit(&join(prefix, &format!("m.{i}.bias")), Slot::Param1(b))?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::{assert_close, device, tensor4, to_vec};

    fn head(dev: &Device) -> Detect {
        DetectConfig::new(2, vec![vec![[10.0, 13.0]], vec![[30.0, 61.0]]], vec![8.0, 16.0], vec![1, 1]).init(dev)
    }

    #[test]
    fn bias_prior() {
        let dev = device();
        let d = DetectConfig::new(80, vec![vec![[10.0, 13.0]; 3]], vec![8.0], vec![4]).init(&dev);
        let b = to_vec(d.m[0].bias.as_ref().unwrap().val());
        let bound = 1.0 / 2.0; // 1/sqrt(fan_in = 4)
        let obj = (8.0f64 / 80.0f64.powi(2)).ln() as f32;
        let cls = (0.6f64 / 79.00001).ln() as f32;
        for a in 0..3 {
            assert!((b[a * 85 + 4] - obj).abs() <= bound);
            assert!((b[a * 85 + 5] - cls).abs() <= bound);
            assert!(b[a * 85].abs() <= bound);
        }
    }

    /// One anchor, one class, zero logits on a 2×2 grid: σ = 0.5 so xy = (1 + col − 0.5)·8 and
    /// wh = anchor px exactly.
    #[test]
    fn decode_hand_computed() {
        let dev = device();
        let d = head(&dev);
        let raw = vec![Tensor::<5>::zeros([1, 1, 2, 2, 7], &dev), Tensor::<5>::zeros([1, 1, 1, 1, 7], &dev)];
        let out = to_vec(d.decode(&raw));
        assert_eq!(out.len(), 5 * 7);
        let row = |r: usize| &out[r * 7..r * 7 + 7];
        assert_close(row(0), &[4.0, 4.0, 10.0, 13.0, 0.5, 0.5, 0.5], 1e-6);
        assert_close(row(1), &[12.0, 4.0, 10.0, 13.0, 0.5, 0.5, 0.5], 1e-6); // column 1
        assert_close(row(2), &[4.0, 12.0, 10.0, 13.0, 0.5, 0.5, 0.5], 1e-6); // row 1
        assert_close(row(4), &[8.0, 8.0, 30.0, 61.0, 0.5, 0.5, 0.5], 1e-6); // level 1, stride 16
    }

    #[test]
    fn raw_layout_is_anchor_major() {
        let dev = device();
        let d = DetectConfig::new(1, vec![vec![[1.0, 1.0], [2.0, 2.0]]], vec![8.0], vec![1]).init(&dev);
        let raw = d.forward_raw(vec![tensor4(vec![0.0; 6], [1, 1, 2, 3])]);
        assert_eq!(raw[0].dims(), [1, 2, 2, 3, 6]);
        // zero input: every cell of anchor a / output o equals the bias b[a·6 + o]
        let b = to_vec(d.m[0].bias.as_ref().unwrap().val());
        let r = to_vec(raw[0].clone());
        assert_close(&r[..6], &b[..6], 1e-6);
        assert_close(&r[6 * 6..6 * 7], &b[6..12], 1e-6);
    }
}
