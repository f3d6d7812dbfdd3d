//! `ycomp data check` and `ycomp data convert` as a user runs them: the JSON contract, the table,
//! and one-line errors with a non-zero exit code.

mod common;
use common::{ok, ok_json, ycomp};
use std::path::Path;

fn copy_dir(src: &Path, dest: &Path) {
    std::fs::create_dir_all(dest).unwrap();
    for e in std::fs::read_dir(src).unwrap() {
        let p = e.unwrap().path();
        let to = dest.join(p.file_name().unwrap());
        if p.is_dir() {
            copy_dir(&p, &to);
        } else if p.extension().is_none_or(|x| x != "cache") {
            std::fs::copy(&p, &to).unwrap();
        }
    }
}

/// A copy of the data crate's fixture with deliberately broken files.
fn corrupt_dataset() -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("../data/tests/fixtures/datasets/corrupt");
    copy_dir(&src, dir.path());
    let yaml = dir.path().join("data.yaml").display().to_string();
    (dir, yaml)
}

#[test]
fn check_json_has_the_contract_fields_and_every_bad_file() {
    let (_dir, yaml) = corrupt_dataset();
    let v = ok_json(&["data", "check", "--data", &yaml, "--json"]);
    let obj = v.as_object().unwrap();
    assert_eq!(obj.keys().collect::<Vec<_>>(), ["splits"]);
    let splits = v["splits"].as_object().unwrap();
    assert_eq!(splits.keys().collect::<Vec<_>>(), ["train", "val"]);
    let train = &v["splits"]["train"];
    for (k, e) in [("images", 5), ("labels", 4), ("instances", 4), ("empty", 1), ("missing_labels", 1)] {
        assert_eq!(train[k], e, "{k}: {train}");
    }
    let corrupt = train["corrupt"].as_array().unwrap();
    assert_eq!(corrupt.len(), 9);
    let find = |name: &str| {
        corrupt
            .iter()
            .find(|c| c["file"].as_str().unwrap().ends_with(name))
            .unwrap_or_else(|| panic!("{name} not in {corrupt:?}"))["reason"]
            .as_str()
            .unwrap()
            .to_string()
    };
    assert!(find("bomb.png").contains("decompression bomb"));
    assert!(find("truncated.jpg").contains("truncated JPEG"));
    assert!(find("class99.txt").contains("class id 99"));
    assert_eq!(v["splits"]["val"]["images"], 2);
    assert_eq!(v["splits"]["val"]["corrupt"].as_array().unwrap().len(), 0);

    // The second run reads the cache and reports the same.
    let again = ok_json(&["data", "check", "--data", &yaml, "--json"]);
    assert_eq!(again["splits"]["train"]["cache_hit"], true);
    assert_eq!(again["splits"]["train"]["corrupt"], v["splits"]["train"]["corrupt"]);
}

#[test]
fn check_prints_a_table_and_the_reasons() {
    let (_dir, yaml) = corrupt_dataset();
    let out = ok(&["data", "check", "--data", &yaml, "--splits", "train", "--no-cache"]);
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("3 classes (box, bar, dot)"), "{text}");
    let row = text.lines().find(|l| l.starts_with("train")).unwrap();
    let cols: Vec<&str> = row.split_whitespace().collect();
    assert_eq!(cols, ["train", "5", "4", "4", "1", "1", "9", "1", "verified"], "{text}");
    assert!(!text.lines().any(|l| l.starts_with("val ")), "{text}");
    assert!(text.contains("images/train/bomb.png: image is 100000x100000"), "{text}");
    assert!(text.contains("labels/train/nan.txt: line 1: yc nan is not finite"), "{text}");
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("duplicate label row removed"), "{err}");
}

#[test]
fn check_fails_with_one_line_when_a_split_has_no_usable_image() {
    let (dir, yaml) = corrupt_dataset();
    let val = dir.path().join("images/val");
    for e in std::fs::read_dir(&val).unwrap() {
        std::fs::write(e.unwrap().path(), b"garbage").unwrap();
    }
    let out = ycomp(&["data", "check", "--data", &yaml, "--json"]);
    assert!(!out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["splits"]["val"]["images"], 0);
    let err = String::from_utf8(out.stderr).unwrap();
    let line = err.lines().last().unwrap();
    assert!(line.starts_with("error: ") && line.contains("`val` has no usable images"), "{err}");

    for args in [
        vec!["data", "check", "--data", "/nonexistent/data.yaml"],
        vec!["data", "check", "--data", &yaml, "--splits", "test"],
    ] {
        let out = ycomp(&args);
        assert!(!out.status.success());
        let err = String::from_utf8(out.stderr).unwrap();
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(err.starts_with("error: "), "{err}");
    }
}

