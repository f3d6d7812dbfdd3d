//! Adaptive batch normalisation (EagleEye, Li et al., ECCV 2020, "EagleEye: Fast Sub-net Evaluation
//! for Efficient Neural Network Pruning"): after pruning, the BN running statistics of a sub-net no
//! longer describe its activations, and evaluating it with stale statistics says little about how
//! well it will fine-tune. EagleEye resets the statistics and re-estimates them on a few training
//! batches, leaving every weight untouched.
//!
//! [`adaptive_bn`] does what PyTorch does with
//!
//! ```text
//! for bn in model.modules(): bn.reset_running_stats(); bn.momentum = None
//! model.train()
//! with torch.no_grad(): for x in K batches: model(x)
//! ```
//!
//! so that every BN ends with the **cumulative average** of the `K` per-batch statistics: its
//! `running_mean` is the mean of the batch means, its `running_var` the mean of the batch variances
//! in **PyTorch's convention, the unbiased variance** (`Σ(x − μ)² / (n − 1)` over the `n = B·H·W`
//! values of a channel). Burn's own `BatchNorm` stores the *biased* batch variance in `running_var`
//! (`batch_norm_train` returns the population variance and `forward_train` blends it in as is), so
//! the estimate here rescales each batch's variance by `n / (n − 1)`, `n` being the number of values
//! per channel that BN saw in that batch. The normalisation inside the forward passes uses the biased
//! batch variance, as PyTorch's training-mode BN does.
//!
//! How the forward passes run: Burn's `BatchNorm::forward` takes its training path (batch
//! statistics, running-statistics update) only when its input lives on an autodiff device *and* its
//! `training` flag is enabled. The model here stays on the plain device with untracked parameters,
//! and only the input image is put on the autodiff device, untracked: every operation then runs
//! with autodiff dispatch but no operand requires a gradient, so no graph is recorded and no
//! backward state is kept — the cost is that of an inference forward pass plus the BN statistics.
//!
//! Per batch each BN's momentum is set to 1 (its running statistics become the batch's), the
//! statistics are read back and accumulated on the device, and at the end the averages are written
//! into fresh running states (same ids, not shared with any clone of the input model). Each BN's
//! momentum is then restored (ultralytics' 0.03,
//! [`BN_MOMENTUM`](yolo_compress_model::blocks::BN_MOMENTUM)) and its training flag put back as
//! [`Module::valid`] left it: the model comes back in inference form, like `model.valid()`.
//!
//! `n` needs each BN's spatial size, which Burn's BN does not expose; it is computed from the
//! convolution geometry by walking the model's blocks in data-flow order (the same flow
//! `Layer::macs` follows). Every BN of every block is visited — plain `Conv`, `Focus`, `Bottleneck`,
//! `C3`/`C3Ghost`, `SPP`/`SPPF`, `GhostConv`, `GhostBottleneck`, the GhostNet bottleneck's ghost
//! modules and depth-wise convs — and the count is checked against the model's named tensors.

use std::time::Instant;

use burn::module::{Module, RunningState};
use burn::nn::BatchNorm;
use burn::prelude::*;
use yolo_compress_data::loader::Loader;
use yolo_compress_model::blocks::{Bottleneck, C3Inner, Conv, GhostBottleneck, GhostConv, GhostNetBottleneck};
use yolo_compress_model::layer::Layer;
use yolo_compress_model::model::Graph;
use yolo_compress_model::state::{NamedTensors, Slot, TensorVisitor};
use yolo_compress_model::{WeightsError, YoloModel};

use crate::error::TrainError;
use crate::optim::groups::single_id;

/// What an adaptive-BN pass did.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct AdaptiveBnReport {
    /// Batches forwarded (the `K` of the cumulative average).
    pub batches: usize,
    /// Images in those batches.
    pub images: usize,
    /// BatchNorm layers re-estimated (fused convs have none).
    pub bn_layers: usize,
    /// Wall time, seconds (data loading included).
    pub seconds: f64,
    /// Loader warnings (corrupt samples that were replaced).
    pub warnings: Vec<String>,
}

