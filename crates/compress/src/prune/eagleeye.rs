//! EagleEye (Li et al., "EagleEye: Fast Sub-net Evaluation for Efficient Neural Network Pruning",
//! ECCV 2020): draw random per-group pruning ratios, keep the candidates whose FLOPs are within
//! the target ± tolerance (checked from the resized architecture alone, before any forward pass),
//! re-estimate each candidate's BN statistics on a few training batches (adaptive BN), score it on a
//! held-out subset of the training set, keep the best.
//!
//! Without adaptive BN a pruned network's stale running statistics make its accuracy a poor
//! predictor of its accuracy after fine-tuning; with it, the correlation is strong (the paper's
//! claim, which `compare_without_abn` lets you measure).

use burn::prelude::*;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;
use yolo_compress_data::loader::Loader;
use yolo_compress_model::YoloModel;
use yolo_compress_train::adaptive_bn::adaptive_bn;
use yolo_compress_train::val::{ValConfig, validate};

use super::plan::{PruneGraph, PrunePlan};
use super::select::{FlopsTarget, Scope, flops_fraction, plan_for_flops, plan_from_ratios};
use super::stats::ActivationStats;
use super::surgery::prune_model_with;
use crate::error::PruneError;

/// Options of an EagleEye search.
#[derive(Clone, Debug)]
pub struct EagleEyeConfig {
    /// Fraction of the original FLOPs to keep (0.5 = half).
    pub target: f64,
    /// Accepted FLOPs fractions: `target ± tolerance`.
    pub tolerance: f64,
    /// Range of the per-group pruning ratios; `None` = ±0.2 around the uniform ratio `r` that meets
    /// the target (narrowed to stay symmetric inside `[0, 0.9]`: ±min(0.2, r, 0.9 − r)), which keeps
    /// the rejection rate low.
    pub ratio_range: Option<[f64; 2]>,
    /// Candidates to evaluate.
    pub candidates: usize,
    /// Most draws before giving up (rejected draws cost microseconds).
    pub max_draws: usize,
    /// Training batches for adaptive BN.
    pub bn_batches: usize,
    /// Also score every candidate with its stale BN statistics (twice the validation cost).
    pub compare_without_abn: bool,
    /// Kept counts are multiples of this.
    pub round_to: usize,
    /// Image size for FLOPs.
    pub imgsz: usize,
    /// Seed of the draws.
    pub seed: u64,
}

impl Default for EagleEyeConfig {
    fn default() -> Self {
        Self {
            target: 0.5,
            tolerance: 0.02,
            ratio_range: None,
            candidates: 8,
            max_draws: 20_000,
            bn_batches: 20,
            compare_without_abn: false,
            round_to: 8,
            imgsz: 640,
            seed: 0,
        }
    }
}

/// One drawn candidate that met the FLOPs target.
#[derive(Clone, Debug)]
pub struct Draw {
    /// Pruning ratio per group (0 for fixed groups).
    pub ratios: Vec<f64>,
    /// The plan those ratios give.
    pub plan: PrunePlan,
    /// Fraction of the FLOPs it keeps.
    pub flops_fraction: f64,
}

/// Draws candidates until `cfg.candidates` are accepted or `cfg.max_draws` are spent; returns the
/// accepted ones and the number of draws.
pub fn draw_candidates(
    pg: &PruneGraph,
    scores: &[f64],
    cfg: &EagleEyeConfig,
) -> Result<(Vec<Draw>, usize), PruneError> {
    let [lo, hi] = match cfg.ratio_range {
        Some(r) => r,
        None => {
            let t = FlopsTarget {
                fraction: cfg.target,
                scope: Scope::Uniform,
                round_to: cfg.round_to,
                imgsz: cfg.imgsz,
                layer_ratios: Default::default(),
            };
            let (plan, _) = plan_for_flops(pg, scores, &t)?;
            // The uniform ratio, read back from the plan's prunable groups.
            let (mut kept, mut total) = (0usize, 0usize);
            for g in pg.groups.prunable() {
                total += g.units.len();
                kept += g.units.iter().filter(|&&u| plan.keep[u]).count();
            }
            let r = 1.0 - kept as f64 / total.max(1) as f64;
            // Symmetric around r, so that the draws' mean ratio is the uniform one (a range
            // clamped at 0 alone would centre the draws below the FLOPs target, e.g. at 0.9).
            let w = 0.2f64.min(r).min(0.9 - r).max(0.0);
            [r - w, r + w]
        }
    };
    if !(0.0..1.0).contains(&lo) || !(lo..1.0).contains(&hi) {
        return Err(PruneError::Option {
            name: "ratio_range",
            msg: format!("[{lo}, {hi}] is not a range inside [0, 1)"),
        });
    }
    let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed);
    let mut out = Vec::new();
    let mut draws = 0;
    while out.len() < cfg.candidates && draws < cfg.max_draws {
        draws += 1;
        let ratios: Vec<f64> =
            pg.groups.groups.iter().map(|g| if g.fixed { 0.0 } else { rng.random_range(lo..=hi) }).collect();
        let plan = plan_from_ratios(pg, scores, &ratios, cfg.round_to);
        let f = flops_fraction(pg, &plan, cfg.imgsz);
        if (f - cfg.target).abs() <= cfg.tolerance {
            out.push(Draw { ratios, plan, flops_fraction: f });
        }
    }
    Ok((out, draws))
}

