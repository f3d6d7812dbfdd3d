//! The PNG plots of a run: each one is written at its size, decodes, is not blank, and draws its data
//! where it should (checked on the pixels); malformed input gives `TrainError::Plot`.
//!
//! Set `PLOTS_TEST_KEEP=<folder>` to keep the PNGs for a look.

use std::path::{Path, PathBuf};
use std::time::Instant;

use image::RgbImage;
use yolo_compress_train::TrainError;
use yolo_compress_train::plots::confusion::CONFUSION_SIZE;
use yolo_compress_train::plots::curves::{CURVE_AXES, CURVE_CHART_WIDTH, CURVE_SIZE, GREY, MEAN_COLOR};
use yolo_compress_train::plots::labels::LABELS_SIZE;
use yolo_compress_train::plots::results::{RESULTS_COLUMNS, RESULTS_SIZE};
use yolo_compress_train::plots::{
    CLASS_PALETTE, TAB10, confusion_layout, plot_confusion_matrix, plot_labels, plot_metric_curve, plot_pr_curve,
    plot_results,
};

/// A folder for the outputs: `PLOTS_TEST_KEEP/<test>` when set, a temporary folder otherwise.
struct OutDir {
    _tmp: Option<tempfile::TempDir>,
    path: PathBuf,
}

fn out_dir(test: &str) -> OutDir {
    match std::env::var_os("PLOTS_TEST_KEEP") {
        Some(keep) => {
            let path = PathBuf::from(keep).join(test);
            std::fs::create_dir_all(&path).unwrap();
            OutDir { _tmp: None, path }
        }
        None => {
            let tmp = tempfile::tempdir().unwrap();
            let path = tmp.path().to_path_buf();
            OutDir { _tmp: Some(tmp), path }
        }
    }
}

/// Times a plot call (reported with `--nocapture`).
fn timed<T>(what: &str, f: impl FnOnce() -> T) -> T {
    let start = Instant::now();
    let r = f();
    eprintln!("{what}: {:.3} s", start.elapsed().as_secs_f64());
    r
}

/// Decodes `path` as PNG and checks its size and that it is not blank.
fn load(path: &Path, size: (u32, u32)) -> RgbImage {
    let bytes = std::fs::read(path).unwrap();
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n", "{} is not a PNG", path.display());
    let img = image::load_from_memory_with_format(&bytes, image::ImageFormat::Png).unwrap().to_rgb8();
    assert_eq!(img.dimensions(), size, "{}", path.display());
    // Not blank: several colours, each covering a visible number of pixels.
    let mut counts = std::collections::HashMap::new();
    for p in img.pixels() {
        *counts.entry(p.0).or_insert(0usize) += 1;
    }
    let visible = counts.values().filter(|&&c| c >= 20).count();
    assert!(visible >= 4, "{}: only {visible} colours cover 20 pixels or more", path.display());
    // No temporary file left next to it.
    for entry in std::fs::read_dir(path.parent().unwrap()).unwrap() {
        let name = entry.unwrap().file_name().to_string_lossy().into_owned();
        assert!(!name.contains(".tmp-"), "temporary file {name} left behind");
    }
    img
}

fn near(p: [u8; 3], c: [u8; 3], tol: i32) -> bool {
    p.iter().zip(c).all(|(&a, b)| (i32::from(a) - i32::from(b)).abs() <= tol)
}

/// Pixels `(x, y)` inside `[x0, x1) x [y0, y1)` whose colour satisfies `pred`.
fn find(img: &RgbImage, (x0, y0, x1, y1): (u32, u32, u32, u32), pred: impl Fn([u8; 3]) -> bool) -> Vec<(f64, f64)> {
    let mut v = Vec::new();
    for y in y0..y1.min(img.height()) {
        for x in x0..x1.min(img.width()) {
            if pred(img.get_pixel(x, y).0) {
                v.push((f64::from(x), f64::from(y)));
            }
        }
    }
    v
}

