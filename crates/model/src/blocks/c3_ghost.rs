//! `C3Ghost`: a [`C3`] whose bottlenecks are [`GhostBottleneck`](super::GhostBottleneck)s (ultralytics hub `yolov5s-ghost`).
//! The `shortcut` argument of the YAML row is accepted but, as in YOLOv5 7.0, ghost bottlenecks always
//! add their shortcut.

use burn::prelude::*;

use super::c3::{C3, C3Inner};
use super::ghost_bottleneck::GhostBottleneckConfig;

/// Configuration of a ghost [`C3`].
#[derive(Config, Debug)]
pub struct C3GhostConfig {
    /// Input channels.
    pub c1: usize,
    /// Output channels.
    pub c2: usize,
    /// Number of ghost bottlenecks.
    #[config(default = 1)]
    pub n: usize,
    /// Hidden expansion: `c_ = floor(c2·e)`.
    #[config(default = 0.5)]
    pub e: f64,
}

impl C3GhostConfig {
    /// Builds the block. Shapes: `[B, c1, H, W]` → `[B, c2, H, W]`.
    pub fn init(&self, device: &Device) -> C3 {
        let c_ = (self.c2 as f64 * self.e) as usize;
        let m = (0..self.n).map(|_| C3Inner::Ghost(GhostBottleneckConfig::new(c_, c_).init(device))).collect();
        C3::from_parts(self.c1, c_, c_, self.c2, m, device)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::device;

    #[test]
    fn uses_ghost_bottlenecks() {
        let dev = device();
        let c = C3GhostConfig::new(16, 32).with_n(2).init(&dev);
        assert!(c.m.iter().all(|b| matches!(b, C3Inner::Ghost(_))));
        assert_eq!(c.forward(Tensor::zeros([1, 16, 4, 4], &dev)).dims(), [1, 32, 4, 4]);
        // C3 (1) + 3 Convs (3 each) + Sequential (1) + 2 × GhostBottleneck(stride 1) (1+1+7+1+9+1 = 20)
        assert_eq!(c.torch_modules(), 1 + 9 + 1 + 2 * 20);
    }
}
