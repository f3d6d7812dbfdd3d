//! Mean compensation: a removed channel is replaced by its mean activation on the calibration
//! images, folded into every consumer, so that pruning loses only the channel's variation.
//!
//! For a consumer conv with weight `W` `[O, I, kh, kw]` whose input channel `p` is removed and had
//! mean `μ_p`, the constant it contributed to output `o` is `Δ_o = μ_p · Σ_{kh,kw} W[o, p, kh, kw]`.
//! It goes into the consumer's bias: the BN running mean of a `Conv` block (`μ_o −= Δ_o`, which in
//! inference adds `Δ_o` before the normalisation) or the conv bias of a bare conv (Detect,
//! squeeze-excite). Consumers are found from the channel-dependency graph, so concats, residual
//! chains, SPPF's pooled copies, Ghost halves and Detect are covered alike; the means are measured
//! at each consumer's own input ([`ActivationStats::inputs`]), so a channel that reaches two
//! consumers through different paths (a residual sum, a max-pool) is compensated with the mean each
//! one sees.
//!
//! **Linear compensation** ([`Compensation::Linear`], with channel covariances measured) goes one
//! step further: each removed channel is replaced by its best linear prediction from the kept
//! channels of the same consumer input, `x_r ≈ μ_r + A_r·(x_K − μ_K)` with
//! `A = Σ_RK Σ_KK⁻¹` (least squares over the calibration pixels, ridge `λ = 10⁻³·mean(diag Σ_KK)`).
//! The prediction is per pixel, so it folds into every tap of a k×k consumer:
//! `W'[o, K, t] = W[o, K, t] + Σ_r W[o, r, t]·A[r, K]`, and the constant `μ_r − A_r·μ_K` into the
//! bias as above. What is lost is only the part of the channel the kept channels cannot explain
//! (the channel-reconstruction idea of He et al., "Channel Pruning for Accelerating Very Deep
//! Neural Networks", ICCV 2017, in closed form and without the LASSO).
//!
//! **Border effect.** The fold is exact for 1×1 consumers. For `k > 1` with zero padding, output
//! pixels within `k/2` of the border read some padding zeros instead of the channel, so there the
//! true contribution is only the taps that fall inside the image; the fold adds the full sum
//! everywhere, which over-compensates those border pixels by `μ_p · Σ_{taps outside} W`.

use serde::Serialize;

use super::graph::Role;
use super::plan::{PlanGraph, PrunePlan};
use super::stats::{ActivationStats, Moments, conv_name};
use super::surgery::Tensors;
use crate::error::PruneError;

/// How removed channels are compensated.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Compensation {
    /// Removed channels are zeroed (plain surgery).
    None,
    /// Each removed channel is replaced by its mean.
    Mean,
    /// Each removed channel is replaced by its linear prediction from the kept channels (needs
    /// statistics measured with covariances).
    Linear,
}

impl std::str::FromStr for Compensation {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "none" | "off" => Ok(Compensation::None),
            "mean" => Ok(Compensation::Mean),
            "linear" => Ok(Compensation::Linear),
            other => Err(format!("unknown compensation {other} (none, mean, linear)")),
        }
    }
}

/// What [`compensate`] did.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct CompensationReport {
    /// Consumer convs that received a fold.
    pub consumers: usize,
    /// Removed input channels folded (counted once per consumer).
    pub channels: usize,
}

