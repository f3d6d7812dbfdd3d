//! Robustness of the model YAML parser: arbitrary text and mutated built-in configs never panic
//! (errors are fine). `PROPTEST_CASES=200000` for a long run.

// The mutation strategies are shared with the data crate's robustness tests.
#[path = "../../data/tests/prop_support/mod.rs"]
mod prop_support;

use prop_support::{NUMBERS, arbitrary_text, mutated};
use proptest::prelude::*;
use yolo_compress_model::arch::{BUILTIN_CONFIGS, parse_model_yaml};

const TOKENS: &[&str] = &[
    ":",
    ": ",
    "- ",
    "\n",
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
    "None",
    "&a ",
    "*a",
    "!!str ",
    "nc",
    "depth_multiple",
    "width_multiple",
    "anchors",
    "backbone",
    "head",
    "-1",
    "-2",
    "-100",
    "0",
    "1",
    "2",
    "3",
    "24",
    "1000",
    "65536",
    "4294967296",
    "1e9",
    "0.0",
    "-0.5",
    "1e-300",
    "nan",
    ".inf",
    "Conv",
    "C3",
    "C3Ghost",
    "SPPF",
    "SPP",
    "Focus",
    "Concat",
    "Detect",
    "GhostConv",
    "GhostBottleneck",
    "DWConv",
    "Bottleneck",
    "nn.Upsample",
    "'nearest'",
    "False",
    "True",
    "[-1, 1, Conv, [64, 3, 2]],",
    "[[17, 20, 23], 1, Detect, [nc, anchors]],",
    "[10,13, 16,30, 33,23]",
];

/// A built-in config with some numbers (repeat counts, channels, multiples, anchors) replaced by
/// extreme ones, the punctuation around them kept.
fn config() -> impl Strategy<Value = String> {
    let swaps = proptest::collection::vec((any::<prop::sample::Index>(), prop::sample::select(NUMBERS)), 0..4);
    (prop::sample::select(&BUILTIN_CONFIGS[..]), swaps).prop_map(|((_, text), swaps)| {
        let mut words: Vec<String> = text.split(' ').map(str::to_string).collect();
        for (i, n) in swaps {
            let k = i.index(words.len());
            let w = &mut words[k];
            let is_num = |c: char| c.is_ascii_digit() || c == '.';
            if let Some(start) = w.find(is_num) {
                let end = w[start..].find(|c: char| !is_num(c)).map_or(w.len(), |e| start + e);
                w.replace_range(start..end, n);
            }
        }
        words.join(" ")
    })
}

/// Found by `mutated_configs_never_panic` (a long run was killed for using 23 GB): a C3 row's
/// repeat count, or a huge `depth_multiple`, is not bounded, and the parser builds that many
/// bottlenecks. Ignored until the parser bounds it: running it before then exhausts memory.
#[test]

fn regression_huge_repeats_are_an_error_not_an_allocation() {
    let yolov5s = BUILTIN_CONFIGS[1].1;
    for (from, to) in
        [("[-1, 3, C3, [128]]", "[-1, 3000000000, C3, [128]]"), ("depth_multiple: 0.33", "depth_multiple: 1e12")]
    {
        assert!(yolov5s.contains(from));
        let text = yolov5s.replacen(from, to, 1);
        assert!(parse_model_yaml(&text, "huge.yaml").is_err(), "{to}");
    }
}

/// Found while reading the code the fuzzer pointed at: a huge `width_multiple` (or channel
/// count) saturates `make_divisible`'s cast and overflows its multiplication (a panic in debug
/// builds). Ignored until the parser bounds channel counts.
#[test]

fn regression_huge_width_is_an_error_not_an_overflow() {
    let text = BUILTIN_CONFIGS[1].1.replacen("width_multiple: 0.50", "width_multiple: 1e23", 1);
    assert!(text.contains("1e23"));
    assert!(parse_model_yaml(&text, "wide.yaml").is_err());
}

/// Found by `mutated_configs_never_panic` (after 50,706 cases): a row whose `from` is an empty
/// list (`[[], 1, Concat, [1]]`) indexes its first input and panics.
#[test]

fn regression_empty_from_is_an_error() {
    let text = BUILTIN_CONFIGS[1].1.replacen("[[-1, 14], 1, Concat, [1]]", "[[], 1, Concat, [1]]", 1);
    assert!(text.contains("[[], 1, Concat"));
    assert!(parse_model_yaml(&text, "empty-from.yaml").is_err());
}

/// Found by `mutated_configs_never_panic` once the bugs above were patched in a scratch copy: a
/// huge stride (or kernel, padding) argument overflows the running stride product
/// (`s_in(0) * s`, a panic in debug builds).
#[test]

fn regression_huge_stride_is_an_error_not_an_overflow() {
    let text = BUILTIN_CONFIGS[1].1.replacen("[-1, 1, Conv, [128, 3, 2]]", "[-1, 1, Conv, [128, 3, 9999999999999]]", 1);
    assert!(text.contains("9999999999999"));
    assert!(parse_model_yaml(&text, "stride.yaml").is_err());
}

proptest! {
    #[test]
    fn arbitrary_text_never_panics(text in arbitrary_text(TOKENS)) {
        let _ = parse_model_yaml(&text, "fuzz.yaml");
    }

    #[test]

    fn mutated_configs_never_panic(text in config().prop_flat_map(|t| mutated(t, TOKENS))) {
        let _ = parse_model_yaml(&text, "fuzz.yaml");
    }

    #[test]

    fn configs_with_extreme_numbers_never_panic(text in config()) {
        let _ = parse_model_yaml(&text, "fuzz.yaml");
    }
}
