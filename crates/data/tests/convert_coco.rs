//! COCO JSON → YOLO on a hand-written file, labels checked against hand-computed values, and the
//! result read back as a dataset.

use std::path::Path;

use yolo_compress_data::SampleSource;
use yolo_compress_data::convert::coco::CocoDataset;
use yolo_compress_data::convert::{ConvertError, ConvertOptions, LinkMode, convert_coco};
use yolo_compress_data::dataset::{Split, YoloDataset};

const COCO: &str = r#"{
  "info": {"description": "hand-written"},
  "images": [
    {"id": 1, "file_name": "a.jpg", "width": 100, "height": 50},
    {"id": 2, "file_name": "b.png"},
    {"id": "s3", "file_name": "sub/c.png", "width": 10, "height": 10},
    {"id": 4, "file_name": "missing.jpg", "width": 10, "height": 10},
    {"id": 5, "file_name": "../escape.jpg", "width": 10, "height": 10}
  ],
  "categories": [{"id": 5, "name": "dog"}, {"id": 2, "name": "cat"}, {"id": 9, "name": "bird", "supercategory": "animal"}],
  "annotations": [
    {"id": 10, "image_id": 1, "category_id": 5, "bbox": [10, 5, 20, 10], "iscrowd": 0, "area": 200, "segmentation": [[10, 5, 30, 5, 30, 15]]},
    {"id": 11, "image_id": 1, "category_id": 2, "bbox": [90, 40, 20, 20]},
    {"id": 12, "image_id": 1, "category_id": 2, "bbox": [0, 0, 5, 5], "iscrowd": 1, "segmentation": {"counts": [1, 2], "size": [50, 100]}},
    {"id": 13, "image_id": 99, "category_id": 2, "bbox": [0, 0, 5, 5]},
    {"id": 14, "image_id": 2, "category_id": 7, "bbox": [0, 0, 5, 5]},
    {"id": 15, "image_id": 2, "category_id": 9, "bbox": [0, 0, 40, 20]},
    {"id": 16, "image_id": 2, "category_id": 9, "bbox": [0, 0, 0, 5]},
    {"id": 17, "image_id": 1, "category_id": 9, "bbox": [200, 0, 10, 10]}
  ]
}"#;

/// `src/` with the JSON and the images it names (a.jpg 100x50, b.png 40x20, sub/c.png 10x10).
fn source() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    std::fs::create_dir_all(src.join("sub")).unwrap();
    std::fs::write(src.join("instances.json"), COCO).unwrap();
    image::RgbImage::from_pixel(100, 50, image::Rgb([9, 9, 9])).save(src.join("a.jpg")).unwrap();
    image::RgbImage::from_pixel(40, 20, image::Rgb([9, 9, 9])).save(src.join("b.png")).unwrap();
    image::RgbImage::from_pixel(10, 10, image::Rgb([9, 9, 9])).save(src.join("sub/c.png")).unwrap();
    dir
}

fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

