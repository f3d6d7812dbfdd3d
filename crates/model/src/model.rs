//! The detector: a pluggable [`Backbone`], a neck [`Graph`] (YOLOv5's PAN) and the [`Detect`] head.
//!
//! [`YoloModel`] is the detector built from an ultralytics-style [`Architecture`]; its backbone is a
//! [`GraphBackbone`] (the YAML's `backbone` rows). Any other type implementing [`Backbone`] plugs into
//! the same neck and head through [`Detector::new`].

use burn::prelude::*;

use crate::arch::{Architecture, BlockSpec, LayerSpec};
use crate::error::{ArchError, WeightsError};
use crate::head::{Detect, DetectConfig, RawOutputs};
use crate::layer::Layer;
use crate::state::{NamedTensors, ParamCounter, TensorVisitor, join};

/// Channels and stride of one backbone output.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FeatureSpec {
    /// Channels of the feature map.
    pub channels: usize,
    /// Downsampling factor relative to the input image (8 for P3, 16 for P4, …).
    pub stride: usize,
}

/// A feature extractor that the YOLOv5 neck and head can sit on.
///
/// Implement it for your own Burn module to plug a new backbone into [`Detector`]: return the
/// feature maps listed by [`Backbone::features`] (typically P3/8, P4/16, P5/32), name your tensors
/// for weight loading through [`NamedTensors`], and report your MACs for `info`.
pub trait Backbone: Module + burn::module::ModuleDisplay + NamedTensors + core::fmt::Debug {
    /// The feature maps [`Backbone::forward`] returns, in order.
    fn features(&self) -> Vec<FeatureSpec>;
    /// `[B, 3, H, W]` → the feature maps listed by [`Backbone::features`].
    fn forward(&self, x: Tensor<4>) -> Vec<Tensor<4>>;
    /// Multiply-accumulates for one `height × width` image (thop convention).
    fn macs(&self, height: usize, width: usize) -> f64;
    /// Folds batch norms into convolutions for inference (default: unchanged).
    fn fuse(self) -> Self {
        self
    }
    /// Number of PyTorch-equivalent modules, for ultralytics-style summaries (default: 0).
    fn torch_modules(&self) -> usize {
        0
    }
}

/// A sequence of layers with ultralytics-style `from` indices, executed over a table of outputs.
#[derive(Module, Debug)]
pub struct Graph {
    /// The layers.
    pub layers: Vec<Layer>,
    /// Absolute index (in the model's numbering) of `layers[0]`.
    pub offset: usize,
    /// Absolute source indices of each layer; `None` is the input image.
    #[module(skip)]
    pub sources: Vec<Vec<Option<usize>>>,
}

impl Graph {
    /// Runs every layer, reading inputs from and writing outputs to `table` (absolute indices).
    /// Outputs no later layer reads are dropped unless `keep_all`.
    pub fn run(&self, image: Option<&Tensor<4>>, table: &mut [Option<Tensor<4>>], keep_all: bool, last_use: &[usize]) {
        for (j, layer) in self.layers.iter().enumerate() {
            let i = self.offset + j;
            let xs = self.sources[j]
                .iter()
                .map(|s| match s {
                    None => image.expect("the first layer reads the image").clone(),
                    Some(s) => {
                        table[*s].clone().unwrap_or_else(|| panic!("layer {i} reads layer {s}, which has no output"))
                    }
                })
                .collect();
            table[i] = Some(layer.forward(xs));
            if !keep_all {
                for s in self.sources[j].iter().flatten() {
                    if last_use[*s] <= i {
                        table[*s] = None;
                    }
                }
            }
        }
    }
}

/// The backbone of an [`Architecture`]: its first `backbone_len` layers, returning the outputs of
/// the layers the head reads (`taps`, e.g. layers 4, 6 and 9 of YOLOv5).
#[derive(Module, Debug)]
pub struct GraphBackbone {
    /// The layers.
    pub graph: Graph,
    /// Absolute indices of the returned layers.
    pub taps: Vec<usize>,
    /// `(channels, stride)` of every layer.
    #[module(skip)]
    pub shapes: Vec<(usize, usize)>,
    /// Last layer index reading each layer (for freeing memory).
    #[module(skip)]
    pub last_use: Vec<usize>,
    /// The layers' specs (their `from` indices in the model's numbering), which describe the
    /// backbone's channels for pruning.
    #[module(skip)]
    pub specs: Vec<LayerSpec>,
    /// Channels of the input image.
    #[module(skip)]
    pub input_channels: usize,
}

