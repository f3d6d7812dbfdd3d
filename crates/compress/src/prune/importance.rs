//! Importance criteria: one score per unit, aggregated over every tensor of the unit's group.
//!
//! - **L1 / L2**: the norm of the unit's filters (Li et al., "Pruning Filters for Efficient
//!   ConvNets", ICLR 2017) — every conv output slice of the unit, depth-wise and gate convs included.
//! - **BN γ**: the mean `|γ|` over the unit's BN layers (Liu et al., "Learning Efficient Convolutional
//!   Networks through Network Slimming", ICCV 2017).
//! - **FPGM**: distance to the geometric median of the group's filters, `Σ_v ‖x_u − x_v‖₂` (He et
//!   al., "Filter Pruning via Geometric Median", CVPR 2019); a unit close to all others is redundant.
//! - **Taylor**: first-order Taylor expansion of the loss change, `(Σ_s g_s·w_s)²` over the unit's
//!   filters and BN γ/β, averaged over mini-batches (Molchanov et al., "Importance Estimation for
//!   Neural Network Pruning", CVPR 2019). Gradients come from [`TaylorAccumulator::add_batch`].
//! - **Group**: the squared L2 norm over the whole coupled group — every producer filter scaled by
//!   its BN's effective scale `γ/√(σ²+ε)`, and every consumer's input slice scaled by the
//!   consumer's BN scale (Fang et al., "DepGraph: Towards Any Structural Pruning", CVPR 2023, whose
//!   group importance sums all coupled slices). Counting the BN matters on real models: a small
//!   filter followed by a large γ/σ is not a small channel.
//! - **Activation** (data-driven): the energy the consumers' normalised pre-activations lose when
//!   the channel is removed, `Σ_consumers E_p · Σ_o (γ_o/σ_o)² ‖W[o, p]‖²`, with `E_p` the channel's
//!   variance on calibration images when its mean is compensated
//!   ([`compensate`](super::compensate::compensate)) and its second moment `E[x²]` when it is
//!   zeroed. It sees the channel's real signal, BN offset included, and every consumer.

use burn::prelude::*;
use serde::{Deserialize, Serialize};

use yolo_compress_model::blocks::BN_EPS;

use super::graph::Role;
use super::plan::PlanGraph;
use super::stats::{ActivationStats, conv_name};
use crate::error::PruneError;

pub use super::surgery::Tensors;

/// An importance criterion.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Criterion {
    /// L1 norm of the filters.
    L1,
    /// L2 norm of the filters.
    L2,
    /// `|γ|` of the BN layers (network slimming).
    Bn,
    /// Distance to the geometric median of the group's filters.
    Fpgm,
    /// First-order Taylor (needs gradients).
    Taylor,
    /// Group L2 norm over producers and consumers, BN-scaled.
    Group,
    /// Variation the consumers lose, measured on calibration images (needs [`ActivationStats`]).
    #[serde(rename = "act")]
    Activation,
}

impl std::str::FromStr for Criterion {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Ok(match s.to_ascii_lowercase().as_str() {
            "l1" => Criterion::L1,
            "l2" => Criterion::L2,
            "bn" | "slim" | "gamma" => Criterion::Bn,
            "fpgm" => Criterion::Fpgm,
            "taylor" => Criterion::Taylor,
            "group" => Criterion::Group,
            "act" | "activation" => Criterion::Activation,
            other => return Err(format!("unknown criterion {other} (act, group, l1, l2, bn, fpgm, taylor)")),
        })
    }
}

