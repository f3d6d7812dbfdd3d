//! `results.png`: the per-epoch losses and metrics of a run, read back from its `results.csv`, in
//! ultralytics' 2x5 grid (`utils.plots.plot_results`): each panel shows the values (C0 line with dot
//! markers) and their Gaussian smoothing (sigma 3, C1 dashed line).

use std::path::Path;

use plotters::prelude::*;

use super::{Axes, Canvas, DrawResult, TAB10, padded_range, plot_error, render_png};
use crate::error::TrainError;

pub use crate::trainer::run_dir::RESULTS_COLUMNS;

/// The panels of `results.png`, row by row (ultralytics' column order `[1, 2, 3, 4, 5, 8, 9, 10, 6, 7]`).
pub const RESULTS_PANELS: [&str; 10] = [
    "train/box_loss",
    "train/obj_loss",
    "train/cls_loss",
    "metrics/precision",
    "metrics/recall",
    "val/box_loss",
    "val/obj_loss",
    "val/cls_loss",
    "metrics/mAP_0.5",
    "metrics/mAP_0.5:0.95",
];

/// Size of `results.png` in pixels; each of the 2x5 panels takes a fifth of the width and half the height.
pub const RESULTS_SIZE: (u32, u32) = (1600, 800);

/// The columns of `results.csv` that are plotted.
#[derive(Debug, Clone, PartialEq)]
struct ResultsTable {
    /// The `epoch` column.
    epochs: Vec<f64>,
    /// One series per entry of [`RESULTS_PANELS`].
    panels: Vec<Vec<f64>>,
}

/// Parses the text of `results.csv`; an error is `(1-based line, what is wrong)`.
fn parse_results(text: &str) -> Result<ResultsTable, (usize, String)> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut lines = text.lines().enumerate().map(|(i, l)| (i + 1, l));
    let (_, header) = lines.next().ok_or((1, "the file is empty, expected a header".to_string()))?;
    let columns: Vec<&str> = header.split(',').map(str::trim).collect();
    let index_of = |name: &str| {
        columns.iter().position(|c| *c == name).ok_or((1, format!("missing column '{name}' in the header")))
    };
    let epoch_col = index_of("epoch")?;
    let panel_cols = RESULTS_PANELS.iter().map(|name| index_of(name)).collect::<Result<Vec<_>, _>>()?;

    let mut table = ResultsTable { epochs: Vec::new(), panels: vec![Vec::new(); RESULTS_PANELS.len()] };
    for (line_no, line) in lines {
        if line.trim().is_empty() {
            continue;
        }
        let fields: Vec<&str> = line.split(',').map(str::trim).collect();
        if fields.len() != columns.len() {
            return Err((line_no, format!("expected {} fields, found {}", columns.len(), fields.len())));
        }
        let mut values = Vec::with_capacity(fields.len());
        for (field, name) in fields.iter().zip(&columns) {
            let v: f64 = field.parse().map_err(|_| (line_no, format!("column '{name}': '{field}' is not a number")))?;
            values.push(v);
        }
        table.epochs.push(values[epoch_col]);
        for (series, &col) in table.panels.iter_mut().zip(&panel_cols) {
            series.push(values[col]);
        }
    }
    Ok(table)
}

/// scipy's `gaussian_filter1d(y, sigma)` (mode "reflect", truncate 4.0), the smoothing of `plot_results`.
pub(crate) fn gaussian_filter1d(y: &[f64], sigma: f64) -> Vec<f64> {
    let n = y.len();
    if n == 0 || sigma <= 0.0 {
        return y.to_vec();
    }
    let radius = (4.0 * sigma + 0.5) as isize;
    let mut weights: Vec<f64> = (-radius..=radius).map(|k| (-((k * k) as f64) / (2.0 * sigma * sigma)).exp()).collect();
    let total: f64 = weights.iter().sum();
    weights.iter_mut().for_each(|w| *w /= total);
    // "reflect": d c b a | a b c d | d c b a, periodic with period 2n.
    let reflect = |i: isize| {
        let m = i.rem_euclid(2 * n as isize) as usize;
        if m < n { m } else { 2 * n - 1 - m }
    };
    (0..n as isize).map(|i| weights.iter().zip(-radius..=radius).map(|(w, k)| w * y[reflect(i + k)]).sum()).collect()
}

/// Draws `results.png` from `results.csv`: a 2x5 grid of train/box_loss, train/obj_loss,
/// train/cls_loss, metrics/precision, metrics/recall, val/box_loss, val/obj_loss, val/cls_loss,
/// metrics/mAP_0.5 and metrics/mAP_0.5:0.95 against the epoch ([`RESULTS_PANELS`], [`RESULTS_SIZE`]).
///
/// The CSV needs a header naming at least `epoch` and the ten plotted columns (ultralytics writes
/// [`RESULTS_COLUMNS`]); whitespace around fields is ignored, blank lines are skipped, every field must
/// parse as a number (`nan` is accepted and left out of the plot). A missing or malformed file gives
/// [`TrainError::Plot`] for `out` whose reason names the CSV and the line at fault.
pub fn plot_results(csv: &Path, out: &Path) -> Result<(), TrainError> {
    let text =
        std::fs::read_to_string(csv).map_err(|e| plot_error(out, format!("cannot read {}: {e}", csv.display())))?;
    let table = parse_results(&text)
        .map_err(|(line, reason)| plot_error(out, format!("{}, line {line}: {reason}", csv.display())))?;
    render_png(out, RESULTS_SIZE, |root| {
        for ((area, title), ys) in root.split_evenly((2, 5)).iter().zip(RESULTS_PANELS).zip(&table.panels) {
            draw_panel(root, area, title, &table.epochs, ys)?;
        }
        Ok(())
    })
}

