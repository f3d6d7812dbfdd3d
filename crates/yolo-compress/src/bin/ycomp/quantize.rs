//! `ycomp quantize`: int8 post-training quantization (PTQ) or quantization-aware training (QAT) of a
//! float checkpoint, an int8 checkpoint out, float-vs-int8 mAP and size, optional per-layer
//! sensitivity. QAT writes a run folder as `ycomp train` does (`runs/quantize/exp`, `exp2`, …):
//! `args.yaml`, `results.csv` and per-epoch int8 checkpoints in `weights/`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result, anyhow, bail};
use burn::module::Module;
use burn::prelude::*;
use clap::Args;
use yolo_compress::backend::device_from_name;
use yolo_compress::compress::quant::calibrate::loader_images;
use yolo_compress::compress::quant::checkpoint::{load_int8, save_int8};
use yolo_compress::compress::quant::pipeline::{QuantMethod, QuantizeConfig, quantize};
use yolo_compress::compress::quant::qat::{QatConfig, QatOptimizer};
use yolo_compress::compress::quant::sensitivity::{SensitivityConfig, write_sensitivity};
use yolo_compress::compress::quant::{CalibMethod, ObserverConfig, QuantConfig, QuantModel, select_convs};
use yolo_compress::data::dataset::{DataConfig, Split, YoloDataset};
use yolo_compress::data::loader::{Loader, LoaderConfig};
use yolo_compress::data::{ImageFolder, LetterboxConfig, SampleSource, Subset, image_to_chw, letterbox, load_rgb};
use yolo_compress::model::weights::save_checkpoint;
use yolo_compress::model::{DetectionModel, YoloModel};
use yolo_compress::train::trainer::run_dir::increment_run_dir;
use yolo_compress::train::val::{ValConfig, validate};

use crate::{Common, ModelArgs};