/// Calls `f(unit, slice)` for every position of every use with one of `roles`, where `slice` is
/// the unit's entries of that tensor along the use's dimension.
fn for_each_slice(
    pg: &impl PlanGraph,
    tensors: &Tensors,
    roles: &[Role],
    mut f: impl FnMut(usize, &mut dyn Iterator<Item = f32>),
) -> Result<(), PruneError> {
    for u in pg.channel_graph().uses().iter().filter(|u| roles.contains(&u.role)) {
        let (shape, values) = tensors
            .get(&u.key)
            .ok_or_else(|| PruneError::Tensor { key: u.key.clone(), msg: "not in the model".into() })?;
        let outer: usize = shape[..u.dim].iter().product();
        let inner: usize = shape[u.dim + 1..].iter().product();
        let n = shape[u.dim];
        for (p, x) in pg.channel_graph().flat(&u.channels).into_iter().enumerate() {
            let unit = pg.unit_groups().unit[x];
            let mut it = (0..outer).flat_map(|o| {
                let start = (o * n + p) * inner;
                values[start..start + inner].iter().copied()
            });
            f(unit, &mut it);
        }
    }
    Ok(())
}

/// What the criteria beyond the weights need: gradients (Taylor) or activation statistics
/// (Activation).
#[derive(Clone, Copy, Debug, Default)]
pub struct ScoreData<'a> {
    /// Accumulated Taylor scores.
    pub taylor: Option<&'a TaylorAccumulator>,
    /// Activation statistics measured on the scored model.
    pub stats: Option<&'a ActivationStats>,
    /// Whether removed channels will be replaced by their mean (Activation then counts only their
    /// variance).
    pub compensated: bool,
}

/// Scores every unit (higher = more important). Fixed units get scores too; selection ignores them.
/// `Taylor` needs `taylor`; `Fpgm` computes its Gram matrices on `device`. For
/// [`Criterion::Activation`] use [`scores`].
pub fn unit_scores(
    pg: &impl PlanGraph,
    tensors: &Tensors,
    criterion: Criterion,
    taylor: Option<&TaylorAccumulator>,
    device: &Device,
) -> Result<Vec<f64>, PruneError> {
    scores(pg, tensors, criterion, ScoreData { taylor, ..Default::default() }, device)
}

/// [`unit_scores`] with everything a criterion may need.
pub fn scores(
    pg: &impl PlanGraph,
    tensors: &Tensors,
    criterion: Criterion,
    data: ScoreData<'_>,
    device: &Device,
) -> Result<Vec<f64>, PruneError> {
    let taylor = data.taylor;
    let n = pg.unit_groups().num_units();
    let mut s = vec![0.0f64; n];
    match criterion {
        Criterion::L1 => {
            for_each_slice(pg, tensors, &[Role::Filter], |u, it| s[u] += it.map(|v| v.abs() as f64).sum::<f64>())?
        }
        Criterion::L2 => {
            for_each_slice(pg, tensors, &[Role::Filter], |u, it| {
                s[u] += it.map(|v| (v as f64) * (v as f64)).sum::<f64>()
            })?;
            s.iter_mut().for_each(|v| *v = v.sqrt());
        }
        Criterion::Bn => {
            // The mean over the unit's BN layers, so that one global threshold treats groups with
            // one BN (a plain conv) and with several (a residual chain) alike.
            let mut count = vec![0usize; n];
            for_each_slice(pg, tensors, &[Role::BnWeight], |u, it| {
                s[u] += it.map(|v| v.abs() as f64).sum::<f64>();
                count[u] += 1;
            })?;
            for (v, c) in s.iter_mut().zip(count) {
                *v /= c.max(1) as f64;
            }
        }
        Criterion::Fpgm => s = fpgm(pg, tensors, device)?,
        Criterion::Taylor => {
            let t = taylor.ok_or(PruneError::Option {
                name: "criterion",
                msg: "taylor needs gradients from a few batches".into(),
            })?;
            if t.scores.len() != n || t.batches == 0 {
                return Err(PruneError::Option { name: "criterion", msg: "taylor: no batch was accumulated".into() });
            }
            s = t.scores.iter().map(|v| v / t.batches as f64).collect();
        }
        Criterion::Group => s = group_scores(pg, tensors)?,
        Criterion::Activation => {
            let stats = data.stats.ok_or(PruneError::Option {
                name: "criterion",
                msg: "act needs activation statistics from calibration images".into(),
            })?;
            s = activation_scores(pg, tensors, stats, data.compensated)?;
        }
    }
    Ok(s)
}

