//! The GhostNet-backbone YOLOv5 (`yolov5-ghostnet.yaml`): shapes, strides and backbone taps; parameter,
//! FLOP and module counts against a PyTorch twin; and forward parity with that twin on shared random
//! weights. The twin and its fixtures (`tests/fixtures/ghostnet_*`) come from
//! `benches/peers/ghostnet_reference.py`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use burn::prelude::*;
use yolo_compress_model::info::ModelInfo;
use yolo_compress_model::weights::{load_checkpoint, load_weights_into, read_pytorch_state_dict, save_checkpoint};
use yolo_compress_model::{Architecture, Backbone, FeatureSpec, YoloModel};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name)
}

fn device() -> Device {
    Device::flex()
}

fn values<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.into_data().convert::<f32>().try_to_vec::<f32>().unwrap()
}

/// Every f32 tensor of a safetensors fixture.
fn tensors(name: &str) -> HashMap<String, (Vec<usize>, Vec<f32>)> {
    let data = std::fs::read(fixture(name)).unwrap();
    let st = safetensors::SafeTensors::deserialize(&data).unwrap();
    st.tensors()
        .into_iter()
        .map(|(k, v)| {
            assert_eq!(v.dtype(), safetensors::Dtype::F32, "{k}");
            let vals = v.data().chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect();
            (k, (v.shape().to_vec(), vals))
        })
        .collect()
}

/// `max |a − b|` relative to `max(1, max |b|)`.
fn rel_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    let scale = b.iter().fold(1.0f32, |m, v| m.max(v.abs()));
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max) / scale
}

fn ghostnet() -> YoloModel {
    Architecture::from_name_or_path("yolov5-ghostnet.yaml").unwrap().build(&device()).unwrap()
}

#[test]
fn detect_levels_at_64_and_96x160() {
    let model = ghostnet();
    assert_eq!(model.detect.strides, [8.0, 16.0, 32.0]);
    assert_eq!(model.max_stride(), 32);
    for (h, w) in [(64, 64), (96, 160)] {
        let out = model.forward(Tensor::random([1, 3, h, w], burn::tensor::Distribution::Default, &device()));
        let dims: Vec<[usize; 5]> = out.raw.iter().map(|r| r.dims()).collect();
        let want: Vec<[usize; 5]> = [8, 16, 32].iter().map(|s| [1, 3, h / s, w / s, 85]).collect();
        assert_eq!(dims, want, "{h}x{w}");
        let rows: usize = [8, 16, 32].iter().map(|s| 3 * (h / s) * (w / s)).sum();
        assert_eq!(out.decoded.dims(), [1, rows, 85]);
        assert!(values(out.decoded).iter().all(|v| v.is_finite()));
    }
}

#[test]
fn backbone_taps_p3_p4_p5() {
    let model = ghostnet();
    assert_eq!(model.taps, [5, 11, 18]);
    let f = |channels, stride| FeatureSpec { channels, stride };
    assert_eq!(model.backbone.features(), [f(40, 8), f(112, 16), f(1024, 32)]);
    let feats = model.backbone.forward(Tensor::zeros([2, 3, 96, 160], &device()));
    let dims: Vec<[usize; 4]> = feats.iter().map(|t| t.dims()).collect();
    assert_eq!(dims, [[2, 40, 12, 20], [2, 112, 6, 10], [2, 1024, 3, 5]]);
}

/// Parameters, thop MACs (measured at the given size, not extrapolated from 32×32) and PyTorch module
/// counts equal those of the PyTorch twin, unfused and with every BN folded.
#[test]
fn info_matches_pytorch_twin() {
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(fixture("ghostnet_info.json")).unwrap()).unwrap();
    let model = ghostnet();
    let arch = model.arch.clone().unwrap();
    let ch: Vec<u64> = arch.layers.iter().map(|l| l.out_channels as u64).collect();
    let want_ch: Vec<u64> = json["channels"].as_array().unwrap().iter().map(|v| v.as_u64().unwrap()).collect();
    assert_eq!(ch, want_ch);
    for (kind, m) in [("unfused", model.clone()), ("fused", model.fuse())] {
        let want = &json[kind];
        let info = ModelInfo::of(&m, 640);
        assert_eq!(info.params as u64, want["parameters"].as_u64().unwrap(), "{kind} params");
        assert_eq!(info.layers as u64, want["layers"].as_u64().unwrap(), "{kind} layers");
        assert_eq!(info.macs, want["macs_640"].as_f64().unwrap(), "{kind} MACs at 640");
        assert_eq!(m.macs(64, 64), want["macs_64"].as_f64().unwrap(), "{kind} MACs at 64");
    }
    let info = ModelInfo::of(&ghostnet(), 640);
    assert_eq!(info.params, 24_821_245);
    assert!((info.gflops - 42.857).abs() < 1e-3, "{}", info.gflops);
}