/// One panel (`area`, of `root`): the finite `(x, y)` points with dot markers and their Gaussian smoothing.
fn draw_panel(root: &Canvas<'_>, area: &Canvas<'_>, title: &str, xs: &[f64], ys: &[f64]) -> DrawResult {
    let points: Vec<(f64, f64)> =
        xs.iter().zip(ys).map(|(&x, &y)| (x, y)).filter(|(x, y)| x.is_finite() && y.is_finite()).collect();
    let smoothed_y = gaussian_filter1d(&points.iter().map(|p| p.1).collect::<Vec<_>>(), 3.0);
    let smoothed: Vec<(f64, f64)> = points.iter().zip(&smoothed_y).map(|(p, &y)| (p.0, y)).collect();

    let x = match padded_range(points.iter().map(|p| p.0)) {
        (lo, hi) if points.len() == 1 => (lo.min(points[0].0 - 1.0), hi.max(points[0].0 + 1.0)),
        range => range,
    };
    let y = padded_range(points.iter().chain(&smoothed).map(|p| p.1));
    let ((left, top), (right, bottom)) = {
        let (xr, yr) = area.get_pixel_range();
        ((xr.start, yr.start), (xr.end, yr.end))
    };
    let axes = Axes {
        rect: (left + 62, top + 30, right - 14, bottom - 28),
        x,
        y,
        title,
        xlabel: "",
        ylabel: "",
        x_ticks: true,
        title_size: 16.0,
        tick_size: 12.0,
    };
    let mut chart = axes.draw(root)?;
    chart.draw_series(LineSeries::new(points.iter().copied(), TAB10[0].stroke_width(2)))?;
    chart.draw_series(points.iter().map(|&p| Circle::new(p, 3, TAB10[0].filled())))?;
    chart.draw_series(DashedLineSeries::new(smoothed, 5, 4, TAB10[1].stroke_width(2)))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header() -> String {
        RESULTS_COLUMNS.iter().map(|c| format!("{c:>20}")).collect::<Vec<_>>().join(",")
    }

    #[test]
    fn parses_padded_ultralytics_csv() {
        let text = format!(
            "{}\n{}\n\n{}\n",
            header(),
            "   0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0, 0.01, 0.01, 0.01",
            "   1, 0.1, 0.2, 0.3, 0.4, 0.5, 0.65, nan, 0.8, 0.9, 1.0, 0.01, 0.01, 0.01"
        );
        let t = parse_results(&text).unwrap();
        assert_eq!(t.epochs, vec![0.0, 1.0]);
        // Panel 8 is mAP_0.5 (CSV column 6), panel 5 is val/box_loss (CSV column 8).
        assert_eq!(t.panels[8], vec![0.6, 0.65]);
        assert_eq!(t.panels[5], vec![0.8, 0.8]);
        assert!(t.panels[9][1].is_nan());
    }

    #[test]
    fn reports_the_line_at_fault() {
        let missing = header().replace("val/obj_loss", "val/obj_los");
        let (line, reason) = parse_results(&missing).unwrap_err();
        assert_eq!(line, 1);
        assert!(reason.contains("val/obj_loss"), "{reason}");

        let short = format!("{}\n0,1,2,3,4,5,6,7,8,9,10,11,12,13\n0,1,2\n", header());
        let (line, reason) = parse_results(&short).unwrap_err();
        assert_eq!(line, 3);
        assert!(reason.contains("expected 14 fields, found 3"), "{reason}");

        let word = format!("{}\n0,1,2,3,4,five,6,7,8,9,10,11,12,13\n", header());
        let (line, reason) = parse_results(&word).unwrap_err();
        assert_eq!(line, 2);
        assert!(reason.contains("metrics/recall") && reason.contains("five"), "{reason}");

        assert_eq!(parse_results("").unwrap_err().0, 1);
    }

    #[test]
    fn gaussian_filter_matches_scipy() {
        // The examples of scipy's documentation of `scipy.ndimage.gaussian_filter1d`.
        let cases: [(f64, [f64; 5]); 2] = [
            (1.0, [1.42704095, 2.06782203, 3.0, 3.93217797, 4.57295905]),
            (4.0, [2.91948343, 2.95023502, 3.0, 3.04976498, 3.08051657]),
        ];
        for (sigma, expected) in cases {
            let y = gaussian_filter1d(&[1.0, 2.0, 3.0, 4.0, 5.0], sigma);
            for (a, b) in y.iter().zip(expected) {
                assert!((a - b).abs() < 1e-7, "sigma {sigma}: {y:?}");
            }
        }
        // A constant stays constant, short input works.
        assert!(gaussian_filter1d(&[2.0; 5], 3.0).iter().all(|v| (v - 2.0).abs() < 1e-12));
        assert!((gaussian_filter1d(&[4.0], 3.0)[0] - 4.0).abs() < 1e-12);
        assert!(gaussian_filter1d(&[], 3.0).is_empty());
        // A ramp is smoothed towards its mean at the ends (reflection) but stays increasing.
        let ramp: Vec<f64> = (0..30).map(f64::from).collect();
        let s = gaussian_filter1d(&ramp, 3.0);
        assert!(s.windows(2).all(|w| w[1] > w[0]));
        assert!(s[0] > 0.5 && s[29] < 28.5);
    }
}
