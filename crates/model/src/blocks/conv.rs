//! `Conv`: Conv2d (no bias) → BatchNorm2d (eps 1e-3, momentum 0.03) → SiLU, the basic YOLOv5 block.
//!
//! Padding is "auto" (`k / 2`, same spatial size at stride 1). After [`Conv::fuse`] the BN is folded
//! into the convolution weights and a bias, as ultralytics' `fuse()` does for inference.

use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{BatchNorm, BatchNormConfig, PaddingConfig2d};
use burn::prelude::*;
use burn::tensor::activation::silu;

use crate::error::WeightsError;
use crate::state::{NamedTensors, Slot, TensorVisitor, join};

/// BatchNorm epsilon used by every YOLOv5 BN layer (not PyTorch's 1e-5; not stored in state dicts).
pub const BN_EPS: f64 = 1e-3;
/// BatchNorm momentum used by every YOLOv5 BN layer (PyTorch convention: weight of the new batch).
pub const BN_MOMENTUM: f64 = 0.03;

/// Configuration of a [`Conv`] block.
#[derive(Config, Debug)]
pub struct ConvConfig {
    /// Input channels.
    pub c1: usize,
    /// Output channels.
    pub c2: usize,
    /// Square kernel size.
    #[config(default = 1)]
    pub k: usize,
    /// Stride.
    #[config(default = 1)]
    pub s: usize,
    /// Padding; `None` = auto padding `k / 2`.
    #[config(default = "None")]
    pub p: Option<usize>,
    /// Groups (`c1` and `c2` must both be divisible by it).
    #[config(default = 1)]
    pub g: usize,
    /// Apply SiLU after BN (`false` = identity).
    #[config(default = true)]
    pub act: bool,
}

/// Conv2d + BatchNorm2d + SiLU.
///
/// Shapes: input `[B, c1, H, W]` → output `[B, c2, (H + 2p - k) / s + 1, (W + 2p - k) / s + 1]`.
#[derive(Module, Debug)]
pub struct Conv {
    /// The convolution; it has a bias only once the block is fused.
    pub conv: Conv2d,
    /// Batch norm; `None` once fused into `conv`.
    pub bn: Option<BatchNorm>,
    /// Whether SiLU is applied.
    pub act: bool,
}

impl ConvConfig {
    /// Builds the block with PyTorch's default initialisation (Kaiming-uniform, bound `1/sqrt(fan_in)`).
    pub fn init(&self, device: &Device) -> Conv {
        assert!(
            self.g > 0 && self.c1.is_multiple_of(self.g) && self.c2.is_multiple_of(self.g),
            "channels must divide groups"
        );
        let p = self.p.unwrap_or(self.k / 2);
        let conv = Conv2dConfig::new([self.c1, self.c2], [self.k, self.k])
            .with_stride([self.s, self.s])
            .with_groups(self.g)
            .with_padding(PaddingConfig2d::Explicit(p, p, p, p))
            .with_bias(false)
            .init(device);
        let bn = BatchNormConfig::new(self.c2).with_epsilon(BN_EPS).with_momentum(BN_MOMENTUM).init(device);
        Conv { conv, bn: Some(bn), act: self.act }
    }
}

impl Conv {
    /// Forward pass, `[B, c1, H, W]` → `[B, c2, H', W']`.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let mut y = self.conv.forward(x);
        if let Some(bn) = &self.bn {
            y = bn.forward(y);
        }
        if self.act { silu(y) } else { y }
    }

    /// Output channels.
    pub fn out_channels(&self) -> usize {
        self.conv.weight.dims()[0]
    }

    /// Input channels.
    pub fn in_channels(&self) -> usize {
        self.conv.weight.dims()[1] * self.conv.groups
    }

    /// Kernel size, stride, padding and groups as `(k, s, p, g)`.
    pub fn geometry(&self) -> (usize, usize, usize, usize) {
        let p = match self.conv.padding {
            PaddingConfig2d::Explicit(p, _, _, _) => p,
            _ => 0,
        };
        (self.conv.kernel_size[0], self.conv.stride[0], p, self.conv.groups)
    }

    /// Folds the BN into the conv: `w' = w·γ/√(σ²+ε)`, `b' = β − μ·γ/√(σ²+ε)` (plus the old bias, scaled).
    pub fn fuse(self) -> Conv {
        let Some(bn) = self.bn else { return self };
        let mut conv = self.conv;
        let scale = bn.gamma.val() / (bn.running_var.value() + bn.epsilon).sqrt();
        let c2 = scale.dims()[0];
        let w = conv.weight.val() * scale.clone().reshape([c2, 1, 1, 1]);
        let mut b = bn.beta.val() - bn.running_mean.value() * scale.clone();
        if let Some(old) = conv.bias.take() {
            b = b + old.val() * scale;
        }
        conv.weight = burn::module::Param::initialized(conv.weight.id, w);
        conv.bias = Some(burn::module::Param::from_tensor(b));
        Conv { conv, bn: None, act: self.act }
    }

    /// Multiply-accumulates (thop convention: conv `out_numel·c_in/g·k²`, BN `4·numel`) for an input of
    /// spatial size `(h, w)`; returns `(macs, (h_out, w_out))`.
    pub fn macs(&self, h: usize, w: usize) -> (f64, (usize, usize)) {
        let (k, s, p, g) = self.geometry();
        let ho = (h + 2 * p - k) / s + 1;
        let wo = (w + 2 * p - k) / s + 1;
        let numel = (self.out_channels() * ho * wo) as f64;
        let mut macs = numel * (self.in_channels() / g * k * k) as f64;
        if self.bn.is_some() {
            macs += 4.0 * numel;
        }
        (macs, (ho, wo))
    }

    /// Number of PyTorch modules ultralytics builds for this block (Conv, Conv2d, BN, act),
    /// not counting the SiLU instance that all blocks share.
    pub fn torch_modules(&self) -> usize {
        1 + 1 + usize::from(self.bn.is_some()) + usize::from(!self.act)
    }
}

