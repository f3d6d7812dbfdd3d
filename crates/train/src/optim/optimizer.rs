//! The optimizer: SGD (Nesterov), Adam and AdamW with PyTorch's update rules, over ultralytics' three
//! parameter groups, with per-parameter state keyed by state-dict key.
//!
//! Update rules (PyTorch's single-tensor implementations, `g` the gradient, `p` the parameter,
//! `λ` the weight decay of the parameter's group — non-zero only for [`ParamGroup::Weight`]):
//!
//! - **SGD** (dampening 0): `g ← g + λ·p`; if `μ ≠ 0`: `b ← g` on the first step, else
//!   `b ← μ·b + g`, then `g ← g + μ·b` (Nesterov) or `g ← b`; finally `p ← p − lr·g`. `μ` is the
//!   *current* momentum (ultralytics' warmup ramps it), read at every step.
//! - **Adam** (L2 decay in the gradient): `g ← g + λ·p`, `m ← m + (1 − β₁)(g − m)`,
//!   `v ← β₂·v + (1 − β₂)·g²`, `p ← p − lr/(1 − β₁ᵗ) · m / (√v / √(1 − β₂ᵗ) + ε)`.
//! - **AdamW** (decoupled decay): `p ← p·(1 − lr·λ)` first, then Adam without the L2 term.
//!
//! β₁ is [`OptimizerConfig::momentum`], β₂ = [`ADAM_BETA2`], ε = [`ADAM_EPS`], as `smart_optimizer`
//! builds them. The warmup's momentum does not reach Adam's β₁: ultralytics only ramps param groups
//! that have a `momentum` entry, which Adam's groups lack.
//!
//! The update runs on the device, on the parameters' inner (non-autodiff) tensors, through a Burn
//! [`ModuleMapper`]; updated parameters keep their autodiff state (`require_grad`, checkpointing
//! strategy) and any attached reparameterization, so the next forward pass on an autodiff device
//! still produces gradients.

use std::collections::{BTreeMap, HashMap};

use burn::module::{Module, ModuleMapper, Param, ParamId};
use burn::optim::GradientsParams;
use burn::prelude::*;
use burn::tensor::GradientCheckpointingStrategy;
use serde::{Deserialize, Serialize};
use yolo_compress_model::{Backbone, Detector};

use super::groups::{ParamGroup, flatten, host_values, param_index};

/// Adam's β₂ (`smart_optimizer` uses `betas=(momentum, 0.999)`).
pub const ADAM_BETA2: f64 = 0.999;
/// Adam's ε (PyTorch's default).
pub const ADAM_EPS: f64 = 1e-8;

/// Which update rule [`Optimizer`] applies (ultralytics' `--optimizer SGD|Adam|AdamW`).
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq)]
pub enum OptimizerKind {
    /// SGD with momentum (Nesterov unless [`OptimizerConfig::nesterov`] is false), dampening 0.
    Sgd,
    /// Adam with L2 weight decay added to the gradient.
    Adam,
    /// AdamW: weight decay decoupled from the gradient.
    AdamW,
}

/// Configuration of an [`Optimizer`].
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct OptimizerConfig {
    /// The update rule.
    pub kind: OptimizerKind,
    /// SGD momentum (after warmup; [`Optimizer::step`] takes the current value) or Adam's β₁.
    pub momentum: f64,
    /// The hyperparameter `weight_decay` before nominal-batch scaling (informational: the value
    /// applied is the one passed to [`Optimizer::step`], see
    /// [`scaled_weight_decay`](super::scaled_weight_decay)).
    pub weight_decay: f64,
    /// Nesterov momentum for SGD (ultralytics always uses it).
    pub nesterov: bool,
}

impl Default for OptimizerConfig {
    /// ultralytics' default: SGD, Nesterov, momentum 0.937, weight decay 5e-4.
    fn default() -> Self {
        Self { kind: OptimizerKind::Sgd, momentum: 0.937, weight_decay: 5e-4, nesterov: true }
    }
}

/// Per-parameter optimizer state, flattened (row-major) on the parameter's inner device.
#[derive(Clone, Debug)]
struct ParamState {
    /// Shape of the parameter.
    shape: Vec<usize>,
    /// SGD momentum buffer (absent until a step with non-zero momentum).
    momentum_buffer: Option<Tensor<1>>,
    /// Adam first moment.
    exp_avg: Option<Tensor<1>>,
    /// Adam second moment.
    exp_avg_sq: Option<Tensor<1>>,
    /// Adam step count (PyTorch's per-parameter `step`).
    step: u64,
}

