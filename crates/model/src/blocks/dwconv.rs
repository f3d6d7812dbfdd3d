//! `DWConv`: a depth-wise [`Conv`] with `groups = gcd(c1, c2)` (YOLOv5's definition, which is a true
//! depth-wise conv when `c1 == c2`).

use burn::prelude::*;

use super::conv::{Conv, ConvConfig};

/// Configuration of a depth-wise [`Conv`].
#[derive(Config, Debug)]
pub struct DwConvConfig {
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
    /// Apply SiLU.
    #[config(default = true)]
    pub act: bool,
}

/// Greatest common divisor.
pub fn gcd(a: usize, b: usize) -> usize {
    if b == 0 { a } else { gcd(b, a % b) }
}

impl DwConvConfig {
    /// The equivalent [`ConvConfig`] (`g = gcd(c1, c2)`, auto padding).
    pub fn conv_config(&self) -> ConvConfig {
        ConvConfig::new(self.c1, self.c2).with_k(self.k).with_s(self.s).with_g(gcd(self.c1, self.c2)).with_act(self.act)
    }

    /// Builds the block. Shapes as [`Conv`].
    pub fn init(&self, device: &Device) -> Conv {
        self.conv_config().init(device)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::{assert_close, device, set_all, tensor4, to_vec};

    #[test]
    fn groups_are_gcd() {
        assert_eq!(DwConvConfig::new(64, 64).conv_config().g, 64);
        assert_eq!(DwConvConfig::new(48, 64).conv_config().g, 16);
        assert_eq!(DwConvConfig::new(3, 8).conv_config().g, 1);
    }

    /// Each channel is filtered by its own kernel: a 3×3 box filter on channel 0, identity on channel 1.
    #[test]
    fn depthwise_channels_do_not_mix() {
        let dev = device();
        let mut c = DwConvConfig::new(2, 2).with_k(3).with_act(false).init(&dev);
        let mut w = vec![1.0; 9];
        w.extend([0.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0]);
        set_all(
            &mut c,
            &[
                ("conv.weight", w),
                ("bn.weight", vec![1.0, 1.0]),
                ("bn.bias", vec![0.0, 0.0]),
                ("bn.running_mean", vec![0.0, 0.0]),
                ("bn.running_var", vec![1.0 - 1e-3, 1.0 - 1e-3]),
            ],
        );
        let x: Vec<f32> = (0..18).map(|i| i as f32).collect();
        let y = to_vec(c.forward(tensor4(x.clone(), [1, 2, 3, 3])));
        // centre of channel 0 = sum 0..9 = 36; corner (0,0) = 0+1+3+4 = 8
        assert_close(&[y[4], y[0]], &[36.0, 8.0], 1e-4);
        assert_close(&y[9..], &x[9..], 1e-4);
    }
}
