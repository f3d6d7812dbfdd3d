//! `ycomp prune`: structured pruning to a FLOPs target (EagleEye, L1/L2/FPGM/Taylor, slimming), or a
//! per-group sensitivity sweep.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use clap::Args;
use yolo_compress::backend::device_from_name;
use yolo_compress::compress::prune::{
    EagleEyeConfig, Method, PruneConfig, PruneData, Scope, SensitivityReport, prune, sensitivity,
};
use yolo_compress::data::dataset::{DataConfig, Split, YoloDataset};
use yolo_compress::data::loader::{Loader, LoaderConfig};
use yolo_compress::data::{SampleSource, Subset};
use yolo_compress::model::info::ModelInfo;
use yolo_compress::model::weights::{atomic_write, save_checkpoint};
use yolo_compress::train::val::{ValConfig, validate};

use crate::{Common, ModelArgs};

/// Arguments of `ycomp prune`.
#[derive(Args)]
pub struct PruneArgs {
    #[command(flatten)]
    model: ModelArgs,
    /// Dataset YAML: training batches for adaptive BN / Taylor, a held-out slice of the training set
    /// for EagleEye and the sweep, the val split for the before/after mAP.
    #[arg(long)]
    data: PathBuf,
    /// eagleeye | l1 | l2 | fpgm | taylor | slim.
    #[arg(long, default_value = "eagleeye")]
    method: String,
    /// Fraction of the FLOPs to keep (0.5 = half).
    #[arg(long, default_value_t = 0.5)]
    target_flops: f64,
    /// One-shot methods: uniform (same ratio everywhere) or global (one ranking of normalised scores).
    #[arg(long, default_value = "uniform")]
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
    /// Held-out training images for EagleEye's scores and the sensitivity sweep.
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
    let scope: Scope = a.scope.parse().map_err(|e| anyhow::anyhow!("--scope: {e}"))?;
    if a.model.weights.is_none() {
        bail!("--weights is required: prune a trained checkpoint");
    }
    let loaded = a.model.load(&device)?;
    let model = loaded.model;
    let config = DataConfig::load(&a.data)?;
    let train_ds: Arc<dyn SampleSource> = Arc::new(
        YoloDataset::from_config(config.clone(), Split::Train, &Default::default())
            .with_context(|| format!("{}: train split", a.data.display()))?,
    );
    let stride = model.max_stride().max(32) as u32;
    let train_cfg =
        LoaderConfig { workers: a.workers, stride, seed: a.common.seed, ..LoaderConfig::train(a.imgsz, a.batch) };
    let val_cfg = LoaderConfig { workers: a.workers, stride, ..LoaderConfig::val(a.imgsz, a.batch) };
    let train_loader = Loader::new(train_ds.clone(), train_cfg, &device)?;
    let eval_loader = Loader::new(Arc::new(Subset::evenly(train_ds, a.eval_images)), val_cfg.clone(), &device)?;
    let data = PruneData { train: &train_loader, eval: &eval_loader };
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
    let val_loader = if a.noval {
        None
    } else {
        let ds = YoloDataset::from_config(config, Split::Val, &Default::default())
            .with_context(|| format!("{}: val split", a.data.display()))?;
        Some(Loader::new(Arc::new(ds), val_cfg, &device)?)
    };
    let map_of = |m: &yolo_compress::model::YoloModel| -> Result<Option<f64>> {
        match &val_loader {
            None => Ok(None),
            Some(l) => Ok(Some(validate(m, l, &ValConfig::default(), None)?.metrics.map50_95)),
        }
    };
    let map_before = map_of(&model)?;
    let quiet = a.common.quiet || a.common.json;
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
        "draws": outcome.draws,
        "candidates": outcome.candidates,
        "checkpoint": a.out,
    });
    if a.common.json {
        out!("{}", serde_json::to_string_pretty(&json)?);
        return Ok(());
    }
    let fmt_map = |m: Option<f64>| m.map(|v| format!("{v:.4}")).unwrap_or_else(|| "-".into());
    out!("{:<10} {:>12} {:>10} {:>12}", "", "params", "GFLOPs", "mAP50-95");
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
