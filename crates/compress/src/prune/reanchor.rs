//! BN re-anchoring: every BatchNorm's running statistics set to the moments of its input measured
//! on calibration images, with γ and β adjusted so that the model computes exactly the same
//! function. Fused checkpoints (ultralytics' `fuse()`: conv with bias, no BN) are unfused the same
//! way: each `Conv` block gets a BN whose statistics are the measured ones.
//!
//! Why: pruning criteria that read BN (γ/σ, the offset), mean compensation and adaptive BN all
//! assume that a BN's running statistics describe the data. In a fused checkpoint there are none,
//! and in a checkpoint trained elsewhere they describe someone else's images. After re-anchoring,
//! `running_mean`/`running_var` are the statistics of the user's images, and adaptive BN after a cut
//! is a real recalibration instead of a rescaling.
//!
//! For a BN with `(γ, β, μ, σ²)` and measured moments `(μ', σ'²)` of its input:
//! `γ' = γ·√(σ'²+ε)/√(σ²+ε)`, `β' = β + γ·(μ' − μ)/√(σ²+ε)`; then
//! `γ'·(y − μ')/√(σ'²+ε) + β' = γ·(y − μ)/√(σ²+ε) + β` for every `y`. A fused conv `y = w∗x + b`
//! becomes `w∗x` followed by a BN with `μ' = E[w∗x]`, `σ'²` its variance, `γ' = √(σ'²+ε)` and
//! `β' = μ' + b`, which again computes `w∗x + b`.

use burn::prelude::*;
use serde::Serialize;
use yolo_compress_model::YoloModel;
use yolo_compress_model::blocks::BN_EPS;

use super::stats::ActivationStats;
use super::surgery::{Tensors, load, model_tensors};
use crate::error::PruneError;

/// What [`reanchor_bn`] did.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct ReanchorReport {
    /// BN layers whose statistics were set.
    pub bn_layers: usize,
    /// Whether the model was fused (and has been unfused).
    pub unfused: bool,
    /// Largest `|log(σ'/σ)|` over all channels: how far the old statistics were from the images
    /// (0 for a model whose statistics already describe them).
    pub max_log_std_ratio: f64,
}

fn get<'a>(t: &'a Tensors, key: &str) -> Result<&'a Vec<f32>, PruneError> {
    t.get(key).map(|(_, v)| v).ok_or_else(|| PruneError::Tensor { key: key.into(), msg: "not in the model".into() })
}

/// Re-anchors every BN of `model` on `stats` (measured on this model with `pre_bn`), or unfuses a
/// fused model (see the [module docs](self)). The result computes the same function (to float
/// rounding), is unfused, and lives on `device`.
pub fn reanchor_bn(
    model: &YoloModel,
    stats: &ActivationStats,
    device: &Device,
) -> Result<(YoloModel, ReanchorReport), PruneError> {
    let arch = model.arch.as_ref().ok_or(PruneError::NoArchitecture)?;
    let mut target = arch.build(device)?;
    let mut tensors = model_tensors(model)?;
    let wanted = model_tensors(&target)?;
    let mut report = ReanchorReport { unfused: model.is_fused(), ..Default::default() };
    let eps = BN_EPS;
    let mut bn_prefixes: Vec<String> =
        wanted.keys().filter_map(|k| k.strip_suffix(".bn.running_mean")).map(String::from).collect();
    bn_prefixes.sort();
    for name in bn_prefixes {
        let m = stats.pre_bn.get(&name).ok_or_else(|| PruneError::Tensor {
            key: format!("{name}.bn"),
            msg: "no pre-BN statistics (measure with pre_bn = true)".into(),
        })?;
        let (mean, var) = (m.mean.clone(), m.var());
        let bn = |s: &str| format!("{name}.bn.{s}");
        let c = mean.len();
        let (gamma, beta, running_mean): (Vec<f64>, Vec<f64>, Vec<f64>) = if tensors.contains_key(&bn("running_mean")) {
            let (g, b) = (get(&tensors, &bn("weight"))?, get(&tensors, &bn("bias"))?);
            let (mu, v) = (get(&tensors, &bn("running_mean"))?, get(&tensors, &bn("running_var"))?);
            if g.len() != c {
                return Err(PruneError::Tensor {
                    key: bn("weight"),
                    msg: format!("{} channels, statistics of {c}", g.len()),
                });
            }
            let mut gamma = Vec::with_capacity(c);
            let mut beta = Vec::with_capacity(c);
            for i in 0..c {
                let (g, b, mu, v) = (g[i] as f64, b[i] as f64, mu[i] as f64, v[i] as f64);
                let s_old = (v + eps).sqrt();
                let s_new = (var[i] + eps).sqrt();
                report.max_log_std_ratio = report.max_log_std_ratio.max((s_new / s_old).ln().abs());
                gamma.push(g * s_new / s_old);
                beta.push(b + g * (mean[i] - mu) / s_old);
            }
            (gamma, beta, mean)
        } else {
            // Fused: the measured output includes the bias; the unfused conv has none, so its BN
            // sees `mean − b`, and β carries the bias back.
            let bias_key = format!("{name}.conv.bias");
            let b = tensors
                .remove(&bias_key)
                .ok_or_else(|| PruneError::Tensor { key: bias_key.clone(), msg: "a fused conv without a bias".into() })?
                .1;
            if b.len() != c {
                return Err(PruneError::Tensor {
                    key: bias_key,
                    msg: format!("{} channels, statistics of {c}", b.len()),
                });
            }
            let gamma = var.iter().map(|v| (v + eps).sqrt()).collect();
            let running_mean = (0..c).map(|i| mean[i] - b[i] as f64).collect();
            (gamma, mean, running_mean)
        };
        let f32s = |v: &[f64]| v.iter().map(|&x| x as f32).collect::<Vec<f32>>();
        tensors.insert(bn("running_mean"), (vec![c], f32s(&running_mean)));
        tensors.insert(bn("running_var"), (vec![c], f32s(&var)));
        tensors.insert(bn("weight"), (vec![c], f32s(&gamma)));
        tensors.insert(bn("bias"), (vec![c], f32s(&beta)));
        report.bn_layers += 1;
    }
    load(&mut target, tensors, device)?;
    Ok((target, report))
}
