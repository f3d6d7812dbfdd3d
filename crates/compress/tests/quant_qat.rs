//! Quantization-aware training on a tiny YOLOv5 (yolov5n at half its width, 64 px) and tiny
//! synthetic data: the loss falls, gradients pass the fake quantizers, BN statistics and activation
//! observers update exactly when they should, and `qat` returns a frozen inference model and writes
//! its run folder.

use std::path::Path;
use std::sync::Arc;

use burn::module::Module;
use burn::prelude::*;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use yolo_compress_compress::QuantError;
use yolo_compress_compress::quant::calibrate::loader_images;
use yolo_compress_compress::quant::checkpoint::load_int8;
use yolo_compress_compress::quant::qat::{QAT_RESULTS_COLUMNS, QatConfig, QatEpoch, QatOptimizer, QatStepper, qat};
use yolo_compress_compress::quant::{ActQuant, ObserverConfig, QuantConfig, QuantModel, calibrated};
use yolo_compress_data::loader::{Batch, Loader, LoaderConfig};
use yolo_compress_data::synth::{Split, SynthConfig, SynthSource};
use yolo_compress_model::arch::{builtin_yaml, parse_model_yaml};
use yolo_compress_model::state::{NamedTensors, Slot, TensorVisitor};
use yolo_compress_model::{DetectionModel, WeightsError, YoloModel};
use yolo_compress_train::adaptive_bn::adaptive_bn;

const IMGSZ: u32 = 64;

fn synth(split: Split, images: usize) -> Arc<SynthSource> {
    let cfg = SynthConfig {
        images,
        val: images,
        classes: 2,
        imgsz: IMGSZ,
        min_size: 12.0,
        max_objects: 3,
        ..SynthConfig::default()
    };
    Arc::new(SynthSource::new(cfg, split).unwrap())
}

fn train_loader(images: usize, batch: usize) -> Loader {
    let cfg = LoaderConfig { workers: 1, ..LoaderConfig::train(IMGSZ, batch) };
    Loader::new(synth(Split::Train, images), cfg, &Device::flex()).unwrap()
}

fn val_loader() -> Loader {
    let cfg = LoaderConfig { workers: 1, ..LoaderConfig::val(IMGSZ, 4) };
    Loader::new(synth(Split::Val, 4), cfg, &Device::flex()).unwrap()
}

/// Kaiming-uniform conv weights (bound `1/√fan_in`) from a seeded RNG and zero conv biases, so
/// that every test starts from the same model whatever the order the tests run in (Burn's own
/// initialisation draws from a process-wide RNG shared by the parallel tests).
fn seeded_init(model: &mut YoloModel, seed: u64) {
    struct Init(ChaCha8Rng);
    impl TensorVisitor for Init {
        fn visit(&mut self, key: &str, mut slot: Slot<'_>) -> Result<(), WeightsError> {
            let shape = slot.shape();
            let n: usize = shape.iter().product();
            let values = match &slot {
                Slot::Param4(_) => {
                    let bound = 1.0 / ((shape[1] * shape[2] * shape[3]) as f32).sqrt();
                    (0..n).map(|_| self.0.random_range(-bound..bound)).collect()
                }
                Slot::Param1(_) if key.ends_with("conv.bias") || key.contains(".m.") && key.ends_with(".bias") => {
                    vec![0.0; n]
                }
                _ => return Ok(()),
            };
            slot.set(values, &Device::flex());
            Ok(())
        }
    }
    model.visit_tensors("model", &mut Init(ChaCha8Rng::seed_from_u64(seed))).unwrap();
}

/// yolov5n at width multiple 0.125 (channels 8 … 128), 2 classes, calibrated on `loader` and
/// quantized with the default selection; BN not folded.
fn start(loader: &Loader) -> QuantModel {
    let text = builtin_yaml("yolov5n").unwrap().replace("width_multiple: 0.25", "width_multiple: 0.125");
    let arch = parse_model_yaml(&text, "tiny").unwrap().with_classes(vec!["circle".into(), "rectangle".into()]);
    let mut model = arch.build(&Device::flex()).unwrap();
    seeded_init(&mut model, 7);
    // Running statistics that describe the data (a fresh model's mean 0 / variance 1 do not, and
    // ranges calibrated with them do not fit the batch-statistics forward of QAT).
    let (model, _) = adaptive_bn(model, loader, 2, &Device::flex()).unwrap();
    let float = QuantModel::from_model(&model).unwrap();
    let qcfg = QuantConfig { calib: ObserverConfig::default(), ..QuantConfig::default() };
    let q = calibrated(float, loader_images(loader, 8).unwrap(), &qcfg).unwrap();
    assert!(q.convs.iter().any(|c| c.quantized) && !q.acts.is_empty());
    q
}

