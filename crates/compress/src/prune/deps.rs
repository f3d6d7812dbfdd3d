//! [`ChannelDeps`]: how a block's channels depend on each other, and how to rebuild the block at new
//! widths. Implemented for every built-in block ([`BlockSpec`]); a user block implements the same
//! two methods to become prunable.

use yolo_compress_model::{Architecture, BlockSpec, LayerSpec};

use super::graph::{ChannelGraph, Channels, Role};

/// A block that can describe its channel couplings and be rebuilt at pruned widths.
pub trait ChannelDeps {
    /// Registers the block's tensors (state-dict keys under `prefix`) and couplings in `g`, given
    /// the channels of its inputs, and returns the channels of its output. Every space the block
    /// creates must be labelled `prefix` or `prefix.<name>`, uniquely.
    fn channels(&self, g: &mut ChannelGraph, prefix: &str, inputs: &[Channels]) -> Channels;

    /// The same block at new widths: `inputs` are the pruned input widths, `width(name)` the pruned
    /// width of the space this block created under `prefix.<name>` (`""` = `prefix` itself).
    fn resized(&self, inputs: &[usize], width: &dyn Fn(&str) -> usize) -> Self
    where
        Self: Sized;
}

/// Joins a key prefix and a name (`""` = the prefix itself).
pub fn key(prefix: &str, name: &str) -> String {
    match (prefix.is_empty(), name.is_empty()) {
        (_, true) => prefix.to_string(),
        (true, false) => name.to_string(),
        (false, false) => format!("{prefix}.{name}"),
    }
}

/// `width` seen from under `name`: `under(width, "down4")("cv1") == width("down4.cv1")`. Hands a
/// backbone's label widths to one of its blocks' [`ChannelDeps::resized`].
pub fn under<'a>(width: &'a dyn Fn(&str) -> usize, name: &'a str) -> impl Fn(&str) -> usize + 'a {
    move |n: &str| width(&key(name, n))
}

/// Describes a run of layers written as [`LayerSpec`]s (YAML rows, as in an [`Architecture`]):
/// `layers[j]` is layer `table.len() + j`, its tensors and spaces under `prefix.<layer>`, its `from`
/// indices read `table` (the channels of every earlier layer; `-1` of layer 0 is `image`). Pushes
/// each layer's output onto `table` and returns each layer's inputs.
pub fn layers_channels(
    g: &mut ChannelGraph,
    prefix: &str,
    layers: &[LayerSpec],
    image: &Channels,
    table: &mut Vec<Channels>,
) -> Vec<Vec<Channels>> {
    let mut inputs = Vec::with_capacity(layers.len());
    for l in layers {
        let i = table.len();
        g.set_layer(i);
        let ins: Vec<Channels> = l
            .from
            .iter()
            .map(|&f| if i == 0 && f == -1 { image.clone() } else { table[Architecture::source(i, f)].clone() })
            .collect();
        let out = l.block.channels(g, &key(prefix, &i.to_string()), &ins);
        inputs.push(ins);
        table.push(out);
    }
    inputs
}

/// The layers of [`layers_channels`] at pruned widths: `widths` holds the pruned width of every
/// earlier layer (each layer's is pushed), `image` the image's, and `width(label)` the pruned width
/// of the space labelled `label` (`prefix.<layer>.<name>`). Detect keeps its output width.
pub fn resized_layers(
    prefix: &str,
    layers: &[LayerSpec],
    image: usize,
    widths: &mut Vec<usize>,
    width: &dyn Fn(&str) -> usize,
) -> Vec<LayerSpec> {
    let mut out = Vec::with_capacity(layers.len());
    for l in layers {
        let i = widths.len();
        let ins: Vec<usize> = l
            .from
            .iter()
            .map(|&f| if i == 0 && f == -1 { image } else { widths[Architecture::source(i, f)] })
            .collect();
        let block = l.block.resized(&ins, &under(width, &key(prefix, &i.to_string())));
        let out_channels = match &block {
            BlockSpec::Detect { .. } => l.out_channels,
            b => output_width(b, &ins),
        };
        widths.push(out_channels);
        out.push(LayerSpec { block, out_channels, ..l.clone() });
    }
    out
}

