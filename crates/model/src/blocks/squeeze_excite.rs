//! `SqueezeExcite`: channel attention of Hu et al., "Squeeze-and-Excitation Networks" (CVPR 2018), in
//! the form GhostNet's bottlenecks use: global average pool → 1×1 conv (with bias) to a reduced width
//! → ReLU → 1×1 conv (with bias) back → sigmoid gate, multiplied into the input.
//!
//! The reduced width is explicit here; the YAML parser sets it to `int(c · ratio)` as the
//! Yolov5-Processing project does (GhostNet's paper code rounds to a multiple of 4 and gates with a
//! hard sigmoid instead). State-dict keys: `conv_reduce.{weight,bias}`, `conv_expand.{weight,bias}`.

use burn::nn::PaddingConfig2d;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::prelude::*;
use burn::tensor::activation::{relu, sigmoid};

use crate::error::WeightsError;
use crate::state::{NamedTensors, Slot, TensorVisitor, join};

/// Configuration of a [`SqueezeExcite`].
#[derive(Config, Debug)]
pub struct SqueezeExciteConfig {
    /// Channels of the input (and output).
    pub channels: usize,
    /// Width of the bottleneck between the two 1×1 convs (≥ 1).
    pub reduced: usize,
}

/// Squeeze-and-excite gate. Shapes: `[B, C, H, W]` → `[B, C, H, W]`.
#[derive(Module, Debug)]
pub struct SqueezeExcite {
    /// 1×1 conv `C → reduced`, with bias.
    pub conv_reduce: Conv2d,
    /// 1×1 conv `reduced → C`, with bias.
    pub conv_expand: Conv2d,
}

impl SqueezeExciteConfig {
    /// Builds the block with PyTorch's default conv initialisation.
    pub fn init(&self, device: &Device) -> SqueezeExcite {
        assert!(self.channels > 0 && self.reduced > 0, "squeeze-excite widths must be positive");
        let conv = |a: usize, b: usize| {
            Conv2dConfig::new([a, b], [1, 1]).with_padding(PaddingConfig2d::Valid).with_bias(true).init(device)
        };
        SqueezeExcite { conv_reduce: conv(self.channels, self.reduced), conv_expand: conv(self.reduced, self.channels) }
    }
}

impl SqueezeExcite {
    /// Forward pass: `x · σ(expand(relu(reduce(mean_hw(x)))))`.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let s = x.clone().mean_dims(&[2, 3]);
        let gate = sigmoid(self.conv_expand.forward(relu(self.conv_reduce.forward(s))));
        x * gate
    }

    /// Channels of the input and output.
    pub fn channels(&self) -> usize {
        self.conv_reduce.weight.dims()[1]
    }

    /// Width between the two convs.
    pub fn reduced(&self) -> usize {
        self.conv_reduce.weight.dims()[0]
    }

    /// thop MACs for an `(h, w)` input: the adaptive average pool counts `(h·w + 1)` per channel, each
    /// 1×1 conv `C·reduced` (biases, ReLU, sigmoid and the product count zero).
    pub fn macs(&self, h: usize, w: usize) -> f64 {
        let (c, r) = (self.channels(), self.reduced());
        ((h * w + 1) * c + 2 * c * r) as f64
    }

    /// PyTorch module count (the block, AdaptiveAvgPool2d, two Conv2d, ReLU, Sigmoid).
    pub fn torch_modules(&self) -> usize {
        6
    }
}

impl NamedTensors for SqueezeExcite {
    fn visit_tensors(&mut self, prefix: &str, v: &mut dyn TensorVisitor) -> Result<(), WeightsError> {
        for (name, conv) in [("conv_reduce", &mut self.conv_reduce), ("conv_expand", &mut self.conv_expand)] {
            v.visit(&join(prefix, &format!("{name}.weight")), Slot::Param4(&mut conv.weight))?;
            if let Some(b) = conv.bias.as_mut() {
                v.visit(&join(prefix, &format!("{name}.bias")), Slot::Param1(b))?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::ParamCounter;
    use crate::test_util::{assert_close, device, set_all, tensor4, to_vec};

    fn sig(z: f32) -> f32 {
        1.0 / (1.0 + (-z).exp())
    }

    /// Two channels, reduced to one, every step by hand.
    #[test]
    fn gate_hand_computed() {
        let dev = device();
        let mut se = SqueezeExciteConfig::new(2, 1).init(&dev);
        set_all(
            &mut se,
            &[
                ("conv_reduce.weight", vec![1.0, -1.0]),
                ("conv_reduce.bias", vec![0.5]),
                ("conv_expand.weight", vec![2.0, -1.0]),
                ("conv_expand.bias", vec![0.0, 1.0]),
            ],
        );
        let x = vec![1.0, 2.0, 3.0, 4.0, 0.0, 0.0, 0.0, 4.0];
        // means 2.5 and 1 → reduce 2.5 − 1 + 0.5 = 2 → relu 2 → expand (4, −2 + 1) → gates σ(4), σ(−1)
        let y = to_vec(se.forward(tensor4(x.clone(), [1, 2, 2, 2])));
        let (g0, g1) = (sig(4.0), sig(-1.0));
        let want: Vec<f32> = x.iter().enumerate().map(|(i, v)| v * if i < 4 { g0 } else { g1 }).collect();
        assert_close(&y, &want, 1e-6);
        // A negative squeeze is cut by the ReLU: the gate is σ(expand bias) alone.
        let y = to_vec(se.forward(tensor4(vec![0.0, 0.0, 0.0, 0.0, 3.0, 3.0, 3.0, 3.0], [1, 2, 2, 2])));
        assert_close(&y, &[0.0, 0.0, 0.0, 0.0, 3.0 * sig(1.0), 3.0 * sig(1.0), 3.0 * sig(1.0), 3.0 * sig(1.0)], 1e-6);
    }

    #[test]
    fn batch_items_get_their_own_gate() {
        let dev = device();
        let se = SqueezeExciteConfig::new(4, 2).init(&dev);
        let a = Tensor::<4>::random([1, 4, 3, 5], burn::tensor::Distribution::Default, &dev);
        let b = Tensor::<4>::random([1, 4, 3, 5], burn::tensor::Distribution::Default, &dev);
        let both = to_vec(se.forward(Tensor::cat(vec![a.clone(), b.clone()], 0)));
        let mut one = to_vec(se.forward(a));
        one.extend(to_vec(se.forward(b)));
        assert_close(&both, &one, 1e-6);
    }

    #[test]
    fn params_and_macs() {
        let dev = device();
        let mut se = SqueezeExciteConfig::new(72, 18).init(&dev);
        let mut c = ParamCounter::default();
        se.visit_tensors("", &mut c).unwrap();
        assert_eq!(c.params, 72 * 18 + 18 + 18 * 72 + 72);
        // thop at 40×40: pool (1600 + 1)·72, convs 2·72·18
        assert_eq!(se.macs(40, 40), (1601 * 72 + 2 * 72 * 18) as f64);
    }
}