/// Least-squares slope dy/dx of the pixels (image y grows downwards).
fn slope(pts: &[(f64, f64)]) -> f64 {
    let n = pts.len() as f64;
    let (mx, my) = (pts.iter().map(|p| p.0).sum::<f64>() / n, pts.iter().map(|p| p.1).sum::<f64>() / n);
    let sxy: f64 = pts.iter().map(|p| (p.0 - mx) * (p.1 - my)).sum();
    let sxx: f64 = pts.iter().map(|p| (p.0 - mx).powi(2)).sum();
    sxy / sxx
}

/// Mean y of the pixels in the leftmost and in the rightmost fifth of their x extent.
fn ends(pts: &[(f64, f64)]) -> (f64, f64) {
    let (lo, hi) = pts.iter().fold((f64::MAX, f64::MIN), |(lo, hi), p| (lo.min(p.0), hi.max(p.0)));
    let fifth = (hi - lo) / 5.0;
    let mean_y = |f: &dyn Fn(f64) -> bool| {
        let ys: Vec<f64> = pts.iter().filter(|p| f(p.0)).map(|p| p.1).collect();
        ys.iter().sum::<f64>() / ys.len() as f64
    };
    (mean_y(&|x| x <= lo + fifth), mean_y(&|x| x >= hi - fifth))
}

fn luminance(p: [u8; 3]) -> f64 {
    0.299 * f64::from(p[0]) + 0.587 * f64::from(p[1]) + 0.114 * f64::from(p[2])
}

fn rgb(c: plotters::style::RGBColor) -> [u8; 3] {
    [c.0, c.1, c.2]
}

fn header() -> String {
    // Padded like ultralytics writes it.
    RESULTS_COLUMNS.iter().map(|c| format!("{c:>22}")).collect::<Vec<_>>().join(",")
}

/// A results.csv of `epochs` rows: losses fall, mAP@0.5 rises linearly, the rest is constant.
fn results_csv(epochs: usize) -> String {
    let mut s = header() + "\n";
    for e in 0..epochs {
        let t = e as f64;
        let loss = 0.1 - 0.002 * t;
        let row = [t, loss, 0.05, 0.02, 0.6, 0.5, 0.1 + 0.02 * t, 0.3, loss * 0.9, 0.04, 0.01, 0.01, 0.01, 0.01];
        s += &row.iter().map(|v| format!("{v:>22.5}")).collect::<Vec<_>>().join(",");
        s += "\n";
    }
    s
}

fn panel(index: u32) -> (u32, u32, u32, u32) {
    let (w, h) = (RESULTS_SIZE.0 / 5, RESULTS_SIZE.1 / 2);
    let (col, row) = (index % 5, index / 5);
    (col * w, row * h, (col + 1) * w, (row + 1) * h)
}

#[test]
fn results_png_draws_rising_map_and_falling_loss() {
    let dir = out_dir("results");
    let csv = dir.path.join("results.csv");
    std::fs::write(&csv, results_csv(30)).unwrap();
    let out = dir.path.join("results.png");
    timed("plot_results", || plot_results(&csv, &out)).unwrap();
    let img = load(&out, RESULTS_SIZE);

    let c0 = rgb(TAB10[0]);
    let c1 = rgb(TAB10[1]);
    // Panel 8 is metrics/mAP_0.5: its line rises from left to right (y decreases).
    let map = find(&img, panel(8), |p| near(p, c0, 40));
    assert!(map.len() > 200, "only {} line pixels in the mAP panel", map.len());
    let (left, right) = ends(&map);
    assert!(left - right > 150.0, "mAP line does not rise: left y {left}, right y {right}");
    assert!(slope(&map) < -0.5, "slope {}", slope(&map));
    assert!(find(&img, panel(8), |p| near(p, c1, 40)).len() > 50, "no smoothed line in the mAP panel");
    // Panels 0 (train/box_loss) and 5 (val/box_loss) fall.
    for index in [0, 5] {
        let loss = find(&img, panel(index), |p| near(p, c0, 40));
        let (left, right) = ends(&loss);
        assert!(right - left > 150.0, "panel {index}: loss line does not fall: {left} → {right}");
    }
    // A constant column (metrics/precision, panel 3) is a flat line.
    let flat = find(&img, panel(3), |p| near(p, c0, 40));
    let (left, right) = ends(&flat);
    assert!((left - right).abs() < 4.0, "constant column not flat: {left} vs {right}");
}

