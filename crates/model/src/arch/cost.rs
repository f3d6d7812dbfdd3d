//! Analytic cost model: parameter counts and thop MACs of an [`Architecture`] from its layer specs
//! alone, without building a model or touching a tensor (pure arithmetic, for pruning searches).
//!
//! The numbers are exactly those of a freshly built, unfused model
//! ([`Detector::num_params`](crate::Detector::num_params), [`Detector::macs`](crate::Detector::macs),
//! hence [`ModelInfo::of`](crate::info::ModelInfo::of)):
//!
//! - a `Conv` (Conv2d without bias + BN) has `c2·(c1/g)·k²` weights plus BN's `γ, β` (`2·c2`); its
//!   MACs are `n·(c1/g)·k² + 4·n` for `n = c2·h'·w'` output elements (thop counts BN as 4 per element),
//!   with `h' = (h + 2p − k)/s + 1`;
//! - a layer reading layer `j` sees a `(h / stride_j) × (w / stride_j)` map (integer division, as the
//!   model's MAC count does), layer 0 the image; inside a block sizes follow the conv formula above;
//! - squeeze-excite: two 1×1 convs with biases, MACs `(h·w + 1)·c + 2·c·r`;
//! - nearest upsampling: one MAC per output element; concatenation and pooling: none;
//! - Detect: one 1×1 conv with bias per level, MACs `co·ci·h·w` (bias not counted).

use super::{Architecture, BlockSpec};
use crate::blocks::dwconv::gcd;

/// `a / b`, or 0 when `b == 0` (a malformed spec gives zero cost instead of a panic).
fn div(a: usize, b: usize) -> usize {
    a.checked_div(b).unwrap_or(0)
}

/// One `Conv` block (Conv2d without bias → BN → optional act) as [`ConvConfig`](crate::blocks::ConvConfig)
/// builds it.
#[derive(Clone, Copy)]
struct ConvCost {
    c1: usize,
    c2: usize,
    k: usize,
    s: usize,
    p: usize,
    g: usize,
}

impl ConvCost {
    fn new(c1: usize, c2: usize, k: usize, s: usize, p: usize, g: usize) -> Self {
        ConvCost { c1, c2, k, s, p, g }
    }

    /// 1×1, stride 1, no groups.
    fn pointwise(c1: usize, c2: usize) -> Self {
        Self::new(c1, c2, 1, 1, 0, 1)
    }

    /// Weights and BN `γ, β`.
    fn params(self) -> usize {
        self.c2 * div(self.c1, self.g) * self.k * self.k + 2 * self.c2
    }

    /// Output length along one axis, 0 when the kernel does not fit.
    fn out(self, x: usize) -> usize {
        (x + 2 * self.p).checked_sub(self.k).and_then(|d| d.checked_div(self.s)).map_or(0, |q| q + 1)
    }

    /// MACs (conv + BN) on an `h × w` input, and the output size.
    fn macs(self, h: usize, w: usize) -> (f64, usize, usize) {
        let (ho, wo) = (self.out(h), self.out(w));
        let numel = (self.c2 * ho * wo) as f64;
        (numel * (div(self.c1, self.g) * self.k * self.k) as f64 + 4.0 * numel, ho, wo)
    }
}

/// A `GhostConv` / `GhostModule`: primary conv `c1 → c2/2`, then a depth-wise cheap conv of those.
#[derive(Clone, Copy)]
struct GhostCost {
    primary: ConvCost,
    cheap: ConvCost,
}

impl GhostCost {
    fn new(c1: usize, c2: usize, k: usize, s: usize, g: usize, cheap_k: usize) -> Self {
        let c_ = c2 / 2;
        GhostCost {
            primary: ConvCost::new(c1, c_, k, s, k / 2, g),
            cheap: ConvCost::new(c_, c_, cheap_k, 1, cheap_k / 2, c_),
        }
    }

    fn params(self) -> usize {
        self.primary.params() + self.cheap.params()
    }

    fn macs(self, h: usize, w: usize) -> (f64, usize, usize) {
        let (m1, ho, wo) = self.primary.macs(h, w);
        (m1 + self.cheap.macs(ho, wo).0, ho, wo)
    }
}