impl GraphBackbone {
    /// Builds the backbone made of `specs` (layers `0..specs.len()`; only the first may read the
    /// image, as `from: -1`) returning the outputs of the layers `taps`.
    pub fn from_specs(specs: Vec<LayerSpec>, input_channels: usize, taps: Vec<usize>, device: &Device) -> Self {
        let sources = layer_sources(&specs, 0);
        let layers = specs
            .iter()
            .map(|l| Layer::from_spec(&l.block, device).expect("Detect is never a backbone layer"))
            .collect();
        GraphBackbone {
            last_use: last_uses(&sources, 0, specs.len()),
            shapes: specs.iter().map(|l| (l.out_channels, l.stride)).collect(),
            graph: Graph { layers, offset: 0, sources },
            taps,
            specs,
            input_channels,
        }
    }

    /// Runs the graph and returns every layer's output (for debugging and per-layer parity tests).
    pub fn forward_all(&self, x: Tensor<4>) -> Vec<Tensor<4>> {
        let mut table = vec![None; self.graph.layers.len()];
        self.graph.run(Some(&x), &mut table, true, &self.last_use);
        table.into_iter().map(|t| t.expect("every layer ran")).collect()
    }
}

impl NamedTensors for GraphBackbone {
    fn visit_tensors(&mut self, prefix: &str, v: &mut dyn TensorVisitor) -> Result<(), WeightsError> {
        let off = self.graph.offset;
        for (j, l) in self.graph.layers.iter_mut().enumerate() {
            l.visit_tensors(&join(prefix, &(off + j).to_string()), v)?;
        }
        Ok(())
    }
}

impl Backbone for GraphBackbone {
    fn features(&self) -> Vec<FeatureSpec> {
        self.taps.iter().map(|&t| FeatureSpec { channels: self.shapes[t].0, stride: self.shapes[t].1 }).collect()
    }

    fn forward(&self, x: Tensor<4>) -> Vec<Tensor<4>> {
        let mut table = vec![None; self.graph.layers.len()];
        let mut last_use = self.last_use.clone();
        for &t in &self.taps {
            last_use[t] = usize::MAX;
        }
        self.graph.run(Some(&x), &mut table, false, &last_use);
        self.taps.iter().map(|&t| table[t].take().expect("tap computed")).collect()
    }

    fn macs(&self, height: usize, width: usize) -> f64 {
        graph_macs(&self.graph, &self.shapes, (3, height, width), height, width)
    }

    fn fuse(self) -> Self {
        let graph = Graph { layers: self.graph.layers.into_iter().map(Layer::fuse).collect(), ..self.graph };
        Self { graph, ..self }
    }

    fn torch_modules(&self) -> usize {
        self.graph.layers.iter().map(Layer::torch_modules).sum()
    }
}

fn graph_macs(g: &Graph, shapes: &[(usize, usize)], image: (usize, usize, usize), h: usize, w: usize) -> f64 {
    g.layers
        .iter()
        .zip(&g.sources)
        .map(|(l, srcs)| {
            let ins: Vec<_> =
                srcs.iter().map(|s| s.map_or(image, |s| (shapes[s].0, h / shapes[s].1, w / shapes[s].1))).collect();
            l.macs(&ins)
        })
        .sum()
}

/// A detector: backbone → neck → Detect.
#[derive(Module, Debug)]
pub struct Detector<B: Backbone> {
    /// Feature extractor.
    pub backbone: B,
    /// Neck layers (PAN for YOLOv5), numbered after the backbone taps.
    pub neck: Graph,
    /// Detection head.
    pub detect: Detect,
    /// Absolute index assigned to each backbone feature.
    pub taps: Vec<usize>,
    /// Absolute indices of Detect's inputs.
    pub detect_from: Vec<usize>,
    /// `(channels, stride)` of every absolute index (taps and neck layers).
    #[module(skip)]
    pub shapes: Vec<(usize, usize)>,
    /// Last reader of every absolute index.
    #[module(skip)]
    pub last_use: Vec<usize>,
    /// Class names.
    #[module(skip)]
    pub names: Vec<String>,
    /// The resolved architecture, for models built from one (needed to save native checkpoints).
    #[module(skip)]
    pub arch: Option<Architecture>,
    /// The neck's layer specs, Detect last, as given to [`Detector::new`] (or the architecture's
    /// rows after the backbone): their `from` indices use the numbering of `taps` and `neck`.
    #[module(skip)]
    pub neck_specs: Vec<LayerSpec>,
}