#[test]
fn convert_coco_then_check_the_result() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("coco");
    std::fs::create_dir_all(src.join("imgs")).unwrap();
    image::RgbImage::from_pixel(64, 32, image::Rgb([1, 2, 3])).save(src.join("imgs/a.png")).unwrap();
    image::RgbImage::from_pixel(20, 20, image::Rgb([1, 2, 3])).save(src.join("imgs/b.png")).unwrap();
    let json = src.join("instances_val.json");
    std::fs::write(
        &json,
        r#"{"images": [{"id": 1, "file_name": "a.png", "width": 64, "height": 32}, {"id": 2, "file_name": "b.png"}],
            "categories": [{"id": 3, "name": "car"}, {"id": 1, "name": "person"}],
            "annotations": [{"id": 1, "image_id": 1, "category_id": 3, "bbox": [0, 0, 32, 16]},
                            {"id": 2, "image_id": 2, "category_id": 1, "bbox": [5, 5, 10, 10], "iscrowd": 1},
                            {"id": 3, "image_id": 7, "category_id": 1, "bbox": [5, 5, 10, 10]}]}"#,
    )
    .unwrap();
    let out = dir.path().join("yolo");
    let (json_s, out_s, imgs) = (json.display().to_string(), out.display().to_string(), src.join("imgs"));
    let imgs = imgs.display().to_string();
    let r = ok_json(&[
        "data", "convert", "--from", "coco", "--src", &json_s, "--images", &imgs, "--out", &out_s, "--split", "val",
        "--json",
    ]);
    assert_eq!(r["names"], serde_json::json!(["person", "car"]));
    assert_eq!(r["splits"]["val"]["images"], 2);
    assert_eq!(r["ignored"]["iscrowd"], 1);
    assert_eq!(r["skipped"][0]["item"], "annotation 3");
    assert_eq!(
        std::fs::read_to_string(out.join("labels/val/a.txt")).unwrap(),
        "1 0.250000 0.250000 0.500000 0.500000\n"
    );

    let yaml = out.join("data.yaml").display().to_string();
    let v = ok_json(&["data", "check", "--data", &yaml, "--json"]);
    assert_eq!(v["splits"]["val"]["images"], 2);
    assert_eq!(v["splits"]["val"]["instances"], 1);
    assert_eq!(v["splits"]["val"]["empty"], 1);
}

#[test]
fn convert_voc_with_names() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("VOC");
    for d in ["Annotations", "JPEGImages"] {
        std::fs::create_dir_all(root.join(d)).unwrap();
    }
    image::RgbImage::from_pixel(10, 10, image::Rgb([1, 2, 3])).save(root.join("JPEGImages/x.jpg")).unwrap();
    std::fs::write(
        root.join("Annotations/x.xml"),
        "<annotation><object><name>dog</name><bndbox><xmin>1</xmin><ymin>1</ymin><xmax>5</xmax><ymax>10</ymax>\
         </bndbox></object><object><name>cat</name><bndbox><xmin>1</xmin><ymin>1</ymin><xmax>2</xmax><ymax>2</ymax>\
         </bndbox></object></annotation>",
    )
    .unwrap();
    let out = dir.path().join("yolo");
    let (root_s, out_s) = (root.display().to_string(), out.display().to_string());
    let o = ok(&["data", "convert", "--from", "voc", "--src", &root_s, "--out", &out_s, "--names", "dog"]);
    let text = String::from_utf8(o.stdout).unwrap();
    assert!(text.contains("train: 1 images, 1 instances") && text.contains("left out: 1 (not in --names)"), "{text}");
    assert_eq!(
        std::fs::read_to_string(out.join("labels/train/x.txt")).unwrap(),
        "0 0.250000 0.500000 0.500000 1.000000\n"
    );

    let bad = ycomp(&["data", "convert", "--from", "voc", "--src", &out_s, "--out", &out_s]);
    assert!(!bad.status.success());
    let err = String::from_utf8(bad.stderr).unwrap();
    assert!(err.starts_with("error: ") && err.contains("Annotations") && err.lines().count() == 1, "{err}");
}
