//! Parity of the YOLOv5 loss with ultralytics/yolov5 v7.0 `ComputeLoss` (PyTorch, CPU): target
//! assignment, loss value and items, and gradients. Fixture: `tests/fixtures/loss_fixture.*`,
//! made by `shared/fixtures/gen/gen_loss.py` (yolov5n with random weights, 2 images at 160 px,
//! 6 targets, `hyp.scratch-low.yaml` scaled for nl = 3, nc = 80, imgsz = 160).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use burn::prelude::*;
use yolo_compress_train::loss::{YoloLoss, YoloLossConfig, build_targets};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name)
}

/// A fixture tensor: shape, and its values (`f32s` for float32 tensors, `i64s` for int64 ones).
struct Fx {
    shape: Vec<usize>,
    f32s: Vec<f32>,
    i64s: Vec<i64>,
}

fn load() -> HashMap<String, Fx> {
    let data = std::fs::read(fixture("loss_fixture.safetensors")).unwrap();
    let st = safetensors::SafeTensors::deserialize(&data).unwrap();
    st.tensors()
        .into_iter()
        .map(|(k, v)| {
            let (mut f32s, mut i64s) = (Vec::new(), Vec::new());
            match v.dtype() {
                safetensors::Dtype::F32 => {
                    f32s = v.data().chunks_exact(4).map(|c| f32::from_le_bytes(c.try_into().unwrap())).collect()
                }
                safetensors::Dtype::I64 => {
                    i64s = v.data().chunks_exact(8).map(|c| i64::from_le_bytes(c.try_into().unwrap())).collect()
                }
                d => panic!("{k}: unexpected dtype {d:?}"),
            }
            (k, Fx { shape: v.shape().to_vec(), f32s, i64s })
        })
        .collect()
}

fn hyp_json() -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(fixture("loss_fixture_hyp.json")).unwrap()).unwrap()
}

/// The loss config equal to the fixture's scaled hyp and ComputeLoss constants.
fn config() -> YoloLossConfig {
    let j = hyp_json();
    let h = &j["hyp"];
    let c = &j["compute_loss_constants"];
    let f = |v: &serde_json::Value| v.as_f64().unwrap();
    let config = YoloLossConfig {
        box_gain: f(&h["box"]),
        obj_gain: f(&h["obj"]),
        cls_gain: f(&h["cls"]),
        cls_pw: f(&h["cls_pw"]),
        obj_pw: f(&h["obj_pw"]),
        anchor_t: f(&h["anchor_t"]),
        fl_gamma: f(&h["fl_gamma"]),
        label_smoothing: f(&h["label_smoothing"]),
        balance: c["balance"].as_array().unwrap().iter().map(f).collect(),
        gr: f(&c["gr"]),
    };
    assert_eq!(config.obj_gain, 0.0625);
    // from_hyp with the unscaled scratch-low values gives the same config.
    let hyp = yolo_compress_data::augment::Hyp::default();
    let from_hyp = YoloLossConfig::from_hyp(&hyp, 80, 3, 160, 0.0);
    for (a, b) in [
        (from_hyp.box_gain, config.box_gain),
        (from_hyp.obj_gain, config.obj_gain),
        (from_hyp.cls_gain, config.cls_gain),
        (from_hyp.anchor_t, config.anchor_t),
        (from_hyp.gr, config.gr),
    ] {
        assert_eq!(a, b);
    }
    assert_eq!(from_hyp.balance, config.balance);
    config
}

fn anchors() -> Vec<Vec<[f32; 2]>> {
    let j = hyp_json();
    j["compute_loss_constants"]["anchors_grid_units"]
        .as_array()
        .unwrap()
        .iter()
        .map(|lvl| {
            lvl.as_array()
                .unwrap()
                .iter()
                .map(|a| [a[0].as_f64().unwrap() as f32, a[1].as_f64().unwrap() as f32])
                .collect()
        })
        .collect()
}

fn targets(f: &HashMap<String, Fx>) -> Vec<[f32; 6]> {
    let t = &f["targets"];
    assert_eq!(t.shape, vec![6, 6]);
    t.f32s.chunks_exact(6).map(|r| r.try_into().unwrap()).collect()
}

fn raw(f: &HashMap<String, Fx>, device: &Device) -> Vec<Tensor<5>> {
    (0..3)
        .map(|i| {
            let r = &f[&format!("raw_{i}")];
            let s: [usize; 5] = r.shape.clone().try_into().unwrap();
            Tensor::from_data(TensorData::new(r.f32s.clone(), s), device)
        })
        .collect()
}