/// A YOLOv5 built from an [`Architecture`].
pub type YoloModel = Detector<GraphBackbone>;

/// What validation and prediction need from a detector: the float [`Detector`] and the
/// fake-quantized int8 model of the compression crate both implement it.
pub trait DetectionModel {
    /// Eval forward pass: `[B, 3, H, W]` → decoded rows and raw logits.
    fn forward(&self, x: Tensor<4>) -> DetectorOutput;
    /// Number of classes.
    fn nc(&self) -> usize;
    /// Class names.
    fn names(&self) -> &[String];
    /// Largest stride (input sizes must be multiples of it).
    fn max_stride(&self) -> usize;
}

impl<B: Backbone> DetectionModel for Detector<B> {
    fn forward(&self, x: Tensor<4>) -> DetectorOutput {
        Detector::forward(self, x)
    }

    fn nc(&self) -> usize {
        Detector::nc(self)
    }

    fn names(&self) -> &[String] {
        &self.names
    }

    fn max_stride(&self) -> usize {
        self.detect.max_stride()
    }
}

/// Output of an eval forward pass.
pub struct DetectorOutput {
    /// Decoded rows `[B, N, nc+5]`: `(xc, yc, w, h)` in input pixels, then objectness and class
    /// probabilities.
    pub decoded: Tensor<3>,
    /// Raw per-level logits `[B, na, ny, nx, nc+5]`.
    pub raw: RawOutputs,
}

fn last_uses(sources: &[Vec<Option<usize>>], offset: usize, n: usize) -> Vec<usize> {
    let mut last = vec![0; n];
    for (j, srcs) in sources.iter().enumerate() {
        for s in srcs.iter().flatten() {
            last[*s] = last[*s].max(offset + j);
        }
    }
    last
}

/// Absolute source indices of layers `offset..offset + layers.len()`; `None` is the image (`-1` of
/// layer 0).
fn layer_sources(layers: &[LayerSpec], offset: usize) -> Vec<Vec<Option<usize>>> {
    layers
        .iter()
        .enumerate()
        .map(|(j, l)| {
            let i = offset + j;
            l.from.iter().map(|&f| if i == 0 && f == -1 { None } else { Some(Architecture::source(i, f)) }).collect()
        })
        .collect()
}

impl Architecture {
    /// Builds a randomly initialised model (PyTorch default init, ultralytics Detect bias prior).
    pub fn build(&self, device: &Device) -> Result<YoloModel, ArchError> {
        self.validate()?;
        let n = self.layers.len();
        let nb = self.backbone_len.min(n - 1);
        let sources = layer_sources(&self.layers, 0);
        if sources[nb..].iter().flatten().any(Option::is_none) {
            return Err(ArchError::Invalid("only the first layer may read the image".into()));
        }
        let shapes: Vec<(usize, usize)> = self.layers.iter().map(|l| (l.out_channels, l.stride)).collect();
        let mut taps: Vec<usize> = sources[nb..].iter().flatten().flatten().copied().filter(|&s| s < nb).collect();
        taps.sort_unstable();
        taps.dedup();
        let backbone = GraphBackbone::from_specs(self.layers[..nb].to_vec(), self.input_channels, taps.clone(), device);
        assemble(
            backbone,
            shapes[..nb].to_vec(),
            taps,
            &self.layers[nb..],
            self.names.clone(),
            Some(self.clone()),
            device,
        )
    }
}