/// Output channels of a block given its input widths (0 for Detect).
fn output_width(block: &BlockSpec, inputs: &[usize]) -> usize {
    match block {
        BlockSpec::Conv { c2, .. }
        | BlockSpec::Focus { c2, .. }
        | BlockSpec::Bottleneck { c2, .. }
        | BlockSpec::C3 { c2, .. }
        | BlockSpec::Spp { c2, .. }
        | BlockSpec::Sppf { c2, .. }
        | BlockSpec::GhostConv { c2, .. }
        | BlockSpec::GhostBottleneck { c2, .. }
        | BlockSpec::GhostNetBottleneck { c2, .. } => *c2,
        BlockSpec::Upsample { .. } => inputs.first().copied().unwrap_or(0),
        BlockSpec::Concat => inputs.iter().sum(),
        BlockSpec::Detect { .. } => 0,
    }
}

/// The state-dict keys of one convolution: `weight` is `[c2, c1/groups, k, k]`, BN vectors under
/// `bn`, a bias under `bias` (SE convs).
#[derive(Clone, Copy, Debug)]
pub struct ConvKeys<'a> {
    /// Weight key.
    pub weight: &'a str,
    /// BN prefix, if any.
    pub bn: Option<&'a str>,
    /// Bias key, if any.
    pub bias: Option<&'a str>,
}

/// A convolution with optional BN and bias (see [`ConvKeys`]). Labels its output space `label`.
///
/// - `groups == 1`: a new space of `c2` channels; the weight's dim 1 consumes `input`.
/// - depth-wise (`groups == c1 == c2`): the output *is* the input's channels (tied).
/// - other grouped convs: input and output are fixed (their channel order is structured).
pub fn conv_like(
    g: &mut ChannelGraph,
    keys: ConvKeys<'_>,
    input: &Channels,
    c2: usize,
    groups: usize,
    label: &str,
) -> Channels {
    let ConvKeys { weight: weight_key, bn: bn_prefix, bias: bias_key } = keys;
    let c1 = g.width(input);
    let out = if groups == 1 {
        let o = g.new_space(c2, label);
        g.add_use(weight_key, 1, input, Role::Input);
        o
    } else if groups == c1 && c1 == c2 {
        input.clone()
    } else {
        g.fix_because(input, format!("{label}: grouped conv (groups {groups}) keeps its input"));
        let o = g.new_space(c2, label);
        g.fix(&o);
        o
    };
    g.add_use(weight_key, 0, &out, Role::Filter);
    if let Some(b) = bias_key {
        g.add_use(b, 0, &out, Role::Bias);
    }
    if let Some(bn) = bn_prefix {
        for (name, role) in [
            ("weight", Role::BnWeight),
            ("bias", Role::BnBias),
            ("running_mean", Role::BnMean),
            ("running_var", Role::BnVar),
        ] {
            g.add_use(key(bn, name), 0, &out, role);
        }
    }
    out
}

/// A YOLOv5 `Conv` block (keys `prefix.conv.weight`, `prefix.bn.*`), labelled `prefix`.
pub fn conv_bn(g: &mut ChannelGraph, prefix: &str, input: &Channels, c2: usize, groups: usize) -> Channels {
    let (w, bn) = (key(prefix, "conv.weight"), key(prefix, "bn"));
    conv_like(g, ConvKeys { weight: &w, bn: Some(&bn), bias: None }, input, c2, groups, prefix)
}

/// A GhostConv (`cv1` primary, `cv2` 5×5 depth-wise cheap op): output `[cv1, cheap(cv1)]`, whose two
/// halves are the same units. `names` gives the primary and cheap sub-keys.
fn ghost(g: &mut ChannelGraph, prefix: &str, names: [&str; 2], x: &Channels, c2: usize, groups: usize) -> Channels {
    let half = c2 / 2;
    let a = conv_bn(g, &key(prefix, names[0]), x, half, groups);
    let b = conv_bn(g, &key(prefix, names[1]), &a, half, half);
    Channels::concat([&a, &b])
}

/// Squeeze-excite under `prefix` (`conv_reduce` / `conv_expand` with biases) gating `x`.
fn squeeze_excite(g: &mut ChannelGraph, prefix: &str, x: &Channels, reduced: usize) {
    let (w, b) = (key(prefix, "conv_reduce.weight"), key(prefix, "conv_reduce.bias"));
    let r = conv_like(g, ConvKeys { weight: &w, bn: None, bias: Some(&b) }, x, reduced, 1, &key(prefix, "conv_reduce"));
    // The expand conv's outputs gate x channel by channel: its filters belong to x's units.
    g.add_use(key(prefix, "conv_expand.weight"), 1, &r, Role::Input);
    g.add_use(key(prefix, "conv_expand.weight"), 0, x, Role::Filter);
    g.add_use(key(prefix, "conv_expand.bias"), 0, x, Role::Bias);
}