fn first_batch(loader: &Loader) -> Batch {
    loader.epoch(0).next().unwrap().unwrap()
}

fn ad() -> Device {
    Device::flex().autodiff()
}

fn host<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.without_autodiff().into_data().convert::<f32>().try_to_vec::<f32>().unwrap()
}

/// Running mean and variance of every BN, committed (`value_sync`: Burn keeps the last update of
/// a thread pending).
fn bn_stats(m: &QuantModel) -> Vec<f32> {
    m.convs
        .iter()
        .filter_map(|c| c.bn.as_ref())
        .flat_map(|bn| [host(bn.running_mean.value_sync()), host(bn.running_var.value_sync())].concat())
        .collect()
}

fn act_ranges(m: &QuantModel) -> Vec<[f32; 2]> {
    m.acts
        .iter()
        .map(|a| {
            let _ = a.range.value_sync();
            let (lo, hi) = a.host_range();
            [lo, hi]
        })
        .collect()
}

fn weights(m: &QuantModel) -> Vec<f32> {
    m.convs.iter().flat_map(|c| host(c.conv.weight.val())).collect()
}

#[test]
fn loss_decreases_over_steps_on_a_fixed_batch() {
    let loader = train_loader(8, 4);
    let batch = first_batch(&loader);
    let cfg = QatConfig { optimizer: QatOptimizer::Adam, weight_decay: 0.0, ..Default::default() };
    let mut m = start(&loader).fork(&ad()).train().with_bn_frozen(false).with_observers(Some(0.01));
    let mut stepper = QatStepper::new(&m, &cfg, IMGSZ, 4);
    let mut losses = Vec::new();
    for _ in 0..20 {
        let (next, items) = stepper.step(m, batch.images.clone(), &batch.target_rows, 1e-3).unwrap();
        m = next;
        losses.push(items.iter().sum::<f32>());
    }
    assert_eq!(stepper.steps(), 20);
    assert!(losses.iter().all(|l| l.is_finite()), "{losses:?}");
    // Means over a few steps: single steps jitter (batch-statistics BN, EMA observers).
    let first = losses[..3].iter().sum::<f32>() / 3.0;
    let last = losses[15..].iter().sum::<f32>() / 5.0;
    assert!(last < 0.9 * first, "loss did not decrease: {losses:?}");
}

#[test]
fn gradients_pass_the_fake_quantizers_to_weights_and_bn() {
    let loader = train_loader(4, 4);
    let batch = first_batch(&loader);
    let start = start(&loader);
    for bn_frozen in [false, true] {
        let m = start.clone().fork(&ad()).train().with_bn_frozen(bn_frozen);
        let stepper = QatStepper::new(&m, &QatConfig::default(), IMGSZ, 4);
        let (items, grads) = stepper.loss_and_grads(&m, batch.images.clone(), &batch.target_rows).unwrap();
        assert!(items.iter().all(|v| v.is_finite() && *v >= 0.0), "{items:?}");
        let mut quantized = 0;
        for c in m.convs.iter().filter(|c| c.quantized) {
            quantized += 1;
            let g = host(grads.get::<4>(c.conv.weight.id).unwrap_or_else(|| panic!("{}: no weight gradient", c.name)));
            assert!(g.iter().all(|v| v.is_finite()), "{}", c.name);
            // Rounding has a zero derivative: a non-zero gradient is the STE's.
            assert!(g.iter().any(|v| *v != 0.0), "{}: zero weight gradient (bn_frozen {bn_frozen})", c.name);
            let bn = c.bn.as_ref().expect("QAT keeps BN unfolded");
            for (what, p) in [("gamma", &bn.gamma), ("beta", &bn.beta)] {
                let g = host(grads.get::<1>(p.id).unwrap_or_else(|| panic!("{}: no BN {what} gradient", c.name)));
                assert!(g.iter().any(|v| *v != 0.0), "{}: zero BN {what} gradient", c.name);
            }
        }
        assert!(quantized > 10, "{quantized} quantized convs");
    }
}

