//! `ycomp train`: train a detector on a YOLO dataset (ultralytics' train.py recipe), or `--resume`
//! an interrupted run.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::Args;
use yolo_compress::backend::device_from_name;
use yolo_compress::data::augment::Hyp;
use yolo_compress::data::dataset::{Split, YoloDataset};
use yolo_compress::train::optim::OptimizerKind;
use yolo_compress::train::trainer::{self, TrainConfig, TrainData};

use crate::{Common, ModelArgs};

/// Arguments of `ycomp train` (defaults of ultralytics train.py).
#[derive(Args)]
pub struct TrainArgs {
    #[command(flatten)]
    model: ModelArgs,
    /// Dataset YAML (ultralytics format). With `--resume`, defaults to the one the run recorded.
    #[arg(long)]
    data: Option<PathBuf>,
    /// Label-free recovery, instead of `--data`: the `--teacher` pseudo-labels the images of this
    /// folder once (conf `--pseudo-conf`, IoU 0.45), written as a YOLO dataset in RUN/pseudo with the
    /// last `--holdout` images as its val split; then training runs as with
    /// `--data RUN/pseudo/data.yaml --teacher T`.
    #[arg(long, value_name = "DIR", conflicts_with = "data")]
    unlabeled: Option<PathBuf>,
    /// With `--unlabeled`: images held out for validation (the last ones by file name); default
    /// 10 % of the images, at least 1.
    #[arg(long, value_name = "N", requires = "unlabeled")]
    holdout: Option<usize>,
    /// With `--unlabeled`: confidence threshold of the teacher's pseudo-labels.
    #[arg(long, default_value_t = 0.25, value_name = "CONF", requires = "unlabeled")]
    pseudo_conf: f32,
    /// Total epochs.
    #[arg(long, default_value_t = 100)]
    epochs: usize,
    /// Batch size.
    #[arg(long, default_value_t = 16)]
    batch: usize,
    /// Training image size (pixels, multiple of the model stride).
    #[arg(long, default_value_t = 640)]
    imgsz: u32,
    /// Hyperparameter YAML (ultralytics hyp file); default hyp.scratch-low.
    #[arg(long)]
    hyp: Option<PathBuf>,
    /// Optimizer.
    #[arg(long, value_enum, default_value = "sgd")]
    optimizer: Optim,
    /// Cosine LR schedule.
    #[arg(long)]
    cos_lr: bool,
    /// Nominal batch size: gradients are accumulated over round(nbs / batch) batches.
    #[arg(long, default_value_t = 64)]
    nbs: usize,
    /// Label smoothing epsilon.
    #[arg(long, default_value_t = 0.0)]
    label_smoothing: f64,
    /// Network slimming: L1 penalty on BN γ added to the gradient (e.g. 1e-4); prune afterwards with `ycomp prune --method slim`.
    #[arg(long, default_value_t = 0.0, value_name = "S")]
    sparsity: f64,
    /// Soft filter pruning: after every epoch zero this fraction of every channel group (they stay
    /// trainable); prune afterwards with `ycomp prune --method l2 --ratio RATIO`.
    #[arg(long, default_value_t = 0.0, value_name = "RATIO")]
    sfp: f64,
    /// Criterion of soft filter pruning: l2, l1, fpgm or bn.
    #[arg(long, default_value = "l2")]
    sfp_criterion: String,
    /// Knowledge distillation: train against this teacher's outputs too (e.g. the unpruned model
    /// when fine-tuning a pruned one). It must have the student's classes and anchors; AutoAnchor
    /// is skipped so they stay equal.
    #[arg(long, value_name = "WEIGHTS")]
    teacher: Option<PathBuf>,
    /// Weight of the distillation loss relative to the detection loss (with --teacher).
    #[arg(long, default_value_t = 1.0, value_name = "W")]
    distill: f64,
    /// Stop after this many epochs without improvement (0 = never).
    #[arg(long, default_value_t = 100)]
    patience: usize,
    /// Data-loader worker threads.
    #[arg(long, default_value_t = 2)]
    workers: usize,
    /// Parent folder of run folders.
    #[arg(long, default_value = "runs/train")]
    project: PathBuf,
    /// Run folder name (exp2, exp3, … when taken).
    #[arg(long, default_value = "exp")]
    name: String,
    /// Reuse project/name if it exists.
    #[arg(long)]
    exist_ok: bool,
    /// Validate only after the final epoch.
    #[arg(long)]
    noval: bool,
    /// Skip the AutoAnchor check.
    #[arg(long)]
    noautoanchor: bool,
    /// Do not draw plots.
    #[arg(long)]
    noplots: bool,
    /// Use at most this many batches per epoch.
    #[arg(long)]
    max_batches: Option<usize>,
    /// Stop this session after N epochs (resumable with --resume).
    #[arg(long)]
    stop_after: Option<usize>,
    /// Resume a run: a run folder or its weights/last.safetensors; without a value, the latest run under --project.
    #[arg(long, num_args = 0..=1, default_missing_value = "")]
    resume: Option<PathBuf>,
    #[command(flatten)]
    common: Common,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum Optim {
    Sgd,
    Adam,
    #[value(name = "adamw")]
    AdamW,
}

/// Runs training.
pub fn run(mut a: TrainArgs) -> Result<()> {
    let device = device_from_name(&a.common.device)?;
    // Seeds weight initialisation (augmentation and shuffling are seeded by the loader).
    device.seed(a.common.seed);
    // Resuming: the checkpoint, and the settings the run recorded (args.yaml).
    let resume = match &a.resume {
        Some(resume) => {
            let ck = if resume.as_os_str().is_empty() {
                trainer::latest_run(&a.project).with_context(|| {
                    format!("--resume: no run with weights/last.safetensors under {}", a.project.display())
                })?
            } else {
                trainer::resume_checkpoint_path(resume)
            };
            let args_yaml = ck.parent().and_then(|w| w.parent()).map(|r| r.join("args.yaml"));
            let run_cfg: Option<TrainConfig> =
                args_yaml.and_then(|p| std::fs::read_to_string(p).ok()).and_then(|t| serde_norway::from_str(&t).ok());
            Some((ck, run_cfg))
        }
        None => None,
    };
    let mut unlabeled: Option<PathBuf> = None;
    if let Some(dir) = a.unlabeled.clone()
        && resume.is_none()
    {
        unlabeled = Some(prepare_unlabeled(&mut a, &dir, &device)?);
    }
    let data_yaml = match (&a.data, &resume) {
        (Some(d), _) => d.clone(),
        (None, Some((_, Some(cfg)))) if cfg.data.is_some() => cfg.data.clone().unwrap_or_default(),
        (None, Some(_)) => bail!("--resume: the run records no dataset (older args.yaml); give --data"),
        (None, None) => bail!("give --data (a dataset YAML) or --unlabeled DIR with --teacher"),
    };
    let config = yolo_compress::data::dataset::DataConfig::load(&data_yaml)?;
    let train = YoloDataset::from_config(config.clone(), Split::Train, &Default::default())
        .with_context(|| format!("{}: train split", data_yaml.display()))?;
    let val = if config.split(Split::Val).is_some() {
        Some(YoloDataset::from_config(config, Split::Val, &Default::default())?)
    } else {
        None
    };
    for (split, ds) in [("train", Some(&train)), ("val", val.as_ref())] {
        if let Some(ds) = ds
            && !ds.report().corrupt.is_empty()
            && !a.common.quiet
        {
            eprintln!("warning: {split}: {} corrupt files skipped (see `ycomp data check`)", ds.report().corrupt.len());
        }
    }
    let data = TrainData::from_datasets(train, val);
    let outcome = if let Some((ck, run_cfg)) = resume {
        if !a.common.quiet {
            eprintln!("Resuming from {}", ck.display());
        }
        match run_cfg.filter(|c| c.sfp > 0.0 || c.teacher.is_some()) {
            Some(c) => {
                let (student, _) = yolo_compress::model::weights::load_checkpoint(&ck, &device)?;
                let mut hook = hooks(&student, &c, &device)?;
                trainer::resume_with_hook(&ck, &data, &device, None, &mut hook)?
            }
            None => trainer::resume(&ck, &data, &device, None)?,
        }
    } else {
        let hyp = match &a.hyp {
            Some(p) => Hyp::from_yaml_file(p)?,
            None => Hyp::default(),
        };
        if a.model.model.is_none() && a.model.weights.is_none() {
            bail!("give --model (e.g. yolov5n.yaml) or --weights");
        }
        let mut model_args = a.model.clone();
        if model_args.nc.is_none() && model_args.names.is_none() {
            model_args.names = Some(data.names.clone());
        }
        let loaded = model_args.load(&device)?;
        if loaded.model.nc() != data.names.len() {
            bail!("the model has {} classes but {} names {}", loaded.model.nc(), data_yaml.display(), data.names.len());
        }
        let cfg = TrainConfig {
            // Absolute, so that `--resume` finds them from any working directory.
            data: Some(std::path::absolute(&data_yaml).context("--data")?),
            unlabeled: unlabeled.clone(),
            epochs: a.epochs,
            batch_size: a.batch,
            imgsz: a.imgsz,
            hyp,
            optimizer: match a.optimizer {
                Optim::Sgd => OptimizerKind::Sgd,
                Optim::Adam => OptimizerKind::Adam,
                Optim::AdamW => OptimizerKind::AdamW,
            },
            cos_lr: a.cos_lr,
            label_smoothing: a.label_smoothing,
            sparsity: a.sparsity,
            sfp: a.sfp,
            sfp_criterion: a.sfp_criterion.clone(),
            // Absolute, so that `--resume` finds the teacher from any working directory.
            teacher: a.teacher.as_deref().map(std::path::absolute).transpose().context("--teacher")?,
            distill: a.distill,
            nbs: a.nbs,
            patience: a.patience,
            workers: a.workers,
            seed: a.common.seed,
            noval: a.noval,
            noautoanchor: a.noautoanchor || a.teacher.is_some(),
            noplots: a.noplots,
            max_batches: a.max_batches,
            stop_after: a.stop_after,
            project: a.project.clone(),
            name: a.name.clone(),
            exist_ok: a.exist_ok,
            progress: !a.common.quiet,
            verbose: !a.common.quiet,
            ..TrainConfig::default()
        };
        if cfg.sfp > 0.0 || cfg.teacher.is_some() {
            let mut hook = hooks(&loaded.model, &cfg, &device)?;
            trainer::train_with_hook(loaded.model, &data, &cfg, &device, &mut hook)?
        } else {
            trainer::train(loaded.model, &data, &cfg, &device)?
        }
    };
    let summary = serde_json::json!({
        "run_dir": outcome.run_dir,
        "last": outcome.last,
        "best": outcome.best,
        "epochs_done": outcome.epochs_done,
        "best_fitness": outcome.best_fitness,
        "stopped_early": outcome.stopped_early,
        "map50": outcome.final_metrics.as_ref().map(|m| m.map50),
        "map50_95": outcome.final_metrics.as_ref().map(|m| m.map50_95),
        "epochs": outcome.history,
    });
    if a.common.json {
        out!("{}", serde_json::to_string_pretty(&summary)?);
    } else {
        out!("Results saved to {}", outcome.run_dir.display());
        if let Some(m) = &outcome.final_metrics {
            out!("mAP50 {:.4}  mAP50-95 {:.4}  (best fitness {:.4})", m.map50, m.map50_95, outcome.best_fitness);
        }
    }
    Ok(())
}

/// `--unlabeled DIR`: the teacher pseudo-labels the images of DIR into `RUN/pseudo` (a YOLO dataset
/// with a held-out val split); `a` then names that dataset as `--data` and the run folder created for
/// it (so the trainer writes into the same folder). Returns the image folder as an absolute path.
fn prepare_unlabeled(a: &mut TrainArgs, dir: &std::path::Path, device: &burn::prelude::Device) -> Result<PathBuf> {
    use yolo_compress::reference::{Holdout, reference_config, write_pseudo_dataset};
    let Some(teacher_path) = a.teacher.clone() else {
        bail!("--unlabeled needs --teacher: the model whose detections become the labels");
    };
    let folder = yolo_compress::data::ImageFolder::open(dir).context("--unlabeled")?;
    let classes = yolo_compress::loading::ClassOverride::default();
    let teacher = yolo_compress::loading::load_model(None, Some(&teacher_path), &classes, device)
        .with_context(|| format!("--teacher {}", teacher_path.display()))?
        .model;
    let mut cfg = reference_config(a.imgsz as usize, a.batch);
    cfg.nms = cfg.nms.with_conf_thres(a.pseudo_conf);
    cfg.nms.validate().context("--pseudo-conf")?;
    let predictor = yolo_compress::predict::Predictor::new(teacher, device, cfg);
    let run_dir = trainer::run_dir::increment_run_dir(&a.project, &a.name, a.exist_ok)?;
    let holdout = a.holdout.map_or(Holdout::Default, Holdout::Count);
    let quiet = a.common.quiet;
    let mut last_report = 0;
    let mut progress = |done: usize, total: usize| {
        if !quiet && (done == total || done >= last_report + total.div_ceil(10)) {
            last_report = done;
            eprintln!("pseudo-labelling {done}/{total} images with {}", teacher_path.display());
        }
    };
    let ds = write_pseudo_dataset(&predictor, &folder, &run_dir.join("pseudo"), holdout, &mut progress)
        .with_context(|| format!("--unlabeled {}", dir.display()))?;
    for w in &ds.warnings {
        eprintln!("warning: {w}");
    }
    if !quiet {
        eprintln!(
            "pseudo-labels: {} train + {} held-out val images, {} boxes of {} classes in {}",
            ds.train_images,
            ds.val_images,
            ds.instances,
            ds.names.len(),
            ds.root.display()
        );
    }
    a.data = Some(ds.data_yaml);
    a.name = run_dir.file_name().map_or_else(|| a.name.clone(), |n| n.to_string_lossy().into_owned());
    a.exist_ok = true;
    std::path::absolute(dir).context("--unlabeled")
}

/// The hooks a run's settings ask for: soft filter pruning and/or distillation from a teacher.
fn hooks(
    student: &yolo_compress::model::YoloModel,
    cfg: &TrainConfig,
    device: &burn::prelude::Device,
) -> Result<trainer::HookChain> {
    use yolo_compress::compress::distill::{Distiller, OutputDistillConfig};
    let mut chain: Vec<Box<dyn trainer::TrainHook>> = Vec::new();
    if cfg.sfp > 0.0 {
        let arch = student.arch.as_ref().context("soft filter pruning needs a model built from an architecture")?;
        chain.push(Box::new(sfp_hook(arch, cfg)?));
    }
    if let Some(path) = &cfg.teacher {
        let classes = yolo_compress::loading::ClassOverride::default();
        let teacher = yolo_compress::loading::load_model(None, Some(path), &classes, device)
            .with_context(|| format!("--teacher {}", path.display()))?
            .model;
        let distiller = Distiller::new(teacher, student, OutputDistillConfig::for_run(cfg, student), device)
            .with_context(|| format!("--teacher {}", path.display()))?;
        chain.push(Box::new(distiller));
    }
    Ok(trainer::HookChain(chain))
}

/// The soft-filter-pruning hook a run's settings ask for.
fn sfp_hook(
    arch: &yolo_compress::model::Architecture,
    cfg: &TrainConfig,
) -> Result<yolo_compress::compress::prune::SoftFilterPruning> {
    let criterion = cfg.sfp_criterion.parse().map_err(|e| anyhow::anyhow!("--sfp-criterion: {e}"))?;
    Ok(yolo_compress::compress::prune::SoftFilterPruning::new(arch, cfg.sfp, criterion, 8, &[])?)
}