/// YOLOv5's GhostBottleneck (`conv.0` GhostConv, `conv.1` depth-wise when striding, `conv.2`
/// GhostConv, `shortcut.*` when striding).
fn ghost_bottleneck(g: &mut ChannelGraph, p: &str, x: &Channels, c2: usize, hidden: usize, s: usize) -> Channels {
    let c1 = g.width(x);
    let mut y = ghost(g, &key(p, "conv.0"), ["cv1", "cv2"], x, hidden, 1);
    if s == 2 {
        y = conv_bn(g, &key(p, "conv.1"), &y, hidden, hidden);
    }
    let y2 = ghost(g, &key(p, "conv.2"), ["cv1", "cv2"], &y, c2, 1);
    if s == 2 {
        let d = conv_bn(g, &key(p, "shortcut.0"), x, c1, c1);
        let sc = conv_bn(g, &key(p, "shortcut.1"), &d, c2, 1);
        g.tie(&y2, &sc, "GhostBottleneck residual");
    } else {
        g.tie(x, &y2, "GhostBottleneck residual");
    }
    y2
}

/// A depth-wise conv + BN under GhostNet's names (`conv_DW`, `bn_DW`).
fn depthwise_dw(g: &mut ChannelGraph, p: &str, x: &Channels) -> Channels {
    let c = g.width(x);
    let (w, bn) = (key(p, "conv_DW.weight"), key(p, "bn_DW"));
    conv_like(g, ConvKeys { weight: &w, bn: Some(&bn), bias: None }, x, c, c, p)
}

impl ChannelDeps for BlockSpec {
    fn channels(&self, g: &mut ChannelGraph, p: &str, inputs: &[Channels]) -> Channels {
        let x = inputs.first().cloned().unwrap_or_default();
        match self {
            &BlockSpec::Conv { c2, g: groups, .. } => conv_bn(g, p, &x, c2, groups),
            &BlockSpec::Focus { c2, .. } => conv_bn(g, &key(p, "conv"), &x.repeat(4), c2, 1),
            &BlockSpec::Bottleneck { c1, c2, hidden, shortcut, g: groups } => {
                let h = conv_bn(g, &key(p, "cv1"), &x, hidden, 1);
                let o = conv_bn(g, &key(p, "cv2"), &h, c2, groups);
                if shortcut && c1 == c2 {
                    g.tie(&x, &o, "Bottleneck residual");
                }
                o
            }
            BlockSpec::C3 { c2, hidden1, hidden2, inner, shortcut, g: groups, ghost: is_ghost, .. } => {
                let a = conv_bn(g, &key(p, "cv1"), &x, *hidden1, 1);
                let b = conv_bn(g, &key(p, "cv2"), &x, *hidden2, 1);
                let mut y = a;
                for (j, &h) in inner.iter().enumerate() {
                    let m = key(p, &format!("m.{j}"));
                    y = if *is_ghost {
                        ghost_bottleneck(g, &m, &y, *hidden1, h, 1)
                    } else {
                        let hh = conv_bn(g, &key(&m, "cv1"), &y, h, 1);
                        let o = conv_bn(g, &key(&m, "cv2"), &hh, *hidden1, *groups);
                        // With shortcut this is the residual; without, C3 still builds every
                        // bottleneck at one width (hidden1), so the chain is tied all the same.
                        g.tie(&y, &o, if *shortcut { "C3 residual" } else { "C3 chain width" });
                        o
                    };
                }
                conv_bn(g, &key(p, "cv3"), &Channels::concat([&y, &b]), *c2, 1)
            }
            BlockSpec::Spp { c1, c2, k } => {
                // SPP's hidden width is always c1 / 2: neither may change.
                g.fix_because(&x, "SPP derives its hidden width from its input width; both kept");
                let h = conv_bn(g, &key(p, "cv1"), &x, c1 / 2, 1);
                g.fix(&h);
                conv_bn(g, &key(p, "cv2"), &h.repeat(k.len() + 1), *c2, 1)
            }
            &BlockSpec::Sppf { c2, hidden, .. } => {
                let h = conv_bn(g, &key(p, "cv1"), &x, hidden, 1);
                conv_bn(g, &key(p, "cv2"), &h.repeat(4), c2, 1)
            }
            &BlockSpec::GhostConv { c2, g: groups, .. } => ghost(g, p, ["cv1", "cv2"], &x, c2, groups),
            &BlockSpec::GhostBottleneck { c2, hidden, s, .. } => ghost_bottleneck(g, p, &x, c2, hidden, s),
            &BlockSpec::GhostNetBottleneck { c1, c2, hidden, se, s, .. } => {
                let names = ["primary_conv", "cheap_operation"];
                let mut y = ghost(g, &key(p, "conv.0"), names, &x, hidden, 1);
                if s == 2 {
                    y = depthwise_dw(g, &key(p, "conv.1"), &y);
                }
                if se > 0 {
                    squeeze_excite(g, &key(p, "conv.2"), &y, se);
                }
                let y2 = ghost(g, &key(p, "conv.3"), names, &y, c2, 1);
                if c1 != c2 || s != 1 {
                    let d = depthwise_dw(g, &key(p, "shortcut.0"), &x);
                    let sc = conv_bn(g, &key(p, "shortcut.1"), &d, c2, 1);
                    g.tie(&y2, &sc, "GhostNet bottleneck residual");
                    if s == 1 {
                        g.fix_because(&y2, "a stride-1 projection shortcut exists only while c1 != c2; output kept");
                    }
                } else {
                    g.tie(&x, &y2, "GhostNet bottleneck residual");
                }
                y2
            }
            BlockSpec::Upsample { .. } => x,
            BlockSpec::Concat => Channels::concat(inputs),
            BlockSpec::Detect { ch, .. } => {
                for (i, input) in inputs.iter().enumerate().take(ch.len()) {
                    g.add_use(key(p, &format!("m.{i}.weight")), 1, input, Role::Input);
                }
                Channels::default()
            }
        }
    }