impl NamedTensors for Conv {
    fn visit_tensors(&mut self, prefix: &str, v: &mut dyn TensorVisitor) -> Result<(), WeightsError> {
        v.visit(&join(prefix, "conv.weight"), Slot::Param4(&mut self.conv.weight))?;
        if let Some(b) = self.conv.bias.as_mut() {
            v.visit(&join(prefix, "conv.bias"), Slot::Param1(b))?;
        }
        if let Some(bn) = self.bn.as_mut() {
            visit_bn(bn, &join(prefix, "bn"), v)?;
        }
        Ok(())
    }
}

/// Visits a BatchNorm's tensors under PyTorch names (`weight`, `bias`, `running_mean`, `running_var`).
pub fn visit_bn(bn: &mut BatchNorm, prefix: &str, v: &mut dyn TensorVisitor) -> Result<(), WeightsError> {
    v.visit(&join(prefix, "weight"), Slot::Param1(&mut bn.gamma))?;
    v.visit(&join(prefix, "bias"), Slot::Param1(&mut bn.beta))?;
    v.visit(&join(prefix, "running_mean"), Slot::Running(&mut bn.running_mean))?;
    v.visit(&join(prefix, "running_var"), Slot::Running(&mut bn.running_var))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::{assert_close, device, set_all, tensor4, to_vec};

    /// 1×1 conv, 2 → 1 channels, hand-computed through BN and SiLU.
    #[test]
    fn conv_bn_silu_hand_computed() {
        let dev = device();
        let mut c = ConvConfig::new(2, 1).init(&dev);
        set_all(
            &mut c,
            &[
                ("conv.weight", vec![2.0, -1.0]),
                ("bn.weight", vec![1.5]),
                ("bn.bias", vec![0.25]),
                ("bn.running_mean", vec![0.5]),
                ("bn.running_var", vec![3.999]),
            ],
        );
        // x = (1, 3) at one pixel: conv = 2 - 3 = -1; bn = (-1 - 0.5)/sqrt(4) * 1.5 + 0.25 = -0.875
        let x = tensor4(vec![1.0, 3.0], [1, 2, 1, 1]);
        let y = to_vec(c.forward(x));
        let z: f32 = -0.875;
        assert_close(&y, &[z / (1.0 + (-z).exp())], 1e-6);
    }

    #[test]
    fn autopad_keeps_size_and_stride_halves() {
        let dev = device();
        let c = ConvConfig::new(3, 4).with_k(3).with_s(2).init(&dev);
        let y = c.forward(Tensor::zeros([1, 3, 9, 8], &dev));
        assert_eq!(y.dims(), [1, 4, 5, 4]);
        let stem = ConvConfig::new(3, 8).with_k(6).with_s(2).with_p(Some(2)).init(&dev);
        assert_eq!(stem.forward(Tensor::zeros([1, 3, 32, 64], &dev)).dims(), [1, 8, 16, 32]);
    }

    #[test]
    fn fuse_matches_unfused() {
        let dev = device();
        let mut c = ConvConfig::new(4, 6).with_k(3).with_g(2).init(&dev);
        set_all(
            &mut c,
            &[
                ("bn.weight", (0..6).map(|i| 0.5 + 0.1 * i as f32).collect()),
                ("bn.bias", (0..6).map(|i| -0.2 + 0.07 * i as f32).collect()),
                ("bn.running_mean", (0..6).map(|i| 0.05 * i as f32).collect()),
                ("bn.running_var", (0..6).map(|i| 0.6 + 0.2 * i as f32).collect()),
            ],
        );
        let x = Tensor::<4>::random([2, 4, 7, 5], burn::tensor::Distribution::Default, &dev);
        let a = to_vec(c.forward(x.clone()));
        let fused = c.fuse();
        assert!(fused.bn.is_none());
        assert_close(&a, &to_vec(fused.forward(x)), 1e-5);
    }

    #[test]
    fn macs_follow_thop() {
        let dev = device();
        let c = ConvConfig::new(16, 32).with_k(3).with_s(2).init(&dev);
        let (m, (h, w)) = c.macs(64, 64);
        assert_eq!((h, w), (32, 32));
        assert_eq!(m, (32 * 32 * 32) as f64 * (16 * 9) as f64 + 4.0 * (32 * 32 * 32) as f64);
    }
}