fn tiny() -> YoloModel {
    let arch = Architecture::from_name_or_path(fixture("ghostnet_tiny.yaml").to_str().unwrap()).unwrap();
    load_weights_into(arch.build(&device()).unwrap(), &fixture("ghostnet_tiny_random.pt"), &device()).unwrap()
}

fn check_raw(model: &YoloModel, f: &HashMap<String, (Vec<usize>, Vec<f32>)>, x: Tensor<4>, tol: f32) {
    let out = model.forward(x);
    for (j, r) in out.raw.into_iter().enumerate() {
        let want = &f[&format!("raw_{j}")];
        assert_eq!(r.dims().to_vec(), want.0, "raw_{j} shape");
        let d = rel_diff(&values(r), &want.1);
        assert!(d < tol, "raw_{j}: relative max |diff| {d}");
    }
}

/// Every layer and the raw head outputs of the small GhostNet config agree with PyTorch on the same
/// random weights (loaded from the twin's state_dict: every key is used, none is missing), also after
/// BN folding and through a native checkpoint.
#[test]
fn tiny_ghostnet_matches_pytorch_twin() {
    let f = tensors("ghostnet_tiny_io.safetensors");
    let (xs, xv) = &f["x"];
    let x = || Tensor::<4>::from_data(TensorData::new(xv.clone(), [xs[0], xs[1], xs[2], xs[3]]), &device());
    let model = tiny();
    let (outs, raw) = model.forward_layers(x());
    assert_eq!(outs.len(), 25);
    for (i, o) in outs.into_iter().enumerate() {
        let want = &f[&format!("layer_{i}")];
        assert_eq!(o.dims().to_vec(), want.0, "layer {i} shape");
        let d = rel_diff(&values(o), &want.1);
        assert!(d < 1e-4, "layer {i}: relative max |diff| {d}");
    }
    assert_eq!(raw.len(), 3);
    check_raw(&model, &f, x(), 1e-4);
    check_raw(&model.clone().fuse(), &f, x(), 1e-4);

    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("tiny.safetensors");
    save_checkpoint(&model, &p, &Default::default()).unwrap();
    let (back, ck) = load_checkpoint(&p, &device()).unwrap();
    assert_eq!(ck.arch, *model.arch.as_ref().unwrap());
    check_raw(&back, &f, x(), 1e-4);
}

/// The state-dict layout is the reference project's (`conv.{0..3}`, `primary_conv`, `cheap_operation`,
/// `conv_DW`/`bn_DW`, `conv_reduce`/`conv_expand`, `shortcut.{0,1}`).
#[test]
fn tiny_state_dict_keys() {
    let sd = read_pytorch_state_dict(&fixture("ghostnet_tiny_random.pt")).unwrap();
    for k in [
        "model.1.conv.0.primary_conv.conv.weight",
        "model.1.conv.3.cheap_operation.bn.running_var",
        "model.3.conv.1.conv_DW.weight",
        "model.3.conv.1.bn_DW.weight",
        "model.3.conv.2.conv_reduce.bias",
        "model.4.conv.2.conv_expand.weight",
        "model.6.shortcut.0.conv_DW.weight",
        "model.6.shortcut.1.bn.bias",
        "model.25.anchors",
    ] {
        assert!(sd.tensors.contains_key(k), "{k}");
    }
    assert_eq!(sd.tensors["model.4.conv.2.conv_reduce.weight"].0, [7, 30, 1, 1]); // int(30 · 0.25)
    assert!(!sd.tensors.keys().any(|k| k.starts_with("model.1.shortcut") || k.starts_with("model.1.conv.1")));
}
