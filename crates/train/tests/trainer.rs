//! The training loop end to end on tiny in-memory synthetic data (yolov5n, 64 px): it learns,
//! writes ultralytics' run folder, resumes exactly, and stops cleanly on a non-finite loss.

use std::path::Path;
use std::sync::Arc;

use burn::prelude::*;
use yolo_compress_data::SampleSource;
use yolo_compress_data::synth::{Split, SynthConfig, SynthSource};
use yolo_compress_model::Architecture;
use yolo_compress_model::weights::read_checkpoint;
use yolo_compress_train::TrainError;
use yolo_compress_train::autoanchor::ImageLabels;
use yolo_compress_train::trainer::{TrainConfig, TrainData, resume, train};

fn data() -> TrainData {
    let cfg = SynthConfig {
        images: 16,
        val: 8,
        classes: 2,
        imgsz: 64,
        min_size: 12.0,
        max_objects: 3,
        ..SynthConfig::default()
    };
    let train_src = SynthSource::new(cfg.clone(), Split::Train).unwrap();
    let val_src = SynthSource::new(cfg, Split::Val).unwrap();
    let mut labels = Vec::new();
    let mut classes = Vec::new();
    for i in 0..train_src.len() {
        let s = train_src.get(i).unwrap();
        let (w, h) = s.image.dimensions();
        labels.push(ImageLabels {
            width: w,
            height: h,
            boxes_wh: s
                .boxes
                .iter()
                .map(|b| [(b.xyxy[2] - b.xyxy[0]) / w as f32, (b.xyxy[3] - b.xyxy[1]) / h as f32])
                .collect(),
        });
        classes.extend(s.boxes.iter().map(|b| b.class_id));
    }
    TrainData {
        train: Arc::new(train_src),
        val: Some(Arc::new(val_src)),
        names: vec!["circle".into(), "rectangle".into()],
        labels,
        label_classes: classes,
    }
}

fn config(project: &Path, epochs: usize) -> TrainConfig {
    TrainConfig {
        epochs,
        batch_size: 4,
        imgsz: 64,
        workers: 1,
        max_batches: Some(2),
        project: project.to_path_buf(),
        noplots: true,
        progress: false,
        verbose: false,
        ..TrainConfig::default()
    }
}

fn model() -> yolo_compress_model::YoloModel {
    Architecture::from_name_or_path("yolov5n.yaml")
        .unwrap()
        .with_classes(vec!["circle".into(), "rectangle".into()])
        .build(&Device::flex())
        .unwrap()
}

fn tensors(path: &Path) -> Vec<(String, Vec<f32>)> {
    let (ck, sd) = read_checkpoint(path).unwrap();
    let mut v: Vec<(String, Vec<f32>)> = sd.tensors.into_iter().map(|(k, (_, t))| (k, t)).collect();
    v.extend(ck.extra.into_iter().map(|(k, (_, t))| (format!("extra/{k}"), t)));
    v.sort_by(|a, b| a.0.cmp(&b.0));
    v
}

#[test]
fn run_folder_matches_ultralytics_layout_and_resume_is_exact() {
    let tmp = tempfile::tempdir().unwrap();
    let device = Device::flex();
    let data = data();

    // Uninterrupted: 3 epochs. Both runs start from the same initial weights (independent copies).
    let init = model();
    let full = train(init.valid(), &data, &config(&tmp.path().join("a"), 3), &device).unwrap();
    assert_eq!(full.epochs_done, 3);
    assert_eq!(full.run_dir, tmp.path().join("a/exp"));
    for f in ["args.yaml", "hyp.yaml", "results.csv", "weights/last.safetensors", "weights/best.safetensors"] {
        assert!(full.run_dir.join(f).is_file(), "{f} missing");
    }
    let csv = std::fs::read_to_string(full.run_dir.join("results.csv")).unwrap();
    let rows: Vec<Vec<String>> = csv.lines().map(|l| l.split(',').map(|f| f.trim().to_string()).collect()).collect();
    assert_eq!(rows.len(), 4);
    assert_eq!(rows[0][0], "epoch");
    assert_eq!(rows[0][7], "metrics/mAP_0.5:0.95");
    assert_eq!(rows[3][0], "2");
    // Warmup: the bias lr (x/lr0) falls from warmup_bias_lr while the others rise from 0.
    let lr = |r: usize, c: usize| rows[r][c].parse::<f64>().unwrap();
    assert!(lr(1, 11) > lr(3, 11) && lr(1, 12) < lr(3, 12), "{csv}");
    // best is the epoch with the highest fitness; its metadata says so.
    let fitness: Vec<f64> = (1..4).map(|r| 0.1 * lr(r, 6) + 0.9 * lr(r, 7)).collect();
    let best_epoch = (0..3).fold(0, |b, e| if fitness[e] > fitness[b] { e } else { b });
    let (best_ck, _) = read_checkpoint(&full.best).unwrap();
    assert!(best_ck.metadata["train_progress"].contains(&format!("\"best_epoch\":{best_epoch}")));

    // Interrupted after 1 epoch, then resumed to 3.
    let mut cfg = config(&tmp.path().join("b"), 3);
    cfg.stop_after = Some(1);
    let first = train(init.valid(), &data, &cfg, &device).unwrap();
    assert_eq!(first.epochs_done, 1);
    let resumed = resume(&first.last, &data, &device, None).unwrap();
    assert_eq!(resumed.epochs_done, 3);
    assert_eq!(resumed.run_dir, first.run_dir);
    let csv_b = std::fs::read_to_string(resumed.run_dir.join("results.csv")).unwrap();
    assert_eq!(csv_b.lines().count(), 4, "{csv_b}");

    let a = tensors(&full.last);
    let b = tensors(&resumed.last);
    assert_eq!(a.len(), b.len());
    let mut worst = 0.0f32;
    for ((ka, va), (kb, vb)) in a.iter().zip(&b) {
        assert_eq!(ka, kb);
        for (x, y) in va.iter().zip(vb) {
            worst = worst.max((x - y).abs() / (1.0 + x.abs()));
        }
    }
    assert!(worst < 1e-4, "resumed weights differ from the uninterrupted run by {worst}");
    // The EMA weights and the raw model differ (the EMA really averages).
    assert!(
        a.iter().any(|(k, v)| k == "model.0.conv.weight"
            && a.iter().any(|(k2, v2)| k2 == "extra/model.0.conv.weight" && v2 != v))
    );

    // Nothing left to resume.
    assert!(matches!(resume(&resumed.last, &data, &device, None), Err(TrainError::Config(_))));
}

