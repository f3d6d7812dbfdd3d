//! [`PruneGraph`]: the channel-dependency graph of an [`Architecture`]; [`DetectorGraph`]: the same
//! for any [`Detector`] whose backbone is a [`PrunableBackbone`]; [`PrunePlan`]: which units to keep
//! (for either, through [`PlanGraph`]). Turning a plan into smaller layer specs is pure arithmetic
//! (no tensors), so a search can cost thousands of candidates per second.

use std::collections::HashMap;

use burn::prelude::Device;
use yolo_compress_model::{Architecture, BlockSpec, Detector, LayerSpec};

use super::backbone::PrunableBackbone;
use super::deps::{key, layers_channels, resized_layers};
use super::graph::{ChannelGraph, Channels, Groups, SpaceId};
use crate::error::PruneError;

/// The key prefix a [`Detector`]'s tensors are walked under (`model.4.cv1.conv.weight`).
pub const MODEL_PREFIX: &str = "model";

/// The channel-dependency graph of an architecture.
#[derive(Clone, Debug)]
pub struct PruneGraph {
    /// The architecture it describes.
    pub arch: Architecture,
    /// Spaces, couplings and tensor uses.
    pub graph: ChannelGraph,
    /// Units and groups.
    pub groups: Groups,
    /// Input channels of every layer.
    pub inputs: Vec<Vec<Channels>>,
    /// Output channels of every layer.
    pub outputs: Vec<Channels>,
    labels: HashMap<String, SpaceId>,
}

/// Keep (`true`) or remove (`false`) for every unit of a [`PruneGraph`] or [`DetectorGraph`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PrunePlan {
    /// One entry per unit.
    pub keep: Vec<bool>,
}

/// A finished channel-dependency graph with labelled spaces, which [`PrunePlan`]s index:
/// [`PruneGraph`] and [`DetectorGraph`].
pub trait PlanGraph {
    /// Spaces, couplings and tensor uses.
    fn channel_graph(&self) -> &ChannelGraph;

    /// Units and groups.
    fn unit_groups(&self) -> &Groups;

    /// The space labelled `label`, if any.
    fn labelled(&self, label: &str) -> Option<SpaceId>;

    /// A plan that keeps everything.
    fn keep_all(&self) -> PrunePlan {
        PrunePlan { keep: vec![true; self.unit_groups().num_units()] }
    }

    /// Checks that a plan fits this graph and removes no fixed unit.
    fn check(&self, plan: &PrunePlan) -> Result<(), PruneError> {
        let groups = self.unit_groups();
        if plan.keep.len() != groups.num_units() {
            return Err(PruneError::Plan(format!(
                "the plan has {} units, the graph {}",
                plan.keep.len(),
                groups.num_units()
            )));
        }
        if let Some(u) = (0..plan.keep.len()).find(|&u| !plan.keep[u] && groups.unit_fixed[u]) {
            return Err(PruneError::Plan(format!("unit {u} is fixed and cannot be removed")));
        }
        for sp in self.channel_graph().spaces() {
            if (sp.first..sp.first + sp.width).all(|x| !plan.keep[groups.unit[x]]) {
                return Err(PruneError::Plan(format!("every channel of {} would be removed", sp.label)));
            }
        }
        Ok(())
    }

    /// Positions of `c` (0-based, along the tensor dimension) whose unit the plan keeps (`keep`) or
    /// removes (`!keep`).
    fn positions(&self, c: &Channels, plan: &PrunePlan, keep: bool) -> Vec<usize> {
        let unit = &self.unit_groups().unit;
        self.channel_graph()
            .flat(c)
            .into_iter()
            .enumerate()
            .filter(|&(_, x)| plan.keep[unit[x]] == keep)
            .map(|(p, _)| p)
            .collect()
    }

    /// Width of a space after the plan.
    fn space_width(&self, s: SpaceId, plan: &PrunePlan) -> usize {
        let sp = &self.channel_graph().spaces()[s];
        (sp.first..sp.first + sp.width).filter(|&x| plan.keep[self.unit_groups().unit[x]]).count()
    }

