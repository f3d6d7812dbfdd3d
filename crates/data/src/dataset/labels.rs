//! YOLO label files: where they live and how their rows are read.
//!
//! A label file has one object per line, `class xc yc w h`, the box centre and size normalised by
//! the image width and height. A line `class x1 y1 x2 y2 x3 y3 ...` (an ultralytics segment, at
//! least three points) is read as the bounding box of its polygon.

use std::collections::HashSet;
use std::path::{Component, Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::sample::LabeledBox;

/// How far a normalised coordinate may lie outside `[0, 1]` before the row is rejected (rounding
/// in the tools that wrote it); values within it are clamped to `[0, 1]`.
pub const COORD_TOLERANCE: f64 = 1e-6;

/// The label file of an image: the last `images` folder of its path becomes `labels` and the
/// extension `.txt` (`ds/images/train/a.jpg` → `ds/labels/train/a.txt`), as ultralytics does.
/// Without an `images` folder the label file sits next to the image.
pub fn label_path(image: &Path) -> PathBuf {
    let components: Vec<Component> = image.components().collect();
    let last_images = components
        .iter()
        .take(components.len().saturating_sub(1))
        .rposition(|c| matches!(c, Component::Normal(n) if *n == "images"));
    let mut out: PathBuf = match last_images {
        Some(i) => components
            .iter()
            .enumerate()
            .map(|(j, c)| if j == i { Component::Normal("labels".as_ref()) } else { *c })
            .collect(),
        None => image.to_path_buf(),
    };
    out.set_extension("txt");
    out
}

/// One object of a label file: a class and a normalised `(xc, yc, w, h)` box.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct LabelRow {
    /// Class index in `0..nc`.
    pub class_id: usize,
    /// Box centre and size, each in `[0, 1]` (fractions of the image width or height).
    pub xywhn: [f32; 4],
}

impl LabelRow {
    /// The box in pixels of a `width × height` image.
    pub fn to_pixels(&self, width: u32, height: u32) -> LabeledBox {
        LabeledBox::from_yolo(self.class_id, self.xywhn, width, height)
    }

    /// The row as written in a label file (`%.6f` precision).
    pub fn to_line(&self) -> String {
        let [x, y, w, h] = self.xywhn;
        format!("{} {x:.6} {y:.6} {w:.6} {h:.6}", self.class_id)
    }
}

/// The rows of a label file that passed every check.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ParsedLabels {
    /// The rows, in file order, without duplicates.
    pub rows: Vec<LabelRow>,
    /// How many exact duplicate rows were dropped.
    pub duplicates_removed: usize,
}

/// Why a label file was rejected: the first bad line (1-based) and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {reason}")]
pub struct LabelError {
    /// 1-based line number.
    pub line: usize,
    /// What is wrong, with the offending value.
    pub reason: String,
}

/// Parses the text of a label file for a dataset of `nc` classes.
///
/// Blank lines are skipped. A file is rejected (the whole image, as ultralytics does, since
/// training on an image with objects left unlabelled teaches the model they are background) when
/// a row has the wrong number of fields, a value that is not a finite number, a class id that is
/// negative, fractional or `≥ nc`, a coordinate outside `[0, 1]` by more than
/// [`COORD_TOLERANCE`], or a width or height that is not positive. Exact duplicate rows are
/// dropped and counted.
///
/// Each row is judged by its own field count (5: a box; an odd count ≥ 7: a polygon), unlike
/// ultralytics, which reads every row of a file as a polygon as soon as one row has more than 6
/// fields.
pub fn parse_labels(text: &str, nc: usize) -> Result<ParsedLabels, LabelError> {
    let mut out = ParsedLabels::default();
    let mut seen = HashSet::new();
    for (i, line) in text.lines().enumerate() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        if fields.is_empty() {
            continue;
        }
        let row = parse_row(&fields, nc).map_err(|reason| LabelError { line: i + 1, reason })?;
        if !seen.insert((row.class_id, row.xywhn.map(f32::to_bits))) {
            out.duplicates_removed += 1;
        } else {
            out.rows.push(row);
        }
    }
    Ok(out)
}