/// A detector on `backbone`: `shapes` are the `(channels, stride)` of indices `0..shapes.len()`
/// (the backbone's numbering; `taps` the indices of its features), `neck` the neck rows numbered
/// from `shapes.len()`, Detect last.
fn assemble<B: Backbone>(
    backbone: B,
    mut shapes: Vec<(usize, usize)>,
    taps: Vec<usize>,
    neck: &[LayerSpec],
    names: Vec<String>,
    arch: Option<Architecture>,
    device: &Device,
) -> Result<Detector<B>, ArchError> {
    let k = shapes.len();
    let n = k + neck.len();
    let mut sources = Vec::new();
    for (j, l) in neck.iter().enumerate() {
        let i = k + j;
        let srcs: Vec<usize> = l.from.iter().map(|&f| Architecture::source(i, f)).collect();
        if srcs.iter().any(|&s| s >= i) {
            return Err(ArchError::Invalid(format!("neck layer {i} reads a later layer")));
        }
        sources.push(srcs);
        shapes.push((l.out_channels, l.stride));
    }
    let (last, body) = neck.split_last().ok_or_else(|| ArchError::Invalid("empty neck".into()))?;
    let BlockSpec::Detect { nc, anchors, strides, ch } = &last.block else {
        return Err(ArchError::Invalid("the last neck spec must be Detect".into()));
    };
    let layers = body
        .iter()
        .map(|l| Layer::from_spec(&l.block, device).ok_or_else(|| ArchError::Invalid("Detect inside the neck".into())))
        .collect::<Result<Vec<_>, _>>()?;
    let neck_sources: Vec<Vec<Option<usize>>> =
        sources[..body.len()].iter().map(|s| s.iter().map(|&x| Some(x)).collect()).collect();
    let detect_from = sources[body.len()].clone();
    for (&d, &c) in detect_from.iter().zip(ch) {
        if shapes[d].0 != c {
            return Err(ArchError::Invalid(format!(
                "Detect expects {c} channels from layer {d}, which has {}",
                shapes[d].0
            )));
        }
    }
    let mut last_use = last_uses(&neck_sources, k, n);
    for &d in &detect_from {
        last_use[d] = usize::MAX;
    }
    if names.len() != *nc {
        return Err(ArchError::Invalid(format!("{} names for {nc} classes", names.len())));
    }
    Ok(Detector {
        backbone,
        neck: Graph { layers, offset: k, sources: neck_sources },
        detect: DetectConfig::new(*nc, anchors.clone(), strides.clone(), ch.clone()).init(device),
        taps,
        detect_from,
        shapes,
        last_use,
        names,
        arch,
        neck_specs: neck.to_vec(),
    })
}

impl<B: Backbone> Detector<B> {
    /// Number of classes.
    pub fn nc(&self) -> usize {
        self.detect.nc
    }

    /// Neck + head forward on backbone features: raw per-level logits.
    fn head_forward(&self, feats: Vec<Tensor<4>>, keep_all: bool) -> (Vec<Option<Tensor<4>>>, RawOutputs) {
        let mut table: Vec<Option<Tensor<4>>> = vec![None; self.shapes.len()];
        for (t, f) in self.taps.iter().zip(feats) {
            table[*t] = Some(f);
        }
        let mut last_use = self.last_use.clone();
        for &t in &self.taps {
            last_use[t] = last_use[t].max(self.neck.offset);
        }
        self.neck.run(None, &mut table, keep_all, &last_use);
        let inputs = self.detect_from.iter().map(|&i| table[i].clone().expect("detect input computed")).collect();
        let raw = self.detect.forward_raw(inputs);
        (table, raw)
    }

    /// Training forward: `[B, 3, H, W]` (H, W multiples of the largest stride) → raw logits per level.
    pub fn forward_raw(&self, x: Tensor<4>) -> RawOutputs {
        self.head_forward(self.backbone.forward(x), false).1
    }

    /// Inference forward: decoded rows and raw logits.
    pub fn forward(&self, x: Tensor<4>) -> DetectorOutput {
        let raw = self.forward_raw(x);
        DetectorOutput { decoded: self.detect.decode(&raw), raw }
    }

    /// Folds every BN into its conv (ultralytics `fuse()`), for faster inference.
    pub fn fuse(self) -> Self {
        let neck = Graph { layers: self.neck.layers.into_iter().map(Layer::fuse).collect(), ..self.neck };
        Self { backbone: self.backbone.fuse(), neck, ..self }
    }

    /// Whether the model is fused (no BN left in the neck).
    pub fn is_fused(&self) -> bool {
        let mut any_bn = false;
        let mut probe = |key: &str| any_bn |= key.contains(".bn.");
        let mut v = KeyProbe(&mut probe);
        let mut me = self.clone();
        let _ = me.visit_tensors("model", &mut v);
        !any_bn
    }

    /// Trainable parameter count (BN weights and biases included, running statistics excluded).
    pub fn num_params(&self) -> usize {
        let mut c = ParamCounter::default();
        let mut me = self.clone();
        me.visit_tensors("model", &mut c).expect("counting never fails");
        c.params
    }