#[test]
fn bn_statistics_update_only_while_unfrozen() {
    let loader = train_loader(4, 4);
    let batch = first_batch(&loader);
    let start = start(&loader);
    let cfg = QatConfig::default();
    for bn_frozen in [true, false] {
        let m = start.clone().fork(&ad()).train().with_bn_frozen(bn_frozen).with_observers(None);
        let (stats0, w0) = (bn_stats(&m), weights(&m));
        let mut stepper = QatStepper::new(&m, &cfg, IMGSZ, 4);
        let (m, _) = stepper.step(m, batch.images.clone(), &batch.target_rows, 1e-3).unwrap();
        assert_ne!(weights(&m), w0, "the step changed no weight");
        let stats1 = bn_stats(&m);
        if bn_frozen {
            assert_eq!(stats1, stats0, "frozen BN statistics changed");
        } else {
            let changed = stats0.iter().zip(&stats1).filter(|(a, b)| a != b).count();
            assert!(changed > stats0.len() / 2, "only {changed} of {} running statistics moved", stats0.len());
        }
    }
}

#[test]
fn observers_move_ranges_towards_the_batch_only_when_active_and_training() {
    let loader = train_loader(4, 4);
    let batch = first_batch(&loader);
    let images = batch.images.clone().autodiff();
    let mut base = start(&loader).fork(&ad()).train();
    // Tiny ranges, so every batch's min/max lies outside them.
    base.acts = base.acts.iter().map(|_| ActQuant::new(-1e-3, 1e-3, &ad())).collect();
    let tiny = act_ranges(&base);

    // Frozen observers: a full training step leaves every range as it was.
    let m = base.clone().with_bn_frozen(false).with_observers(None);
    let mut stepper = QatStepper::new(&m, &QatConfig::default(), IMGSZ, 4);
    let (m, _) = stepper.step(m, batch.images.clone(), &batch.target_rows, 1e-3).unwrap();
    assert_eq!(act_ranges(&m), tiny);

    // Eval copy with observers switched on: no update off the autodiff device.
    let eval = base.valid().with_observers(Some(0.5));
    let _ = eval.forward_raw(batch.images.clone());
    assert_eq!(act_ranges(&eval), tiny);

    // Active observers: one training forward pass widens every range towards the batch min/max.
    let m = base.clone().with_observers(Some(0.5));
    let _ = m.forward_raw(images.clone());
    let moved = act_ranges(&m);
    // Every batch maximum is above 1e-3: every upper end rises (a lower end may rise too, towards
    // a batch minimum above −1e-3, as for the image).
    for (i, (new, old)) in moved.iter().zip(&tiny).enumerate() {
        assert!(new[1] > old[1], "quantizer {i}: {old:?} → {new:?}");
    }
    let widened = moved.iter().zip(&tiny).filter(|(n, o)| n[1] - n[0] > 10.0 * (o[1] - o[0])).count();
    assert!(widened > moved.len() / 2, "only {widened} of {} ranges widened", moved.len());
    // The image's quantizer is exact: new = (1 − m)·old + m·[min, max].
    let g = m.placement.group[0].expect("the image is quantized");
    assert_eq!(m.placement.members[g], [0], "the image has a quantizer of its own");
    let px = host(images);
    let (lo, hi) = px.iter().fold((f32::MAX, f32::MIN), |(a, b), &v| (a.min(v), b.max(v)));
    let want = [0.5 * -1e-3 + 0.5 * lo, 0.5 * 1e-3 + 0.5 * hi];
    assert!((moved[g][0] - want[0]).abs() < 1e-6 && (moved[g][1] - want[1]).abs() < 1e-6, "{:?} vs {want:?}", moved[g]);
}

/// The largest relative difference `|a − b| / max(|a|, 1)` of the raw outputs of `a` and `b` on `x`.
fn max_rel_diff(a: &QuantModel, b: &QuantModel, x: Tensor<4>) -> f32 {
    let (ra, rb) = (a.forward_raw(x.clone()), b.forward_raw(x));
    assert_eq!(ra.len(), rb.len());
    let mut worst = 0.0f32;
    for (ta, tb) in ra.into_iter().zip(rb) {
        let (va, vb) = (host(ta), host(tb));
        assert_eq!(va.len(), vb.len());
        for (&p, &q) in va.iter().zip(&vb) {
            worst = worst.max((p - q).abs() / p.abs().max(1.0));
        }
    }
    worst
}

/// Raw outputs of `a` and `b` on `x` agree within 1e-4 relative (int8 checkpoint round trip).
fn assert_same_outputs(a: &QuantModel, b: &QuantModel, x: Tensor<4>, what: &str) {
    let d = max_rel_diff(a, b, x);
    assert!(d <= 1e-4, "{what}: relative difference {d}");
}

