//! Quantization-aware training (QAT) of a [`QuantModel`].
//!
//! The model trains with its int8 arithmetic simulated: weights of quantized convs and the
//! activations the placement marks are fake-quantized in every forward pass, with the
//! straight-through estimator for the rounding (see [`super::fake`]). Starting from a calibrated
//! model (PTQ ranges, BN not folded), a few epochs at a low learning rate let the weights adapt to
//! the quantization grid (Jacob et al., CVPR 2018; Krishnamoorthi 2018, §3.2 and §5).
//!
//! The scheme, per epoch `e` (0-based):
//!
//! - **BatchNorm** (fold-and-freeze, [`QConv`](super::qconv::QConv)): while `e <
//!   freeze_bn_after` the convs run with the BN-folded, fake-quantized weight and normalise with the
//!   batch statistics, which also update the running statistics; from then on the running
//!   statistics are frozen and folded, exactly as the int8 engine runs the conv.
//! - **Activation ranges**: EMA observers (`new = (1 − m)·old + m·[min, max]` of every batch) while
//!   `e < freeze_observers_after`, fixed afterwards. With [`QatConfig::learnable_ranges`] the
//!   ranges are trainable parameters instead (LSQ, Esser et al., ICLR 2020), with LSQ's gradient
//!   scale `1/√(N·q_max)` (`N` the elements quantized with the range per batch) and no weight decay.
//! - **Loss**: the YOLOv5 loss ([`YoloLoss`]) with the gains of [`QatConfig::hyp`].
//! - **Optimizer**: the float trainer's [`Optimizer`] (PyTorch's SGD-Nesterov / Adam update rules)
//!   with weight decay on conv kernels only (not on biases, BN parameters or ranges), scaled as the
//!   trainer scales it to the nominal batch of 64 (`weight_decay · batch / 64` per step, since QAT
//!   steps every batch without accumulation); gradients of the network are clipped to a global
//!   norm of [`MAX_GRAD_NORM`] (learnable ranges, whose gradients LSQ scales separately, are not
//!   part of that norm).
//! - **Learning rate** ([`qat_lr`]): a linear warm-up over `warmup_steps` optimizer steps (at most
//!   a quarter of all steps), then a cosine decay from `lr` to `lr · lrf` at the last step.
//!   Fine-tuning from a trained model needs neither the float trainer's long warm-up (its ≥ 100
//!   iterations with a bias lr of 0.1 would undo the calibration) nor its per-epoch steps; the
//!   decay lets the last epoch, with BN and observers frozen, settle at a small step size.
//!   `lrf = 1` gives a constant lr after the warm-up.
//! - **Validation** after every epoch on the validation loader, with a frozen copy of the model
//!   ([`Module::valid`]: BN statistics and observers cannot change there).
//!
//! **Which model is returned**: with a validation loader, the epoch with the best fitness
//! `0.1·mAP50 + 0.9·mAP50-95` (the float trainer's `best.pt` rule: the frozen snapshot validated
//! is exactly what is kept, so the reported mAP is the returned model's); without one, the last
//! epoch. Either way it lives on the non-autodiff device, BN frozen (not folded: call
//! [`QuantModel::fold_bn`] for export), observers off, learned ranges written back into the
//! quantizers' `range` (so the model has no trainable range left).
//!
//! **Run folder** ([`QatConfig::run_dir`], optional): as the float trainer's run, `args.yaml`
//! (the [`QatConfig`]) before training, then after every epoch `results.csv` (rewritten whole,
//! atomically, with one row per epoch so far; columns [`QAT_RESULTS_COLUMNS`], values as
//! ultralytics' `%.5g`, mAP 0 without validation as the float trainer writes it, the freeze flags
//! as 0/1), `weights/last.safetensors` (that epoch's frozen model as an int8 checkpoint, BN folded)
//! and, with validation, `weights/best.safetensors` whenever the fitness improves (strictly, or
//! ties at a later epoch — the same rule as the returned model, so `best.safetensors` holds the
//! returned model). Every file is written atomically (temporary file + rename): a crash leaves the
//! previous epoch's files intact.
//!
//! Not done (documented simplifications): no EMA of weights (its averaged weights would not match
//! the BN statistics gathered by the training weights during the unfrozen phase), no gradient
//! accumulation, no AutoAnchor (the anchors are the calibrated model's).

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use burn::module::{Module, ParamId};
use burn::optim::GradientsParams;
use burn::prelude::*;
use serde::{Deserialize, Serialize};
use yolo_compress_data::augment::Hyp;
use yolo_compress_data::loader::Loader;
use yolo_compress_train::TrainError;
use yolo_compress_train::loss::{YoloLoss, YoloLossConfig};
use yolo_compress_train::optim::{NOMINAL_BATCH_SIZE, Optimizer, OptimizerConfig, OptimizerKind, ParamGroup};
use yolo_compress_train::optim::{clip_grad_norm_params, scaled_weight_decay};
use yolo_compress_train::trainer::MAX_GRAD_NORM;
use yolo_compress_train::trainer::run_dir::{format_g, write_yaml};
use yolo_compress_train::val::{ValConfig, validate};

