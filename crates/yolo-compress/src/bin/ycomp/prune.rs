//! `ycomp prune`: structured pruning to a FLOPs target (EagleEye, L1/L2/FPGM/Taylor, slimming), or a
//! per-group sensitivity sweep.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use clap::Args;
use yolo_compress::backend::device_from_name;
use yolo_compress::compress::prune::{
    Criterion, EagleEyeConfig, Method, PruneConfig, PruneData, Scope, SensitivityReport, prune, sensitivity,
};
use yolo_compress::data::dataset::{DataConfig, Split, YoloDataset};
use yolo_compress::data::loader::{Loader, LoaderConfig};
use yolo_compress::data::{ImageFolder, SampleSource, Subset};
use yolo_compress::model::info::ModelInfo;
use yolo_compress::model::weights::{atomic_write, save_checkpoint};
use yolo_compress::reference::{FidelityConfig, fidelity_source_with};
use yolo_compress::train::val::{ValConfig, validate};

use crate::{Common, ModelArgs};

/// Arguments of `ycomp prune`.
#[derive(Args)]
pub struct PruneArgs {
    #[command(flatten)]
    model: ModelArgs,
    /// Dataset YAML: training batches for adaptive BN / Taylor, a held-out slice of the training set
    /// for EagleEye and the sweep, the val split for the before/after mAP.
    #[arg(long, conflicts_with = "calib", required_unless_present = "calib")]
    data: Option<PathBuf>,
    /// A folder of unlabeled images instead of --data: the last --holdout images are held out
    /// and labelled with the unpruned model's detections for the before/after fidelity; the rest
    /// are the calibration / adaptive-BN images, and --eval-images of them, spread evenly and
    /// labelled the same way, score EagleEye's candidates and the sensitivity sweep.
    #[arg(long)]
    calib: Option<PathBuf>,
    /// With --calib: images at the end of the folder held out of everything but the final
    /// fidelity report (at most half of the folder).
    #[arg(long, default_value_t = 60)]
    holdout: usize,
    /// act (default: channels ranked by the variation their consumers lose on the calibration
    /// images; best measured on the real pretrained yolov5s, see docs/pruning.md) | eagleeye |
    /// group | l1 | l2 | fpgm | taylor | slim.
    #[arg(long, default_value = "act")]
    method: String,
    /// Rank channels with this criterion instead of the method's own (EagleEye's is l1): act,
    /// group, l1, l2, bn, fpgm, taylor.
    #[arg(long)]
    criterion: Option<String>,
    /// How removed channels are compensated in their consumers: mean (their mean activation,
    /// folded into the consumers' biases), linear (their least-squares prediction from the kept
    /// channels), or none.
    #[arg(long, default_value = "mean")]
    compensate: String,
    /// Keep the checkpoint's BN statistics instead of re-anchoring them on the calibration images
    /// (fused checkpoints are always re-anchored: they have no BN to prune otherwise).
    #[arg(long)]
    no_reanchor: bool,
    /// Calibration images for the activation statistics.
    #[arg(long, default_value_t = 64)]
    calib_images: usize,
    /// Prune in this many steps (each to target^(k/steps) of the FLOPs, statistics re-measured and
    /// BN re-estimated in between).
    #[arg(long, default_value_t = 1)]
    steps: usize,
    /// Fraction of the FLOPs to keep (0.5 = half).
    #[arg(long, default_value_t = 0.5)]
    target_flops: f64,
    /// One-shot methods: uniform (same ratio everywhere), global (one ranking of scores normalised
    /// per group), raw (one ranking of raw scores), cost (raw score per MAC saved); auto = raw for
    /// act (whose scores share one unit across groups), uniform otherwise.
    #[arg(long, default_value = "auto")]
    scope: String,
    /// One-shot methods: prune this ratio of every group instead of aiming at --target-flops (e.g.
    /// the ratio of a `ycomp train --sfp` run).
    #[arg(long)]
    ratio: Option<f64>,
    /// Kept channel counts are multiples of this (at least 8 unless a group is smaller).
    #[arg(long, default_value_t = 8)]
    round_to: usize,
    /// Layers whose channels are never pruned (comma-separated indices).
    #[arg(long, value_delimiter = ',')]
    never_prune: Vec<usize>,
    /// Fixed ratios for some layers' groups, `LAYER=RATIO,…` (e.g. `2=0,23=0.6`); the rest share the
    /// searched ratio.
    #[arg(long, value_delimiter = ',', value_parser = parse_layer_ratio)]
    layer_ratios: Vec<(usize, f64)>,
    /// EagleEye: candidates to evaluate.
    #[arg(long, default_value_t = 8)]
    candidates: usize,
    /// EagleEye: most random draws (rejected draws cost microseconds).
    #[arg(long, default_value_t = 20_000)]
    max_draws: usize,
    /// EagleEye: accepted FLOPs fractions are target ± tolerance.
    #[arg(long, default_value_t = 0.02)]
    tolerance: f64,
    /// EagleEye: per-group ratio range `LO,HI` (default: ±0.2 around the uniform ratio).
    #[arg(long, value_delimiter = ',', num_args = 2)]
    ratio_range: Option<Vec<f64>>,
    /// EagleEye: also score each candidate with stale BN statistics (for the correlation study).
    #[arg(long)]
    compare_without_abn: bool,
    /// Training batches for adaptive BN after the cut (0 = keep stale statistics).
    #[arg(long, default_value_t = 20)]
    bn_batches: usize,
    /// Taylor: training batches of gradients.
    #[arg(long, default_value_t = 8)]
    taylor_batches: usize,
    /// Held-out training images for EagleEye's scores and the sensitivity sweep (with --calib: of
    /// the calibration images).
    #[arg(long, default_value_t = 200)]
    eval_images: usize,
    /// Image size (pixels) of the data and of the FLOPs count.
    #[arg(long, default_value_t = 640)]
    imgsz: u32,
    /// Batch size.
    #[arg(long, default_value_t = 16)]
    batch: usize,
    /// Data-loader worker threads.
    #[arg(long, default_value_t = 2)]
    workers: usize,
    /// Skip the before/after validation on the val split.
    #[arg(long)]
    noval: bool,
    /// Sweep each group alone at these ratios instead of pruning (table, JSON, PNG).
    #[arg(long)]
    sensitivity: bool,
    /// Ratios of the sensitivity sweep.
    #[arg(long, value_delimiter = ',', default_value = "0.25,0.5,0.75")]
    sens_ratios: Vec<f64>,
    /// Output checkpoint (pruning) or report stem (sensitivity: `.json` and `.png` are written).
    #[arg(long, default_value = "pruned.safetensors")]
    out: PathBuf,
    #[command(flatten)]
    common: Common,
}