/// Re-estimates every BN's running statistics of `model` on `batches` batches of `loader`
/// (EagleEye's adaptive BN; see the [module documentation](self)).
///
/// The batches are those of epochs 0, 1, … of `loader`, in order, until `batches` have been
/// forwarded (more than one epoch when the loader has fewer batches): build it from the training
/// split with the augmentation EagleEye should see (e.g. `LoaderConfig::train`, or augmentation off).
///
/// `model` may live on any device; it is returned on `device` without autodiff, in the state
/// [`Module::valid`] leaves a model in (BN layers in inference mode; parameters untracked but
/// remembering they are trainable, so `fork(&device.autodiff()).train()` resumes training, as
/// [`train`](crate::trainer::train) does). Weights are not changed.
///
/// Errors: `batches == 0`, an empty loader, a loader error, a model with BN layers this walk does
/// not reach, or a batch with a single value per channel at some BN.
pub fn adaptive_bn(
    model: YoloModel,
    loader: &Loader,
    batches: usize,
    device: &Device,
) -> Result<(YoloModel, AdaptiveBnReport), TrainError> {
    if batches == 0 {
        return Err(TrainError::Config("adaptive BN needs at least one batch".into()));
    }
    if loader.is_empty() {
        return Err(TrainError::Config("adaptive BN: the loader has no batches".into()));
    }
    let t0 = Instant::now();
    let mut warnings = Vec::new();
    let mut epoch = 0u64;
    // Pull batches lazily: one batch of images alive at a time besides the one being forwarded.
    let mut current = loader.epoch(epoch);
    let mut taken = 0usize;
    let iter = std::iter::from_fn(|| {
        if taken == batches {
            return None;
        }
        loop {
            match current.next() {
                Some(Ok(batch)) => {
                    taken += 1;
                    warnings.extend(batch.warnings);
                    return Some(Ok(batch.images));
                }
                Some(Err(e)) => {
                    taken = batches;
                    return Some(Err(TrainError::from(e)));
                }
                None => {
                    epoch += 1;
                    current = loader.epoch(epoch);
                }
            }
        }
    });
    let (model, mut report) = adaptive_bn_images(model, iter, device)?;
    report.warnings = warnings;
    report.seconds = t0.elapsed().as_secs_f64();
    Ok((model, report))
}