use super::checkpoint::save_int8;
use super::fake::grid_bounds;
use super::model::QuantModel;
use crate::error::QuantError;

/// The update rule of QAT.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum QatOptimizer {
    /// SGD with Nesterov momentum [`QatConfig::momentum`].
    Sgd,
    /// Adam with β₁ = [`QatConfig::momentum`], β₂ = 0.999 and L2 weight decay.
    Adam,
}

/// Settings of [`qat`]. Missing keys in a serialized config keep their default.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default)]
pub struct QatConfig {
    /// Training epochs (default 3).
    pub epochs: usize,
    /// Peak learning rate, reached after the warm-up (default 1e-4). See [`qat_lr`].
    pub lr: f64,
    /// Final learning rate as a fraction of `lr`, reached by the cosine decay at the last step
    /// (default 0.1; 1 keeps the lr constant after the warm-up).
    pub lrf: f64,
    /// Linear warm-up steps, capped at a quarter of all steps (default 100; 0 = none).
    pub warmup_steps: usize,
    /// Update rule (default Adam).
    pub optimizer: QatOptimizer,
    /// SGD momentum / Adam β₁ (default 0.937).
    pub momentum: f64,
    /// Weight decay of conv kernels, per 64 images (default 5e-4; biases, BN and ranges: none).
    pub weight_decay: f64,
    /// Epochs after which the BN statistics freeze (`Some(0)`: frozen from the start, `None`:
    /// only in the returned model); default `Some(1)`.
    pub freeze_bn_after: Option<usize>,
    /// Epochs after which the activation observers stop updating (`Some(0)`: the calibrated
    /// ranges are kept throughout); default `Some(2)`. Ignored with `learnable_ranges`.
    pub freeze_observers_after: Option<usize>,
    /// EMA momentum of the activation observers (default 0.01).
    pub observer_momentum: f64,
    /// Learn the activation clip ranges (LSQ-style) instead of observing them (default false).
    pub learnable_ranges: bool,
    /// Loss gains (`box`, `obj`, `cls`, `cls_pw`, `obj_pw`, `anchor_t`, `fl_gamma`); the
    /// augmentation keys are the training loader's business (default `hyp.scratch-low`).
    pub hyp: Hyp,
    /// Class label smoothing ε (default 0).
    pub label_smoothing: f64,
    /// Batches per epoch, at most (default `None`: the whole loader).
    pub max_batches: Option<usize>,
    /// Progress lines on stderr (default false).
    pub verbose: bool,
    /// Run folder for `args.yaml`, `results.csv` and the per-epoch int8 checkpoints
    /// `weights/last.safetensors` / `best.safetensors` (default `None`: nothing written). Created
    /// if missing; files of an earlier run in it are overwritten.
    pub run_dir: Option<PathBuf>,
}

impl Default for QatConfig {
    fn default() -> Self {
        QatConfig {
            epochs: 3,
            lr: 1e-4,
            lrf: 0.1,
            warmup_steps: 100,
            optimizer: QatOptimizer::Adam,
            momentum: 0.937,
            weight_decay: 5e-4,
            freeze_bn_after: Some(1),
            freeze_observers_after: Some(2),
            observer_momentum: 0.01,
            learnable_ranges: false,
            hyp: Hyp::default(),
            label_smoothing: 0.0,
            max_batches: None,
            verbose: false,
            run_dir: None,
        }
    }
}

fn option_error(name: &'static str, msg: impl Into<String>) -> QuantError {
    QuantError::Option { name, msg: msg.into() }
}

