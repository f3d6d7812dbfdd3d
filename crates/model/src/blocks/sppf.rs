//! `SPPF`: fast spatial pyramid pooling, equivalent to SPP(5, 9, 13) through three chained 5×5 max
//! pools (YOLOv5 v6; He et al., "Spatial Pyramid Pooling", ECCV 2014).

use burn::prelude::*;

use super::conv::{Conv, ConvConfig};
use super::pool::max_pool_same;
use crate::error::WeightsError;
use crate::state::{NamedTensors, TensorVisitor, join};

/// Configuration of an [`Sppf`].
#[derive(Config, Debug)]
pub struct SppfConfig {
    /// Input channels.
    pub c1: usize,
    /// Output channels.
    pub c2: usize,
    /// Pool kernel.
    #[config(default = 5)]
    pub k: usize,
    /// Explicit hidden width (default `c1 / 2`).
    #[config(default = "None")]
    pub hidden: Option<usize>,
}

/// SPPF block. Shapes: `[B, c1, H, W]` → `[B, c2, H, W]`.
#[derive(Module, Debug)]
pub struct Sppf {
    /// 1×1 reduction `c1 → c_`.
    pub cv1: Conv,
    /// 1×1 fusion `4·c_ → c2`.
    pub cv2: Conv,
    /// Pool kernel.
    pub k: usize,
}

impl SppfConfig {
    /// Builds the block.
    pub fn init(&self, device: &Device) -> Sppf {
        let c_ = self.hidden.unwrap_or(self.c1 / 2);
        Sppf {
            cv1: ConvConfig::new(self.c1, c_).init(device),
            cv2: ConvConfig::new(c_ * 4, self.c2).init(device),
            k: self.k,
        }
    }
}

impl Sppf {
    /// Forward pass: `cv2(cat(x, m(x), m(m(x)), m(m(m(x)))))` with `x = cv1(input)`.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let x = self.cv1.forward(x);
        let y1 = max_pool_same(x.clone(), self.k);
        let y2 = max_pool_same(y1.clone(), self.k);
        let y3 = max_pool_same(y2.clone(), self.k);
        self.cv2.forward(Tensor::cat(vec![x, y1, y2, y3], 1))
    }

    /// Folds every BN into its conv.
    pub fn fuse(self) -> Self {
        Self { cv1: self.cv1.fuse(), cv2: self.cv2.fuse(), k: self.k }
    }

    /// thop MACs (pools count zero).
    pub fn macs(&self, h: usize, w: usize) -> f64 {
        self.cv1.macs(h, w).0 + self.cv2.macs(h, w).0
    }

    /// PyTorch module count (SPPF, two Convs, one MaxPool2d).
    pub fn torch_modules(&self) -> usize {
        2 + self.cv1.torch_modules() + self.cv2.torch_modules()
    }
}

impl NamedTensors for Sppf {
    fn visit_tensors(&mut self, prefix: &str, v: &mut dyn TensorVisitor) -> Result<(), WeightsError> {
        self.cv1.visit_tensors(&join(prefix, "cv1"), v)?;
        self.cv2.visit_tensors(&join(prefix, "cv2"), v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::blocks::spp::SppConfig;
    use crate::state::{Collector, NamedTensors};
    use crate::test_util::{assert_close, device, set_all, to_vec};

    /// SPPF(5) equals SPP(5, 9, 13) with the same weights (the reason SPPF exists).
    #[test]
    fn sppf_equals_spp_5_9_13() {
        let dev = device();
        let mut a = SppfConfig::new(8, 6).init(&dev);
        let mut b = SppConfig::new(8, 6).init(&dev);
        let mut col = Collector::default();
        a.visit_tensors("", &mut col).unwrap();
        let pairs: Vec<(&str, Vec<f32>)> = col.tensors.iter().map(|(k, _, v)| (k.as_str(), v.clone())).collect();
        set_all(&mut b, &pairs);
        let x = Tensor::<4>::random([1, 8, 11, 7], burn::tensor::Distribution::Default, &dev);
        assert_close(&to_vec(a.forward(x.clone())), &to_vec(b.forward(x)), 1e-5);
    }
}
