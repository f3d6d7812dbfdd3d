//! Pruning evidence on a trained checkpoint: the numbers of docs/pruning.md.
//!
//! 1. **Adaptive BN as a predictor** (EagleEye's claim): draw N candidates at the FLOPs target,
//!    score each on held-out training images with stale BN statistics and with adaptive BN, fine-tune
//!    each for a few epochs, and report the Spearman correlation of each score with the fine-tuned
//!    mAP50-95.
//! 2. **Methods side by side**: L1, L2, FPGM, Taylor, BN-γ (slim) and EagleEye at the same target:
//!    params, GFLOPs, mAP50-95 right after pruning (adaptive BN) and after fine-tuning, and the
//!    batch-1 forward latency.
//! 3. **From scratch**: the EagleEye architecture trained from random weights for the pre-training
//!    epochs plus the fine-tuning epochs (`--scratch-epochs`, 0 to skip).
//!
//! ```bash
//! cargo run --release --example quickstart      # makes runs/quickstart/{data,train}
//! cargo run --release --example prune_study -- --weights runs/quickstart/train/weights/best.safetensors \
//!     --data runs/quickstart/data/data.yaml --imgsz 128 --ft-epochs 3 --scratch-epochs 18
//! ```
//! Writes `study.json` and `study.md` into `--out` (default `runs/prune_study`).
//!
//! Options: `--hyp FILE` is the training recipe of the scratch run (an ultralytics hyp YAML; the
//! fine-tunes use it with the warm-up's bias learning rate set to `lr0`), `--cand-epochs N` the
//! fine-tune of each candidate in part 1 (default `--ft-epochs`), `--parts spearman,methods,scratch`
//! runs only some parts (separate processes can then share a machine's cores), `--methods` the
//! methods of part 2, `--seed N` (default 0) the seed of the device (initial weights of the scratch
//! run) and of every training run's data order and augmentation, `--scratch-arch CKPT` trains the
//! architecture of that pruned checkpoint (e.g. one written by `ycomp prune`) from scratch instead of
//! searching one, `--distill W` (default 0 = off) has every fine-tune and the scratch run also learn
//! from the unpruned `--weights` as a teacher (`ycomp train --teacher --distill W`).

mod common;

use common::{latency_ms, start_study};

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use yolo_compress::compress::distill::{Distiller, OutputDistillConfig};
use yolo_compress::compress::prune::importance::unit_scores;
use yolo_compress::compress::prune::surgery::{model_tensors, prune_model};
use yolo_compress::compress::prune::{
    Compensation, Criterion, EagleEyeConfig, Method, PruneConfig, PruneData, PruneGraph, Scope, draw_candidates, prune,
    spearman,
};
use yolo_compress::data::augment::Hyp;
use yolo_compress::data::dataset::{Split, YoloDataset};
use yolo_compress::data::loader::{Loader, LoaderConfig};
use yolo_compress::data::{SampleSource, Subset};
use yolo_compress::model::YoloModel;
use yolo_compress::model::weights::{atomic_write, load_checkpoint, read_checkpoint};
use yolo_compress::prelude::*;
use yolo_compress::train::adaptive_bn::adaptive_bn;
use yolo_compress::train::trainer::{TrainConfig, TrainData, train, train_with_hook};
use yolo_compress::train::val::{ValConfig, validate};

struct Options {
    weights: PathBuf,
    data: PathBuf,
    out: PathBuf,
    imgsz: u32,
    batch: usize,
    target: f64,
    candidates: usize,
    ft_epochs: usize,
    cand_epochs: Option<usize>,
    scratch_epochs: usize,
    hyp: Option<PathBuf>,
    scratch_arch: Option<PathBuf>,
    distill: f64,
    parts: Vec<String>,
    methods: Vec<Method>,
    device: String,
    seed: u64,
}

