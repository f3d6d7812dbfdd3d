//! Calibration-driven pruning on models built here: activation statistics, BN re-anchoring (and
//! unfusing), mean compensation (exact for 1×1 consumers and Detect, exact away from the border for
//! a 3×3 consumer) and the activation criterion.

mod common;

use burn::prelude::*;
use yolo_compress_compress::prune::surgery::model_tensors;
use yolo_compress_compress::prune::{
    ActivationStats, Criterion, PruneGraph, PrunePlan, ScoreData, prune_model, prune_model_with, reanchor_bn, scores,
};
use yolo_compress_model::state::{NamedTensors, Slot, TensorVisitor};
use yolo_compress_model::{Architecture, WeightsError, YoloModel};

use common::randomize_bn;

fn device() -> Device {
    Device::flex()
}

fn model(seed: u64) -> YoloModel {
    let dev = device();
    dev.seed(seed);
    let arch = Architecture::from_name_or_path("yolov5n.yaml").unwrap().with_classes(vec!["a".into(), "b".into()]);
    let mut m = arch.build(&dev).unwrap();
    randomize_bn(&mut m, seed, &dev);
    m
}

fn images(seed: u64, n: usize, side: usize) -> Tensor<4> {
    device().seed(seed);
    Tensor::<4>::random([n, 3, side, side], burn::tensor::Distribution::Uniform(0.0, 1.0), &device())
}

fn raw(model: &YoloModel, x: Tensor<4>) -> Vec<Vec<f32>> {
    model.forward(x).raw.into_iter().map(|t| t.into_data().convert::<f32>().try_to_vec::<f32>().unwrap()).collect()
}

fn max_abs_diff(a: &[Vec<f32>], b: &[Vec<f32>]) -> f32 {
    a.iter().flatten().zip(b.iter().flatten()).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
}

/// Sets filter `c` of the conv weight `key` to zero: that channel's pre-BN output is 0 everywhere,
/// so after BN and SiLU it is a constant map.
fn zero_filter(model: &mut YoloModel, key: &str, c: usize) {
    struct Z<'a>(&'a str, usize, &'a Device);
    impl TensorVisitor for Z<'_> {
        fn visit(&mut self, key: &str, mut slot: Slot<'_>) -> Result<(), WeightsError> {
            if key == self.0 {
                let shape = slot.shape();
                let inner: usize = shape[1..].iter().product();
                let mut v = slot.to_vec();
                v[self.1 * inner..(self.1 + 1) * inner].fill(0.0);
                slot.set(v, self.2);
            }
            Ok(())
        }
    }
    let dev = device();
    model.visit_tensors("model", &mut Z(key, c, &dev)).unwrap();
}

/// A plan that removes channel `c` of the space labelled `label` (and what is tied to it).
fn remove_one(pg: &PruneGraph, label: &str, c: usize) -> PrunePlan {
    let space = pg.graph.spaces().iter().find(|s| s.label == label).unwrap_or_else(|| panic!("no space {label}"));
    let mut plan = pg.keep_all();
    plan.keep[pg.groups.unit[space.first + c]] = false;
    plan
}

#[test]
fn reanchoring_keeps_the_function_and_sets_the_measured_statistics() {
    let m = model(1);
    let x = images(2, 4, 64);
    let stats = ActivationStats::measure(&m, [x.clone()], true).unwrap();
    let (anchored, report) = reanchor_bn(&m, &stats, &device()).unwrap();
    assert_eq!(report.bn_layers, 57, "every BN of yolov5n");
    assert!(!report.unfused);
    assert!(report.max_log_std_ratio > 0.1, "random statistics are far from the images'");
    let err = max_abs_diff(&raw(&m, x.clone()), &raw(&anchored, x.clone()));
    assert!(err < 2e-3, "the function is unchanged: max |Δ| = {err}");
    // The running statistics are now the measured ones, and a second re-anchoring is a no-op.
    let t = model_tensors(&anchored).unwrap();
    let mean = &t["model.4.cv1.bn.running_mean"].1;
    for (a, b) in mean.iter().zip(&stats.pre_bn["model.4.cv1"].mean) {
        assert!((*a as f64 - b).abs() < 1e-4 * (1.0 + b.abs()));
    }
    let again = ActivationStats::measure(&anchored, [x], true).unwrap();
    let (_, r2) = reanchor_bn(&anchored, &again, &device()).unwrap();
    assert!(r2.max_log_std_ratio < 1e-3, "already anchored: {}", r2.max_log_std_ratio);
}