#[test]
fn converts_with_contiguous_ids_clipping_and_reports() {
    let dir = source();
    let out = dir.path().join("out");
    let r = convert_coco(&dir.path().join("src/instances.json"), &out, &ConvertOptions::default()).unwrap();
    assert_eq!(r.names, ["cat", "dog", "bird"]);
    let labels = out.join("labels/train");
    // dog (id 5 → 1): [10, 5, 20, 10] on 100x50; cat (id 2 → 0) clipped to [90, 40, 100, 50].
    assert_eq!(
        read(&labels.join("a.txt")),
        "1 0.200000 0.200000 0.200000 0.200000\n0 0.950000 0.900000 0.100000 0.200000\n"
    );
    // bird (id 9 → 2) covering b.png, whose size comes from its header.
    assert_eq!(read(&labels.join("b.txt")), "2 0.500000 0.500000 1.000000 1.000000\n");
    assert_eq!(read(&labels.join("sub/c.txt")), "");
    assert!(out.join("images/train/a.jpg").is_file() && out.join("images/train/sub/c.png").is_file());
    assert!(!dir.path().join("escape.jpg").exists() && !out.join("images/escape.jpg").exists());

    let s = &r.splits["train"];
    assert_eq!((s.images, s.instances, s.empty), (3, 3, 1));
    assert_eq!(r.ignored["iscrowd"], 1);
    let skipped: Vec<(&str, &str)> = r.skipped.iter().map(|s| (s.item.as_str(), s.reason.as_str())).collect();
    let expect = [
        ("annotation 13", "image_id 99"),
        ("annotation 14", "category_id 7"),
        ("annotation 16", "non-positive"),
        ("annotation 17", "outside"),
        ("image 4 (missing.jpg)", "not found"),
        ("image 5 (../escape.jpg)", "relative path"),
    ];
    assert_eq!(skipped.len(), expect.len(), "{skipped:#?}");
    for ((item, reason), (ei, er)) in skipped.iter().zip(expect) {
        assert!(*item == ei && reason.contains(er), "{item}: {reason}");
    }
    assert!(r.skipped.iter().all(|s| s.file.ends_with("instances.json")));
    assert!(r.warnings.iter().any(|w| w.contains("no val split")));

    // The output is a dataset: data.yaml, labels and images agree.
    let yaml = read(&r.data_yaml);
    assert!(
        yaml.contains("nc: 3") && yaml.contains("train: images/train") && yaml.contains("val: images/train"),
        "{yaml}"
    );
    let ds = YoloDataset::open(&r.data_yaml, Split::Train).unwrap();
    assert_eq!(ds.names(), ["cat", "dog", "bird"]);
    assert_eq!((ds.len(), ds.report().instances, ds.report().corrupt.len()), (3, 3, 0));
    let a = ds.items().iter().position(|i| i.image.ends_with("a.jpg")).unwrap();
    let boxes = ds.get(a).unwrap().boxes;
    for (b, e) in boxes.iter().zip([[10.0, 5.0, 30.0, 15.0], [90.0, 40.0, 100.0, 50.0]]) {
        for (x, y) in b.xyxy.iter().zip(e) {
            assert!((x - y).abs() < 1e-3, "{boxes:?}");
        }
    }
}

#[test]
fn names_select_and_order_classes_and_splits_merge() {
    let dir = source();
    let out = dir.path().join("out");
    let json = dir.path().join("src/instances.json");
    let names = Some(vec!["bird".to_string(), "cat".to_string(), "zebra".to_string()]);
    let opts = ConvertOptions { names: names.clone(), ..ConvertOptions::default() };
    let r = convert_coco(&json, &out, &opts).unwrap();
    assert_eq!(read(&out.join("labels/train/a.txt")), "1 0.950000 0.900000 0.100000 0.200000\n");
    assert_eq!(read(&out.join("labels/train/b.txt")), "0 0.500000 0.500000 1.000000 1.000000\n");
    assert_eq!(r.ignored["not in --names"], 1);
    assert!(r.warnings.iter().any(|w| w.contains("zebra")));

    // The same JSON as the val split, into the same folder: data.yaml gains `val`.
    let opts = ConvertOptions { split: Some(Split::Val), link: LinkMode::Symlink, names, ..ConvertOptions::default() };
    let r = convert_coco(&json, &out, &opts).unwrap();
    assert!(r.warnings.iter().all(|w| !w.contains("no val split")));
    let yaml = read(&out.join("data.yaml"));
    assert!(yaml.contains("train: images/train") && yaml.contains("val: images/val"), "{yaml}");
    assert!(std::fs::symlink_metadata(out.join("images/val/a.jpg")).unwrap().file_type().is_symlink());
    assert_eq!(YoloDataset::open(out.join("data.yaml"), Split::Val).unwrap().report().images, 3);

    // Other names into the same folder: refused, naming data.yaml.
    let e = convert_coco(&json, &out, &ConvertOptions::default()).unwrap_err();
    assert!(matches!(e, ConvertError::Existing { .. }) && e.to_string().contains("data.yaml"), "{e}");
    let e = convert_coco(&json, &out, &ConvertOptions { names: Some(vec![]), ..Default::default() }).unwrap_err();
    assert!(matches!(e, ConvertError::Options(_)), "{e}");
}

