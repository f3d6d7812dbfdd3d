//! The training loop, as ultralytics' `train.py` runs it: warmup, nominal-batch gradient
//! accumulation, global-norm clipping at 10, SGD/Adam(W) with three parameter groups, EMA, validation
//! of the EMA after every epoch, `results.csv`, `last`/`best` checkpoints, early stopping, plots;
//! optionally the network-slimming L1 penalty on BN weights ([`add_bn_sparsity_grad`]).
//!
//! Determinism: batches depend only on `(seed, epoch, index)` (see the data loader), so a run
//! resumed from the checkpoint of epoch `k` sees the same batches as an uninterrupted run and ends
//! with the same weights up to floating-point reduction order.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use burn::module::Module;
use burn::optim::GradientsParams;
use burn::prelude::*;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use rand::SeedableRng;
use yolo_compress_data::SampleSource;
use yolo_compress_data::loader::{Loader, LoaderConfig};
use yolo_compress_model::head::RawOutputs;
use yolo_compress_model::state::Slot;
use yolo_compress_model::{Backbone, Detector, YoloModel};

use super::config::TrainConfig;
use super::run_dir::{append_results, increment_run_dir, truncate_results, write_yaml};
use super::state::{LoadedState, TrainProgress, load_train_state, save_train_state};
use crate::autoanchor::{ImageLabels, check_anchor_order, check_anchors, label_wh};
use crate::error::TrainError;
use crate::loss::{YoloLoss, YoloLossConfig};
use crate::metrics::DetectionMetrics;
use crate::optim::groups::{ParamGroup, param_group, walk};
use crate::optim::{
    GradAccumulator, LrSchedule, ModelEma, Optimizer, OptimizerConfig, Warmup, accumulate_steps, clip_grad_norm,
    scaled_weight_decay,
};
use crate::val::{ValConfig, ValReport, validate};

/// Maximum global gradient norm (ultralytics' `clip_grad_norm_(max_norm=10.0)`).
pub const MAX_GRAD_NORM: f64 = 10.0;

/// Forward pass in training mode, loss and backward: returns `[box, obj, cls]` (host) and the
/// gradients. `model` must live on an autodiff device.
pub fn loss_and_grads(
    model: &YoloModel,
    loss_fn: &YoloLoss,
    images: Tensor<4>,
    targets: &[[f32; 6]],
) -> ([f32; 3], GradientsParams) {
    let (items, _, grads) =
        loss_and_grads_with_hook(model, loss_fn, &images, targets, &mut NoHook).expect("NoHook adds no loss");
    (items, grads)
}

/// [`loss_and_grads`] with the [`TrainHook`]'s extra loss added before the backward pass; also
/// returns that extra loss (host, as the hook scaled it) when the hook gave one.
pub fn loss_and_grads_with_hook(
    model: &YoloModel,
    loss_fn: &YoloLoss,
    images: &Tensor<4>,
    targets: &[[f32; 6]],
    hook: &mut dyn TrainHook,
) -> Result<([f32; 3], Option<f32>, GradientsParams), TrainError> {
    let raw = model.forward_raw(images.clone());
    let out = loss_fn.forward(&raw, targets);
    let (loss, extra) = match hook.batch_loss(images, &raw)? {
        Some(extra) => {
            let value =
                extra.clone().detach().into_data().convert::<f32>().try_to_vec::<f32>().map_or(f32::NAN, |v| v[0]);
            (out.total.add(extra), Some(value))
        }
        None => (out.total, None),
    };
    Ok((out.items, extra, GradientsParams::from_grads(loss.backward(), model)))
}

/// One optimizer step as train.py takes it: global-norm clipping at [`MAX_GRAD_NORM`], the
/// optimizer update, then the EMA update.
pub fn optimizer_step(
    mut model: YoloModel,
    mut grads: GradientsParams,
    optimizer: &mut Optimizer,
    ema: &mut ModelEma<yolo_compress_model::GraphBackbone>,
    lrs: [f64; 3],
    momentum: f64,
    weight_decay: f64,
) -> YoloModel {
    clip_grad_norm(&mut model, &mut grads, MAX_GRAD_NORM);
    let mut model = optimizer.step(model, &grads, lrs, momentum, weight_decay);
    ema.update(&mut model);
    model
}