#[test]
fn a_fused_model_is_unfused_with_the_same_outputs() {
    let m = model(3);
    let fused = m.clone().fuse();
    assert!(fused.is_fused());
    let x = images(4, 2, 64);
    let stats = ActivationStats::measure(&fused, [x.clone()], true).unwrap();
    let (unfused, report) = reanchor_bn(&fused, &stats, &device()).unwrap();
    assert!(report.unfused && !unfused.is_fused());
    assert_eq!(report.bn_layers, 57);
    let err = max_abs_diff(&raw(&m, x.clone()), &raw(&unfused, x.clone()));
    assert!(err < 2e-3, "max |Δ| = {err}");
    // And it is prunable: the graph's tensors are all there.
    let pg = PruneGraph::new(unfused.arch.as_ref().unwrap(), &[]).unwrap();
    let plan = remove_one(&pg, "model.9.cv1", 0);
    assert!(prune_model(&unfused, &pg, &plan, &device()).is_ok());
}

#[test]
fn a_constant_channel_is_removed_with_no_change_into_bn_and_detect_consumers() {
    // SPPF's cv1 feeds SPPF's cv2 (1×1, BN) through the concat of x and its three max-pools (a
    // constant stays constant under max-pooling); layer 23's output feeds Detect's last conv
    // (1×1, bias). Both removals are exact with compensation and not without.
    for (conv, label, c) in
        [("model.9.cv1.conv.weight", "model.9.cv1", 5), ("model.23.cv3.conv.weight", "model.23.cv3", 7)]
    {
        let mut m = model(5);
        zero_filter(&mut m, conv, c);
        let x = images(6, 2, 64);
        let stats = ActivationStats::measure(&m, [images(7, 4, 64)], false).unwrap();
        let pg = PruneGraph::new(m.arch.as_ref().unwrap(), &[]).unwrap();
        let plan = remove_one(&pg, label, c);
        // SPPF's output itself (layer 9), and Detect's raw outputs.
        let out = |m: &YoloModel| -> Vec<Vec<f32>> {
            if label == "model.9.cv1" {
                vec![
                    m.backbone.forward_all(x.clone())[9]
                        .clone()
                        .into_data()
                        .convert::<f32>()
                        .try_to_vec::<f32>()
                        .unwrap(),
                ]
            } else {
                raw(m, x.clone())
            }
        };
        let full = out(&m);
        let with = out(&prune_model_with(&m, &pg, &plan, Some(&stats), &device()).unwrap());
        let without = out(&prune_model(&m, &pg, &plan, &device()).unwrap());
        let (e_with, e_without) = (max_abs_diff(&full, &with), max_abs_diff(&full, &without));
        assert!(e_with < 1e-4, "{label}: compensated removal changes the output by {e_with}");
        assert!(
            e_without > 100.0 * e_with.max(1e-6),
            "{label}: plain removal must change it ({e_without} vs {e_with})"
        );
    }
}

