//! One call per pruning method, shared by `ycomp prune` and the examples: score, select, cut,
//! re-estimate BN statistics; plus the per-group sensitivity sweep.

use burn::prelude::*;
use serde::Serialize;
use yolo_compress_data::augment::Hyp;
use yolo_compress_data::loader::Loader;
use yolo_compress_model::YoloModel;
use yolo_compress_train::adaptive_bn::adaptive_bn;
use yolo_compress_train::val::{ValConfig, validate};

use super::compensate::Compensation;
use super::eagleeye::{CandidateReport, EagleEyeConfig, eagleeye};
use super::importance::{Criterion, ScoreData, scores, unit_scores};
use super::plan::{PruneGraph, PrunePlan};
use super::reanchor::{ReanchorReport, reanchor_bn};
use super::select::{FlopsTarget, Scope, flops_fraction, plan_for_flops, plan_from_ratios};
use super::stats::ActivationStats;
use super::surgery::{model_tensors, prune_model, prune_model_with};
use super::taylor::taylor_scores;
use crate::error::PruneError;
use crate::quant::calibrate::loader_images;

/// A pruning method (`ycomp prune --method`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Method {
    /// One-shot, filter L1 norm.
    L1,
    /// One-shot, filter L2 norm.
    L2,
    /// One-shot, distance to the geometric median.
    Fpgm,
    /// One-shot, first-order Taylor on a few training batches.
    Taylor,
    /// Network slimming: one global threshold on BN |γ| (after `ycomp train --sparsity`).
    Slim,
    /// EagleEye: random per-group ratios, adaptive BN, best candidate on held-out data.
    EagleEye,
    /// One-shot, group L2 norm over producers and consumers, BN-scaled.
    Group,
    /// One-shot, the variation the consumers lose, measured on calibration images.
    Act,
}

impl std::str::FromStr for Method {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Ok(match s.to_ascii_lowercase().as_str() {
            "l1" => Method::L1,
            "l2" => Method::L2,
            "fpgm" => Method::Fpgm,
            "taylor" => Method::Taylor,
            "slim" => Method::Slim,
            "eagleeye" => Method::EagleEye,
            "group" => Method::Group,
            "act" | "activation" => Method::Act,
            other => return Err(format!("unknown method {other} (act, eagleeye, group, l1, l2, fpgm, taylor, slim)")),
        })
    }
}

impl Method {
    /// The importance criterion the method ranks units with.
    pub fn criterion(self) -> Criterion {
        match self {
            Method::L1 | Method::EagleEye => Criterion::L1,
            Method::L2 => Criterion::L2,
            Method::Fpgm => Criterion::Fpgm,
            Method::Taylor => Criterion::Taylor,
            Method::Slim => Criterion::Bn,
            Method::Group => Criterion::Group,
            Method::Act => Criterion::Activation,
        }
    }
}

/// Options of [`prune`].
#[derive(Clone, Debug)]
pub struct PruneConfig {
    /// The method.
    pub method: Method,
    /// Fraction of the FLOPs to keep.
    pub target: f64,
    /// Uniform or global ranking for the one-shot methods (slim always uses one raw threshold).
    pub scope: Scope,
    /// One-shot methods: prune this ratio of every group instead of searching the FLOPs target
    /// (e.g. the ratio of a `--sfp` run).
    pub ratio: Option<f64>,
    /// Kept counts are multiples of this (default 8).
    pub round_to: usize,
    /// Layers whose channels are never pruned.
    pub never_prune: Vec<usize>,
    /// Fixed pruning ratios for the groups of some layers (layer index → ratio); the other groups
    /// share the searched ratio (or `ratio`).
    pub layer_ratios: std::collections::HashMap<usize, f64>,
    /// Image size of the FLOPs count and the data.
    pub imgsz: usize,
    /// Training batches for adaptive BN after the cut (0 = keep the stale statistics).
    pub bn_batches: usize,
    /// Training batches for the Taylor criterion.
    pub taylor_batches: usize,
    /// Loss hyper-parameters (Taylor).
    pub hyp: Hyp,
    /// EagleEye's search (its `target`, `round_to`, `imgsz` and `bn_batches` are taken from here).
    pub eagleeye: EagleEyeConfig,
    /// Ranks units with this criterion instead of the method's own (EagleEye's is L1).
    pub criterion: Option<Criterion>,
    /// How removed channels are compensated in their consumers
    /// ([`compensate`](super::compensate::compensate)).
    pub compensation: Compensation,
    /// Re-anchor every BN on the calibration images before pruning ([`reanchor_bn`]; always done
    /// for a fused model, which has no BN to prune otherwise).
    pub reanchor: bool,
    /// Calibration images for the activation statistics (taken from [`PruneData::calib`]).
    pub calib_images: usize,
    /// Prune in this many steps, each to `target^(k/steps)` of the FLOPs, with statistics
    /// re-measured and BN re-estimated after each.
    pub steps: usize,
}

