//! Parity with ultralytics YOLOv5 7.0 (PyTorch): per-layer outputs, raw head outputs, decoded boxes,
//! BN folding, parameter/FLOP counts, and weight-file errors. Fixtures: `tests/fixtures/README.md`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use burn::prelude::*;
use yolo_compress_model::info::ModelInfo;
use yolo_compress_model::weights::{load_checkpoint, load_weights_into, read_pytorch_state_dict, save_checkpoint};
use yolo_compress_model::{Architecture, WeightsError, YoloModel};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name)
}

fn device() -> Device {
    Device::flex()
}

/// Reads every f32 tensor of a safetensors fixture.
fn tensors(name: &str) -> HashMap<String, (Vec<usize>, Vec<f32>)> {
    let data = std::fs::read(fixture(name)).unwrap();
    let st = safetensors::SafeTensors::deserialize(&data).unwrap();
    st.tensors()
        .into_iter()
        .filter(|(_, v)| v.dtype() == safetensors::Dtype::F32)
        .map(|(k, v)| {
            let vals = v.data().chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect();
            (k, (v.shape().to_vec(), vals))
        })
        .collect()
}

fn input(t: &(Vec<usize>, Vec<f32>)) -> Tensor<4> {
    let s = &t.0;
    Tensor::from_data(TensorData::new(t.1.clone(), [s[0], s[1], s[2], s[3]]), &device())
}

fn values<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.into_data().convert::<f32>().try_to_vec::<f32>().unwrap()
}

fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
}

fn load(cfg: &str, weights: &str) -> YoloModel {
    let model = Architecture::from_name_or_path(cfg).unwrap().build(&device()).unwrap();
    load_weights_into(model, &fixture(weights), &device()).unwrap()
}

fn check_layers(model: &YoloModel, fixture_name: &str) {
    let f = tensors(fixture_name);
    let (outs, raw) = model.forward_layers(input(&f["x"]));
    assert_eq!(outs.len(), 24);
    for (i, o) in outs.into_iter().enumerate() {
        let want = &f[&format!("layer_{i}")];
        assert_eq!(o.dims().to_vec(), want.0, "layer {i} shape");
        let d = max_abs_diff(&values(o), &want.1);
        assert!(d < 1e-4, "layer {i}: max |diff| {d}");
    }
    for (j, r) in raw.into_iter().enumerate() {
        let want = &f[&format!("layer_24_raw_{j}")];
        assert_eq!(r.dims().to_vec(), want.0);
        let d = max_abs_diff(&values(r), &want.1);
        assert!(d < 1e-4, "raw {j}: max |diff| {d}");
    }
}

fn check_io(model: &YoloModel, fixture_name: &str, raw_tol: f32) {
    let f = tensors(fixture_name);
    let out = model.forward(input(&f["x"]));
    for (j, r) in out.raw.into_iter().enumerate() {
        let want = &f[&format!("raw_{j}")];
        assert_eq!(r.dims().to_vec(), want.0);
        let d = max_abs_diff(&values(r), &want.1);
        assert!(d < raw_tol, "raw_{j}: max |diff| {d}");
    }
    let dec = values(out.decoded);
    let want = &f["decoded"];
    assert_eq!(dec.len(), want.1.len());
    let (mut box_err, mut prob_err) = (0.0f32, 0.0f32);
    for (i, (a, b)) in dec.iter().zip(&want.1).enumerate() {
        if i % 85 < 4 {
            box_err = box_err.max((a - b).abs());
        } else {
            prob_err = prob_err.max((a - b).abs());
        }
    }
    assert!(box_err < 1e-2, "decoded xywh: max |diff| {box_err} px");
    assert!(prob_err < raw_tol, "decoded obj/cls: max |diff| {prob_err}");
}

#[test]
fn yolov5n_matches_pytorch_layer_by_layer() {
    check_layers(&load("yolov5n.yaml", "yolov5n_random.pt"), "yolov5n_layers.safetensors");
}

#[test]
fn yolov5n_head_and_decode_match_pytorch() {
    check_io(&load("yolov5n.yaml", "yolov5n_random.pt"), "yolov5n_io.safetensors", 1e-4);
}