    /// Width of a feature map after the plan.
    fn width(&self, c: &Channels, plan: &PrunePlan) -> usize {
        c.0.iter().map(|&s| self.space_width(s, plan)).sum()
    }

    /// Width after the plan of the space labelled `label`.
    ///
    /// # Panics
    /// If no space has that label (a block's `resized` asking for a name its `channels` never
    /// created).
    fn label_width(&self, label: &str, plan: &PrunePlan) -> usize {
        let s = self.labelled(label).unwrap_or_else(|| panic!("no space is labelled {label}"));
        self.space_width(s, plan)
    }
}

/// Labels every space of a finished description (labels must be unique) and collapses it into
/// units and groups.
fn finish(g: &ChannelGraph) -> Result<(HashMap<String, SpaceId>, Groups), PruneError> {
    let mut labels = HashMap::new();
    for (s, sp) in g.spaces().iter().enumerate() {
        if labels.insert(sp.label.clone(), s).is_some() {
            return Err(PruneError::Graph(format!("two spaces are labelled {}", sp.label)));
        }
    }
    Ok((labels, g.finish()))
}

/// Checks that the described layers output the widths their specs say (`first` = index of
/// `layers[0]`, `outputs` indexed by layer); Detect outputs nothing.
fn check_widths(g: &ChannelGraph, layers: &[LayerSpec], first: usize, outputs: &[Channels]) -> Result<(), PruneError> {
    for (j, l) in layers.iter().enumerate() {
        let i = first + j;
        let expect = if matches!(l.block, BlockSpec::Detect { .. }) { 0 } else { l.out_channels };
        if g.width(&outputs[i]) != expect {
            return Err(PruneError::Graph(format!(
                "layer {i} ({}): the channel description gives {} output channels, the spec {}",
                l.module,
                g.width(&outputs[i]),
                expect
            )));
        }
    }
    Ok(())
}

/// A new graph with its fixed image space.
fn with_image(channels: usize) -> (ChannelGraph, Channels) {
    let mut g = ChannelGraph::new();
    let image = g.new_space(channels, "image");
    g.fix(&image);
    (g, image)
}

impl PruneGraph {
    /// Builds the graph of `arch`. Spaces created by the layers in `never_prune` are fixed, as are
    /// the image channels and Detect's outputs.
    pub fn new(arch: &Architecture, never_prune: &[usize]) -> Result<Self, PruneError> {
        arch.validate()?;
        let (mut g, image) = with_image(arch.input_channels);
        let mut outputs = Vec::with_capacity(arch.layers.len());
        let inputs = layers_channels(&mut g, MODEL_PREFIX, &arch.layers, &image, &mut outputs);
        check_widths(&g, &arch.layers, 0, &outputs)?;
        g.fix_layers(never_prune);
        let (labels, groups) = finish(&g)?;
        Ok(PruneGraph { arch: arch.clone(), graph: g, groups, inputs, outputs, labels })
    }

    /// A plan that keeps everything.
    pub fn keep_all(&self) -> PrunePlan {
        PlanGraph::keep_all(self)
    }

    /// Checks that a plan fits this graph and removes no fixed unit.
    pub fn check(&self, plan: &PrunePlan) -> Result<(), PruneError> {
        PlanGraph::check(self, plan)
    }

    /// Positions of `c` (0-based, along the tensor dimension) whose unit the plan keeps.
    pub fn kept_positions(&self, c: &Channels, plan: &PrunePlan) -> Vec<usize> {
        self.positions(c, plan, true)
    }

    /// Width of a space after the plan.
    pub fn space_width(&self, s: SpaceId, plan: &PrunePlan) -> usize {
        PlanGraph::space_width(self, s, plan)
    }

    /// Width of a feature map after the plan.
    pub fn width(&self, c: &Channels, plan: &PrunePlan) -> usize {
        PlanGraph::width(self, c, plan)
    }