#[test]
fn results_csv_errors_name_the_file_and_line() {
    let dir = out_dir("results_errors");
    let out = dir.path.join("results.png");
    let good = results_csv(3);
    let cases = [
        // A column missing from the header.
        (
            "missing_column.csv",
            good.replacen("metrics/mAP_0.5:0.95", "metrics/mAP_0.5-0.95", 1),
            "line 1",
            "mAP_0.5:0.95",
        ),
        // A non-numeric field on the second data row.
        (
            "word.csv",
            {
                let mut lines: Vec<String> = good.lines().map(String::from).collect();
                lines[2] = lines[2].replacen("0.50000", "half", 1);
                lines.join("\n")
            },
            "line 3",
            "half",
        ),
        // A row with a field missing.
        (
            "short_row.csv",
            {
                let mut lines: Vec<String> = good.lines().map(String::from).collect();
                let cut = lines[3].rfind(',').unwrap();
                lines[3].truncate(cut);
                lines.join("\n")
            },
            "line 4",
            "expected 14 fields, found 13",
        ),
    ];
    for (name, text, line, detail) in cases {
        let csv = dir.path.join(name);
        std::fs::write(&csv, text).unwrap();
        match plot_results(&csv, &out) {
            Err(TrainError::Plot { path, reason }) => {
                assert_eq!(path, out);
                assert!(reason.contains(name), "{name}: reason does not name the file: {reason}");
                assert!(reason.contains(line), "{name}: reason does not name {line}: {reason}");
                assert!(reason.contains(detail), "{name}: {reason}");
                let message = TrainError::Plot { path, reason }.to_string();
                assert!(message.contains("results.png"), "{message}");
            }
            other => panic!("{name}: expected TrainError::Plot, got {other:?}"),
        }
        assert!(!out.exists(), "{name}: a PNG was written for a malformed CSV");
    }
    let missing = dir.path.join("absent.csv");
    let err = plot_results(&missing, &out);
    assert!(matches!(err, Err(TrainError::Plot { ref reason, .. }) if reason.contains("absent.csv")), "{err:?}");
}

fn grid() -> Vec<f64> {
    (0..1000).map(|i| f64::from(i) / 999.0).collect()
}

fn chart_region() -> (u32, u32, u32, u32) {
    (0, 0, CURVE_CHART_WIDTH, CURVE_SIZE.1)
}

fn is_mean_blue(p: [u8; 3]) -> bool {
    near(p, rgb(MEAN_COLOR), 60)
}

#[test]
fn pr_curve_draws_falling_precision_and_legend() {
    let dir = out_dir("pr");
    let px = grid();
    let pr = vec![px.iter().map(|r| 1.0 - r).collect::<Vec<_>>(), px.iter().map(|r| 1.0 - r * r).collect()];
    let names = vec!["person".to_string(), "car".to_string()];
    let out = dir.path.join("PR_curve.png");
    timed("plot_pr_curve", || plot_pr_curve(&px, &pr, &[0.5, 0.667], &names, &out)).unwrap();
    let img = load(&out, CURVE_SIZE);

    let mean = find(&img, chart_region(), is_mean_blue);
    assert!(mean.len() > 500, "thick mean curve has {} pixels", mean.len());
    let (left, right) = ends(&mean);
    assert!(right - left > 250.0, "mean precision does not fall with recall: {left} → {right}");
    // The mean starts at precision 1 (top) and ends at 0.5*(0+0) = 0 (bottom): the end sits far lower.
    for c in [TAB10[0], TAB10[1]] {
        assert!(find(&img, chart_region(), |p| near(p, rgb(c), 30)).len() > 100, "class curve {c:?} missing");
    }
    // The legend (right of the axes) holds the line samples of both classes and of the mean.
    let legend = (CURVE_CHART_WIDTH, 0, CURVE_SIZE.0, CURVE_SIZE.1);
    assert!(!find(&img, legend, is_mean_blue).is_empty(), "no mean entry in the legend");
    assert!(!find(&img, legend, |p| near(p, rgb(TAB10[1]), 30)).is_empty(), "no class entry in the legend");
    assert!(find(&img, legend, |p| p[0] < 60 && p[1] < 60 && p[2] < 60).len() > 100, "no legend text");
}