/// [`adaptive_bn`] on explicit image batches `[B, 3, H, W]` (sizes multiples of the model's
/// stride; they may differ between batches): every batch is forwarded once, and each BN ends with
/// the average of the per-batch means and unbiased variances. `report.warnings` is empty.
pub fn adaptive_bn_images<I>(
    model: YoloModel,
    batches: I,
    device: &Device,
) -> Result<(YoloModel, AdaptiveBnReport), TrainError>
where
    I: IntoIterator<Item = Result<Tensor<4>, TrainError>>,
{
    let t0 = Instant::now();
    let plain = device.clone().without_autodiff();
    // Plain tensors, untracked parameters; `valid` also gives every running state its own storage,
    // so clones of the caller's model keep their statistics.
    let mut model = model.valid().fork(&plain);
    let expected = count_bn_layers(&mut model)?;
    let mut saved: Vec<(burn::module::Param<burn::module::Flag>, f64)> = Vec::new();
    let mut sums: Vec<(Tensor<1>, Tensor<1>)> = Vec::new();
    let (mut n_batches, mut n_images) = (0usize, 0usize);
    let mut last_hw = (0usize, 0usize);
    for item in batches {
        let x = item?;
        let [b, _, h, w] = x.dims();
        last_hw = (h, w);
        if n_batches == 0 {
            // Reset (mean 0, var 1), train mode, momentum 1: after a forward pass the running
            // statistics are exactly that batch's.
            let visited = visit_bns(&mut model, h, w, &mut |bn, _| {
                saved.push((bn.training.clone(), bn.momentum));
                let c = bn.gamma.dims()[0];
                bn.running_mean = fresh_state(&bn.running_mean, Tensor::zeros([c], &plain));
                bn.running_var = fresh_state(&bn.running_var, Tensor::ones([c], &plain));
                bn.training = bn.training.clone().with_value(true);
                bn.momentum = 1.0;
            });
            if visited != expected {
                return Err(TrainError::Config(format!(
                    "adaptive BN reached {visited} of the model's {expected} batch-norm layers (a block it does not know?)"
                )));
            }
        }
        // The input alone on the autodiff device (untracked): BN takes its training path and
        // nothing records a graph.
        let x = x.to_device(&plain).autodiff();
        drop(model.forward_raw(x));
        let mut k = 0usize;
        let mut too_small = None;
        visit_bns(&mut model, h, w, &mut |bn, hw| {
            let n = b * hw;
            if n < 2 {
                too_small.get_or_insert(n);
            }
            let mean = bn.running_mean.value_sync().without_autodiff();
            // Burn stores the biased batch variance; PyTorch's running_var takes the unbiased one.
            let bessel = n as f64 / (n.max(2) - 1) as f64;
            let var = bn.running_var.value_sync().without_autodiff().mul_scalar(bessel);
            match sums.get_mut(k) {
                Some((m, v)) => {
                    *m = m.clone().add(mean);
                    *v = v.clone().add(var);
                }
                None => sums.push((mean, var)),
            }
            k += 1;
        });
        if let Some(n) = too_small {
            return Err(TrainError::Config(format!(
                "adaptive BN: a batch of {b} images of {h}×{w} leaves {n} value(s) per channel at some BN; the unbiased variance needs at least 2"
            )));
        }
        n_batches += 1;
        n_images += b;
    }
    if n_batches == 0 {
        return Err(TrainError::Config("adaptive BN needs at least one batch".into()));
    }
    let mut k = 0usize;
    visit_bns(&mut model, last_hw.0, last_hw.1, &mut |bn, _| {
        let (m, v) = &sums[k];
        let inv = 1.0 / n_batches as f64;
        bn.running_mean = fresh_state(&bn.running_mean, m.clone().mul_scalar(inv));
        bn.running_var = fresh_state(&bn.running_var, v.clone().mul_scalar(inv));
        let (training, momentum) = &saved[k];
        bn.training = training.clone();
        bn.momentum = *momentum;
        k += 1;
    });
    let report = AdaptiveBnReport {
        batches: n_batches,
        images: n_images,
        bn_layers: expected,
        seconds: t0.elapsed().as_secs_f64(),
        warnings: Vec::new(),
    };
    Ok((model, report))
}

/// A running state with `old`'s id holding `value`, with its own storage.
fn fresh_state(old: &RunningState<Tensor<1>>, value: Tensor<1>) -> RunningState<Tensor<1>> {
    match single_id(old) {
        Some(id) => RunningState::with_id(id, value),
        None => RunningState::new(value),
    }
}

/// Number of BN layers according to the named-tensor walk (one `running_mean` each).
fn count_bn_layers(model: &mut YoloModel) -> Result<usize, TrainError> {
    struct Count(usize);
    impl TensorVisitor for Count {
        fn visit(&mut self, key: &str, slot: Slot<'_>) -> Result<(), WeightsError> {
            if matches!(slot, Slot::Running(_)) && key.ends_with(".running_mean") {
                self.0 += 1;
            }
            Ok(())
        }
    }
    let mut c = Count(0);
    model.visit_tensors("model", &mut c)?;
    Ok(c.0)
}

/// The callback of [`visit_bns`]: a BN and the number of spatial positions (`H'·W'`) of its input
/// for one image.
type BnFn<'a> = dyn FnMut(&mut BatchNorm, usize) + 'a;

