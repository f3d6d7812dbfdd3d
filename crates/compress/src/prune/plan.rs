//! [`PruneGraph`]: the channel-dependency graph of an [`Architecture`], and [`PrunePlan`]: which
//! units to keep. Turning a plan into a smaller architecture is pure arithmetic (no tensors), so a
//! search can cost thousands of candidates per second.

use std::collections::HashMap;

use yolo_compress_model::{Architecture, LayerSpec};

use super::deps::{ChannelDeps, key};
use super::graph::{ChannelGraph, Channels, Groups, SpaceId};
use crate::error::PruneError;

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

/// Keep (`true`) or remove (`false`) for every unit of a [`PruneGraph`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PrunePlan {
    /// One entry per unit.
    pub keep: Vec<bool>,
}

impl PruneGraph {
    /// Builds the graph of `arch`. Spaces created by the layers in `never_prune` are fixed, as are
    /// the image channels and Detect's outputs.
    pub fn new(arch: &Architecture, never_prune: &[usize]) -> Result<Self, PruneError> {
        arch.validate()?;
        let mut g = ChannelGraph::new();
        let image = g.new_space(arch.input_channels, "image");
        g.fix(&image);
        let mut outputs: Vec<Channels> = Vec::with_capacity(arch.layers.len());
        let mut inputs = Vec::with_capacity(arch.layers.len());
        for (i, l) in arch.layers.iter().enumerate() {
            g.set_layer(i);
            let ins: Vec<Channels> = l
                .from
                .iter()
                .map(|&f| if i == 0 && f == -1 { image.clone() } else { outputs[Architecture::source(i, f)].clone() })
                .collect();
            let widths: Vec<usize> = ins.iter().map(|c| g.width(c)).collect();
            let out = l.block.channels(&mut g, &format!("model.{i}"), &ins);
            let expect = if i + 1 == arch.layers.len() { 0 } else { l.out_channels };
            if g.width(&out) != expect {
                return Err(PruneError::Graph(format!(
                    "layer {i} ({}): the channel description gives {} output channels, the architecture {}",
                    l.module,
                    g.width(&out),
                    expect
                )));
            }
            let _ = widths;
            inputs.push(ins);
            outputs.push(out);
        }
        g.fix_layers(never_prune);
        let mut labels = HashMap::new();
        for (s, sp) in g.spaces().iter().enumerate() {
            if labels.insert(sp.label.clone(), s).is_some() {
                return Err(PruneError::Graph(format!("two spaces are labelled {}", sp.label)));
            }
        }
        let groups = g.finish();
        Ok(PruneGraph { arch: arch.clone(), graph: g, groups, inputs, outputs, labels })
    }

    /// A plan that keeps everything.
    pub fn keep_all(&self) -> PrunePlan {
        PrunePlan { keep: vec![true; self.groups.num_units()] }
    }

    /// Checks that a plan fits this graph and removes no fixed unit.
    pub fn check(&self, plan: &PrunePlan) -> Result<(), PruneError> {
        if plan.keep.len() != self.groups.num_units() {
            return Err(PruneError::Plan(format!(
                "the plan has {} units, the graph {}",
                plan.keep.len(),
                self.groups.num_units()
            )));
        }
        if let Some(u) = (0..plan.keep.len()).find(|&u| !plan.keep[u] && self.groups.unit_fixed[u]) {
            return Err(PruneError::Plan(format!("unit {u} is fixed and cannot be removed")));
        }
        for sp in self.graph.spaces() {
            if (sp.first..sp.first + sp.width).all(|x| !plan.keep[self.groups.unit[x]]) {
                return Err(PruneError::Plan(format!("every channel of {} would be removed", sp.label)));
            }
        }
        Ok(())
    }

    /// Positions of `c` (0-based, along the tensor dimension) whose unit the plan keeps.
    pub fn kept_positions(&self, c: &Channels, plan: &PrunePlan) -> Vec<usize> {
        self.graph
            .flat(c)
            .into_iter()
            .enumerate()
            .filter(|&(_, x)| plan.keep[self.groups.unit[x]])
            .map(|(p, _)| p)
            .collect()
    }

    /// Width of a space after the plan.
    pub fn space_width(&self, s: SpaceId, plan: &PrunePlan) -> usize {
        let sp = &self.graph.spaces()[s];
        (sp.first..sp.first + sp.width).filter(|&x| plan.keep[self.groups.unit[x]]).count()
    }

    /// Width of a feature map after the plan.
    pub fn width(&self, c: &Channels, plan: &PrunePlan) -> usize {
        c.0.iter().map(|&s| self.space_width(s, plan)).sum()
    }

    /// The architecture with every width reduced as the plan says (anchors, strides and names kept).
    pub fn resized_arch(&self, plan: &PrunePlan) -> Architecture {
        let mut arch = self.arch.clone();
        for (i, l) in self.arch.layers.iter().enumerate() {
            let prefix = format!("model.{i}");
            let ins: Vec<usize> = self.inputs[i].iter().map(|c| self.width(c, plan)).collect();
            let width = |name: &str| -> usize {
                let label = key(&prefix, name);
                let s = *self.labels.get(&label).unwrap_or_else(|| panic!("no space is labelled {label}"));
                self.space_width(s, plan)
            };
            let block = l.block.resized(&ins, &width);
            let out_channels =
                if i + 1 == self.arch.layers.len() { l.out_channels } else { self.width(&self.outputs[i], plan) };
            arch.layers[i] = LayerSpec { block, out_channels, ..l.clone() };
        }
        arch
    }
}