impl QatConfig {
    /// Checks every setting; the error names the option at fault.
    pub fn validate(&self) -> Result<(), QuantError> {
        if self.epochs == 0 {
            return Err(option_error("epochs", "QAT needs at least one epoch"));
        }
        if !(self.lr.is_finite() && self.lr > 0.0) {
            return Err(option_error("lr", format!("the learning rate must be positive and finite, got {}", self.lr)));
        }
        if !(self.lrf.is_finite() && self.lrf >= 0.0) {
            return Err(option_error("lrf", format!("the final lr factor must be ≥ 0 and finite, got {}", self.lrf)));
        }
        if !(0.0..1.0).contains(&self.momentum) {
            return Err(option_error("momentum", format!("must be in [0, 1), got {}", self.momentum)));
        }
        if !(self.weight_decay.is_finite() && self.weight_decay >= 0.0) {
            return Err(option_error("weight_decay", format!("must be ≥ 0 and finite, got {}", self.weight_decay)));
        }
        if !(self.observer_momentum > 0.0 && self.observer_momentum <= 1.0) {
            return Err(option_error(
                "observer_momentum",
                format!("the EMA momentum must be in (0, 1], got {}", self.observer_momentum),
            ));
        }
        if !(0.0..1.0).contains(&self.label_smoothing) {
            return Err(option_error("label_smoothing", format!("must be in [0, 1), got {}", self.label_smoothing)));
        }
        if self.max_batches == Some(0) {
            return Err(option_error("max_batches", "at least one batch per epoch"));
        }
        Ok(())
    }

    fn optimizer_config(&self) -> OptimizerConfig {
        let kind = match self.optimizer {
            QatOptimizer::Sgd => OptimizerKind::Sgd,
            QatOptimizer::Adam => OptimizerKind::Adam,
        };
        OptimizerConfig { kind, momentum: self.momentum, weight_decay: self.weight_decay, nesterov: true }
    }

    /// Whether the BN statistics are frozen during epoch `epoch`.
    pub fn bn_frozen_at(&self, epoch: usize) -> bool {
        self.freeze_bn_after.is_some_and(|k| epoch >= k)
    }

    /// Whether the EMA observers are off during epoch `epoch` (always with learnable ranges).
    pub fn observers_frozen_at(&self, epoch: usize) -> bool {
        self.learnable_ranges || self.freeze_observers_after.is_some_and(|k| epoch >= k)
    }
}

/// The learning rate of optimizer step `step` (0-based) out of `total_steps`: with
/// `w = min(warmup_steps, total_steps / 4)`, `lr·(step + 1)/w` during the warm-up, then
/// `lr·(lrf + (1 − lrf)·(1 + cos(π·p))/2)` with `p = (step − w)/(total_steps − w − 1)` going from
/// 0 to 1 (so the first step after the warm-up runs at `lr` and the last at `lr·lrf`).
pub fn qat_lr(cfg: &QatConfig, step: usize, total_steps: usize) -> f64 {
    let w = cfg.warmup_steps.min(total_steps / 4);
    if step < w {
        return cfg.lr * (step + 1) as f64 / w as f64;
    }
    let span = total_steps.saturating_sub(w + 1);
    let p = if span == 0 { 0.0 } else { ((step - w) as f64 / span as f64).min(1.0) };
    cfg.lr * (cfg.lrf + (1.0 - cfg.lrf) * 0.5 * (1.0 + (std::f64::consts::PI * p).cos()))
}

/// One QAT epoch's figures.
#[derive(Clone, Debug, Serialize)]
pub struct QatEpoch {
    /// Epoch (0-based).
    pub epoch: usize,
    /// Mean training `[box, obj, cls]` loss.
    pub loss: [f32; 3],
    /// mAP@0.5 after the epoch (with a validation loader).
    pub map50: Option<f64>,
    /// mAP@0.5:0.95 after the epoch (with a validation loader).
    pub map50_95: Option<f64>,
    /// Whether the BN statistics were frozen during the epoch.
    pub bn_frozen: bool,
    /// Whether the activation observers were off during the epoch (always true with learnable
    /// ranges).
    pub observers_frozen: bool,
}

/// What [`qat`] returns.
pub struct QatOutcome {
    /// The fine-tuned model on the non-autodiff device: BN frozen (not folded), observers off,
    /// learned ranges written into the quantizers. The best epoch's with validation, else the last.
    pub model: QuantModel,
    /// One record per epoch.
    pub epochs: Vec<QatEpoch>,
    /// The epoch whose model was returned.
    pub best_epoch: usize,
    /// The run folder written ([`QatConfig::run_dir`]), if any.
    pub run_dir: Option<PathBuf>,
}

/// The `results.csv` columns of a QAT run folder (ultralytics' names where they apply).
pub const QAT_RESULTS_COLUMNS: [&str; 9] = [
    "epoch",
    "train/box_loss",
    "train/obj_loss",
    "train/cls_loss",
    "metrics/mAP_0.5",
    "metrics/mAP_0.5:0.95",
    "x/lr0",
    "bn_frozen",
    "observers_frozen",
];

/// The files of a QAT run folder (see the module docs).
struct RunFolder {
    dir: PathBuf,
    /// `results.csv` so far (header included), rewritten whole after every epoch.
    results: String,
}

