//! Network-slimming sparsity training (`TrainConfig::sparsity`): the L1 subgradient `s·sign(γ)` is
//! added to the gradients of BN weights only, once per optimizer step, so that one SGD step without
//! momentum moves every γ by exactly `−lr·s·sign(γ)` more than a run without the penalty and leaves
//! every other tensor where it was.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use burn::module::Module;
use burn::prelude::*;
use burn::tensor::Distribution;
use yolo_compress_data::synth::{Split, SynthConfig, SynthSource};
use yolo_compress_model::state::{NamedTensors, Slot, TensorVisitor};
use yolo_compress_model::weights::read_checkpoint;
use yolo_compress_model::{Architecture, WeightsError, YoloModel};
use yolo_compress_train::loss::{YoloLoss, YoloLossConfig};
use yolo_compress_train::optim::{ParamGroup, Warmup, clip_grad_norm, named_params, param_group};
use yolo_compress_train::trainer::fit::add_bn_sparsity_grad;
use yolo_compress_train::trainer::{TrainConfig, TrainData, loss_and_grads, train};

/// yolov5n with BN weights of both signs (the default init has γ = 1 everywhere).
fn model() -> YoloModel {
    struct Signs(usize);
    impl TensorVisitor for Signs {
        fn visit(&mut self, key: &str, mut slot: Slot<'_>) -> Result<(), WeightsError> {
            let shape = slot.shape();
            if slot.is_param() && param_group(key, shape.len()) == ParamGroup::BnWeight {
                let v = (0..shape[0])
                    .map(|_| {
                        self.0 += 1;
                        let sign = if self.0.is_multiple_of(3) { -1.0 } else { 1.0 };
                        sign * (0.5 + 0.01 * (self.0 % 17) as f32)
                    })
                    .collect();
                slot.set(v, &Device::flex());
            }
            Ok(())
        }
    }
    let mut m = Architecture::from_name_or_path("yolov5n.yaml")
        .unwrap()
        .with_classes(vec!["circle".into(), "rectangle".into()])
        .build(&Device::flex())
        .unwrap();
    m.visit_tensors("model", &mut Signs(0)).unwrap();
    m
}

fn values<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.into_data().try_into_vec_as::<f32>().unwrap()
}

#[test]
fn the_penalty_goes_to_bn_weight_gradients_only() {
    let s = 0.01;
    let ad = Device::flex().autodiff();
    let mut model = model().fork(&ad).train();
    let hyp = yolo_compress_data::augment::Hyp::default();
    let loss_fn = YoloLoss::new(YoloLossConfig::from_hyp(&hyp, 2, 3, 64, 0.0), &model.detect);
    let images = Tensor::<4>::random([2, 3, 64, 64], Distribution::Default, &ad);
    let targets = [[0.0, 1.0, 0.5, 0.5, 0.3, 0.2], [1.0, 0.0, 0.3, 0.6, 0.2, 0.4]];
    let (_, mut grads) = loss_and_grads(&model, &loss_fn, images, &targets);
    let params = named_params(&mut model);
    let grad = |grads: &burn::optim::GradientsParams, id, rank| match rank {
        1 => grads.get::<1>(id).map(values),
        _ => grads.get::<4>(id).map(values),
    };
    let before: Vec<Option<Vec<f32>>> = params.iter().map(|p| grad(&grads, p.id, p.rank)).collect();
    let gamma: BTreeMap<String, Vec<f32>> = {
        let mut col = yolo_compress_model::state::Collector::default();
        model.clone().visit_tensors("model", &mut col).unwrap();
        col.tensors.into_iter().map(|(k, _, v)| (k, v)).collect()
    };
    let norm_before = clip_grad_norm(&mut model, &mut grads, f64::INFINITY);
    assert_eq!(add_bn_sparsity_grad(&mut model, &mut grads, s), 57);
    let mut seen = 0;
    for (p, b) in params.iter().zip(before) {
        let (a, b) = (grad(&grads, p.id, p.rank).unwrap(), b.unwrap());
        if p.group == ParamGroup::BnWeight {
            seen += 1;
            for ((a, b), g) in a.iter().zip(&b).zip(&gamma[&p.key]) {
                let want = s as f32 * g.signum();
                assert!((a - b - want).abs() <= 1e-6 * (1.0 + b.abs()), "{}: {a} − {b} ≠ {want}", p.key);
            }
        } else {
            assert_eq!(a, b, "{} changed", p.key);
        }
    }
    assert_eq!(seen, 57);
    eprintln!("gradient norm before the penalty: {norm_before:.3}");
}

