//! [`Layer`]: one row of a YOLOv5 graph, built from its [`BlockSpec`].

use burn::prelude::*;

use crate::arch::BlockSpec;
use crate::blocks::{
    Bottleneck, BottleneckConfig, C3, C3Inner, Conv, ConvConfig, Focus, FocusConfig, GhostBottleneck,
    GhostBottleneckConfig, GhostConv, GhostConvConfig, GhostNetBottleneck, GhostNetBottleneckConfig, Spp, SppConfig,
    Sppf, SppfConfig, concat, upsample_nearest,
};
use crate::error::WeightsError;
use crate::state::{NamedTensors, TensorVisitor};

/// One non-head layer of a graph.
// Layers are built once per model: the size difference between variants costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Module, Debug)]
pub enum Layer {
    /// Conv / DWConv.
    Conv(Conv),
    /// Focus.
    Focus(Focus),
    /// Bottleneck.
    Bottleneck(Bottleneck),
    /// C3 / C3Ghost.
    C3(C3),
    /// SPP.
    Spp(Spp),
    /// SPPF.
    Sppf(Sppf),
    /// GhostConv.
    GhostConv(GhostConv),
    /// GhostBottleneck.
    GhostBottleneck(GhostBottleneck),
    /// GhostNetBottleneck (GhostNet backbone).
    GhostNetBottleneck(GhostNetBottleneck),
    /// Nearest upsampling by the given factor.
    Upsample(usize),
    /// Channel concatenation of all inputs (the value is unused).
    Concat(usize),
}

impl Layer {
    /// Builds a layer from its spec. Returns `None` for Detect (built separately).
    pub fn from_spec(spec: &BlockSpec, device: &Device) -> Option<Layer> {
        Some(match spec {
            &BlockSpec::Conv { c1, c2, k, s, p, g, act } => {
                Layer::Conv(ConvConfig::new(c1, c2).with_k(k).with_s(s).with_p(p).with_g(g).with_act(act).init(device))
            }
            &BlockSpec::Focus { c1, c2, k, s } => {
                Layer::Focus(FocusConfig::new(c1, c2).with_k(k).with_s(s).init(device))
            }
            &BlockSpec::Bottleneck { c1, c2, hidden, shortcut, g } => Layer::Bottleneck(
                BottleneckConfig::new(c1, c2).with_hidden(Some(hidden)).with_shortcut(shortcut).with_g(g).init(device),
            ),
            BlockSpec::C3 { c1, c2, hidden1, hidden2, inner, shortcut, g, ghost } => {
                let m = inner
                    .iter()
                    .map(|&h| {
                        if *ghost {
                            C3Inner::Ghost(
                                GhostBottleneckConfig::new(*hidden1, *hidden1).with_hidden(Some(h)).init(device),
                            )
                        } else {
                            C3Inner::Plain(
                                BottleneckConfig::new(*hidden1, *hidden1)
                                    .with_hidden(Some(h))
                                    .with_shortcut(*shortcut)
                                    .with_g(*g)
                                    .init(device),
                            )
                        }
                    })
                    .collect();
                Layer::C3(C3::from_parts(*c1, *hidden1, *hidden2, *c2, m, device))
            }
            BlockSpec::Spp { c1, c2, k } => Layer::Spp(SppConfig::new(*c1, *c2).with_k(k.clone()).init(device)),
            &BlockSpec::Sppf { c1, c2, hidden, k } => {
                Layer::Sppf(SppfConfig::new(c1, c2).with_k(k).with_hidden(Some(hidden)).init(device))
            }
            &BlockSpec::GhostConv { c1, c2, k, s, g, act } => {
                Layer::GhostConv(GhostConvConfig::new(c1, c2).with_k(k).with_s(s).with_g(g).with_act(act).init(device))
            }
            &BlockSpec::GhostBottleneck { c1, c2, hidden, k, s } => Layer::GhostBottleneck(
                GhostBottleneckConfig::new(c1, c2).with_k(k).with_s(s).with_hidden(Some(hidden)).init(device),
            ),
            &BlockSpec::GhostNetBottleneck { c1, c2, hidden, k, se, s } => Layer::GhostNetBottleneck(
                GhostNetBottleneckConfig::new(c1, c2, hidden).with_k(k).with_se(se).with_s(s).init(device),
            ),
            &BlockSpec::Upsample { scale } => Layer::Upsample(scale),
            BlockSpec::Concat => Layer::Concat(1),
            BlockSpec::Detect { .. } => return None,
        })
    }

