//! Global-norm gradient clipping, as `torch.nn.utils.clip_grad_norm_` (ultralytics clips at 10).
//!
//! Burn's own `GradientClipping::Norm` clips each tensor on its own norm; ultralytics clips all
//! gradients together by their global L2 norm: `total = ‖(‖g₁‖, …, ‖gₖ‖)‖₂`,
//! `coef = max_norm / (total + 1e-6)`, and every gradient is multiplied by `min(coef, 1)`.

use burn::module::ParamId;
use burn::optim::GradientsParams;
use burn::prelude::*;
use yolo_compress_model::{Backbone, Detector};

use super::groups::{flatten, host_values, named_params};

/// ultralytics' `max_norm` (train.py: `clip_grad_norm_(model.parameters(), max_norm=10.0)`).
pub const CLIP_MAX_NORM: f64 = 10.0;

/// Clips the gradients of every trainable parameter of `model` found in `grads` to a global L2
/// norm of `max_norm`; returns the total norm before clipping (`inf`/`NaN` if a gradient is
/// not finite, in which case, as in PyTorch, the gradients become zeros or NaN).
pub fn clip_grad_norm<B: Backbone>(model: &mut Detector<B>, grads: &mut GradientsParams, max_norm: f64) -> f64 {
    let params: Vec<(ParamId, usize)> = named_params(model).into_iter().map(|p| (p.id, p.rank)).collect();
    clip_grad_norm_params(grads, &params, max_norm)
}

/// [`clip_grad_norm`] over an explicit list of `(id, rank)` (ranks 1 to 5); ids without a gradient
/// are skipped. Returns the total norm before clipping (0 when no gradient is found).
pub fn clip_grad_norm_params(grads: &mut GradientsParams, params: &[(ParamId, usize)], max_norm: f64) -> f64 {
    let present: Vec<(ParamId, usize, Tensor<1>)> =
        params.iter().filter_map(|&(id, rank)| flat_grad(grads, id, rank).map(|g| (id, rank, g))).collect();
    if present.is_empty() {
        return 0.0;
    }
    // Per-tensor norms on the device, then the norm of the norms: one read-back.
    let device = present[0].2.device();
    let norms: Vec<Tensor<1>> =
        present.iter().map(|(_, _, g)| g.clone().mul(g.clone()).sum().sqrt().to_device(&device)).collect();
    let norms = Tensor::cat(norms, 0);
    let total = host_values(norms.clone().mul(norms).sum().sqrt())[0];
    // PyTorch computes the coefficient in f32: max_norm / (total + 1e-6), clamped at 1.
    let coef = max_norm as f32 / (total + 1e-6_f32);
    if coef.is_nan() || coef < 1.0 {
        for &(id, rank, _) in &present {
            scale_grad(grads, id, rank, coef);
        }
    }
    f64::from(total)
}

fn flat_grad(grads: &GradientsParams, id: ParamId, rank: usize) -> Option<Tensor<1>> {
    match rank {
        1 => grads.get::<1>(id),
        2 => grads.get::<2>(id).map(flatten),
        3 => grads.get::<3>(id).map(flatten),
        4 => grads.get::<4>(id).map(flatten),
        5 => grads.get::<5>(id).map(flatten),
        _ => None,
    }
}

fn scale_grad(grads: &mut GradientsParams, id: ParamId, rank: usize, coef: f32) {
    fn scale<const D: usize>(grads: &mut GradientsParams, id: ParamId, coef: f32) {
        if let Some(g) = grads.remove::<D>(id) {
            grads.register::<D>(id, g.mul_scalar(coef));
        }
    }
    match rank {
        1 => scale::<1>(grads, id, coef),
        2 => scale::<2>(grads, id, coef),
        3 => scale::<3>(grads, id, coef),
        4 => scale::<4>(grads, id, coef),
        5 => scale::<5>(grads, id, coef),
        _ => {}
    }
}
