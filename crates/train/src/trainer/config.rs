//! [`TrainConfig`]: the settings of a training run, under ultralytics' `train.py` argument names
//! where one exists. Saved as `args.yaml` in the run folder and inside every checkpoint, so
//! `--resume` continues with exactly the same settings.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use yolo_compress_data::augment::Hyp;

use crate::error::TrainError;
use crate::optim::OptimizerKind;

/// Settings of a training run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct TrainConfig {
    /// The dataset YAML the run trains on (default none). The trainer only records it, so that
    /// `ycomp train --resume RUN` finds the data without `--data`.
    pub data: Option<PathBuf>,
    /// The folder of unlabeled images a label-free run (`ycomp train --unlabeled`) pseudo-labelled
    /// into [`data`](Self::data) (default none); recorded for reference.
    pub unlabeled: Option<PathBuf>,
    /// Total epochs (default 100).
    pub epochs: usize,
    /// Batch size (default 16).
    pub batch_size: usize,
    /// Square training image size in pixels, a multiple of the largest stride (default 640).
    pub imgsz: u32,
    /// Hyperparameters (default `hyp.scratch-low.yaml`).
    pub hyp: Hyp,
    /// Optimizer (default SGD with Nesterov momentum).
    pub optimizer: OptimizerKind,
    /// Cosine LR schedule instead of linear (default false).
    pub cos_lr: bool,
    /// Label smoothing epsilon (default 0).
    pub label_smoothing: f64,
    /// Network slimming (Liu et al., ICCV 2017) sparsity: the L1 penalty `sparsity·Σ|γ|` on every
    /// BatchNorm weight γ, applied as its subgradient `sparsity·sign(γ)` added to the accumulated
    /// gradient once per optimizer step, before clipping (not scaled by the batch size or the
    /// accumulation count); e.g. 1e-4. Default 0 (off).
    pub sparsity: f64,
    /// Soft filter pruning ratio per group, `[0, 1)` (default 0 = off). The trainer only records it;
    /// `ycomp train` installs `yolo_compress::compress::prune::SoftFilterPruning` as the
    /// [`TrainHook`](super::TrainHook) from it (also when resuming).
    pub sfp: f64,
    /// Criterion of soft filter pruning: `l2` (default), `l1`, `fpgm` or `bn`.
    pub sfp_criterion: String,
    /// Knowledge distillation: the teacher's weights (default none). The trainer only records it;
    /// `ycomp train` installs `yolo_compress::compress::distill::Distiller` as the
    /// [`TrainHook`](super::TrainHook) from it and [`distill`](Self::distill) (also when resuming).
    pub teacher: Option<PathBuf>,
    /// Weight of the distillation loss relative to the detection loss (default 1.0; used only with
    /// a [`teacher`](Self::teacher)).
    pub distill: f64,
    /// Nominal batch size: gradients are accumulated up to it (default 64).
    pub nbs: usize,
    /// Epochs without fitness improvement before stopping (default 100; 0 disables).
    pub patience: usize,
    /// Data-loader worker threads (default 2).
    pub workers: usize,
    /// Seed of augmentation, shuffling and AutoAnchor (default 0).
    pub seed: u64,
    /// Validate only after the final epoch (default false).
    pub noval: bool,
    /// Skip the AutoAnchor check (default false).
    pub noautoanchor: bool,
    /// Do not draw PNG plots (default false).
    pub noplots: bool,
    /// Batch size of validation (default 2 × `batch_size`, as train.py).
    pub val_batch_size: Option<usize>,
    /// Use at most this many batches per epoch (default: all); for quick experiments.
    pub max_batches: Option<usize>,
    /// Stop this session after this many epochs (the run stays resumable); for time-boxed jobs.
    pub stop_after: Option<usize>,
    /// Parent folder of run folders (default `runs/train`).
    pub project: PathBuf,
    /// Run folder name; `exp2`, `exp3`, … when taken (default `exp`).
    pub name: String,
    /// Reuse `project/name` even if it exists (default false).
    pub exist_ok: bool,
    /// Progress bars on stderr (hidden anyway when stderr is not a terminal) (default true).
    pub progress: bool,
    /// One summary line per epoch on stderr (default true).
    pub verbose: bool,
}

impl Default for TrainConfig {
    fn default() -> Self {
        Self {
            data: None,
            unlabeled: None,
            epochs: 100,
            batch_size: 16,
            imgsz: 640,
            hyp: Hyp::default(),
            optimizer: OptimizerKind::Sgd,
            cos_lr: false,
            label_smoothing: 0.0,
            sparsity: 0.0,
            sfp: 0.0,
            sfp_criterion: "l2".into(),
            teacher: None,
            distill: 1.0,
            nbs: 64,
            patience: 100,
            workers: 2,
            seed: 0,
            noval: false,
            noautoanchor: false,
            noplots: false,
            val_batch_size: None,
            max_batches: None,
            stop_after: None,
            project: PathBuf::from("runs/train"),
            name: "exp".into(),
            exist_ok: false,
            progress: true,
            verbose: true,
        }
    }
}

impl TrainConfig {
    /// Checks the settings; each error names the field.
    pub fn validate(&self, max_stride: usize) -> Result<(), TrainError> {
        let bad = |m: String| Err(TrainError::Config(m));
        if self.epochs == 0 {
            return bad("epochs must be at least 1".into());
        }
        if self.batch_size == 0 || self.nbs == 0 {
            return bad(format!("batch_size ({}) and nbs ({}) must be at least 1", self.batch_size, self.nbs));
        }
        if self.imgsz == 0 || !(self.imgsz as usize).is_multiple_of(max_stride) {
            return bad(format!("imgsz {} must be a positive multiple of the model's stride {max_stride}", self.imgsz));
        }
        if !(0.0..1.0).contains(&self.label_smoothing) {
            return bad(format!("label_smoothing {} must be in [0, 1)", self.label_smoothing));
        }
        if !(0.0..1.0).contains(&self.sfp) {
            return bad(format!("sfp {} must be in [0, 1)", self.sfp));
        }
        if !(self.sparsity.is_finite() && self.sparsity >= 0.0) {
            return bad(format!("sparsity {} must be a finite value >= 0", self.sparsity));
        }
        if !(self.distill.is_finite() && self.distill >= 0.0) {
            return bad(format!("distill {} must be a finite value >= 0", self.distill));
        }
        if self.max_batches == Some(0) || self.stop_after == Some(0) || self.val_batch_size == Some(0) {
            return bad("max_batches, stop_after and val_batch_size must be at least 1 when given".into());
        }
        self.hyp.validate().map_err(|e| TrainError::Config(e.to_string()))
    }

    /// Validation batch size.
    pub fn val_batch(&self) -> usize {
        self.val_batch_size.unwrap_or(self.batch_size * 2)
    }
}