/// x of the topmost pixels of the thick mean curve.
fn peak_x(img: &RgbImage) -> f64 {
    let mean = find(img, chart_region(), is_mean_blue);
    let top = mean.iter().map(|p| p.1).fold(f64::MAX, f64::min);
    let xs: Vec<f64> = mean.iter().filter(|p| p.1 <= top + 1.0).map(|p| p.0).collect();
    xs.iter().sum::<f64>() / xs.len() as f64
}

#[test]
fn metric_curve_peaks_where_the_data_peaks() {
    let dir = out_dir("metric");
    let px = grid();
    let bump = |at: f64, h: f64| px.iter().map(|x| h * (-((x - at) / 0.12).powi(2)).exp()).collect::<Vec<f64>>();
    let names = vec!["a".to_string(), "b".to_string()];

    let early = dir.path.join("F1_curve.png");
    timed("plot_metric_curve", || plot_metric_curve(&px, &[bump(0.3, 0.9), bump(0.3, 0.7)], &names, "F1", &early))
        .unwrap();
    let late = dir.path.join("P_curve.png");
    plot_metric_curve(&px, &[bump(0.7, 0.9), bump(0.7, 0.7)], &names, "Precision", &late).unwrap();

    let (early_x, late_x) = (peak_x(&load(&early, CURVE_SIZE)), peak_x(&load(&late, CURVE_SIZE)));
    // Confidence 0 lies at the left edge of the axes, 1 at the right edge.
    let (x0, _, x1, _) = CURVE_AXES;
    let at = |conf: f64| f64::from(x0) + conf * f64::from(x1 - 1 - x0);
    assert!((early_x - at(0.3)).abs() < 6.0, "peak at 0.3 drawn at x {early_x}, expected {}", at(0.3));
    assert!((late_x - at(0.7)).abs() < 6.0, "peak at 0.7 drawn at x {late_x}, expected {}", at(0.7));
}

#[test]
fn many_classes_are_grey_without_per_class_legend() {
    let dir = out_dir("many");
    let px = grid();
    let curves: Vec<Vec<f64>> = (0..25).map(|c| px.iter().map(|x| (1.0 - x) * f64::from(c) / 25.0).collect()).collect();
    let names: Vec<String> = (0..25).map(|c| format!("class{c}")).collect();
    let out = dir.path.join("R_curve.png");
    plot_metric_curve(&px, &curves, &names, "Recall", &out).unwrap();
    let img = load(&out, CURVE_SIZE);
    assert!(find(&img, chart_region(), |p| near(p, rgb(GREY), 10)).len() > 500, "no grey class curves");
    assert!(find(&img, (0, 0, CURVE_SIZE.0, CURVE_SIZE.1), |p| near(p, rgb(TAB10[3]), 20)).is_empty());
    // Only the mean entry in the legend: its line sample, and text on one row only.
    let legend = (CURVE_CHART_WIDTH, 0, CURVE_SIZE.0, CURVE_SIZE.1);
    let text = find(&img, legend, |p| p[0] < 60 && p[1] < 60 && p[2] < 60);
    let (top, bottom) = text.iter().fold((f64::MAX, f64::MIN), |(a, b), p| (a.min(p.1), b.max(p.1)));
    assert!(bottom - top < 20.0, "legend text spans {top}..{bottom}");
}