fn rel(a: f64, b: f64) -> f64 {
    (a - b).abs() / b.abs()
}

#[test]
fn build_targets_matches_ultralytics() {
    let f = load();
    let grids = [(20, 20), (10, 10), (5, 5)];
    let levels = build_targets(&targets(&f), &anchors(), &grids, 4.0);
    let counts: Vec<usize> = levels.iter().map(|l| l.len()).collect();
    assert_eq!(counts, vec![39, 30, 11]);
    for (i, lt) in levels.iter().enumerate() {
        let tcls: Vec<i64> = lt.tcls.iter().map(|&c| c as i64).collect();
        assert_eq!(tcls, f[&format!("tcls_{i}")].i64s, "tcls_{i}");
        // indices_i is [4, n]: rows b, a, gj, gi.
        let ind = &f[&format!("indices_{i}")].i64s;
        let n = lt.len();
        for (k, idx) in lt.indices.iter().enumerate() {
            let want = [ind[k], ind[n + k], ind[2 * n + k], ind[3 * n + k]];
            assert_eq!(idx.map(|v| v as i64), want, "indices_{i} match {k}");
        }
        let tbox = &f[&format!("tbox_{i}")].f32s;
        let mut max_tbox = 0.0f32;
        for (k, b) in lt.tbox.iter().enumerate() {
            for (g, w) in b.iter().zip(&tbox[4 * k..4 * k + 4]) {
                max_tbox = max_tbox.max((g - w).abs());
            }
        }
        let anch = &f[&format!("anch_{i}")].f32s;
        let anch_got: Vec<f32> = lt.anchors.iter().flatten().copied().collect();
        assert_eq!(&anch_got, anch, "anch_{i}");
        println!("level {i}: {n} matches, tbox max |diff| {max_tbox:e}");
        assert!(max_tbox <= 1e-6, "tbox_{i}: max |diff| {max_tbox}");
    }
}

#[test]
fn loss_matches_ultralytics() {
    let f = load();
    let device = Device::flex();
    let loss = YoloLoss::from_anchors(config(), 80, anchors());
    let out = loss.forward(&raw(&f, &device), &targets(&f));
    let total = out.total.into_data().convert::<f32>().try_to_vec::<f32>().unwrap()[0] as f64;
    let want_total = f["loss"].f32s[0] as f64;
    let want_items = &f["loss_items"].f32s;
    println!(
        "loss {total:.9} vs {want_total:.9}: abs {:e} rel {:e}",
        (total - want_total).abs(),
        rel(total, want_total)
    );
    assert!(rel(total, want_total) < 1e-5, "loss {total} vs {want_total}");
    for (k, name) in ["lbox", "lobj", "lcls"].iter().enumerate() {
        let (got, want) = (out.items[k] as f64, want_items[k] as f64);
        println!("{name} {got:.9} vs {want:.9}: abs {:e} rel {:e}", (got - want).abs(), rel(got, want));
        assert!(rel(got, want) < 1e-5, "{name} {got} vs {want}");
    }
}

#[test]
fn gradients_match_ultralytics() {
    let f = load();
    let device = Device::flex().autodiff();
    let loss = YoloLoss::from_anchors(config(), 80, anchors());
    let raw: Vec<Tensor<5>> = raw(&f, &device).into_iter().map(Tensor::require_grad).collect();
    let out = loss.forward(&raw, &targets(&f));
    let grads = out.total.backward();
    for (i, r) in raw.iter().enumerate() {
        let g =
            r.grad(&grads).expect("gradient of raw level").into_data().convert::<f32>().try_to_vec::<f32>().unwrap();
        let sumsq: f64 = g.iter().map(|&v| (v as f64) * (v as f64)).sum();
        let want = f[&format!("grad_raw_{i}_sumsq")].f32s[0] as f64;
        println!("grad_raw_{i} sumsq {sumsq:e} vs {want:e}: rel {:e}", rel(sumsq, want));
        assert!(rel(sumsq, want) < 1e-4, "grad_raw_{i}: {sumsq} vs {want}");
    }
}

