//! `ycomp synth` as a user runs it: the dataset on disk, its JSON summary, determinism by seed,
//! and one-line errors.

mod common;
use common::ycomp;
use std::path::Path;
use std::process::Output;

fn synth(out: &Path, extra: &[&str]) -> Output {
    let out = out.to_str().unwrap();
    let mut args = vec!["synth", "--out", out, "--images", "6", "--val", "2", "--classes", "5", "--imgsz", "64"];
    args.extend_from_slice(extra);
    ycomp(&args)
}

#[test]
fn synth_writes_a_yolo_dataset_and_reports_it() {
    let dir = tempfile::tempdir().unwrap();
    let out = synth(&dir.path().join("ds"), &["--seed", "5", "--json"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!((v["train_images"].as_u64(), v["val_images"].as_u64()), (Some(6), Some(2)));
    assert_eq!(v["names"].as_array().unwrap().len(), 5);
    let instances = v["train_instances"].as_u64().unwrap() + v["val_instances"].as_u64().unwrap();
    let per_class: u64 = v["instances_per_class"].as_array().unwrap().iter().map(|x| x.as_u64().unwrap()).sum();
    assert_eq!(instances, per_class);

    let ds = dir.path().join("ds");
    assert_eq!(Path::new(v["data_yaml"].as_str().unwrap()), std::fs::canonicalize(ds.join("data.yaml")).unwrap());
    let yaml = std::fs::read_to_string(ds.join("data.yaml")).unwrap();
    assert!(yaml.contains("train: images/train") && yaml.contains("val: images/val") && yaml.contains("nc: 5"));
    let mut rows = 0;
    for split in ["train", "val"] {
        let n = if split == "train" { 6 } else { 2 };
        for i in 0..n {
            let img = image::open(ds.join(format!("images/{split}/{i:06}.png"))).unwrap();
            assert_eq!((img.width(), img.height()), (64, 64));
            rows += std::fs::read_to_string(ds.join(format!("labels/{split}/{i:06}.txt"))).unwrap().lines().count();
        }
    }
    assert_eq!(rows as u64, instances);

    // Same seed: same bytes; another seed: other images.
    let again = synth(&dir.path().join("again"), &["--seed", "5", "--quiet", "--threads", "1"]);
    assert!(again.status.success(), "{}", String::from_utf8_lossy(&again.stderr));
    let other = synth(&dir.path().join("other"), &["--seed", "6", "--quiet"]);
    assert!(other.status.success());
    let file = "images/train/000003.png";
    let bytes = |d: &str| std::fs::read(dir.path().join(d).join(file)).unwrap();
    assert!(bytes("ds") == bytes("again"));
    assert!(bytes("ds") != bytes("other"));
}

#[test]
fn synth_errors_are_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let bad = synth(&dir.path().join("bad"), &["--min-objects", "9", "--max-objects", "2"]);
    assert!(!bad.status.success());
    let err = String::from_utf8_lossy(&bad.stderr);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(err.contains("min_objects"), "{err}");

    let ds = dir.path().join("ds");
    assert!(synth(&ds, &["--quiet"]).status.success());
    let again = synth(&ds, &["--quiet"]);
    assert!(!again.status.success());
    let err = String::from_utf8_lossy(&again.stderr);
    assert!(err.contains("--overwrite") && err.trim().lines().count() == 1, "{err}");
    assert!(synth(&ds, &["--quiet", "--overwrite"]).status.success());
}
