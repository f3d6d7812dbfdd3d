//! `GhostModule`: the Ghost module of Han et al., "GhostNet: More Features from Cheap Operations"
//! (CVPR 2020) with ratio 2, as used inside [`GhostNetBottleneck`](super::GhostNetBottleneck).
//!
//! A primary `k×k` conv makes half of the output channels ("intrinsic" maps); a 3×3 depth-wise conv of
//! those makes the other half ("ghost" maps); the output is both, concatenated. It computes exactly
//! what [`GhostConv`] computes with a 3×3 cheap conv, so it wraps one. What differs is the state-dict
//! layout, which follows the GhostNet code and the Yolov5-Processing project (`primary_conv`,
//! `cheap_operation`) instead of YOLOv5's GhostConv (`cv1`, `cv2`). Each half is a YOLOv5 Conv-BN-SiLU
//! (the paper uses ReLU), or Conv-BN without activation.

use burn::prelude::*;

use super::ghost_conv::{GhostConv, GhostConvConfig};
use crate::error::WeightsError;
use crate::state::{NamedTensors, TensorVisitor, join};

/// Configuration of a [`GhostModule`].
#[derive(Config, Debug)]
pub struct GhostModuleConfig {
    /// Input channels.
    pub c1: usize,
    /// Output channels (even: half primary, half cheap).
    pub c2: usize,
    /// Kernel of the primary conv.
    #[config(default = 1)]
    pub k: usize,
    /// Stride of the primary conv.
    #[config(default = 1)]
    pub s: usize,
    /// Kernel of the depth-wise cheap conv.
    #[config(default = 3)]
    pub dw_k: usize,
    /// SiLU on both halves (`false` = no activation, the projection module of a bottleneck).
    #[config(default = true)]
    pub act: bool,
}

/// Ghost module. Shapes: `[B, c1, H, W]` → `[B, c2, H/s, W/s]`.
#[derive(Module, Debug)]
pub struct GhostModule {
    /// The computation: `cv1` is the primary conv (`primary_conv`), `cv2` the cheap one
    /// (`cheap_operation`).
    pub ghost: GhostConv,
}

impl GhostModuleConfig {
    /// Builds the module. Panics if `c2` is odd.
    pub fn init(&self, device: &Device) -> GhostModule {
        assert!(self.c2.is_multiple_of(2), "a ghost module needs an even output width, got {}", self.c2);
        let ghost = GhostConvConfig::new(self.c1, self.c2)
            .with_k(self.k)
            .with_s(self.s)
            .with_act(self.act)
            .with_cheap_k(self.dw_k)
            .init(device);
        GhostModule { ghost }
    }
}

impl GhostModule {
    /// Forward pass: `cat(y, cheap(y))` with `y = primary(x)`.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        self.ghost.forward(x)
    }

    /// Output channels.
    pub fn out_channels(&self) -> usize {
        self.ghost.out_channels()
    }

    /// Folds both BNs into their convs.
    pub fn fuse(self) -> Self {
        Self { ghost: self.ghost.fuse() }
    }

    /// thop MACs for an `(h, w)` input; returns the output size too.
    pub fn macs(&self, h: usize, w: usize) -> (f64, (usize, usize)) {
        self.ghost.macs(h, w)
    }

    /// PyTorch module count (the module and its two Convs).
    pub fn torch_modules(&self) -> usize {
        self.ghost.torch_modules()
    }
}

impl NamedTensors for GhostModule {
    fn visit_tensors(&mut self, prefix: &str, v: &mut dyn TensorVisitor) -> Result<(), WeightsError> {
        self.ghost.cv1.visit_tensors(&join(prefix, "primary_conv"), v)?;
        self.ghost.cv2.visit_tensors(&join(prefix, "cheap_operation"), v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::Collector;
    use crate::test_util::{assert_close, device, set_all, tensor4, to_vec};

    #[test]
    fn keys_follow_the_ghostnet_code() {
        let dev = device();
        let mut g = GhostModuleConfig::new(3, 8).init(&dev);
        let mut col = Collector::default();
        g.visit_tensors("m", &mut col).unwrap();
        let keys: Vec<(&str, &[usize])> = col.tensors.iter().map(|(k, s, _)| (k.as_str(), s.as_slice())).collect();
        assert_eq!(keys[0], ("m.primary_conv.conv.weight", &[4, 3, 1, 1][..]));
        assert_eq!(keys[5], ("m.cheap_operation.conv.weight", &[4, 1, 3, 3][..]));
        assert_eq!(keys.len(), 10);
        assert_eq!(g.ghost.cv2.geometry(), (3, 1, 1, 4));
        assert_eq!(g.torch_modules(), 7);
        assert_eq!(GhostModuleConfig::new(3, 8).with_act(false).init(&dev).torch_modules(), 9);
    }

    /// 1 → 2 channels without activation, identity BNs: the primary half is `2·x`, the cheap half a
    /// 3×3 box sum of it.
    #[test]
    fn primary_then_cheap_hand_computed() {
        let dev = device();
        let mut g = GhostModuleConfig::new(1, 2).with_act(false).init(&dev);
        let id_bn = |p: &str| {
            [
                (format!("{p}.bn.weight"), vec![1.0]),
                (format!("{p}.bn.bias"), vec![0.0]),
                (format!("{p}.bn.running_mean"), vec![0.0]),
                (format!("{p}.bn.running_var"), vec![1.0 - 1e-3]),
            ]
        };
        let mut vals: Vec<(String, Vec<f32>)> =
            id_bn("primary_conv").into_iter().chain(id_bn("cheap_operation")).collect();
        vals.push(("primary_conv.conv.weight".into(), vec![2.0]));
        vals.push(("cheap_operation.conv.weight".into(), vec![1.0; 9]));
        let pairs: Vec<(&str, Vec<f32>)> = vals.iter().map(|(k, v)| (k.as_str(), v.clone())).collect();
        set_all(&mut g, &pairs);
        let y = to_vec(g.forward(tensor4(vec![1.0, 2.0, 3.0, 4.0], [1, 1, 2, 2])));
        // primary: 2, 4, 6, 8; cheap (zero padding, every 3×3 window covers all four): 20 each
        assert_close(&y, &[2.0, 4.0, 6.0, 8.0, 20.0, 20.0, 20.0, 20.0], 1e-4);
    }
}
