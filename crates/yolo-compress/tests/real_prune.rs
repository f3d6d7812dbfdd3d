//! Pruning the real pretrained COCO yolov5s (`../shared/fixtures/pretrained`, not committed: the
//! tests skip with a message when it is absent) with nothing but real camera frames: re-anchoring
//! unfuses the fused checkpoint without changing its function, and choosing channels by their
//! measured activations with mean compensation keeps the model's outputs far closer to the
//! original's than the filter-L1 choice that destroyed it before.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use burn::prelude::*;
use yolo_compress::compress::prune::surgery::model_tensors;
use yolo_compress::compress::prune::{
    ActivationStats, Criterion, FlopsTarget, PruneGraph, Scope, ScoreData, plan_for_flops, prune_model,
    prune_model_with, reanchor_bn, scores,
};
use yolo_compress::compress::quant::calibrate::loader_images;
use yolo_compress::data::ImageFolder;
use yolo_compress::data::loader::{Loader, LoaderConfig};
use yolo_compress::loading::{ClassOverride, load_model};
use yolo_compress::model::YoloModel;

fn here(p: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(p)
}

fn pretrained(file: &str) -> Option<PathBuf> {
    let p = here("../../../shared/fixtures/pretrained").join(file);
    if p.is_file() {
        Some(p)
    } else {
        eprintln!("skipping: {} is absent (see shared/fixtures/pretrained/README.md)", p.display());
        None
    }
}

/// The six committed real frames (160×120) at 128 px.
fn frames(device: &Device) -> Vec<Tensor<4>> {
    let folder = Arc::new(ImageFolder::open(here("tests/fixtures/frames")).unwrap());
    let loader = Loader::new(folder, LoaderConfig { workers: 1, ..LoaderConfig::val(128, 6) }, device).unwrap();
    loader_images(&loader, 6).unwrap()
}

/// obj·cls confidences of every anchor, as the detector scores them.
fn confidences(model: &YoloModel, x: &[Tensor<4>]) -> Vec<f32> {
    x.iter()
        .flat_map(|x| {
            let d = model.forward(x.clone()).decoded; // [B, N, 5 + nc]
            let nc = d.dims()[2] - 5;
            let obj = d.clone().narrow(2, 4, 1);
            let cls = d.narrow(2, 5, nc);
            (cls * obj).into_data().convert::<f32>().try_to_vec::<f32>().unwrap()
        })
        .collect()
}

fn mean_abs(a: &[f32], b: &[f32]) -> f64 {
    a.iter().zip(b).map(|(x, y)| (x - y).abs() as f64).sum::<f64>() / a.len() as f64
}

#[test]
fn the_fused_checkpoint_is_unfused_with_the_same_function() {
    let Some(fused) = pretrained("yolov5s_coco_fused.pt") else { return };
    let device = Device::flex();
    let fused = load_model(Some("yolov5s.yaml"), Some(&fused), &ClassOverride::default(), &device).unwrap().model;
    assert!(fused.is_fused());
    let x = frames(&device);
    let stats = ActivationStats::measure(&fused, x.clone(), true).unwrap();
    let (anchored, report) = reanchor_bn(&fused, &stats, &device).unwrap();
    assert!(report.unfused && report.bn_layers == 57 && !anchored.is_fused());
    let (a, b) = (confidences(&fused, &x), confidences(&anchored, &x));
    let max = a.iter().zip(&b).map(|(p, q)| (p - q).abs()).fold(0.0f32, f32::max);
    assert!(max < 1e-3, "unfusing changed a confidence by {max}");
    // Its BN statistics are now the frames' own: re-anchoring again changes nothing.
    let again = ActivationStats::measure(&anchored, x, true).unwrap();
    let (_, r2) = reanchor_bn(&anchored, &again, &device).unwrap();
    assert!(r2.max_log_std_ratio < 1e-3, "{}", r2.max_log_std_ratio);
}

#[test]
fn activation_choice_with_compensation_keeps_the_real_model_close() {
    let Some(weights) = pretrained("yolov5s_coco.pt") else { return };
    let device = Device::flex();
    let model = load_model(Some("yolov5s.yaml"), Some(&weights), &ClassOverride::default(), &device).unwrap().model;
    let x = frames(&device);
    let held = x;
    let stats = ActivationStats::measure(&model, held.clone(), true).unwrap();
    let (model, _) = reanchor_bn(&model, &stats, &device).unwrap();
    let full = confidences(&model, &held);
    let pg = PruneGraph::new(model.arch.as_ref().unwrap(), &[]).unwrap();
    let t = model_tensors(&model).unwrap();
    let target =
        |scope| FlopsTarget { fraction: 0.9, scope, round_to: 8, imgsz: 128, layer_ratios: Default::default() };
    let l1 = scores(&pg, &t, Criterion::L1, ScoreData::default(), &device).unwrap();
    let (l1_plan, _) = plan_for_flops(&pg, &l1, &target(Scope::Uniform)).unwrap();
    let data = ScoreData { stats: Some(&stats), compensated: true, ..Default::default() };
    let act = scores(&pg, &t, Criterion::Activation, data, &device).unwrap();
    let (act_plan, f) = plan_for_flops(&pg, &act, &target(Scope::Cost)).unwrap();
    assert!(f <= 0.9 && f > 0.85, "{f}");
    let err = |m: &YoloModel| mean_abs(&full, &confidences(m, &held));
    let e_l1 = err(&prune_model(&model, &pg, &l1_plan, &device).unwrap());
    let e_act_zeroed = err(&prune_model(&model, &pg, &act_plan, &device).unwrap());
    let e_act = err(&prune_model_with(&model, &pg, &act_plan, Some(&stats), &device).unwrap());
    eprintln!("mean |Δ conf| at 90 % FLOPs: l1 {e_l1:.2e}, act zeroed {e_act_zeroed:.2e}, act compensated {e_act:.2e}");
    assert!(e_act < 0.5 * e_act_zeroed, "compensation must matter: {e_act} vs {e_act_zeroed}");
    assert!(e_act < 0.2 * e_l1, "the activation choice must beat L1: {e_act} vs {e_l1}");
}
