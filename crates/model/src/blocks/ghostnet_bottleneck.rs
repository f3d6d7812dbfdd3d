//! `GhostNetBottleneck`: the bottleneck of GhostNet's backbone (Han et al., "GhostNet: More Features
//! from Cheap Operations", CVPR 2020), as the Yolov5-Processing project builds it for its GhostNet
//! YOLOv5 (`models/common.py`, `GhostBottleneck(c1, c2, exp_size, k, se_ratio, s)`):
//!
//! ```text
//! x ─ GhostModule c1→exp (SiLU) ─ [dw k×k stride 2 + BN] ─ [squeeze-excite] ─ GhostModule exp→c2 (linear) ─ + ─ y
//! └──────────── identity (c1 == c2, s == 1), else dw k×k stride s + BN → 1×1 Conv-BN (linear) ───────────┘
//! ```
//!
//! Unlike YOLOv5 7.0's [`GhostBottleneck`](super::GhostBottleneck) it has an explicit expansion width,
//! an optional squeeze-excite, a 3×3 cheap op, and a projection shortcut whenever the width changes
//! (also at stride 1). State-dict keys follow the reference: `conv.0` and `conv.3` are
//! [`GhostModule`]s, `conv.1` and `shortcut.0` depth-wise conv + BN under `conv_DW` / `bn_DW`,
//! `conv.2` the [`SqueezeExcite`], `shortcut.1` a [`Conv`].

use burn::prelude::*;

use super::conv::{Conv, ConvConfig, visit_bn};
use super::ghost_module::{GhostModule, GhostModuleConfig};
use super::squeeze_excite::{SqueezeExcite, SqueezeExciteConfig};
use crate::error::WeightsError;
use crate::state::{NamedTensors, Slot, TensorVisitor, join};

/// Configuration of a [`GhostNetBottleneck`].
#[derive(Config, Debug)]
pub struct GhostNetBottleneckConfig {
    /// Input channels.
    pub c1: usize,
    /// Output channels (even).
    pub c2: usize,
    /// Expansion width, the output of the first ghost module (even).
    pub hidden: usize,
    /// Kernel of the depth-wise convs (odd).
    #[config(default = 3)]
    pub k: usize,
    /// Squeeze-excite width; `0` = no squeeze-excite.
    #[config(default = 0)]
    pub se: usize,
    /// Stride (1 or 2).
    #[config(default = 1)]
    pub s: usize,
}

/// GhostNet bottleneck. Shapes: `[B, c1, H, W]` → `[B, c2, H/s, W/s]`.
#[derive(Module, Debug)]
pub struct GhostNetBottleneck {
    /// `conv.0`: expansion ghost module `c1 → hidden`, SiLU.
    pub ghost1: GhostModule,
    /// `conv.1`: depth-wise `k×k` stride-2 conv + BN, no activation (only when `s == 2`).
    pub dw: Option<Conv>,
    /// `conv.2`: squeeze-excite on the expanded features (only when `se > 0`).
    pub se: Option<SqueezeExcite>,
    /// `conv.3`: projection ghost module `hidden → c2`, no activation.
    pub ghost2: GhostModule,
    /// `shortcut.0` / `shortcut.1`: depth-wise `k×k` stride-`s` conv + BN, then a 1×1 Conv-BN without
    /// activation; `None` = identity (when `c1 == c2` and `s == 1`).
    pub shortcut: Option<(Conv, Conv)>,
}

/// The reference's `DWConv2`: depth-wise `k×k` conv with padding `(k − 1) / 2`, BN, no activation.
fn depthwise_bn(c: usize, k: usize, s: usize, device: &Device) -> Conv {
    ConvConfig::new(c, c).with_k(k).with_s(s).with_p(Some((k - 1) / 2)).with_g(c).with_act(false).init(device)
}

/// Visits a [`depthwise_bn`] conv under the reference's names `conv_DW.*` and `bn_DW.*`.
fn visit_depthwise_bn(m: &mut Conv, prefix: &str, v: &mut dyn TensorVisitor) -> Result<(), WeightsError> {
    v.visit(&join(prefix, "conv_DW.weight"), Slot::Param4(&mut m.conv.weight))?;
    if let Some(b) = m.conv.bias.as_mut() {
        v.visit(&join(prefix, "conv_DW.bias"), Slot::Param1(b))?;
    }
    if let Some(bn) = m.bn.as_mut() {
        visit_bn(bn, &join(prefix, "bn_DW"), v)?;
    }
    Ok(())
}

