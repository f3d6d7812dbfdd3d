//! Selection: from unit scores and pruning ratios to a [`PrunePlan`].
//!
//! Within a group the highest-scoring units are kept. How many: `units · (1 − ratio)` rounded to
//! the nearest multiple of `round_to` (never below `round_to`; groups of at most `round_to` units are
//! left whole), so pruned widths stay friendly to SIMD and GPU kernels. Ratios are either given per
//! group, uniform, or found by a global ranking; [`plan_for_flops`] searches the one that meets a
//! FLOPs target, computed from the resized architecture alone (no tensors).

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use super::plan::{PlanGraph, PruneGraph, PrunePlan};
use crate::error::PruneError;

/// How ratios are spread over the groups when aiming at a FLOPs target.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    /// One ratio for every prunable group.
    Uniform,
    /// One threshold on scores normalised by their group's mean: weak groups lose more.
    Global,
    /// One threshold on the raw scores (network slimming's global γ threshold).
    Raw,
    /// One threshold on score per MAC saved: a unit's raw score divided by the MACs its removal
    /// saves (the same for every unit of a group). With a criterion in common units across groups
    /// (`act`: energy lost by the consumers' normalised pre-activations) this removes the channels
    /// that cost the least accuracy per FLOP.
    Cost,
}

impl std::str::FromStr for Scope {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "uniform" => Ok(Scope::Uniform),
            "global" => Ok(Scope::Global),
            "raw" => Ok(Scope::Raw),
            "cost" => Ok(Scope::Cost),
            other => Err(format!("unknown scope {other} (uniform, global, raw, cost)")),
        }
    }
}

/// Units kept of a group of `units` at `ratio` (see the module docs).
pub fn kept_count(units: usize, ratio: f64, round_to: usize) -> usize {
    let round_to = round_to.max(1);
    if units <= round_to || ratio <= 0.0 {
        return units;
    }
    let k = units as f64 * (1.0 - ratio.min(1.0));
    let k = ((k / round_to as f64).round() as usize * round_to).max(round_to);
    k.min(units)
}

/// Keeps the `k` best units of each prunable group (fixed units always kept and counted).
fn plan_from_counts(pg: &impl PlanGraph, scores: &[f64], counts: &[usize]) -> PrunePlan {
    let mut plan = pg.keep_all();
    for g in pg.unit_groups().prunable() {
        let k = counts[g.id];
        if k >= g.units.len() {
            continue;
        }
        let mut order: Vec<usize> = g.units.clone();
        // Fixed units first, then by score, best first; ties broken by position (stable).
        order.sort_by(|&a, &b| {
            let fa = pg.unit_groups().unit_fixed[a];
            let fb = pg.unit_groups().unit_fixed[b];
            fb.cmp(&fa).then(scores[b].total_cmp(&scores[a]))
        });
        let fixed = order.iter().filter(|&&u| pg.unit_groups().unit_fixed[u]).count();
        for &u in &order[k.max(fixed).max(1)..] {
            plan.keep[u] = false;
        }
    }
    plan
}

/// A plan from one pruning ratio per group (indexed by group id; fixed groups ignored).
pub fn plan_from_ratios(pg: &impl PlanGraph, scores: &[f64], ratios: &[f64], round_to: usize) -> PrunePlan {
    let counts: Vec<usize> =
        pg.unit_groups().groups.iter().map(|g| kept_count(g.units.len(), ratios[g.id], round_to)).collect();
    plan_from_counts(pg, scores, &counts)
}

/// Fraction of the unpruned MACs that a plan keeps, at `imgsz × imgsz`.
pub fn flops_fraction(pg: &PruneGraph, plan: &PrunePlan, imgsz: usize) -> f64 {
    pg.resized_arch(plan).macs(imgsz, imgsz) / pg.arch.macs(imgsz, imgsz)
}

/// Options of [`plan_for_flops`].
#[derive(Clone, Debug)]
pub struct FlopsTarget {
    /// Fraction of the original MACs to keep, in `(0, 1]` (0.5 = half the FLOPs).
    pub fraction: f64,
    /// Uniform or global.
    pub scope: Scope,
    /// Kept counts are multiples of this.
    pub round_to: usize,
    /// Image size the FLOPs are counted at.
    pub imgsz: usize,
    /// Fixed ratios for the groups of some layers (layer index → ratio), left out of the search.
    pub layer_ratios: HashMap<usize, f64>,
}

