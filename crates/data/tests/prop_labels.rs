//! Robustness of the YOLO label-row parser: arbitrary text and mutated label files never panic,
//! and whatever is accepted is a valid box. `PROPTEST_CASES=200000` for a long run.

mod prop_support;

use prop_support::{NUMBERS, arbitrary_text, mutated};
use proptest::prelude::*;
use yolo_compress_data::dataset::{LabelRow, parse_labels};

const TOKENS: &[&str] = &[
    " ",
    "  ",
    "\t",
    "\n",
    "\r\n",
    "\n\n",
    "\u{feff}",
    "\u{a0}",
    "0",
    "1",
    "2",
    "99",
    "-1",
    "0.5",
    "1.5",
    "nan",
    "inf",
    "1e-7",
    "1.0000001",
    "-0.0000001",
    "1e309",
    "0 0.5 0.5 0.1 0.1\n",
    "1 0.1 0.1 0.2 0.1 0.2 0.2\n",
];

fn check(rows: &[LabelRow], nc: usize) {
    for r in rows {
        assert!(r.class_id < nc, "{r:?}");
        assert!(r.xywhn.iter().all(|v| (0.0..=1.0).contains(v)), "{r:?}");
        assert!(r.xywhn[2] > 0.0 && r.xywhn[3] > 0.0, "{r:?}");
    }
}

/// A label file of box and polygon rows built from numbers that are mostly valid.
fn label_file() -> impl Strategy<Value = String> {
    let num = prop_oneof![
        6 => (0.0f64..=1.0).prop_map(|v| format!("{v}")),
        1 => proptest::sample::select(NUMBERS).prop_map(str::to_string),
        1 => any::<f64>().prop_map(|v| format!("{v}")),
    ];
    let row =
        (0usize..5, proptest::collection::vec(num, 4..12)).prop_map(|(c, vals)| format!("{c} {}", vals.join(" ")));
    proptest::collection::vec(row, 0..12).prop_map(|rows| rows.join("\n"))
}

/// Found by `mutated_label_files_never_panic`: a width that is positive as f64 but rounds to
/// zero as f32 was accepted as a box of size zero.
#[test]
fn regression_width_rounding_to_zero_is_rejected() {
    let e = parse_labels("0 0 0 18446744073709551e-76 0.6678841297858183", 7).unwrap_err();
    assert!(e.reason.contains("rounds to zero"), "{e}");
}

proptest! {
    #[test]
    fn arbitrary_text_never_panics(text in arbitrary_text(TOKENS), nc in 0usize..8) {
        if let Ok(p) = parse_labels(&text, nc) {
            check(&p.rows, nc);
        }
    }

    #[test]
    fn mutated_label_files_never_panic(text in label_file().prop_flat_map(|t| mutated(t, TOKENS)), nc in 1usize..8) {
        if let Ok(p) = parse_labels(&text, nc) {
            check(&p.rows, nc);
        }
    }

    #[test]
    fn valid_rows_are_read_back(rows in proptest::collection::vec((0usize..4, [0.0f32..=1.0, 0.0f32..=1.0, 0.001f32..=1.0, 0.001f32..=1.0]), 0..20)) {
        let text: String = rows.iter().map(|(c, v)| LabelRow { class_id: *c, xywhn: *v }.to_line() + "\n").collect();
        let p = parse_labels(&text, 4).unwrap();
        prop_assert_eq!(p.rows.len() + p.duplicates_removed, rows.len());
        check(&p.rows, 4);
    }
}