/// Network slimming (Liu et al., ICCV 2017, "Learning Efficient Convolutional Networks through
/// Network Slimming"): adds the subgradient of the L1 penalty `sparsity·Σ|γ|`, `sparsity·sign(γ)`
/// (0 where γ = 0, as `torch.sign`), to the gradient of every BatchNorm weight γ of `model` that has
/// one in `grads`; other gradients are untouched. Returns the number of BN weights penalised.
///
/// The training loop calls it once per optimizer step on the accumulated gradient, before
/// clipping, as ultralytics-based slimming code adds it to `.grad` after `backward()`: the penalty
/// is not scaled by the loss scaling, the batch size or the accumulation count.
pub fn add_bn_sparsity_grad<B: Backbone>(model: &mut Detector<B>, grads: &mut GradientsParams, sparsity: f64) -> usize {
    let mut n = 0;
    walk(model, |key, slot| {
        let Slot::Param1(p) = slot else { return };
        if param_group(key, 1) != ParamGroup::BnWeight {
            return;
        }
        let Some(g) = grads.remove::<1>(p.id) else { return };
        let g = g.inner();
        let sign = p.val().inner().to_device(&g.device()).sign();
        grads.register::<1>(p.id, g.add(sign.mul_scalar(sparsity)));
        n += 1;
    });
    n
}

/// The data of a run.
#[derive(Clone)]
pub struct TrainData {
    /// Training images and labels.
    pub train: Arc<dyn SampleSource>,
    /// Validation images and labels (`None`: no validation).
    pub val: Option<Arc<dyn SampleSource>>,
    /// Class names.
    pub names: Vec<String>,
    /// Every training image's size and label boxes (AutoAnchor and the label plot).
    pub labels: Vec<ImageLabels>,
    /// Every training label's class (the label plot).
    pub label_classes: Vec<usize>,
}

/// One epoch's figures (one row of `results.csv`).
#[derive(Debug, Clone, serde::Serialize)]
pub struct EpochRecord {
    /// Epoch (0-based).
    pub epoch: usize,
    /// Mean training `[box, obj, cls]` loss.
    pub train_loss: [f32; 3],
    /// Mean extra loss of the [`TrainHook`] per image (e.g. distillation) over the batches it added
    /// one to; `None` when it added none.
    pub extra_loss: Option<f32>,
    /// Validation `[box, obj, cls]` loss (zeros without validation).
    pub val_loss: [f32; 3],
    /// Precision, recall, mAP50, mAP50-95 (zeros without validation).
    pub metrics: [f64; 4],
    /// Learning rates of the three groups at the end of the epoch.
    pub lrs: [f64; 3],
    /// Training images per second (forward + backward + step, data loading included).
    pub train_images_per_s: f64,
    /// Wall time of the epoch including validation, seconds.
    pub seconds: f64,
}

/// What a finished (or stopped) run produced.
#[derive(Debug, Clone)]
pub struct TrainOutcome {
    /// The run folder.
    pub run_dir: PathBuf,
    /// `weights/last.safetensors`.
    pub last: PathBuf,
    /// `weights/best.safetensors` (absent when no epoch was validated).
    pub best: PathBuf,
    /// Epochs completed (including those of earlier sessions of a resumed run).
    pub epochs_done: usize,
    /// The epochs of this session.
    pub history: Vec<EpochRecord>,
    /// Best fitness.
    pub best_fitness: f64,
    /// The last validation's metrics.
    pub final_metrics: Option<DetectionMetrics>,
    /// Whether early stopping ended the run.
    pub stopped_early: bool,
}

/// What a training run lets other code change: an extra loss term per batch (knowledge
/// distillation adds its loss here) and the models at the end of every epoch (soft filter pruning
/// zeroes its filters there). Both methods default to changing nothing.
pub trait TrainHook {
    /// An extra loss for this batch, added to the detection loss before the backward pass: a `[1]`
    /// tensor on the training (autodiff) device, scaled as the detection loss is (`… · B`, the
    /// batch size), or `None`. `images` `[B, 3, H, W]` is the batch the model saw; `raw` its raw
    /// outputs, one `[B, na, ny, nx, 5 + nc]` tensor per level.
    fn batch_loss(&mut self, images: &Tensor<4>, raw: &RawOutputs) -> Result<Option<Tensor<1>>, TrainError> {
        let _ = (images, raw);
        Ok(None)
    }

