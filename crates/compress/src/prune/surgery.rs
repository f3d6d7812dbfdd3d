//! Channel surgery: slice every tensor of a detector as a [`PrunePlan`] says and load the slices
//! into a freshly built detector at the pruned widths ([`prune_model`] for a [`YoloModel`] and its
//! [`PruneGraph`], [`prune_detector`] for any [`PrunableBackbone`] and its [`DetectorGraph`]). Also
//! masking (zeroing instead of removing), the reference the surgery is tested against and the
//! mechanism of soft filter pruning.

use std::collections::HashMap;

use burn::prelude::*;
use yolo_compress_model::state::{Collector, NamedTensors, Slot, TensorVisitor};
use yolo_compress_model::{Backbone, Detector, WeightsError, YoloModel};

use super::backbone::PrunableBackbone;
use super::compensate::compensate;
use super::graph::{ChannelGraph, Role};
use super::plan::{DetectorGraph, MODEL_PREFIX, PlanGraph, PruneGraph, PrunePlan};
use super::stats::ActivationStats;
use crate::error::PruneError;

/// Keeps the entries `idx` of dimension `dim` of a row-major tensor.
pub fn select_dim(values: &[f32], shape: &[usize], dim: usize, idx: &[usize]) -> (Vec<f32>, Vec<usize>) {
    let outer: usize = shape[..dim].iter().product();
    let inner: usize = shape[dim + 1..].iter().product();
    let n = shape[dim];
    let mut out = Vec::with_capacity(outer * idx.len() * inner);
    for o in 0..outer {
        for &i in idx {
            let start = (o * n + i) * inner;
            out.extend_from_slice(&values[start..start + inner]);
        }
    }
    let mut new_shape = shape.to_vec();
    new_shape[dim] = idx.len();
    (out, new_shape)
}

/// Zeroes the entries `idx` of dimension `dim` of a row-major tensor.
pub fn zero_dim(values: &mut [f32], shape: &[usize], dim: usize, idx: &[usize]) {
    let outer: usize = shape[..dim].iter().product();
    let inner: usize = shape[dim + 1..].iter().product();
    let n = shape[dim];
    for o in 0..outer {
        for &i in idx {
            let start = (o * n + i) * inner;
            values[start..start + inner].fill(0.0);
        }
    }
}

/// Named tensors: state-dict key → `(shape, row-major values)`.
pub type Tensors = HashMap<String, (Vec<usize>, Vec<f32>)>;

/// Every tensor of a detector by key.
pub fn model_tensors<B: Backbone>(model: &Detector<B>) -> Result<Tensors, PruneError> {
    let mut col = Collector::default();
    model.clone().visit_tensors(MODEL_PREFIX, &mut col)?;
    Ok(col.tensors.into_iter().map(|(k, s, v)| (k, (s, v))).collect())
}

/// Checks that every tensor the graph describes exists with the described width.
fn check_uses(graph: &ChannelGraph, tensors: &Tensors) -> Result<(), PruneError> {
    for u in graph.uses() {
        let (shape, _) = tensors.get(&u.key).ok_or_else(|| PruneError::Tensor {
            key: u.key.clone(),
            msg: "not in the model (fused models cannot be pruned: prune before fusing)".into(),
        })?;
        let w = graph.width(&u.channels);
        if shape.get(u.dim) != Some(&w) {
            return Err(PruneError::Tensor {
                key: u.key.clone(),
                msg: format!("shape {shape:?}, but the graph says dim {} has {w} channels", u.dim),
            });
        }
    }
    Ok(())
}

struct Setter<'a> {
    tensors: Tensors,
    device: &'a Device,
}

impl TensorVisitor for Setter<'_> {
    fn visit(&mut self, key: &str, mut slot: Slot<'_>) -> Result<(), WeightsError> {
        let path = std::path::PathBuf::from("<pruned tensors>");
        let (shape, values) = self.tensors.remove(key).ok_or_else(|| WeightsError::Missing {
            path: path.clone(),
            key: key.to_string(),
            expected: slot.shape(),
        })?;
        if slot.shape() != shape {
            return Err(WeightsError::Shape { path, key: key.to_string(), expected: slot.shape(), found: shape });
        }
        slot.set(values, self.device);
        Ok(())
    }
}