/// The score of one evaluated candidate.
#[derive(Clone, Debug, Serialize)]
pub struct CandidateReport {
    /// Position in draw order.
    pub index: usize,
    /// Fraction of the FLOPs it keeps.
    pub flops_fraction: f64,
    /// Parameters.
    pub params: usize,
    /// mAP50 on the held-out subset after adaptive BN.
    pub map50: f64,
    /// mAP50-95 on the held-out subset after adaptive BN.
    pub map50_95: f64,
    /// `0.1·mAP50 + 0.9·mAP50-95` after adaptive BN.
    pub fitness: f64,
    /// Fitness with the stale BN statistics (when compared).
    pub fitness_without_abn: Option<f64>,
    /// Pruning ratio per prunable group, in group order.
    pub ratios: Vec<f64>,
}

/// The result of [`eagleeye`].
pub struct EagleEyeOutcome {
    /// Every evaluated candidate, in draw order.
    pub candidates: Vec<CandidateReport>,
    /// Draws made (accepted + rejected).
    pub draws: usize,
    /// The best candidates (highest fitness first, at most `top_k`), with their models after
    /// adaptive BN.
    pub best: Vec<(CandidateReport, YoloModel)>,
}

/// Runs the search: draws, then for each accepted candidate surgery, adaptive BN on `bn_loader`
/// (training data), and validation on `eval_loader` (a held-out subset of the training set). With
/// `means` (activation statistics of `model`), every candidate's removed channels are
/// mean-compensated ([`prune_model_with`]).
/// `on_candidate` sees each report as it is made.
#[allow(clippy::too_many_arguments)]
pub fn eagleeye(
    model: &YoloModel,
    pg: &PruneGraph,
    scores: &[f64],
    means: Option<&ActivationStats>,
    bn_loader: &Loader,
    eval_loader: &Loader,
    cfg: &EagleEyeConfig,
    top_k: usize,
    device: &Device,
    on_candidate: &mut dyn FnMut(&CandidateReport),
) -> Result<EagleEyeOutcome, PruneError> {
    let (draws, n_draws) = draw_candidates(pg, scores, cfg)?;
    if draws.is_empty() {
        return Err(PruneError::Option {
            name: "target",
            msg: format!(
                "no candidate within {:.3} ± {:.3} of the FLOPs in {n_draws} draws; widen the tolerance or the ratio range",
                cfg.target, cfg.tolerance
            ),
        });
    }
    let val_cfg = ValConfig::default();
    let mut candidates = Vec::new();
    let mut best: Vec<(CandidateReport, YoloModel)> = Vec::new();
    let prunable: Vec<usize> = pg.groups.prunable().map(|g| g.id).collect();
    for (index, d) in draws.into_iter().enumerate() {
        let pruned = prune_model_with(model, pg, &d.plan, means, device)?;
        let fitness_without_abn = if cfg.compare_without_abn {
            Some(validate(&pruned, eval_loader, &val_cfg, None)?.metrics.fitness())
        } else {
            None
        };
        let (pruned, _) = adaptive_bn(pruned, bn_loader, cfg.bn_batches, device)?;
        let m = validate(&pruned, eval_loader, &val_cfg, None)?.metrics;
        let report = CandidateReport {
            index,
            flops_fraction: d.flops_fraction,
            params: pruned.num_params(),
            map50: m.map50,
            map50_95: m.map50_95,
            fitness: m.fitness(),
            fitness_without_abn,
            ratios: prunable.iter().map(|&g| d.ratios[g]).collect(),
        };
        on_candidate(&report);
        candidates.push(report.clone());
        best.push((report, pruned));
        best.sort_by(|a, b| b.0.fitness.total_cmp(&a.0.fitness));
        best.truncate(top_k.max(1));
    }
    Ok(EagleEyeOutcome { candidates, draws: n_draws, best })
}