impl ParamState {
    fn new(shape: Vec<usize>) -> Self {
        Self { shape, momentum_buffer: None, exp_avg: None, exp_avg_sq: None, step: 0 }
    }

    /// Moves every state tensor to `device` (a no-op when already there).
    fn move_to(&mut self, device: &Device) {
        for t in [&mut self.momentum_buffer, &mut self.exp_avg, &mut self.exp_avg_sq].into_iter().flatten() {
            if t.device() != *device {
                *t = t.clone().to_device(device);
            }
        }
    }
}

/// The optimizer: SGD / Adam / AdamW as ultralytics' `smart_optimizer` builds them, with weight
/// decay on [`ParamGroup::Weight`] only, and state per state-dict key.
#[derive(Clone, Debug)]
pub struct Optimizer {
    config: OptimizerConfig,
    state: BTreeMap<String, ParamState>,
    steps: u64,
}

/// Names of the state fields in [`Optimizer::state_tensors`] (suffixes after the parameter key).
const MOMENTUM_BUFFER: &str = "momentum_buffer";
const EXP_AVG: &str = "exp_avg";
const EXP_AVG_SQ: &str = "exp_avg_sq";
const STEP: &str = "step";

impl Optimizer {
    /// A fresh optimizer (no state).
    pub fn new(config: OptimizerConfig) -> Self {
        Self { config, state: BTreeMap::new(), steps: 0 }
    }

    /// The configuration.
    pub fn config(&self) -> &OptimizerConfig {
        &self.config
    }

    /// Number of [`Optimizer::step`] calls since creation (not saved by [`Optimizer::state_tensors`]).
    pub fn steps(&self) -> u64 {
        self.steps
    }

    /// Number of parameters with state.
    pub fn len(&self) -> usize {
        self.state.len()
    }

    /// Whether no parameter has state yet.
    pub fn is_empty(&self) -> bool {
        self.state.is_empty()
    }

    /// One update of every parameter of `model` that has a gradient in `grads`; parameters without
    /// one are left unchanged (and keep their state).
    ///
    /// `lrs` is indexed by [`ParamGroup`]; `momentum` is the current SGD momentum (the warmup's value
    /// during warmup; ignored by Adam/AdamW, whose β₁ is [`OptimizerConfig::momentum`]);
    /// `weight_decay` is the nominal-batch-scaled value for this step, applied to
    /// [`ParamGroup::Weight`] only.
    pub fn step<B: Backbone>(
        &mut self,
        model: Detector<B>,
        grads: &GradientsParams,
        lrs: [f64; 3],
        momentum: f64,
        weight_decay: f64,
    ) -> Detector<B> {
        let mut model = model;
        let index = param_index(&mut model);
        self.step_indexed(model, &index, grads, lrs, momentum, weight_decay)
    }

    /// [`Optimizer::step`] for any module: `index` gives the state key and [`ParamGroup`] of every
    /// parameter to update (others are left unchanged), e.g. the trainable tensors of a model that
    /// is not a [`Detector`].
    pub fn step_indexed<M: Module>(
        &mut self,
        model: M,
        index: &HashMap<ParamId, (String, ParamGroup)>,
        grads: &GradientsParams,
        lrs: [f64; 3],
        momentum: f64,
        weight_decay: f64,
    ) -> M {
        let mut mapper = StepMapper { optimizer: self, index, grads, lrs, momentum, weight_decay };
        let model = model.map(&mut mapper);
        self.steps += 1;
        model
    }

    /// The update of one tensor, keyed by `key` (the building block of [`Optimizer::step`]).
    ///
    /// `param` and `grad` must be inner (non-autodiff) tensors of the same shape on the same device;
    /// the result is the updated parameter (inner). The state of `key` is created on first use.
    ///
    /// # Panics
    ///
    /// If `key` already has state of another shape (build a new optimizer after reshaping a model).
    #[allow(clippy::too_many_arguments)]
    pub fn step_tensor<const D: usize>(
        &mut self,
        key: &str,
        group: ParamGroup,
        param: Tensor<D>,
        grad: Tensor<D>,
        lr: f64,
        momentum: f64,
        weight_decay: f64,
    ) -> Tensor<D> {
        let dims = param.dims();
        assert_eq!(dims, grad.dims(), "{key}: gradient shape differs from the parameter's");
        let wd = if group.decays() { weight_decay } else { 0.0 };
        let device = param.device();
        let state = self.state.entry(key.to_string()).or_insert_with(|| ParamState::new(dims.to_vec()));
        assert_eq!(
            state.shape,
            dims.to_vec(),
            "optimizer state for {key} has another shape than the parameter; build a new Optimizer after reshaping the model"
        );
        state.move_to(&device);
        let p = flatten(param);
        let g = flatten(grad);
        let updated = match self.config.kind {
            OptimizerKind::Sgd => sgd(state, p, g, lr, momentum, wd, self.config.nesterov),
            OptimizerKind::Adam => adam(state, p, g, lr, self.config.momentum, wd, false),
            OptimizerKind::AdamW => adam(state, p, g, lr, self.config.momentum, wd, true),
        };
        updated.reshape(dims)
    }