impl Default for PruneConfig {
    fn default() -> Self {
        Self {
            method: Method::Act,
            target: 0.5,
            scope: Scope::Raw,
            ratio: None,
            round_to: 8,
            never_prune: Vec::new(),
            layer_ratios: Default::default(),
            imgsz: 640,
            bn_batches: 20,
            taylor_batches: 8,
            hyp: Hyp::default(),
            eagleeye: EagleEyeConfig::default(),
            criterion: None,
            compensation: Compensation::Mean,
            reanchor: true,
            calib_images: 64,
            steps: 1,
        }
    }
}

impl PruneConfig {
    /// The criterion units are ranked with.
    pub fn criterion(&self) -> Criterion {
        self.criterion.unwrap_or(self.method.criterion())
    }

    /// Whether pruning needs activation statistics.
    pub fn needs_stats(&self) -> bool {
        self.compensation != Compensation::None || self.criterion() == Criterion::Activation
    }
}

/// Data for pruning: training batches (adaptive BN, Taylor), a held-out subset of the training
/// set (EagleEye's candidate scores, sensitivity) and calibration images (activation statistics).
///
/// Without labels: `train` and `calib` read the user's images (no boxes), and `eval` holds
/// held-out images labelled with the unpruned model's own detections, so every score is fidelity
/// to the unpruned model.
pub struct PruneData<'a> {
    /// Training loader.
    pub train: &'a Loader,
    /// Held-out evaluation loader.
    pub eval: &'a Loader,
    /// Calibration images without augmentation (`None` = `train`'s batches).
    pub calib: Option<&'a Loader>,
}

/// The result of [`prune`].
pub struct PruneOutcome {
    /// The smaller model (BN re-estimated when `bn_batches > 0`).
    pub model: YoloModel,
    /// The plan that made it.
    pub plan: PrunePlan,
    /// Fraction of the FLOPs it keeps.
    pub flops_fraction: f64,
    /// EagleEye's candidates (empty for the other methods).
    pub candidates: Vec<CandidateReport>,
    /// EagleEye's draws (0 for the other methods).
    pub draws: usize,
    /// The BN re-anchoring before the first cut, if done.
    pub reanchor: Option<ReanchorReport>,
    /// One entry per step: the fraction of the original FLOPs after it.
    pub step_fractions: Vec<f64>,
}

