//! `ycomp quantize` as a user runs it: a float checkpoint in, an int8 checkpoint out that `ycomp val`,
//! `detect` and `bench` run with simulated int8 arithmetic; calibration from a folder with a corrupt
//! image; QAT; the sensitivity files; one-line errors.

mod common;
use common::{ok, ok_json, ycomp};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use burn::prelude::*;
use yolo_compress::compress::quant::checkpoint::{is_int8_checkpoint, load_int8};
use yolo_compress::model::Architecture;
use yolo_compress::model::weights::save_checkpoint;

/// A tiny synthetic dataset (64 px, 2 classes) and a yolov5n checkpoint for its classes.
fn setup(dir: &Path) -> (String, String) {
    let data = dir.join("data");
    ok(&["synth", "--out", data.to_str().unwrap(), "--images", "16", "--val", "6", "--classes", "2", "--imgsz", "64"]);
    let device = Device::flex();
    device.seed(7);
    let arch = Architecture::from_name_or_path("yolov5n.yaml").unwrap().with_classes(vec!["c0".into(), "c1".into()]);
    let model = arch.build(&device).unwrap();
    let ck = dir.join("float.safetensors");
    save_checkpoint(&model, &ck, &BTreeMap::new()).unwrap();
    (data.join("data.yaml").display().to_string(), ck.display().to_string())
}

const SMALL: [&str; 6] = ["--imgsz", "64", "--batch", "4", "--workers", "1"];

fn quantize(extra: &[&str]) -> serde_json::Value {
    let mut args = vec!["quantize", "--json"];
    args.extend(SMALL);
    args.extend(extra);
    ok_json(&args)
}

#[test]
fn ptq_checkpoint_is_small_and_val_detect_bench_run_it() {
    let dir = tempfile::tempdir().unwrap();
    let (data, ck) = setup(dir.path());
    let v = quantize(&["--weights", &ck, "--data", &data, "--calib-images", "8", "--calib-method", "percentile"]);

    // Default output: `<stem>-int8.safetensors` next to the weights.
    let out = dir.path().join("float-int8.safetensors");
    assert_eq!(Path::new(v["checkpoint"].as_str().unwrap()), out);
    assert!(is_int8_checkpoint(&out) && !is_int8_checkpoint(Path::new(&ck)));
    assert_eq!((v["method"].as_str(), v["calib_method"].as_str()), (Some("ptq"), Some("percentile")));
    let (size, float_size) = (v["size_bytes"].as_u64().unwrap(), v["float_size_bytes"].as_u64().unwrap());
    assert_eq!(size, std::fs::metadata(&out).unwrap().len());
    assert!(size as f64 * 3.5 <= float_size as f64, "int8 {size} B vs float {float_size} B");
    let (q, f) = (v["quantized_convs"].as_u64().unwrap(), v["float_convs"].as_u64().unwrap());
    assert_eq!(f, 3, "Detect's three output convs stay float by default");
    assert!(q > 50, "{q} int8 convs");
    assert!(v["params"].as_u64().unwrap() > 1_000_000);
    assert_eq!(v["calib_images"].as_u64(), Some(8));
    assert_eq!(v["eval_images"].as_u64(), Some(6), "the whole val split by default");
    for key in ["map50_float", "map50_95_float", "map50", "map50_95"] {
        let m = v[key].as_f64().unwrap_or_else(|| panic!("{key}: {}", v[key]));
        assert!((0.0..=1.0).contains(&m), "{key} = {m}");
    }
    assert_eq!(v["qat_epochs"].as_array().map(Vec::len), Some(0));
    assert_eq!(v.get("run_dir"), Some(&serde_json::Value::Null), "PTQ writes no run folder");
    assert!(v["sensitivity"].is_null());
    let (model, meta) = load_int8(&out, &Device::flex()).unwrap();
    assert_eq!(model.quantized().iter().filter(|&&x| x).count() as u64, q);
    assert_eq!(meta.get("calib_method").map(String::as_str), Some("percentile"));

    // `ycomp val` on the int8 checkpoint: the same images, settings and numbers as the report's.
    let o = out.to_str().unwrap();
    let mut args = vec!["val", "--weights", o, "--data", &data, "--json"];
    args.extend(SMALL);
    let val = ok_json(&args);
    assert_eq!(val["images"].as_u64(), Some(6));
    assert_eq!(val["map50_95"].as_f64(), v["map50_95"].as_f64());
    assert_eq!(val["map50"].as_f64(), v["map50"].as_f64());

    // `ycomp detect` writes detections for the val images.
    let images = dir.path().join("data/images/val");
    let dets = dir.path().join("dets.json");
    let src = images.to_str().unwrap();
    ok(&[
        "detect",
        "--weights",
        o,
        "--source",
        src,
        "--imgsz",
        "64",
        "--conf",
        "0.001",
        "--save-json",
        dets.to_str().unwrap(),
        "--quiet",
    ]);
    let dets: serde_json::Value = serde_json::from_slice(&std::fs::read(&dets).unwrap()).unwrap();
    let dets = dets.as_array().unwrap();
    assert!(!dets.is_empty(), "conf 0.001 keeps some boxes");
    for d in dets {
        assert!(d["image"].as_str().unwrap().ends_with(".png"));
        assert!(["c0", "c1"].contains(&d["class_name"].as_str().unwrap()));
        assert_eq!(d["bbox_xyxy"].as_array().unwrap().len(), 4);
    }

    // `ycomp bench` times it; commands that need a float model refuse it in one line.
    let b = ok_json(&["bench", "--weights", o, "--imgsz", "64", "--runs", "1", "--warmup", "0", "--json"]);
    assert_eq!(b["int8"].as_bool(), Some(true));
    assert!(b["median_ms"].as_f64().unwrap() > 0.0);
    let bad = ycomp(&["info", "--weights", o]);
    assert!(!bad.status.success());
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(err.contains("int8 checkpoint") && err.trim().lines().count() == 1, "{err}");
}