    fn resized(&self, inputs: &[usize], w: &dyn Fn(&str) -> usize) -> Self {
        let c1n = inputs.first().copied().unwrap_or(0);
        match self.clone() {
            BlockSpec::Conv { c1, c2, k, s, p, g, act } => {
                let (c2, g) = if g == 1 {
                    (w(""), 1)
                } else if g == c1 && c1 == c2 {
                    (c1n, c1n)
                } else {
                    (c2, g)
                };
                BlockSpec::Conv { c1: c1n, c2, k, s, p, g, act }
            }
            BlockSpec::Focus { k, s, .. } => BlockSpec::Focus { c1: c1n, c2: w("conv"), k, s },
            BlockSpec::Bottleneck { c1, c2, shortcut, g, .. } => {
                BlockSpec::Bottleneck { c1: c1n, c2: w("cv2"), hidden: w("cv1"), shortcut: shortcut && c1 == c2, g }
            }
            BlockSpec::C3 { inner, shortcut, g, ghost, .. } => BlockSpec::C3 {
                c1: c1n,
                c2: w("cv3"),
                hidden1: w("cv1"),
                hidden2: w("cv2"),
                inner: (0..inner.len())
                    .map(|j| if ghost { 2 * w(&format!("m.{j}.conv.0.cv1")) } else { w(&format!("m.{j}.cv1")) })
                    .collect(),
                shortcut,
                g,
                ghost,
            },
            BlockSpec::Spp { k, .. } => BlockSpec::Spp { c1: c1n, c2: w("cv2"), k },
            BlockSpec::Sppf { k, .. } => BlockSpec::Sppf { c1: c1n, c2: w("cv2"), hidden: w("cv1"), k },
            BlockSpec::GhostConv { k, s, g, act, .. } => {
                BlockSpec::GhostConv { c1: c1n, c2: 2 * w("cv1"), k, s, g, act }
            }
            BlockSpec::GhostBottleneck { k, s, .. } => {
                BlockSpec::GhostBottleneck { c1: c1n, c2: 2 * w("conv.2.cv1"), hidden: 2 * w("conv.0.cv1"), k, s }
            }
            BlockSpec::GhostNetBottleneck { k, se, s, .. } => BlockSpec::GhostNetBottleneck {
                c1: c1n,
                c2: 2 * w("conv.3.primary_conv"),
                hidden: 2 * w("conv.0.primary_conv"),
                k,
                se: if se > 0 { w("conv.2.conv_reduce") } else { 0 },
                s,
            },
            BlockSpec::Detect { nc, anchors, strides, .. } => {
                BlockSpec::Detect { nc, anchors, strides, ch: inputs.to_vec() }
            }
            other @ (BlockSpec::Upsample { .. } | BlockSpec::Concat) => other,
        }
    }
}
