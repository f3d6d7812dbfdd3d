//! Robustness of the Pascal VOC XML reader: arbitrary text and mutated annotation files never
//! panic, through parsing and conversion of each object to a YOLO box, and the boxes produced are
//! valid. `PROPTEST_CASES=200000` for a long run.

mod prop_support;

use std::path::Path;

use prop_support::{NUMBERS, arbitrary_text, mutated};
use proptest::prelude::*;
use yolo_compress_data::convert::voc::VocAnnotation;

const TOKENS: &[&str] = &[
    "<",
    ">",
    "</",
    "/>",
    "<annotation>",
    "</annotation>",
    "<object>",
    "</object>",
    "<name>",
    "</name>",
    "<bndbox>",
    "</bndbox>",
    "<xmin>",
    "</xmin>",
    "<ymax>",
    "</ymax>",
    "<difficult>1</difficult>",
    "<size>",
    "<width>",
    "</width>",
    "&amp;",
    "&lt;",
    "&#0;",
    "&#x110000;",
    "&unknown;",
    "<![CDATA[",
    "]]>",
    "<!--",
    "-->",
    "<?xml version=\"1.0\"?>",
    "<!DOCTYPE a>",
    "<!ENTITY x \"y\">",
    "xmlns:a=\"b\"",
    "a:b",
    "\"",
    "'",
    "=",
    " ",
    "\n",
    "-1",
    "0",
    "1e309",
    "nan",
    "500",
    "1.5",
];

/// A VOC annotation from a few objects with loosely bounded values.
fn voc_xml() -> impl Strategy<Value = String> {
    let num = prop_oneof![
        4 => (-20.0f64..600.0).prop_map(|v| format!("{v:.1}")),
        1 => proptest::sample::select(NUMBERS).prop_map(str::to_string),
        1 => (0.999f64..1.001).prop_map(|v| format!("{v}")),
    ];
    let object = ("[a-z]{0,5}", prop::option::of(0u8..3), [num.clone(), num.clone(), num.clone(), num.clone()])
        .prop_map(|(name, difficult, b)| {
            let d = difficult.map(|d| format!("<difficult>{d}</difficult>")).unwrap_or_default();
            format!(
                "<object><name>{name}</name>{d}<bndbox><xmin>{}</xmin><ymin>{}</ymin><xmax>{}</xmax><ymax>{}</ymax></bndbox></object>\n",
                b[0], b[1], b[2], b[3]
            )
        });
    (prop::option::of((num.clone(), num)), proptest::collection::vec(object, 0..6)).prop_map(|(size, objects)| {
        let size =
            size.map(|(w, h)| format!("<size><width>{w}</width><height>{h}</height></size>\n")).unwrap_or_default();
        format!("<annotation>\n<filename>a.jpg</filename>\n{size}{}</annotation>\n", objects.concat())
    })
}

fn check(text: &str, width: u32, height: u32) {
    let Ok(a) = VocAnnotation::parse(text, Path::new("fuzz.xml")) else { return };
    for o in &a.objects {
        assert!(!o.name.is_empty());
        if let Ok(b) = o.to_yolo(width, height) {
            assert!(b.iter().all(|v| (0.0..=1.0).contains(v)), "{b:?}");
            assert!(b[2] > 0.0 && b[3] > 0.0, "{b:?}");
        }
    }
}

proptest! {
    #[test]
    fn arbitrary_text_never_panics(text in arbitrary_text(TOKENS), w in 0u32..5000, h in 0u32..5000) {
        check(&text, w, h);
    }

    #[test]
    fn mutated_voc_files_never_panic(text in voc_xml().prop_flat_map(|t| mutated(t, TOKENS)), w in 0u32..5000, h in 0u32..5000) {
        check(&text, w, h);
    }

    #[test]
    fn generated_voc_files_never_panic(text in voc_xml(), w in prop_oneof![Just(0u32), 1u32..5000, Just(u32::MAX)], h in 1u32..5000) {
        check(&text, w, h);
    }
}
