//! Pascal VOC → YOLO on hand-written XML, labels checked against hand-computed values (VOC's
//! 1-based boxes: `[xmin − 1, ymin − 1, xmax, ymax]`), splits from `ImageSets/Main`.

use std::path::{Path, PathBuf};

use yolo_compress_data::convert::voc::VocAnnotation;
use yolo_compress_data::convert::{ConvertError, ConvertOptions, convert_voc};
use yolo_compress_data::dataset::{Split, YoloDataset};

fn xml(filename: Option<&str>, size: Option<(u32, u32)>, objects: &[(&str, bool, [f64; 4])]) -> String {
    let mut s = String::from("<annotation>\n  <folder>VOC2007</folder>\n");
    if let Some(f) = filename {
        s += &format!("  <filename>{f}</filename>\n");
    }
    if let Some((w, h)) = size {
        s += &format!("  <size><width>{w}</width><height>{h}</height><depth>3</depth></size>\n");
    }
    for (name, difficult, [x1, y1, x2, y2]) in objects {
        s += &format!(
            "  <object>\n    <name>{name}</name>\n    <pose>Unspecified</pose>\n    <difficult>{}</difficult>\n    \
             <bndbox><xmin>{x1}</xmin><ymin>{y1}</ymin><xmax>{x2}</xmax><ymax>{y2}</ymax></bndbox>\n  </object>\n",
            u8::from(*difficult)
        );
    }
    s + "</annotation>\n"
}

/// A VOC root: 000001.jpg 100x50, 000002.png 40x20, 000003.jpg 32x32; lists train = 1, 2 and val = 3.
fn voc(with_lists: bool) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("VOC2007");
    for d in ["Annotations", "JPEGImages", "ImageSets/Main"] {
        std::fs::create_dir_all(root.join(d)).unwrap();
    }
    let img = |name: &str, w, h| {
        image::RgbImage::from_pixel(w, h, image::Rgb([50, 60, 70])).save(root.join("JPEGImages").join(name)).unwrap();
    };
    img("000001.jpg", 100, 50);
    img("000002.png", 40, 20);
    img("000003.jpg", 32, 32);
    let ann =
        |id: &str, text: String| std::fs::write(root.join("Annotations").join(format!("{id}.xml")), text).unwrap();
    ann(
        "000001",
        xml(
            Some("000001.jpg"),
            Some((100, 50)),
            &[("dog", false, [11.0, 6.0, 30.0, 15.0]), ("cat", true, [1.0, 1.0, 100.0, 50.0])],
        ),
    );
    ann(
        "000002",
        xml(
            Some("000002.png"),
            None,
            &[("person", false, [1.0, 1.0, 40.0, 20.0]), ("cat", false, [50.0, 5.0, 60.0, 10.0])],
        ),
    );
    ann("000003", xml(None, Some((10, 10)), &[("dog", false, [1.0, 1.0, 16.0, 32.0])]));
    if with_lists {
        std::fs::write(root.join("ImageSets/Main/train.txt"), "000001\n000002\n").unwrap();
        std::fs::write(root.join("ImageSets/Main/val.txt"), "000003\n").unwrap();
    }
    (dir, root)
}

fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

#[test]
fn converts_splits_from_image_sets_with_one_based_boxes() {
    let (dir, root) = voc(true);
    let out = dir.path().join("out");
    let r = convert_voc(&root, &out, &ConvertOptions::default()).unwrap();
    assert_eq!(r.names, ["cat", "dog", "person"]);
    // dog [11, 6, 30, 15] (1-based) → [10, 5, 30, 15] on 100x50; the difficult cat is left out.
    assert_eq!(read(&out.join("labels/train/000001.txt")), "1 0.200000 0.200000 0.200000 0.200000\n");
    assert_eq!(read(&out.join("labels/train/000002.txt")), "2 0.500000 0.500000 1.000000 1.000000\n");
    // dog [1, 1, 16, 32] → [0, 0, 16, 32] on the real 32x32 image (<size> says 10x10).
    assert_eq!(read(&out.join("labels/val/000003.txt")), "1 0.250000 0.500000 0.500000 1.000000\n");
    assert!(out.join("images/train/000002.png").is_file() && out.join("images/val/000003.jpg").is_file());
    assert_eq!(r.ignored["difficult"], 1);
    assert_eq!(r.skipped.len(), 1, "{:?}", r.skipped);
    let s = &r.skipped[0];
    assert!(
        s.file.ends_with("000002.xml") && s.item.starts_with("object 1 (line ") && s.reason.contains("empty"),
        "{s:?}"
    );
    assert!(r.warnings.iter().any(|w| w.contains("000003.xml") && w.contains("10x10")), "{:?}", r.warnings);
    assert_eq!((r.splits["train"].images, r.splits["train"].instances, r.splits["val"].images), (2, 2, 1));

    let yaml = read(&r.data_yaml);
    assert!(yaml.contains("train: images/train") && yaml.contains("val: images/val"), "{yaml}");
    let val = YoloDataset::open(&r.data_yaml, Split::Val).unwrap();
    assert_eq!(val.names(), ["cat", "dog", "person"]);
    assert_eq!(val.report().instances, 1);
}