/// Colour of a cell, sampled a fifth of the way in from its top-left corner (away from the centred
/// annotation).
fn cell_colour(img: &RgbImage, n: usize, row: usize, col: usize) -> [u8; 3] {
    let layout = confusion_layout(n);
    let (x0, y0, _, _) = layout.cell_rect(row, col);
    let (cx, cy) = layout.cell_center(row, col);
    assert!(cx > x0 && cy > y0);
    img.get_pixel((x0 + layout.cell / 5) as u32, (y0 + layout.cell / 5) as u32).0
}

#[test]
fn confusion_matrix_diagonal_is_darker() {
    let dir = out_dir("confusion");
    let n = 4;
    let mut m = vec![vec![1.0; n]; n];
    for (i, row) in m.iter_mut().enumerate() {
        row[i] = [50.0, 30.0, 20.0, 40.0][i];
    }
    let names = vec!["person".to_string(), "car".to_string(), "dog".to_string()];
    let out = dir.path.join("confusion_matrix.png");
    timed("plot_confusion_matrix", || plot_confusion_matrix(&m, &names, true, &out)).unwrap();
    let img = load(&out, CONFUSION_SIZE);
    for r in 0..n {
        for c in 0..n {
            if r == c {
                continue;
            }
            let (diag_r, diag_c, off) =
                (cell_colour(&img, n, r, r), cell_colour(&img, n, c, c), cell_colour(&img, n, r, c));
            assert!(
                luminance(diag_r) + 60.0 < luminance(off) && luminance(diag_c) + 60.0 < luminance(off),
                "cell ({r},{c}) {off:?} not lighter than the diagonal {diag_r:?} {diag_c:?}"
            );
            // Off-diagonal values (1/53 and more) are shown: light blue, not white.
            assert_ne!(off, [255, 255, 255], "cell ({r},{c}) blank");
        }
    }
    // Cells are annotated: dark text in light cells.
    let layout = confusion_layout(n);
    let (x0, y0, x1, y1) = layout.cell_rect(0, 1);
    let text = find(&img, (x0 as u32, y0 as u32, x1 as u32, y1 as u32), |p| luminance(p) < 90.0);
    assert!(text.len() > 20, "no annotation in cell (0, 1)");
}

#[test]
fn confusion_matrix_normalises_columns() {
    let dir = out_dir("confusion_norm");
    let n = 3;
    // Column 0 holds 100 objects, column 1 five: both all on the diagonal.
    let m = vec![vec![100.0, 0.0, 0.0], vec![0.0, 5.0, 0.0], vec![0.0, 0.0, 0.0]];
    let names = vec!["a".to_string(), "b".to_string()];
    let normed = dir.path.join("normalised.png");
    plot_confusion_matrix(&m, &names, true, &normed).unwrap();
    let counts = dir.path.join("counts.png");
    plot_confusion_matrix(&m, &names, false, &counts).unwrap();
    let (normed, counts) = (load(&normed, CONFUSION_SIZE), load(&counts, CONFUSION_SIZE));
    assert_eq!(cell_colour(&normed, n, 0, 0), cell_colour(&normed, n, 1, 1), "normalised columns differ");
    assert!(luminance(cell_colour(&counts, n, 1, 1)) > luminance(cell_colour(&counts, n, 0, 0)) + 60.0);
    // Zero cells and the empty background column are blank.
    assert_eq!(cell_colour(&normed, n, 0, 1), [255, 255, 255]);
    assert_eq!(cell_colour(&normed, n, 2, 2), [255, 255, 255]);
}