    /// Multiply-accumulates for one `height × width` image, thop convention (GFLOPs = 2·MACs/1e9).
    pub fn macs(&self, height: usize, width: usize) -> f64 {
        let bb = self.backbone.macs(height, width);
        let neck = graph_macs(&self.neck, &self.shapes, (3, height, width), height, width);
        let hw: Vec<_> =
            self.detect_from.iter().map(|&i| (height / self.shapes[i].1, width / self.shapes[i].1)).collect();
        bb + neck + self.detect.macs(&hw)
    }

    /// Module count as ultralytics' `model_info` prints it ("N layers").
    pub fn torch_layer_count(&self) -> usize {
        let neck: usize = self.neck.layers.iter().map(Layer::torch_modules).sum();
        // DetectionModel + Sequential + the one SiLU instance all Conv blocks share.
        3 + self.backbone.torch_modules() + neck + self.detect.torch_modules()
    }

    /// The largest stride (input sizes must be multiples of it).
    pub fn max_stride(&self) -> usize {
        self.detect.max_stride()
    }
}

impl YoloModel {
    /// Every layer's output on `x` (backbone and neck in ultralytics numbering) plus the raw head.
    pub fn forward_layers(&self, x: Tensor<4>) -> (Vec<Tensor<4>>, RawOutputs) {
        let all = self.backbone.forward_all(x);
        let feats = self.taps.iter().map(|&t| all[t].clone()).collect();
        let (table, raw) = self.head_forward(feats, true);
        let mut outs = all;
        let n = self.neck.layers.len();
        outs.extend(table.into_iter().skip(outs.len()).take(n).map(|t| t.expect("neck layer ran")));
        (outs, raw)
    }
}

impl<B: Backbone> NamedTensors for Detector<B> {
    fn visit_tensors(&mut self, prefix: &str, v: &mut dyn TensorVisitor) -> Result<(), WeightsError> {
        self.backbone.visit_tensors(prefix, v)?;
        let off = self.neck.offset;
        for (j, l) in self.neck.layers.iter_mut().enumerate() {
            l.visit_tensors(&join(prefix, &(off + j).to_string()), v)?;
        }
        let d = off + self.neck.layers.len();
        self.detect.visit_tensors(&join(prefix, &d.to_string()), v)
    }
}

struct KeyProbe<'a, F: FnMut(&str)>(&'a mut F);

impl<F: FnMut(&str)> TensorVisitor for KeyProbe<'_, F> {
    fn visit(&mut self, key: &str, _slot: crate::state::Slot<'_>) -> Result<(), WeightsError> {
        (self.0)(key);
        Ok(())
    }
}

impl<B: Backbone> Detector<B> {
    /// Plugs a custom backbone into a neck and head described by `neck` layer specs.
    ///
    /// Numbering: backbone feature `j` is layer `j`; `neck[k]` is layer `features.len() + k` and its
    /// `from` indices refer to that numbering; the last spec must be Detect. Returns an error if the
    /// neck's channels do not match the backbone's features.
    pub fn new(backbone: B, neck: &[LayerSpec], names: Vec<String>, device: &Device) -> Result<Self, ArchError> {
        let shapes = backbone.features().iter().map(|f| (f.channels, f.stride)).collect::<Vec<_>>();
        let taps = (0..shapes.len()).collect();
        assemble(backbone, shapes, taps, neck, names, None, device)
    }

    /// This detector's layout (feature indices, neck numbering, class names) on another backbone and
    /// neck: `neck` holds the rows of [`Detector::neck_specs`] at other widths (e.g. pruned), Detect
    /// last. Weights are freshly initialised and `arch` is `None`.
    pub fn with_parts<C: Backbone>(
        &self,
        backbone: C,
        neck: &[LayerSpec],
        device: &Device,
    ) -> Result<Detector<C>, ArchError> {
        let mut shapes = self.shapes[..self.neck.offset].to_vec();
        let feats = backbone.features();
        if feats.len() != self.taps.len() {
            return Err(ArchError::Invalid(format!("{} backbone features for {} taps", feats.len(), self.taps.len())));
        }
        for (&t, f) in self.taps.iter().zip(feats) {
            shapes[t] = (f.channels, f.stride);
        }
        assemble(backbone, shapes, self.taps.clone(), neck, self.names.clone(), None, device)
    }
}
