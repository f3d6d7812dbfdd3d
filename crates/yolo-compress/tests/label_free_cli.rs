//! The label-free path on the command line: `detect --save-txt` writes detect.py's label files,
//! `val --reference --source` scores a model against a reference's detections on unlabeled
//! images, `train --unlabeled --teacher` pseudo-labels a folder into a YOLO dataset in the run
//! folder, trains on it and resumes; one-line errors for the flag combinations that cannot work.

mod common;
use common::{ok_in, ok_json, ok_json_in, ycomp};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use yolo_compress::model::weights::save_checkpoint;

fn here(p: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(p)
}

/// An ultralytics-initialised random yolov5n (80 classes) that detects plenty at conf 0.25.
fn weights() -> String {
    here("../model/tests/fixtures/yolov5n_random.pt").display().to_string()
}

/// Six real frames, 160×120.
fn frames() -> String {
    here("tests/fixtures/frames").display().to_string()
}

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn detect_save_txt_writes_the_json_detections_as_yolo_rows() {
    let dir = tempfile::tempdir().unwrap();
    let save = dir.path().join("out");
    let (w, src) = (weights(), frames());
    let args = ["detect", "--weights", &w, "--source", &src, "--imgsz", "128", "--save-txt", "--save-conf"];
    let mut args = args.to_vec();
    args.extend(["--save-dir", save.to_str().unwrap(), "--nosave", "--json", "--quiet"]);
    let v = ok_json(&args);
    let dets = v.as_array().unwrap();
    assert!(dets.len() >= 6, "{} detections", dets.len());
    let mut lines_seen = 0;
    for image in ["f0000.jpg", "f0080.jpg", "f0160.jpg", "f0240.jpg", "f0320.jpg", "f0399.jpg"] {
        let mine: Vec<&serde_json::Value> = dets.iter().filter(|d| d["image"] == image).collect();
        let txt = save.join("labels").join(image.replace(".jpg", ".txt"));
        if mine.is_empty() {
            assert!(!txt.exists(), "detect.py writes no file for an image without detections");
            continue;
        }
        let text = std::fs::read_to_string(&txt).unwrap();
        let rows: Vec<Vec<f64>> =
            text.lines().map(|l| l.split(' ').map(|f| f.parse::<f64>().unwrap()).collect()).collect();
        assert_eq!(rows.len(), mine.len(), "{image}");
        for (row, d) in rows.iter().zip(&mine) {
            assert_eq!(row.len(), 6, "class xc yc w h conf: {row:?}");
            assert_eq!(row[0] as u64, d["class_id"].as_u64().unwrap());
            let b: Vec<f64> = d["bbox_xyxy"].as_array().unwrap().iter().map(|x| x.as_f64().unwrap()).collect();
            let want = [(b[0] + b[2]) / 320.0, (b[1] + b[3]) / 240.0, (b[2] - b[0]) / 160.0, (b[3] - b[1]) / 120.0];
            for k in 0..4 {
                assert!((row[k + 1] - want[k]).abs() < 1e-5, "{image}: {row:?} vs {d}");
                assert!((0.0..=1.0).contains(&row[k + 1]));
            }
            assert!((row[5] - d["score"].as_f64().unwrap()).abs() < 1e-5);
        }
        lines_seen += rows.len();
    }
    assert_eq!(lines_seen, dets.len());
    assert!(!save.join("f0000.jpg").exists(), "--nosave: no annotated images");

    // Without --save-dir: runs/detect/exp, then exp2; no confidence column without --save-conf.
    let args = ["detect", "--weights", &w, "--source", &src, "--imgsz", "128", "--save-txt", "--quiet"];
    ok_in(dir.path(), &args);
    ok_in(dir.path(), &args);
    let exp = dir.path().join("runs/detect/exp");
    let any = std::fs::read_dir(exp.join("labels")).unwrap().next().unwrap().unwrap().path();
    let first = std::fs::read_to_string(any).unwrap();
    assert_eq!(first.lines().next().unwrap().split(' ').count(), 5, "{first}");
    assert!(exp.join("f0000.jpg").is_file(), "annotated images go to the default folder too");
    assert!(dir.path().join("runs/detect/exp2/labels").is_dir());

    let out = ycomp(&["detect", "--weights", &w, "--source", &src, "--save-conf"]);
    assert!(!out.status.success() && stderr(&out).contains("--save-txt"), "{}", stderr(&out));
}

/// [`common::peaked_reference`] as a native checkpoint in `dir`.
fn peaked_checkpoint(dir: &Path) -> String {
    let device = burn::prelude::Device::flex();
    let ck = dir.join("reference.safetensors");
    save_checkpoint(&common::peaked_reference(&device), &ck, &BTreeMap::new()).unwrap();
    ck.display().to_string()
}