#[test]
fn empty_targets_give_zero_box_and_class_loss() {
    let f = load();
    let device = Device::flex();
    let loss = YoloLoss::from_anchors(config(), 80, anchors());
    let out = loss.forward(&raw(&f, &device), &[]);
    assert_eq!(out.items[0], 0.0);
    assert_eq!(out.items[2], 0.0);
    assert!(out.items[1].is_finite() && out.items[1] > 0.0, "lobj {}", out.items[1]);
    let total = out.total.into_data().convert::<f32>().try_to_vec::<f32>().unwrap()[0];
    assert!(total.is_finite());
    assert!((total - 2.0 * out.items[1]).abs() <= 1e-6 * total);
}

#[test]
fn new_takes_the_anchors_of_detect() {
    let px = vec![
        vec![[10.0, 13.0], [16.0, 30.0], [33.0, 23.0]],
        vec![[30.0, 61.0], [62.0, 45.0], [59.0, 119.0]],
        vec![[116.0, 90.0], [156.0, 198.0], [373.0, 326.0]],
    ];
    let detect =
        yolo_compress_model::DetectConfig::new(80, px, vec![8.0, 16.0, 32.0], vec![16, 32, 64]).init(&Device::flex());
    let loss = YoloLoss::new(config(), &detect);
    assert_eq!((loss.nc(), loss.na(), loss.nl()), (80, 3, 3));
    assert_eq!(loss.anchors(), anchors().as_slice());
}

/// Loss, `[lbox, lobj, lcls]` and Σ(dloss/draw_i)² of ultralytics' `ComputeLoss` on the fixture's
/// raw outputs and targets with the hyp changed as named (computed with yolov5 7.0.14 and torch on
/// CPU: a stand-in model exposing the fixture's anchors and hyp, `ComputeLoss(model)(raw, targets)`,
/// `gr` overridden on the `ComputeLoss` object).
const VARIANTS: [(&str, [f64; 7]); 3] = [
    (
        "label_smoothing 0.1, cls_pw 2, obj_pw 0.5",
        [
            2.0488994121551514,
            0.10943187773227692,
            0.00603041285648942,
            0.9089874029159546,
            7.60442497822976e-05,
            0.0001050449848759543,
            0.00024697571415539023,
        ],
    ),
    (
        "fl_gamma 1.5",
        [
            0.2667134404182434,
            0.10943187773227692,
            0.0011501676635816693,
            0.022774677723646164,
            5.1735560169474004e-05,
            6.619019373053703e-05,
            0.00018810321983761893,
        ],
    ),
    (
        "gr 0.5",
        [
            0.48037075996398926,
            0.10943187773227692,
            0.026165636256337166,
            0.1045878678560257,
            5.7630830016402996e-05,
            7.520925081341232e-05,
            0.0002017726206913814,
        ],
    ),
];

#[test]
fn hyp_variants_match_ultralytics() {
    let f = load();
    let device = Device::flex().autodiff();
    for (k, (name, want)) in VARIANTS.iter().enumerate() {
        let mut config = config();
        match k {
            0 => {
                config.label_smoothing = 0.1;
                config.cls_pw = 2.0;
                config.obj_pw = 0.5;
            }
            1 => config.fl_gamma = 1.5,
            _ => config.gr = 0.5,
        }
        let loss = YoloLoss::from_anchors(config, 80, anchors());
        let raw: Vec<Tensor<5>> = raw(&f, &device).into_iter().map(Tensor::require_grad).collect();
        let out = loss.forward(&raw, &targets(&f));
        let total = out.total.clone().into_data().convert::<f32>().try_to_vec::<f32>().unwrap()[0] as f64;
        let got = [total, out.items[0] as f64, out.items[1] as f64, out.items[2] as f64];
        for (j, (g, w)) in got.iter().zip(&want[..4]).enumerate() {
            println!("{name}: value {j} {g:.9} vs {w:.9}, rel {:e}", rel(*g, *w));
            assert!(rel(*g, *w) < 1e-5, "{name}: value {j}: {g} vs {w}");
        }
        let grads = out.total.backward();
        for (i, r) in raw.iter().enumerate() {
            let g = r.grad(&grads).unwrap().into_data().convert::<f32>().try_to_vec::<f32>().unwrap();
            let sumsq: f64 = g.iter().map(|&v| (v as f64) * (v as f64)).sum();
            println!("{name}: grad_raw_{i} sumsq rel {:e}", rel(sumsq, want[4 + i]));
            assert!(rel(sumsq, want[4 + i]) < 1e-4, "{name}: grad_raw_{i}: {sumsq} vs {}", want[4 + i]);
        }
    }
}