#[cfg(unix)]
#[test]
fn hard_links_and_converting_in_place_keep_the_images() {
    use std::os::unix::fs::MetadataExt;
    let dir = source();
    let out = dir.path().join("out");
    let json = dir.path().join("src/instances.json");
    let opts = ConvertOptions { link: LinkMode::Hardlink, ..ConvertOptions::default() };
    convert_coco(&json, &out, &opts).unwrap();
    assert_eq!(std::fs::metadata(out.join("images/train/a.jpg")).unwrap().nlink(), 2);
    // Images already where the output goes: nothing is copied over itself or deleted.
    let before = std::fs::read(out.join("images/train/b.png")).unwrap();
    let opts = ConvertOptions { images: Some(out.join("images/train")), ..ConvertOptions::default() };
    convert_coco(&json, &out, &opts).unwrap();
    assert_eq!(std::fs::read(out.join("images/train/b.png")).unwrap(), before);
}

#[test]
fn malformed_input_is_an_error_naming_file_and_entry() {
    let origin = Path::new("x/instances.json");
    let cases = [
        ("{\"images\": [", "instances.json", "line 1"),
        ("[]", "instances.json", "invalid COCO JSON"),
        (r#"{"images": []}"#, "categories", "missing"),
        (r#"{"categories": []}"#, "images", "missing"),
        (r#"{"images": [{"id": 1}], "categories": []}"#, "images[0] (id 1)", "file_name"),
        (r#"{"images": [{"id": 1.5, "file_name": "a"}], "categories": []}"#, "images[0]", "id"),
        (
            r#"{"images": [{"id": 1, "file_name": "a"}, {"id": 1, "file_name": "b"}], "categories": []}"#,
            "images[1] (id 1)",
            "duplicate",
        ),
        (r#"{"images": [{"id": 1, "file_name": "a", "width": -3}], "categories": []}"#, "images[0] (id 1)", "`width`"),
        (r#"{"images": [], "categories": [{"id": 1}]}"#, "categories[0] (id 1)", "name"),
        (
            r#"{"images": [], "categories": [{"id": 1, "name": "a"}, {"id": 1, "name": "b"}]}"#,
            "categories[1]",
            "duplicate",
        ),
        (
            r#"{"images": [], "categories": [], "annotations": [{"id": 7, "image_id": 1, "category_id": 1, "bbox": [1, 2, 3]}]}"#,
            "annotations[0] (id 7)",
            "bbox",
        ),
        (
            r#"{"images": [], "categories": [], "annotations": [{"image_id": 1, "category_id": "x", "bbox": [1, 2, 3, 4]}]}"#,
            "annotations[0]",
            "category_id",
        ),
        (
            r#"{"images": [], "categories": [], "annotations": [{"id": 3, "image_id": 1, "category_id": 1, "bbox": [1, 2, 3, 4], "iscrowd": "yes"}]}"#,
            "annotations[0] (id 3)",
            "iscrowd",
        ),
    ];
    for (text, at, what) in cases {
        let e = CocoDataset::parse(text, origin).unwrap_err();
        let msg = e.to_string();
        assert!(msg.contains("instances.json") && msg.contains(at) && msg.contains(what), "{text}: {msg}");
    }
    // No `annotations` (a test-set file): fine, every image a background.
    let c = CocoDataset::parse(r#"{"images": [{"id": "a", "file_name": "a.jpg"}], "categories": []}"#, origin).unwrap();
    assert!(c.annotations.is_empty());
    // Sizes written as integral floats are read; 0 means unknown.
    let c = CocoDataset::parse(
        r#"{"images": [{"id": 1, "file_name": "a.jpg", "width": 640.0, "height": 0}], "categories": []}"#,
        origin,
    )
    .unwrap();
    assert_eq!((c.images[0].width, c.images[0].height), (Some(640), None));

    let dir = tempfile::tempdir().unwrap();
    let e = convert_coco(&dir.path().join("nope.json"), dir.path(), &ConvertOptions::default()).unwrap_err();
    assert!(matches!(e, ConvertError::Read { .. }) && e.to_string().contains("nope.json"), "{e}");
}
