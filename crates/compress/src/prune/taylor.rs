//! Gradients for the first-order Taylor criterion: a few training batches through the YOLOv5 loss.

use std::collections::HashMap;

use burn::optim::GradientsParams;
use burn::prelude::*;
use yolo_compress_data::augment::Hyp;
use yolo_compress_data::loader::Loader;
use yolo_compress_model::state::{NamedTensors, Slot, TensorVisitor};
use yolo_compress_model::{WeightsError, YoloModel};
use yolo_compress_train::loss::{YoloLoss, YoloLossConfig};
use yolo_compress_train::trainer::loss_and_grads;

use super::importance::{TaylorAccumulator, Tensors};
use super::plan::PruneGraph;
use super::surgery::{deep_copy, model_tensors};
use crate::error::PruneError;

/// The gradient of every trainable tensor, by state-dict key.
pub fn named_grads(model: &YoloModel, grads: &GradientsParams) -> Tensors {
    struct G<'a>(&'a GradientsParams, Tensors);
    impl TensorVisitor for G<'_> {
        fn visit(&mut self, key: &str, slot: Slot<'_>) -> Result<(), WeightsError> {
            let (shape, data) = match slot {
                Slot::Param1(p) => match self.0.get::<1>(p.id) {
                    Some(g) => (g.dims().to_vec(), g.into_data()),
                    None => return Ok(()),
                },
                Slot::Param4(p) => match self.0.get::<4>(p.id) {
                    Some(g) => (g.dims().to_vec(), g.into_data()),
                    None => return Ok(()),
                },
                _ => return Ok(()),
            };
            let v = data.convert::<f32>().try_to_vec::<f32>().expect("float gradient");
            self.1.insert(key.to_string(), (shape, v));
            Ok(())
        }
    }
    let mut g = G(grads, HashMap::new());
    model.clone().visit_tensors("model", &mut g).expect("collecting gradients never fails");
    g.1
}

/// Accumulates Taylor scores over `batches` batches of `loader` (training mode, autodiff on
/// `device`). The model's weights are not changed.
pub fn taylor_scores(
    model: &YoloModel,
    pg: &PruneGraph,
    loader: &Loader,
    hyp: &Hyp,
    imgsz: usize,
    batches: usize,
    device: &Device,
) -> Result<TaylorAccumulator, PruneError> {
    let tensors = model_tensors(model)?;
    let ad = device.clone().autodiff();
    // A training-mode forward updates BN running statistics: work on a copy.
    let m = deep_copy(model, device)?.fork(&ad).train();
    let loss_cfg = YoloLossConfig::from_hyp(hyp, m.nc(), m.detect.nl(), imgsz, 0.0);
    let loss_fn = YoloLoss::new(loss_cfg, &m.detect);
    let mut acc = TaylorAccumulator::default();
    for batch in loader.epoch(0).take(batches) {
        let batch = batch.map_err(|e| PruneError::Option { name: "data", msg: e.to_string() })?;
        let images = batch.images.to_device(&ad);
        let (_, grads) = loss_and_grads(&m, &loss_fn, images, &batch.target_rows);
        acc.add_batch(pg, &tensors, &named_grads(&m, &grads))?;
    }
    if acc.batches == 0 {
        return Err(PruneError::Option {
            name: "data",
            msg: "the loader gave no batch for the Taylor criterion".into(),
        });
    }
    Ok(acc)
}