/// `γ/√(σ²+ε)` per output channel of the conv whose weight is `weight_key`, if it has a BN.
fn bn_scale(tensors: &Tensors, weight_key: &str) -> Option<Vec<f64>> {
    let name = conv_name(weight_key);
    let g = &tensors.get(&format!("{name}.bn.weight"))?.1;
    let v = &tensors.get(&format!("{name}.bn.running_var"))?.1;
    Some(g.iter().zip(v).map(|(&g, &v)| g as f64 / (v as f64 + BN_EPS).sqrt()).collect())
}

/// Calls `f(unit, position, weight, shape, consumer scales)` for every position of every consumer
/// (input) use.
fn for_each_consumer(
    pg: &impl PlanGraph,
    tensors: &Tensors,
    mut f: impl FnMut(usize, usize, &str, &[f32], &[usize], &[f64]) -> Result<(), PruneError>,
) -> Result<(), PruneError> {
    for u in pg.channel_graph().uses().iter().filter(|u| u.role == Role::Input) {
        let (shape, w) = tensors
            .get(&u.key)
            .ok_or_else(|| PruneError::Tensor { key: u.key.clone(), msg: "not in the model".into() })?;
        let scale = bn_scale(tensors, &u.key).unwrap_or_else(|| vec![1.0; shape[0]]);
        for (p, x) in pg.channel_graph().flat(&u.channels).into_iter().enumerate() {
            f(pg.unit_groups().unit[x], p, &u.key, w, shape, &scale)?;
        }
    }
    Ok(())
}

/// `Σ_o s_o² ‖W[o, p]‖²` of a `[O, I, …]` weight.
fn consumer_energy(w: &[f32], shape: &[usize], p: usize, scale: &[f64]) -> f64 {
    let (o_n, i_n) = (shape[0], shape[1]);
    let k: usize = shape[2..].iter().product();
    (0..o_n)
        .map(|o| {
            let start = (o * i_n + p) * k;
            scale[o] * scale[o] * w[start..start + k].iter().map(|&v| (v as f64) * (v as f64)).sum::<f64>()
        })
        .sum()
}

fn group_scores(pg: &impl PlanGraph, tensors: &Tensors) -> Result<Vec<f64>, PruneError> {
    let mut s = vec![0.0f64; pg.unit_groups().num_units()];
    for u in pg.channel_graph().uses().iter().filter(|u| u.role == Role::Filter) {
        let (shape, w) = tensors
            .get(&u.key)
            .ok_or_else(|| PruneError::Tensor { key: u.key.clone(), msg: "not in the model".into() })?;
        let scale = bn_scale(tensors, &u.key);
        let inner: usize = shape[1..].iter().product();
        for (p, x) in pg.channel_graph().flat(&u.channels).into_iter().enumerate() {
            let sc = scale.as_ref().map_or(1.0, |v| v[p]);
            let norm: f64 = w[p * inner..(p + 1) * inner].iter().map(|&v| (v as f64) * (v as f64)).sum();
            s[pg.unit_groups().unit[x]] += sc * sc * norm;
        }
    }
    for_each_consumer(pg, tensors, |unit, p, _, w, shape, scale| {
        s[unit] += consumer_energy(w, shape, p, scale);
        Ok(())
    })?;
    Ok(s)
}

fn activation_scores(
    pg: &impl PlanGraph,
    tensors: &Tensors,
    stats: &ActivationStats,
    compensated: bool,
) -> Result<Vec<f64>, PruneError> {
    let mut s = vec![0.0f64; pg.unit_groups().num_units()];
    let mut energy: std::collections::HashMap<String, Vec<f64>> = Default::default();
    for_each_consumer(pg, tensors, |unit, p, key, w, shape, scale| {
        if !energy.contains_key(key) {
            let m = stats.input(key, shape[1])?;
            energy.insert(key.to_string(), if compensated { m.var() } else { m.second_moment() });
        }
        s[unit] += energy[key][p] * consumer_energy(w, shape, p, scale);
        Ok(())
    })?;
    Ok(s)
}