/// Folds the mean of every input channel that `plan` removes into its consumer's bias, in
/// `tensors` (the unpruned model's; the surgery then slices them), and with covariances in `stats`
/// ([`ActivationStats::covariance`]) its linear prediction from the kept channels into the
/// consumer's weights. `stats` must be measured on the same model. Errors name the consumer
/// without statistics, or without a BN or bias to fold into.
pub fn compensate(
    tensors: &mut Tensors,
    graph: &impl PlanGraph,
    plan: &PrunePlan,
    stats: &ActivationStats,
) -> Result<CompensationReport, PruneError> {
    graph.check(plan)?;
    let mut report = CompensationReport::default();
    for u in graph.channel_graph().uses().iter().filter(|u| u.role == Role::Input) {
        let removed = graph.positions(&u.channels, plan, false);
        if removed.is_empty() {
            continue;
        }
        let (shape, w) = tensors
            .get(&u.key)
            .ok_or_else(|| PruneError::Tensor { key: u.key.clone(), msg: "not in the model".into() })?;
        if shape.len() != 4 || u.dim != 1 {
            return Err(PruneError::Tensor { key: u.key.clone(), msg: format!("not a conv weight: {shape:?}") });
        }
        let (o_n, i_n, k_n) = (shape[0], shape[1], shape[2] * shape[3]);
        let moments = stats.input(&u.key, i_n)?;
        // The constant each removed channel is replaced by (its mean, less what its linear
        // prediction already carries), and that prediction's coefficients on the kept channels.
        let kept = graph.positions(&u.channels, plan, true);
        let coef = if stats.covariance { regression(moments, &removed, &kept, &u.key)? } else { Vec::new() };
        let constant: Vec<f64> = removed
            .iter()
            .enumerate()
            .map(|(ri, &r)| {
                let pred: f64 = if coef.is_empty() {
                    0.0
                } else {
                    kept.iter().enumerate().map(|(ki, &k)| coef[ri * kept.len() + ki] * moments.mean[k]).sum()
                };
                moments.mean[r] - pred
            })
            .collect();
        let mut delta = vec![0.0f64; o_n];
        for (o, d) in delta.iter_mut().enumerate() {
            for (ri, &p) in removed.iter().enumerate() {
                let start = (o * i_n + p) * k_n;
                *d += constant[ri] * w[start..start + k_n].iter().map(|&v| v as f64).sum::<f64>();
            }
        }
        if !coef.is_empty() {
            let w = &mut tensors.get_mut(&u.key).expect("checked").1;
            for o in 0..o_n {
                for t in 0..k_n {
                    for (ki, &k) in kept.iter().enumerate() {
                        let add: f64 = removed
                            .iter()
                            .enumerate()
                            .map(|(ri, &r)| w[(o * i_n + r) * k_n + t] as f64 * coef[ri * kept.len() + ki])
                            .sum();
                        let i = (o * i_n + k) * k_n + t;
                        w[i] = (w[i] as f64 + add) as f32;
                    }
                }
            }
        }
        let name = conv_name(&u.key);
        let (target, sign) = [
            (format!("{name}.bn.running_mean"), -1.0),
            (format!("{name}.conv.bias"), 1.0),
            (format!("{name}.bias"), 1.0),
        ]
        .into_iter()
        .find(|(k, _)| tensors.contains_key(k))
        .ok_or_else(|| PruneError::Tensor {
            key: u.key.clone(),
            msg: "the consumer has neither a BN nor a bias to fold a removed channel's mean into".into(),
        })?;
        let (bshape, b) = tensors.get_mut(&target).expect("found");
        if bshape != &[o_n] {
            return Err(PruneError::Tensor {
                key: target,
                msg: format!("shape {bshape:?}, the conv has {o_n} outputs"),
            });
        }
        for (v, d) in b.iter_mut().zip(&delta) {
            *v = (*v as f64 + sign * d) as f32;
        }
        report.consumers += 1;
        report.channels += removed.len();
    }
    Ok(report)
}

/// Least-squares coefficients of the removed channels on the kept ones, `A = Σ_RK Σ_KK⁻¹`
/// (`|R| × |K|` row-major), with a small ridge for rank-deficient inputs.
fn regression(m: &Moments, removed: &[usize], kept: &[usize], key: &str) -> Result<Vec<f64>, PruneError> {
    let nk = kept.len();
    let cov = |i: usize, j: usize| {
        m.covariance(i, j).ok_or_else(|| PruneError::Tensor {
            key: key.to_string(),
            msg: "linear compensation needs channel covariances (measure with covariance)".into(),
        })
    };
    let mut skk = vec![0.0; nk * nk];
    for (a, &i) in kept.iter().enumerate() {
        for (b, &j) in kept.iter().enumerate() {
            skk[a * nk + b] = cov(i, j)?;
        }
    }
    let ridge = 1e-3 * (0..nk).map(|a| skk[a * nk + a]).sum::<f64>() / nk.max(1) as f64 + 1e-12;
    for a in 0..nk {
        skk[a * nk + a] += ridge;
    }
    let l = cholesky(&skk, nk).ok_or_else(|| PruneError::Tensor {
        key: key.to_string(),
        msg: "the kept channels' covariance is not positive definite".into(),
    })?;
    let mut coef = Vec::with_capacity(removed.len() * nk);
    for &r in removed {
        let rhs: Vec<f64> = kept.iter().map(|&k| cov(k, r)).collect::<Result<_, _>>()?;
        coef.extend(cholesky_solve(&l, nk, &rhs));
    }
    Ok(coef)
}

