//! `SPP`: spatial pyramid pooling with parallel max pools (He et al., ECCV 2014; YOLOv3/v5 variant).

use burn::prelude::*;

use super::conv::{Conv, ConvConfig};
use super::pool::max_pool_same;
use crate::error::WeightsError;
use crate::state::{NamedTensors, TensorVisitor, join};

/// Configuration of an [`Spp`].
#[derive(Config, Debug)]
pub struct SppConfig {
    /// Input channels.
    pub c1: usize,
    /// Output channels.
    pub c2: usize,
    /// Pool kernels.
    #[config(default = "vec![5, 9, 13]")]
    pub k: Vec<usize>,
}

/// SPP block. Shapes: `[B, c1, H, W]` → `[B, c2, H, W]`.
#[derive(Module, Debug)]
pub struct Spp {
    /// 1×1 reduction `c1 → c1/2`.
    pub cv1: Conv,
    /// 1×1 fusion `(len(k)+1)·c_ → c2`.
    pub cv2: Conv,
    /// Pool kernels.
    pub k: Vec<usize>,
}

impl SppConfig {
    /// Builds the block.
    pub fn init(&self, device: &Device) -> Spp {
        let c_ = self.c1 / 2;
        Spp {
            cv1: ConvConfig::new(self.c1, c_).init(device),
            cv2: ConvConfig::new(c_ * (self.k.len() + 1), self.c2).init(device),
            k: self.k.clone(),
        }
    }
}

impl Spp {
    /// Forward pass: `cv2(cat(x, pool_k1(x), pool_k2(x), …))` with `x = cv1(input)`.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let x = self.cv1.forward(x);
        let mut parts = vec![x.clone()];
        parts.extend(self.k.iter().map(|&k| max_pool_same(x.clone(), k)));
        self.cv2.forward(Tensor::cat(parts, 1))
    }

    /// Folds every BN into its conv.
    pub fn fuse(self) -> Self {
        Self { cv1: self.cv1.fuse(), cv2: self.cv2.fuse(), k: self.k }
    }

    /// thop MACs (pools count zero).
    pub fn macs(&self, h: usize, w: usize) -> f64 {
        self.cv1.macs(h, w).0 + self.cv2.macs(h, w).0
    }

    /// PyTorch module count (SPP, two Convs, ModuleList of pools).
    pub fn torch_modules(&self) -> usize {
        2 + self.k.len() + self.cv1.torch_modules() + self.cv2.torch_modules()
    }
}

impl NamedTensors for Spp {
    fn visit_tensors(&mut self, prefix: &str, v: &mut dyn TensorVisitor) -> Result<(), WeightsError> {
        self.cv1.visit_tensors(&join(prefix, "cv1"), v)?;
        self.cv2.visit_tensors(&join(prefix, "cv2"), v)
    }
}
