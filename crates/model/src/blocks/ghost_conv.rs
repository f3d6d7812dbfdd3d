//! `GhostConv`: half the output channels from a regular conv, the other half from a cheap 5×5
//! depth-wise conv of the first half (Han et al., "GhostNet: More Features from Cheap Operations",
//! CVPR 2020; YOLOv5's variant).

use burn::prelude::*;

use super::conv::{Conv, ConvConfig};
use crate::error::WeightsError;
use crate::state::{NamedTensors, TensorVisitor, join};

/// Configuration of a [`GhostConv`].
#[derive(Config, Debug)]
pub struct GhostConvConfig {
    /// Input channels.
    pub c1: usize,
    /// Output channels (must be even unless `hidden` is set).
    pub c2: usize,
    /// Kernel of the primary conv.
    #[config(default = 1)]
    pub k: usize,
    /// Stride of the primary conv.
    #[config(default = 1)]
    pub s: usize,
    /// Groups of the primary conv.
    #[config(default = 1)]
    pub g: usize,
    /// SiLU on both halves.
    #[config(default = true)]
    pub act: bool,
    /// Kernel of the cheap depth-wise conv (5 in YOLOv5 7.0).
    #[config(default = 5)]
    pub cheap_k: usize,
}

/// Ghost convolution. Shapes: `[B, c1, H, W]` → `[B, 2·(c2/2), H/s, W/s]`.
#[derive(Module, Debug)]
pub struct GhostConv {
    /// Primary conv, `c1 → c2/2`.
    pub cv1: Conv,
    /// Cheap depth-wise conv, `c2/2 → c2/2`.
    pub cv2: Conv,
}

impl GhostConvConfig {
    /// Builds the block.
    pub fn init(&self, device: &Device) -> GhostConv {
        let c_ = self.c2 / 2;
        GhostConv {
            cv1: ConvConfig::new(self.c1, c_)
                .with_k(self.k)
                .with_s(self.s)
                .with_g(self.g)
                .with_act(self.act)
                .init(device),
            cv2: ConvConfig::new(c_, c_).with_k(self.cheap_k).with_g(c_).with_act(self.act).init(device),
        }
    }
}

impl GhostConv {
    /// Forward pass: `cat(y, cv2(y))` with `y = cv1(x)`.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let y = self.cv1.forward(x);
        let z = self.cv2.forward(y.clone());
        Tensor::cat(vec![y, z], 1)
    }

    /// Output channels.
    pub fn out_channels(&self) -> usize {
        self.cv1.out_channels() + self.cv2.out_channels()
    }

    /// Folds every BN into its conv.
    pub fn fuse(self) -> Self {
        Self { cv1: self.cv1.fuse(), cv2: self.cv2.fuse() }
    }

    /// thop MACs for an `(h, w)` input; returns the output size too.
    pub fn macs(&self, h: usize, w: usize) -> (f64, (usize, usize)) {
        let (m1, hw) = self.cv1.macs(h, w);
        let (m2, _) = self.cv2.macs(hw.0, hw.1);
        (m1 + m2, hw)
    }

    /// PyTorch module count.
    pub fn torch_modules(&self) -> usize {
        1 + self.cv1.torch_modules() + self.cv2.torch_modules()
    }
}

impl NamedTensors for GhostConv {
    fn visit_tensors(&mut self, prefix: &str, v: &mut dyn TensorVisitor) -> Result<(), WeightsError> {
        self.cv1.visit_tensors(&join(prefix, "cv1"), v)?;
        self.cv2.visit_tensors(&join(prefix, "cv2"), v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::{assert_close, device, to_vec};

    #[test]
    fn first_half_is_primary_second_half_is_cheap() {
        let dev = device();
        let g = GhostConvConfig::new(3, 8).with_k(3).with_s(2).init(&dev);
        assert_eq!(g.cv2.geometry(), (5, 1, 2, 4));
        let x = Tensor::<4>::random([1, 3, 10, 6], burn::tensor::Distribution::Default, &dev);
        let y = g.forward(x.clone());
        assert_eq!(y.dims(), [1, 8, 5, 3]);
        let p = g.cv1.forward(x);
        assert_close(&to_vec(y.clone().narrow(1, 0, 4)), &to_vec(p.clone()), 1e-6);
        assert_close(&to_vec(y.narrow(1, 4, 4)), &to_vec(g.cv2.forward(p)), 1e-6);
    }
}