/// Spearman's rank correlation of two equally long samples (average ranks for ties); `None` for
/// fewer than 2 points or a constant sample.
pub fn spearman(x: &[f64], y: &[f64]) -> Option<f64> {
    fn ranks(v: &[f64]) -> Vec<f64> {
        let mut idx: Vec<usize> = (0..v.len()).collect();
        idx.sort_by(|&a, &b| v[a].total_cmp(&v[b]));
        let mut r = vec![0.0; v.len()];
        let mut i = 0;
        while i < idx.len() {
            let mut j = i;
            while j + 1 < idx.len() && v[idx[j + 1]] == v[idx[i]] {
                j += 1;
            }
            let avg = (i + j) as f64 / 2.0 + 1.0;
            for k in i..=j {
                r[idx[k]] = avg;
            }
            i = j + 1;
        }
        r
    }
    if x.len() != y.len() || x.len() < 2 {
        return None;
    }
    let (rx, ry) = (ranks(x), ranks(y));
    let n = x.len() as f64;
    let (mx, my) = (rx.iter().sum::<f64>() / n, ry.iter().sum::<f64>() / n);
    let cov: f64 = rx.iter().zip(&ry).map(|(a, b)| (a - mx) * (b - my)).sum();
    let vx: f64 = rx.iter().map(|a| (a - mx).powi(2)).sum();
    let vy: f64 = ry.iter().map(|b| (b - my).powi(2)).sum();
    (vx > 0.0 && vy > 0.0).then(|| cov / (vx * vy).sqrt())
}

#[cfg(test)]
mod tests {
    use super::*;
    use yolo_compress_model::Architecture;

    #[test]
    fn spearman_by_hand() {
        assert_eq!(spearman(&[1.0, 2.0, 3.0], &[10.0, 20.0, 30.0]), Some(1.0));
        assert_eq!(spearman(&[1.0, 2.0, 3.0], &[3.0, 2.0, 1.0]), Some(-1.0));
        // ranks x = [1,2,3,4], y = [2,1,4,3]: 1 - 6·Σd²/(n(n²-1)) = 1 - 6·4/60 = 0.6
        assert!((spearman(&[1.0, 2.0, 3.0, 4.0], &[5.0, 1.0, 9.0, 7.0]).unwrap() - 0.6).abs() < 1e-12);
        // ties get average ranks: y ranks [1.5, 1.5, 3]
        let r = spearman(&[1.0, 2.0, 3.0], &[0.0, 0.0, 1.0]).unwrap();
        assert!((r - 0.8660254037844386).abs() < 1e-12, "{r}");
        assert_eq!(spearman(&[1.0, 1.0], &[1.0, 2.0]), None);
    }

    #[test]
    fn every_accepted_draw_meets_the_target_and_draws_are_bounded() {
        let arch = Architecture::from_name_or_path("yolov5n.yaml").unwrap();
        let pg = PruneGraph::new(&arch, &[]).unwrap();
        let scores: Vec<f64> = (0..pg.groups.num_units()).map(|u| (u % 17) as f64).collect();
        let cfg = EagleEyeConfig { target: 0.6, tolerance: 0.02, candidates: 5, imgsz: 320, ..Default::default() };
        let (draws, n) = draw_candidates(&pg, &scores, &cfg).unwrap();
        assert_eq!(draws.len(), 5);
        assert!(n >= 5 && n <= cfg.max_draws);
        for d in &draws {
            assert!((d.flops_fraction - 0.6).abs() <= 0.02, "{}", d.flops_fraction);
            assert!((flops_fraction(&pg, &d.plan, 320) - d.flops_fraction).abs() < 1e-12);
            // Kept counts are multiples of 8 (or whole groups).
            for g in pg.groups.prunable() {
                let k = g.units.iter().filter(|&&u| d.plan.keep[u]).count();
                assert!(k == g.units.len() || k % 8 == 0, "{}: kept {k} of {}", g.label, g.units.len());
            }
        }
        assert_ne!(draws[0].ratios, draws[1].ratios, "draws are random");
        // An unreachable band within a tiny budget: nothing accepted, bounded draws.
        let cfg = EagleEyeConfig { target: 0.05, tolerance: 0.001, max_draws: 50, ..cfg };
        let (draws, n) =
            draw_candidates(&pg, &scores, &EagleEyeConfig { ratio_range: Some([0.0, 0.1]), ..cfg }).unwrap();
        assert!(draws.is_empty());
        assert_eq!(n, 50);
    }
}