/// Copies the first `n` training images of the synthetic set into a new folder with a corrupt one.
fn calib_dir(dir: &Path, n: usize) -> PathBuf {
    let calib = dir.join("calib");
    std::fs::create_dir_all(&calib).unwrap();
    for i in 0..n {
        let name = format!("{i:06}.png");
        std::fs::copy(dir.join("data/images/train").join(&name), calib.join(&name)).unwrap();
    }
    std::fs::write(calib.join("broken.png"), b"not a png at all").unwrap();
    calib
}

#[test]
fn calib_folder_skips_corrupt_images_and_include_exclude_pick_convs() {
    let dir = tempfile::tempdir().unwrap();
    let (_, ck) = setup(dir.path());
    let calib = calib_dir(dir.path(), 5);
    let out = dir.path().join("q.safetensors");
    let mut args = vec!["quantize", "--weights", &ck, "--calib", calib.to_str().unwrap()];
    args.extend(["--out", out.to_str().unwrap(), "--json", "--float-first", "--exclude", "model.2,4"]);
    args.extend(["--include", "model.24.m.0", "--act-symmetric", "--calib-method", "mse"]);
    args.extend(SMALL);
    let o = ycomp(&args);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("broken.png"), "the corrupt image is reported: {err}");
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["calib_images"].as_u64(), Some(5));
    assert!(v["map50_95"].is_null() && v["map50_95_float"].is_null(), "no labels, no mAP");
    let floats: Vec<&str> = v["float_conv_names"].as_array().unwrap().iter().map(|n| n.as_str().unwrap()).collect();
    assert!(floats.contains(&"model.0"), "{floats:?}");
    assert!(floats.iter().any(|n| n.starts_with("model.2.")) && floats.iter().any(|n| n.starts_with("model.4.")));
    assert!(!floats.contains(&"model.24.m.0") && floats.contains(&"model.24.m.1"), "{floats:?}");
    assert!(!floats.iter().any(|n| n.starts_with("model.20")), "`2` matches layer 2 only: {floats:?}");
    let (model, _) = load_int8(&out, &Device::flex()).unwrap();
    assert!(model.act_grid.symmetric);
}