/// `results.csv` of `dir`: the header, then one row per epoch whose figures are `epochs`'.
fn check_results_csv(dir: &Path, epochs: &[QatEpoch]) {
    let text = std::fs::read_to_string(dir.join("results.csv")).unwrap();
    let rows: Vec<Vec<&str>> = text.lines().map(|l| l.split(',').map(str::trim).collect()).collect();
    assert_eq!(rows.len(), 1 + epochs.len(), "{text}");
    assert_eq!(rows[0], QAT_RESULTS_COLUMNS);
    let col = |name: &str| QAT_RESULTS_COLUMNS.iter().position(|c| *c == name).unwrap();
    for (row, e) in rows[1..].iter().zip(epochs) {
        let num = |name: &str| row[col(name)].parse::<f64>().unwrap_or_else(|_| panic!("{name}: {row:?}"));
        assert_eq!(num("epoch") as usize, e.epoch);
        // `%.5g`: five significant digits, a relative error below 5e-5.
        for (name, want) in [("metrics/mAP_0.5", e.map50.unwrap()), ("metrics/mAP_0.5:0.95", e.map50_95.unwrap())] {
            assert!((num(name) - want).abs() <= 5e-5 * want.abs() + 1e-12, "{name}: {row:?} vs {e:?}");
        }
        assert!((num("train/box_loss") - f64::from(e.loss[0])).abs() <= 1e-4 * f64::from(e.loss[0]).max(1.0));
        assert_eq!(num("bn_frozen") == 1.0, e.bn_frozen);
        assert_eq!(num("observers_frozen") == 1.0, e.observers_frozen);
        assert!(num("x/lr0") > 0.0);
    }
}

#[test]
fn qat_returns_a_frozen_inference_model_and_writes_its_run_folder() {
    let tmp = tempfile::tempdir().unwrap();
    let run_dir = tmp.path().join("runs").join("exp");
    let loader = train_loader(8, 4);
    let val = val_loader();
    let start = start(&loader);
    let w0 = weights(&start);
    let ranges0 = act_ranges(&start);
    let cfg = QatConfig {
        epochs: 2,
        lr: 1e-3,
        warmup_steps: 0,
        freeze_bn_after: Some(1),
        freeze_observers_after: Some(1),
        observer_momentum: 0.1,
        max_batches: Some(2),
        run_dir: Some(run_dir.clone()),
        ..Default::default()
    };
    let out = qat(start, &loader, Some(&val), &cfg, &Device::flex()).unwrap();
    assert_eq!(out.epochs.len(), 2);
    assert_eq!(out.run_dir.as_deref(), Some(run_dir.as_path()));

    // The run folder: args.yaml (the config), results.csv (the returned figures), the checkpoints.
    let args = std::fs::read_to_string(run_dir.join("args.yaml")).unwrap();
    assert!(args.contains("epochs: 2") && args.contains("max_batches: 2"), "{args}");
    check_results_csv(&run_dir, &out.epochs);
    let x = first_batch(&val).images;
    let folded = out.model.clone().fold_bn();
    let (last, meta) = load_int8(&run_dir.join("weights/last.safetensors"), &Device::flex()).unwrap();
    assert_eq!(meta.get("epoch").map(String::as_str), Some("1"));
    assert_eq!(last.quantized(), folded.quantized());
    let (best, meta) = load_int8(&run_dir.join("weights/best.safetensors"), &Device::flex()).unwrap();
    assert_eq!(meta.get("epoch"), Some(&out.best_epoch.to_string()), "best.safetensors is the returned epoch");
    assert_same_outputs(&best, &folded, x.clone(), "best.safetensors vs the returned model");
    if out.best_epoch == 1 {
        assert_same_outputs(&last, &folded, x.clone(), "last.safetensors vs the returned (last) model");
    } else {
        // Epoch 1 overwrote last.safetensors with a model that trained one epoch longer.
        assert!(max_rel_diff(&last, &best, x.clone()) > 1e-4, "last.safetensors still holds epoch 0");
    }
    assert!(
        std::fs::read_dir(run_dir.join("weights")).unwrap().all(|f| {
            let name = f.unwrap().file_name();
            name == "last.safetensors" || name == "best.safetensors"
        }),
        "no temporary file is left behind"
    );

    assert!(!out.epochs[0].bn_frozen && !out.epochs[0].observers_frozen);
    assert!(out.epochs[1].bn_frozen && out.epochs[1].observers_frozen);
    for e in &out.epochs {
        assert!(e.loss.iter().all(|v| v.is_finite() && *v >= 0.0), "{e:?}");
        let (a, b) = (e.map50.unwrap(), e.map50_95.unwrap());
        assert!((0.0..=1.0).contains(&a) && (0.0..=1.0).contains(&b) && b <= a + 1e-12, "{e:?}");
    }
    assert!(out.best_epoch < 2);
    let m = out.model;
    assert!(!m.convs[0].conv.weight.val().is_autodiff(), "the returned model is on a plain device");
    assert!(m.convs.iter().all(|c| c.bn_frozen) && m.observer_momentum.is_none());
    assert!(m.acts.iter().all(|a| a.learned.is_none()));
    assert_ne!(weights(&m), w0, "QAT changed no weight");
    assert_ne!(act_ranges(&m), ranges0, "the observers of epoch 0 moved no range");
    // Inference is deterministic and updates nothing.
    let (ranges, stats) = (act_ranges(&m), bn_stats(&m));
    let a = host(m.forward(x.clone()).decoded);
    let b = host(m.forward(x).decoded);
    assert_eq!(a, b);
    assert_eq!(act_ranges(&m), ranges);
    assert_eq!(bn_stats(&m), stats);
}