fn io_error(path: PathBuf, source: std::io::Error) -> QuantError {
    QuantError::Train(TrainError::Io { path, source })
}

impl RunFolder {
    /// Creates `dir` and `dir/weights` and writes `args.yaml`.
    fn create(dir: &Path, cfg: &QatConfig) -> Result<Self, QuantError> {
        let weights = dir.join("weights");
        std::fs::create_dir_all(&weights).map_err(|e| io_error(weights, e))?;
        write_yaml(&dir.join("args.yaml"), cfg)?;
        let header: Vec<String> = QAT_RESULTS_COLUMNS.iter().map(|c| format!("{c:>20}")).collect();
        Ok(RunFolder { dir: dir.to_path_buf(), results: format!("{}\n", header.join(",")) })
    }

    /// Adds the row of `e` (trained at final lr `lr`) and rewrites `results.csv` atomically.
    fn record(&mut self, e: &QatEpoch, lr: f64) -> Result<(), QuantError> {
        let flag = |b: bool| if b { 1.0 } else { 0.0 };
        let values = [
            f64::from(e.loss[0]),
            f64::from(e.loss[1]),
            f64::from(e.loss[2]),
            e.map50.unwrap_or(0.0),
            e.map50_95.unwrap_or(0.0),
            lr,
            flag(e.bn_frozen),
            flag(e.observers_frozen),
        ];
        let mut row = vec![format!("{:>20}", e.epoch)];
        row.extend(values.iter().map(|v| format!("{:>20}", format_g(*v, 5))));
        let _ = writeln!(self.results, "{}", row.join(","));
        let path = self.dir.join("results.csv");
        yolo_compress_model::weights::atomic_write(&path, self.results.as_bytes()).map_err(|e| io_error(path, e))
    }

    /// Saves `model` (frozen, BN unfolded: [`save_int8`] folds it) as `weights/<name>.safetensors`.
    fn save(&self, name: &str, model: &QuantModel, epoch: usize) -> Result<(), QuantError> {
        let meta = BTreeMap::from([
            ("producer".to_string(), "yolo-compress qat".to_string()),
            ("quant_method".to_string(), "qat".to_string()),
            ("epoch".to_string(), epoch.to_string()),
        ]);
        save_int8(model, &self.dir.join("weights").join(format!("{name}.safetensors")), &meta).map(|_| ())
    }
}

/// One trainable tensor of a [`QuantModel`], as the optimizer keys it.
#[derive(Clone, Debug)]
struct Trainable {
    id: ParamId,
    key: String,
    rank: usize,
    group: ParamGroup,
    /// The activation quantizer whose learned range this is.
    act: Option<usize>,
}

/// Every trainable tensor: conv kernels (decayed), conv biases, BN γ and β, learned ranges.
fn trainables(model: &QuantModel) -> Vec<Trainable> {
    let mut out = Vec::new();
    let mut push = |id, key: String, rank, group, act| out.push(Trainable { id, key, rank, group, act });
    for c in &model.convs {
        push(c.conv.weight.id, format!("{}.conv.weight", c.name), 4, ParamGroup::Weight, None);
        if let Some(b) = &c.conv.bias {
            push(b.id, format!("{}.conv.bias", c.name), 1, ParamGroup::Bias, None);
        }
        if let Some(bn) = &c.bn {
            push(bn.gamma.id, format!("{}.bn.weight", c.name), 1, ParamGroup::BnWeight, None);
            push(bn.beta.id, format!("{}.bn.bias", c.name), 1, ParamGroup::Bias, None);
        }
    }
    for (i, a) in model.acts.iter().enumerate() {
        if let Some(p) = &a.learned {
            push(p.id, format!("acts.{i}.range"), 1, ParamGroup::Bias, Some(i));
        }
    }
    out
}

fn model_device(model: &QuantModel) -> Device {
    model.convs.first().map(|c| c.conv.weight.device()).unwrap_or_default()
}

/// The optimisation step of QAT — loss, backward, LSQ gradient scaling, clipping, optimizer update —
/// reusable outside [`qat`] (custom schedules, tests).
pub struct QatStepper {
    loss: YoloLoss,
    optimizer: Optimizer,
    momentum: f64,
    weight_decay: f64,
    /// Elements quantized per batch by each activation quantizer (for LSQ's gradient scale);
    /// measured on the first step with learned ranges.
    range_numel: Option<Vec<usize>>,
    steps: usize,
}