    /// Forward pass on the layer's inputs (one, or several for Concat).
    pub fn forward(&self, mut xs: Vec<Tensor<4>>) -> Tensor<4> {
        if let Layer::Concat(_) = self {
            return concat(xs);
        }
        let x = xs.swap_remove(0);
        match self {
            Layer::Conv(m) => m.forward(x),
            Layer::Focus(m) => m.forward(x),
            Layer::Bottleneck(m) => m.forward(x),
            Layer::C3(m) => m.forward(x),
            Layer::Spp(m) => m.forward(x),
            Layer::Sppf(m) => m.forward(x),
            Layer::GhostConv(m) => m.forward(x),
            Layer::GhostBottleneck(m) => m.forward(x),
            Layer::GhostNetBottleneck(m) => m.forward(x),
            Layer::Upsample(s) => upsample_nearest(x, *s),
            Layer::Concat(_) => unreachable!(),
        }
    }

    /// Folds every BN into its conv.
    pub fn fuse(self) -> Self {
        match self {
            Layer::Conv(m) => Layer::Conv(m.fuse()),
            Layer::Focus(m) => Layer::Focus(m.fuse()),
            Layer::Bottleneck(m) => Layer::Bottleneck(m.fuse()),
            Layer::C3(m) => Layer::C3(m.fuse()),
            Layer::Spp(m) => Layer::Spp(m.fuse()),
            Layer::Sppf(m) => Layer::Sppf(m.fuse()),
            Layer::GhostConv(m) => Layer::GhostConv(m.fuse()),
            Layer::GhostBottleneck(m) => Layer::GhostBottleneck(m.fuse()),
            Layer::GhostNetBottleneck(m) => Layer::GhostNetBottleneck(m.fuse()),
            other => other,
        }
    }

    /// thop MACs given the input sizes `(c, h, w)` of each input; nearest upsampling counts one op
    /// per output element, concatenation and pooling none.
    pub fn macs(&self, inputs: &[(usize, usize, usize)]) -> f64 {
        let (c, h, w) = inputs[0];
        match self {
            Layer::Conv(m) => m.macs(h, w).0,
            Layer::Focus(m) => m.conv.macs(h / 2, w / 2).0,
            Layer::Bottleneck(m) => m.macs(h, w),
            Layer::C3(m) => m.macs(h, w),
            Layer::Spp(m) => m.macs(h, w),
            Layer::Sppf(m) => m.macs(h, w),
            Layer::GhostConv(m) => m.macs(h, w).0,
            Layer::GhostBottleneck(m) => m.macs(h, w).0,
            Layer::GhostNetBottleneck(m) => m.macs(h, w).0,
            Layer::Upsample(s) => (c * h * s * w * s) as f64,
            Layer::Concat(_) => 0.0,
        }
    }

    /// Number of PyTorch modules ultralytics builds for this layer.
    pub fn torch_modules(&self) -> usize {
        match self {
            Layer::Conv(m) => m.torch_modules(),
            Layer::Focus(m) => 1 + m.conv.torch_modules(),
            Layer::Bottleneck(m) => m.torch_modules(),
            Layer::C3(m) => m.torch_modules(),
            Layer::Spp(m) => m.torch_modules(),
            Layer::Sppf(m) => m.torch_modules(),
            Layer::GhostConv(m) => m.torch_modules(),
            Layer::GhostBottleneck(m) => m.torch_modules(),
            Layer::GhostNetBottleneck(m) => m.torch_modules(),
            Layer::Upsample(_) | Layer::Concat(_) => 1,
        }
    }
}

impl NamedTensors for Layer {
    fn visit_tensors(&mut self, prefix: &str, v: &mut dyn TensorVisitor) -> Result<(), WeightsError> {
        match self {
            Layer::Conv(m) => m.visit_tensors(prefix, v),
            Layer::Focus(m) => m.visit_tensors(prefix, v),
            Layer::Bottleneck(m) => m.visit_tensors(prefix, v),
            Layer::C3(m) => m.visit_tensors(prefix, v),
            Layer::Spp(m) => m.visit_tensors(prefix, v),
            Layer::Sppf(m) => m.visit_tensors(prefix, v),
            Layer::GhostConv(m) => m.visit_tensors(prefix, v),
            Layer::GhostBottleneck(m) => m.visit_tensors(prefix, v),
            Layer::GhostNetBottleneck(m) => m.visit_tensors(prefix, v),
            Layer::Upsample(_) | Layer::Concat(_) => Ok(()),
        }
    }
}