/// PyTorch modules of a [`depthwise_bn`] conv: `DWConv2`, `Conv2d` and, until fused, `BatchNorm2d`.
fn depthwise_bn_modules(m: &Conv) -> usize {
    2 + usize::from(m.bn.is_some())
}

impl GhostNetBottleneckConfig {
    /// Builds the block. Panics on odd widths or kernels and on strides other than 1 and 2.
    pub fn init(&self, device: &Device) -> GhostNetBottleneck {
        assert!(self.s == 1 || self.s == 2, "GhostNet bottleneck stride must be 1 or 2, got {}", self.s);
        assert!(self.k % 2 == 1, "GhostNet bottleneck kernel must be odd, got {}", self.k);
        let (c1, c2, e, k, s) = (self.c1, self.c2, self.hidden, self.k, self.s);
        GhostNetBottleneck {
            ghost1: GhostModuleConfig::new(c1, e).init(device),
            dw: (s == 2).then(|| depthwise_bn(e, k, s, device)),
            se: (self.se > 0).then(|| SqueezeExciteConfig::new(e, self.se).init(device)),
            ghost2: GhostModuleConfig::new(e, c2).with_act(false).init(device),
            shortcut: (c1 != c2 || s != 1)
                .then(|| (depthwise_bn(c1, k, s, device), ConvConfig::new(c1, c2).with_act(false).init(device))),
        }
    }
}

impl GhostNetBottleneck {
    /// Forward pass: `branch(x) + shortcut(x)`.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let mut y = self.ghost1.forward(x.clone());
        if let Some(dw) = &self.dw {
            y = dw.forward(y);
        }
        if let Some(se) = &self.se {
            y = se.forward(y);
        }
        let y = self.ghost2.forward(y);
        let s = match &self.shortcut {
            Some((dw, pw)) => pw.forward(dw.forward(x)),
            None => x,
        };
        y + s
    }

    /// Output channels.
    pub fn out_channels(&self) -> usize {
        self.ghost2.out_channels()
    }

    /// Expansion width.
    pub fn hidden(&self) -> usize {
        self.ghost1.out_channels()
    }

    /// Folds every BN into its conv (the depth-wise ones too, which the reference's `fuse()` skips).
    pub fn fuse(self) -> Self {
        Self {
            ghost1: self.ghost1.fuse(),
            dw: self.dw.map(Conv::fuse),
            se: self.se,
            ghost2: self.ghost2.fuse(),
            shortcut: self.shortcut.map(|(a, b)| (a.fuse(), b.fuse())),
        }
    }

    /// thop MACs for an `(h, w)` input (the residual add counts zero); returns the output size too.
    pub fn macs(&self, h: usize, w: usize) -> (f64, (usize, usize)) {
        let (mut m, mut hw) = self.ghost1.macs(h, w);
        if let Some(dw) = &self.dw {
            let (md, hw2) = dw.macs(hw.0, hw.1);
            m += md;
            hw = hw2;
        }
        if let Some(se) = &self.se {
            m += se.macs(hw.0, hw.1);
        }
        m += self.ghost2.macs(hw.0, hw.1).0;
        if let Some((dw, pw)) = &self.shortcut {
            let (md, hw2) = dw.macs(h, w);
            m += md + pw.macs(hw2.0, hw2.1).0;
        }
        (m, hw)
    }

    /// PyTorch module count: the block, its `conv` Sequential with four entries (`nn.Identity` for a
    /// missing depth-wise conv, an empty `nn.Sequential` for a missing squeeze-excite), and the
    /// shortcut (`nn.Identity`, or a Sequential of `DWConv2` and `Conv`).
    pub fn torch_modules(&self) -> usize {
        let dw = self.dw.as_ref().map_or(1, depthwise_bn_modules);
        let se = self.se.as_ref().map_or(1, SqueezeExcite::torch_modules);
        let sc = self.shortcut.as_ref().map_or(1, |(a, b)| 1 + depthwise_bn_modules(a) + b.torch_modules());
        2 + self.ghost1.torch_modules() + dw + se + self.ghost2.torch_modules() + sc
    }
}