fn data() -> TrainData {
    let cfg = SynthConfig {
        images: 4,
        val: 0,
        classes: 2,
        imgsz: 64,
        min_size: 12.0,
        max_objects: 3,
        ..SynthConfig::default()
    };
    TrainData {
        train: Arc::new(SynthSource::new(cfg, Split::Train).unwrap()),
        val: None,
        names: vec!["circle".into(), "rectangle".into()],
        labels: Vec::new(),
        label_classes: Vec::new(),
    }
}

fn config(project: &Path, sparsity: f64) -> TrainConfig {
    let mut hyp = yolo_compress_data::augment::Hyp::default().without_augmentation();
    // Plain SGD (no momentum at any point of the warmup) and no bias lr at step 0, so that the
    // first step changes nothing and the second is `p ← p − lr·g` with a known lr.
    hyp.lr0 = 0.5;
    hyp.momentum = 0.0;
    hyp.warmup_momentum = 0.0;
    hyp.warmup_bias_lr = 0.0;
    TrainConfig {
        epochs: 1,
        batch_size: 2,
        nbs: 2,
        imgsz: 64,
        workers: 1,
        max_batches: Some(2),
        hyp,
        sparsity,
        noval: true,
        noautoanchor: true,
        noplots: true,
        progress: false,
        verbose: false,
        project: project.to_path_buf(),
        ..TrainConfig::default()
    }
}

/// The raw training weights (`extra/model.*`) of a run's last checkpoint.
fn raw_weights(last: &Path) -> BTreeMap<String, Vec<f32>> {
    let (ck, _) = read_checkpoint(last).unwrap();
    ck.extra.into_iter().filter(|(k, _)| k.starts_with("model.")).map(|(k, (_, v))| (k, v)).collect()
}

#[test]
fn one_sgd_step_moves_bn_weights_by_lr_times_s_sign_gamma() {
    let s = 0.05;
    let tmp = tempfile::tempdir().unwrap();
    let init = model();
    let plain = train(init.valid(), &data(), &config(&tmp.path().join("plain"), 0.0), &Device::flex()).unwrap();
    let slim = train(init.valid(), &data(), &config(&tmp.path().join("slim"), s), &Device::flex()).unwrap();
    let args = std::fs::read_to_string(slim.run_dir.join("args.yaml")).unwrap();
    assert!(args.lines().any(|l| l.trim() == "sparsity: 0.05"), "{args}");

    // Step 0 (ni = 0) has lr 0 in every group; step 1 has the warmup's lr for ni = 1.
    let cfg = config(tmp.path(), s);
    let warmup = Warmup::new(cfg.hyp.warmup_epochs, 2, 0.0, 0.0, 0.0);
    assert_eq!(warmup.lrs(0, cfg.hyp.lr0, 1.0), Some([0.0; 3]));
    let lr = warmup.lrs(1, cfg.hyp.lr0, 1.0).unwrap()[ParamGroup::BnWeight.index()];
    assert!((lr - 0.005).abs() < 1e-12);

    let mut gamma0 = BTreeMap::new();
    {
        let mut col = yolo_compress_model::state::Collector::default();
        init.clone().visit_tensors("model", &mut col).unwrap();
        for (k, shape, v) in col.tensors {
            // Running statistics are rank 1 too; the BN weights are the `*.weight` among them.
            if k.ends_with(".weight") && param_group(&k, shape.len()) == ParamGroup::BnWeight {
                gamma0.insert(k, v);
            }
        }
    }
    let (a, b) = (raw_weights(&plain.last), raw_weights(&slim.last));
    assert_eq!(a.len(), b.len());
    let (mut worst_bn, mut worst_other, mut n_bn) = (0.0f64, 0.0f32, 0);
    for (k, pa) in &a {
        let pb = &b[k];
        match gamma0.get(k) {
            Some(g0) => {
                n_bn += 1;
                for ((x, y), g) in pa.iter().zip(pb).zip(g0) {
                    let want = -lr * s * f64::from(g.signum());
                    worst_bn = worst_bn.max((f64::from(*y) - f64::from(*x) - want).abs());
                }
            }
            None => {
                for (x, y) in pa.iter().zip(pb) {
                    worst_other = worst_other.max((x - y).abs() / (1.0 + x.abs()));
                }
            }
        }
    }
    eprintln!(
        "BN γ step difference off by at most {worst_bn:.2e} (step {:.1e}); other tensors {worst_other:.1e}",
        lr * s
    );
    assert_eq!(n_bn, 57);
    // Each γ is rounded once per run: at most one ulp of |γ| ≤ 1 apart.
    assert!(worst_bn <= 2.4e-7, "{worst_bn}");
    assert!(worst_other <= 1e-6, "{worst_other}");
}