#[test]
fn training_lowers_the_loss() {
    let tmp = tempfile::tempdir().unwrap();
    let mut cfg = config(tmp.path(), 30);
    cfg.max_batches = Some(4);
    cfg.nbs = 4;
    cfg.noval = true;
    cfg.hyp = cfg.hyp.without_augmentation();
    // 120 steps, past the 100-iteration warmup, on the same 16 un-augmented images.
    let out = train(model(), &data(), &cfg, &Device::flex()).unwrap();
    // Box loss, averaged over the first and the last five epochs (single epochs are noisy).
    let box_mean =
        |r: std::ops::Range<usize>| r.clone().map(|e| out.history[e].train_loss[0]).sum::<f32>() / r.len() as f32;
    let (first, last) = (box_mean(0..5), box_mean(25..30));
    assert!(last < 0.95 * first, "box loss {first} → {last}");
}

#[test]
fn a_non_finite_loss_stops_the_run_with_a_clear_error() {
    let tmp = tempfile::tempdir().unwrap();
    let mut cfg = config(tmp.path(), 2);
    cfg.hyp.warmup_bias_lr = 1e30;
    let err = train(model(), &data(), &cfg, &Device::flex()).unwrap_err();
    match err {
        TrainError::NonFiniteLoss { epoch, .. } => assert_eq!(epoch, 0),
        other => panic!("expected NonFiniteLoss, got {other}"),
    }
    assert!(!tmp.path().join("exp/weights/last.safetensors").exists());
}

#[test]
fn invalid_settings_are_rejected_before_any_work() {
    let tmp = tempfile::tempdir().unwrap();
    let mut cfg = config(tmp.path(), 1);
    cfg.imgsz = 70;
    let err = train(model(), &data(), &cfg, &Device::flex()).unwrap_err();
    assert!(err.to_string().contains("imgsz 70"), "{err}");
    assert!(!tmp.path().join("exp").exists());
}

/// A hook whose extra loss is `scale · Σ raw[0] + constant · B`, counting its batches.
struct ExtraLoss {
    scale: f64,
    constant: f64,
    batches: usize,
}

impl yolo_compress_train::trainer::TrainHook for ExtraLoss {
    fn batch_loss(
        &mut self,
        images: &Tensor<4>,
        raw: &yolo_compress_model::head::RawOutputs,
    ) -> Result<Option<Tensor<1>>, TrainError> {
        self.batches += 1;
        let b = images.dims()[0] as f64;
        let c = Tensor::<1>::from_floats([(self.constant * b) as f32], &raw[0].device());
        Ok(Some(raw[0].clone().sum().mul_scalar(self.scale).add(c)))
    }
}

/// A hook's extra loss is added to the detection loss before the backward pass: a constant is
/// reported per image and changes no weight; a term that depends on the outputs changes them.
#[test]
fn a_hook_loss_is_reported_and_trained_on() {
    use yolo_compress_train::trainer::train_with_hook;
    let tmp = tempfile::tempdir().unwrap();
    let device = Device::flex();
    let data = data();
    let cfg = |name: &str| TrainConfig { noval: true, name: name.into(), ..config(tmp.path(), 1) };
    let init = model();
    let plain = train(init.valid(), &data, &cfg("plain"), &device).unwrap();
    assert_eq!(plain.history[0].extra_loss, None);
    let mut constant = ExtraLoss { scale: 0.0, constant: 0.25, batches: 0 };
    let with_const = train_with_hook(init.valid(), &data, &cfg("const"), &device, &mut constant).unwrap();
    assert_eq!(constant.batches, 2);
    let extra = with_const.history[0].extra_loss.unwrap();
    assert!((extra - 0.25).abs() < 1e-6, "{extra}");
    let (a, b) = (tensors(&plain.last), tensors(&with_const.last));
    let max_diff = |x: &[(String, Vec<f32>)], y: &[(String, Vec<f32>)]| {
        x.iter()
            .zip(y)
            .filter(|(p, _)| !p.0.starts_with("extra/"))
            .flat_map(|(p, q)| p.1.iter().zip(&q.1).map(|(u, v)| (u - v).abs()))
            .fold(0.0f32, f32::max)
    };
    assert!(max_diff(&a, &b) < 1e-6, "a constant extra loss changed the weights by {}", max_diff(&a, &b));
    let mut pull = ExtraLoss { scale: 0.05, constant: 0.0, batches: 0 };
    let pulled = train_with_hook(init.valid(), &data, &cfg("pull"), &device, &mut pull).unwrap();
    assert!(max_diff(&a, &tensors(&pulled.last)) > 1e-4);
}
