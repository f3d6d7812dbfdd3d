//! Robustness of the COCO JSON reader: arbitrary text and mutated COCO files never panic, through
//! parsing and conversion to YOLO rows, and the rows produced are valid boxes.
//! `PROPTEST_CASES=200000` for a long run.

mod prop_support;

use std::path::Path;

use prop_support::{NUMBERS, arbitrary_text, mutated};
use proptest::prelude::*;
use serde_json::json;
use yolo_compress_data::convert::coco::CocoDataset;

const TOKENS: &[&str] = &[
    "{",
    "}",
    "[",
    "]",
    ",",
    ":",
    "\"",
    "null",
    "true",
    "false",
    "-1",
    "0",
    "1",
    "0.5",
    "1e400",
    "-1e400",
    "18446744073709551616",
    "-9223372036854775809",
    "1.5",
    "\"\"",
    "\"id\"",
    "\"image_id\"",
    "\"category_id\"",
    "\"bbox\"",
    "\"iscrowd\"",
    "\"file_name\"",
    "\"width\"",
    "\"height\"",
    "\"name\"",
    "\"images\"",
    "\"annotations\"",
    "\"categories\"",
    "[1, 2, 3, 4]",
    "[0, 0, 0, 0]",
    "[-5, -5, 10, 10]",
    "\"../x.jpg\"",
    "\"/etc/passwd\"",
    "\\u0000",
    "\\ud800",
    " ",
];

/// A COCO JSON from a few images, categories and annotations with loosely bounded values.
fn coco_json() -> impl Strategy<Value = String> {
    let num = prop_oneof![
        4 => (-50.0f64..700.0).prop_map(|v| json!(v)),
        2 => (0i64..20).prop_map(|v| json!(v)),
        1 => proptest::sample::select(NUMBERS).prop_map(|s| serde_json::from_str(s).unwrap_or(json!(s))),
        1 => (-1e-30f64..1e-30).prop_map(|v| json!(v)),
        1 => Just(json!(null)),
    ];
    let image = (0i64..8, "[a-z./]{1,10}", prop::option::of(0u32..2000), prop::option::of(0u32..2000))
        .prop_map(|(id, f, w, h)| json!({"id": id, "file_name": f, "width": w, "height": h}));
    let category = (0i64..10, "[a-z]{1,5}").prop_map(|(id, n)| json!({"id": id, "name": n}));
    let annotation = (0i64..50, 0i64..9, 0i64..11, [num.clone(), num.clone(), num.clone(), num], 0i64..3)
        .prop_map(|(id, im, cat, bbox, crowd)| {
            json!({"id": id, "image_id": im, "category_id": cat, "bbox": bbox, "iscrowd": crowd % 2, "area": 1.0})
        });
    (
        proptest::collection::vec(image, 0..6),
        proptest::collection::vec(category, 0..5),
        proptest::collection::vec(annotation, 0..12),
    )
        .prop_map(|(images, categories, annotations)| {
            json!({"images": images, "categories": categories, "annotations": annotations}).to_string()
        })
}

fn check(text: &str) {
    let Ok(coco) = CocoDataset::parse(text, Path::new("fuzz.json")) else { return };
    let names: Vec<String> = coco.categories.iter().rev().map(|c| c.name.clone()).collect();
    for names in [None, Some(names.as_slice())] {
        let mut calls = 0;
        let labels = coco.to_yolo(names, |_| {
            calls += 1;
            if calls % 2 == 0 { Ok((640, 480)) } else { Err("no file".into()) }
        });
        for (i, rows) in &labels.images {
            assert!(*i < coco.images.len());
            for r in rows {
                assert!(r.class_id < labels.names.len(), "{r:?}");
                assert!(r.xywhn.iter().all(|v| (0.0..=1.0).contains(v)), "{r:?}");
                assert!(r.xywhn[2] > 0.0 && r.xywhn[3] > 0.0, "{r:?}");
            }
        }
    }
}

/// A box whose normalised width underflows f32 is skipped, not written as a zero-width row.
#[test]
fn regression_tiny_box_is_skipped() {
    let text = r#"{"images": [{"id": 1, "file_name": "a.jpg", "width": 640, "height": 480}],
        "categories": [{"id": 1, "name": "a"}],
        "annotations": [{"id": 9, "image_id": 1, "category_id": 1, "bbox": [0, 0, 1e-300, 5]}]}"#;
    let coco = CocoDataset::parse(text, Path::new("t.json")).unwrap();
    let labels = coco.to_yolo(None, |_| unreachable!());
    assert_eq!(labels.images, [(0, vec![])]);
    assert_eq!(labels.skipped.len(), 1);
    assert!(labels.skipped[0].1.contains("too small"), "{:?}", labels.skipped);
}

proptest! {
    #[test]
    fn arbitrary_text_never_panics(text in arbitrary_text(TOKENS)) {
        check(&text);
    }

    #[test]
    fn mutated_coco_files_never_panic(text in coco_json().prop_flat_map(|t| mutated(t, TOKENS))) {
        check(&text);
    }

    #[test]
    fn generated_coco_files_never_panic(text in coco_json()) {
        check(&text);
    }
}
