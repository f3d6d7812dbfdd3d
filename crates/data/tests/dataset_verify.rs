//! Verification of a YOLO dataset with deliberately broken files (the committed fixture
//! `tests/fixtures/datasets/corrupt/`, written by `dataset_fixture_gen.rs`), the cache, and the
//! dataset as a `SampleSource`.

use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::time::Duration;

use yolo_compress_data::SampleSource;
use yolo_compress_data::dataset::{
    DataConfig, DatasetError, LabelRow, Split, SplitReport, VerifyOptions, YoloDataset, cache_path, verify_split,
};

/// A fresh copy of the fixture (verification writes its cache next to the labels).
fn fixture() -> (tempfile::TempDir, PathBuf) {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/datasets/corrupt");
    let dir = tempfile::tempdir().unwrap();
    copy_dir(&src, dir.path());
    let yaml = dir.path().join("data.yaml");
    (dir, yaml)
}

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

fn no_cache() -> VerifyOptions {
    VerifyOptions { cache: false, ..VerifyOptions::default() }
}

fn file_name(p: &str) -> String {
    Path::new(p).file_name().unwrap().to_string_lossy().into_owned()
}

fn reasons(r: &SplitReport) -> BTreeMap<String, String> {
    r.corrupt.iter().map(|c| (file_name(&c.image), format!("{}: {}", file_name(&c.file), c.reason))).collect()
}

#[test]
fn each_broken_file_is_reported_with_its_reason_and_the_rest_is_usable() {
    let (_dir, yaml) = fixture();
    let ds = YoloDataset::open_with(&yaml, Split::Train, &no_cache()).unwrap();
    let r = ds.report();
    let expected = [
        ("bomb.png", "bomb.png: image is 100000x100000 = 10000000000 px, above the limit of 178956970 px"),
        ("class99.png", "class99.txt: line 2: class id 99 is not below nc = 3"),
        ("coords15.png", "coords15.txt: line 1: xc 1.5 is outside [0, 1]"),
        ("fields4.png", "fields4.txt: line 1: 4 fields; expected 5"),
        ("nan.png", "nan.txt: line 1: yc nan is not finite"),
        ("negsize.png", "negsize.txt: line 1: non-positive width -0.2"),
        ("text.jpg", "text.jpg: not an image"),
        ("truncated.jpg", "truncated.jpg: truncated JPEG"),
        ("zero.png", "zero.png: empty file (0 bytes)"),
    ];
    let got = reasons(r);
    assert_eq!(got.len(), expected.len(), "{got:#?}");
    for (image, reason) in expected {
        let g = &got[image];
        assert!(g.starts_with(reason), "{image}: got {g:?}, expected {reason:?}");
    }
    assert!(got["bomb.png"].contains("decompression bomb"));
    assert_eq!(
        (r.images, r.labels, r.instances, r.empty, r.missing_labels, r.duplicates_removed),
        (5, 4, 4, 1, 1, 1),
        "{r:#?}"
    );
    assert!(r.warnings.iter().any(|w| w.contains("dupes.txt") && w.contains("1 duplicate label row removed")));
    let names: Vec<String> = ds.items().iter().map(|i| file_name(&i.image.display().to_string())).collect();
    assert_eq!(names, ["background.png", "dupes.png", "empty.bmp", "good.jpg", "polygon.webp"]);
    assert_eq!(ds.names(), ["box", "bar", "dot"]);
    assert_eq!(ds.nc(), 3);

    let json = serde_json::to_value(r).unwrap();
    for key in ["images", "labels", "instances", "empty", "missing_labels", "corrupt"] {
        assert!(json.get(key).is_some(), "{key} missing from {json}");
    }
    assert!(json["corrupt"][0].get("file").is_some() && json["corrupt"][0].get("reason").is_some());
}

