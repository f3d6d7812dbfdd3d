//! Activation statistics on calibration images: the per-channel mean and variance of every conv's
//! input and of every conv's output before its BatchNorm, measured on the model's own deployed graph
//! ([`lower`](crate::quant::graph::lower), the graph int8 inference runs) in inference mode.
//!
//! They feed the three data-driven parts of pruning:
//! - [`reanchor_bn`](super::reanchor::reanchor_bn) sets every BN's running statistics to the measured
//!   pre-BN moments (and unfuses fused checkpoints);
//! - [`compensate`](super::compensate::compensate) folds a removed channel's mean into its consumers;
//! - [`Criterion::Activation`](super::importance::Criterion::Activation) scores a channel by the
//!   variation its consumers would lose.
//!
//! Moments are combined over batches with Chan et al.'s parallel update (per batch: mean and centred
//! sum of squares computed on the device, then merged in f64), so a channel whose mean is large and
//! whose variation is tiny — the case that matters most here — keeps an accurate variance.

use std::collections::{HashMap, HashSet};

use burn::prelude::*;
use yolo_compress_model::YoloModel;

use super::surgery::model_tensors;
use crate::error::PruneError;
use crate::quant::graph::Op;
use crate::quant::model::QuantModel;

/// Per-channel moments of a feature map over every batch, image and pixel seen.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Moments {
    /// Number of values per channel (`Σ B·H·W`).
    pub count: f64,
    /// Mean per channel.
    pub mean: Vec<f64>,
    /// Centred sum of squares per channel (`Σ (x − mean)²`).
    pub m2: Vec<f64>,
    /// Centred co-moment matrix `Σ (x − mean)(x − mean)ᵀ`, `C × C` row-major (empty unless
    /// covariances were measured); its diagonal is `m2`.
    pub cov: Vec<f64>,
}

impl Moments {
    /// Merges one batch's moments (`count` values per channel with means `mean` and centred sums
    /// of squares `m2`) into these (Chan, Golub & LeVeque's pairwise update).
    pub fn merge(&mut self, count: f64, mean: &[f64], m2: &[f64]) {
        self.merge_cov(count, mean, m2, &[]);
    }

    /// [`merge`](Self::merge) with the batch's co-moment matrix (`cov`, `C × C`, or empty).
    pub fn merge_cov(&mut self, count: f64, mean: &[f64], m2: &[f64], cov: &[f64]) {
        if self.count == 0.0 {
            *self = Moments { count, mean: mean.to_vec(), m2: m2.to_vec(), cov: cov.to_vec() };
            return;
        }
        let n = self.count + count;
        let c_n = self.mean.len();
        let delta: Vec<f64> = (0..c_n).map(|c| mean[c] - self.mean[c]).collect();
        let w = self.count * count / n;
        if !cov.is_empty() && self.cov.len() == cov.len() {
            for i in 0..c_n {
                for j in 0..c_n {
                    self.cov[i * c_n + j] += cov[i * c_n + j] + delta[i] * delta[j] * w;
                }
            }
        } else {
            self.cov.clear();
        }
        for c in 0..c_n {
            self.mean[c] += delta[c] * count / n;
            self.m2[c] += m2[c] + delta[c] * delta[c] * w;
        }
        self.count = n;
    }

    /// Adds a batch `[B, C, H, W]`.
    pub fn add(&mut self, t: &Tensor<4>) {
        self.add_with(t, false);
    }

    /// Adds a batch `[B, C, H, W]`, with its channel covariance when `covariance`.
    pub fn add_with(&mut self, t: &Tensor<4>, covariance: bool) {
        let [b, c, h, w] = t.dims();
        let n = (b * h * w) as f64;
        let mean = t.clone().mean_dim(0).mean_dim(2).mean_dim(3); // [1, C, 1, 1]
        let centred = t.clone() - mean.clone();
        let m2 = centred.clone().powi_scalar(2).sum_dim(0).sum_dim(2).sum_dim(3);
        let host = |x: Tensor<2>| -> Vec<f64> {
            x.into_data().convert::<f32>().try_to_vec::<f32>().expect("f32").into_iter().map(f64::from).collect()
        };
        let cov = if covariance {
            let x = centred.swap_dims(0, 1).reshape([c, b * h * w]); // [C, N]
            host(x.clone().matmul(x.transpose()))
        } else {
            Vec::new()
        };
        self.merge_cov(n, &host(mean.reshape([1, c])), &host(m2.reshape([1, c])), &cov);
    }