#[test]
fn quantize_errors_are_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let (data, ck) = setup(dir.path());
    let calib = calib_dir(dir.path(), 2);
    let c = calib.to_str().unwrap();
    let missing = dir.path().join("missing.safetensors");
    for (args, needle) in [
        (vec!["--weights", &ck, "--calib", c, "--method", "qat"], "needs --data"),
        (vec!["--weights", &ck, "--calib", c, "--exclude", "model.99"], "model.99"),
        (vec!["--weights", &ck, "--calib", c, "--calib-method", "magic"], "unknown calibration method"),
        (vec!["--weights", &ck, "--calib", c, "--method", "int4"], "unknown quantization method"),
        (vec!["--weights", &ck, "--data", &data, "--include", "nope"], "nope"),
        (vec!["--weights", missing.to_str().unwrap(), "--data", &data], "missing.safetensors"),
        (vec!["--weights", &ck], "--calib"),
        (vec!["--weights", &ck, "--calib", dir.path().join("nowhere").to_str().unwrap()], "nowhere"),
        (vec!["--weights", &ck, "--data", &data, "--noval", "--sensitivity", "--rank-by-map"], "--rank-by-map"),
        (vec!["--weights", &ck, "--calib", c, "--sensitivity", "--keep-float", "999"], "--keep-float 999"),
    ] {
        let mut full = vec!["quantize", "--imgsz", "64"];
        full.extend(args.iter().copied());
        let out = ycomp(&full);
        assert!(!out.status.success(), "{full:?} succeeded");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(needle), "{full:?}: {err}");
        assert_eq!(err.trim().lines().count(), 1, "{full:?}: {err}");
    }
}

#[test]
fn qat_one_epoch_reports_its_epoch_and_writes_a_run_folder() {
    let dir = tempfile::tempdir().unwrap();
    let (data, ck) = setup(dir.path());
    let out = dir.path().join("qat.safetensors");
    let project = dir.path().join("runs");
    // A taken name is incremented, as `ycomp train` does.
    std::fs::create_dir_all(project.join("exp")).unwrap();
    let v = quantize(&[
        "--weights",
        &ck,
        "--data",
        &data,
        "--method",
        "qat",
        "--epochs",
        "1",
        "--calib-images",
        "4",
        "--eval-images",
        "2",
        "--out",
        out.to_str().unwrap(),
        "--project",
        project.to_str().unwrap(),
    ]);
    assert_eq!(v["method"].as_str(), Some("qat"));
    let run = project.join("exp2");
    assert_eq!(v["run_dir"].as_str().map(PathBuf::from), Some(run.clone()), "{v}");
    for f in ["args.yaml", "results.csv", "weights/last.safetensors", "weights/best.safetensors"] {
        assert!(run.join(f).is_file(), "{f} missing in {}", run.display());
    }
    let csv = std::fs::read_to_string(run.join("results.csv")).unwrap();
    assert_eq!(csv.lines().count(), 2, "a header and one epoch: {csv}");
    assert!(csv.lines().next().unwrap().contains("metrics/mAP_0.5:0.95"), "{csv}");
    assert!(is_int8_checkpoint(&run.join("weights/last.safetensors")));
    let epochs = v["qat_epochs"].as_array().unwrap();
    assert_eq!(epochs.len(), 1);
    let loss = epochs[0]["loss"].as_array().unwrap();
    assert!(loss.len() == 3 && loss.iter().all(|l| l.as_f64().is_some_and(f64::is_finite)), "{loss:?}");
    assert_eq!(v["eval_images"].as_u64(), Some(2));
    let (model, meta) = load_int8(&out, &Device::flex()).unwrap();
    assert!(model.convs.iter().all(|c| c.bn.is_none()), "BN is folded in the saved model");
    assert_eq!(meta.get("quant_method").map(String::as_str), Some("qat"));
}

#[test]
fn sensitivity_writes_report_files() {
    let dir = tempfile::tempdir().unwrap();
    let (data, ck) = setup(dir.path());
    let save = dir.path().join("sens");
    let out = dir.path().join("s.safetensors");
    let v = quantize(&[
        "--weights",
        &ck,
        "--data",
        &data,
        "--sensitivity",
        "--keep-float",
        "2",
        "--calib-images",
        "4",
        "--eval-images",
        "2",
        "--out",
        out.to_str().unwrap(),
        "--save-dir",
        save.to_str().unwrap(),
    ]);
    for f in ["sensitivity.md", "sensitivity.json", "sensitivity.png"] {
        assert!(save.join(f).is_file(), "{f} missing");
    }
    let s = &v["sensitivity"];
    let layers = s["layers"].as_array().unwrap();
    assert_eq!(layers.len() as u64, v["quantized_convs"].as_u64().unwrap(), "one row per int8 conv");
    assert!(layers.iter().all(|l| l["name"].is_string() && l["sqnr_db"].is_number()));
    assert_eq!(s["suggestion"]["keep_float"].as_array().unwrap().len(), 2);
    let png = image::open(save.join("sensitivity.png")).unwrap();
    assert!(png.width() > 100 && png.height() > 100);
}