/// The parts of a ghost bottleneck (YOLOv5's or GhostNet's): first ghost module, optional strided
/// depth-wise conv, optional squeeze-excite `(channels, reduced)`, second ghost module, optional
/// projection shortcut (depth-wise conv, then 1×1 conv).
struct GhostBottleneckCost {
    ghost1: GhostCost,
    dw: Option<ConvCost>,
    se: Option<(usize, usize)>,
    ghost2: GhostCost,
    shortcut: Option<(ConvCost, ConvCost)>,
}

impl GhostBottleneckCost {
    /// YOLOv5 7.0's `GhostBottleneck` ([`GhostBottleneckConfig`](crate::blocks::GhostBottleneckConfig)).
    fn yolov5(c1: usize, c2: usize, hidden: usize, k: usize, s: usize) -> Self {
        let stride2 = s == 2;
        GhostBottleneckCost {
            ghost1: GhostCost::new(c1, hidden, 1, 1, 1, 5),
            dw: stride2.then(|| ConvCost::new(hidden, hidden, k, s, k / 2, gcd(hidden, hidden))),
            se: None,
            ghost2: GhostCost::new(hidden, c2, 1, 1, 1, 5),
            shortcut: stride2.then(|| (ConvCost::new(c1, c1, k, s, k / 2, gcd(c1, c1)), ConvCost::pointwise(c1, c2))),
        }
    }

    /// GhostNet's bottleneck ([`GhostNetBottleneckConfig`](crate::blocks::GhostNetBottleneckConfig)).
    fn ghostnet(c1: usize, c2: usize, hidden: usize, k: usize, se: usize, s: usize) -> Self {
        let dw = |c: usize| ConvCost::new(c, c, k, s, k.saturating_sub(1) / 2, c);
        GhostBottleneckCost {
            ghost1: GhostCost::new(c1, hidden, 1, 1, 1, 3),
            dw: (s == 2).then(|| dw(hidden)),
            se: (se > 0).then_some((hidden, se)),
            ghost2: GhostCost::new(hidden, c2, 1, 1, 1, 3),
            shortcut: (c1 != c2 || s != 1).then(|| (dw(c1), ConvCost::pointwise(c1, c2))),
        }
    }

    fn params(&self) -> usize {
        self.ghost1.params()
            + self.dw.map_or(0, ConvCost::params)
            + self.se.map_or(0, |(c, r)| c * r + r + r * c + c)
            + self.ghost2.params()
            + self.shortcut.map_or(0, |(dw, pw)| dw.params() + pw.params())
    }

    fn macs(&self, h: usize, w: usize) -> f64 {
        let (mut m, mut ho, mut wo) = self.ghost1.macs(h, w);
        if let Some(dw) = self.dw {
            let (md, h2, w2) = dw.macs(ho, wo);
            (m, ho, wo) = (m + md, h2, w2);
        }
        if let Some((c, r)) = self.se {
            m += ((ho * wo + 1) * c + 2 * c * r) as f64;
        }
        m += self.ghost2.macs(ho, wo).0;
        if let Some((dw, pw)) = self.shortcut {
            let (md, h2, w2) = dw.macs(h, w);
            m += md + pw.macs(h2, w2).0;
        }
        m
    }
}

/// A plain `Bottleneck`: 1×1 `c1 → hidden`, 3×3 `hidden → c2` with groups `g`.
fn bottleneck(c1: usize, c2: usize, hidden: usize, g: usize) -> [ConvCost; 2] {
    [ConvCost::pointwise(c1, hidden), ConvCost::new(hidden, c2, 3, 1, 1, g)]
}

/// The convs of a `C3`'s three projections: `cv1: c1 → h1`, `cv2: c1 → h2`, `cv3: h1 + h2 → c2`.
fn c3_convs(c1: usize, c2: usize, h1: usize, h2: usize) -> [ConvCost; 3] {
    [ConvCost::pointwise(c1, h1), ConvCost::pointwise(c1, h2), ConvCost::pointwise(h1 + h2, c2)]
}

/// Anchors per level and outputs per anchor-level conv of a Detect head.
fn detect_outputs(nc: usize, anchors: &[Vec<[f32; 2]>]) -> usize {
    anchors.first().map_or(0, Vec::len) * (nc + 5)
}