    /// Called at the end of every training epoch, after the last optimizer step and before
    /// validation and the checkpoint: it may change the training model (autodiff device, training
    /// mode) and its EMA (what is validated and saved). Returns both.
    fn end_of_epoch(
        &mut self,
        epoch: usize,
        model: YoloModel,
        ema: YoloModel,
    ) -> Result<(YoloModel, YoloModel), TrainError> {
        let _ = epoch;
        Ok((model, ema))
    }
}

/// The hook that changes nothing.
pub struct NoHook;

impl TrainHook for NoHook {}

/// Several hooks in turn: their extra losses are summed, and each one's `end_of_epoch` gets the
/// models the previous one returned.
pub struct HookChain(pub Vec<Box<dyn TrainHook>>);

impl TrainHook for HookChain {
    fn batch_loss(&mut self, images: &Tensor<4>, raw: &RawOutputs) -> Result<Option<Tensor<1>>, TrainError> {
        let mut sum: Option<Tensor<1>> = None;
        for h in &mut self.0 {
            if let Some(l) = h.batch_loss(images, raw)? {
                sum = Some(match sum {
                    Some(s) => s.add(l),
                    None => l,
                });
            }
        }
        Ok(sum)
    }

    fn end_of_epoch(
        &mut self,
        epoch: usize,
        mut model: YoloModel,
        mut ema: YoloModel,
    ) -> Result<(YoloModel, YoloModel), TrainError> {
        for h in &mut self.0 {
            (model, ema) = h.end_of_epoch(epoch, model, ema)?;
        }
        Ok((model, ema))
    }
}

/// Trains `model` (built on any plain device; moved to `device` with autodiff) from scratch or from
/// its current weights, in a new run folder under `cfg.project`.
pub fn train(
    model: YoloModel,
    data: &TrainData,
    cfg: &TrainConfig,
    device: &Device,
) -> Result<TrainOutcome, TrainError> {
    train_with_hook(model, data, cfg, device, &mut NoHook)
}

/// [`train`] with a [`TrainHook`].
pub fn train_with_hook(
    model: YoloModel,
    data: &TrainData,
    cfg: &TrainConfig,
    device: &Device,
    hook: &mut dyn TrainHook,
) -> Result<TrainOutcome, TrainError> {
    cfg.validate(model.max_stride())?;
    if data.train.is_empty() {
        return Err(TrainError::Config("the training set is empty".into()));
    }
    let run_dir = increment_run_dir(&cfg.project, &cfg.name, cfg.exist_ok)?;
    write_yaml(&run_dir.join("args.yaml"), cfg)?;
    write_yaml(&run_dir.join("hyp.yaml"), &cfg.hyp)?;
    let mut model = model.fork(device);
    if !cfg.noautoanchor {
        autoanchor(&mut model, data, cfg);
    }
    if !cfg.noplots && !data.label_classes.is_empty() {
        let wh: Vec<[f32; 2]> = data.labels.iter().flat_map(|l| l.boxes_wh.iter().copied()).collect();
        warn_plot(crate::plots::plot_labels(&data.label_classes, &wh, &data.names, &run_dir.join("labels.png")));
    }
    let ema = ModelEma::new(&model);
    let progress = TrainProgress {
        epochs_done: 0,
        best_fitness: 0.0,
        best_epoch: None,
        ema_updates: 0,
        last_opt_step: -1,
        config: cfg.clone(),
    };
    let optimizer = Optimizer::new(optimizer_config(cfg));
    Session { run_dir, model, ema, optimizer, progress, hook }.run(data, device)
}

/// Continues the run whose checkpoint is `checkpoint` (`RUN/weights/last.safetensors`) with its
/// own settings; `epochs` may raise the total.
pub fn resume(
    checkpoint: &Path,
    data: &TrainData,
    device: &Device,
    epochs: Option<usize>,
) -> Result<TrainOutcome, TrainError> {
    resume_with_hook(checkpoint, data, device, epochs, &mut NoHook)
}

