//! The `ycomp` binary as a user runs it: JSON contracts of `info`, `models`, `detect`, `export`, and
//! one-line errors with a non-zero exit code.

mod common;
use common::{ok_json, ycomp};
use std::path::{Path, PathBuf};
use std::process::Command;

fn here(p: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(p)
}

fn weights() -> String {
    here("../model/tests/fixtures/yolov5n_random.pt").display().to_string()
}

#[test]
fn info_json_reports_ultralytics_counts() {
    let v = ok_json(&["info", "--model", "yolov5s.yaml", "--json"]);
    assert_eq!(v["params"], 7_235_389);
    assert_eq!(v["layers"], 214);
    assert_eq!(v["imgsz"], 640);
    let g = v["gflops"].as_f64().unwrap();
    assert!((g - 16.6252544).abs() < 1e-6, "{g}");
    assert!((v["macs"].as_f64().unwrap() * 2.0 / 1e9 - g).abs() < 1e-9);
    let fused = ok_json(&["info", "--model", "yolov5s.yaml", "--fused", "--imgsz", "320", "--json"]);
    assert_eq!(fused["params"], 7_225_885);
    assert!((fused["gflops"].as_f64().unwrap() - 16.4360192 / 4.0).abs() < 1e-6);
}

#[test]
fn models_lists_builtin_configs() {
    let v = ok_json(&["models", "--json"]);
    let names: Vec<&str> = v.as_array().unwrap().iter().map(|x| x.as_str().unwrap()).collect();
    for n in [
        "yolov5n.yaml",
        "yolov5s.yaml",
        "yolov5m.yaml",
        "yolov5l.yaml",
        "yolov5x.yaml",
        "yolov5s-ghost.yaml",
        "yolov5-ghostnet.yaml",
    ] {
        assert!(names.contains(&n), "{n} missing from {names:?}");
    }
}

/// `detect` on ultralytics' own letterboxed input (no resize happens at imgsz 320) reproduces the
/// detections of detect.py; the architecture is inferred from the state dict.
#[test]
fn detect_json_matches_detect_py_and_writes_outputs() {
    let r: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(here("tests/fixtures/detect_yolov5n_random.json")).unwrap())
            .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let src = here("tests/fixtures/scene_a_letterboxed_320.png");
    let json_path = dir.path().join("dets.json");
    let save_dir = dir.path().join("annotated");
    let w = weights();
    let v = ok_json(&[
        "detect",
        "--weights",
        &w,
        "--source",
        src.to_str().unwrap(),
        "--imgsz",
        "320",
        "--json",
        "--save-json",
        json_path.to_str().unwrap(),
        "--save-dir",
        save_dir.to_str().unwrap(),
        "--quiet",
    ]);
    let got = v.as_array().unwrap();
    let want = r["images"]["scene_a.png"].as_array().unwrap();
    assert_eq!(got.len(), want.len());
    for (g, w) in got.iter().zip(want) {
        assert_eq!(g["image"], "scene_a_letterboxed_320.png");
        assert_eq!(g["class_id"], w["class_id"]);
        assert!(g["class_name"].is_string());
        assert!((g["score"].as_f64().unwrap() - w["score"].as_f64().unwrap()).abs() < 1e-4);
        for k in 0..4 {
            let lim = if k % 2 == 0 { 320.0 } else { 224.0 };
            let want_k = w["bbox_xyxy_letterboxed"][k].as_f64().unwrap().clamp(0.0, lim);
            assert!((g["bbox_xyxy"][k].as_f64().unwrap() - want_k).abs() < 1e-2, "{g} vs {w}");
        }
    }
    let saved: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&json_path).unwrap()).unwrap();
    assert_eq!(saved, v);
    let annotated = image::open(save_dir.join("scene_a_letterboxed_320.png")).unwrap().to_rgb8();
    let original = image::open(&src).unwrap().to_rgb8();
    assert_eq!(annotated.dimensions(), original.dimensions());
    assert_ne!(annotated.as_raw(), original.as_raw(), "boxes were drawn");
}

#[test]
fn export_to_native_checkpoint_and_reload() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("n.safetensors");
    let w = weights();
    let e = ok_json(&["export", "--model", "yolov5n.yaml", "--weights", &w, "--out", out.to_str().unwrap(), "--json"]);
    assert!(e["bytes"].as_u64().unwrap() > 7_000_000);
    let info = ok_json(&["info", "--weights", out.to_str().unwrap(), "--json"]);
    assert_eq!(info["params"], 1_872_157);
    let src = here("tests/fixtures/scene_b_letterboxed_320.png");
    let a = ok_json(&[
        "detect",
        "--weights",
        out.to_str().unwrap(),
        "--source",
        src.to_str().unwrap(),
        "--imgsz",
        "320",
        "--json",
        "--quiet",
    ]);
    let b =
        ok_json(&["detect", "--weights", &w, "--source", src.to_str().unwrap(), "--imgsz", "320", "--json", "--quiet"]);
    assert_eq!(a, b);
    assert!(!a.as_array().unwrap().is_empty());
}

#[test]
fn errors_are_one_line_and_non_zero() {
    for (args, needle) in [
        (vec!["info", "--model", "yolov5s.yaml", "--device", "cuda"], "`cuda` cargo feature"),
        (vec!["info", "--model", "no-such-model.yaml"], "no-such-model.yaml"),
        (vec!["info", "--weights", "/nonexistent/w.pt"], "/nonexistent/w.pt"),
        (vec!["detect", "--model", "yolov5n.yaml", "--source", "/nonexistent/dir"], "/nonexistent/dir"),
        (vec!["info", "--model", "yolov5n.yaml", "--imgsz", "100"], "multiple of the model's stride"),
    ] {
        let out = ycomp(&args);
        assert!(!out.status.success(), "{args:?} should fail");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(err.trim_end().lines().count(), 1, "{args:?}: {err}");
        assert!(err.contains(needle), "{args:?}: {err}");
    }
}

#[test]
fn a_closed_stdout_ends_quietly_instead_of_panicking() {
    use std::process::Stdio;
    // `ycomp info … | head -1`: the reader goes away before the table is written.
    let mut child = Command::new(env!("CARGO_BIN_EXE_ycomp"))
        .args(["info", "--model", "yolov5n.yaml"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("ycomp runs");
    drop(child.stdout.take());
    let out = child.wait_with_output().expect("ycomp exits");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(out.status.success(), "{:?}: {stderr}", out.status);
}
