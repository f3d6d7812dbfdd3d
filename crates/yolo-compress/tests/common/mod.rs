//! Helpers shared by the CLI tests: run the `ycomp` binary built for this test run.

#![allow(dead_code)]

use std::path::Path;
use std::process::{Command, Output};

/// Runs `ycomp` with `args`.
pub fn ycomp(args: &[&str]) -> Output {
    ycomp_in(Path::new("."), args)
}

/// Runs `ycomp` with `args` in the working directory `dir`.
pub fn ycomp_in(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ycomp")).current_dir(dir).args(args).output().expect("ycomp runs")
}

/// Runs `ycomp` and asserts success (printing its stderr otherwise).
pub fn ok(args: &[&str]) -> Output {
    ok_in(Path::new("."), args)
}

/// [`ok`] in the working directory `dir`.
pub fn ok_in(dir: &Path, args: &[&str]) -> Output {
    let out = ycomp_in(dir, args);
    assert!(out.status.success(), "ycomp {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    out
}

/// Runs `ycomp`, asserts success and parses its stdout as JSON.
pub fn ok_json(args: &[&str]) -> serde_json::Value {
    ok_json_in(Path::new("."), args)
}

/// [`ok_json`] in the working directory `dir`.
pub fn ok_json_in(dir: &Path, args: &[&str]) -> serde_json::Value {
    let out = ok_in(dir, args);
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)))
}

/// A reference model for the label-free tests: ultralytics' randomly initialised yolov5n (80
/// classes, `model/tests/fixtures/yolov5n_random.pt`), which finds plenty of (meaningless) boxes
/// at conf 0.25, tamed into something shaped like a trained detector: constant class logits, +10
/// for class 0 and −10 for the others (random ones are near-ties over 80 classes, which val.py's
/// multi-label NMS turns into false positives), and box sizes equal to the anchors (random ones are
/// mostly degenerate strips once clipped to the image).
pub fn peaked_reference(device: &burn::prelude::Device) -> yolo_compress::model::YoloModel {
    use yolo_compress::model::Architecture;
    use yolo_compress::model::weights::{apply_state_dict, read_pytorch_state_dict};
    let pt = Path::new(env!("CARGO_MANIFEST_DIR")).join("../model/tests/fixtures/yolov5n_random.pt");
    let mut sd = read_pytorch_state_dict(&pt).unwrap();
    for level in 0..3 {
        let (shape, weight) = sd.tensors.get_mut(&format!("model.24.m.{level}.weight")).unwrap();
        let per_row: usize = shape[1..].iter().product();
        for anchor in 0..3 {
            for row in [2, 3].into_iter().chain(5..85).map(|c| anchor * 85 + c) {
                weight[row * per_row..(row + 1) * per_row].fill(0.0);
            }
        }
        let (_, bias) = sd.tensors.get_mut(&format!("model.24.m.{level}.bias")).unwrap();
        for anchor in 0..3 {
            bias[anchor * 85 + 2] = 0.0;
            bias[anchor * 85 + 3] = 0.0;
            for class in 0..80 {
                bias[anchor * 85 + 5 + class] = if class == 0 { 10.0 } else { -10.0 };
            }
        }
    }
    let model = Architecture::from_name_or_path("yolov5n.yaml").unwrap().build(device).unwrap();
    apply_state_dict(model, &sd, device).unwrap()
}