/// Calls `f` on every BN of `model` (backbone and neck, in layer order) with its spatial size for
/// `h × w` input images; returns the number of BNs visited.
fn visit_bns(model: &mut YoloModel, h: usize, w: usize, f: &mut BnFn<'_>) -> usize {
    let mut sizes: Vec<Option<(usize, usize)>> = vec![None; model.shapes.len()];
    let mut count = 0usize;
    let mut counted = |bn: &mut BatchNorm, hw: usize| {
        count += 1;
        f(bn, hw);
    };
    visit_graph(&mut model.backbone.graph, (h, w), &mut sizes, &mut counted);
    visit_graph(&mut model.neck, (h, w), &mut sizes, &mut counted);
    count
}

fn visit_graph(g: &mut Graph, image: (usize, usize), sizes: &mut Vec<Option<(usize, usize)>>, f: &mut BnFn<'_>) {
    for (j, layer) in g.layers.iter_mut().enumerate() {
        let i = g.offset + j;
        let ins: Vec<(usize, usize)> = g.sources[j]
            .iter()
            .map(|s| s.map_or(Some(image), |s| sizes.get(s).copied().flatten()).unwrap_or(image))
            .collect();
        let out = visit_layer(layer, ins.first().copied().unwrap_or(image), f);
        if sizes.len() <= i {
            sizes.resize(i + 1, None);
        }
        sizes[i] = Some(out);
    }
}

/// Visits the BNs of one layer whose (first) input is `hw`; returns the output size.
fn visit_layer(layer: &mut Layer, hw: (usize, usize), f: &mut BnFn<'_>) -> (usize, usize) {
    match layer {
        Layer::Conv(c) => conv(c, hw, f),
        Layer::Focus(m) => conv(&mut m.conv, (hw.0 / 2, hw.1 / 2), f),
        Layer::Bottleneck(b) => bottleneck(b, hw, f),
        Layer::C3(c) => {
            let mut y = conv(&mut c.cv1, hw, f);
            for inner in &mut c.m {
                y = match inner {
                    C3Inner::Plain(b) => bottleneck(b, y, f),
                    C3Inner::Ghost(b) => ghost_bottleneck(b, y, f),
                };
            }
            conv(&mut c.cv2, hw, f);
            conv(&mut c.cv3, y, f)
        }
        // Max pooling with "same" padding keeps the size.
        Layer::Spp(s) => {
            let y = conv(&mut s.cv1, hw, f);
            conv(&mut s.cv2, y, f)
        }
        Layer::Sppf(s) => {
            let y = conv(&mut s.cv1, hw, f);
            conv(&mut s.cv2, y, f)
        }
        Layer::GhostConv(g) => ghost_conv(g, hw, f),
        Layer::GhostBottleneck(b) => ghost_bottleneck(b, hw, f),
        Layer::GhostNetBottleneck(b) => ghostnet_bottleneck(b, hw, f),
        Layer::Upsample(s) => (hw.0 * *s, hw.1 * *s),
        Layer::Concat(_) => hw,
    }
}

fn conv(c: &mut Conv, (h, w): (usize, usize), f: &mut BnFn<'_>) -> (usize, usize) {
    let (_, out) = c.macs(h, w);
    if let Some(bn) = c.bn.as_mut() {
        f(bn, out.0 * out.1);
    }
    out
}

fn bottleneck(b: &mut Bottleneck, hw: (usize, usize), f: &mut BnFn<'_>) -> (usize, usize) {
    let y = conv(&mut b.cv1, hw, f);
    conv(&mut b.cv2, y, f)
}

fn ghost_conv(g: &mut GhostConv, hw: (usize, usize), f: &mut BnFn<'_>) -> (usize, usize) {
    let y = conv(&mut g.cv1, hw, f);
    conv(&mut g.cv2, y, f);
    y
}

fn ghost_bottleneck(b: &mut GhostBottleneck, hw: (usize, usize), f: &mut BnFn<'_>) -> (usize, usize) {
    let mut y = ghost_conv(&mut b.ghost1, hw, f);
    if let Some(dw) = b.dw.as_mut() {
        y = conv(dw, y, f);
    }
    let y = ghost_conv(&mut b.ghost2, y, f);
    if let Some((dw, pw)) = b.shortcut.as_mut() {
        let s = conv(dw, hw, f);
        conv(pw, s, f);
    }
    y
}