/// Prunes `model` to `cfg.target` of its FLOPs with `cfg.method`: BN re-anchoring on the
/// calibration images (`cfg.reanchor`, or a fused model), then `cfg.steps` cuts, each ranked by
/// `cfg.criterion()`, with compensation (`cfg.compensation`) and adaptive BN (`cfg.bn_batches`).
pub fn prune(
    model: &YoloModel,
    cfg: &PruneConfig,
    data: &PruneData<'_>,
    device: &Device,
    on_candidate: &mut dyn FnMut(&CandidateReport),
) -> Result<PruneOutcome, PruneError> {
    if !(cfg.target > 0.0 && cfg.target <= 1.0) {
        return Err(PruneError::Option { name: "target", msg: format!("{} is not in (0, 1]", cfg.target) });
    }
    if cfg.steps == 0 {
        return Err(PruneError::Option { name: "steps", msg: "at least one step".into() });
    }
    let arch = model.arch.as_ref().ok_or(PruneError::NoArchitecture)?;
    let orig_macs = arch.macs(cfg.imgsz, cfg.imgsz);
    let calib_loader = data.calib.unwrap_or(data.train);
    let calib = |m: &YoloModel, pre_bn: bool| -> Result<ActivationStats, PruneError> {
        let images = loader_images(calib_loader, cfg.calib_images.max(1))
            .map_err(|e| PruneError::Option { name: "calibration", msg: e.to_string() })?;
        ActivationStats::measure_with(m, images, pre_bn, cfg.compensation == Compensation::Linear)
    };
    // Nothing below changes `model` in place (the Taylor pass trains a deep copy of its own), so
    // the steps start from a plain clone.
    let mut current = model.clone();
    let mut stats = None;
    let mut reanchor = None;
    if cfg.reanchor || current.is_fused() {
        let s = calib(&current, true)?;
        let (m, r) = reanchor_bn(&current, &s, device)?;
        current = m;
        reanchor = Some(r);
        // Re-anchoring keeps the function, so the conv inputs' statistics stay valid.
        stats = Some(ActivationStats { pre_bn: Default::default(), ..s });
    }
    let (mut plan, mut candidates, mut draws, mut step_fractions) = (None, Vec::new(), 0, Vec::new());
    for step in 1..=cfg.steps {
        let goal = cfg.target.powf(step as f64 / cfg.steps as f64);
        let arch = current.arch.clone().ok_or(PruneError::NoArchitecture)?;
        let relative = (goal * orig_macs / arch.macs(cfg.imgsz, cfg.imgsz)).min(1.0);
        if cfg.needs_stats() && stats.is_none() {
            stats = Some(calib(&current, false)?);
        }
        let step_cfg = PruneConfig { target: relative, ..cfg.clone() };
        let cut = prune_once(&current, &step_cfg, stats.take().as_ref(), data, device, on_candidate)?;
        step_fractions.push(cut.model.arch.as_ref().map_or(1.0, |a| a.macs(cfg.imgsz, cfg.imgsz)) / orig_macs);
        candidates.extend(cut.candidates);
        draws += cut.draws;
        plan = Some(cut.plan);
        current = cut.model;
    }
    Ok(PruneOutcome {
        model: current,
        plan: plan.expect("at least one step"),
        flops_fraction: *step_fractions.last().expect("at least one step"),
        candidates,
        draws,
        reanchor,
        step_fractions,
    })
}

/// What one cut of [`prune`] made.
struct Cut {
    model: YoloModel,
    plan: PrunePlan,
    candidates: Vec<CandidateReport>,
    draws: usize,
}

/// One cut of [`prune`] to `cfg.target` of `model`'s FLOPs (BN already anchored).
fn prune_once(
    model: &YoloModel,
    cfg: &PruneConfig,
    stats: Option<&ActivationStats>,
    data: &PruneData<'_>,
    device: &Device,
    on_candidate: &mut dyn FnMut(&CandidateReport),
) -> Result<Cut, PruneError> {
    let arch = model.arch.as_ref().ok_or(PruneError::NoArchitecture)?;
    let pg = PruneGraph::new(arch, &cfg.never_prune)?;
    let tensors = model_tensors(model)?;
    let criterion = cfg.criterion();
    let taylor = if criterion == Criterion::Taylor {
        Some(taylor_scores(model, &pg, data.train, &cfg.hyp, cfg.imgsz, cfg.taylor_batches, device)?)
    } else {
        None
    };
    let compensated = cfg.compensation != Compensation::None;
    let score_data = ScoreData { taylor: taylor.as_ref(), stats, compensated };
    let scores = scores(&pg, &tensors, criterion, score_data, device)?;
    let means = if compensated { stats } else { None };
    if cfg.method == Method::EagleEye {
        let ee = EagleEyeConfig {
            target: cfg.target,
            round_to: cfg.round_to,
            imgsz: cfg.imgsz,
            bn_batches: cfg.bn_batches,
            ..cfg.eagleeye.clone()
        };
        let out = eagleeye(model, &pg, &scores, means, data.train, data.eval, &ee, 1, device, on_candidate)?;
        let (best, model) = out.best.into_iter().next().expect("at least one candidate");
        let plan = draw_plan(&pg, &scores, &best, cfg.round_to);
        return Ok(Cut { model, plan, candidates: out.candidates, draws: out.draws });
    }
    let scope = if cfg.method == Method::Slim { Scope::Raw } else { cfg.scope };
    let t = FlopsTarget {
        fraction: cfg.target,
        scope,
        round_to: cfg.round_to,
        imgsz: cfg.imgsz,
        layer_ratios: cfg.layer_ratios.clone(),
    };
    if let Some((l, r)) = cfg.layer_ratios.iter().find(|(_, r)| !(0.0..1.0).contains(*r)) {
        return Err(PruneError::Option { name: "layer_ratios", msg: format!("layer {l}: ratio {r} is not in [0, 1)") });
    }
    // The FLOPs fraction is read off the cut model's architecture by `prune`.
    let plan = match cfg.ratio {
        Some(r) if (0.0..1.0).contains(&r) => {
            let ratios: Vec<f64> =
                pg.groups.groups.iter().map(|g| cfg.layer_ratios.get(&g.layer).copied().unwrap_or(r)).collect();
            plan_from_ratios(&pg, &scores, &ratios, cfg.round_to)
        }
        Some(r) => return Err(PruneError::Option { name: "ratio", msg: format!("{r} is not in [0, 1)") }),
        None => plan_for_flops(&pg, &scores, &t)?.0,
    };
    let mut pruned = prune_model_with(model, &pg, &plan, means, device)?;
    if cfg.bn_batches > 0 {
        pruned = adaptive_bn(pruned, data.train, cfg.bn_batches, device)?.0;
    }
    Ok(Cut { model: pruned, plan, candidates: Vec::new(), draws: 0 })
}

