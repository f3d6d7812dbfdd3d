//! `Bottleneck`: 1×1 conv to `c2·e`, 3×3 conv back to `c2`, plus a residual add when `shortcut` and
//! `c1 == c2` (He et al., "Deep Residual Learning", CVPR 2016; YOLOv5 variant).

use burn::prelude::*;

use super::conv::{Conv, ConvConfig};
use crate::error::WeightsError;
use crate::state::{NamedTensors, TensorVisitor, join};

/// Configuration of a [`Bottleneck`].
#[derive(Config, Debug)]
pub struct BottleneckConfig {
    /// Input channels.
    pub c1: usize,
    /// Output channels.
    pub c2: usize,
    /// Residual connection (only used when `c1 == c2`).
    #[config(default = true)]
    pub shortcut: bool,
    /// Groups of the 3×3 conv.
    #[config(default = 1)]
    pub g: usize,
    /// Hidden-channel expansion: hidden = `floor(c2·e)`.
    #[config(default = 0.5)]
    pub e: f64,
    /// Explicit hidden width (overrides `e`; used by pruned architectures).
    #[config(default = "None")]
    pub hidden: Option<usize>,
}

/// Standard bottleneck. Shapes: `[B, c1, H, W]` → `[B, c2, H, W]`.
#[derive(Module, Debug)]
pub struct Bottleneck {
    /// 1×1 reduction.
    pub cv1: Conv,
    /// 3×3 conv.
    pub cv2: Conv,
    /// Whether the input is added to the output.
    pub add: bool,
}

impl BottleneckConfig {
    /// Builds the block.
    pub fn init(&self, device: &Device) -> Bottleneck {
        let c_ = self.hidden.unwrap_or((self.c2 as f64 * self.e) as usize);
        Bottleneck {
            cv1: ConvConfig::new(self.c1, c_).init(device),
            cv2: ConvConfig::new(c_, self.c2).with_k(3).with_g(self.g).init(device),
            add: self.shortcut && self.c1 == self.c2,
        }
    }
}

impl Bottleneck {
    /// Forward pass.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let y = self.cv2.forward(self.cv1.forward(x.clone()));
        if self.add { x + y } else { y }
    }

    /// Folds every BN into its conv.
    pub fn fuse(self) -> Self {
        Self { cv1: self.cv1.fuse(), cv2: self.cv2.fuse(), add: self.add }
    }

    /// thop MACs for an `(h, w)` input.
    pub fn macs(&self, h: usize, w: usize) -> f64 {
        self.cv1.macs(h, w).0 + self.cv2.macs(h, w).0
    }

    /// PyTorch module count (see [`Conv::torch_modules`]).
    pub fn torch_modules(&self) -> usize {
        1 + self.cv1.torch_modules() + self.cv2.torch_modules()
    }
}

impl NamedTensors for Bottleneck {
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
    fn residual_only_when_shapes_match() {
        let dev = device();
        assert!(BottleneckConfig::new(8, 8).init(&dev).add);
        assert!(!BottleneckConfig::new(8, 16).init(&dev).add);
        assert!(!BottleneckConfig::new(8, 8).with_shortcut(false).init(&dev).add);
        assert_eq!(BottleneckConfig::new(8, 8).init(&dev).cv1.out_channels(), 4);
    }

    /// With the residual, output − input equals the plain branch output.
    #[test]
    fn residual_adds_input() {
        let dev = device();
        let b = BottleneckConfig::new(4, 4).init(&dev);
        let x = Tensor::<4>::random([1, 4, 5, 5], burn::tensor::Distribution::Default, &dev);
        let branch = b.cv2.forward(b.cv1.forward(x.clone()));
        assert_close(&to_vec(b.forward(x.clone()) - x), &to_vec(branch), 1e-5);
    }
}