impl BlockSpec {
    /// Trainable parameters of the block as built (unfused: conv weights without bias plus BN `γ, β`;
    /// squeeze-excite and Detect convs with biases; BN running statistics and Detect anchors excluded),
    /// equal to what [`Detector::num_params`](crate::Detector::num_params) counts for the layer.
    pub fn params(&self) -> usize {
        match self {
            &BlockSpec::Conv { c1, c2, k, s, p, g, .. } => ConvCost::new(c1, c2, k, s, p.unwrap_or(k / 2), g).params(),
            &BlockSpec::Focus { c1, c2, k, s } => ConvCost::new(4 * c1, c2, k, s, k / 2, 1).params(),
            &BlockSpec::Bottleneck { c1, c2, hidden, g, .. } => {
                bottleneck(c1, c2, hidden, g).map(ConvCost::params).iter().sum()
            }
            BlockSpec::C3 { c1, c2, hidden1, hidden2, inner, g, ghost, .. } => {
                let outer: usize = c3_convs(*c1, *c2, *hidden1, *hidden2).map(ConvCost::params).iter().sum();
                let m: usize = inner
                    .iter()
                    .map(|&h| {
                        if *ghost {
                            GhostBottleneckCost::yolov5(*hidden1, *hidden1, h, 3, 1).params()
                        } else {
                            bottleneck(*hidden1, *hidden1, h, *g).map(ConvCost::params).iter().sum()
                        }
                    })
                    .sum();
                outer + m
            }
            BlockSpec::Spp { c1, c2, k } => {
                let c_ = c1 / 2;
                ConvCost::pointwise(*c1, c_).params() + ConvCost::pointwise(c_ * (k.len() + 1), *c2).params()
            }
            &BlockSpec::Sppf { c1, c2, hidden, .. } => {
                ConvCost::pointwise(c1, hidden).params() + ConvCost::pointwise(4 * hidden, c2).params()
            }
            &BlockSpec::GhostConv { c1, c2, k, s, g, .. } => GhostCost::new(c1, c2, k, s, g, 5).params(),
            &BlockSpec::GhostBottleneck { c1, c2, hidden, k, s } => {
                GhostBottleneckCost::yolov5(c1, c2, hidden, k, s).params()
            }
            &BlockSpec::GhostNetBottleneck { c1, c2, hidden, k, se, s } => {
                GhostBottleneckCost::ghostnet(c1, c2, hidden, k, se, s).params()
            }
            BlockSpec::Upsample { .. } | BlockSpec::Concat => 0,
            BlockSpec::Detect { nc, anchors, strides, ch } => {
                let co = detect_outputs(*nc, anchors);
                ch.iter().zip(strides).map(|(&ci, _)| co * ci + co).sum()
            }
        }
    }

    /// thop MACs of the block given the `(channels, height, width)` of each of its inputs, as
    /// [`Layer::macs`](crate::layer::Layer::macs) counts them (Detect: one input per level; every
    /// other block reads the first input only). No inputs: 0.
    pub fn macs(&self, inputs: &[(usize, usize, usize)]) -> f64 {
        let Some(&(c, h, w)) = inputs.first() else { return 0.0 };
        let sum = |convs: &[ConvCost], h: usize, w: usize| convs.iter().map(|cv| cv.macs(h, w).0).sum::<f64>();
        match self {
            &BlockSpec::Conv { c1, c2, k, s, p, g, .. } => {
                ConvCost::new(c1, c2, k, s, p.unwrap_or(k / 2), g).macs(h, w).0
            }
            &BlockSpec::Focus { c1, c2, k, s } => ConvCost::new(4 * c1, c2, k, s, k / 2, 1).macs(h / 2, w / 2).0,
            &BlockSpec::Bottleneck { c1, c2, hidden, g, .. } => sum(&bottleneck(c1, c2, hidden, g), h, w),
            BlockSpec::C3 { c1, c2, hidden1, hidden2, inner, g, ghost, .. } => {
                let m: f64 = inner
                    .iter()
                    .map(|&hid| {
                        if *ghost {
                            GhostBottleneckCost::yolov5(*hidden1, *hidden1, hid, 3, 1).macs(h, w)
                        } else {
                            sum(&bottleneck(*hidden1, *hidden1, hid, *g), h, w)
                        }
                    })
                    .sum();
                sum(&c3_convs(*c1, *c2, *hidden1, *hidden2), h, w) + m
            }
            BlockSpec::Spp { c1, c2, k } => {
                let c_ = c1 / 2;
                sum(&[ConvCost::pointwise(*c1, c_), ConvCost::pointwise(c_ * (k.len() + 1), *c2)], h, w)
            }
            &BlockSpec::Sppf { c1, c2, hidden, .. } => {
                sum(&[ConvCost::pointwise(c1, hidden), ConvCost::pointwise(4 * hidden, c2)], h, w)
            }
            &BlockSpec::GhostConv { c1, c2, k, s, g, .. } => GhostCost::new(c1, c2, k, s, g, 5).macs(h, w).0,
            &BlockSpec::GhostBottleneck { c1, c2, hidden, k, s } => {
                GhostBottleneckCost::yolov5(c1, c2, hidden, k, s).macs(h, w)
            }
            &BlockSpec::GhostNetBottleneck { c1, c2, hidden, k, se, s } => {
                GhostBottleneckCost::ghostnet(c1, c2, hidden, k, se, s).macs(h, w)
            }
            &BlockSpec::Upsample { scale } => (c * h * scale * w * scale) as f64,
            BlockSpec::Concat => 0.0,
            BlockSpec::Detect { nc, anchors, strides, ch } => {
                let co = detect_outputs(*nc, anchors);
                ch.iter().zip(strides).zip(inputs).map(|((&ci, _), &(_, h, w))| (co * h * w * ci) as f64).sum()
            }
        }
    }
}