#[test]
fn confusion_matrix_many_classes() {
    let dir = out_dir("confusion_many");
    let n = 81;
    let m: Vec<Vec<f64>> = (0..n).map(|r| (0..n).map(|c| if r == c { 10.0 } else { 0.0 }).collect()).collect();
    let names: Vec<String> = (0..n - 1).map(|c| format!("class {c}")).collect();
    let out = dir.path.join("confusion_matrix.png");
    timed("plot_confusion_matrix 81", || plot_confusion_matrix(&m, &names, true, &out)).unwrap();
    let img = load(&out, CONFUSION_SIZE);
    assert!(luminance(cell_colour(&img, n, 40, 40)) < 100.0);
    assert_eq!(cell_colour(&img, n, 40, 41), [255, 255, 255]);
}

#[test]
fn labels_bars_follow_the_counts_and_boxes_cluster() {
    let dir = out_dir("labels");
    let mut classes = Vec::new();
    let mut boxes = Vec::new();
    for (c, count) in [(0usize, 10usize), (1, 40), (2, 20)] {
        for i in 0..count {
            classes.push(c);
            // Wide, flat boxes around w 0.8, h 0.2.
            boxes.push([0.78 + 0.001 * i as f32, 0.18 + 0.001 * i as f32]);
        }
    }
    let names = vec!["person".to_string(), "bicycle".to_string(), "car".to_string()];
    let out = dir.path.join("labels.png");
    timed("plot_labels", || plot_labels(&classes, &boxes, &names, &out)).unwrap();
    let img = load(&out, LABELS_SIZE);

    let half = LABELS_SIZE.0 / 2;
    let left = (0, 0, half, LABELS_SIZE.1);
    let heights: Vec<f64> = (0..3)
        .map(|c| {
            let bar = find(&img, left, |p| p == rgb(CLASS_PALETTE[c]));
            assert!(bar.len() > 100, "no bar for class {c}");
            let (top, bottom) = bar.iter().fold((f64::MAX, f64::MIN), |(a, b), p| (a.min(p.1), b.max(p.1)));
            bottom - top + 1.0
        })
        .collect();
    assert!((heights[1] / heights[0] - 4.0).abs() < 0.3, "bar heights {heights:?}");
    assert!((heights[2] / heights[0] - 2.0).abs() < 0.2, "bar heights {heights:?}");

    // The histogram's filled bins sit right (wide) and low (flat) in the right panel.
    let right = (half, 0, LABELS_SIZE.0, LABELS_SIZE.1);
    let filled = find(&img, right, |p| i32::from(p[2]) - i32::from(p[0]) > 30 && p[2] < 250);
    assert!(filled.len() > 20, "no filled histogram bins");
    let (mx, my) = (
        filled.iter().map(|p| p.0).sum::<f64>() / filled.len() as f64,
        filled.iter().map(|p| p.1).sum::<f64>() / filled.len() as f64,
    );
    assert!(mx > f64::from(half) + 0.6 * f64::from(half), "histogram mass at x {mx}");
    assert!(my > 0.6 * f64::from(LABELS_SIZE.1), "histogram mass at y {my}");
}

#[test]
fn labels_with_many_classes_and_no_names() {
    let dir = out_dir("labels_many");
    let classes: Vec<usize> = (0..400).map(|i| i % 80).collect();
    let boxes: Vec<[f32; 2]> = (0..400).map(|i| [(i % 97) as f32 / 97.0, (i % 89) as f32 / 89.0]).collect();
    let out = dir.path.join("labels.png");
    plot_labels(&classes, &boxes, &[], &out).unwrap();
    let img = load(&out, LABELS_SIZE);
    // Class 79 has a bar, in the 20th palette colour.
    assert!(!find(&img, (0, 0, LABELS_SIZE.0 / 2, LABELS_SIZE.1), |p| p == rgb(CLASS_PALETTE[79 % 20])).is_empty());
}