#[test]
fn yolov5s_ghost_matches_pytorch_layer_by_layer() {
    check_layers(&load("yolov5s-ghost.yaml", "yolov5s_ghost_random.pt"), "yolov5s_ghost_layers.safetensors");
}

#[test]
fn yolov5s_ghost_head_and_decode_match_pytorch() {
    check_io(&load("yolov5s-ghost.yaml", "yolov5s_ghost_random.pt"), "yolov5s_ghost_io.safetensors", 1e-4);
}

/// Folding BN into the convs changes float rounding only.
#[test]
fn fused_model_matches_pytorch() {
    let fused = load("yolov5n.yaml", "yolov5n_random.pt").fuse();
    assert!(fused.is_fused());
    check_io(&fused, "yolov5n_io.safetensors", 1e-4);
}

/// A fused state dict (conv with bias, no BN) loads into a fused model and gives the same outputs.
#[test]
fn fused_state_dict_round_trip_through_native_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let model = load("yolov5n.yaml", "yolov5n_random.pt");
    let p = dir.path().join("n.safetensors");
    save_checkpoint(&model, &p, &Default::default()).unwrap();
    let (back, ck) = load_checkpoint(&p, &device()).unwrap();
    assert!(!ck.fused);
    assert_eq!(ck.arch, *model.arch.as_ref().unwrap());
    check_io(&back, "yolov5n_io.safetensors", 1e-4);

    let pf = dir.path().join("n_fused.safetensors");
    save_checkpoint(&model.fuse(), &pf, &Default::default()).unwrap();
    let (back, ck) = load_checkpoint(&pf, &device()).unwrap();
    assert!(ck.fused && back.is_fused());
    check_io(&back, "yolov5n_io.safetensors", 1e-4);
}

/// ultralytics' fused state dict (conv with bias, no BN) saved in fp16 loads into a fused model and
/// reproduces PyTorch's outputs of the same fp16-rounded weights.
#[test]
fn fused_fp16_state_dict_matches_pytorch() {
    let model = load("yolov5n.yaml", "yolov5n_random_fused_fp16.pt");
    assert!(model.is_fused());
    check_io(&model, "yolov5n_fused_fp16_io.safetensors", 1e-4);
}

#[test]
fn info_matches_ultralytics_model_info() {
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(fixture("model_info.json")).unwrap()).unwrap();
    for (name, entry) in json["models"].as_object().unwrap() {
        let model = Architecture::from_name_or_path(name).unwrap().build(&device()).unwrap();
        for (kind, m) in [("unfused", model.clone()), ("fused", model.fuse())] {
            let want = &entry[kind];
            let info = ModelInfo::of(&m, 640);
            assert_eq!(info.params as u64, want["parameters"].as_u64().unwrap(), "{name} {kind} params");
            assert_eq!(info.layers as u64, want["layers"].as_u64().unwrap(), "{name} {kind} layers");
            let g = want["gflops_640"].as_f64().unwrap();
            assert!((info.gflops - g).abs() / g < 1e-6, "{name} {kind} GFLOPs {} vs {g}", info.gflops);
        }
    }
}

#[test]
fn wrong_model_names_key_and_both_shapes() {
    let model = Architecture::from_name_or_path("yolov5s.yaml").unwrap().build(&device()).unwrap();
    let err = load_weights_into(model, &fixture("yolov5n_random.pt"), &device()).unwrap_err();
    match &err {
        WeightsError::Shape { key, found, expected, .. } => {
            assert_eq!(key, "model.0.conv.weight");
            assert_eq!((found.as_slice(), expected.as_slice()), (&[16, 3, 6, 6][..], &[32, 3, 6, 6][..]));
        }
        other => panic!("expected a shape error, got {other}"),
    }
    assert!(err.to_string().contains("yolov5n_random.pt"));
}