#[test]
fn samples_decode_with_boxes_in_pixels() {
    let (_dir, yaml) = fixture();
    let ds = YoloDataset::open_with(&yaml, Split::Train, &no_cache()).unwrap();
    assert_eq!(ds.len(), 5);
    let good = ds.items().iter().position(|i| i.image.ends_with("good.jpg")).unwrap();
    assert_eq!(ds.shape(good), Some((32, 48)));
    let s = ds.get(good).unwrap();
    assert_eq!(s.image.dimensions(), (48, 32));
    assert_eq!(s.boxes.len(), 2);
    assert_eq!(s.boxes[0].class_id, 0);
    for (a, e) in s.boxes[0].xyxy.iter().zip([12.0, 8.0, 36.0, 24.0]) {
        assert!((a - e).abs() < 1e-4, "{:?}", s.boxes[0]);
    }
    for (a, e) in s.boxes[1].xyxy.iter().zip([2.4, 1.2, 7.2, 5.2]) {
        assert!((a - e).abs() < 1e-4, "{:?}", s.boxes[1]);
    }
    // The box bounds the painted rectangle.
    let red = |x: u32, y: u32| s.image.get_pixel(x, y).0[0] > 150;
    assert!(red(13, 9) && red(34, 22) && !red(10, 6) && !red(38, 26));
    assert_eq!(ds.boxes(good), s.boxes);

    let poly = ds.items().iter().position(|i| i.image.ends_with("polygon.webp")).unwrap();
    assert_eq!(ds.shape(poly), Some((20, 50)));
    let b = ds.get(poly).unwrap().boxes[0];
    assert_eq!(b.class_id, 2);
    for (a, e) in b.xyxy.iter().zip([10.0, 5.0, 30.0, 15.0]) {
        assert!((a - e).abs() < 1e-4, "{b:?}");
    }
    let dupes = ds.items().iter().position(|i| i.image.ends_with("dupes.png")).unwrap();
    assert_eq!(ds.labels(dupes), [LabelRow { class_id: 1, xywhn: [0.25, 0.25, 0.5, 0.5] }]);
    assert!(ds.name(dupes).ends_with("dupes.png"));

    let val = YoloDataset::open_with(&yaml, Split::Val, &no_cache()).unwrap();
    assert_eq!((val.len(), val.report().instances, val.report().corrupt.len()), (2, 2, 0));
    assert_eq!(val.shape(0), Some((48, 32)));
}

#[test]
fn results_do_not_depend_on_the_thread_count() {
    let (_dir, yaml) = fixture();
    let config = DataConfig::load(&yaml).unwrap();
    let images = config.images(Split::Train).unwrap();
    let one = verify_split(&images, 3, &VerifyOptions { workers: 1, ..no_cache() });
    let many = verify_split(&images, 3, &VerifyOptions { workers: 5, ..no_cache() });
    assert_eq!(one, many);
}

#[test]
fn pixel_and_size_limits_are_configurable() {
    let (_dir, yaml) = fixture();
    let opts = VerifyOptions { max_pixels: 48 * 32 - 1, min_side: 17, ..no_cache() };
    let ds = YoloDataset::open_with(&yaml, Split::Train, &opts).unwrap();
    let got = reasons(ds.report());
    assert!(got["good.jpg"].contains("above the limit of 1535 px"), "{got:#?}");
    assert!(got["dupes.png"].contains("above the limit"), "{got:#?}");
    assert!(got["empty.bmp"].contains("smaller than 17 px"), "{got:#?}");
    assert_eq!(ds.len(), 2);
}

#[test]
fn cache_hit_miss_and_invalidation() {
    let (dir, yaml) = fixture();
    let open = || YoloDataset::open(&yaml, Split::Train).unwrap();
    let cache = dir.path().join("labels/train.cache");
    let config = DataConfig::load(&yaml).unwrap();
    assert_eq!(cache_path(&config.images(Split::Train).unwrap()).unwrap(), cache);

    let first = open();
    assert!(!first.report().cache_hit);
    assert!(cache.is_file());
    let second = open();
    assert!(second.report().cache_hit);
    assert_eq!(second.items(), first.items());
    assert_eq!(SplitReport { cache_hit: false, ..second.report().clone() }, *first.report());

    // A valid cache skips decoding: garble an image without changing its size or mtime.
    let good = dir.path().join("images/train/good.jpg");
    let meta = std::fs::metadata(&good).unwrap();
    std::fs::write(&good, vec![0u8; meta.len() as usize]).unwrap();
    File::options().write(true).open(&good).unwrap().set_modified(meta.modified().unwrap()).unwrap();
    let third = open();
    assert!(third.report().cache_hit);
    assert_eq!(third.len(), 5);
    // Any change of mtime invalidates it: now the garbled file is found.
    let later = meta.modified().unwrap() + Duration::from_secs(5);
    File::options().write(true).open(&good).unwrap().set_modified(later).unwrap();
    let fourth = open();
    assert!(!fourth.report().cache_hit);
    assert_eq!(fourth.len(), 4);
    assert!(reasons(fourth.report())["good.jpg"].contains("not an image"));
    assert!(open().report().cache_hit);

    // A label file fixed (size change), appearing, or an image added: each a miss.
    std::fs::write(dir.path().join("labels/train/nan.txt"), "0 0.5 0.5 0.5 0.5\n").unwrap();
    let fixed = open();
    assert!(!fixed.report().cache_hit);
    assert_eq!(fixed.len(), 5);
    std::fs::write(dir.path().join("labels/train/background.txt"), "2 0.5 0.5 1 1\n").unwrap();
    let labelled = open();
    assert!(!labelled.report().cache_hit);
    // good.jpg (2 objects) is still garbled; nan.txt and background.txt add one each.
    assert_eq!((labelled.report().missing_labels, labelled.report().instances), (0, 4));
    std::fs::copy(dir.path().join("images/val/v2.png"), dir.path().join("images/train/new.png")).unwrap();
    let added = open();
    assert!(!added.report().cache_hit);
    assert_eq!(added.len(), 6);
    // Other options or another nc: a miss.
    let opts = VerifyOptions { max_pixels: 1 << 20, ..VerifyOptions::default() };
    assert!(!YoloDataset::open_with(&yaml, Split::Train, &opts).unwrap().report().cache_hit);
    // A cache that is garbage or from another format version is ignored and rewritten.
    std::fs::write(&cache, "{not json").unwrap();
    assert!(!open().report().cache_hit);
    assert!(open().report().cache_hit);
    let text = std::fs::read_to_string(&cache).unwrap().replacen("\"version\":1", "\"version\":0", 1);
    std::fs::write(&cache, text).unwrap();
    assert!(!open().report().cache_hit);
    // With the cache off, nothing is read or written.
    std::fs::remove_file(&cache).unwrap();
    YoloDataset::open_with(&yaml, Split::Train, &no_cache()).unwrap();
    assert!(!cache.exists());
}