#[test]
fn long_names_are_written_vertically() {
    let dir = out_dir("long_names");
    let nc = 12;
    let names: Vec<String> = (0..nc).map(|c| format!("long class name {c}")).collect();
    // Confusion matrix: the names under the grid read upwards, so their ink reaches far below it.
    let n = nc + 1;
    let m: Vec<Vec<f64>> = (0..n).map(|r| (0..n).map(|c| if r == c { 5.0 } else { 1.0 }).collect()).collect();
    let out = dir.path.join("confusion_matrix.png");
    plot_confusion_matrix(&m, &names, false, &out).unwrap();
    let img = load(&out, CONFUSION_SIZE);
    let layout = confusion_layout(n);
    let bottom = (layout.top + layout.side()) as u32;
    let (x0, x1) = (layout.left as u32, (layout.left + layout.side()) as u32);
    let ink = find(&img, (x0, bottom + 2, x1, CONFUSION_SIZE.1), |p| luminance(p) < 100.0);
    let depth = ink.iter().map(|p| p.1).fold(0.0, f64::max) - f64::from(bottom);
    assert!(depth > 90.0, "names reach {depth} px below the grid");
    // Every column has its name: ink under each cell centre's column band.
    for c in 0..n {
        let (cx, _) = layout.cell_center(0, c);
        let band = ((cx - 6) as u32, bottom + 2, (cx + 7) as u32, bottom + 60);
        assert!(!find(&img, band, |p| luminance(p) < 100.0).is_empty(), "no name under column {c}");
    }

    // labels.png: the same for the bar chart.
    let classes: Vec<usize> = (0..nc).flat_map(|c| std::iter::repeat_n(c, c + 1)).collect();
    let boxes = vec![[0.5f32, 0.5f32]; classes.len()];
    let out = dir.path.join("labels.png");
    plot_labels(&classes, &boxes, &names, &out).unwrap();
    let img = load(&out, LABELS_SIZE);
    let bar = find(&img, (0, 0, LABELS_SIZE.0 / 2, LABELS_SIZE.1), |p| p == rgb(CLASS_PALETTE[0]));
    let axis = bar.iter().map(|p| p.1).fold(0.0, f64::max) as u32;
    let ink = find(&img, (0, axis + 2, LABELS_SIZE.0 / 2, LABELS_SIZE.1), |p| luminance(p) < 100.0);
    let depth = ink.iter().map(|p| p.1).fold(0.0, f64::max) - f64::from(axis);
    assert!(depth > 90.0, "names reach {depth} px below the bars");
}

#[test]
fn degenerate_inputs_still_draw() {
    let dir = out_dir("degenerate");
    // results.csv with a header only, or a single epoch.
    let csv = dir.path.join("results.csv");
    std::fs::write(&csv, header() + "\n").unwrap();
    plot_results(&csv, &dir.path.join("empty_results.png")).unwrap();
    std::fs::write(&csv, results_csv(1)).unwrap();
    plot_results(&csv, &dir.path.join("one_epoch.png")).unwrap();
    load(&dir.path.join("one_epoch.png"), RESULTS_SIZE);
    // No classes at all.
    let px = grid();
    plot_pr_curve(&px, &[], &[], &[], &dir.path.join("PR_curve.png")).unwrap();
    plot_metric_curve(&px, &[], &[], "F1", &dir.path.join("F1_curve.png")).unwrap();
    plot_labels(&[], &[], &[], &dir.path.join("labels.png")).unwrap();
    // Only the background row and column.
    plot_confusion_matrix(&[vec![3.0]], &[], true, &dir.path.join("confusion_matrix.png")).unwrap();
    for (name, size) in [
        ("empty_results.png", RESULTS_SIZE),
        ("PR_curve.png", CURVE_SIZE),
        ("F1_curve.png", CURVE_SIZE),
        ("labels.png", LABELS_SIZE),
        ("confusion_matrix.png", CONFUSION_SIZE),
    ] {
        let bytes = std::fs::read(dir.path.join(name)).unwrap();
        let img = image::load_from_memory(&bytes).unwrap();
        assert_eq!((img.width(), img.height()), size, "{name}");
    }
}