/// Lower-triangular `L` with `L·Lᵀ = a` (`n × n` row-major), or `None` if `a` is not positive
/// definite.
fn cholesky(a: &[f64], n: usize) -> Option<Vec<f64>> {
    let mut l = vec![0.0; n * n];
    for i in 0..n {
        for j in 0..=i {
            let s: f64 = a[i * n + j] - (0..j).map(|k| l[i * n + k] * l[j * n + k]).sum::<f64>();
            if i == j {
                if s <= 0.0 || !s.is_finite() {
                    return None;
                }
                l[i * n + i] = s.sqrt();
            } else {
                l[i * n + j] = s / l[j * n + j];
            }
        }
    }
    Some(l)
}

/// Solves `L·Lᵀ·x = b`.
fn cholesky_solve(l: &[f64], n: usize, b: &[f64]) -> Vec<f64> {
    let mut y = vec![0.0; n];
    for i in 0..n {
        y[i] = (b[i] - (0..i).map(|k| l[i * n + k] * y[k]).sum::<f64>()) / l[i * n + i];
    }
    let mut x = vec![0.0; n];
    for i in (0..n).rev() {
        x[i] = (y[i] - (i + 1..n).map(|k| l[k * n + i] * x[k]).sum::<f64>()) / l[i * n + i];
    }
    x
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cholesky_solves_a_hand_computed_system() {
        // a = [[4, 2], [2, 3]] = L·Lᵀ with L = [[2, 0], [1, √2]]; a·[1, 2] = [8, 8].
        let a = [4.0, 2.0, 2.0, 3.0];
        let l = cholesky(&a, 2).unwrap();
        assert!((l[0] - 2.0).abs() < 1e-12 && (l[2] - 1.0).abs() < 1e-12 && (l[3] - 2f64.sqrt()).abs() < 1e-12);
        let x = cholesky_solve(&l, 2, &[8.0, 8.0]);
        assert!((x[0] - 1.0).abs() < 1e-12 && (x[1] - 2.0).abs() < 1e-12, "{x:?}");
        assert!(cholesky(&[1.0, 2.0, 2.0, 1.0], 2).is_none(), "indefinite");
    }

    #[test]
    fn regression_recovers_an_exact_linear_dependence() {
        // Channel 2 = 2·ch0 − ch1 + 5 over four pixels: its prediction from 0 and 1 is exact.
        let xs: [[f64; 3]; 4] = [[1.0, 0.0, 7.0], [0.0, 1.0, 4.0], [2.0, 1.0, 8.0], [1.0, 3.0, 4.0]];
        let mut m = Moments::default();
        let mean: Vec<f64> = (0..3).map(|c| xs.iter().map(|x| x[c]).sum::<f64>() / 4.0).collect();
        let mut cov = vec![0.0; 9];
        for x in &xs {
            for i in 0..3 {
                for j in 0..3 {
                    cov[i * 3 + j] += (x[i] - mean[i]) * (x[j] - mean[j]);
                }
            }
        }
        let m2: Vec<f64> = (0..3).map(|c| cov[c * 4]).collect();
        m.merge_cov(4.0, &mean, &m2, &cov);
        let a = regression(&m, &[2], &[0, 1], "k").unwrap();
        assert!((a[0] - 2.0).abs() < 1e-2 && (a[1] + 1.0).abs() < 1e-2, "{a:?}");
    }
}