#[test]
fn a_cache_that_cannot_be_written_is_a_warning() {
    let (dir, yaml) = fixture();
    // A directory where the cache file should go.
    std::fs::create_dir(dir.path().join("labels/train.cache")).unwrap();
    let ds = YoloDataset::open(&yaml, Split::Train).unwrap();
    assert!(ds.report().warnings.iter().any(|w| w.contains("cache not saved")), "{:?}", ds.report().warnings);
    assert_eq!(ds.len(), 5);
}

#[test]
fn only_an_empty_usable_set_is_an_error() {
    let (dir, yaml) = fixture();
    let broken = ["text.jpg", "zero.png"];
    let images = dir.path().join("images");
    for e in std::fs::read_dir(images.join("val")).unwrap() {
        std::fs::remove_file(e.unwrap().path()).unwrap();
    }
    for b in broken {
        std::fs::copy(images.join("train").join(b), images.join("val").join(b)).unwrap();
    }
    let err = YoloDataset::open_with(&yaml, Split::Val, &no_cache()).unwrap_err();
    assert!(matches!(err, DatasetError::NoUsableImages { found: 2, corrupt: 2, .. }), "{err}");
    let msg = err.to_string();
    assert!(msg.contains("data.yaml") && msg.contains("`val`") && msg.contains("text.jpg"), "{msg}");

    let err = YoloDataset::open_with(&yaml, Split::Test, &no_cache()).unwrap_err();
    assert!(matches!(err, DatasetError::MissingSplit { .. }), "{err}");
    assert!(err.to_string().contains("train, val"), "{err}");
}

#[test]
fn exif_orientation_swaps_the_verified_shape() {
    // A JPEG with an EXIF APP1 segment saying "rotate 90° clockwise" (orientation 6).
    let dir = tempfile::tempdir().unwrap();
    let img = image::RgbImage::from_pixel(40, 20, image::Rgb([10, 200, 10]));
    let mut jpeg = std::io::Cursor::new(Vec::new());
    img.write_to(&mut jpeg, image::ImageFormat::Jpeg).unwrap();
    let jpeg = jpeg.into_inner();
    let tiff: [u8; 26] = [
        b'M', b'M', 0, 42, 0, 0, 0, 8, // big-endian TIFF header, IFD at 8
        0, 1, // one entry
        0x01, 0x12, 0, 3, 0, 0, 0, 1, 0, 6, 0, 0, // Orientation, SHORT, 1, value 6
        0, 0, 0, 0, // no next IFD
    ];
    let mut app1 = b"Exif\0\0".to_vec();
    app1.extend_from_slice(&tiff);
    let mut out = jpeg[..2].to_vec();
    out.extend_from_slice(&[0xFF, 0xE1]);
    out.extend_from_slice(&((app1.len() + 2) as u16).to_be_bytes());
    out.extend_from_slice(&app1);
    out.extend_from_slice(&jpeg[2..]);
    std::fs::create_dir_all(dir.path().join("images")).unwrap();
    std::fs::create_dir_all(dir.path().join("labels")).unwrap();
    std::fs::write(dir.path().join("images/r.jpg"), out).unwrap();
    std::fs::write(dir.path().join("labels/r.txt"), "0 0.5 0.25 0.5 0.5\n").unwrap();
    std::fs::write(dir.path().join("d.yaml"), "train: images\nnames: [a]\n").unwrap();
    let ds = YoloDataset::open_with(dir.path().join("d.yaml"), Split::Train, &no_cache()).unwrap();
    assert_eq!(ds.shape(0), Some((40, 20)));
    let s = ds.get(0).unwrap();
    assert_eq!(s.image.dimensions(), (20, 40));
    for (a, e) in s.boxes[0].xyxy.iter().zip([5.0, 0.0, 15.0, 20.0]) {
        assert!((a - e).abs() < 1e-4, "{:?}", s.boxes[0]);
    }
}