#[test]
fn missing_and_unexpected_keys_are_named() {
    // Ghost weights into a plain yolov5s: same stem, then layer 1 differs (GhostConv keys).
    let model = Architecture::from_name_or_path("yolov5s.yaml").unwrap().build(&device()).unwrap();
    let err = load_weights_into(model, &fixture("yolov5s_ghost_random.pt"), &device()).unwrap_err();
    assert!(matches!(&err, WeightsError::Missing { key, .. } if key == "model.1.conv.weight"), "got {err}");
    // A state dict with an extra tensor.
    let mut sd = read_pytorch_state_dict(&fixture("yolov5n_random.pt")).unwrap();
    sd.tensors.insert("model.99.conv.weight".into(), (vec![1], vec![0.0]));
    let model = Architecture::from_name_or_path("yolov5n.yaml").unwrap().build(&device()).unwrap();
    let err = yolo_compress_model::weights::apply_state_dict(model, &sd, &device()).unwrap_err();
    assert!(matches!(&err, WeightsError::Unexpected { key, .. } if key == "model.99.conv.weight"), "got {err}");
}

#[test]
fn truncated_weights_file_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let bytes = std::fs::read(fixture("yolov5n_random.pt")).unwrap();
    for cut in [bytes.len() / 2, 100, 0] {
        let p = dir.path().join(format!("cut{cut}.pt"));
        std::fs::write(&p, &bytes[..cut]).unwrap();
        let model = Architecture::from_name_or_path("yolov5n.yaml").unwrap().build(&device()).unwrap();
        let err = load_weights_into(model, &p, &device()).unwrap_err();
        assert!(matches!(err, WeightsError::Read { .. }), "cut {cut}: {err}");
        assert!(err.to_string().contains(&format!("cut{cut}.pt")));
    }
}

/// The classic pickle payload `os.system(cmd)` is refused and nothing runs.
#[test]
fn pickle_naming_a_callable_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("pwned");
    let cmd = format!("touch {}", marker.display());
    let s = |b: &mut Vec<u8>, text: &str| {
        b.push(b'X');
        b.extend((text.len() as u32).to_le_bytes());
        b.extend(text.as_bytes());
    };
    // {'model.0.conv.weight': posix.system(cmd)} in pickle protocol 2
    let mut b = vec![0x80, 2, b'}'];
    s(&mut b, "model.0.conv.weight");
    b.extend(b"cposix\nsystem\n");
    s(&mut b, &cmd);
    b.extend([0x85, b'R', b's', b'.']);
    let p = dir.path().join("evil.pt");
    std::fs::write(&p, &b).unwrap();
    let err = read_pytorch_state_dict(&p).unwrap_err();
    match &err {
        WeightsError::UnsafePickle { callable, .. } => assert_eq!(callable, "posix.system"),
        other => panic!("expected UnsafePickle, got {other}"),
    }
    // Also as the root object (`posix.system(cmd)` alone).
    let mut b = vec![0x80, 2];
    b.extend(b"cposix\nsystem\n");
    s(&mut b, &cmd);
    b.extend([0x85, b'R', b'.']);
    std::fs::write(&p, &b).unwrap();
    assert!(matches!(read_pytorch_state_dict(&p).unwrap_err(), WeightsError::UnsafePickle { .. }));
    assert!(!marker.exists(), "the payload must never run");
}

/// A full training checkpoint (`{'model': …, 'epoch': …}`) is refused with the conversion command.
#[test]
fn full_checkpoint_is_refused_with_conversion_hint() {
    let dir = tempfile::tempdir().unwrap();
    // {'epoch': 5, 'model': None} in pickle protocol 2
    let mut b = vec![0x80, 2, b'}'];
    for (k, v) in [("epoch", &[b'K', 5][..]), ("model", &[b'N'][..])] {
        b.push(b'X');
        b.extend((k.len() as u32).to_le_bytes());
        b.extend(k.as_bytes());
        b.extend(v);
        b.push(b's');
    }
    b.push(b'.');
    let p = dir.path().join("yolov5s.pt");
    std::fs::write(&p, &b).unwrap();
    let err = read_pytorch_state_dict(&p).unwrap_err();
    assert!(matches!(err, WeightsError::NotStateDict { .. }), "{err}");
    assert!(err.to_string().contains("state_dict()"), "{err}");
}