/// Searches the uniform ratio (or global threshold) whose plan keeps at most `fraction` of the
/// MACs, as close to it as the rounding allows. Returns the plan and the fraction it keeps.
pub fn plan_for_flops(pg: &PruneGraph, scores: &[f64], t: &FlopsTarget) -> Result<(PrunePlan, f64), PruneError> {
    if !(t.fraction > 0.0 && t.fraction <= 1.0) {
        return Err(PruneError::Option { name: "target", msg: format!("{} is not in (0, 1]", t.fraction) });
    }
    let ng = pg.groups.groups.len();
    let fixed_ratio: Vec<Option<f64>> =
        pg.groups.groups.iter().map(|g| t.layer_ratios.get(&g.layer).copied()).collect();
    // Normalised scores for the global ranking.
    let mut norm = scores.to_vec();
    for g in &pg.groups.groups {
        let mean = g.units.iter().map(|&u| scores[u]).sum::<f64>() / g.units.len().max(1) as f64;
        for &u in &g.units {
            norm[u] = if mean > 0.0 { scores[u] / mean } else { 0.0 };
        }
    }
    if t.scope == Scope::Cost {
        let full = pg.arch.macs(t.imgsz, t.imgsz);
        for g in pg.groups.prunable() {
            let Some(&u) = g.units.iter().find(|&&u| !pg.groups.unit_fixed[u]) else { continue };
            let mut plan = pg.keep_all();
            plan.keep[u] = false;
            let saved = (full - pg.resized_arch(&plan).macs(t.imgsz, t.imgsz)).max(1e-9 * full);
            for &u in &g.units {
                norm[u] = scores[u] / saved;
            }
        }
    }
    let plan_at = |x: f64| -> PrunePlan {
        let counts: Vec<usize> = (0..ng)
            .map(|i| {
                let g = &pg.groups.groups[i];
                let n = g.units.len();
                match (fixed_ratio[i], t.scope) {
                    (Some(r), _) => kept_count(n, r, t.round_to),
                    (None, Scope::Uniform) => kept_count(n, x, t.round_to),
                    (None, Scope::Global | Scope::Raw | Scope::Cost) => {
                        let sc = if t.scope == Scope::Raw { scores } else { &norm };
                        let below = g.units.iter().filter(|&&u| sc[u] < x).count();
                        kept_count(n, below as f64 / n as f64, t.round_to)
                    }
                }
            })
            .collect();
        plan_from_counts(pg, scores, &counts)
    };
    let hi = match t.scope {
        Scope::Uniform => 0.99,
        Scope::Global => norm.iter().copied().fold(0.0, f64::max) + 1.0,
        // Scores per MAC can be far below 1: a bound relative to the largest keeps the bisection's
        // resolution relative too.
        Scope::Cost => norm.iter().copied().fold(0.0, f64::max) * 2.0 + f64::MIN_POSITIVE,
        Scope::Raw => scores.iter().copied().fold(0.0, f64::max) + 1.0,
    };
    let full = plan_at(hi);
    let best = flops_fraction(pg, &full, t.imgsz);
    if best > t.fraction {
        return Err(PruneError::Option {
            name: "target",
            msg: format!(
                "{:.3} of the FLOPs cannot be reached with round_to {} and these fixed layers; the smallest is {best:.3}",
                t.fraction, t.round_to
            ),
        });
    }
    let (mut lo, mut hi) = (0.0, hi);
    for _ in 0..100 {
        let mid = 0.5 * (lo + hi);
        if flops_fraction(pg, &plan_at(mid), t.imgsz) <= t.fraction {
            hi = mid;
        } else {
            lo = mid;
        }
    }
    let plan = plan_at(hi);
    let f = flops_fraction(pg, &plan, t.imgsz);
    Ok((plan, f))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kept_counts_round_to_multiples() {
        assert_eq!(kept_count(64, 0.5, 8), 32);
        assert_eq!(kept_count(64, 0.3, 8), 48, "44.8 → 48");
        assert_eq!(kept_count(64, 0.97, 8), 8, "never below round_to");
        assert_eq!(kept_count(8, 0.9, 8), 8, "groups of round_to units stay whole");
        assert_eq!(kept_count(100, 0.0, 8), 100, "ratio 0 keeps everything, unrounded");
        assert_eq!(kept_count(100, 0.01, 8), 96);
        assert_eq!(kept_count(10, 0.5, 1), 5);
    }
}
