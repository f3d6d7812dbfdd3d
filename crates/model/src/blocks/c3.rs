//! `C3`: a CSP bottleneck with three convolutions (Wang et al., "CSPNet", CVPRW 2020; YOLOv5 v4+).
//!
//! `cv1` and `cv2` project the input to `c_ = c2·e` channels each; `n` bottlenecks run on the `cv1`
//! branch; `cv3` fuses `cat(m(cv1(x)), cv2(x))` to `c2` channels. The bottlenecks are plain
//! [`Bottleneck`]s, or [`GhostBottleneck`]s for `C3Ghost` (see [`super::c3_ghost`]).

use burn::prelude::*;

use super::bottleneck::{Bottleneck, BottleneckConfig};
use super::conv::{Conv, ConvConfig};
use super::ghost_bottleneck::GhostBottleneck;
use crate::error::WeightsError;
use crate::state::{NamedTensors, TensorVisitor, join};

/// Configuration of a [`C3`] with plain bottlenecks.
#[derive(Config, Debug)]
pub struct C3Config {
    /// Input channels.
    pub c1: usize,
    /// Output channels.
    pub c2: usize,
    /// Number of bottlenecks.
    #[config(default = 1)]
    pub n: usize,
    /// Residual connections inside the bottlenecks.
    #[config(default = true)]
    pub shortcut: bool,
    /// Groups of the bottlenecks' 3×3 convs.
    #[config(default = 1)]
    pub g: usize,
    /// Hidden expansion: `c_ = floor(c2·e)`.
    #[config(default = 0.5)]
    pub e: f64,
}

/// One bottleneck inside a C3.
// Blocks are built once per model: the size difference between variants costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Module, Debug)]
pub enum C3Inner {
    /// A plain [`Bottleneck`] (C3).
    Plain(Bottleneck),
    /// A [`GhostBottleneck`] (C3Ghost).
    Ghost(GhostBottleneck),
}

/// The C3 block. Shapes: `[B, c1, H, W]` → `[B, c2, H, W]`.
#[derive(Module, Debug)]
pub struct C3 {
    /// 1×1 conv of the bottleneck branch, `c1 → c_`.
    pub cv1: Conv,
    /// 1×1 conv of the bypass branch, `c1 → c_`.
    pub cv2: Conv,
    /// 1×1 fusion conv, `2·c_ → c2`.
    pub cv3: Conv,
    /// The bottlenecks, `c_ → c_`.
    pub m: Vec<C3Inner>,
}

impl C3Config {
    /// Builds the block.
    pub fn init(&self, device: &Device) -> C3 {
        let c_ = (self.c2 as f64 * self.e) as usize;
        let m = (0..self.n)
            .map(|_| {
                C3Inner::Plain(
                    BottleneckConfig::new(c_, c_).with_shortcut(self.shortcut).with_g(self.g).with_e(1.0).init(device),
                )
            })
            .collect();
        C3::from_parts(self.c1, c_, c_, self.c2, m, device)
    }
}

impl C3 {
    /// Builds a C3 around given bottlenecks: `cv1: c1 → h1`, `cv2: c1 → h2`, `cv3: h1 + h2 → c2`.
    pub fn from_parts(c1: usize, h1: usize, h2: usize, c2: usize, m: Vec<C3Inner>, device: &Device) -> C3 {
        C3 {
            cv1: ConvConfig::new(c1, h1).init(device),
            cv2: ConvConfig::new(c1, h2).init(device),
            cv3: ConvConfig::new(h1 + h2, c2).init(device),
            m,
        }
    }

    /// Forward pass.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let mut y = self.cv1.forward(x.clone());
        for b in &self.m {
            y = match b {
                C3Inner::Plain(b) => b.forward(y),
                C3Inner::Ghost(b) => b.forward(y),
            };
        }
        self.cv3.forward(Tensor::cat(vec![y, self.cv2.forward(x)], 1))
    }

    /// Output channels.
    pub fn out_channels(&self) -> usize {
        self.cv3.out_channels()
    }

    /// Folds every BN into its conv.
    pub fn fuse(self) -> Self {
        Self {
            cv1: self.cv1.fuse(),
            cv2: self.cv2.fuse(),
            cv3: self.cv3.fuse(),
            m: self
                .m
                .into_iter()
                .map(|b| match b {
                    C3Inner::Plain(b) => C3Inner::Plain(b.fuse()),
                    C3Inner::Ghost(b) => C3Inner::Ghost(b.fuse()),
                })
                .collect(),
        }
    }

    /// thop MACs for an `(h, w)` input.
    pub fn macs(&self, h: usize, w: usize) -> f64 {
        let inner: f64 = self
            .m
            .iter()
            .map(|b| match b {
                C3Inner::Plain(b) => b.macs(h, w),
                C3Inner::Ghost(b) => b.macs(h, w).0,
            })
            .sum();
        self.cv1.macs(h, w).0 + self.cv2.macs(h, w).0 + self.cv3.macs(h, w).0 + inner
    }

    /// PyTorch module count (C3, three Convs, the `m` Sequential and its bottlenecks).
    pub fn torch_modules(&self) -> usize {
        let inner: usize = self
            .m
            .iter()
            .map(|b| match b {
                C3Inner::Plain(b) => b.torch_modules(),
                C3Inner::Ghost(b) => b.torch_modules(),
            })
            .sum();
        1 + self.cv1.torch_modules() + self.cv2.torch_modules() + self.cv3.torch_modules() + 1 + inner
    }
}

impl NamedTensors for C3 {
    fn visit_tensors(&mut self, prefix: &str, v: &mut dyn TensorVisitor) -> Result<(), WeightsError> {
        self.cv1.visit_tensors(&join(prefix, "cv1"), v)?;
        self.cv2.visit_tensors(&join(prefix, "cv2"), v)?;
        self.cv3.visit_tensors(&join(prefix, "cv3"), v)?;
        for (j, b) in self.m.iter_mut().enumerate() {
            let p = join(prefix, &format!("m.{j}"));
            match b {
                C3Inner::Plain(b) => b.visit_tensors(&p, v)?,
                C3Inner::Ghost(b) => b.visit_tensors(&p, v)?,
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::{assert_close, device, to_vec};

    #[test]
    fn widths_and_repeats() {
        let dev = device();
        let c = C3Config::new(16, 32).with_n(3).init(&dev);
        assert_eq!((c.cv1.out_channels(), c.cv2.out_channels(), c.cv3.in_channels()), (16, 16, 32));
        assert_eq!(c.m.len(), 3);
        assert_eq!(c.forward(Tensor::zeros([1, 16, 4, 6], &dev)).dims(), [1, 32, 4, 6]);
    }

    /// The forward equals the composition written out by hand.
    #[test]
    fn forward_is_cv3_of_concat() {
        let dev = device();
        let c = C3Config::new(4, 8).with_n(2).with_shortcut(false).init(&dev);
        let x = Tensor::<4>::random([1, 4, 5, 3], burn::tensor::Distribution::Default, &dev);
        let C3Inner::Plain(b0) = &c.m[0] else { unreachable!() };
        let C3Inner::Plain(b1) = &c.m[1] else { unreachable!() };
        assert!(!b0.add);
        let a = b1.forward(b0.forward(c.cv1.forward(x.clone())));
        let want = c.cv3.forward(Tensor::cat(vec![a, c.cv2.forward(x.clone())], 1));
        assert_close(&to_vec(c.forward(x)), &to_vec(want), 1e-6);
    }
}
