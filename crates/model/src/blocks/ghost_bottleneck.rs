//! `GhostBottleneck`: GhostConv → (depth-wise stride-2 conv) → GhostConv without activation, plus a
//! shortcut (identity, or depth-wise + 1×1 conv when striding). Han et al., GhostNet, CVPR 2020;
//! YOLOv5 7.0 variant, whose shortcut is always added.

use burn::prelude::*;

use super::conv::Conv;
use super::dwconv::DwConvConfig;
use super::ghost_conv::{GhostConv, GhostConvConfig};
use crate::blocks::conv::ConvConfig;
use crate::error::WeightsError;
use crate::state::{NamedTensors, TensorVisitor, join};

/// Configuration of a [`GhostBottleneck`].
#[derive(Config, Debug)]
pub struct GhostBottleneckConfig {
    /// Input channels.
    pub c1: usize,
    /// Output channels.
    pub c2: usize,
    /// Kernel of the stride-2 depth-wise convs.
    #[config(default = 3)]
    pub k: usize,
    /// Stride (1 or 2).
    #[config(default = 1)]
    pub s: usize,
    /// Explicit hidden width (default `c2 / 2`; set by pruned architectures).
    #[config(default = "None")]
    pub hidden: Option<usize>,
}

/// Ghost bottleneck. Shapes: `[B, c1, H, W]` → `[B, c2, H/s, W/s]`.
#[derive(Module, Debug)]
pub struct GhostBottleneck {
    /// `conv.0`: GhostConv `c1 → c_` (SiLU).
    pub ghost1: GhostConv,
    /// `conv.1`: depth-wise `k×k` stride-2 conv without activation (only when `s == 2`).
    pub dw: Option<Conv>,
    /// `conv.2`: GhostConv `c_ → c2` without activation.
    pub ghost2: GhostConv,
    /// `shortcut.0` / `shortcut.1`: depth-wise + 1×1 conv (only when `s == 2`); identity otherwise.
    pub shortcut: Option<(Conv, Conv)>,
}

impl GhostBottleneckConfig {
    /// Builds the block.
    pub fn init(&self, device: &Device) -> GhostBottleneck {
        let c_ = self.hidden.unwrap_or(self.c2 / 2);
        let stride2 = self.s == 2;
        GhostBottleneck {
            ghost1: GhostConvConfig::new(self.c1, c_).init(device),
            dw: stride2.then(|| DwConvConfig::new(c_, c_).with_k(self.k).with_s(self.s).with_act(false).init(device)),
            ghost2: GhostConvConfig::new(c_, self.c2).with_act(false).init(device),
            shortcut: stride2.then(|| {
                (
                    DwConvConfig::new(self.c1, self.c1).with_k(self.k).with_s(self.s).with_act(false).init(device),
                    ConvConfig::new(self.c1, self.c2).with_act(false).init(device),
                )
            }),
        }
    }
}

impl GhostBottleneck {
    /// Forward pass.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let mut y = self.ghost1.forward(x.clone());
        if let Some(dw) = &self.dw {
            y = dw.forward(y);
        }
        let y = self.ghost2.forward(y);
        let s = match &self.shortcut {
            Some((dw, pw)) => pw.forward(dw.forward(x)),
            None => x,
        };
        y + s
    }

    /// Folds every BN into its conv.
    pub fn fuse(self) -> Self {
        Self {
            ghost1: self.ghost1.fuse(),
            dw: self.dw.map(Conv::fuse),
            ghost2: self.ghost2.fuse(),
            shortcut: self.shortcut.map(|(a, b)| (a.fuse(), b.fuse())),
        }
    }

    /// thop MACs for an `(h, w)` input; returns the output size too.
    pub fn macs(&self, h: usize, w: usize) -> (f64, (usize, usize)) {
        let (mut m, mut hw) = self.ghost1.macs(h, w);
        if let Some(dw) = &self.dw {
            let (md, hw2) = dw.macs(hw.0, hw.1);
            m += md;
            hw = hw2;
        }
        m += self.ghost2.macs(hw.0, hw.1).0;
        if let Some((dw, pw)) = &self.shortcut {
            let (md, hw2) = dw.macs(h, w);
            m += md + pw.macs(hw2.0, hw2.1).0;
        }
        (m, hw)
    }

    /// PyTorch module count (`nn.Identity` placeholders included).
    pub fn torch_modules(&self) -> usize {
        let dw = self.dw.as_ref().map_or(1, Conv::torch_modules);
        let sc = self.shortcut.as_ref().map_or(1, |(a, b)| 1 + a.torch_modules() + b.torch_modules());
        1 + 1 + self.ghost1.torch_modules() + dw + self.ghost2.torch_modules() + sc
    }
}

impl NamedTensors for GhostBottleneck {
    fn visit_tensors(&mut self, prefix: &str, v: &mut dyn TensorVisitor) -> Result<(), WeightsError> {
        self.ghost1.visit_tensors(&join(prefix, "conv.0"), v)?;
        if let Some(dw) = self.dw.as_mut() {
            dw.visit_tensors(&join(prefix, "conv.1"), v)?;
        }
        self.ghost2.visit_tensors(&join(prefix, "conv.2"), v)?;
        if let Some((dw, pw)) = self.shortcut.as_mut() {
            dw.visit_tensors(&join(prefix, "shortcut.0"), v)?;
            pw.visit_tensors(&join(prefix, "shortcut.1"), v)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::{assert_close, device, to_vec};

    #[test]
    fn stride_one_adds_identity() {
        let dev = device();
        let b = GhostBottleneckConfig::new(8, 8).init(&dev);
        assert!(b.dw.is_none() && b.shortcut.is_none());
        let x = Tensor::<4>::random([1, 8, 6, 6], burn::tensor::Distribution::Default, &dev);
        let branch = b.ghost2.forward(b.ghost1.forward(x.clone()));
        assert_close(&to_vec(b.forward(x.clone()) - x), &to_vec(branch), 1e-5);
    }

    #[test]
    fn stride_two_halves_and_projects_shortcut() {
        let dev = device();
        let b = GhostBottleneckConfig::new(8, 16).with_s(2).init(&dev);
        let y = b.forward(Tensor::zeros([2, 8, 10, 6], &dev));
        assert_eq!(y.dims(), [2, 16, 5, 3]);
        let (dw, pw) = b.shortcut.as_ref().unwrap();
        assert_eq!(dw.geometry(), (3, 2, 1, 8));
        assert_eq!(pw.out_channels(), 16);
    }
}
