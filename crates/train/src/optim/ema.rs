//! ultralytics' `ModelEMA`: an exponential moving average of every float tensor of the model
//! (parameters, BN running statistics and the anchors), with a decay that ramps up from 0.
//!
//! `d(updates) = decay · (1 − exp(−updates / tau))`; each update does `ema ← d·ema + (1 − d)·model`.
//!
//! The EMA keeps its own copy of the model, made with Burn's `valid()`: on the inner
//! (non-autodiff) device, parameters not requiring gradients, and BN running statistics in their
//! own storage (a `clone()` would share them with the training model). Parameters are blended on
//! their raw stored value (any reparameterization stays attached, as in the training model).

use std::collections::HashMap;

use burn::module::{Module, ModuleMapper, Param, ParamId};
use burn::prelude::*;
use yolo_compress_model::state::Slot;
use yolo_compress_model::{Backbone, Detector};

use super::groups::{flatten, single_id, walk};

/// ultralytics' `ModelEMA` decay.
pub const EMA_DECAY: f64 = 0.9999;
/// ultralytics' `ModelEMA` ramp time constant (in updates).
pub const EMA_TAU: f64 = 2000.0;

/// `decay · (1 − exp(−updates / tau))`.
pub fn ema_decay(decay: f64, tau: f64, updates: u64) -> f64 {
    decay * (1.0 - (-(updates as f64) / tau).exp())
}

/// `d·ema + (1 − d)·model`, element-wise (computed in the tensors' precision, as PyTorch does).
pub fn ema_blend<const D: usize>(ema: Tensor<D>, model: Tensor<D>, d: f64) -> Tensor<D> {
    ema.mul_scalar(d).add(model.mul_scalar(1.0 - d))
}

/// The same blend on host values (`f32` arithmetic).
fn ema_blend_host(ema: &mut [f32], model: &[f32], d: f64) {
    let (d, e) = (d as f32, (1.0 - d) as f32);
    for (v, m) in ema.iter_mut().zip(model) {
        *v = *v * d + m * e;
    }
}

/// ultralytics' `ModelEMA` over a [`Detector`].
pub struct ModelEma<B: Backbone> {
    /// The averaged model (inner device, independent storage); evaluate and save this one.
    pub ema: Detector<B>,
    /// Number of updates so far (saved in checkpoints as ultralytics' `updates`).
    pub updates: u64,
    /// Asymptotic decay (0.9999).
    pub decay: f64,
    /// Ramp time constant in updates (2000).
    pub tau: f64,
}

impl<B: Backbone> ModelEma<B> {
    /// An EMA starting from a copy of `model`, with ultralytics' decay 0.9999 and tau 2000.
    pub fn new(model: &Detector<B>) -> Self {
        Self::with_updates(model, 0)
    }

    /// An EMA of `model` that has already seen `updates` updates (resuming: pass the saved EMA
    /// weights as `model` and the saved count).
    pub fn with_updates(model: &Detector<B>, updates: u64) -> Self {
        Self { ema: model.valid(), updates, decay: EMA_DECAY, tau: EMA_TAU }
    }

    /// The decay of the latest update, `d(updates)`.
    pub fn current_decay(&self) -> f64 {
        ema_decay(self.decay, self.tau, self.updates)
    }

    /// One update: `updates += 1`, then every float tensor `ema ← d·ema + (1 − d)·model`.
    ///
    /// # Panics
    ///
    /// If the EMA and `model` do not have the same named tensors and shapes.
    pub fn update(&mut self, model: &mut Detector<B>) {
        self.updates += 1;
        let d = self.current_decay();
        // The model's tensors: device ones flattened and inner, host ones (anchors) copied.
        let mut device: HashMap<String, Tensor<1>> = HashMap::new();
        let mut host: HashMap<String, Vec<f32>> = HashMap::new();
        walk(model, |key, slot| {
            let key = key.to_string();
            match slot {
                Slot::Param1(p) => _ = device.insert(key, flatten(p.base().inner())),
                Slot::Param4(p) => _ = device.insert(key, flatten(p.base().inner())),
                // `valid()` syncs the values that forward passes left pending, and strips autodiff.
                Slot::Running(r) => _ = device.insert(key, r.valid().value()),
                Slot::Host(v, _) => _ = host.insert(key, v.clone()),
            }
        });
        // The EMA's host tensors are blended during the walk; its device tensors are keyed by id
        // for the mapper, which keeps each parameter's mapper and reparameterization.
        let mut ids: HashMap<ParamId, String> = HashMap::new();
        let mut seen = 0;
        walk(&mut self.ema, |key, slot| {
            seen += 1;
            let id = match slot {
                Slot::Param1(p) => Some(p.id),
                Slot::Param4(p) => Some(p.id),
                Slot::Running(r) => single_id(&*r),
                Slot::Host(v, _) => {
                    let m =
                        host.get(key).unwrap_or_else(|| panic!("EMA tensor {key} is not a host tensor of the model"));
                    assert_eq!(v.len(), m.len(), "EMA tensor {key}: size differs from the model's");
                    ema_blend_host(v, m, d);
                    None
                }
            };
            if let Some(id) = id {
                ids.insert(id, key.to_string());
            }
        });
        assert_eq!(seen, device.len() + host.len(), "the EMA and the model have different tensors");
        let expected = ids.len();
        let mut mapper = EmaMapper { ids, device, d, blended: 0 };
        self.ema = self.ema.clone().map(&mut mapper);
        assert_eq!(mapper.blended, expected, "every EMA tensor is reached by the module mapper");
    }
}

/// Blends the model's device tensors into the EMA's, matched by key.
struct EmaMapper {
    ids: HashMap<ParamId, String>,
    device: HashMap<String, Tensor<1>>,
    d: f64,
    blended: usize,
}

impl ModuleMapper for EmaMapper {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let Some(key) = self.ids.get(&param.id) else { return param };
        let m = self.device.get(key).unwrap_or_else(|| panic!("EMA tensor {key} is not a device tensor of the model"));
        let (id, tensor, mapper) = param.consume();
        let dims = tensor.dims();
        let n: usize = dims.iter().product();
        assert_eq!(m.dims()[0], n, "EMA tensor {key}: size differs from the model's");
        let m = m.clone().to_device(&tensor.device()).reshape(dims);
        self.blended += 1;
        Param::from_mapped_value(id, ema_blend(tensor, m, self.d), mapper)
    }
}