/// Runs `ycomp prune`.
pub fn run(a: PruneArgs) -> Result<()> {
    let device = device_from_name(&a.common.device)?;
    device.seed(a.common.seed);
    let method: Method = a.method.parse().map_err(|e| anyhow::anyhow!("--method: {e}"))?;
    let scope: Scope = match a.scope.as_str() {
        "auto" if method == Method::Act => Scope::Raw,
        "auto" => Scope::Uniform,
        s => s.parse().map_err(|e| anyhow::anyhow!("--scope: {e}"))?,
    };
    if a.model.weights.is_none() {
        bail!("--weights is required: prune a trained checkpoint");
    }
    let loaded = a.model.load(&device)?;
    let model = loaded.model;
    let stride = model.max_stride().max(32) as u32;
    let val_cfg = LoaderConfig { workers: a.workers, stride, ..LoaderConfig::val(a.imgsz, a.batch) };
    let quiet = a.common.quiet || a.common.json;
    // Labelled: training batches (augmented) + a held-out slice of the training set + the val split.
    // Unlabeled: the folder's images (no augmentation) + its last images, labelled by the model.
    let (train_loader, eval_loader, calib_loader, val_loader) = match (&a.data, &a.calib) {
        (Some(data), _) => {
            let config = DataConfig::load(data)?;
            let train_ds: Arc<dyn SampleSource> = Arc::new(
                YoloDataset::from_config(config.clone(), Split::Train, &Default::default())
                    .with_context(|| format!("{}: train split", data.display()))?,
            );
            let train_cfg = LoaderConfig {
                workers: a.workers,
                stride,
                seed: a.common.seed,
                ..LoaderConfig::train(a.imgsz, a.batch)
            };
            let train_loader = Loader::new(train_ds.clone(), train_cfg, &device)?;
            let eval =
                Loader::new(Arc::new(Subset::evenly(train_ds.clone(), a.eval_images)), val_cfg.clone(), &device)?;
            let calib = Loader::new(Arc::new(Subset::evenly(train_ds, a.calib_images)), val_cfg.clone(), &device)?;
            let val = if a.noval {
                None
            } else {
                let ds = YoloDataset::from_config(config, Split::Val, &Default::default())
                    .with_context(|| format!("{}: val split", data.display()))?;
                Some(Loader::new(Arc::new(ds), val_cfg.clone(), &device)?)
            };
            (train_loader, eval, Some(calib), val)
        }
        (None, Some(dir)) => {
            let folder = ImageFolder::open(dir)?;
            let n = folder.len();
            if n < 2 {
                bail!("--calib {}: needs at least 2 images (calibration and a held-out one)", dir.display());
            }
            let held = a.holdout.clamp(1, (n / 2).max(1));
            let all: Arc<dyn SampleSource> = Arc::new(folder);
            let calib_src: Arc<dyn SampleSource> = Arc::new(Subset::new(all.clone(), (0..n - held).collect()));
            let held_src: Arc<dyn SampleSource> = Arc::new(Subset::new(all, (n - held..n).collect()));
            if !quiet {
                eprintln!(
                    "{}: {} calibration images, the last {held} held out; labelling with the unpruned model",
                    dir.display(),
                    n - held
                );
            }
            let fcfg = FidelityConfig { batch: a.batch, workers: a.workers, ..FidelityConfig::new(a.imgsz) };
            let label = |src: Arc<dyn SampleSource>| -> Result<Arc<dyn SampleSource>> {
                let labelled = fidelity_source_with(&model, src, &fcfg, &device, &mut |_, _| {})?;
                for w in &labelled.warnings {
                    eprintln!("warning: {w}");
                }
                if !quiet {
                    eprintln!(
                        "labelled {} images with {} boxes of the unpruned model",
                        labelled.source.len(),
                        labelled.source.instances()
                    );
                }
                Ok(Arc::new(labelled.source))
            };
            let report = label(held_src)?;
            // Candidates are scored on calibration images, never on the reported ones.
            let select = if method == Method::EagleEye || a.sensitivity {
                label(Arc::new(Subset::evenly(calib_src.clone(), a.eval_images)))?
            } else {
                report.clone()
            };
            let loader = |src| Loader::new(src, val_cfg.clone(), &device);
            (loader(calib_src)?, loader(select)?, None, Some(loader(report)?))
        }
        (None, None) => bail!("give --data (a dataset YAML) or --calib (a folder of images)"),
    };
    let data = PruneData { train: &train_loader, eval: &eval_loader, calib: calib_loader.as_ref() };
    let criterion = a.criterion.as_deref().map(str::parse::<Criterion>).transpose();
    let criterion = criterion.map_err(|e| anyhow::anyhow!("--criterion: {e}"))?;
    let ratio_range = match a.ratio_range.as_deref() {
        None => None,
        Some([lo, hi]) => Some([*lo, *hi]),
        Some(_) => bail!("--ratio-range takes LO,HI"),
    };
    let cfg = PruneConfig {
        method,
        target: a.target_flops,
        scope,
        ratio: a.ratio,
        round_to: a.round_to,
        never_prune: a.never_prune.clone(),
        layer_ratios: a.layer_ratios.iter().copied().collect(),
        imgsz: a.imgsz as usize,
        bn_batches: a.bn_batches,
        taylor_batches: a.taylor_batches,
        criterion,
        compensation: a.compensate.parse().map_err(|e| anyhow::anyhow!("--compensate: {e}"))?,
        reanchor: !a.no_reanchor,
        calib_images: a.calib_images,
        steps: a.steps,
        eagleeye: EagleEyeConfig {
            tolerance: a.tolerance,
            ratio_range,
            candidates: a.candidates,
            max_draws: a.max_draws,
            compare_without_abn: a.compare_without_abn,
            seed: a.common.seed,
            ..EagleEyeConfig::default()
        },
        ..PruneConfig::default()
    };
    if a.round_to == 0 {
        bail!("--round-to must be at least 1");
    }

    if a.sensitivity {
        let quiet = a.common.quiet || a.common.json;
        let report = sensitivity(&model, &a.sens_ratios, &cfg, &data, &device, &mut |r| {
            if !quiet {
                eprintln!("{:<28} units {:>5}  mAP50-95 {:?}", r.label, r.units, r.map50_95);
            }
        })?;
        return write_sensitivity(&a, &report);
    }

    let before = ModelInfo::of(&model, a.imgsz as usize);
    // With --calib `val_loader` holds the held-out images: the numbers are fidelity.
    let map_of = |m: &yolo_compress::model::YoloModel| -> Result<Option<f64>> {
        match &val_loader {
            None => Ok(None),
            Some(l) => Ok(Some(validate(m, l, &ValConfig::default(), None)?.metrics.map50_95)),
        }
    };
    let map_before = map_of(&model)?;
    let outcome = prune(&model, &cfg, &data, &device, &mut |c| {
        if !quiet {
            eprintln!(
                "candidate {:>3}: FLOPs {:.3}, params {:>9}, held-out mAP50-95 {:.4} (fitness {:.4}{})",
                c.index,
                c.flops_fraction,
                c.params,
                c.map50_95,
                c.fitness,
                c.fitness_without_abn.map(|f| format!(", without adaptive BN {f:.4}")).unwrap_or_default()
            );
        }
    })?;
    let after = ModelInfo::of(&outcome.model, a.imgsz as usize);
    let map_after = map_of(&outcome.model)?;

    let mut meta = BTreeMap::new();
    meta.insert("producer".to_string(), "ycomp prune".to_string());
    meta.insert("pruned_from".to_string(), loaded.origin.clone());
    meta.insert("prune_method".to_string(), a.method.clone());
    meta.insert("prune_flops_fraction".to_string(), format!("{:.6}", outcome.flops_fraction));
    save_checkpoint(&outcome.model, &a.out, &meta).with_context(|| format!("writing {}", a.out.display()))?;

    let json = serde_json::json!({
        "method": method,
        "target_flops": a.target_flops,
        "flops_fraction": outcome.flops_fraction,
        "params_before": before.params,
        "params_after": after.params,
        "gflops_before": before.gflops,
        "gflops_after": after.gflops,
        "map50_95_before": map_before,
        "map50_95_after_prune": map_after,
        "metric": if a.calib.is_some() { "fidelity" } else { "map" },
        "criterion": cfg.criterion(),
        "compensation": cfg.compensation,
        "reanchor": outcome.reanchor,
        "steps": outcome.step_fractions,
        "draws": outcome.draws,
        "candidates": outcome.candidates,
        "checkpoint": a.out,
    });
    if a.common.json {
        out!("{}", serde_json::to_string_pretty(&json)?);
        return Ok(());
    }
    let fmt_map = |m: Option<f64>| m.map(|v| format!("{v:.4}")).unwrap_or_else(|| "-".into());
    let metric = if a.calib.is_some() { "fidelity" } else { "mAP50-95" };
    out!("{:<10} {:>12} {:>10} {:>12}", "", "params", "GFLOPs", metric);
    out!("{:<10} {:>12} {:>10.3} {:>12}", "before", before.params, before.gflops, fmt_map(map_before));
    out!("{:<10} {:>12} {:>10.3} {:>12}", "after", after.params, after.gflops, fmt_map(map_after));
    out!(
        "{} kept {:.1} % of the FLOPs at {} px{}; saved {} (fine-tune it with `ycomp train --weights {}`)",
        a.method,
        100.0 * outcome.flops_fraction,
        a.imgsz,
        if outcome.draws > 0 {
            format!(" ({} candidates from {} draws)", outcome.candidates.len(), outcome.draws)
        } else {
            String::new()
        },
        a.out.display(),
        a.out.display()
    );
    Ok(())
}