fn parse_args() -> Result<Options> {
    let mut o = Options {
        weights: PathBuf::new(),
        data: PathBuf::new(),
        out: PathBuf::from("runs/prune_study"),
        imgsz: 128,
        batch: 16,
        target: 0.5,
        candidates: 8,
        ft_epochs: 3,
        cand_epochs: None,
        scratch_epochs: 0,
        hyp: None,
        scratch_arch: None,
        distill: 0.0,
        parts: vec!["spearman".into(), "methods".into(), "scratch".into()],
        methods: vec![Method::L1, Method::L2, Method::Fpgm, Method::Taylor, Method::Slim, Method::EagleEye],
        device: "cpu".into(),
        seed: 0,
    };
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        let mut value = || it.next().with_context(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--weights" => o.weights = value()?.into(),
            "--data" => o.data = value()?.into(),
            "--out" => o.out = value()?.into(),
            "--imgsz" => o.imgsz = value()?.parse()?,
            "--batch" => o.batch = value()?.parse()?,
            "--target" => o.target = value()?.parse()?,
            "--candidates" => o.candidates = value()?.parse()?,
            "--ft-epochs" => o.ft_epochs = value()?.parse()?,
            "--cand-epochs" => o.cand_epochs = Some(value()?.parse()?),
            "--scratch-epochs" => o.scratch_epochs = value()?.parse()?,
            "--hyp" => o.hyp = Some(value()?.into()),
            "--scratch-arch" => o.scratch_arch = Some(value()?.into()),
            "--distill" => o.distill = value()?.parse()?,
            "--parts" => {
                o.parts = value()?.split(',').map(str::to_string).collect();
                if let Some(p) = o.parts.iter().find(|p| !["spearman", "methods", "scratch"].contains(&p.as_str())) {
                    bail!("unknown part {p} (spearman, methods, scratch)");
                }
            }
            "--methods" => {
                o.methods = value()?.split(',').map(|m| m.parse().map_err(anyhow::Error::msg)).collect::<Result<_>>()?
            }
            "--device" => o.device = value()?.clone(),
            "--seed" => o.seed = value()?.parse()?,
            other => bail!("unknown option {other} (see the doc comment of examples/prune_study.rs)"),
        }
    }
    Ok(o)
}

