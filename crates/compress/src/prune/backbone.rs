//! [`PrunableBackbone`]: a backbone that describes its channels, so that a [`Detector`] on it can be
//! pruned ([`DetectorGraph`], [`prune_detector`]).
//!
//! A backbone describes itself with the same mechanism as the built-in blocks: each of its blocks
//! through [`ChannelDeps`] (implemented for the specs of every built-in block, for the built
//! [`Conv`], [`Bottleneck`], [`C3`] and [`Sppf`] modules, and implementable for any other block),
//! glued by [`Channels::concat`] for concatenations and [`ChannelGraph::tie`] for residual adds.
//! [`GraphBackbone`] (the backbone of every [`YoloModel`]) implements it through its layer specs.
//!
//! ```ignore
//! impl PrunableBackbone for MyBackbone {
//!     fn channels(&self, g: &mut ChannelGraph, prefix: &str, image: &Channels) -> Vec<Channels> {
//!         let p3 = self.stem.channels(g, &key(prefix, "stem"), std::slice::from_ref(image));
//!         let p4 = self.down4.channels(g, &key(prefix, "down4"), std::slice::from_ref(&p3));
//!         vec![p3, p4]
//!     }
//!     fn resized(&self, width: &dyn Fn(&str) -> usize, _device: &Device) -> Self {
//!         let stem = self.stem.resized(&[3], &under(width, "stem"));
//!         let down4 = self.down4.resized(&[stem.out_channels()], &under(width, "down4"));
//!         MyBackbone { stem, down4 }
//!     }
//! }
//! ```
//!
//! [`Detector`]: yolo_compress_model::Detector
//! [`YoloModel`]: yolo_compress_model::YoloModel
//! [`DetectorGraph`]: super::plan::DetectorGraph
//! [`prune_detector`]: super::surgery::prune_detector
//! [`Channels::concat`]: super::graph::Channels::concat

use burn::prelude::*;
use yolo_compress_model::blocks::{Bottleneck, C3, C3Inner, Conv, Sppf};
use yolo_compress_model::layer::Layer;
use yolo_compress_model::{Backbone, BlockSpec, GraphBackbone};

use super::deps::{ChannelDeps, layers_channels, resized_layers};
use super::graph::{ChannelGraph, Channels};

/// A [`Backbone`] that describes its channel couplings and can be rebuilt at pruned widths.
pub trait PrunableBackbone: Backbone + Sized {
    /// Registers the backbone's tensors and couplings in `g` under the keys its
    /// [`NamedTensors`](yolo_compress_model::state::NamedTensors) walk gives them with `prefix` (a
    /// [`Detector`](yolo_compress_model::Detector) walks its backbone under `model`), given the
    /// image's channels, and returns the channels of each feature [`Backbone::forward`] returns, in
    /// [`Backbone::features`] order. Every space it creates must be labelled `prefix.<name>`,
    /// uniquely.
    fn channels(&self, g: &mut ChannelGraph, prefix: &str, image: &Channels) -> Vec<Channels>;

    /// The same backbone at new widths, freshly initialised on `device`: `width(name)` is the pruned
    /// width of the space [`PrunableBackbone::channels`] labelled `prefix.<name>`.
    fn resized(&self, width: &dyn Fn(&str) -> usize, device: &Device) -> Self;

    /// Channels of the input image (default 3).
    fn image_channels(&self) -> usize {
        3
    }
}

impl PrunableBackbone for GraphBackbone {
    fn channels(&self, g: &mut ChannelGraph, prefix: &str, image: &Channels) -> Vec<Channels> {
        let mut table = Vec::with_capacity(self.specs.len());
        layers_channels(g, prefix, &self.specs, image, &mut table);
        self.taps.iter().map(|&t| table[t].clone()).collect()
    }

    fn resized(&self, width: &dyn Fn(&str) -> usize, device: &Device) -> Self {
        let specs = resized_layers("", &self.specs, self.input_channels, &mut Vec::new(), width);
        GraphBackbone::from_specs(specs, self.input_channels, self.taps.clone(), device)
    }

    fn image_channels(&self) -> usize {
        self.input_channels
    }
}

/// The spec of a built [`C3`] (plain or ghost bottlenecks).
fn c3_spec(c: &C3) -> BlockSpec {
    let first_plain = c.m.iter().find_map(|b| if let C3Inner::Plain(b) = b { Some(b) } else { None });
    BlockSpec::C3 {
        c1: c.cv1.in_channels(),
        c2: c.out_channels(),
        hidden1: c.cv1.out_channels(),
        hidden2: c.cv2.out_channels(),
        inner: c
            .m
            .iter()
            .map(|b| match b {
                C3Inner::Plain(b) => b.cv1.out_channels(),
                C3Inner::Ghost(b) => 2 * b.ghost1.cv1.out_channels(),
            })
            .collect(),
        shortcut: first_plain.is_none_or(|b| b.add),
        g: first_plain.map_or(1, |b| b.cv2.geometry().3),
        ghost: c.m.iter().any(|b| matches!(b, C3Inner::Ghost(_))),
    }
}