/// [`resume`] with a [`TrainHook`] (pass the same hook the run started with).
pub fn resume_with_hook(
    checkpoint: &Path,
    data: &TrainData,
    device: &Device,
    epochs: Option<usize>,
    hook: &mut dyn TrainHook,
) -> Result<TrainOutcome, TrainError> {
    let LoadedState { ema, model, optim, mut progress, run_dir } = load_train_state(checkpoint, device)?;
    if let Some(e) = epochs {
        progress.config.epochs = e;
    }
    progress.config.stop_after = None;
    if progress.epochs_done >= progress.config.epochs {
        return Err(TrainError::Config(format!(
            "{} already finished its {} epochs; nothing to resume (pass more epochs to extend it)",
            checkpoint.display(),
            progress.config.epochs
        )));
    }
    let mut optimizer = Optimizer::new(optimizer_config(&progress.config));
    optimizer
        .load_state_tensors(optim, device)
        .map_err(|reason| TrainError::Checkpoint { path: checkpoint.into(), reason })?;
    let mut model_ema = ModelEma::new(&ema);
    model_ema.updates = progress.ema_updates;
    truncate_results(&run_dir.join("results.csv"), progress.epochs_done)?;
    Session { run_dir, model, ema: model_ema, optimizer, progress, hook }.run(data, device)
}

fn optimizer_config(cfg: &TrainConfig) -> OptimizerConfig {
    OptimizerConfig {
        kind: cfg.optimizer,
        momentum: cfg.hyp.momentum,
        weight_decay: cfg.hyp.weight_decay,
        nesterov: true,
    }
}

/// AutoAnchor before training (train.py's `check_anchors`): replaces the Detect anchors when the
/// best possible recall of the current ones is below 0.98 and evolved ones do better.
fn autoanchor(model: &mut YoloModel, data: &TrainData, cfg: &TrainConfig) {
    if data.labels.iter().all(|l| l.boxes_wh.is_empty()) {
        return;
    }
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(cfg.seed);
    let wh = label_wh(&data.labels, cfg.imgsz, &mut rng);
    let det = &model.detect;
    let (nl, na) = (det.strides.len(), det.na);
    let anchors_px: Vec<[f32; 2]> = (0..nl).flat_map(|i| det.anchors_px(i)).collect();
    let check = check_anchors(&wh, &anchors_px, na, cfg.imgsz, cfg.hyp.anchor_t as f32, cfg.seed);
    let Some(new) = check.new_anchors else {
        if cfg.verbose {
            eprintln!(
                "AutoAnchor: {:.2} anchors/target, {:.3} best possible recall; current anchors fit",
                check.aat_before, check.bpr_before
            );
        }
        return;
    };
    let mut levels: Vec<Vec<[f32; 2]>> = new.chunks(na).map(<[[f32; 2]]>::to_vec).collect();
    check_anchor_order(&mut levels, &det.strides);
    let strides = det.strides.clone();
    let grid: Vec<f32> =
        levels.iter().zip(&strides).flat_map(|(l, s)| l.iter().flat_map(move |a| [a[0] / s, a[1] / s])).collect();
    model.detect.anchors = grid;
    if let Some(arch) = model.arch.as_mut()
        && let Some(yolo_compress_model::BlockSpec::Detect { anchors, .. }) =
            arch.layers.last_mut().map(|l| &mut l.block)
    {
        *anchors = levels.clone();
    }
    if cfg.verbose {
        eprintln!(
            "AutoAnchor: best possible recall {:.4} → {:.4} with evolved anchors {:?}",
            check.bpr_before,
            check.bpr_after.unwrap_or(0.0),
            levels.iter().flatten().map(|a| [a[0].round(), a[1].round()]).collect::<Vec<_>>()
        );
    }
}

fn warn_plot(r: Result<(), TrainError>) {
    if let Err(e) = r {
        eprintln!("warning: {e}");
    }
}

struct Session<'h> {
    run_dir: PathBuf,
    model: YoloModel,
    ema: ModelEma<yolo_compress_model::GraphBackbone>,
    optimizer: Optimizer,
    progress: TrainProgress,
    hook: &'h mut dyn TrainHook,
}