    /// The state for checkpoints, sorted by key: `(name, shape, values)` with names
    /// `{key}.momentum_buffer` (SGD), `{key}.exp_avg`, `{key}.exp_avg_sq` and `{key}.step`
    /// (Adam/AdamW; shape `[1]`, the step count as `f32`, exact up to 2²⁴ steps).
    pub fn state_tensors(&self) -> Vec<(String, Vec<usize>, Vec<f32>)> {
        let mut out = Vec::new();
        for (key, s) in &self.state {
            let tensors = [(MOMENTUM_BUFFER, &s.momentum_buffer), (EXP_AVG, &s.exp_avg), (EXP_AVG_SQ, &s.exp_avg_sq)];
            for (name, t) in tensors {
                if let Some(t) = t {
                    out.push((format!("{key}.{name}"), s.shape.clone(), host_values(t.clone())));
                }
            }
            if self.config.kind != OptimizerKind::Sgd {
                out.push((format!("{key}.{STEP}"), vec![1], vec![s.step as f32]));
            }
        }
        out
    }

    /// Replaces the state by `tensors` (the output of [`Optimizer::state_tensors`]), created on
    /// `device` (moved to each parameter's device at its next step if that differs).
    ///
    /// Fails, leaving the state unchanged, on an unknown field, a field of another optimizer kind,
    /// a value count that does not match the shape, or fields of one key with different shapes.
    pub fn load_state_tensors(
        &mut self,
        tensors: Vec<(String, Vec<usize>, Vec<f32>)>,
        device: &Device,
    ) -> Result<(), String> {
        let sgd = self.config.kind == OptimizerKind::Sgd;
        let mut state: BTreeMap<String, ParamState> = BTreeMap::new();
        for (name, shape, values) in tensors {
            let (key, field) =
                name.rsplit_once('.').ok_or_else(|| format!("optimizer state `{name}`: no `.field` suffix"))?;
            let n: usize = shape.iter().product();
            if values.len() != n {
                return Err(format!("optimizer state `{name}`: {} values for shape {shape:?}", values.len()));
            }
            if field == STEP {
                if sgd {
                    return Err(format!("optimizer state `{name}`: SGD keeps no step count"));
                }
                let step = match values.as_slice() {
                    [s] if *s >= 0.0 && s.fract() == 0.0 => *s as u64,
                    _ => return Err(format!("optimizer state `{name}`: not a step count: {values:?}")),
                };
                // The shape of the parameter comes from its other fields.
                state.entry(key.to_string()).or_insert_with(|| ParamState::new(Vec::new())).step = step;
                continue;
            }
            let expected_kind = match field {
                MOMENTUM_BUFFER => sgd,
                EXP_AVG | EXP_AVG_SQ => !sgd,
                _ => return Err(format!("optimizer state `{name}`: unknown field `{field}`")),
            };
            if !expected_kind {
                return Err(format!("optimizer state `{name}` does not belong to a {:?} optimizer", self.config.kind));
            }
            let entry = state.entry(key.to_string()).or_insert_with(|| ParamState::new(Vec::new()));
            let has_tensor = entry.momentum_buffer.is_some() || entry.exp_avg.is_some() || entry.exp_avg_sq.is_some();
            if has_tensor && entry.shape != shape {
                return Err(format!("optimizer state `{name}`: shape {shape:?}, other fields have {:?}", entry.shape));
            }
            entry.shape = shape;
            let t = Tensor::<1>::from_data(TensorData::new(values, [n]), device).inner();
            match field {
                MOMENTUM_BUFFER => entry.momentum_buffer = Some(t),
                EXP_AVG => entry.exp_avg = Some(t),
                _ => entry.exp_avg_sq = Some(t),
            }
        }
        if !sgd {
            for (key, s) in &state {
                if s.exp_avg.is_none() || s.exp_avg_sq.is_none() || s.step == 0 {
                    return Err(format!("optimizer state for `{key}`: needs exp_avg, exp_avg_sq and a step > 0"));
                }
            }
        }
        self.state = state;
        Ok(())
    }
}

