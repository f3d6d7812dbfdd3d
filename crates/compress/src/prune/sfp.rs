//! Soft filter pruning (He et al., "Soft Filter Pruning for Accelerating Deep Convolutional Neural
//! Networks", IJCAI 2018; with FPGM, He et al., CVPR 2019): during training, after every epoch, the
//! lowest-scoring units of every group are zeroed — filters, biases and BN γ/β — but stay trainable,
//! so they may recover. At the end the zeroed units are removed for real ([`SoftFilterPruning::plan`],
//! then [`prune_model`](super::prune_model)); a unit zeroed in all producers outputs exactly zero,
//! so the cut model computes what the masked one does.

use burn::prelude::*;
use yolo_compress_model::{Architecture, YoloModel};
use yolo_compress_train::TrainError;
use yolo_compress_train::trainer::TrainHook;

use super::graph::Role;
use super::importance::{Criterion, unit_scores};
use super::plan::{PruneGraph, PrunePlan};
use super::select::plan_from_ratios;
use super::surgery::{mask_model, model_tensors};
use crate::error::PruneError;

/// The tensor roles SFP zeroes: everything that produces a unit's output.
pub const PRODUCER_ROLES: [Role; 4] = [Role::Filter, Role::Bias, Role::BnWeight, Role::BnBias];

/// Soft filter pruning state for one architecture.
pub struct SoftFilterPruning {
    graph: PruneGraph,
    ratio: f64,
    criterion: Criterion,
    round_to: usize,
    plan: Option<PrunePlan>,
}

impl SoftFilterPruning {
    /// Zeroes `ratio` of every prunable group (rounded as [`super::kept_count`]) by `criterion`
    /// (`l1`, `l2`, `fpgm` or `bn`).
    pub fn new(
        arch: &Architecture,
        ratio: f64,
        criterion: Criterion,
        round_to: usize,
        never_prune: &[usize],
    ) -> Result<Self, PruneError> {
        if !(0.0..1.0).contains(&ratio) {
            return Err(PruneError::Option { name: "sfp", msg: format!("ratio {ratio} is not in [0, 1)") });
        }
        if criterion == Criterion::Taylor {
            return Err(PruneError::Option {
                name: "sfp",
                msg: "taylor needs gradients; use l1, l2, fpgm or bn".into(),
            });
        }
        Ok(Self { graph: PruneGraph::new(arch, never_prune)?, ratio, criterion, round_to, plan: None })
    }

    /// Scores the model, chooses the units to zero, and zeroes them (on `device`, parameters stay
    /// trainable with the same ids, so optimizer state carries over).
    pub fn apply(&mut self, model: YoloModel, device: &Device) -> Result<YoloModel, PruneError> {
        let scores = unit_scores(&self.graph, &model_tensors(&model)?, self.criterion, None, device)?;
        let ratios = vec![self.ratio; self.graph.groups.groups.len()];
        let plan = plan_from_ratios(&self.graph, &scores, &ratios, self.round_to);
        let model = mask_model(model, &self.graph, &plan, &PRODUCER_ROLES, device)?;
        self.plan = Some(plan);
        Ok(model)
    }

    /// The units zeroed by the last [`apply`](Self::apply).
    pub fn plan(&self) -> Option<&PrunePlan> {
        self.plan.as_ref()
    }

    /// The graph the plans refer to.
    pub fn graph(&self) -> &PruneGraph {
        &self.graph
    }
}

fn device_of(model: &YoloModel) -> Result<Device, TrainError> {
    model
        .devices()
        .into_iter()
        .next()
        .ok_or_else(|| TrainError::Config("soft filter pruning: the model has no tensors".into()))
}

/// After every epoch: choose the units on the training model, zero them in the training model and
/// in its EMA (which is validated and saved), so checkpoints carry the soft-pruned weights.
impl TrainHook for SoftFilterPruning {
    fn end_of_epoch(
        &mut self,
        _epoch: usize,
        model: YoloModel,
        ema: YoloModel,
    ) -> Result<(YoloModel, YoloModel), TrainError> {
        let err = |e: PruneError| TrainError::Config(format!("soft filter pruning: {e}"));
        let (md, ed) = (device_of(&model)?, device_of(&ema)?);
        let model = self.apply(model, &md).map_err(err)?;
        let plan = self.plan.clone().expect("apply sets the plan");
        let ema = mask_model(ema, &self.graph, &plan, &PRODUCER_ROLES, &ed).map_err(err)?;
        Ok((model, ema))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::prune::prune_model;

    /// Zeroing every producer of the removed units is exactly the surgery: same outputs.
    #[test]
    fn zeroed_producers_equal_the_cut_model() {
        let device = Device::flex();
        device.seed(21);
        for name in ["yolov5n.yaml", "yolov5s-ghost.yaml"] {
            let arch = Architecture::from_name_or_path(name).unwrap().with_classes(vec!["a".into()]);
            let model = arch.build(&device).unwrap();
            let mut sfp = SoftFilterPruning::new(&arch, 0.4, Criterion::L2, 8, &[]).unwrap();
            let masked = sfp.apply(model, &device).unwrap();
            let plan = sfp.plan().unwrap().clone();
            assert!(plan.keep.iter().any(|k| !k));
            // The zeroed units now score 0 and a second pass keeps the same selection.
            let again =
                unit_scores(sfp.graph(), &model_tensors(&masked).unwrap(), Criterion::L2, None, &device).unwrap();
            for (u, k) in plan.keep.iter().enumerate() {
                if !k {
                    assert_eq!(again[u], 0.0, "zeroed unit {u}");
                } else if !sfp.graph().groups.unit_fixed[u] {
                    assert!(again[u] > 0.0, "kept unit {u}");
                }
            }
            let cut = prune_model(&masked, sfp.graph(), &plan, &device).unwrap();
            let x = Tensor::<4>::random([1, 3, 64, 64], burn::tensor::Distribution::Uniform(0.0, 1.0), &device);
            let a = masked.forward(x.clone()).decoded.into_data().convert::<f32>().try_to_vec::<f32>().unwrap();
            let b = cut.forward(x).decoded.into_data().convert::<f32>().try_to_vec::<f32>().unwrap();
            let err = a.iter().zip(&b).map(|(x, y)| (x - y).abs() / (1.0 + y.abs())).fold(0.0f32, f32::max);
            assert!(err < 1e-4, "{name}: {err}");
        }
        assert!(
            SoftFilterPruning::new(&Architecture::from_name_or_path("yolov5n").unwrap(), 1.0, Criterion::L2, 8, &[])
                .is_err()
        );
    }
}