/// Implements [`ChannelDeps`] for a built block through its [`BlockSpec`]: `$spec` gives the spec of
/// the block `$m`, `$layer` is its [`Layer`] variant, `$weight` a tensor of it (for the device).
macro_rules! built_block_deps {
    ($($t:ty, $layer:ident, |$m:ident| $spec:expr, $weight:expr;)*) => {$(
        impl ChannelDeps for $t {
            fn channels(&self, g: &mut ChannelGraph, prefix: &str, inputs: &[Channels]) -> Channels {
                let $m = self;
                $spec.channels(g, prefix, inputs)
            }

            /// The block rebuilt at the new widths, freshly initialised on the block's device.
            fn resized(&self, inputs: &[usize], width: &dyn Fn(&str) -> usize) -> Self {
                let $m = self;
                let spec = $spec.resized(inputs, width);
                match Layer::from_spec(&spec, &$weight.device()) {
                    Some(Layer::$layer(b)) => b,
                    _ => unreachable!("a {} spec builds a {} layer", stringify!($t), stringify!($layer)),
                }
            }
        }
    )*};
}

built_block_deps! {
    Conv, Conv, |m| {
        let (k, s, p, g) = m.geometry();
        BlockSpec::Conv { c1: m.in_channels(), c2: m.out_channels(), k, s, p: Some(p), g, act: m.act }
    }, m.conv.weight;
    Bottleneck, Bottleneck, |m| BlockSpec::Bottleneck {
        c1: m.cv1.in_channels(),
        c2: m.cv2.out_channels(),
        hidden: m.cv1.out_channels(),
        shortcut: m.add,
        g: m.cv2.geometry().3,
    }, m.cv1.conv.weight;
    C3, C3, |m| c3_spec(m), m.cv1.conv.weight;
    Sppf, Sppf, |m| BlockSpec::Sppf {
        c1: m.cv1.in_channels(),
        c2: m.cv2.out_channels(),
        hidden: m.cv1.out_channels(),
        k: m.k,
    }, m.cv1.conv.weight;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::prune::deps::under;
    use yolo_compress_model::blocks::{BottleneckConfig, C3Config, C3GhostConfig, ConvConfig, SppfConfig};

    /// A built block's spec rebuilds the same block: resizing to the original widths reproduces
    /// every tensor shape, and the description matches the block's state-dict keys.
    #[test]
    fn built_blocks_round_trip_through_their_specs() {
        use yolo_compress_model::state::{Collector, NamedTensors};
        fn shapes(mut m: impl NamedTensors) -> Vec<(String, Vec<usize>)> {
            let mut c = Collector::default();
            m.visit_tensors("b", &mut c).unwrap();
            c.tensors.into_iter().map(|(k, s, _)| (k, s)).collect()
        }
        fn check<M: ChannelDeps + NamedTensors + Clone>(m: M, c1: usize) {
            let mut g = ChannelGraph::new();
            let x = g.new_space(c1, "x");
            let out = m.channels(&mut g, "b", &[x]);
            let labels: Vec<String> = g.spaces().iter().map(|s| s.label.clone()).collect();
            let width = |name: &str| {
                let label = crate::prune::deps::key("b", name);
                let s = labels.iter().position(|l| *l == label).unwrap_or_else(|| panic!("no {label}"));
                g.spaces()[s].width
            };
            let again = m.resized(&[c1], &under(&width, ""));
            assert_eq!(shapes(again), shapes(m.clone()));
            let keys: Vec<String> = shapes(m).into_iter().map(|(k, _)| k).collect();
            assert!(g.uses().iter().all(|u| keys.contains(&u.key)), "every described key exists");
            assert!(g.width(&out) > 0);
        }
        let d = Device::flex();
        check(ConvConfig::new(6, 10).with_k(3).with_s(2).init(&d), 6);
        check(ConvConfig::new(8, 8).with_k(3).with_g(8).with_act(false).init(&d), 8);
        check(BottleneckConfig::new(8, 8).with_e(0.75).init(&d), 8);
        check(C3Config::new(6, 12).with_n(2).init(&d), 6);
        check(C3Config::new(6, 12).with_shortcut(false).init(&d), 6);
        check(C3GhostConfig::new(6, 16).init(&d), 6);
        check(SppfConfig::new(8, 6).init(&d), 8);
    }
}
