//! Which tensor is which: ultralytics' three parameter groups, and the named-tensor walks that the
//! optimizer, the clipping and the EMA key their work by.
//!
//! Everything in [`crate::optim`] identifies a tensor by its ultralytics state-dict key
//! (`model.0.conv.weight`, `model.24.m.0.bias`, …) as [`NamedTensors::visit_tensors`] names it,
//! never by Burn's module path or [`ParamId`]: keys are stable across processes (resuming a run) and
//! match ultralytics' checkpoints.

use std::collections::HashMap;

use burn::module::{Module, ModuleVisitor, Param, ParamId};
use burn::prelude::*;
use yolo_compress_model::state::{NamedTensors, Slot, TensorVisitor};
use yolo_compress_model::{Backbone, Detector, WeightsError};

/// Prefix of every key in a [`Detector`]'s walk (ultralytics' `model.` state-dict prefix).
pub const KEY_PREFIX: &str = "model";

/// ultralytics' three parameter groups, in `smart_optimizer`'s order: `x/lr0` are the biases
/// (no weight decay), `x/lr1` the conv weights (with weight decay), `x/lr2` the BatchNorm weights
/// (no weight decay). The discriminant indexes the `lrs` arrays of [`crate::optim`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ParamGroup {
    /// Every `*.bias` (conv biases, BN β, Detect biases): no weight decay; the warmup starts its lr
    /// at `warmup_bias_lr`.
    Bias = 0,
    /// Every other weight (conv and Detect kernels): weight decay applies.
    Weight = 1,
    /// Normalisation-layer weights (BN γ): no weight decay.
    BnWeight = 2,
}

impl ParamGroup {
    /// The three groups in index order.
    pub const ALL: [ParamGroup; 3] = [ParamGroup::Bias, ParamGroup::Weight, ParamGroup::BnWeight];

    /// Index into a `[f64; 3]` of per-group values.
    pub fn index(self) -> usize {
        self as usize
    }

    /// Whether weight decay applies to this group (only [`ParamGroup::Weight`]).
    pub fn decays(self) -> bool {
        self == ParamGroup::Weight
    }
}

/// The group of the parameter stored under `key` with tensor rank `rank`.
///
/// Mirrors `smart_optimizer`: a parameter named `bias` is a bias; a `weight` of a normalisation
/// layer is a BN weight (normalisation weights are the only rank-1 weights in a detector; conv
/// kernels have rank 4); anything else is a decayed weight.
pub fn param_group(key: &str, rank: usize) -> ParamGroup {
    let name = key.rsplit('.').next().unwrap_or(key);
    if name == "bias" {
        ParamGroup::Bias
    } else if rank == 1 {
        ParamGroup::BnWeight
    } else {
        ParamGroup::Weight
    }
}

/// One trainable parameter of a model, as the named-tensor walk sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NamedParam {
    /// State-dict key, e.g. `model.0.conv.weight`.
    pub key: String,
    /// Burn's id of the parameter (what [`burn::optim::GradientsParams`] is keyed by).
    pub id: ParamId,
    /// Tensor rank (1 for biases and BN parameters, 4 for conv kernels).
    pub rank: usize,
    /// Shape of the parameter.
    pub shape: Vec<usize>,
    /// Its optimizer group.
    pub group: ParamGroup,
}

/// Every trainable parameter of `model` in walk order (the state-dict order).
pub fn named_params<B: Backbone>(model: &mut Detector<B>) -> Vec<NamedParam> {
    let mut out = Vec::new();
    walk(model, |key, slot| {
        let (id, shape) = match &slot {
            Slot::Param1(p) => (p.id, p.dims().to_vec()),
            Slot::Param4(p) => (p.id, p.dims().to_vec()),
            Slot::Running(_) | Slot::Host(..) => return,
        };
        let rank = shape.len();
        out.push(NamedParam { key: key.to_string(), id, rank, shape, group: param_group(key, rank) });
    });
    out
}