    /// Covariance between channels `i` and `j` (population).
    pub fn covariance(&self, i: usize, j: usize) -> Option<f64> {
        let c = self.mean.len();
        (!self.cov.is_empty()).then(|| self.cov[i * c + j] / self.count.max(1.0))
    }

    /// Number of channels.
    pub fn channels(&self) -> usize {
        self.mean.len()
    }

    /// Population variance per channel.
    pub fn var(&self) -> Vec<f64> {
        self.m2.iter().map(|m| m / self.count.max(1.0)).collect()
    }

    /// Second moment `E[x²]` per channel (what a channel carries when it is zeroed, not replaced by
    /// its mean).
    pub fn second_moment(&self) -> Vec<f64> {
        self.var().iter().zip(&self.mean).map(|(v, m)| v + m * m).collect()
    }
}

/// Activation statistics of one model on calibration images (see the [module docs](self)).
#[derive(Clone, Debug, Default)]
pub struct ActivationStats {
    /// Moments of each conv's input, by the conv's weight key (`model.3.conv.weight`,
    /// `model.24.m.0.weight`): the channels along the weight's dimension 1.
    pub inputs: HashMap<String, Moments>,
    /// Moments of each conv's output before its BN (conv bias included, if any), by the conv's
    /// name (`model.3`, `model.2.m.0.cv1`; the BN is `<name>.bn`). Empty unless requested.
    pub pre_bn: HashMap<String, Moments>,
    /// Images measured.
    pub images: usize,
    /// Whether the input moments carry channel covariances (needed by linear compensation).
    pub covariance: bool,
}

/// The weight key of the deployed conv `name` among `keys`: `<name>.conv.weight` (a `Conv` block)
/// or `<name>.weight` (a bare conv: Detect, squeeze-excite).
pub fn conv_weight_key(name: &str, keys: &HashSet<String>) -> Option<String> {
    [format!("{name}.conv.weight"), format!("{name}.weight")].into_iter().find(|k| keys.contains(k))
}

/// The conv name of a weight key (inverse of [`conv_weight_key`]).
pub fn conv_name(weight_key: &str) -> &str {
    weight_key.strip_suffix(".conv.weight").or_else(|| weight_key.strip_suffix(".weight")).unwrap_or(weight_key)
}

impl ActivationStats {
    /// Runs `model` in inference mode on every batch (`[B, 3, H, W]`, sides multiples of the
    /// model's stride) and records the moments of every conv's input and, when `pre_bn`, of every
    /// conv's output before BN (one extra convolution per conv). Needs a model built from an
    /// architecture; fused or not.
    pub fn measure<I>(model: &YoloModel, batches: I, pre_bn: bool) -> Result<Self, PruneError>
    where
        I: IntoIterator<Item = Tensor<4>>,
    {
        Self::measure_with(model, batches, pre_bn, false)
    }

    /// [`measure`](Self::measure), also recording every conv input's channel covariance when
    /// `covariance` (a `C × C` matrix per input; what linear compensation needs).
    pub fn measure_with<I>(model: &YoloModel, batches: I, pre_bn: bool, covariance: bool) -> Result<Self, PruneError>
    where
        I: IntoIterator<Item = Tensor<4>>,
    {
        let q = QuantModel::from_model(model).map_err(|e| PruneError::Graph(e.to_string()))?;
        let keys: HashSet<String> = model_tensors(model)?.into_keys().collect();
        let weight_keys: Vec<String> = q
            .convs
            .iter()
            .map(|c| {
                conv_weight_key(&c.name, &keys).ok_or_else(|| PruneError::Tensor {
                    key: format!("{}.conv.weight", c.name),
                    msg: "the deployed graph's conv has no weight in the model".into(),
                })
            })
            .collect::<Result<_, _>>()?;
        // Convs reading each value.
        let mut readers: Vec<Vec<usize>> = vec![Vec::new(); q.graph.num_values()];
        for op in &q.graph.ops {
            if let Op::Conv { conv, input } = op {
                readers[*input].push(*conv);
            }
        }
        let mut value_moments: Vec<Option<Moments>> = vec![None; q.graph.num_values()];
        let mut pre: Vec<Moments> = vec![Moments::default(); if pre_bn { q.convs.len() } else { 0 }];
        let mut images = 0;
        for x in batches {
            images += x.dims()[0];
            let mut tap = |v: usize, t: &Tensor<4>| {
                if readers[v].is_empty() {
                    return;
                }
                value_moments[v].get_or_insert_with(Moments::default).add_with(t, covariance);
                if pre_bn {
                    for &c in &readers[v] {
                        pre[c].add(&q.convs[c].conv.forward(t.clone()));
                    }
                }
            };
            drop(q.forward_tap(x, &mut tap));
        }
        if images == 0 {
            return Err(PruneError::Option { name: "calibration", msg: "no calibration images".into() });
        }
        let mut stats = ActivationStats { images, covariance, ..Default::default() };
        for (c, input) in q.graph.ops.iter().filter_map(|op| match op {
            Op::Conv { conv, input } => Some((*conv, *input)),
            _ => None,
        }) {
            let m = value_moments[input].clone().expect("every conv input was measured");
            stats.inputs.insert(weight_keys[c].clone(), m);
        }
        if pre_bn {
            for (c, m) in pre.into_iter().enumerate() {
                stats.pre_bn.insert(q.convs[c].name.clone(), m);
            }
        }
        Ok(stats)
    }