/// Loads `tensors` into every tensor of `model`; each must be used exactly once.
pub(crate) fn load<M: NamedTensors>(model: &mut M, tensors: Tensors, device: &Device) -> Result<(), PruneError> {
    let mut setter = Setter { tensors, device };
    model.visit_tensors(MODEL_PREFIX, &mut setter)?;
    if let Some(k) = setter.tensors.keys().next() {
        return Err(PruneError::Tensor { key: k.clone(), msg: "has no place in the pruned model".into() });
    }
    Ok(())
}

/// An independent copy of a model (fresh storage for every tensor, BN running statistics included:
/// Burn's `RunningState` is shared between clones, so a training-mode forward on a clone would
/// change the original's statistics).
pub fn deep_copy(model: &YoloModel, device: &Device) -> Result<YoloModel, PruneError> {
    let arch = model.arch.as_ref().ok_or(PruneError::NoArchitecture)?;
    let mut copy = arch.build(device)?;
    load(&mut copy, model_tensors(model)?, device)?;
    Ok(copy)
}

/// The surgery shared by [`prune_model`] and [`prune_detector`]: checks the plan and the model's
/// tensors against the graph, keeps the plan's slices of every described tensor dimension, and
/// loads every tensor into the detector `build` makes at the pruned widths.
fn cut<B: Backbone, C: Backbone>(
    model: &Detector<B>,
    graph: &impl PlanGraph,
    plan: &PrunePlan,
    means: Option<&ActivationStats>,
    device: &Device,
    build: impl FnOnce() -> Result<Detector<C>, PruneError>,
) -> Result<Detector<C>, PruneError> {
    graph.check(plan)?;
    let mut tensors = model_tensors(model)?;
    check_uses(graph.channel_graph(), &tensors)?;
    if let Some(stats) = means {
        compensate(&mut tensors, graph, plan, stats)?;
    }
    for u in graph.channel_graph().uses() {
        let idx = graph.positions(&u.channels, plan, true);
        let (shape, values) = tensors.get_mut(&u.key).expect("checked");
        if idx.len() != shape[u.dim] {
            let (v, s) = select_dim(values, shape, u.dim, &idx);
            *values = v;
            *shape = s;
        }
    }
    let mut pruned = build()?;
    load(&mut pruned, tensors, device)?;
    Ok(pruned)
}

/// Removes the channels the plan drops: returns a new, smaller model of
/// [`PruneGraph::resized_arch`] holding the kept slices of every weight and BN statistic (anchors,
/// class names and untouched tensors carried over). The model must be unfused and built from the
/// graph's architecture.
pub fn prune_model(
    model: &YoloModel,
    pg: &PruneGraph,
    plan: &PrunePlan,
    device: &Device,
) -> Result<YoloModel, PruneError> {
    prune_model_with(model, pg, plan, None, device)
}

/// [`prune_model`] with compensation when `means` is given: every removed channel's mean on the
/// calibration images (measured on `model`) is folded into its consumers, and its linear
/// prediction from the kept channels too when the statistics carry covariances
/// ([`compensate`](super::compensate::compensate)).
pub fn prune_model_with(
    model: &YoloModel,
    pg: &PruneGraph,
    plan: &PrunePlan,
    means: Option<&ActivationStats>,
    device: &Device,
) -> Result<YoloModel, PruneError> {
    match &model.arch {
        None => return Err(PruneError::NoArchitecture),
        Some(a) if a.layers != pg.arch.layers => {
            return Err(PruneError::Graph("the model's architecture is not the one the graph was built from".into()));
        }
        _ => {}
    }
    cut(model, pg, plan, means, device, || Ok(pg.resized_arch(plan).build(device)?))
}