impl Session<'_> {
    fn run(self, data: &TrainData, device: &Device) -> Result<TrainOutcome, TrainError> {
        let Session { run_dir, model, mut ema, mut optimizer, mut progress, hook } = self;
        let cfg = progress.config.clone();
        let hyp = &cfg.hyp;
        let gs = model.max_stride().max(32) as u32;
        let ad = device.clone().autodiff();
        let mut model = model.fork(&ad).train();
        let train_cfg = LoaderConfig {
            batch_size: cfg.batch_size,
            imgsz: cfg.imgsz,
            workers: cfg.workers,
            seed: cfg.seed,
            hyp: hyp.clone(),
            stride: gs,
            ..LoaderConfig::default()
        };
        let loader = Loader::new(data.train.clone(), train_cfg, &ad)?;
        let val_loader = match &data.val {
            Some(v) if !v.is_empty() => {
                let vc =
                    LoaderConfig { workers: cfg.workers, stride: gs, ..LoaderConfig::val(cfg.imgsz, cfg.val_batch()) };
                Some(Loader::new(v.clone(), vc, device)?)
            }
            _ => None,
        };
        let nb = cfg.max_batches.map_or(loader.len(), |m| m.min(loader.len()));
        let (nl, nc) = (model.detect.strides.len(), model.nc());
        let loss_cfg = YoloLossConfig::from_hyp(hyp, nc, nl, cfg.imgsz as usize, cfg.label_smoothing);
        let loss_fn = YoloLoss::new(loss_cfg, &model.detect);
        let warmup = Warmup::new(hyp.warmup_epochs, nb, hyp.warmup_bias_lr, hyp.warmup_momentum, hyp.momentum);
        let base_accumulate = accumulate_steps(cfg.nbs, cfg.batch_size);
        let weight_decay = scaled_weight_decay(hyp.weight_decay, cfg.batch_size, base_accumulate, cfg.nbs);
        let schedule = if cfg.cos_lr {
            LrSchedule::Cosine { lrf: hyp.lrf, epochs: cfg.epochs }
        } else {
            LrSchedule::Linear { lrf: hyp.lrf, epochs: cfg.epochs }
        };
        let last = run_dir.join("weights").join("last.safetensors");
        let best = run_dir.join("weights").join("best.safetensors");
        let csv = run_dir.join("results.csv");
        let mut history = Vec::new();
        let mut final_report: Option<ValReport> = None;
        let mut stopped_early = false;
        let mut accum = GradAccumulator::new();
        let start = progress.epochs_done;
        let session_end = cfg.stop_after.map_or(cfg.epochs, |s| (start + s).min(cfg.epochs));
        if cfg.verbose {
            eprintln!(
                "Training {} epochs ({}..{}) of {} batches of {} at {} px on {:?}; results in {}",
                session_end - start,
                start,
                session_end,
                nb,
                cfg.batch_size,
                cfg.imgsz,
                device,
                run_dir.display()
            );
        }
        for epoch in start..session_end {
            let t_epoch = Instant::now();
            let lf = schedule.factor(epoch);
            let mut lrs = [hyp.lr0 * lf; 3];
            let mut momentum = hyp.momentum;
            let mut mloss = [0.0f64; 3];
            // Running mean of the hook's extra loss per image over the batches that had one.
            let (mut mextra, mut n_extra) = (0.0f64, 0usize);
            let bar = progress_bar(nb, epoch, cfg.epochs, cfg.progress);
            let mut seen = 0usize;
            let mut batches = loader.epoch(epoch as u64);
            for i in 0..nb {
                let Some(batch) = batches.next() else { break };
                let batch = batch?;
                for w in &batch.warnings {
                    bar.suspend(|| eprintln!("warning: {w}"));
                }
                let ni = i + nb * epoch;
                let mut accumulate = base_accumulate;
                if ni <= warmup.iterations() {
                    accumulate = warmup.accumulate(ni, cfg.nbs, cfg.batch_size);
                    if let Some(l) = warmup.lrs(ni, hyp.lr0, lf) {
                        lrs = l;
                    }
                    if let Some(m) = warmup.momentum(ni) {
                        momentum = m;
                    }
                }
                let (items, extra, grads) =
                    loss_and_grads_with_hook(&model, &loss_fn, &batch.images, &batch.target_rows, hook)?;
                let mut total: f32 = items.iter().sum::<f32>() * batch.len() as f32;
                if let Some(value) = extra {
                    total += value;
                    n_extra += 1;
                    mextra += (f64::from(value) / batch.len() as f64 - mextra) / n_extra as f64;
                }
                if !total.is_finite() {
                    bar.abandon();
                    return Err(TrainError::NonFiniteLoss { value: total, epoch, batch: i });
                }
                accum.add(&model, grads);
                seen += batch.len();
                for (m, v) in mloss.iter_mut().zip(items) {
                    *m += (f64::from(v) - *m) / (i + 1) as f64;
                }
                if ni as i64 - progress.last_opt_step >= accumulate as i64 {
                    let mut grads = accum.take();
                    if cfg.sparsity > 0.0 {
                        add_bn_sparsity_grad(&mut model, &mut grads, cfg.sparsity);
                    }
                    model = optimizer_step(model, grads, &mut optimizer, &mut ema, lrs, momentum, weight_decay);
                    progress.last_opt_step = ni as i64;
                }
                let extra_msg = if n_extra > 0 { format!(" extra {mextra:.4}") } else { String::new() };
                bar.set_message(format!("box {:.4} obj {:.4} cls {:.4}{extra_msg}", mloss[0], mloss[1], mloss[2]));
                bar.inc(1);
            }
            bar.finish_and_clear();
            let (m, e) = hook.end_of_epoch(epoch, model, ema.ema)?;
            model = m;
            ema.ema = e;
            let train_secs = t_epoch.elapsed().as_secs_f64();
            let final_epoch = epoch + 1 == cfg.epochs;
            let report = match &val_loader {
                Some(vl) if !cfg.noval || final_epoch => {
                    let ema_model = ema.ema.valid();
                    Some(validate(&ema_model, vl, &ValConfig::default(), Some(&loss_fn))?)
                }
                _ => None,
            };
            let (metrics, val_loss) = report.as_ref().map_or(([0.0; 4], [0.0; 3]), |r| {
                let m = &r.metrics;
                ([m.precision, m.recall, m.map50, m.map50_95], r.loss.unwrap_or([0.0; 3]))
            });
            let fitness = report.as_ref().map_or(0.0, |r| r.metrics.fitness());
            let improved = report.is_some() && (progress.best_epoch.is_none() || fitness > progress.best_fitness);
            if improved {
                progress.best_fitness = fitness;
                progress.best_epoch = Some(epoch);
            }
            let mut row = [0.0f64; 13];
            row[..3].copy_from_slice(&mloss);
            row[3..7].copy_from_slice(&metrics);
            for (r, v) in row[7..10].iter_mut().zip(val_loss) {
                *r = f64::from(v);
            }
            row[10..].copy_from_slice(&lrs);
            append_results(&csv, epoch, &row)?;
            progress.epochs_done = epoch + 1;
            progress.ema_updates = ema.updates;
            let raw_model = model.valid();
            save_train_state(&last, &ema.ema, &raw_model, optimizer.state_tensors(), &progress)?;
            if improved {
                std::fs::copy(&last, best.with_extension("tmp"))
                    .and_then(|_| std::fs::rename(best.with_extension("tmp"), &best))
                    .map_err(|source| TrainError::Io { path: best.clone(), source })?;
            }
            let record = EpochRecord {
                epoch,
                train_loss: mloss.map(|v| v as f32),
                extra_loss: (n_extra > 0).then_some(mextra as f32),
                val_loss,
                metrics,
                lrs,
                train_images_per_s: seen as f64 / train_secs.max(1e-9),
                seconds: t_epoch.elapsed().as_secs_f64(),
            };
            if cfg.verbose {
                // An epoch without validation (`--noval`, or no val split) reads "not validated", not 0.000.
                let val = if report.is_some() {
                    format!(
                        "P {:.3} R {:.3} mAP50 {:.3} mAP50-95 {:.3}",
                        metrics[0], metrics[1], metrics[2], metrics[3]
                    )
                } else {
                    "not validated".to_string()
                };
                let extra = record.extra_loss.map_or(String::new(), |v| format!(" extra {v:.4}"));
                eprintln!(
                    "epoch {}/{}: loss box {:.4} obj {:.4} cls {:.4}{extra} | {val} | {:.1} img/s, {:.1} s",
                    epoch + 1,
                    cfg.epochs,
                    mloss[0],
                    mloss[1],
                    mloss[2],
                    record.train_images_per_s,
                    record.seconds
                );
            }
            history.push(record);
            if report.is_some() {
                final_report = report;
            }
            if cfg.patience > 0
                && let Some(b) = progress.best_epoch
                && epoch >= b + cfg.patience
            {
                if cfg.verbose {
                    eprintln!(
                        "Stopping early: no improvement in the last {} epochs (best epoch {})",
                        cfg.patience,
                        b + 1
                    );
                }
                stopped_early = true;
                break;
            }
        }
        if !cfg.noplots {
            plot_run(&run_dir, &csv, final_report.as_ref(), &data.names);
        }
        Ok(TrainOutcome {
            run_dir,
            last,
            best,
            epochs_done: progress.epochs_done,
            history,
            best_fitness: progress.best_fitness,
            final_metrics: final_report.map(|r| r.metrics),
            stopped_early,
        })
    }
}

