//! Training checkpoints: `weights/last.safetensors` and `weights/best.safetensors`.
//!
//! Each is a native checkpoint whose weights are the EMA model (what ultralytics keeps for
//! inference), so `ycomp val/detect --weights last.safetensors` works directly. Beside the
//! weights, under the checkpoint's extra prefix, it stores what `--resume` needs: the raw training
//! weights (`model.*`), the optimizer buffers (`optim.*`), and in the metadata the epoch, the EMA
//! update count, the best fitness, the step bookkeeping and the [`TrainConfig`]. One file, written
//! atomically, so a crash at any moment leaves the previous checkpoint intact.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use burn::prelude::*;
use yolo_compress_model::YoloModel;
use yolo_compress_model::weights::{
    ExtraTensors, StateDict, apply_state_dict, read_checkpoint, save_checkpoint_with_extra,
};

use super::config::TrainConfig;
use crate::error::TrainError;

/// Bookkeeping stored in a training checkpoint's metadata.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct TrainProgress {
    /// Epochs completed.
    pub epochs_done: usize,
    /// Best fitness so far (0.1·mAP50 + 0.9·mAP50-95).
    pub best_fitness: f64,
    /// Epoch (0-based) of the best fitness.
    pub best_epoch: Option<usize>,
    /// EMA updates so far.
    pub ema_updates: u64,
    /// Global iteration of the last optimizer step (`-1` before the first).
    pub last_opt_step: i64,
    /// The run's settings.
    pub config: TrainConfig,
}

/// Everything read back from a training checkpoint.
pub struct LoadedState {
    /// The EMA model (the checkpoint's weights).
    pub ema: YoloModel,
    /// The raw training model.
    pub model: YoloModel,
    /// Optimizer buffers: `(key, shape, values)`.
    pub optim: Vec<(String, Vec<usize>, Vec<f32>)>,
    /// Bookkeeping.
    pub progress: TrainProgress,
    /// The run folder (two levels above the checkpoint).
    pub run_dir: PathBuf,
}

/// Writes a training checkpoint atomically.
pub fn save_train_state(
    path: &Path,
    ema: &YoloModel,
    model: &YoloModel,
    optim: Vec<(String, Vec<usize>, Vec<f32>)>,
    progress: &TrainProgress,
) -> Result<(), TrainError> {
    let mut extra = ExtraTensors::new();
    let mut col = yolo_compress_model::state::Collector::default();
    {
        use yolo_compress_model::state::NamedTensors;
        model.clone().visit_tensors("model", &mut col)?;
    }
    for (k, s, v) in col.tensors {
        extra.insert(k, (s, v));
    }
    for (k, s, v) in optim {
        extra.insert(format!("optim.{k}"), (s, v));
    }
    let mut meta = BTreeMap::new();
    meta.insert("producer".to_string(), format!("yolo-compress {} train", env!("CARGO_PKG_VERSION")));
    meta.insert("epoch".to_string(), progress.epochs_done.to_string());
    meta.insert(
        "train_progress".to_string(),
        serde_json::to_string(progress).map_err(|e| TrainError::Config(e.to_string()))?,
    );
    save_checkpoint_with_extra(ema, path, &meta, &extra)?;
    Ok(())
}

/// Reads a training checkpoint (`…/weights/last.safetensors`) for `--resume`.
pub fn load_train_state(path: &Path, device: &Device) -> Result<LoadedState, TrainError> {
    let bad = |reason: String| TrainError::Checkpoint { path: path.to_path_buf(), reason };
    let (ck, sd) = read_checkpoint(path)?;
    let progress: TrainProgress = ck
        .metadata
        .get("train_progress")
        .ok_or_else(|| bad("no training state (not written by `ycomp train`, or already stripped)".into()))
        .and_then(|s| serde_json::from_str(s).map_err(|e| bad(format!("corrupt training state: {e}"))))?;
    let ema = apply_state_dict(ck.arch.build(device)?, &sd, device)?;
    let mut model_sd = StateDict { path: path.to_path_buf(), tensors: HashMap::new() };
    let mut optim = Vec::new();
    for (k, (s, v)) in ck.extra {
        if let Some(rest) = k.strip_prefix("optim.") {
            optim.push((rest.to_string(), s, v));
        } else if k.starts_with("model.") {
            model_sd.tensors.insert(k, (s, v));
        }
    }
    if model_sd.tensors.is_empty() {
        return Err(bad("the raw training weights are missing".into()));
    }
    let model = apply_state_dict(ck.arch.build(device)?, &model_sd, device)?;
    let run_dir = path
        .parent()
        .and_then(Path::parent)
        .map(Path::to_path_buf)
        .ok_or_else(|| bad("a training checkpoint lives in RUN/weights/".into()))?;
    Ok(LoadedState { ema, model, optim, progress, run_dir })
}

/// Where `--resume` finds the checkpoint: a run folder → `RUN/weights/last.safetensors`; a file →
/// itself.
pub fn resume_checkpoint_path(run_or_file: &Path) -> PathBuf {
    if run_or_file.is_dir() { run_or_file.join("weights").join("last.safetensors") } else { run_or_file.to_path_buf() }
}

/// The most recently modified `last.safetensors` under `project` (`--resume` without a path).
pub fn latest_run(project: &Path) -> Option<PathBuf> {
    let mut best: Option<(std::time::SystemTime, PathBuf)> = None;
    for entry in std::fs::read_dir(project).ok()?.flatten() {
        let p = entry.path().join("weights").join("last.safetensors");
        if let Ok(t) = p.metadata().and_then(|m| m.modified())
            && best.as_ref().is_none_or(|(bt, _)| t > *bt)
        {
            best = Some((t, p));
        }
    }
    best.map(|(_, p)| p)
}