/// [`prune_model`] for a detector on any [`PrunableBackbone`]: the backbone rebuilt by
/// [`PrunableBackbone::resized`], the neck by [`DetectorGraph::resized_neck`], in the model's layout
/// ([`Detector::with_parts`]), holding the kept slices of every tensor. The model must be unfused
/// and the one the graph was built from. The result has no `arch` (for a [`YoloModel`],
/// [`prune_model`] also resizes the architecture, which native checkpoints store).
pub fn prune_detector<B: PrunableBackbone>(
    model: &Detector<B>,
    dg: &DetectorGraph,
    plan: &PrunePlan,
    device: &Device,
) -> Result<Detector<B>, PruneError> {
    if model.neck_specs != dg.neck || model.taps != dg.taps || model.neck.offset != dg.offset {
        return Err(PruneError::Graph("the detector's neck is not the one the graph was built from".into()));
    }
    cut(model, dg, plan, None, device, || {
        let backbone = dg.resized_backbone(&model.backbone, plan, device);
        Ok(model.with_parts(backbone, &dg.resized_neck(plan), device)?)
    })
}

/// Zeroes, in place of removing, the slices of the removed units in the tensor dimensions whose
/// role is in `roles`: [`Role::Input`] masks the consumers (the reference the surgery must equal);
/// filters, biases and BN γ/β zero the producers (soft filter pruning).
pub fn mask_model(
    model: YoloModel,
    pg: &PruneGraph,
    plan: &PrunePlan,
    roles: &[Role],
    device: &Device,
) -> Result<YoloModel, PruneError> {
    mask_detector(model, pg, plan, roles, device)
}

/// [`mask_model`] for any detector and either graph ([`PruneGraph`] or [`DetectorGraph`]).
pub fn mask_detector<B: Backbone>(
    model: Detector<B>,
    graph: &impl PlanGraph,
    plan: &PrunePlan,
    roles: &[Role],
    device: &Device,
) -> Result<Detector<B>, PruneError> {
    graph.check(plan)?;
    let mut by_key: HashMap<&str, Vec<(usize, Vec<usize>)>> = HashMap::new();
    for u in graph.channel_graph().uses().iter().filter(|u| roles.contains(&u.role)) {
        let removed = graph.positions(&u.channels, plan, false);
        if !removed.is_empty() {
            by_key.entry(u.key.as_str()).or_default().push((u.dim, removed));
        }
    }
    struct Masker<'a> {
        by_key: HashMap<&'a str, Vec<(usize, Vec<usize>)>>,
        device: &'a Device,
    }
    impl TensorVisitor for Masker<'_> {
        fn visit(&mut self, key: &str, mut slot: Slot<'_>) -> Result<(), WeightsError> {
            if let Some(dims) = self.by_key.remove(key) {
                let shape = slot.shape();
                let mut values = slot.to_vec();
                for (dim, idx) in dims {
                    zero_dim(&mut values, &shape, dim, &idx);
                }
                slot.set(values, self.device);
            }
            Ok(())
        }
    }
    let mut model = model;
    let mut m = Masker { by_key, device };
    model.visit_tensors(MODEL_PREFIX, &mut m)?;
    if let Some(k) = m.by_key.keys().next() {
        return Err(PruneError::Tensor { key: k.to_string(), msg: "not in the model".into() });
    }
    Ok(model)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn select_and_zero_along_a_middle_dim() {
        // shape [2, 3, 2]: value = 100 o + 10 i + j
        let shape = [2, 3, 2];
        let v: Vec<f32> =
            (0..2).flat_map(|o| (0..3).flat_map(move |i| (0..2).map(move |j| (100 * o + 10 * i + j) as f32))).collect();
        let (s, ns) = select_dim(&v, &shape, 1, &[0, 2]);
        assert_eq!(ns, vec![2, 2, 2]);
        assert_eq!(s, vec![0., 1., 20., 21., 100., 101., 120., 121.]);
        let mut z = v.clone();
        zero_dim(&mut z, &shape, 1, &[1]);
        assert_eq!(z[2..4], [0., 0.]);
        assert_eq!(z[8..10], [0., 0.]);
        assert_eq!(z[4], 20.0);
    }
}