/// PyTorch `_single_tensor_sgd` with dampening 0 on flattened tensors.
fn sgd(
    state: &mut ParamState,
    p: Tensor<1>,
    g: Tensor<1>,
    lr: f64,
    momentum: f64,
    wd: f64,
    nesterov: bool,
) -> Tensor<1> {
    let mut d = if wd != 0.0 { g.add(p.clone().mul_scalar(wd)) } else { g };
    if momentum != 0.0 {
        let buf = match state.momentum_buffer.take() {
            None => d.clone(),
            Some(b) => b.mul_scalar(momentum).add(d.clone()),
        };
        d = if nesterov { d.add(buf.clone().mul_scalar(momentum)) } else { buf.clone() };
        state.momentum_buffer = Some(buf);
    }
    p.add(d.mul_scalar(-lr))
}

/// PyTorch `_single_tensor_adam` (amsgrad off), decoupled decay for AdamW, on flattened tensors.
fn adam(
    state: &mut ParamState,
    p: Tensor<1>,
    g: Tensor<1>,
    lr: f64,
    beta1: f64,
    wd: f64,
    decoupled: bool,
) -> Tensor<1> {
    state.step += 1;
    let t = state.step as f64;
    let (p, g) = match (decoupled, wd != 0.0) {
        (true, true) => (p.mul_scalar(1.0 - lr * wd), g),
        (false, true) => {
            let g = g.add(p.clone().mul_scalar(wd));
            (p, g)
        }
        (_, false) => (p, g),
    };
    let m = state.exp_avg.take().unwrap_or_else(|| g.zeros_like());
    let v = state.exp_avg_sq.take().unwrap_or_else(|| g.zeros_like());
    // lerp(m, g, 1 - β₁) as PyTorch computes it for a weight below 0.5.
    let m = m.clone().add(g.clone().sub(m).mul_scalar(1.0 - beta1));
    let v = v.mul_scalar(ADAM_BETA2).add(g.clone().mul_scalar(1.0 - ADAM_BETA2).mul(g));
    let bias_correction1 = 1.0 - beta1.powf(t);
    let bias_correction2_sqrt = (1.0 - ADAM_BETA2.powf(t)).sqrt();
    let step_size = lr / bias_correction1;
    let denom = v.clone().sqrt().div_scalar(bias_correction2_sqrt).add_scalar(ADAM_EPS);
    let p = p.add(m.clone().mul_scalar(-step_size).div(denom));
    state.exp_avg = Some(m);
    state.exp_avg_sq = Some(v);
    p
}

/// The autodiff state of a parameter, put back onto its updated value (as Burn's own optimizers do).
struct AutodiffState {
    autodiff: bool,
    require_grad: bool,
    checkpointing: Option<GradientCheckpointingStrategy>,
}

impl AutodiffState {
    fn capture<const D: usize>(t: &Tensor<D>) -> Self {
        Self {
            autodiff: t.is_autodiff(),
            require_grad: t.is_require_grad(),
            checkpointing: t.gradient_checkpointing_strategy(),
        }
    }

    fn restore<const D: usize>(&self, updated: Tensor<D>) -> Tensor<D> {
        if !self.autodiff {
            return updated;
        }
        let mut t = Tensor::from_inner(updated);
        if let Some(strategy) = self.checkpointing {
            t = t.with_gradient_checkpointing_strategy(strategy);
        }
        if self.require_grad {
            t = t.require_grad();
        }
        t
    }
}

/// Applies [`Optimizer::step_tensor`] to every indexed parameter that has a gradient.
struct StepMapper<'a> {
    optimizer: &'a mut Optimizer,
    index: &'a HashMap<ParamId, (String, ParamGroup)>,
    grads: &'a GradientsParams,
    lrs: [f64; 3],
    momentum: f64,
    weight_decay: f64,
}

impl ModuleMapper for StepMapper<'_> {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let Some((key, group)) = self.index.get(&param.id) else { return param };
        let Some(grad) = self.grads.get::<D>(param.id) else { return param };
        let (id, tensor, mapper) = param.consume();
        let autodiff = AutodiffState::capture(&tensor);
        let grad = grad.inner().to_device(&tensor.device().inner());
        let updated = self.optimizer.step_tensor(
            key,
            *group,
            tensor.inner(),
            grad,
            self.lrs[group.index()],
            self.momentum,
            self.weight_decay,
        );
        Param::from_mapped_value(id, autodiff.restore(updated), mapper)
    }
}
