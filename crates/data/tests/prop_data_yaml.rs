//! Robustness of the data YAML parser: arbitrary text and mutated data YAMLs never panic, and an
//! accepted config has 1..=MAX_CLASSES names. `PROPTEST_CASES=200000` for a long run.

mod prop_support;

use prop_support::{NUMBERS, arbitrary_text, mutated};
use proptest::prelude::*;
use yolo_compress_data::dataset::{DataConfig, MAX_CLASSES, Split};

const TOKENS: &[&str] = &[
    ":",
    ": ",
    "- ",
    "\n",
    "\n  ",
    "  ",
    "[",
    "]",
    "{",
    "}",
    ",",
    "'",
    "\"",
    "#",
    "~",
    "null",
    "&a ",
    "*a",
    "<<: *a",
    "!!str ",
    "!!int ",
    "!!binary ",
    "? ",
    "|\n  ",
    ">\n  ",
    "---\n",
    "...\n",
    "%YAML 1.2\n",
    "\t",
    "path",
    "train",
    "val",
    "test",
    "names",
    "nc",
    "0",
    "1",
    "-1",
    "100000",
    "100001",
    "1e3",
    "18446744073709551616",
    "images/train",
    "./",
    "../",
    "/",
    "list.txt",
    "\u{0}",
    "\u{feff}",
];

/// A data YAML assembled from pieces (names as a list or a map, splits as a path or a list).
fn data_yaml() -> impl Strategy<Value = String> {
    let name = prop_oneof!["[a-z]{1,6}", proptest::sample::select(NUMBERS).prop_map(str::to_string)];
    let names = proptest::collection::vec(name, 0..6);
    let split = prop_oneof![
        Just(String::new()),
        "[a-z./]{0,12}".prop_map(|p| format!(" {p}")),
        proptest::collection::vec("[a-z./]{1,8}", 0..3).prop_map(|v| format!(" [{}]", v.join(", "))),
        proptest::collection::vec("[a-z./]{1,8}", 1..3).prop_map(|v| v.iter().map(|p| format!("\n  - {p}")).collect()),
    ];
    (
        names,
        any::<bool>(),
        prop_oneof![Just(None), proptest::sample::select(NUMBERS).prop_map(Some)],
        [split.clone(), split.clone(), split],
        prop_oneof![Just(None), "[a-z./]{0,10}".prop_map(Some)],
    )
        .prop_map(|(names, as_map, nc, [train, val, test], path)| {
            let mut s = String::new();
            if let Some(p) = path {
                s += &format!("path: {p}\n");
            }
            s += &format!("train:{train}\nval:{val}\ntest:{test}\n");
            if let Some(nc) = nc {
                s += &format!("nc: {nc}\n");
            }
            if as_map {
                s += "names:\n";
                for (i, n) in names.iter().enumerate() {
                    s += &format!("  {i}: {n}\n");
                }
            } else {
                s += &format!("names: [{}]\n", names.join(", "));
            }
            s
        })
}

fn check(text: &str) {
    if let Ok(c) = DataConfig::parse(text, "fuzz/data.yaml") {
        assert!(!c.names.is_empty() && c.names.len() <= MAX_CLASSES);
        assert_eq!(c.nc(), c.names.len());
        for s in Split::ALL {
            let _ = c.split(s);
        }
    }
}

proptest! {
    #[test]
    fn arbitrary_text_never_panics(text in arbitrary_text(TOKENS)) {
        check(&text);
    }

    #[test]
    fn mutated_data_yamls_never_panic(text in data_yaml().prop_flat_map(|t| mutated(t, TOKENS))) {
        check(&text);
    }

    #[test]
    fn generated_data_yamls_never_panic(text in data_yaml()) {
        check(&text);
    }
}