impl Architecture {
    /// `(channels, height, width)` that layer `i` reads through its `from` entry `f` for an
    /// `height × width` image: the image for layer 0's `-1`, else the source layer's output at
    /// `height / stride` × `width / stride` (a source that does not exist reads as empty).
    fn input_shape(&self, i: usize, f: i64, height: usize, width: usize) -> (usize, usize, usize) {
        if i == 0 && f == -1 {
            return (self.input_channels, height, width);
        }
        self.layers
            .get(Architecture::source(i, f))
            .map_or((0, 0, 0), |s| (s.out_channels, div(height, s.stride), div(width, s.stride)))
    }

    /// MACs of layer `i`, reusing `scratch` for its input shapes.
    fn layer_macs_with(&self, i: usize, height: usize, width: usize, scratch: &mut Vec<(usize, usize, usize)>) -> f64 {
        let l = &self.layers[i];
        scratch.clear();
        scratch.extend(l.from.iter().map(|&f| self.input_shape(i, f, height, width)));
        l.block.macs(scratch)
    }

    /// thop MACs of every layer (Detect included, last) for one `height × width` image, in layer
    /// order; they sum to [`Architecture::macs`].
    pub fn layer_macs(&self, height: usize, width: usize) -> Vec<f64> {
        let mut scratch = Vec::with_capacity(4);
        (0..self.layers.len()).map(|i| self.layer_macs_with(i, height, width, &mut scratch)).collect()
    }

    /// thop multiply-accumulates for one `height × width` image, computed from the specs alone:
    /// exactly [`Detector::macs`](crate::Detector::macs) of the unfused model [`Architecture::build`]
    /// makes (GFLOPs = `2·macs/1e9`, as [`ModelInfo`](crate::info::ModelInfo) reports them).
    pub fn macs(&self, height: usize, width: usize) -> f64 {
        let mut scratch = Vec::with_capacity(4);
        (0..self.layers.len()).map(|i| self.layer_macs_with(i, height, width, &mut scratch)).sum()
    }

    /// Trainable parameters of every layer in layer order (see [`BlockSpec::params`]); equal to
    /// [`info::layer_params`](crate::info::layer_params) of the built model.
    pub fn layer_params(&self) -> Vec<usize> {
        self.layers.iter().map(|l| l.block.params()).collect()
    }

    /// Trainable parameters (BN weights and biases included, running statistics excluded), computed
    /// from the specs alone: exactly [`Detector::num_params`](crate::Detector::num_params) of the
    /// model [`Architecture::build`] makes.
    pub fn params(&self) -> usize {
        self.layers.iter().map(|l| l.block.params()).sum()
    }
}

#[cfg(test)]
mod tests {
    use burn::prelude::*;

    use super::*;
    use crate::arch::{BUILTIN_CONFIGS, parse_model_yaml};
    use crate::info::{ModelInfo, layer_params};
    use crate::test_util::device;