#[test]
fn learnable_ranges_train_and_are_written_back() {
    let loader = train_loader(4, 4);
    let start = start(&loader);
    let ranges0 = act_ranges(&start);
    let tmp = tempfile::tempdir().unwrap();
    let run_dir = tmp.path().join("lsq");
    let cfg = QatConfig {
        epochs: 1,
        lr: 1e-2,
        warmup_steps: 0,
        learnable_ranges: true,
        run_dir: Some(run_dir.clone()),
        ..Default::default()
    };
    let out = qat(start, &loader, None, &cfg, &Device::flex()).unwrap();
    assert!(out.epochs[0].observers_frozen && out.epochs[0].map50.is_none());
    let m = out.model;
    // Without validation: last.safetensors is the returned model (learned ranges included), and
    // there is no best.safetensors.
    let (last, _) = load_int8(&run_dir.join("weights/last.safetensors"), &Device::flex()).unwrap();
    assert_same_outputs(&last, &m.clone().fold_bn(), first_batch(&loader).images, "last.safetensors (no val)");
    assert!(!run_dir.join("weights/best.safetensors").exists(), "best.safetensors needs validation");
    let csv = std::fs::read_to_string(run_dir.join("results.csv")).unwrap();
    assert_eq!(csv.lines().count(), 2, "{csv}");
    assert!(m.acts.iter().all(|a| a.learned.is_none()), "learned ranges are written back into `range`");
    let ranges = act_ranges(&m);
    let moved = ranges.iter().zip(&ranges0).filter(|(a, b)| a != b).count();
    assert!(moved > ranges.len() / 2, "only {moved} of {} learned ranges moved", ranges.len());
    // The ranges moved by about lr per step (Adam), not wildly.
    for (a, b) in ranges.iter().zip(&ranges0) {
        assert!((a[0] - b[0]).abs() < 0.1 && (a[1] - b[1]).abs() < 0.1, "{b:?} → {a:?}");
    }
    assert!(m.num_params() > 0);
}

#[test]
fn invalid_settings_and_empty_loaders_are_option_errors() {
    let loader = train_loader(4, 4);
    let start = start(&loader);
    let device = Device::flex();
    fn name_of<T>(r: Result<T, QuantError>) -> &'static str {
        match r {
            Err(QuantError::Option { name, .. }) => name,
            Err(e) => panic!("unexpected error {e}"),
            Ok(_) => panic!("accepted"),
        }
    }
    let epochs0 = QatConfig { epochs: 0, ..Default::default() };
    assert_eq!(name_of(qat(start.clone(), &loader, None, &epochs0, &device)), "epochs");
    let lr0 = QatConfig { lr: 0.0, ..Default::default() };
    assert_eq!(name_of(qat(start.clone(), &loader, None, &lr0, &device)), "lr");
    // Two images with batch 4 and drop_last: no batch at all.
    let cfg = LoaderConfig { drop_last: true, workers: 0, ..LoaderConfig::train(IMGSZ, 4) };
    let empty = Loader::new(synth(Split::Train, 2), cfg, &device).unwrap();
    assert!(empty.is_empty());
    assert_eq!(name_of(qat(start.clone(), &empty, None, &QatConfig::default(), &device)), "train");
    // A stepper refuses a model off the autodiff device.
    let stepper = QatStepper::new(&start, &QatConfig::default(), IMGSZ, 4);
    let batch = first_batch(&loader);
    assert_eq!(name_of(stepper.loss_and_grads(&start, batch.images, &batch.target_rows).map(|_| ())), "device");
}