fn ghostnet_bottleneck(b: &mut GhostNetBottleneck, hw: (usize, usize), f: &mut BnFn<'_>) -> (usize, usize) {
    let mut y = ghost_conv(&mut b.ghost1.ghost, hw, f);
    if let Some(dw) = b.dw.as_mut() {
        y = conv(dw, y, f);
    }
    // Squeeze-excite has no BN and keeps the size.
    let y = ghost_conv(&mut b.ghost2.ghost, y, f);
    if let Some((dw, pw)) = b.shortcut.as_mut() {
        let s = conv(dw, hw, f);
        conv(pw, s, f);
    }
    y
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use burn::nn::conv::Conv2d;
    use burn::tensor::Distribution;
    use yolo_compress_model::Architecture;
    use yolo_compress_model::blocks::BN_EPS;
    use yolo_compress_model::state::Collector;

    use super::*;

    fn build(name: &str) -> YoloModel {
        Architecture::from_name_or_path(name).unwrap().build(&Device::flex()).unwrap()
    }

    fn batches(n: usize, b: usize, size: usize) -> Vec<Tensor<4>> {
        let dev = Device::flex();
        (0..n).map(|_| Tensor::<4>::random([b, 3, size, size], Distribution::Default, &dev)).collect()
    }

    fn run(model: YoloModel, xs: &[Tensor<4>]) -> (YoloModel, AdaptiveBnReport) {
        adaptive_bn_images(model, xs.iter().cloned().map(Ok), &Device::flex()).unwrap()
    }

    /// Every tensor of the walk by key.
    fn tensors(model: &YoloModel) -> BTreeMap<String, Vec<f32>> {
        let mut col = Collector::default();
        model.clone().visit_tensors("model", &mut col).unwrap();
        col.tensors.into_iter().map(|(k, _, v)| (k, v)).collect()
    }

    fn host(t: Tensor<4>) -> (Vec<f64>, [usize; 4]) {
        let dims = t.dims();
        let v = t.without_autodiff().into_data().try_into_vec_as::<f32>().unwrap();
        (v.into_iter().map(f64::from).collect(), dims)
    }

    fn flat<const D: usize>(t: Tensor<D>) -> Vec<f32> {
        t.into_data().try_into_vec_as::<f32>().unwrap()
    }

    /// Per-channel mean, biased and unbiased variance of a `[B, C, H, W]` tensor, in f64.
    fn channel_stats(t: Tensor<4>) -> Vec<(f64, f64, f64)> {
        let (v, [b, c, h, w]) = host(t);
        let n = (b * h * w) as f64;
        (0..c)
            .map(|ch| {
                let vals = || (0..b).flat_map(|i| v[(i * c + ch) * h * w..(i * c + ch + 1) * h * w].iter().copied());
                let mean = vals().sum::<f64>() / n;
                let ss = vals().map(|x| (x - mean) * (x - mean)).sum::<f64>();
                (mean, ss / n, ss / (n - 1.0))
            })
            .collect()
    }

    /// PyTorch's cumulative average over batches of the statistics of `conv(input)`.
    fn reference(conv: &Conv2d, inputs: &[Tensor<4>]) -> (Vec<f64>, Vec<f64>) {
        let mut mean = Vec::new();
        let mut var = Vec::new();
        for x in inputs {
            let s = channel_stats(conv.forward(x.clone().without_autodiff()));
            mean.resize(s.len(), 0.0);
            var.resize(s.len(), 0.0);
            for (c, (m, _, u)) in s.into_iter().enumerate() {
                mean[c] += m / inputs.len() as f64;
                var[c] += u / inputs.len() as f64;
            }
        }
        (mean, var)
    }

    /// Largest relative difference of `model`'s `{bn}.running_mean/var` from `expected`.
    fn rel_err(stats: &BTreeMap<String, Vec<f32>>, bn: &str, expected: &(Vec<f64>, Vec<f64>)) -> f64 {
        let mut worst = 0.0f64;
        for (suffix, want) in [("running_mean", &expected.0), ("running_var", &expected.1)] {
            let got = &stats[&format!("{bn}.{suffix}")];
            assert_eq!(got.len(), want.len(), "{bn}.{suffix}");
            for (g, w) in got.iter().zip(want) {
                worst = worst.max((f64::from(*g) - w).abs() / w.abs().max(1e-3));
            }
        }
        worst
    }

    fn set(model: &mut YoloModel, values: &BTreeMap<String, Vec<f32>>) {
        struct Set<'a>(&'a BTreeMap<String, Vec<f32>>);
        impl TensorVisitor for Set<'_> {
            fn visit(&mut self, key: &str, mut slot: Slot<'_>) -> Result<(), WeightsError> {
                if let Some(v) = self.0.get(key) {
                    slot.set(v.clone(), &Device::flex());
                }
                Ok(())
            }
        }
        model.visit_tensors("model", &mut Set(values)).unwrap();
    }

    fn layer(model: &YoloModel, i: usize) -> &Layer {
        let nb = model.backbone.graph.layers.len();
        if i < nb { &model.backbone.graph.layers[i] } else { &model.neck.layers[i - nb] }
    }

    /// (a) The statistics equal PyTorch's `momentum=None` estimate computed independently: layer 0
    /// (the stem conv on the images), layer 1 (its input normalised here by hand with the batch
    /// statistics), and, from the training-mode layer outputs, SPPF at 2×2 (8 values per channel,
    /// where the unbiased correction is 8/7), the 1×1 conv after it, and the neck C3 reading a
    /// concatenation.
    #[test]
    fn statistics_match_pytorch_cumulative_average() {
        let mut model = build("yolov5n.yaml");
        // Non-trivial γ, β for the stem so that layer 1's input depends on them.
        let c0 = 16;
        let mut affine = BTreeMap::new();
        affine.insert("model.0.bn.weight".to_string(), (0..c0).map(|i| 0.5 + 0.07 * i as f32).collect());
        affine.insert("model.0.bn.bias".to_string(), (0..c0).map(|i| -0.3 + 0.05 * i as f32).collect());
        set(&mut model, &affine);
        let xs = batches(3, 2, 64);

        let Layer::Conv(stem) = layer(&model, 0) else { panic!("layer 0 is a Conv") };
        let ref0 = reference(&stem.conv, &xs);
        // Layer 1's input: SiLU(γ·(y − μ)/√(σ²_biased + ε) + β) with each batch's own statistics.
        let (g, b) = (&affine["model.0.bn.weight"], &affine["model.0.bn.bias"]);
        let x1: Vec<Tensor<4>> = xs
            .iter()
            .map(|x| {
                let y = stem.conv.forward(x.clone());
                let s = channel_stats(y.clone());
                let (v, [bb, c, h, w]) = host(y);
                let out: Vec<f32> = v
                    .iter()
                    .enumerate()
                    .map(|(i, &y)| {
                        let ch = (i / (h * w)) % c;
                        let z = f64::from(g[ch]) * (y - s[ch].0) / (s[ch].1 + BN_EPS).sqrt() + f64::from(b[ch]);
                        (z / (1.0 + (-z).exp())) as f32
                    })
                    .collect();
                Tensor::from_data(TensorData::new(out, [bb, c, h, w]), &Device::flex())
            })
            .collect();
        let Layer::Conv(l1) = layer(&model, 1) else { panic!("layer 1 is a Conv") };
        let ref1 = reference(&l1.conv, &x1);
        // Training-mode outputs of every layer (the model's BNs are in training mode on an
        // autodiff input), for deeper references.
        let outs: Vec<Vec<Tensor<4>>> = xs.iter().map(|x| model.forward_layers(x.clone().autodiff()).0).collect();
        let inputs = |i: usize| outs.iter().map(|o| o[i].clone()).collect::<Vec<_>>();
        let Layer::Sppf(sppf) = layer(&model, 9) else { panic!("layer 9 is SPPF") };
        let ref9 = reference(&sppf.cv1.conv, &inputs(8));
        let Layer::Conv(l10) = layer(&model, 10) else { panic!("layer 10 is a Conv") };
        let ref10 = reference(&l10.conv, &inputs(9));
        let Layer::C3(c3) = layer(&model, 13) else { panic!("layer 13 is a C3") };
        let ref13 = (reference(&c3.cv1.conv, &inputs(12)), reference(&c3.cv2.conv, &inputs(12)));

        let (adapted, report) = run(model, &xs);
        assert_eq!((report.batches, report.images, report.bn_layers), (3, 6, 57));
        let stats = tensors(&adapted);
        let errs = [
            rel_err(&stats, "model.0.bn", &ref0),
            rel_err(&stats, "model.1.bn", &ref1),
            rel_err(&stats, "model.9.cv1.bn", &ref9),
            rel_err(&stats, "model.10.bn", &ref10),
            rel_err(&stats, "model.13.cv1.bn", &ref13.0),
            rel_err(&stats, "model.13.cv2.bn", &ref13.1),
        ];
        eprintln!("adaptive BN vs reference, max relative error per BN: {errs:?}");
        assert!(errs.iter().all(|&e| e < 1e-4), "{errs:?}");
        // The biased variance would be off by the Bessel factor: 8/7 at SPPF (2 images × 2×2).
        let biased: Vec<f64> = ref9.1.iter().map(|v| v * 7.0 / 8.0).collect();
        assert!(rel_err(&stats, "model.9.cv1.bn", &(ref9.0.clone(), biased)) > 0.1);
    }

    /// (b) Weights are untouched, momentum is back to 0.03, and a second pass over the same
    /// batches gives the same statistics; (c) the eval output changes and is that of a model whose
    /// statistics were written by hand.
    #[test]
    fn weights_untouched_idempotent_and_used_in_eval() {
        let model = build("yolov5n.yaml");
        let original = tensors(&model);
        let xs = batches(2, 2, 64);
        let probe = batches(1, 1, 64).remove(0);
        let stale = flat(model.forward(probe.clone()).decoded);

        let (adapted, _) = run(model.clone(), &xs);
        let after = tensors(&adapted);
        let mut changed = 0;
        for (k, v) in &original {
            if k.ends_with("running_mean") || k.ends_with("running_var") {
                changed += usize::from(after[k] != *v);
            } else {
                assert_eq!(after[k], *v, "{k} changed");
            }
        }
        assert_eq!(changed, 2 * 57);
        // The input model (and its clones) keep their statistics.
        assert_eq!(tensors(&model), original);
        let mut momenta = Vec::new();
        let mut adapted = adapted;
        visit_bns(&mut adapted, 64, 64, &mut |bn, _| momenta.push((bn.momentum, bn.training.is_enabled())));
        assert!(momenta.iter().all(|&(m, t)| m == yolo_compress_model::blocks::BN_MOMENTUM && !t));

        // The mechanism: untracked parameters and an untracked autodiff input record no graph.
        let raw = build("yolov5n.yaml").forward_raw(probe.clone().autodiff());
        assert!(raw[0].is_autodiff() && !raw[0].is_tracked());

        let (again, _) = run(adapted.clone(), &xs);
        let again = tensors(&again);
        let worst = after.iter().map(|(k, v)| v.iter().zip(&again[k]).map(|(a, b)| (a - b).abs()).fold(0.0, f32::max));
        assert!(worst.fold(0.0, f32::max) <= 1e-6);

        let adapted_out = flat(adapted.forward(probe.clone()).decoded);
        let diff = stale.iter().zip(&adapted_out).map(|(a, b)| (a - b).abs()).fold(0.0, f32::max);
        assert!(diff > 1e-2, "eval output barely changed ({diff})");
        let mut by_hand = build("yolov5n.yaml");
        set(&mut by_hand, &after);
        assert_eq!(flat(by_hand.forward(probe).decoded), adapted_out);
    }

    /// Ghost blocks: every BN is reached (the walk checks the count), including the GhostNet
    /// bottleneck's input-resolution ghost module and output-resolution depth-wise shortcut of a
    /// stride-2 block.
    #[test]
    fn ghost_blocks_are_covered() {
        let model = build("yolov5-ghostnet.yaml");
        let xs = batches(2, 2, 64);
        let outs: Vec<Vec<Tensor<4>>> = xs.iter().map(|x| model.forward_layers(x.clone().autodiff()).0).collect();
        let inputs: Vec<Tensor<4>> = outs.iter().map(|o| o[1].clone()).collect();
        let Layer::GhostNetBottleneck(b) = layer(&model, 2) else { panic!("layer 2 is a GhostNet bottleneck") };
        assert!(b.dw.is_some(), "layer 2 has stride 2");
        let primary = reference(&b.ghost1.ghost.cv1.conv, &inputs);
        let shortcut = reference(&b.shortcut.as_ref().unwrap().0.conv, &inputs);
        let (adapted, report) = run(model, &xs);
        let stats = tensors(&adapted);
        assert_eq!(report.bn_layers, stats.keys().filter(|k| k.ends_with(".running_mean")).count());
        let errs = [
            rel_err(&stats, "model.2.conv.0.primary_conv.bn", &primary),
            rel_err(&stats, "model.2.shortcut.0.bn_DW", &shortcut),
        ];
        eprintln!("GhostNet stride-2 bottleneck vs reference, max relative error: {errs:?}");
        assert!(errs.iter().all(|&e| e < 1e-4), "{errs:?}");

        let (adapted, report) = run(build("yolov5s-ghost.yaml"), &xs[..1]);
        let stats = tensors(&adapted);
        assert_eq!(report.bn_layers, stats.keys().filter(|k| k.ends_with(".running_mean")).count());
        for (k, v) in &stats {
            if k.ends_with(".running_var") {
                assert!(v.iter().all(|x| x.is_finite() && *x >= 0.0) && v.iter().any(|&x| x != 1.0), "{k}");
            }
        }
    }

    /// The loader front end: batches run on across epochs (3 batches of a 2-batch epoch), a loader
    /// on the autodiff device works, and the result is that of the same batches given explicitly.
    #[test]
    fn loader_batches_span_epochs() {
        use std::sync::Arc;
        use yolo_compress_data::loader::LoaderConfig;
        use yolo_compress_data::synth::{Split, SynthConfig, SynthSource};
        let cfg = SynthConfig { images: 3, val: 0, classes: 2, imgsz: 64, ..SynthConfig::default() };
        let src = Arc::new(SynthSource::new(cfg, Split::Train).unwrap());
        let lc = LoaderConfig { workers: 1, ..LoaderConfig::train(64, 2) };
        let loader = Loader::new(src, lc, &Device::flex().autodiff()).unwrap();
        assert_eq!(loader.len(), 2);
        let model = build("yolov5n.yaml");
        let (a, report) = adaptive_bn(model.clone(), &loader, 3, &Device::flex()).unwrap();
        assert_eq!((report.batches, report.images), (3, 5));
        let xs: Vec<Tensor<4>> =
            [(0, 0), (0, 1), (1, 0)].iter().map(|&(e, i)| loader.epoch(e).nth(i).unwrap().unwrap().images).collect();
        let (b, _) = run(model, &xs);
        assert_eq!(tensors(&a), tensors(&b));
        assert!(matches!(adaptive_bn(b, &loader, 0, &Device::flex()), Err(TrainError::Config(_))));
    }

    #[test]
    fn no_batch_is_an_error() {
        let err = adaptive_bn_images(build("yolov5n.yaml"), std::iter::empty(), &Device::flex()).unwrap_err();
        assert!(err.to_string().contains("at least one batch"), "{err}");
        // One 32×32 image leaves a single value per channel at stride 32.
        let err = adaptive_bn_images(build("yolov5n.yaml"), batches(1, 1, 32).into_iter().map(Ok), &Device::flex())
            .unwrap_err();
        assert!(err.to_string().contains("at least 2"), "{err}");
    }
}