impl NamedTensors for GhostNetBottleneck {
    fn visit_tensors(&mut self, prefix: &str, v: &mut dyn TensorVisitor) -> Result<(), WeightsError> {
        self.ghost1.visit_tensors(&join(prefix, "conv.0"), v)?;
        if let Some(dw) = self.dw.as_mut() {
            visit_depthwise_bn(dw, &join(prefix, "conv.1"), v)?;
        }
        if let Some(se) = self.se.as_mut() {
            se.visit_tensors(&join(prefix, "conv.2"), v)?;
        }
        self.ghost2.visit_tensors(&join(prefix, "conv.3"), v)?;
        if let Some((dw, pw)) = self.shortcut.as_mut() {
            visit_depthwise_bn(dw, &join(prefix, "shortcut.0"), v)?;
            pw.visit_tensors(&join(prefix, "shortcut.1"), v)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::{Collector, ParamCounter};
    use crate::test_util::{assert_close, device, set_all, to_vec};
    use burn::tensor::Distribution;

    fn keys(b: &mut GhostNetBottleneck) -> Vec<(String, Vec<usize>)> {
        let mut col = Collector::default();
        b.visit_tensors("", &mut col).unwrap();
        col.tensors.into_iter().map(|(k, s, _)| (k, s)).collect()
    }

    /// Random BN statistics everywhere, so that fusing and the forward pass are exercised.
    fn randomize_bn(b: &mut GhostNetBottleneck) {
        let mut col = Collector::default();
        b.visit_tensors("", &mut col).unwrap();
        let vals: Vec<(String, Vec<f32>)> = col
            .tensors
            .iter()
            .filter(|(k, _, _)| k.contains("bn"))
            .map(|(k, s, _)| {
                let n = s[0];
                let v = (0..n).map(|i| ((i * 7 + k.len()) % 11) as f32 / 11.0);
                let vals = if k.ends_with("running_var") || k.ends_with("weight") {
                    v.map(|x| 0.5 + x).collect()
                } else {
                    v.map(|x| 0.2 * x - 0.1).collect()
                };
                (k.clone(), vals)
            })
            .collect();
        let pairs: Vec<(&str, Vec<f32>)> = vals.iter().map(|(k, v)| (k.as_str(), v.clone())).collect();
        set_all(b, &pairs);
    }

    #[test]
    fn stride_one_same_width_adds_identity() {
        let dev = device();
        let b = GhostNetBottleneckConfig::new(16, 16, 16).init(&dev);
        assert!(b.dw.is_none() && b.se.is_none() && b.shortcut.is_none());
        let x = Tensor::<4>::random([1, 16, 5, 7], Distribution::Default, &dev);
        let branch = b.ghost2.forward(b.ghost1.forward(x.clone()));
        assert_close(&to_vec(b.forward(x.clone()) - x), &to_vec(branch), 1e-5);
        // GhostBottleneck, conv Sequential, GhostModule (7), Identity, empty Sequential, GhostModule
        // without activation (9), Identity shortcut
        assert_eq!(b.torch_modules(), 2 + 7 + 1 + 1 + 9 + 1);
    }

    #[test]
    fn stride_two_with_se_state_dict_layout() {
        let dev = device();
        let mut b = GhostNetBottleneckConfig::new(24, 40, 72).with_k(5).with_se(18).with_s(2).init(&dev);
        let y = b.forward(Tensor::zeros([2, 24, 10, 6], &dev));
        assert_eq!(y.dims(), [2, 40, 5, 3]);
        assert_eq!(b.dw.as_ref().unwrap().geometry(), (5, 2, 2, 72));
        let (dw, pw) = b.shortcut.as_ref().unwrap();
        assert_eq!((dw.geometry(), pw.geometry(), pw.act), ((5, 2, 2, 24), (1, 1, 0, 1), false));
        let ks = keys(&mut b);
        let names: Vec<&str> = ks.iter().map(|(k, _)| k.as_str()).collect();
        let expect = [
            "conv.0.primary_conv.conv.weight",
            "conv.0.cheap_operation.conv.weight",
            "conv.1.conv_DW.weight",
            "conv.1.bn_DW.running_var",
            "conv.2.conv_reduce.weight",
            "conv.2.conv_expand.bias",
            "conv.3.primary_conv.bn.weight",
            "conv.3.cheap_operation.conv.weight",
            "shortcut.0.conv_DW.weight",
            "shortcut.0.bn_DW.bias",
            "shortcut.1.conv.weight",
            "shortcut.1.bn.running_mean",
        ];
        for k in expect {
            assert!(names.contains(&k), "missing {k} in {names:?}");
        }
        assert_eq!(names.len(), 2 * 5 + 5 + 4 + 2 * 5 + 5 + 5); // a Conv has 5 tensors, the SE 4
        let shape = |k: &str| ks.iter().find(|(n, _)| n == k).unwrap().1.clone();
        assert_eq!(shape("conv.0.primary_conv.conv.weight"), [36, 24, 1, 1]);
        assert_eq!(shape("conv.0.cheap_operation.conv.weight"), [36, 1, 3, 3]);
        assert_eq!(shape("conv.1.conv_DW.weight"), [72, 1, 5, 5]);
        assert_eq!(shape("conv.2.conv_reduce.weight"), [18, 72, 1, 1]);
        assert_eq!(shape("conv.3.primary_conv.conv.weight"), [20, 72, 1, 1]);
        assert_eq!(shape("shortcut.0.conv_DW.weight"), [24, 1, 5, 5]);
        assert_eq!(shape("shortcut.1.conv.weight"), [40, 24, 1, 1]);
        // 2 + GhostModule 7 + DWConv2 3 + SE 6 + GhostModule 9 + (Sequential + DWConv2 3 + Conv 4)
        assert_eq!(b.torch_modules(), 2 + 7 + 3 + 6 + 9 + 1 + 3 + 4);
    }

    #[test]
    fn width_change_at_stride_one_projects() {
        let dev = device();
        let b = GhostNetBottleneckConfig::new(80, 112, 480).with_se(120).init(&dev);
        assert!(b.dw.is_none());
        let (dw, _) = b.shortcut.as_ref().unwrap();
        assert_eq!(dw.geometry(), (3, 1, 1, 80));
        assert_eq!(b.forward(Tensor::zeros([1, 80, 4, 6], &dev)).dims(), [1, 112, 4, 6]);
    }

    /// Parameters and thop MACs of `[c1 8, c2 16, exp 16, k 3, se 4, s 2]` at 8×8, by hand.
    #[test]
    fn params_and_macs_by_hand() {
        let dev = device();
        let mut b = GhostNetBottleneckConfig::new(8, 16, 16).with_se(4).with_s(2).init(&dev);
        let mut c = ParamCounter::default();
        b.visit_tensors("", &mut c).unwrap();
        // conv weights + BN (2 per channel): ghost1 primary 8→8, cheap 8 dw 3×3; dw 16 3×3;
        // se 16→4→16 with biases; ghost2 primary 16→8, cheap 8 dw 3×3; shortcut dw 8 3×3, 1×1 8→16
        let want =
            (64 + 16) + (72 + 16) + (144 + 32) + (64 + 4 + 64 + 16) + (128 + 16) + (72 + 16) + (72 + 16) + (128 + 32);
        assert_eq!(c.params, want);
        let (m, hw) = b.macs(8, 8);
        assert_eq!(hw, (4, 4));
        let conv = |numel: usize, cin_k2: usize| (numel * cin_k2 + 4 * numel) as f64;
        let want = conv(8 * 64, 8) + conv(8 * 64, 9) // ghost1 at 8×8
            + conv(16 * 16, 9) // dw stride 2 → 4×4
            + ((16 + 1) * 16 + 2 * 16 * 4) as f64 // se at 4×4
            + conv(8 * 16, 16) + conv(8 * 16, 9) // ghost2 at 4×4
            + conv(8 * 16, 9) + conv(16 * 16, 8); // shortcut: dw 8 ch → 4×4, then 1×1 8 → 16
        assert_eq!(m, want);
    }

    #[test]
    fn fuse_matches_unfused() {
        let dev = device();
        let mut b = GhostNetBottleneckConfig::new(8, 16, 24).with_k(5).with_se(6).with_s(2).init(&dev);
        randomize_bn(&mut b);
        let x = Tensor::<4>::random([2, 8, 9, 7], Distribution::Default, &dev);
        let a = to_vec(b.forward(x.clone()));
        let mut fused = b.fuse();
        assert!(keys(&mut fused).iter().all(|(k, _)| !k.contains("bn")));
        assert!(keys(&mut fused).iter().any(|(k, _)| k == "shortcut.0.conv_DW.bias"));
        assert_eq!(fused.torch_modules(), 2 + 5 + 2 + 6 + 7 + 1 + 2 + 3);
        assert_close(&a, &to_vec(fused.forward(x)), 1e-4);
    }
}