    /// Image sizes every comparison runs at: square, non-square both ways, and sizes that are not
    /// multiples of the largest stride (so every integer division rounds).
    const SIZES: [(usize, usize); 6] = [(64, 64), (96, 96), (64, 96), (96, 64), (100, 70), (72, 136)];

    /// Builds `arch` and asserts that the cost model reproduces the model's numbers: total and
    /// per-layer parameters exactly, MACs at every size in [`SIZES`] to 1e-9 relative, and
    /// [`ModelInfo::of`] at 64 and 96. Returns the built model.
    fn assert_matches(arch: &Architecture) -> crate::YoloModel {
        let model = arch.build(&device()).unwrap_or_else(|e| panic!("{}: {e}", arch.name));
        assert_eq!(arch.params(), model.num_params(), "{}: params", arch.name);
        assert_eq!(arch.layer_params(), layer_params(&model), "{}: per-layer params", arch.name);
        for (h, w) in SIZES {
            let (ours, theirs) = (arch.macs(h, w), model.macs(h, w));
            assert!((ours - theirs).abs() <= 1e-9 * theirs, "{} at {h}×{w}: {ours} vs {theirs}", arch.name);
            let per_layer: f64 = arch.layer_macs(h, w).iter().sum();
            assert!((per_layer - ours).abs() <= 1e-9 * ours, "{} at {h}×{w}: per-layer sum", arch.name);
        }
        for imgsz in [64, 96] {
            let info = ModelInfo::of(&model, imgsz);
            assert_eq!(info.params, arch.params(), "{} info params", arch.name);
            let ours = arch.macs(imgsz, imgsz);
            assert!((ours - info.macs).abs() <= 1e-9 * info.macs, "{} info at {imgsz}", arch.name);
            assert!((2.0 * ours / 1e9 - info.gflops).abs() <= 1e-9 * info.gflops);
        }
        model
    }

    /// Runs a 64×64 forward pass: the widths of a hand-edited architecture fit together.
    fn assert_runs(model: &crate::YoloModel) {
        let out = model.forward(Tensor::zeros([1, 3, 64, 64], &device()));
        assert_eq!(out.decoded.dims()[0], 1);
    }