fn parse_layer_ratio(s: &str) -> Result<(usize, f64), String> {
    let (l, r) = s.split_once('=').ok_or_else(|| format!("`{s}`: expected LAYER=RATIO"))?;
    let l = l.trim().parse().map_err(|_| format!("`{s}`: {l} is not a layer index"))?;
    let r = r.trim().parse().map_err(|_| format!("`{s}`: {r} is not a ratio"))?;
    Ok((l, r))
}

fn write_sensitivity(a: &PruneArgs, report: &SensitivityReport) -> Result<()> {
    let json_path = a.out.with_extension("json");
    let png_path = a.out.with_extension("png");
    atomic_write(&json_path, serde_json::to_string_pretty(report)?.as_bytes())
        .with_context(|| format!("writing {}", json_path.display()))?;
    let labels: Vec<String> = report.rows.iter().map(|r| format!("{} (L{})", r.label, r.layer)).collect();
    let values: Vec<Vec<f64>> = report.rows.iter().map(|r| r.map50_95.clone()).collect();
    yolo_compress::train::plots::plot_sensitivity(
        &labels,
        &report.ratios,
        &values,
        report.baseline,
        "mAP50-95",
        &png_path,
    )?;
    if a.common.json {
        out!("{}", serde_json::to_string_pretty(report)?);
        return Ok(());
    }
    let mut rows: Vec<_> = report.rows.iter().collect();
    rows.sort_by(|x, y| {
        let drop = |r: &&yolo_compress::compress::prune::SensitivityRow| {
            report.baseline - r.map50_95.last().copied().unwrap_or(0.0)
        };
        drop(y).total_cmp(&drop(x))
    });
    out!("baseline mAP50-95 {:.4} on {} held-out training images", report.baseline, a.eval_images);
    let header: Vec<String> = report.ratios.iter().map(|r| format!("{:>9}", format!("@{r}"))).collect();
    out!("{:<28} {:>6} {}", "group (most sensitive first)", "units", header.join(" "));
    for r in rows {
        let cells: Vec<String> = r.map50_95.iter().map(|v| format!("{:>9.4}", v)).collect();
        out!("{:<28} {:>6} {}", r.label, r.units, cells.join(" "));
    }
    out!("wrote {} and {}", json_path.display(), png_path.display());
    Ok(())
}