/// Draws results.png and, with a validation report, the PR/F1/P/R curves and the confusion matrix.
fn plot_run(dir: &Path, csv: &Path, report: Option<&ValReport>, names: &[String]) {
    use crate::plots::{plot_confusion_matrix, plot_metric_curve, plot_pr_curve, plot_results};
    warn_plot(plot_results(csv, &dir.join("results.png")));
    let Some(r) = report else { return };
    let m = &r.metrics;
    let cls_names: Vec<String> =
        m.per_class.iter().map(|c| names.get(c.class_id).cloned().unwrap_or_else(|| c.class_id.to_string())).collect();
    let ap50: Vec<f64> = m.per_class.iter().map(|c| c.ap50).collect();
    let c = &m.curves;
    warn_plot(plot_pr_curve(&c.px, &c.pr, &ap50, &cls_names, &dir.join("PR_curve.png")));
    warn_plot(plot_metric_curve(&c.px, &c.f1, &cls_names, "F1", &dir.join("F1_curve.png")));
    warn_plot(plot_metric_curve(&c.px, &c.precision, &cls_names, "Precision", &dir.join("P_curve.png")));
    warn_plot(plot_metric_curve(&c.px, &c.recall, &cls_names, "Recall", &dir.join("R_curve.png")));
    warn_plot(plot_confusion_matrix(&r.confusion.matrix, names, true, &dir.join("confusion_matrix.png")));
}