impl QatStepper {
    /// A stepper for `model` trained on `imgsz`-pixel batches of `batch_size` images (the loss gains
    /// and the weight decay depend on both).
    pub fn new(model: &QuantModel, cfg: &QatConfig, imgsz: u32, batch_size: usize) -> Self {
        let (nc, nl) = (model.head.nc, model.head.strides.len());
        let loss_cfg = YoloLossConfig::from_hyp(&cfg.hyp, nc, nl, imgsz as usize, cfg.label_smoothing);
        QatStepper {
            loss: YoloLoss::new(loss_cfg, &model.head),
            optimizer: Optimizer::new(cfg.optimizer_config()),
            momentum: cfg.momentum,
            weight_decay: scaled_weight_decay(cfg.weight_decay, batch_size.max(1), 1, NOMINAL_BATCH_SIZE),
            range_numel: None,
            steps: 0,
        }
    }

    /// The loss.
    pub fn loss(&self) -> &YoloLoss {
        &self.loss
    }

    /// Optimizer steps taken.
    pub fn steps(&self) -> usize {
        self.steps
    }

    /// Training-mode forward pass, loss and backward: `[box, obj, cls]` and the gradients of every
    /// trainable tensor. `model` must live on an autodiff device; `images` are moved there.
    pub fn loss_and_grads(
        &self,
        model: &QuantModel,
        images: Tensor<4>,
        targets: &[[f32; 6]],
    ) -> Result<([f32; 3], GradientsParams), QuantError> {
        let device = model_device(model);
        if !device.is_autodiff() {
            return Err(option_error(
                "device",
                "QAT needs the model on an autodiff device (`model.fork(&device.autodiff()).train()`)",
            ));
        }
        let images = images.without_autodiff().to_device(&device.without_autodiff()).autodiff();
        let raw = model.forward_raw(images);
        let out = self.loss.forward(&raw, targets);
        Ok((out.items, GradientsParams::from_grads(out.total.backward(), model)))
    }

    /// One optimizer step on a batch at learning rate `lr`; returns the updated model and the
    /// batch's `[box, obj, cls]` loss (before the update).
    ///
    /// A non-finite loss is an error ([`TrainError::NonFiniteLoss`] with epoch 0 and the step
    /// index as batch) and updates nothing.
    pub fn step(
        &mut self,
        model: QuantModel,
        images: Tensor<4>,
        targets: &[[f32; 6]],
        lr: f64,
    ) -> Result<(QuantModel, [f32; 3]), QuantError> {
        if model.acts.iter().any(|a| a.learned.is_some()) && self.range_numel.is_none() {
            self.range_numel = Some(range_numel(&model, images.clone()));
        }
        let (items, mut grads) = self.loss_and_grads(&model, images, targets)?;
        let total: f32 = items.iter().sum();
        if !total.is_finite() {
            return Err(QuantError::Train(TrainError::NonFiniteLoss { value: total, epoch: 0, batch: self.steps }));
        }
        // Observers (EMA range updates of this forward pass) must not lag a step behind.
        sync_ranges(&model);
        let params = trainables(&model);
        let (qmin, qmax) = grid_bounds(model.act_grid);
        let q_levels = f64::from(qmax.max(-qmin).max(1.0));
        for p in params.iter().filter(|p| p.act.is_some()) {
            let numel = p.act.and_then(|i| self.range_numel.as_ref()?.get(i).copied()).unwrap_or(1).max(1);
            let g = 1.0 / (numel as f64 * q_levels).sqrt();
            if let Some(grad) = grads.remove::<1>(p.id) {
                grads.register::<1>(p.id, grad.mul_scalar(g));
            }
        }
        let net: Vec<(ParamId, usize)> = params.iter().filter(|p| p.act.is_none()).map(|p| (p.id, p.rank)).collect();
        clip_grad_norm_params(&mut grads, &net, MAX_GRAD_NORM);
        let index: HashMap<ParamId, (String, ParamGroup)> =
            params.into_iter().map(|p| (p.id, (p.key, p.group))).collect();
        let model = self.optimizer.step_indexed(model, &index, &grads, [lr; 3], self.momentum, self.weight_decay);
        self.steps += 1;
        Ok((model, items))
    }
}

/// Commits the pending EMA update of every activation range (Burn's `RunningState` keeps the
/// update of the current thread pending until the next update or a sync).
fn sync_ranges(model: &QuantModel) {
    for a in &model.acts {
        let _ = a.range.value_sync();
    }
}

/// Elements of a batch like `images` quantized by each activation quantizer (a float pass of a
/// frozen copy: nothing in `model` changes; pass-through outputs are not requantized, not counted).
fn range_numel(model: &QuantModel, images: Tensor<4>) -> Vec<usize> {
    let probe = model.valid();
    let device = model_device(&probe);
    let mut numel = vec![0usize; model.acts.len()];
    let requant = probe.requantized();
    probe.forward_tap(images.without_autodiff().to_device(&device), &mut |v, t| {
        if requant.get(v).copied().unwrap_or(false)
            && let Some(g) = probe.placement.group.get(v).copied().flatten()
            && let Some(n) = numel.get_mut(g)
        {
            *n += t.shape().num_elements();
        }
    });
    numel
}

