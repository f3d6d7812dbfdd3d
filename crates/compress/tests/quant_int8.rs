//! Int8 checkpoints end to end: a PTQ'd yolov5n saved with int8 weights loads back to a model whose
//! raw outputs equal the in-memory fake-quantized model's, from a file about 4× smaller than the
//! float checkpoint; a float checkpoint given to the int8 loader is a typed error naming the file.

mod common;

use std::collections::BTreeMap;
use std::path::Path;

use burn::prelude::*;
use burn::tensor::Distribution;
use yolo_compress_compress::QuantError;
use yolo_compress_compress::quant::checkpoint::{is_int8_checkpoint, load_int8, save_int8};
use yolo_compress_compress::quant::{QuantConfig, QuantModel, calibrated, ptq};
use yolo_compress_model::weights::save_checkpoint;
use yolo_compress_model::{Architecture, YoloModel};

use common::randomize_bn;

fn float_model(seed: u64, device: &Device) -> YoloModel {
    device.seed(seed);
    let arch = Architecture::from_name_or_path("yolov5n.yaml").unwrap().with_classes(vec!["a".into(), "b".into()]);
    let mut model = arch.build(device).unwrap();
    randomize_bn(&mut model, seed, device);
    model
}

fn images(n: usize, device: &Device) -> Vec<Tensor<4>> {
    (0..n).map(|_| Tensor::<4>::random([1, 3, 64, 64], Distribution::Uniform(0.0, 1.0), device)).collect()
}

fn raw(model: &QuantModel, x: Tensor<4>) -> Vec<Vec<f32>> {
    model.forward_raw(x).into_iter().map(|t| t.into_data().try_into_vec_as::<f32>().unwrap()).collect()
}

/// Saves `q`, loads it back and checks the raw outputs on `x` agree within 1e-4 relative; returns
/// the file size.
fn round_trip(q: &QuantModel, x: Tensor<4>, path: &Path, device: &Device) -> u64 {
    let meta = BTreeMap::from([("producer".to_string(), "quant_int8 test".to_string())]);
    let written = save_int8(q, path, &meta).unwrap();
    assert_eq!(written, std::fs::metadata(path).unwrap().len());
    assert!(is_int8_checkpoint(path));
    let (loaded, got_meta) = load_int8(path, device).unwrap();
    assert_eq!(got_meta, meta);
    assert_eq!(loaded.conv_names(), q.conv_names());
    assert_eq!(loaded.quantized(), q.quantized());
    assert_eq!(loaded.value_ranges, q.value_ranges);
    assert_eq!(loaded.act_grid, q.act_grid);
    assert_eq!(loaded.acts.len(), q.acts.len());
    for (a, b) in loaded.act_qparams().iter().zip(q.act_qparams()) {
        assert_eq!(*a, b);
    }

    let want = raw(q, x.clone());
    let got = raw(&loaded, x);
    assert_eq!(want.len(), got.len());
    let mut worst = 0.0f32;
    for (w, g) in want.iter().zip(&got) {
        assert_eq!(w.len(), g.len());
        for (&a, &b) in w.iter().zip(g) {
            let rel = (a - b).abs() / a.abs().max(1.0);
            assert!(rel <= 1e-4, "in-memory {a} vs loaded {b}");
            worst = worst.max(rel);
        }
    }
    println!("{}: worst relative difference {worst:e}", path.display());
    written
}

#[test]
fn int8_checkpoint_reproduces_the_ptq_model_and_is_4x_smaller() {
    let device = Device::flex();
    let model = float_model(7, &device);
    let q = ptq(&model, images(3, &device), &QuantConfig::default()).unwrap();
    assert!(q.quantized().iter().filter(|&&b| b).count() > 50);
    let dir = tempfile::tempdir().unwrap();
    let x = Tensor::<4>::random([2, 3, 64, 64], Distribution::Uniform(0.0, 1.0), &device);
    let int8_path = dir.path().join("yolov5n-int8.safetensors");
    let int8_size = round_trip(&q, x, &int8_path, &device);

    let float_path = dir.path().join("yolov5n.safetensors");
    save_checkpoint(&model, &float_path, &BTreeMap::new()).unwrap();
    let float_size = std::fs::metadata(&float_path).unwrap().len();
    let ratio = float_size as f64 / int8_size as f64;
    println!("float checkpoint {float_size} bytes, int8 checkpoint {int8_size} bytes, ratio {ratio:.2}");
    assert!(ratio >= 3.5, "float {float_size} B / int8 {int8_size} B = {ratio:.2}");

    // The float checkpoint is not an int8 one: a typed error naming the file.
    assert!(!is_int8_checkpoint(&float_path));
    match load_int8(&float_path, &device) {
        Err(e @ QuantError::Checkpoint { .. }) => {
            let QuantError::Checkpoint { path, .. } = &e else { unreachable!() };
            assert_eq!(path, &float_path);
            let msg = e.to_string();
            assert!(msg.contains("yolov5n.safetensors") && msg.contains("float checkpoint"), "{msg}");
        }
        other => panic!("expected a checkpoint error, got {:?}", other.map(|_| ())),
    }
}

/// A model straight from QAT still carries its BN (unfolded): saving folds it with the running
/// statistics, which is what the in-memory model runs at inference.
#[test]
fn int8_checkpoint_of_a_model_with_unfolded_bn() {
    let device = Device::flex();
    let model = float_model(11, &device);
    let cfg = QuantConfig { act_symmetric: true, exclude: vec!["model.0".into()], ..Default::default() };
    let q = QuantModel::from_model(&model).unwrap();
    assert!(q.convs.iter().any(|c| c.bn.is_some()));
    let q = calibrated(q, images(2, &device), &cfg).unwrap();
    assert!(!q.convs[0].quantized, "model.0 is excluded");
    let dir = tempfile::tempdir().unwrap();
    let x = Tensor::<4>::random([1, 3, 64, 64], Distribution::Uniform(0.0, 1.0), &device);
    let path = dir.path().join("qat.safetensors");
    round_trip(&q, x, &path, &device);
}