#[test]
fn compensation_into_a_3x3_consumer_is_exact_away_from_the_border() {
    // model.2.m.0.cv1 (1×1) feeds model.2.m.0.cv2 (3×3, zero padding 1): after removing a
    // constant channel, the bottleneck output (hence layer 2's) is unchanged except on the
    // one-pixel border, where the 3×3 window reads padding instead of the constant.
    let mut m = model(8);
    zero_filter(&mut m, "model.2.m.0.cv1.conv.weight", 3);
    let x = images(9, 1, 64);
    let stats = ActivationStats::measure(&m, [images(10, 2, 64)], false).unwrap();
    let pg = PruneGraph::new(m.arch.as_ref().unwrap(), &[]).unwrap();
    let plan = remove_one(&pg, "model.2.m.0.cv1", 3);
    let pruned = prune_model_with(&m, &pg, &plan, Some(&stats), &device()).unwrap();
    let layer2 = |m: &YoloModel| m.backbone.forward_all(x.clone())[2].clone();
    let (a, b) = (layer2(&m), layer2(&pruned));
    let [_, c, h, w] = a.dims();
    let d = (a - b).abs().into_data().convert::<f32>().try_to_vec::<f32>().unwrap();
    let (mut interior, mut border) = (0.0f32, 0.0f32);
    for ch in 0..c {
        for i in 0..h {
            for j in 0..w {
                let v = d[(ch * h + i) * w + j];
                if i == 0 || j == 0 || i == h - 1 || j == w - 1 {
                    border = border.max(v);
                } else {
                    interior = interior.max(v);
                }
            }
        }
    }
    assert!(interior < 1e-4, "interior max |Δ| = {interior}");
    assert!(border > 10.0 * interior.max(1e-6), "the border effect is real: {border}");
}

#[test]
fn the_activation_criterion_ranks_a_constant_channel_last_only_when_compensated() {
    let mut m = model(11);
    // A dead filter with a large BN offset: a big constant signal.
    zero_filter(&mut m, "model.9.cv1.conv.weight", 2);
    let stats = ActivationStats::measure(&m, [images(12, 2, 64)], false).unwrap();
    let pg = PruneGraph::new(m.arch.as_ref().unwrap(), &[]).unwrap();
    let t = model_tensors(&m).unwrap();
    let space = pg.graph.spaces().iter().find(|s| s.label == "model.9.cv1").unwrap();
    let unit = pg.groups.unit[space.first + 2];
    let units: Vec<usize> = (0..space.width).map(|i| pg.groups.unit[space.first + i]).collect();
    let dev = device();
    let act = |compensated| {
        let data = ScoreData { stats: Some(&stats), compensated, ..Default::default() };
        scores(&pg, &t, Criterion::Activation, data, &dev).unwrap()
    };
    let comp = act(true);
    assert!(comp[unit] < 1e-9, "a constant loses nothing once replaced by its mean: {}", comp[unit]);
    let zeroed = act(false);
    assert!(zeroed[unit] > 0.0, "zeroed, a constant loses its mean²");
    assert!(units.iter().all(|&u| zeroed[u] >= comp[u]), "E[x²] ≥ var");
    // Without statistics the criterion is an error, not a silent zero.
    assert!(scores(&pg, &t, Criterion::Activation, ScoreData::default(), &dev).is_err());
    // The group criterion sees the consumers too: zeroing a producer's filter does not zero it.
    let group = scores(&pg, &t, Criterion::Group, ScoreData::default(), &dev).unwrap();
    assert!(group[unit] > 0.0);
    let l1 = scores(&pg, &t, Criterion::L1, ScoreData::default(), &dev).unwrap();
    assert_eq!(l1[unit], 0.0);
}

fn synth_loader(images: usize) -> yolo_compress_data::loader::Loader {
    use yolo_compress_data::loader::{Loader, LoaderConfig};
    use yolo_compress_data::synth::{Split, SynthConfig, SynthSource};
    let cfg = SynthConfig {
        images,
        val: images,
        classes: 2,
        imgsz: 64,
        min_size: 12.0,
        max_objects: 3,
        ..SynthConfig::default()
    };
    let source = std::sync::Arc::new(SynthSource::new(cfg, Split::Train).unwrap());
    Loader::new(source, LoaderConfig { workers: 1, ..LoaderConfig::val(64, 4) }, &device()).unwrap()
}