/// Arguments of `ycomp quantize`.
#[derive(Args)]
pub struct QuantizeArgs {
    #[command(flatten)]
    model: ModelArgs,
    /// Dataset YAML: calibration images from the train split (unless --calib), QAT training batches,
    /// and the val split for the float / int8 mAP.
    #[arg(long)]
    data: Option<PathBuf>,
    /// A folder of unlabelled calibration images (instead of the dataset's train split); unreadable
    /// images are reported on stderr and skipped.
    #[arg(long)]
    calib: Option<PathBuf>,
    /// ptq (calibration only) or qat (calibration, then fine-tuning through the quantizers; needs --data).
    #[arg(long, default_value = "ptq")]
    method: String,
    /// Activation range calibration: minmax, percentile, mse or entropy (mse: the best PTQ mAP in
    /// docs/quantization.md's study).
    #[arg(long, default_value = "mse")]
    calib_method: String,
    /// Percentile (in percent) of --calib-method percentile.
    #[arg(long, default_value_t = 99.99)]
    percentile: f64,
    /// Calibration images (spread evenly over the train split or the --calib folder).
    #[arg(long, default_value_t = 128)]
    calib_images: usize,
    /// Symmetric activation grid [-127, 127] (zero point 0) instead of asymmetric [0, 255].
    #[arg(long)]
    act_symmetric: bool,
    /// Quantize Detect's output convs too (kept float by default).
    #[arg(long)]
    quantize_detect: bool,
    /// Keep the first conv (the stem) in float.
    #[arg(long)]
    float_first: bool,
    /// Convs forced to int8: conv names or name prefixes (`model.24.m.0`, `model.2`) or layer
    /// indices (`2`); repeatable or comma-separated.
    #[arg(long, value_delimiter = ',')]
    include: Vec<String>,
    /// Convs kept in float (same patterns as --include, which wins).
    #[arg(long, value_delimiter = ',')]
    exclude: Vec<String>,
    /// Output int8 checkpoint (default: `<weights stem>-int8.safetensors` next to the weights).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Image size (pixels) of calibration, training and validation.
    #[arg(long, default_value_t = 640)]
    imgsz: u32,
    /// Batch size.
    #[arg(long, default_value_t = 16)]
    batch: usize,
    /// Data-loader worker threads.
    #[arg(long, default_value_t = 2)]
    workers: usize,
    /// Val images for the float / int8 mAP (spread evenly; default: the whole val split, as `ycomp val`).
    #[arg(long)]
    eval_images: Option<usize>,
    /// Skip the float / int8 validation.
    #[arg(long)]
    noval: bool,
    /// QAT: epochs.
    #[arg(long, default_value_t = 3)]
    epochs: usize,
    /// QAT: learning rate.
    #[arg(long, default_value_t = 1e-4)]
    lr: f64,
    /// QAT: adam or sgd.
    #[arg(long, default_value = "adam")]
    optimizer: String,
    /// QAT: freeze the BN statistics (and fold BN with them) after this many epochs.
    #[arg(long, default_value_t = 1)]
    freeze_bn_after: usize,
    /// QAT: freeze the activation observers (EMA of batch min/max) after this many epochs.
    #[arg(long, default_value_t = 2)]
    freeze_observers_after: usize,
    /// QAT: at most this many batches per epoch (default: the whole train split).
    #[arg(long)]
    max_batches: Option<usize>,
    /// QAT: learn the activation ranges by gradient descent (LSQ-style) instead of EMA observers.
    #[arg(long)]
    learnable_scales: bool,
    /// QAT: parent folder of run folders (args.yaml, results.csv, weights/last.safetensors and
    /// best.safetensors).
    #[arg(long, default_value = "runs/quantize")]
    project: PathBuf,
    /// QAT: run folder name (exp2, exp3, … when taken).
    #[arg(long, default_value = "exp")]
    name: String,
    /// QAT: reuse project/name if it exists.
    #[arg(long)]
    exist_ok: bool,
    /// Per-layer sensitivity (SQNR and, with validation, mAP of quantizing each conv alone) and a
    /// mixed-precision suggestion: sensitivity.md, .json and .png in --save-dir. The per-layer mAP
    /// costs one validation on the --eval-images subset per int8 conv (keep it small; --noval: SQNR only).
    #[arg(long)]
    sensitivity: bool,
    /// Convs the mixed-precision suggestion keeps in float.
    #[arg(long, default_value_t = 3)]
    keep_float: usize,
    /// Rank the sensitivity by each conv's mAP50-95 drop instead of its SQNR (needs validation data;
    /// single-layer drops are often below the evaluation's noise).
    #[arg(long)]
    rank_by_map: bool,
    /// Folder of the sensitivity files (default: the folder of --out).
    #[arg(long)]
    save_dir: Option<PathBuf>,
    #[command(flatten)]
    common: Common,
}