    /// The input moments of the conv whose weight is `key`, checked against its channel count.
    pub fn input(&self, key: &str, channels: usize) -> Result<&Moments, PruneError> {
        let m = self.inputs.get(key).ok_or_else(|| PruneError::Tensor {
            key: key.to_string(),
            msg: "no activation statistics for this conv's input (measure them on this model)".into(),
        })?;
        if m.channels() != channels {
            return Err(PruneError::Tensor {
                key: key.to_string(),
                msg: format!("statistics of {} input channels, the conv has {channels}", m.channels()),
            });
        }
        Ok(m)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use yolo_compress_model::Architecture;

    #[test]
    fn merged_moments_equal_the_moments_of_all_values() {
        // Two batches of one channel: [1, 2, 3] and [10, 10]; a large mean with a tiny variation.
        let mut m = Moments::default();
        m.merge(3.0, &[2.0], &[2.0]);
        m.merge(2.0, &[10.0], &[0.0]);
        let all = [1.0, 2.0, 3.0, 10.0, 10.0];
        let mean = all.iter().sum::<f64>() / 5.0;
        let var = all.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / 5.0;
        assert!((m.mean[0] - mean).abs() < 1e-12 && (m.var()[0] - var).abs() < 1e-12);
        let mut t = Moments::default();
        let device = Device::flex();
        let big = Tensor::<1>::from_floats([1000.0, 1000.5, 999.5, 1000.0], &device).reshape([1, 1, 2, 2]);
        t.add(&big);
        assert!((t.mean[0] - 1000.0).abs() < 1e-3);
        assert!((t.var()[0] - 0.125).abs() < 1e-4, "centred per batch: {}", t.var()[0]);
    }

    #[test]
    fn measures_every_conv_input_and_pre_bn_output() {
        let device = Device::flex();
        let arch = Architecture::from_name_or_path("yolov5n.yaml").unwrap().with_classes(vec!["a".into()]);
        let model = arch.build(&device).unwrap();
        let x = Tensor::<4>::random([2, 3, 64, 64], burn::tensor::Distribution::Uniform(0.0, 1.0), &device);
        let stats = ActivationStats::measure(&model, [x.clone()], true).unwrap();
        assert_eq!(stats.images, 2);
        // The stem reads the image: its input moments are the image's.
        let img = stats.input("model.0.conv.weight", 3).unwrap();
        let mut want = Moments::default();
        want.add(&x);
        assert_eq!(img, &want);
        // Detect reads layers 17, 20, 23; its convs have no BN but are measured too.
        assert!(stats.inputs.contains_key("model.24.m.2.weight"));
        // The stem's pre-BN output: the conv alone, measured directly.
        let conv = model.backbone.graph.layers[0].clone();
        let yolo_compress_model::layer::Layer::Conv(c) = conv else { panic!("the stem is a Conv") };
        let mut direct = Moments::default();
        direct.add(&c.conv.forward(x));
        let got = &stats.pre_bn["model.0"];
        for (a, b) in got.mean.iter().zip(&direct.mean) {
            assert!((a - b).abs() < 1e-5);
        }
        assert!(stats.input("model.0.conv.weight", 4).is_err(), "channel count checked");
    }
}