#[test]
fn val_against_a_reference_scores_fidelity_on_unlabeled_images() {
    let dir = tempfile::tempdir().unwrap();
    let (w, src) = (peaked_checkpoint(dir.path()), frames());
    // The reference's NMS IoU on both sides (see tests/reference.rs: a random model's boxes overlap).
    let small = ["--imgsz", "128", "--batch", "4", "--workers", "1", "--iou", "0.45", "--json"];
    let mut args = vec!["val", "--weights", &w, "--reference", &w, "--source", &src];
    args.extend(small);
    let v = ok_json(&args);
    assert_eq!(v["images"], 6);
    assert!(v["instances"].as_u64().unwrap() >= 6, "{v}");
    assert!(v["map50_95"].as_f64().unwrap() >= 0.9, "a model is faithful to itself: {}", v["map50_95"]);
    assert_eq!(v["reference"], w.as_str());
    assert_eq!(v["source"], src.as_str());
    for key in ["precision", "recall", "map50", "per_class", "speed_ms"] {
        assert!(!v[key].is_null(), "{key} missing: {v}");
    }
    assert!(v["per_class"].as_array().unwrap().iter().all(|c| c["name"].is_string() && c["ap50_95"].is_number()));

    // A higher reference threshold keeps fewer boxes.
    args.extend(["--reference-conf", "0.5"]);
    let strict = ok_json(&args);
    assert!(strict["instances"].as_u64() < v["instances"].as_u64(), "{} vs {}", strict["instances"], v["instances"]);

    let data = here("tests/fixtures/none.yaml").display().to_string();
    for (extra, needle) in [
        (vec!["--data", &data, "--source", &src, "--reference", &w], "not both"),
        (vec![], "give --data"),
        (vec!["--data", &data, "--reference", &w], "--reference needs --source"),
        (vec!["--source", &src], "--source needs --reference"),
    ] {
        let mut args = vec!["val", "--weights", &w];
        args.extend(extra);
        let out = ycomp(&args);
        let err = stderr(&out);
        assert!(!out.status.success() && err.contains(needle), "{args:?}: {err}");
        assert_eq!(err.trim().lines().count(), 1, "{err}");
    }
}

#[test]
fn train_unlabeled_pseudo_labels_a_folder_trains_and_resumes() {
    let dir = tempfile::tempdir().unwrap();
    let project = dir.path().join("runs");
    let (w, src) = (peaked_checkpoint(dir.path()), frames());
    let mut args = vec!["train", "--model", "yolov5n.yaml", "--unlabeled", &src, "--teacher", &w, "--holdout", "2"];
    args.extend(
        "--epochs 2 --stop-after 1 --imgsz 64 --batch 4 --workers 1 --noplots --name lf --json".split_whitespace(),
    );
    args.extend(["--project", project.to_str().unwrap()]);
    let v = ok_json(&args);
    let run = project.join("lf");
    assert_eq!(Path::new(v["run_dir"].as_str().unwrap()), run, "the trainer writes into the run that holds the data");
    assert_eq!(v["epochs_done"], 1);
    let pseudo = run.join("pseudo");
    let count = |p: PathBuf| std::fs::read_dir(p).unwrap().count();
    assert_eq!(count(pseudo.join("images/train")), 4);
    assert_eq!(count(pseudo.join("images/val")), 2, "--holdout 2");
    assert!(pseudo.join("images/val/f0399.jpg").exists() && pseudo.join("images/val/f0320.jpg").exists());
    assert!(pseudo.join("labels/val/f0399.txt").is_file() && pseudo.join("labels/train/f0000.txt").is_file());
    let yaml = std::fs::read_to_string(pseudo.join("data.yaml")).unwrap();
    assert!(yaml.contains("nc: 80") && yaml.contains("person"), "{yaml}");
    assert_eq!(std::fs::read_to_string(run.join("results.csv")).unwrap().lines().count(), 2, "header + 1 epoch");
    assert!(run.join("weights/last.safetensors").is_file() && run.join("weights/best.safetensors").is_file());
    let args_yaml = std::fs::read_to_string(run.join("args.yaml")).unwrap();
    assert!(args_yaml.contains("pseudo/data.yaml") && args_yaml.contains("unlabeled: "), "{args_yaml}");
    assert!(v["epochs"][0]["extra_loss"].as_f64().is_some_and(|x| x.is_finite()), "distilled from the teacher: {v}");

    // --resume needs nothing else: the data and the teacher come from args.yaml; from another folder.
    let other = tempfile::tempdir().unwrap();
    let v = ok_json_in(other.path(), &["train", "--resume", run.to_str().unwrap(), "--json", "--quiet"]);
    assert_eq!(v["epochs_done"], 2);
    assert_eq!(std::fs::read_to_string(run.join("results.csv")).unwrap().lines().count(), 3);
    assert!(!project.join("lf2").exists());

    let out = ycomp(&["train", "--model", "yolov5n.yaml", "--unlabeled", &src, "--project", project.to_str().unwrap()]);
    assert!(!out.status.success() && stderr(&out).contains("--teacher"), "{}", stderr(&out));
    let out = ycomp(&["train", "--model", "yolov5n.yaml", "--unlabeled", &src, "--data", "x.yaml", "--teacher", &w]);
    assert!(!out.status.success() && stderr(&out).contains("--data"), "{}", stderr(&out));
    let out = ycomp(&["train", "--model", "yolov5n.yaml", "--project", project.to_str().unwrap()]);
    assert!(!out.status.success() && stderr(&out).contains("--unlabeled"), "{}", stderr(&out));
}