/// Counts the parameters of each group (number of tensors, not of scalars), in group order, as
/// ultralytics logs them ("… N weight(decay=0.0), N weight(decay=…), N bias").
pub fn group_sizes<B: Backbone>(model: &mut Detector<B>) -> [usize; 3] {
    let mut n = [0; 3];
    for p in named_params(model) {
        n[p.group.index()] += 1;
    }
    n
}

/// Runs `f` on every named tensor of `model` (prefix [`KEY_PREFIX`]).
pub(crate) fn walk<B: Backbone>(model: &mut Detector<B>, f: impl FnMut(&str, Slot<'_>)) {
    struct Walk<F>(F);
    impl<F: FnMut(&str, Slot<'_>)> TensorVisitor for Walk<F> {
        fn visit(&mut self, key: &str, slot: Slot<'_>) -> Result<(), WeightsError> {
            (self.0)(key, slot);
            Ok(())
        }
    }
    model.visit_tensors(KEY_PREFIX, &mut Walk(f)).expect("a visitor that never fails");
}

/// The Burn id of a module holding a single float tensor (a `RunningState`, whose id is private).
pub(crate) fn single_id<M: Module>(module: &M) -> Option<ParamId> {
    struct Probe(Option<ParamId>);
    impl ModuleVisitor for Probe {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            self.0.get_or_insert(param.id);
        }
    }
    let mut probe = Probe(None);
    module.visit(&mut probe);
    probe.0
}

/// `id → (key, group)` of every trainable parameter.
pub(crate) fn param_index<B: Backbone>(model: &mut Detector<B>) -> HashMap<ParamId, (String, ParamGroup)> {
    named_params(model).into_iter().map(|p| (p.id, (p.key, p.group))).collect()
}

/// Flattens a tensor to rank 1 (row-major; free for contiguous tensors).
pub(crate) fn flatten<const D: usize>(t: Tensor<D>) -> Tensor<1> {
    let n = t.shape().num_elements();
    t.reshape([n])
}

/// Reads a tensor back as a row-major `f32` vector.
pub(crate) fn host_values<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.into_data().try_into_vec_as::<f32>().expect("a float tensor reads back as f32")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_follow_smart_optimizer() {
        assert_eq!(param_group("model.0.conv.weight", 4), ParamGroup::Weight);
        assert_eq!(param_group("model.0.bn.weight", 1), ParamGroup::BnWeight);
        assert_eq!(param_group("model.0.bn.bias", 1), ParamGroup::Bias);
        assert_eq!(param_group("model.24.m.0.weight", 4), ParamGroup::Weight);
        assert_eq!(param_group("model.24.m.0.bias", 1), ParamGroup::Bias);
        assert_eq!(param_group("model.8.m.0.cv1.conv.bias", 1), ParamGroup::Bias);
        assert_eq!(ParamGroup::ALL.map(ParamGroup::index), [0, 1, 2]);
        assert!(ParamGroup::Weight.decays() && !ParamGroup::Bias.decays() && !ParamGroup::BnWeight.decays());
    }

    /// yolov5n has 57 conv weights + 3 Detect weights with decay, 57 BN weights, 57 BN biases + 3
    /// Detect biases — the counts ultralytics logs for yolov5n ("57 weight(decay=0.0), 60
    /// weight(decay=0.0005), 60 bias").
    #[test]
    fn yolov5n_group_sizes_match_ultralytics_log() {
        let arch = yolo_compress_model::Architecture::from_name_or_path("yolov5n.yaml").unwrap();
        let mut model = arch.build(&Device::flex()).unwrap();
        assert_eq!(group_sizes(&mut model), [60, 60, 57]);
        let params = named_params(&mut model);
        assert_eq!(params[0].key, "model.0.conv.weight");
        assert_eq!(params[0].shape, vec![16, 3, 6, 6]);
        let n: usize = params.iter().map(|p| p.shape.iter().product::<usize>()).sum();
        assert_eq!(n, model.num_params());
    }
}