/// Rebuilds the plan of an EagleEye candidate from its ratios.
fn draw_plan(pg: &PruneGraph, scores: &[f64], c: &CandidateReport, round_to: usize) -> PrunePlan {
    let mut ratios = vec![0.0; pg.groups.groups.len()];
    for (g, r) in pg.groups.prunable().zip(&c.ratios) {
        ratios[g.id] = *r;
    }
    plan_from_ratios(pg, scores, &ratios, round_to)
}

/// One row of a sensitivity sweep: a group pruned alone at each ratio.
#[derive(Clone, Debug, Serialize)]
pub struct SensitivityRow {
    /// Group id.
    pub group: usize,
    /// Its first space (`model.2.cv1`).
    pub label: String,
    /// Layer of that space.
    pub layer: usize,
    /// Units in the group.
    pub units: usize,
    /// mAP50-95 on the held-out data at each ratio.
    pub map50_95: Vec<f64>,
    /// Fraction of the FLOPs kept at each ratio.
    pub flops_fraction: Vec<f64>,
}

/// A sensitivity sweep: which groups hurt most when pruned alone.
#[derive(Clone, Debug, Serialize)]
pub struct SensitivityReport {
    /// Ratios swept.
    pub ratios: Vec<f64>,
    /// mAP50-95 of the unpruned model on the same data.
    pub baseline: f64,
    /// One row per prunable group.
    pub rows: Vec<SensitivityRow>,
}

/// Prunes each prunable group alone (L1 ranking) at each ratio, re-estimates BN statistics
/// (`bn_batches`), and measures mAP50-95 on `data.eval`.
pub fn sensitivity(
    model: &YoloModel,
    ratios: &[f64],
    cfg: &PruneConfig,
    data: &PruneData<'_>,
    device: &Device,
    on_row: &mut dyn FnMut(&SensitivityRow),
) -> Result<SensitivityReport, PruneError> {
    let arch = model.arch.as_ref().ok_or(PruneError::NoArchitecture)?;
    let pg = PruneGraph::new(arch, &cfg.never_prune)?;
    let scores = unit_scores(&pg, &model_tensors(model)?, Criterion::L1, None, device)?;
    let val_cfg = ValConfig::default();
    let baseline = validate(model, data.eval, &val_cfg, None)?.metrics.map50_95;
    let mut rows = Vec::new();
    for g in pg.groups.prunable() {
        let mut row = SensitivityRow {
            group: g.id,
            label: g.label.clone(),
            layer: g.layer,
            units: g.units.len(),
            map50_95: Vec::new(),
            flops_fraction: Vec::new(),
        };
        for &r in ratios {
            let mut rs = vec![0.0; pg.groups.groups.len()];
            rs[g.id] = r;
            let plan = plan_from_ratios(&pg, &scores, &rs, cfg.round_to);
            let mut pruned = prune_model(model, &pg, &plan, device)?;
            if cfg.bn_batches > 0 {
                pruned = adaptive_bn(pruned, data.train, cfg.bn_batches, device)?.0;
            }
            row.map50_95.push(validate(&pruned, data.eval, &val_cfg, None)?.metrics.map50_95);
            row.flops_fraction.push(flops_fraction(&pg, &plan, cfg.imgsz));
        }
        on_row(&row);
        rows.push(row);
    }
    Ok(SensitivityReport { ratios: ratios.to_vec(), baseline, rows })
}