#[test]
fn the_pipeline_prunes_a_fused_model_in_steps_to_the_target() {
    use yolo_compress_compress::prune::{Method, PruneConfig, PruneData, Scope, prune};
    let fused = model(13).fuse();
    let loader = synth_loader(8);
    let data = PruneData { train: &loader, eval: &loader, calib: None };
    let cfg = PruneConfig {
        method: Method::Act,
        scope: Scope::Cost,
        target: 0.6,
        steps: 2,
        imgsz: 64,
        bn_batches: 1,
        calib_images: 8,
        ..PruneConfig::default()
    };
    let out = prune(&fused, &cfg, &data, &device(), &mut |_| {}).unwrap();
    let r = out.reanchor.as_ref().expect("a fused model is always re-anchored");
    assert!(r.unfused && r.bn_layers == 57);
    assert!(!out.model.is_fused());
    assert_eq!(out.step_fractions.len(), 2);
    // Each step aims at target^(k/steps) of the original FLOPs and lands at or below it.
    assert!(out.step_fractions[0] <= 0.6f64.sqrt() + 1e-9 && out.step_fractions[0] > 0.6, "{:?}", out.step_fractions);
    assert!(out.flops_fraction <= 0.6 + 1e-9 && out.flops_fraction > 0.5, "{}", out.flops_fraction);
    let full = fused.arch.as_ref().unwrap().macs(64, 64);
    let got = out.model.arch.as_ref().unwrap().macs(64, 64) / full;
    assert!((got - out.flops_fraction).abs() < 1e-12);
    assert!(prune(&fused, &PruneConfig { steps: 0, ..cfg }, &data, &device(), &mut |_| {}).is_err());
}

/// Makes channel `to` of the `Conv` block `prefix` an exact copy of channel `from` (filter and BN).
fn copy_channel(model: &mut YoloModel, prefix: &str, from: usize, to: usize) {
    struct C<'a>(&'a str, usize, usize, &'a Device);
    impl TensorVisitor for C<'_> {
        fn visit(&mut self, key: &str, mut slot: Slot<'_>) -> Result<(), WeightsError> {
            let Some(rest) = key.strip_prefix(self.0) else { return Ok(()) };
            if ![".conv.weight", ".bn.weight", ".bn.bias", ".bn.running_mean", ".bn.running_var"].contains(&rest) {
                return Ok(());
            }
            let shape = slot.shape();
            let inner: usize = shape[1..].iter().product();
            let mut v = slot.to_vec();
            let row: Vec<f32> = v[self.1 * inner..(self.1 + 1) * inner].to_vec();
            v[self.2 * inner..(self.2 + 1) * inner].copy_from_slice(&row);
            slot.set(v, self.3);
            Ok(())
        }
    }
    let dev = device();
    model.visit_tensors("model", &mut C(prefix, from, to, &dev)).unwrap();
}

#[test]
fn linear_compensation_recovers_a_channel_the_kept_ones_explain() {
    // Channel 6 of SPPF's cv1 duplicates channel 1: its least-squares prediction from the kept
    // channels is exact, so removing it with linear compensation leaves SPPF's output unchanged
    // (up to the ridge), while the mean alone loses its whole variation.
    let mut m = model(14);
    copy_channel(&mut m, "model.9.cv1", 1, 6);
    let x = images(15, 2, 64);
    let calib = [images(16, 4, 64)];
    let mean_stats = ActivationStats::measure(&m, calib.clone(), false).unwrap();
    let lin_stats = ActivationStats::measure_with(&m, calib, false, true).unwrap();
    assert!(lin_stats.covariance && !mean_stats.covariance);
    let pg = PruneGraph::new(m.arch.as_ref().unwrap(), &[]).unwrap();
    let plan = remove_one(&pg, "model.9.cv1", 6);
    let sppf = |m: &YoloModel| {
        vec![m.backbone.forward_all(x.clone())[9].clone().into_data().convert::<f32>().try_to_vec::<f32>().unwrap()]
    };
    let full = sppf(&m);
    let e_mean = max_abs_diff(&full, &sppf(&prune_model_with(&m, &pg, &plan, Some(&mean_stats), &device()).unwrap()));
    let e_lin = max_abs_diff(&full, &sppf(&prune_model_with(&m, &pg, &plan, Some(&lin_stats), &device()).unwrap()));
    assert!(e_lin < 0.02 * e_mean, "linear {e_lin} vs mean {e_mean}");
}