    /// The architecture with every width reduced as the plan says (anchors, strides and names kept).
    pub fn resized_arch(&self, plan: &PrunePlan) -> Architecture {
        let width = |label: &str| self.label_width(label, plan);
        let layers = resized_layers(MODEL_PREFIX, &self.arch.layers, self.arch.input_channels, &mut Vec::new(), &width);
        Architecture { layers, ..self.arch.clone() }
    }
}

/// The channel-dependency graph of a [`Detector`] on any [`PrunableBackbone`]: the backbone's own
/// description, then the neck rows ([`Detector::neck_specs`]) through the blocks' `ChannelDeps`.
/// Detect's inputs are prunable, its outputs and the image fixed.
#[derive(Clone, Debug)]
pub struct DetectorGraph {
    /// Spaces, couplings and tensor uses.
    pub graph: ChannelGraph,
    /// Units and groups.
    pub groups: Groups,
    /// Channels of each backbone feature, in [`Backbone::features`](yolo_compress_model::Backbone::features)
    /// order.
    pub features: Vec<Channels>,
    /// The detector's index of each feature ([`Detector::taps`]).
    pub taps: Vec<usize>,
    /// Index of the first neck row.
    pub offset: usize,
    /// The neck rows, Detect last.
    pub neck: Vec<LayerSpec>,
    labels: HashMap<String, SpaceId>,
}

impl DetectorGraph {
    /// Describes `model`. The backbone's spaces count as layer 0 unless its description sets
    /// layers itself; spaces of the layers in `never_prune` are fixed.
    pub fn new<B: PrunableBackbone>(model: &Detector<B>, never_prune: &[usize]) -> Result<Self, PruneError> {
        let (mut g, image) = with_image(model.backbone.image_channels());
        g.set_layer(0);
        let features = model.backbone.channels(&mut g, MODEL_PREFIX, &image);
        let specs = model.backbone.features();
        let widths: Vec<usize> = features.iter().map(|f| g.width(f)).collect();
        if widths != specs.iter().map(|f| f.channels).collect::<Vec<_>>() || features.len() != model.taps.len() {
            return Err(PruneError::Graph(format!(
                "the backbone describes features of {widths:?} channels, but has {:?}",
                specs.iter().map(|f| f.channels).collect::<Vec<_>>()
            )));
        }
        let offset = model.neck.offset;
        let mut table = vec![Channels::default(); offset];
        for (&t, f) in model.taps.iter().zip(&features) {
            table[t] = f.clone();
        }
        layers_channels(&mut g, MODEL_PREFIX, &model.neck_specs, &image, &mut table);
        check_widths(&g, &model.neck_specs, offset, &table)?;
        g.fix_layers(never_prune);
        let (labels, groups) = finish(&g)?;
        Ok(DetectorGraph {
            graph: g,
            groups,
            features,
            taps: model.taps.clone(),
            offset,
            neck: model.neck_specs.clone(),
            labels,
        })
    }

    /// The neck rows at the plan's widths.
    pub fn resized_neck(&self, plan: &PrunePlan) -> Vec<LayerSpec> {
        let mut widths = vec![0; self.offset];
        for (&t, f) in self.taps.iter().zip(&self.features) {
            widths[t] = self.width(f, plan);
        }
        resized_layers(MODEL_PREFIX, &self.neck, 0, &mut widths, &|label| self.label_width(label, plan))
    }

    /// The backbone at the plan's widths (freshly initialised).
    pub fn resized_backbone<B: PrunableBackbone>(&self, backbone: &B, plan: &PrunePlan, device: &Device) -> B {
        backbone.resized(&|name| self.label_width(&key(MODEL_PREFIX, name), plan), device)
    }
}

/// Implements [`PlanGraph`] for a struct with `graph`, `groups` and `labels` fields.
macro_rules! plan_graph {
    ($($t:ty),*) => {$(
        impl PlanGraph for $t {
            fn channel_graph(&self) -> &ChannelGraph {
                &self.graph
            }

            fn unit_groups(&self) -> &Groups {
                &self.groups
            }

            fn labelled(&self, label: &str) -> Option<SpaceId> {
                self.labels.get(label).copied()
            }
        }
    )*};
}

plan_graph!(PruneGraph, DetectorGraph);