/// FPGM scores: per group, each unit's filter vector is the concatenation of all its filter
/// slices; the score is the sum of Euclidean distances to the group's other units.
fn fpgm(pg: &impl PlanGraph, tensors: &Tensors, device: &Device) -> Result<Vec<f64>, PruneError> {
    let mut vecs: Vec<Vec<f32>> = vec![Vec::new(); pg.unit_groups().num_units()];
    for_each_slice(pg, tensors, &[Role::Filter], |u, it| vecs[u].extend(it))?;
    let mut s = vec![0.0f64; vecs.len()];
    for g in &pg.unit_groups().groups {
        let n = g.units.len();
        let d = vecs[g.units[0]].len();
        if n < 2 || d == 0 || g.units.iter().any(|&u| vecs[u].len() != d) {
            continue;
        }
        let flat: Vec<f32> = g.units.iter().flat_map(|&u| vecs[u].iter().copied()).collect();
        let x = Tensor::<2>::from_data(TensorData::new(flat, [n, d]), device);
        let sq = x.clone().powi_scalar(2).sum_dim(1); // [n, 1]
        let gram = x.clone().matmul(x.transpose()); // [n, n]
        let d2 = (sq.clone() + sq.transpose() - gram * 2.0).clamp_min(0.0).sqrt();
        let sums = d2.sum_dim(1).into_data().convert::<f32>().try_to_vec::<f32>().expect("f32");
        for (i, &u) in g.units.iter().enumerate() {
            s[u] = sums[i] as f64;
        }
    }
    Ok(s)
}

/// Accumulates first-order Taylor scores over mini-batches.
#[derive(Clone, Debug, Default)]
pub struct TaylorAccumulator {
    /// `Σ_batches (Σ_s g_s·w_s)²` per unit.
    pub scores: Vec<f64>,
    /// Batches accumulated.
    pub batches: usize,
}

impl TaylorAccumulator {
    /// Adds one batch: `grads` holds `∂loss/∂w` under the same keys and shapes as `tensors`.
    pub fn add_batch(&mut self, pg: &impl PlanGraph, tensors: &Tensors, grads: &Tensors) -> Result<(), PruneError> {
        let n = pg.unit_groups().num_units();
        self.scores.resize(n, 0.0);
        let mut batch = vec![0.0f64; n];
        for u in
            pg.channel_graph().uses().iter().filter(|u| matches!(u.role, Role::Filter | Role::BnWeight | Role::BnBias))
        {
            let (shape, w) = tensors
                .get(&u.key)
                .ok_or_else(|| PruneError::Tensor { key: u.key.clone(), msg: "not in the model".into() })?;
            let Some((gshape, g)) = grads.get(&u.key) else { continue };
            if gshape != shape {
                return Err(PruneError::Tensor {
                    key: u.key.clone(),
                    msg: format!("gradient shape {gshape:?} ≠ {shape:?}"),
                });
            }
            let outer: usize = shape[..u.dim].iter().product();
            let inner: usize = shape[u.dim + 1..].iter().product();
            let len = shape[u.dim];
            for (p, x) in pg.channel_graph().flat(&u.channels).into_iter().enumerate() {
                let unit = pg.unit_groups().unit[x];
                for o in 0..outer {
                    let start = (o * len + p) * inner;
                    batch[unit] += w[start..start + inner]
                        .iter()
                        .zip(&g[start..start + inner])
                        .map(|(a, b)| (*a as f64) * (*b as f64))
                        .sum::<f64>();
                }
            }
        }
        for (s, b) in self.scores.iter_mut().zip(batch) {
            *s += b * b;
        }
        self.batches += 1;
        Ok(())
    }
}