#[test]
fn without_lists_everything_goes_to_one_split_and_options_apply() {
    let (dir, root) = voc(false);
    let out = dir.path().join("out");
    let opts = ConvertOptions {
        split: Some(Split::Val),
        names: Some(vec!["dog".into(), "cat".into()]),
        keep_difficult: true,
        ..ConvertOptions::default()
    };
    let r = convert_voc(&root, &out, &opts).unwrap();
    assert_eq!(r.splits.keys().collect::<Vec<_>>(), ["val"]);
    assert_eq!(r.splits["val"].images, 3);
    assert_eq!(
        read(&out.join("labels/val/000001.txt")),
        "0 0.200000 0.200000 0.200000 0.200000\n1 0.500000 0.500000 1.000000 1.000000\n"
    );
    assert_eq!(read(&out.join("labels/val/000002.txt")), "");
    assert_eq!(r.ignored["not in --names"], 1);
    assert!(!r.ignored.contains_key("difficult"));
    // Only val: data.yaml has `val` and no `train`.
    let yaml = read(&r.data_yaml);
    assert!(yaml.contains("val: images/val") && !yaml.contains("train:"), "{yaml}");
}

#[test]
fn missing_images_and_annotations_are_reported() {
    let (dir, root) = voc(true);
    std::fs::remove_file(root.join("JPEGImages/000002.png")).unwrap();
    std::fs::write(root.join("ImageSets/Main/val.txt"), "000003\n000404\n../etc\n").unwrap();
    let r = convert_voc(&root, &dir.path().join("out"), &ConvertOptions::default()).unwrap();
    let items: Vec<&str> = r.skipped.iter().map(|s| s.item.as_str()).collect();
    assert_eq!(items, ["image 000002", "image 000404", "image ../etc"], "{:?}", r.skipped);
    assert!(r.skipped[0].reason.contains("no image"));
    assert!(r.skipped[1].reason.contains("cannot read"));
    assert!(r.skipped[2].reason.contains("plain file name"));
}

#[test]
fn malformed_xml_is_an_error_naming_file_and_element() {
    let origin = Path::new("Annotations/x.xml");
    let cases = [
        ("<annotation><object>", "x.xml", "invalid VOC XML"),
        ("", "x.xml", "invalid VOC XML"),
        ("<voc></voc>", "<voc> at line 1", "not <annotation>"),
        ("<annotation>\n<object><bndbox/></object></annotation>", "<object> at line 2", "no <name>"),
        ("<annotation><object><name>a</name></object></annotation>", "<object>", "no <bndbox>"),
        (
            "<annotation><object><name>a</name><bndbox><xmin>1</xmin><ymin>1</ymin><xmax>2</xmax></bndbox></object></annotation>",
            "<bndbox>",
            "no <ymax>",
        ),
        (
            "<annotation>\n<object><name>a</name><bndbox>\n<xmin>abc</xmin><ymin>1</ymin><xmax>2</xmax><ymax>2</ymax></bndbox></object></annotation>",
            "<xmin> at line 3",
            "\"abc\" is not a number",
        ),
        (
            "<annotation><object><name>a</name><difficult>maybe</difficult><bndbox/></object></annotation>",
            "<difficult>",
            "not 0 or 1",
        ),
        ("<!DOCTYPE a [<!ENTITY x \"y\">]><annotation/>", "x.xml", "invalid VOC XML"),
    ];
    for (text, at, what) in cases {
        let e = VocAnnotation::parse(text, origin).unwrap_err();
        let msg = e.to_string();
        assert!(msg.contains("x.xml") && msg.contains(at) && msg.contains(what), "{text}: {msg}");
    }
    let a =
        VocAnnotation::parse(&xml(Some("a.jpg"), Some((5, 6)), &[("x", true, [1.5, 2.0, 3.0, 4.0])]), origin).unwrap();
    assert_eq!((a.filename.as_deref(), a.size, a.objects.len()), (Some("a.jpg"), Some((5, 6)), 1));
    assert_eq!((a.objects[0].difficult, a.objects[0].bndbox, a.objects[0].line), (true, [1.5, 2.0, 3.0, 4.0], 5));

    // A bad XML stops the conversion with its name; a missing folder too.
    let (dir, root) = voc(true);
    std::fs::write(root.join("Annotations/000002.xml"), "<annotation><object>").unwrap();
    let e = convert_voc(&root, &dir.path().join("out"), &ConvertOptions::default()).unwrap_err();
    assert!(matches!(e, ConvertError::Syntax { .. }) && e.to_string().contains("000002.xml"), "{e}");
    let e = convert_voc(dir.path(), &dir.path().join("out"), &ConvertOptions::default()).unwrap_err();
    assert!(e.to_string().contains("Annotations"), "{e}");
}