/// One non-empty row, split on whitespace.
fn parse_row(fields: &[&str], nc: usize) -> Result<LabelRow, String> {
    let n = fields.len();
    let polygon = n >= 7 && n % 2 == 1;
    if n != 5 && !polygon {
        return Err(format!("{n} fields; expected 5 (class xc yc w h) or a polygon (class x1 y1 x2 y2 x3 y3 ...)"));
    }
    let class = number(fields[0], "class id")?;
    if class < 0.0 {
        return Err(format!("negative class id {}", fields[0]));
    }
    if class.fract() != 0.0 {
        return Err(format!("class id {} is not an integer", fields[0]));
    }
    if class >= nc as f64 {
        return Err(format!("class id {} is not below nc = {nc}", fields[0]));
    }
    let class_id = class as usize;
    let coord = |s: &str, what: &str| -> Result<f64, String> {
        let v = number(s, what)?;
        if !(-COORD_TOLERANCE..=1.0 + COORD_TOLERANCE).contains(&v) {
            return Err(format!("{what} {s} is outside [0, 1] (coordinates are normalised)"));
        }
        Ok(v.clamp(0.0, 1.0))
    };
    let xywh = if polygon {
        let (mut x1, mut y1, mut x2, mut y2) = (f64::MAX, f64::MAX, f64::MIN, f64::MIN);
        for pair in fields[1..].chunks(2) {
            let (x, y) = (coord(pair[0], "polygon x")?, coord(pair[1], "polygon y")?);
            (x1, y1, x2, y2) = (x1.min(x), y1.min(y), x2.max(x), y2.max(y));
        }
        if x2 <= x1 || y2 <= y1 {
            return Err("polygon has zero width or height".into());
        }
        [(x1 + x2) / 2.0, (y1 + y2) / 2.0, x2 - x1, y2 - y1]
    } else {
        let (xc, yc) = (coord(fields[1], "xc")?, coord(fields[2], "yc")?);
        let mut size = [0.0; 2];
        for (slot, (s, what)) in size.iter_mut().zip([(fields[3], "width"), (fields[4], "height")]) {
            let v = number(s, what)?;
            if v <= 0.0 {
                return Err(format!("non-positive {what} {s}"));
            }
            *slot = coord(s, what)?;
        }
        [xc, yc, size[0], size[1]]
    };
    let xywhn = xywh.map(|v| v as f32);
    if xywhn[2] <= 0.0 || xywhn[3] <= 0.0 {
        return Err(format!("box size {} x {} is too small to represent (rounds to zero)", xywh[2], xywh[3]));
    }
    Ok(LabelRow { class_id, xywhn })
}

/// A finite number, or a message naming the field.
fn number(s: &str, what: &str) -> Result<f64, String> {
    let v: f64 = s.parse().map_err(|_| format!("{what} {s:?} is not a number"))?;
    if !v.is_finite() {
        return Err(format!("{what} {s} is not finite"));
    }
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_paths_follow_ultralytics() {
        let cases = [
            ("ds/images/train/a.jpg", "ds/labels/train/a.txt"),
            ("/x/images/a/images/b/c.PNG", "/x/images/a/labels/b/c.txt"),
            ("ds/imgs/a.b.jpg", "ds/imgs/a.b.txt"),
            ("images/a.jpg", "labels/a.txt"),
            ("ds/images", "ds/images.txt"),
        ];
        for (image, label) in cases {
            assert_eq!(label_path(Path::new(image)), Path::new(label), "{image}");
        }
    }

    #[test]
    fn rows_boxes_and_polygons() {
        let p = parse_labels("0 0.5 0.5 0.2 0.4\n\n  \n1 0.1 0.2 0.5 0.2 0.3 0.6\n", 2).unwrap();
        assert_eq!(p.rows.len(), 2);
        assert_eq!(p.rows[0], LabelRow { class_id: 0, xywhn: [0.5, 0.5, 0.2, 0.4] });
        let r = p.rows[1].xywhn;
        for (a, e) in r.iter().zip([0.3, 0.4, 0.4, 0.4]) {
            assert!((a - e).abs() < 1e-6, "{r:?}");
        }
        let p = parse_labels("0 0.5 0.5 0.2 0.4\n0 0.5 0.5 0.2 0.4\n1 1.0000005 0 1 1\n0 0.5 0.5 0.2 0.4", 2).unwrap();
        assert_eq!(p.duplicates_removed, 2);
        assert_eq!(p.rows[1].xywhn, [1.0, 0.0, 1.0, 1.0]);
        assert_eq!(parse_labels("3.0 0.5 0.5 0.1 0.1", 4).unwrap().rows[0].class_id, 3);
    }

    #[test]
    fn bad_rows_name_line_and_value() {
        let cases = [
            ("0 0.5 0.5 0.2", 1, "4 fields"),
            ("0 0.5 0.5 0.2 0.2 0.1", 1, "6 fields"),
            ("0 0.5 0.5 0.2 0.2\n0 nan 0.5 0.2 0.2", 2, "not finite"),
            ("0 0.5 inf 0.2 0.2", 1, "not finite"),
            ("0 0.5 x 0.2 0.2", 1, "not a number"),
            ("99 0.5 0.5 0.2 0.2", 1, "nc = 3"),
            ("-1 0.5 0.5 0.2 0.2", 1, "negative class"),
            ("1.5 0.5 0.5 0.2 0.2", 1, "not an integer"),
            ("0 1.5 0.5 0.2 0.2", 1, "outside [0, 1]"),
            ("0 0.5 -0.01 0.2 0.2", 1, "outside [0, 1]"),
            ("0 0.5 0.5 -0.2 0.2", 1, "non-positive width"),
            ("0 0.5 0.5 0.2 0", 1, "non-positive height"),
            ("0 0.5 0.5 1.2 0.2", 1, "outside [0, 1]"),
            ("0 0.1 0.1 0.1 0.1 0.1 0.1", 1, "zero width"),
            ("0 0.1 0.1 0.2 0.2 0.3 1.3", 1, "outside"),
            // Found by prop_labels: positive in f64, zero in f32.
            ("0 0 0 18446744073709551e-76 0.6678841297858183", 1, "rounds to zero"),
            ("0 0.1 0 0.2 1e-50 0.3 0", 1, "rounds to zero"),
        ];
        for (text, line, needle) in cases {
            let e = parse_labels(text, 3).unwrap_err();
            assert_eq!(e.line, line, "{text}");
            assert!(e.to_string().contains(needle), "{text}: {e}");
        }
    }
}