/// Runs `ycomp quantize`.
pub fn run(a: QuantizeArgs) -> Result<()> {
    let device = device_from_name(&a.common.device)?;
    device.seed(a.common.seed);
    let quiet = a.common.quiet || a.common.json;
    let method: QuantMethod = a.method.parse().map_err(|e| anyhow!("--method: {e}"))?;
    let calib_method: CalibMethod = a.calib_method.parse().map_err(|e| anyhow!("--calib-method: {e}"))?;
    let optimizer = match a.optimizer.to_ascii_lowercase().as_str() {
        "adam" => QatOptimizer::Adam,
        "sgd" => QatOptimizer::Sgd,
        other => bail!("--optimizer: unknown optimizer `{other}`; expected adam or sgd"),
    };
    let Some(weights) = a.model.weights.clone() else {
        bail!("--weights is required: quantize a trained checkpoint");
    };
    if a.data.is_none() && a.calib.is_none() {
        bail!("give --data (a dataset YAML) or --calib (a folder of images) for calibration");
    }
    if method == QuantMethod::Qat && a.data.is_none() {
        bail!("--method qat needs --data: QAT trains on labelled images (--calib alone only calibrates)");
    }
    if a.calib_images == 0 || a.batch == 0 {
        bail!("--calib-images and --batch must be positive");
    }
    if !(0.0..=100.0).contains(&a.percentile) {
        bail!("--percentile {} is not in [0, 100]", a.percentile);
    }
    let out = a.out.clone().unwrap_or_else(|| default_out(&weights));
    if out.exists() && weights.exists() && same_file(&out, &weights) {
        bail!("--out {} would overwrite the float weights", out.display());
    }

    let loaded = a.model.load(&device)?;
    let model = loaded.model;
    let quant = QuantConfig {
        calib: ObserverConfig { method: calib_method, percentile: a.percentile, ..ObserverConfig::default() },
        act_symmetric: a.act_symmetric,
        quantize_detect: a.quantize_detect,
        quantize_first: !a.float_first,
        include: a.include.clone(),
        exclude: a.exclude.clone(),
    };
    // Check the selection before any expensive step (a pattern matching nothing is an error).
    let names = QuantModel::from_model(&model)?.conv_names();
    let selected = select_convs(&names, &quant)?.iter().filter(|q| **q).count();
    if a.sensitivity && a.keep_float > selected {
        bail!("--keep-float {} exceeds the {selected} convs that are quantized", a.keep_float);
    }
    if a.rank_by_map && (a.noval || a.data.is_none()) {
        bail!("--rank-by-map needs validation data: give --data and drop --noval");
    }

    let stride = model.max_stride().max(32) as u32;
    let val_cfg = LoaderConfig { workers: a.workers, stride, ..LoaderConfig::val(a.imgsz, a.batch) };
    let data = match &a.data {
        Some(p) => Some((p.clone(), DataConfig::load(p)?)),
        None => None,
    };
    let train_ds: Option<Arc<dyn SampleSource>> = match &data {
        Some((path, cfg)) => Some(Arc::new(
            YoloDataset::from_config(cfg.clone(), Split::Train, &Default::default())
                .with_context(|| format!("{}: train split", path.display()))?,
        )),
        None => None,
    };

    // Calibration images.
    let calib: Vec<Tensor<4>> = match (&a.calib, &train_ds) {
        (Some(dir), _) => folder_batches(dir, a.calib_images, a.imgsz, stride, a.batch, &device)?,
        (None, Some(ds)) => {
            let subset = Arc::new(Subset::evenly(ds.clone(), a.calib_images));
            loader_images(&Loader::new(subset, val_cfg.clone(), &device)?, a.calib_images)?
        }
        (None, None) => bail!("give --data or --calib for calibration"),
    };
    let calib_count: usize = calib.iter().map(|t| t.dims()[0]).sum();

    // QAT training batches and the val subset.
    let train_loader = match (&train_ds, method) {
        (Some(ds), QuantMethod::Qat) => {
            let cfg = LoaderConfig {
                workers: a.workers,
                stride,
                seed: a.common.seed,
                ..LoaderConfig::train(a.imgsz, a.batch)
            };
            Some(Loader::new(ds.clone(), cfg, &device)?)
        }
        _ => None,
    };
    let eval_loader = match &data {
        Some((path, cfg)) if !a.noval => {
            let ds: Arc<dyn SampleSource> = Arc::new(
                YoloDataset::from_config(cfg.clone(), Split::Val, &Default::default())
                    .with_context(|| format!("{}: val split", path.display()))?,
            );
            let subset = Arc::new(Subset::evenly(ds, a.eval_images.unwrap_or(usize::MAX)));
            Some(Loader::new(subset, val_cfg.clone(), &device)?)
        }
        _ => None,
    };
    let val = ValConfig::default();
    let eval = eval_loader.as_ref().map(|l| (l, &val));

    // The QAT run folder, created only once every input has been checked.
    let run_dir = match method {
        QuantMethod::Qat => Some(increment_run_dir(&a.project, &a.name, a.exist_ok)?),
        QuantMethod::Ptq => None,
    };
    let qat = QatConfig {
        epochs: a.epochs,
        lr: a.lr,
        optimizer,
        freeze_bn_after: Some(a.freeze_bn_after),
        freeze_observers_after: Some(a.freeze_observers_after),
        max_batches: a.max_batches,
        learnable_ranges: a.learnable_scales,
        verbose: !quiet,
        run_dir: run_dir.clone(),
        ..QatConfig::default()
    };
    let sensitivity = a.sensitivity.then(|| SensitivityConfig {
        keep_float: a.keep_float,
        with_map: eval.is_some(),
        rank_by_map: a.rank_by_map,
    });
    let cfg = QuantizeConfig { method, quant, qat, sensitivity };
    if !quiet {
        eprintln!("{method}: calibrating with {calib_method} on {calib_count} images at {} px", a.imgsz);
    }
    let outcome = quantize(&model, &calib, train_loader.as_ref(), eval, &cfg, &device)?;

    // Save, then measure what the file holds.
    let mut meta = BTreeMap::new();
    meta.insert("producer".to_string(), "ycomp quantize".to_string());
    meta.insert("quantized_from".to_string(), loaded.origin.clone());
    meta.insert("quant_method".to_string(), method.to_string());
    meta.insert("calib_method".to_string(), calib_method.to_string());
    meta.insert("calib_images".to_string(), calib_count.to_string());
    meta.insert("imgsz".to_string(), a.imgsz.to_string());
    if let Some(dir) = out.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let size_bytes = save_int8(&outcome.model, &out, &meta)?;
    let float_size_bytes = float_checkpoint_size(&model)?;
    let (saved, _) = load_int8(&out, &device)?;

    let map_of = |m: &dyn DetectionModel| -> Result<(Option<f64>, Option<f64>)> {
        match &eval_loader {
            None => Ok((None, None)),
            Some(l) => {
                let r = validate(m, l, &val, None)?;
                Ok((Some(r.metrics.map50), Some(r.metrics.map50_95)))
            }
        }
    };
    let (map50_float, map50_95_float) = map_of(&model)?;
    let (map50, map50_95) = map_of(&saved)?;
    let eval_count = eval_loader.as_ref().map_or(0, |l| l.num_samples());

    let quantized = saved.quantized();
    let float_convs: Vec<&str> =
        saved.convs.iter().filter(|c| !c.quantized).map(|c| c.name.as_str()).collect::<Vec<_>>();
    let quantized_convs = quantized.iter().filter(|&&q| q).count();

    let mut sens_files = Vec::new();
    if let Some(report) = &outcome.sensitivity {
        let dir = a.save_dir.clone().unwrap_or_else(|| match out.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        });
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        sens_files = write_sensitivity(report, &dir)?;
    }

    let json = serde_json::json!({
        "method": method,
        "calib_method": calib_method,
        "checkpoint": out,
        "size_bytes": size_bytes,
        "float_size_bytes": float_size_bytes,
        "compression": float_size_bytes as f64 / size_bytes.max(1) as f64,
        "params": saved.num_params(),
        "params_float": model.num_params(),
        "quantized_convs": quantized_convs,
        "float_convs": float_convs.len(),
        "float_conv_names": float_convs,
        "calib_images": calib_count,
        "eval_images": eval_count,
        "imgsz": a.imgsz,
        "act_symmetric": a.act_symmetric,
        "map50_float": map50_float,
        "map50_95_float": map50_95_float,
        "map50": map50,
        "map50_95": map50_95,
        "qat_epochs": outcome.qat_epochs,
        "run_dir": run_dir,
        "sensitivity": outcome.sensitivity,
        "sensitivity_files": sens_files,
    });
    if a.common.json {
        out!("{}", serde_json::to_string_pretty(&json)?);
        return Ok(());
    }
    let fmt = |m: Option<f64>| m.map(|v| format!("{v:.4}")).unwrap_or_else(|| "-".into());
    out!("{:<12} {:>10} {:>14} {:>8} {:>9} {:>12}", "", "params", "size (bytes)", "mAP50", "mAP50-95", "int8/float");
    out!(
        "{:<12} {:>10} {:>14} {:>8} {:>9} {:>12}",
        "float",
        model.num_params(),
        float_size_bytes,
        fmt(map50_float),
        fmt(map50_95_float),
        format!("0/{}", names.len())
    );
    out!(
        "{:<12} {:>10} {:>14} {:>8} {:>9} {:>12}",
        format!("int8 ({method})"),
        saved.num_params(),
        size_bytes,
        fmt(map50),
        fmt(map50_95),
        format!("{quantized_convs}/{}", float_convs.len())
    );
    if eval_count > 0 {
        out!(
            "mAP on {eval_count} val images at {} px; calibrated with {calib_method} on {calib_count} images",
            a.imgsz
        );
    }
    if !float_convs.is_empty() {
        out!("float convs: {}", float_convs.join(", "));
    }
    if let Some(r) = &outcome.sensitivity {
        out!(
            "mixed precision: keep {} in float → SQNR {:.1} dB{}",
            if r.suggestion.keep_float.is_empty() { "nothing".to_string() } else { r.suggestion.keep_float.join(", ") },
            r.suggestion.sqnr_db,
            r.suggestion.map50_95.map(|m| format!(", mAP50-95 {m:.4}")).unwrap_or_default()
        );
        let files: Vec<String> = sens_files.iter().map(|p| p.display().to_string()).collect();
        out!("sensitivity: {}", files.join(", "));
    }
    if let Some(dir) = &run_dir {
        out!("QAT run saved to {} (args.yaml, results.csv, weights/)", dir.display());
    }
    out!(
        "saved {} ({:.1}× smaller than the float checkpoint); validate it with `ycomp val --weights {}`",
        out.display(),
        float_size_bytes as f64 / size_bytes.max(1) as f64,
        out.display()
    );
    Ok(())
}