    /// `text` with its `depth_multiple` and `width_multiple` lines replaced.
    fn with_multiples(text: &str, depth: f64, width: f64) -> String {
        text.lines()
            .map(|l| {
                if l.starts_with("depth_multiple:") {
                    format!("depth_multiple: {depth}")
                } else if l.starts_with("width_multiple:") {
                    format!("width_multiple: {width}")
                } else {
                    l.to_string()
                }
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// Recomputes every layer's input width (and the widths Upsample, Concat and Detect derive
    /// from their sources) after a test changed some output widths.
    fn rewire(a: &mut Architecture) {
        for i in 0..a.layers.len() {
            let src: Vec<usize> = a.layers[i]
                .from
                .iter()
                .map(|&f| {
                    if i == 0 && f == -1 { a.input_channels } else { a.layers[Architecture::source(i, f)].out_channels }
                })
                .collect();
            let l = &mut a.layers[i];
            match &mut l.block {
                // A stride-1 ghost bottleneck adds its input: its width follows the input's.
                BlockSpec::GhostBottleneck { c1, c2, s: 1, .. } => {
                    (*c1, *c2) = (src[0], src[0]);
                    l.out_channels = src[0];
                }
                BlockSpec::Conv { c1, .. }
                | BlockSpec::Focus { c1, .. }
                | BlockSpec::Bottleneck { c1, .. }
                | BlockSpec::C3 { c1, .. }
                | BlockSpec::Spp { c1, .. }
                | BlockSpec::Sppf { c1, .. }
                | BlockSpec::GhostConv { c1, .. }
                | BlockSpec::GhostBottleneck { c1, .. }
                | BlockSpec::GhostNetBottleneck { c1, .. } => *c1 = src[0],
                BlockSpec::Upsample { .. } => l.out_channels = src[0],
                BlockSpec::Concat => l.out_channels = src.iter().sum(),
                BlockSpec::Detect { ch, .. } => *ch = src,
            }
        }
    }

    /// Shrinks widths to about 5/7, odd wherever the block allows it (ghost widths stay even so the
    /// halves still fit, grouped widths multiples of the groups, SPPF outputs even since a stride-1
    /// ghost bottleneck may follow), varied per layer and per repeat, then rewires the inputs.
    fn odd_widths(a: &mut Architecture) {
        let odd = |c: usize, i: usize| ((c + i) * 5 / 7) | 1;
        let even = |c: usize, i: usize| (((c + i) * 5 / 7) & !1).max(2);
        // A multiple of `m` (for grouped convs).
        let multiple = |c: usize, i: usize, m: usize| ((c + i) * 5 / 7 / m).max(1) * m;
        for (i, l) in a.layers.iter_mut().enumerate() {
            match &mut l.block {
                BlockSpec::Conv { c2, g: 1, .. } | BlockSpec::Bottleneck { c2, g: 1, .. } => {
                    *c2 = odd(*c2, i);
                    l.out_channels = *c2;
                }
                BlockSpec::C3 { c2, hidden1, hidden2, inner, ghost, g, .. } => {
                    *c2 = odd(*c2, i);
                    *hidden2 = odd(*hidden2, i + 3);
                    if *ghost {
                        *hidden1 = even(*hidden1, i);
                        inner.iter_mut().enumerate().for_each(|(j, h)| *h = even(*h, i + 2 * j));
                    } else if *g > 1 {
                        *hidden1 = multiple(*hidden1, i, *g);
                        inner.iter_mut().enumerate().for_each(|(j, h)| *h = multiple(*h, i + 2 * j, *g));
                    } else {
                        *hidden1 = odd(*hidden1, i);
                        inner.iter_mut().enumerate().for_each(|(j, h)| *h = odd(*h, i + 2 * j));
                    }
                    l.out_channels = *c2;
                }
                BlockSpec::Sppf { c2, hidden, .. } => {
                    (*c2, *hidden) = (even(*c2, i), odd(*hidden, i));
                    l.out_channels = *c2;
                }
                BlockSpec::GhostConv { c2, g, .. } => {
                    *c2 = multiple(*c2, i, 2 * *g);
                    l.out_channels = *c2;
                }
                BlockSpec::GhostNetBottleneck { c2, hidden, se, .. } => {
                    (*c2, *hidden) = (even(*c2, i), even(*hidden, i));
                    if *se > 0 {
                        *se = odd(*se, i);
                    }
                    l.out_channels = *c2;
                }
                _ => {}
            }
        }
        rewire(a);
    }

    /// Every built-in config: yolov5n/s/m/l/x, yolov5s-ghost, yolov5-ghostnet.
    #[test]
    fn cost_matches_every_builtin_config() {
        for (file, text) in BUILTIN_CONFIGS {
            let arch = parse_model_yaml(text, file.trim_end_matches(".yaml")).unwrap();
            assert_matches(&arch);
        }
    }

    /// Unusual width and depth multiples through the YAML parser (widths that are multiples of 8
    /// but hidden widths that are not, ghost halves that are odd).
    #[test]
    fn cost_matches_odd_multiples() {
        for name in ["yolov5n", "yolov5s-ghost", "yolov5-ghostnet"] {
            let text = crate::arch::builtin_yaml(name).unwrap();
            for (depth, width) in [(0.33, 0.3), (0.5, 0.7), (0.2, 0.15)] {
                let arch = parse_model_yaml(&with_multiples(text, depth, width), name).unwrap();
                assert_matches(&arch);
            }
        }
    }

    /// Hand-edited odd widths (pruning-like): output, hidden, inner and squeeze-excite widths
    /// changed layer by layer and the inputs rewired; the edited models run.
    #[test]
    fn cost_matches_hand_edited_widths() {
        for name in ["yolov5n", "yolov5s-ghost", "yolov5-ghostnet"] {
            let mut arch = Architecture::from_name_or_path(name).unwrap();
            let before = arch.clone();
            odd_widths(&mut arch);
            assert_ne!(arch, before);
            assert!(arch.params() < before.params());
            assert!(arch.layers.iter().any(|l| l.out_channels % 2 == 1));
            let model = assert_matches(&arch);
            assert_runs(&model);
        }
    }

    /// Every block variant, including grouped and depth-wise convs, explicit padding, no activation,
    /// Focus, Bottleneck, SPP, YOLOv5 ghost bottlenecks at strides 1 and 2, GhostNet bottlenecks with
    /// squeeze-excite, stride 2 and projection shortcuts, and a two-level Detect.
    #[test]
    fn cost_matches_every_block_variant() {
        let text = "nc: 3
anchors:
  - [10,13, 16,30]
  - [30,61, 62,45]
backbone:
  [[-1, 1, Focus, [16, 3, 1]],                          # 0  /2
   [-1, 1, Conv, [24, 3, 2, 1, 4, 1, False]],           # 1  /4, groups 4, no act
   [-1, 1, DWConv, [48, 5, 1]],                         # 2  groups gcd(24, 48) = 24
   [-1, 1, Bottleneck, [48, True, 2]],                  # 3  residual, grouped 3×3
   [-1, 1, GhostBottleneck, [64, 3, 2]],                # 4  /8
   [-1, 2, C3, [64, True, 2]],                          # 5  -> P3
   [-1, 1, GhostNetBottleneck, [80, 96, 5, 0.25, 2]],   # 6  /16, SE, projection
   [-1, 1, GhostNetBottleneck, [80, 160, 3, 0, 1]],     # 7  identity shortcut
   [-1, 1, GhostNetBottleneck, [96, 160, 3, 0.3, 1]],   # 8  projection at stride 1
   [-1, 1, GhostConv, [96, 3, 1, 2]],                   # 9  grouped primary conv
   [-1, 1, SPP, [96, [3, 5, 7]]],                       # 10
   [-1, 1, Conv, [96, 6, 2, 2]],                        # 11 /32, explicit padding
  ]
head:
  [[-1, 1, nn.Upsample, [None, 2, 'nearest']],          # 12 /16
   [[-1, 10], 1, Concat, [1]],                          # 13
   [-1, 1, C3Ghost, [64]],                              # 14
   [-1, 2, C3, [64, False]],                            # 15
   [-1, 1, SPPF, [64, 5]],                              # 16
   [-1, 1, GhostBottleneck, [64, 3, 1]],                # 17 -> P4
   [[5, 17], 1, Detect, [nc, anchors]],                 # 18
  ]";
        let arch = parse_model_yaml(text, "variants").unwrap();
        let model = assert_matches(&arch);
        assert_runs(&model);
        let mut edited = arch.clone();
        odd_widths(&mut edited);
        let model = assert_matches(&edited);
        assert_runs(&model);
    }

    /// Many image sizes, including ones far from multiples of 32.
    #[test]
    fn cost_matches_many_image_sizes() {
        for name in ["yolov5s-ghost", "yolov5-ghostnet"] {
            let arch = Architecture::from_name_or_path(name).unwrap();
            let model = arch.build(&device()).unwrap();
            for h in (32..=200).step_by(13) {
                for w in (40..=260).step_by(17) {
                    let (ours, theirs) = (arch.macs(h, w), model.macs(h, w));
                    assert!((ours - theirs).abs() <= 1e-9 * theirs, "{name} at {h}×{w}: {ours} vs {theirs}");
                }
            }
        }
    }

    /// A Conv layer and a Detect head by hand.
    #[test]
    fn cost_by_hand() {
        let conv = BlockSpec::Conv { c1: 16, c2: 32, k: 3, s: 2, p: None, g: 4, act: true };
        assert_eq!(conv.params(), 32 * 4 * 9 + 2 * 32);
        // 64×64 → 32×32 output
        assert_eq!(conv.macs(&[(16, 64, 64)]), (32 * 32 * 32 * (4 * 9 + 4)) as f64);
        let detect = BlockSpec::Detect {
            nc: 2,
            anchors: vec![vec![[1.0, 1.0]; 3]; 2],
            strides: vec![8.0, 16.0],
            ch: vec![8, 16],
        };
        assert_eq!(detect.params(), 21 * 8 + 21 + 21 * 16 + 21);
        assert_eq!(detect.macs(&[(8, 8, 4), (16, 4, 2)]), (21 * 8 * 32 + 21 * 16 * 8) as f64);
        assert_eq!(BlockSpec::Upsample { scale: 2 }.macs(&[(5, 3, 4)]), (5 * 6 * 8) as f64);
        assert_eq!(BlockSpec::Concat.macs(&[(5, 3, 4), (6, 3, 4)]), 0.0);
    }
}