fn progress_bar(nb: usize, epoch: usize, epochs: usize, enabled: bool) -> ProgressBar {
    let target = if enabled && std::io::stderr().is_terminal() {
        ProgressDrawTarget::stderr()
    } else {
        ProgressDrawTarget::hidden()
    };
    let bar = ProgressBar::with_draw_target(Some(nb as u64), target);
    if let Ok(style) = ProgressStyle::with_template("{prefix} [{bar:30}] {pos}/{len} {msg} ETA {eta}") {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_prefix(format!("epoch {}/{}", epoch + 1, epochs));
    bar
}

impl TrainData {
    /// The data of a YOLO-format dataset: its train split and, if given, its val split.
    pub fn from_datasets(
        train: yolo_compress_data::dataset::YoloDataset,
        val: Option<yolo_compress_data::dataset::YoloDataset>,
    ) -> Self {
        let names = train.names().to_vec();
        let labels = train
            .items()
            .iter()
            .map(|it| ImageLabels {
                width: it.shape.1,
                height: it.shape.0,
                boxes_wh: it.labels.iter().map(|l| [l.xywhn[2], l.xywhn[3]]).collect(),
            })
            .collect();
        let label_classes = train.items().iter().flat_map(|it| it.labels.iter().map(|l| l.class_id)).collect();
        Self {
            train: Arc::new(train),
            val: val.map(|v| Arc::new(v) as Arc<dyn SampleSource>),
            names,
            labels,
            label_classes,
        }
    }
}