/// `<weights stem>-int8.safetensors` next to the weights.
fn default_out(weights: &Path) -> PathBuf {
    let stem = weights.file_stem().map_or_else(|| "model".into(), |s| s.to_string_lossy().into_owned());
    weights.with_file_name(format!("{stem}-int8.safetensors"))
}

fn same_file(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(x), Ok(y)) => x == y,
        _ => false,
    }
}

/// Bytes of `model` with BN folded, saved as a native float checkpoint (written to a temporary file).
fn float_checkpoint_size(model: &YoloModel) -> Result<u64> {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
    let tmp = std::env::temp_dir().join(format!("ycomp-float-size-{}-{nanos}.safetensors", std::process::id()));
    let result = save_checkpoint(&model.clone().fuse(), &tmp, &BTreeMap::new())
        .map_err(anyhow::Error::from)
        .and_then(|()| Ok(std::fs::metadata(&tmp)?.len()));
    let _ = std::fs::remove_file(&tmp);
    result.context("measuring the float checkpoint size")
}

/// Up to `max` images of `dir` (spread evenly), letterboxed as `ycomp detect` does (long side
/// `imgsz`, padded to a stride multiple), batched by shape. Unreadable images are reported on
/// stderr and skipped.
fn folder_batches(
    dir: &Path,
    max: usize,
    imgsz: u32,
    stride: u32,
    batch: usize,
    device: &Device,
) -> Result<Vec<Tensor<4>>> {
    let folder = ImageFolder::open(dir).context("--calib")?;
    let files = folder.files();
    let n = max.min(files.len());
    let picked: Vec<&PathBuf> = (0..n).map(|i| &files[i * files.len() / n]).collect();
    let s = imgsz.div_ceil(stride) * stride;
    let lb = LetterboxConfig::new((s, s)).with_auto(true).with_stride(stride);
    let mut by_shape: BTreeMap<(u32, u32), Vec<Vec<f32>>> = BTreeMap::new();
    for f in picked {
        let img = match load_rgb(f) {
            Ok(img) => img,
            Err(e) => {
                eprintln!("warning: skipping {}: {e}", f.display());
                continue;
            }
        };
        let (boxed, info) = letterbox(&img, &lb)?;
        by_shape.entry(info.shape).or_default().push(image_to_chw(&boxed));
    }
    let mut out = Vec::new();
    for ((h, w), images) in by_shape {
        for chunk in images.chunks(batch) {
            let flat: Vec<f32> = chunk.concat();
            let data = TensorData::new(flat, [chunk.len(), 3, h as usize, w as usize]);
            out.push(Tensor::<4>::from_data(data, device));
        }
    }
    if out.is_empty() {
        bail!("--calib {}: none of the images could be read", dir.display());
    }
    Ok(out)
}