fn main() -> Result<()> {
    let o = parse_args()?;
    let (device, model) = start_study(&o.weights, &o.data, &o.out, &o.device, o.seed)?;
    let imgsz = o.imgsz as usize;
    let train_ds = YoloDataset::open(&o.data, Split::Train)?;
    let val_ds = YoloDataset::open(&o.data, Split::Val)?;
    let train_src: Arc<dyn SampleSource> = Arc::new(train_ds.clone());
    let bn_loader = Loader::new(train_src.clone(), LoaderConfig::train(o.imgsz, o.batch), &device)?;
    let eval_loader = Loader::new(Arc::new(Subset::evenly(train_src, 100)), LoaderConfig::val(o.imgsz, 32), &device)?;
    let val_loader = Loader::new(Arc::new(val_ds.clone()), LoaderConfig::val(o.imgsz, 32), &device)?;
    let pdata = PruneData { train: &bn_loader, eval: &eval_loader, calib: None };
    let tdata = TrainData::from_datasets(train_ds, Some(val_ds));
    let val_map =
        |m: &YoloModel| -> Result<f64> { Ok(validate(m, &val_loader, &ValConfig::default(), None)?.metrics.map50_95) };
    // From scratch: `--hyp`, by default the quickstart's recipe with Adam's learning rate.
    // Fine-tuning: the same, without the warmup's high bias learning rate, which would wreck trained
    // weights.
    let scratch_hyp = match &o.hyp {
        Some(p) => Hyp::from_yaml_file(p)?,
        None => Hyp { lr0: 0.001, warmup_epochs: 1.0, ..Default::default() },
    };
    let ft_hyp = Hyp { warmup_bias_lr: scratch_hyp.lr0, ..scratch_hyp.clone() };
    let ft_cfg = |name: String, epochs: usize| TrainConfig {
        hyp: if name == "scratch" { scratch_hyp.clone() } else { ft_hyp.clone() },
        optimizer: yolo_compress::train::optim::OptimizerKind::Adam,
        nbs: o.batch,
        epochs,
        batch_size: o.batch,
        imgsz: o.imgsz,
        project: o.out.clone(),
        name,
        exist_ok: true,
        noplots: true,
        noval: true,
        verbose: false,
        progress: false,
        seed: o.seed,
        noautoanchor: o.distill > 0.0,
        distill: o.distill,
        ..TrainConfig::default()
    };
    let finetune = |m: YoloModel, name: String, epochs: usize| -> Result<YoloModel> {
        let cfg = ft_cfg(name, epochs);
        let out = if o.distill > 0.0 {
            let mut hook = Distiller::new(model.clone(), &m, OutputDistillConfig::for_run(&cfg, &m), &device)?;
            train_with_hook(m, &tdata, &cfg, &device, &mut hook)?
        } else {
            train(m, &tdata, &cfg, &device)?
        };
        Ok(load_checkpoint(&out.last, &device)?.0)
    };

    let base_info = ModelInfo::of(&model, imgsz);
    let base_map = val_map(&model)?;
    let base_lat = latency_ms(&model.clone().fuse(), imgsz, &device);
    eprintln!(
        "baseline: params {} GFLOPs {:.3} mAP50-95 {base_map:.4} latency {base_lat:.2} ms",
        base_info.params, base_info.gflops
    );

    let part = |name: &str| o.parts.iter().any(|p| p == name);
    let eagle_cfg = || PruneConfig {
        method: Method::EagleEye,
        target: o.target,
        imgsz,
        bn_batches: 20,
        eagleeye: EagleEyeConfig { candidates: o.candidates, tolerance: 0.03, ..Default::default() },
        // The settings of the documented synthetic studies (before compensation and re-anchoring).
        scope: Scope::Uniform,
        compensation: Compensation::None,
        reanchor: false,
        ..PruneConfig::default()
    };

    // 1. Adaptive BN as a predictor of the fine-tuned accuracy.
    let cand_epochs = o.cand_epochs.unwrap_or(o.ft_epochs);
    let mut rows = Vec::new();
    let mut n_draws = 0;
    if part("spearman") {
        let arch = model.arch.clone().context("the checkpoint has no architecture")?;
        let pg = PruneGraph::new(&arch, &[])?;
        let scores = unit_scores(&pg, &model_tensors(&model)?, Criterion::L1, None, &device)?;
        // The draws of part 2's EagleEye (its config sets the target and size at the top level).
        let ee = EagleEyeConfig { target: o.target, imgsz, ..eagle_cfg().eagleeye };
        let (draws, n) = draw_candidates(&pg, &scores, &ee)?;
        n_draws = n;
        for (i, d) in draws.iter().enumerate() {
            let t = Instant::now();
            let pruned = prune_model(&model, &pg, &d.plan, &device)?;
            let stale = validate(&pruned, &eval_loader, &ValConfig::default(), None)?.metrics.fitness();
            let (pruned, _) = adaptive_bn(pruned, &bn_loader, eagle_cfg().bn_batches, &device)?;
            let abn = validate(&pruned, &eval_loader, &ValConfig::default(), None)?.metrics.fitness();
            let tuned = finetune(pruned, format!("cand{i}"), cand_epochs)?;
            let ft = val_map(&tuned)?;
            eprintln!(
                "candidate {i}: FLOPs {:.3} stale {stale:.4} adaptive-BN {abn:.4} fine-tuned mAP50-95 {ft:.4} ({:.0} s)",
                d.flops_fraction,
                t.elapsed().as_secs_f64()
            );
            rows.push(serde_json::json!({"flops_fraction": d.flops_fraction, "fitness_stale_bn": stale, "fitness_adaptive_bn": abn, "finetuned_map50_95": ft}));
        }
    }
    let col = |k: &str| -> Vec<f64> { rows.iter().map(|r| r[k].as_f64().unwrap()).collect() };
    let rho_abn = spearman(&col("fitness_adaptive_bn"), &col("finetuned_map50_95"));
    let rho_stale = spearman(&col("fitness_stale_bn"), &col("finetuned_map50_95"));
    // A rank correlation is undefined when either side is constant (or there are fewer than two rows).
    let fmt_rho = |r: Option<f64>| r.map_or_else(|| "undefined".to_string(), |v| format!("{v:.3}"));
    if part("spearman") {
        eprintln!(
            "Spearman vs fine-tuned mAP: adaptive BN {}, stale BN {} ({} candidates, {n_draws} draws)",
            fmt_rho(rho_abn),
            fmt_rho(rho_stale),
            rows.len()
        );
    }

    // 2. Methods side by side.
    let mut methods = Vec::new();
    let mut eagle_arch = None;
    let to_run: &[Method] = if part("methods") { &o.methods } else { &[] };
    for &method in to_run {
        let t = Instant::now();
        let cfg = PruneConfig { method, ..eagle_cfg() };
        let out = prune(&model, &cfg, &pdata, &device, &mut |_| {})?;
        let prune_secs = t.elapsed().as_secs_f64();
        if method == Method::EagleEye {
            eagle_arch = out.model.arch.clone();
        }
        let info = ModelInfo::of(&out.model, imgsz);
        let after_prune = val_map(&out.model)?;
        let lat = latency_ms(&out.model.clone().fuse(), imgsz, &device);
        let tuned = finetune(out.model, format!("ft_{method:?}").to_lowercase(), o.ft_epochs)?;
        let after_ft = val_map(&tuned)?;
        eprintln!(
            "{method:?}: FLOPs {:.3} params {} GFLOPs {:.3} mAP50-95 pruned {after_prune:.4} fine-tuned {after_ft:.4} latency {lat:.2} ms (prune {prune_secs:.0} s)",
            out.flops_fraction, info.params, info.gflops
        );
        methods.push(serde_json::json!({"method": method, "flops_fraction": out.flops_fraction, "params": info.params, "gflops": info.gflops,
            "map50_95_pruned": after_prune, "map50_95_finetuned": after_ft, "latency_ms": lat, "prune_seconds": prune_secs}));
    }

    // 3. The EagleEye architecture from scratch (searched here when part 2 did not run EagleEye; the
    // search is deterministic, so it finds the architecture part 2 finds).
    let scratch = if part("scratch") && o.scratch_epochs > 0 {
        let arch = match (&o.scratch_arch, eagle_arch) {
            // Only the architecture record is needed: no model is built from the weights.
            (Some(p), _) => read_checkpoint(p)?.0.arch,
            (None, Some(a)) => a,
            (None, None) => {
                let out = prune(&model, &eagle_cfg(), &pdata, &device, &mut |_| {})?;
                out.model.arch.clone().context("the pruned model has no architecture")?
            }
        };
        let n = o.scratch_epochs;
        let fresh = arch.build(&device)?;
        let info = ModelInfo::of(&fresh, imgsz);
        let m = finetune(fresh, "scratch".into(), n)?;
        let v = val_map(&m)?;
        eprintln!("EagleEye architecture (params {}) from scratch, {n} epochs: mAP50-95 {v:.4}", info.params);
        Some(v)
    } else {
        None
    };

    let report = serde_json::json!({
        "weights": o.weights, "imgsz": imgsz, "target": o.target, "ft_epochs": o.ft_epochs, "cand_epochs": cand_epochs, "distill": o.distill,
        "baseline": {"params": base_info.params, "gflops": base_info.gflops, "map50_95": base_map, "latency_ms": base_lat},
        "candidates": rows, "draws": n_draws, "spearman_adaptive_bn": rho_abn, "spearman_stale_bn": rho_stale,
        "methods": methods, "scratch_epochs": o.scratch_epochs, "scratch_map50_95": scratch,
    });
    atomic_write(&o.out.join("study.json"), serde_json::to_string_pretty(&report)?.as_bytes())?;
    let share = |v: f64| 100.0 * v / base_map;
    let mut md = String::new();
    if methods.is_empty() {
        // Only the spearman or scratch part ran: no fine-tuned methods to put beside the baseline.
        md.push_str(&format!(
            "| model | params | GFLOPs @{imgsz} | mAP50-95 | latency ms (b1) |\n|---|---|---|---|---|\n| unpruned | {} | {:.3} | {base_map:.4} | {base_lat:.2} |\n",
            base_info.params, base_info.gflops
        ));
    } else {
        md.push_str(&format!("| model | FLOPs kept | params | GFLOPs @{imgsz} | mAP50-95 after prune | after {} ep fine-tune | share of unpruned | latency ms (b1) |\n|---|---|---|---|---|---|---|---|\n", o.ft_epochs));
        md.push_str(&format!(
            "| unpruned | 1.000 | {} | {:.3} | {base_map:.4} | – | 100 % | {base_lat:.2} |\n",
            base_info.params, base_info.gflops
        ));
    }
    for m in &methods {
        let ft = m["map50_95_finetuned"].as_f64().unwrap();
        md.push_str(&format!(
            "| {} | {:.3} | {} | {:.3} | {:.4} | {ft:.4} | {:.1} % | {:.2} |\n",
            m["method"].as_str().unwrap(),
            m["flops_fraction"].as_f64().unwrap(),
            m["params"],
            m["gflops"].as_f64().unwrap(),
            m["map50_95_pruned"].as_f64().unwrap(),
            share(ft),
            m["latency_ms"].as_f64().unwrap()
        ));
    }
    if !rows.is_empty() {
        md.push_str(&format!(
            "\nSpearman (held-out score → mAP50-95 after {cand_epochs} ep fine-tune) over {} candidates: adaptive BN {}, stale BN {}\n",
            rows.len(),
            fmt_rho(rho_abn),
            fmt_rho(rho_stale)
        ));
        md.push_str("\n| candidate | FLOPs kept | fitness, stale BN | fitness, adaptive BN | mAP50-95 after fine-tune |\n|---|---|---|---|---|\n");
        for (i, r) in rows.iter().enumerate() {
            let f = |k: &str| r[k].as_f64().unwrap();
            md.push_str(&format!(
                "| {i} | {:.3} | {:.4} | {:.4} | {:.4} |\n",
                f("flops_fraction"),
                f("fitness_stale_bn"),
                f("fitness_adaptive_bn"),
                f("finetuned_map50_95")
            ));
        }
    }
    if let Some(v) = scratch {
        md.push_str(&format!(
            "\nEagleEye architecture from scratch, {} epochs: mAP50-95 {v:.4} ({:.1} % of unpruned)\n",
            o.scratch_epochs,
            share(v)
        ));
    }
    atomic_write(&o.out.join("study.md"), md.as_bytes())?;
    println!("{md}");
    Ok(())
}