/// The frozen inference copy of a training model: non-autodiff device, BN frozen, observers off,
/// learned ranges written into `range`.
fn frozen(model: &QuantModel) -> QuantModel {
    let mut m = model.valid().with_bn_frozen(true).with_observers(None);
    for a in &mut m.acts {
        if let Some(p) = a.learned.take() {
            a.range.update(p.val().detach());
            let _ = a.range.value_sync();
        }
    }
    m
}

/// Quantization-aware fine-tuning of `model` (see the module docs for the scheme).
///
/// `model` must be calibrated and have its quantized convs chosen
/// ([`QuantModel::with_value_ranges`] + [`QuantModel::with_quantized`]), BN not folded (a model
/// without BN trains too, with nothing to freeze); it may live on any device and is trained on
/// `device`'s autodiff twin. `train` yields labelled training batches (any device; augmentation as
/// its config says); `val`, when given, is validated after every epoch and decides which epoch's
/// model is returned.
///
/// With [`QatConfig::run_dir`] the run folder is written as the module docs describe.
///
/// Errors: invalid settings or an empty loader ([`QuantError::Option`]), loader failures, a
/// non-finite loss and run-folder I/O naming the file ([`QuantError::Train`]), a checkpoint that
/// cannot be written ([`QuantError::Checkpoint`]).
pub fn qat(
    model: QuantModel,
    train: &Loader,
    val: Option<&Loader>,
    cfg: &QatConfig,
    device: &Device,
) -> Result<QatOutcome, QuantError> {
    cfg.validate()?;
    if train.is_empty() {
        return Err(option_error("train", "the training loader has no batches"));
    }
    if val.is_some_and(Loader::is_empty) {
        return Err(option_error("val", "the validation loader has no batches"));
    }
    let mut run = cfg.run_dir.as_deref().map(|d| RunFolder::create(d, cfg)).transpose()?;
    let plain = device.clone().without_autodiff();
    let ad = plain.clone().autodiff();
    // `valid()` first: a copy with its own running states (Burn shares them between clones), so
    // the caller's clones of `model` keep their BN statistics and ranges.
    let mut model = model.valid().fork(&ad).train();
    if cfg.learnable_ranges {
        model = model.with_learnable_ranges();
    }
    let lc = train.config();
    let mut stepper = QatStepper::new(&model, cfg, lc.imgsz, lc.batch_size);
    let nb = cfg.max_batches.map_or(train.len(), |m| m.min(train.len()));
    let total_steps = nb * cfg.epochs;
    if cfg.verbose {
        eprintln!(
            "QAT: {} epochs of {nb} batches of {} at {} px on {device:?}; {:?} lr {:.2e} → {:.2e}; BN frozen from {}; {}",
            cfg.epochs,
            lc.batch_size,
            lc.imgsz,
            cfg.optimizer,
            cfg.lr,
            cfg.lr * cfg.lrf,
            cfg.freeze_bn_after.map_or("never (until the end)".into(), |e| format!("epoch {}", e + 1)),
            if cfg.learnable_ranges {
                "activation ranges learned (LSQ)".to_string()
            } else {
                cfg.freeze_observers_after
                    .map_or("observers never frozen".into(), |e| format!("observers frozen from epoch {}", e + 1))
            },
        );
    }
    let mut epochs = Vec::with_capacity(cfg.epochs);
    let mut best: Option<(f64, usize, QuantModel)> = None;
    for epoch in 0..cfg.epochs {
        let bn_frozen = cfg.bn_frozen_at(epoch);
        let observers_frozen = cfg.observers_frozen_at(epoch);
        model = model.with_bn_frozen(bn_frozen).with_observers((!observers_frozen).then_some(cfg.observer_momentum));
        let mut mloss = [0.0f64; 3];
        let mut seen = 0usize;
        let mut batches = train.epoch(epoch as u64);
        for i in 0..nb {
            let Some(batch) = batches.next() else { break };
            let batch = batch.map_err(TrainError::from)?;
            if cfg.verbose {
                for w in &batch.warnings {
                    eprintln!("warning: {w}");
                }
            }
            let lr = qat_lr(cfg, stepper.steps(), total_steps);
            let (m, items) = match stepper.step(model, batch.images, &batch.target_rows, lr) {
                Err(QuantError::Train(TrainError::NonFiniteLoss { value, .. })) => {
                    return Err(QuantError::Train(TrainError::NonFiniteLoss { value, epoch, batch: i }));
                }
                r => r?,
            };
            model = m;
            seen += 1;
            for (m, v) in mloss.iter_mut().zip(items) {
                *m += (f64::from(v) - *m) / seen as f64;
            }
        }
        let snapshot = frozen(&model);
        let report = match val {
            Some(vl) => {
                let vdev = vl.device().clone().without_autodiff();
                let eval = if vdev == plain { snapshot.clone() } else { snapshot.clone().to_device(&vdev) };
                Some(validate(&eval, vl, &ValConfig::default(), None)?)
            }
            None => None,
        };
        let record = QatEpoch {
            epoch,
            loss: mloss.map(|v| v as f32),
            map50: report.as_ref().map(|r| r.metrics.map50),
            map50_95: report.as_ref().map(|r| r.metrics.map50_95),
            bn_frozen,
            observers_frozen,
        };
        let last_lr = qat_lr(cfg, stepper.steps().saturating_sub(1), total_steps);
        if cfg.verbose {
            let maps = match (record.map50, record.map50_95) {
                (Some(a), Some(b)) => format!(" | mAP50 {a:.4} mAP50-95 {b:.4}"),
                _ => String::new(),
            };
            eprintln!(
                "QAT epoch {}/{}: loss box {:.4} obj {:.4} cls {:.4}{maps} | lr {:.2e} | BN {} | observers {}",
                epoch + 1,
                cfg.epochs,
                mloss[0],
                mloss[1],
                mloss[2],
                last_lr,
                if bn_frozen { "frozen" } else { "batch stats" },
                if observers_frozen { "off" } else { "EMA" },
            );
        }
        // The best validated snapshot (ties: the later epoch, which trained longer); without
        // validation every epoch "wins", so the last one is returned.
        let fitness = report.as_ref().map_or(0.0, |r| r.metrics.fitness());
        let improved = best.as_ref().is_none_or(|(f, _, _)| fitness >= *f);
        if let Some(run) = run.as_mut() {
            run.record(&record, last_lr)?;
            run.save("last", &snapshot, epoch)?;
            if improved && report.is_some() {
                run.save("best", &snapshot, epoch)?;
            }
        }
        epochs.push(record);
        if improved {
            best = Some((fitness, epoch, snapshot));
        }
    }
    let (_, best_epoch, model) = best.expect("at least one epoch ran");
    if cfg.verbose && val.is_some() {
        eprintln!("QAT: returning the model of epoch {} (best fitness)", best_epoch + 1);
    }
    if cfg.verbose
        && let Some(dir) = &cfg.run_dir
    {
        eprintln!("QAT: run folder {}", dir.display());
    }
    Ok(QatOutcome { model, epochs, best_epoch, run_dir: cfg.run_dir.clone() })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lr_warms_up_linearly_then_decays_by_cosine_to_lrf() {
        let cfg = QatConfig { lr: 1e-3, lrf: 0.1, warmup_steps: 10, ..Default::default() };
        let total = 100;
        assert!((qat_lr(&cfg, 0, total) - 1e-4).abs() < 1e-15);
        assert!((qat_lr(&cfg, 4, total) - 5e-4).abs() < 1e-15);
        assert!((qat_lr(&cfg, 9, total) - 1e-3).abs() < 1e-15);
        assert!((qat_lr(&cfg, 10, total) - 1e-3).abs() < 1e-15);
        assert!((qat_lr(&cfg, 99, total) - 1e-4).abs() < 1e-15);
        // Halfway through the decay: the mean of the two ends.
        let mid = 10 + 89 / 2;
        let want = 1e-3 * (0.1 + 0.9 * 0.5 * (1.0 + (std::f64::consts::PI * 44.0 / 89.0).cos()));
        assert!((qat_lr(&cfg, mid, total) - want).abs() < 1e-15);
        let lrs: Vec<f64> = (10..total).map(|s| qat_lr(&cfg, s, total)).collect();
        assert!(lrs.windows(2).all(|w| w[1] <= w[0]), "decay is monotone");
        // The warm-up never takes more than a quarter of a short run; lrf = 1 is constant.
        let short = QatConfig { warmup_steps: 100, lrf: 1.0, ..cfg.clone() };
        assert!((qat_lr(&short, 2, 8) - 1e-3).abs() < 1e-15);
        assert!((qat_lr(&short, 7, 8) - 1e-3).abs() < 1e-15);
        assert!((qat_lr(&short, 0, 8) - 5e-4).abs() < 1e-15);
        // One step: the peak lr.
        assert!((qat_lr(&cfg, 0, 1) - 1e-3).abs() < 1e-15);
    }

    #[test]
    fn invalid_settings_name_the_option() {
        let bad = [
            (QatConfig { epochs: 0, ..Default::default() }, "epochs"),
            (QatConfig { lr: 0.0, ..Default::default() }, "lr"),
            (QatConfig { lr: f64::NAN, ..Default::default() }, "lr"),
            (QatConfig { momentum: 1.0, ..Default::default() }, "momentum"),
            (QatConfig { weight_decay: -1.0, ..Default::default() }, "weight_decay"),
            (QatConfig { observer_momentum: 0.0, ..Default::default() }, "observer_momentum"),
            (QatConfig { max_batches: Some(0), ..Default::default() }, "max_batches"),
        ];
        for (cfg, option) in bad {
            match cfg.validate() {
                Err(QuantError::Option { name, .. }) => assert_eq!(name, option),
                other => panic!("{option}: {other:?}"),
            }
        }
        QatConfig::default().validate().unwrap();
    }

    #[test]
    fn config_serde_defaults_and_lowercase_optimizer() {
        let cfg: QatConfig = serde_json::from_str(r#"{"epochs": 5, "optimizer": "sgd"}"#).unwrap();
        assert_eq!(cfg.epochs, 5);
        assert_eq!(cfg.optimizer, QatOptimizer::Sgd);
        assert_eq!(cfg.freeze_bn_after, Some(1));
        assert_eq!(cfg.freeze_observers_after, Some(2));
        assert!((cfg.lr - 1e-4).abs() < 1e-18 && (cfg.observer_momentum - 0.01).abs() < 1e-18);
        let text = serde_json::to_string(&QatConfig::default()).unwrap();
        assert!(text.contains(r#""optimizer":"adam""#), "{text}");
    }

    #[test]
    fn run_folder_writes_args_and_one_results_row_per_epoch() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("runs").join("exp");
        let cfg = QatConfig { epochs: 7, run_dir: Some(dir.clone()), ..Default::default() };
        let mut run = RunFolder::create(&dir, &cfg).unwrap();
        assert!(dir.join("weights").is_dir());
        let args = std::fs::read_to_string(dir.join("args.yaml")).unwrap();
        assert!(args.contains("epochs: 7") && args.contains("run_dir:"), "{args}");
        let e = |epoch, map: Option<f64>| QatEpoch {
            epoch,
            loss: [0.5, 0.25, 0.125],
            map50: map,
            map50_95: map.map(|m| m / 2.0),
            bn_frozen: epoch > 0,
            observers_frozen: false,
        };
        run.record(&e(0, Some(0.123456)), 1e-4).unwrap();
        run.record(&e(1, None), 2.5e-5).unwrap();
        let text = std::fs::read_to_string(dir.join("results.csv")).unwrap();
        let rows: Vec<Vec<&str>> = text.lines().map(|l| l.split(',').map(str::trim).collect()).collect();
        assert_eq!(rows.len(), 3, "{text}");
        assert_eq!(rows[0], QAT_RESULTS_COLUMNS);
        assert_eq!(rows[1], ["0", "0.5", "0.25", "0.125", "0.12346", "0.061728", "0.0001", "0", "0"]);
        assert_eq!(rows[2], ["1", "0.5", "0.25", "0.125", "0", "0", "2.5e-05", "1", "0"]);
        assert!(text.lines().all(|l| l.split(',').all(|f| f.len() == 20)), "%20 alignment: {text}");
        // A folder that cannot be created is an I/O error naming it.
        let blocker = tmp.path().join("file");
        std::fs::write(&blocker, b"x").unwrap();
        match RunFolder::create(&blocker.join("exp"), &cfg) {
            Err(QuantError::Train(TrainError::Io { path, .. })) => assert!(path.starts_with(&blocker), "{path:?}"),
            Err(e) => panic!("unexpected error {e}"),
            Ok(_) => panic!("created a folder under a file"),
        }
    }

    #[test]
    fn freeze_schedule() {
        let cfg = QatConfig::default();
        assert!(!cfg.bn_frozen_at(0) && cfg.bn_frozen_at(1) && cfg.bn_frozen_at(2));
        assert!(!cfg.observers_frozen_at(1) && cfg.observers_frozen_at(2));
        let never = QatConfig { freeze_bn_after: None, freeze_observers_after: None, ..Default::default() };
        assert!(!never.bn_frozen_at(100) && !never.observers_frozen_at(100));
        let lsq = QatConfig { learnable_ranges: true, ..never };
        assert!(lsq.observers_frozen_at(0));
    }
}
