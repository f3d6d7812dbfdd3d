//! `Focus`: space-to-depth (each 2×2 patch → 4 channels) followed by a [`Conv`] (YOLOv5 ≤ v5 stem).

use burn::prelude::*;

use super::conv::{Conv, ConvConfig};
use crate::error::WeightsError;
use crate::state::{NamedTensors, TensorVisitor, join};

/// Configuration of a [`Focus`] block.
#[derive(Config, Debug)]
pub struct FocusConfig {
    /// Input channels.
    pub c1: usize,
    /// Output channels.
    pub c2: usize,
    /// Conv kernel.
    #[config(default = 1)]
    pub k: usize,
    /// Conv stride.
    #[config(default = 1)]
    pub s: usize,
}

/// Focus block. Shapes: `[B, c1, H, W]` (H, W even) → `[B, c2, H/2/s, W/2/s]`.
#[derive(Module, Debug)]
pub struct Focus {
    /// The conv on the `4·c1` space-to-depth channels.
    pub conv: Conv,
}

impl FocusConfig {
    /// Builds the block.
    pub fn init(&self, device: &Device) -> Focus {
        Focus { conv: ConvConfig::new(self.c1 * 4, self.c2).with_k(self.k).with_s(self.s).init(device) }
    }
}

/// Space-to-depth in ultralytics' channel order: `(even row, even col)`, `(odd, even)`, `(even, odd)`,
/// `(odd, odd)`. `[B, C, H, W]` → `[B, 4C, H/2, W/2]`.
pub fn space_to_depth(x: Tensor<4>) -> Tensor<4> {
    let [b, c, h, w] = x.dims();
    x.reshape([b, c, h / 2, 2, w / 2, 2]).permute([0, 5, 3, 1, 2, 4]).reshape([b, 4 * c, h / 2, w / 2])
}

impl Focus {
    /// Forward pass.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        self.conv.forward(space_to_depth(x))
    }

    /// Folds the BN into the conv.
    pub fn fuse(self) -> Self {
        Self { conv: self.conv.fuse() }
    }
}

impl NamedTensors for Focus {
    fn visit_tensors(&mut self, prefix: &str, v: &mut dyn TensorVisitor) -> Result<(), WeightsError> {
        self.conv.visit_tensors(&join(prefix, "conv"), v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::{assert_close, tensor4, to_vec};

    #[test]
    fn space_to_depth_order() {
        // 1 channel, 2×4: rows [0 1 2 3; 4 5 6 7]
        let x = tensor4((0..8).map(|i| i as f32).collect(), [1, 1, 2, 4]);
        let y = to_vec(space_to_depth(x));
        // (even,even)=[0,2] (odd,even)=[4,6] (even,odd)=[1,3] (odd,odd)=[5,7]
        assert_close(&y, &[0.0, 2.0, 4.0, 6.0, 1.0, 3.0, 5.0, 7.0], 0.0);
    }
}
