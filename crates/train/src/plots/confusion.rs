//! `confusion_matrix.png`, drawn like ultralytics' `ConfusionMatrix.plot` (a seaborn heat map):
//! rows are the predicted classes, columns the true classes, the last row and column "background";
//! with `normalize` every column is divided by its sum; values below 0.005 are left blank; cells are
//! coloured with the "Blues" map from 0 to the largest value and annotated when there are fewer than
//! 30 classes.

use std::path::Path;

use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, VPos};

use super::font::{TextSpec, draw_text, text_width};
use super::{
    Canvas, DrawResult, blues, nice_ticks, plot_error, relative_luminance, render_png, truncate, truncate_to_width,
};
use crate::error::TrainError;

/// Size of `confusion_matrix.png` in pixels.
pub const CONFUSION_SIZE: (u32, u32) = (1000, 800);

/// Free space around the grid: title above, class names and "Predicted" on the left, class names and
/// "True" below, colour bar on the right.
const TOP: i32 = 50;
const LEFT: i32 = 180;
const BOTTOM: i32 = 150;
const RIGHT: i32 = 120;

/// Cells below this value are blank and not annotated (ultralytics: "would appear as 0.00").
const BLANK_BELOW: f64 = 0.005;

/// Where the cells of an `n` x `n` confusion matrix lie in `confusion_matrix.png`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConfusionLayout {
    /// Number of rows and columns (classes + background).
    pub n: usize,
    /// Left edge of the grid, in pixels.
    pub left: i32,
    /// Top edge of the grid, in pixels.
    pub top: i32,
    /// Side of a square cell, in pixels.
    pub cell: i32,
}

impl ConfusionLayout {
    /// Pixel rectangle `(x0, y0, x1, y1)` (exclusive ends) of the cell of predicted class `row`
    /// and true class `col`.
    pub fn cell_rect(&self, row: usize, col: usize) -> (i32, i32, i32, i32) {
        let x0 = self.left + col as i32 * self.cell;
        let y0 = self.top + row as i32 * self.cell;
        (x0, y0, x0 + self.cell, y0 + self.cell)
    }

    /// Pixel centre of the cell of predicted class `row` and true class `col`.
    pub fn cell_center(&self, row: usize, col: usize) -> (i32, i32) {
        let (x0, y0, _, _) = self.cell_rect(row, col);
        (x0 + self.cell / 2, y0 + self.cell / 2)
    }

    /// Side of the whole grid, in pixels.
    pub fn side(&self) -> i32 {
        self.cell * self.n as i32
    }
}

/// The layout of an `n` x `n` matrix (`n` = classes + background) in [`CONFUSION_SIZE`].
pub fn confusion_layout(n: usize) -> ConfusionLayout {
    let (w, h) = (CONFUSION_SIZE.0 as i32, CONFUSION_SIZE.1 as i32);
    let avail = (w - LEFT - RIGHT).min(h - TOP - BOTTOM);
    let cell = (avail / n.max(1) as i32).max(1);
    ConfusionLayout { n, left: LEFT, top: TOP, cell }
}

/// Column-normalised copy of `matrix` (each column divided by its sum + 1e-9) when `normalize`,
/// with values below 0.005 replaced by NaN (blank cells).
fn display_values(matrix: &[Vec<f64>], normalize: bool) -> Vec<Vec<f64>> {
    let n = matrix.len();
    let col_sums: Vec<f64> = (0..n).map(|c| matrix.iter().map(|row| row[c]).sum::<f64>()).collect();
    matrix
        .iter()
        .map(|row| {
            row.iter()
                .zip(&col_sums)
                .map(|(&v, &s)| {
                    let v = if normalize { v / (s + 1e-9) } else { v };
                    if v < BLANK_BELOW { f64::NAN } else { v }
                })
                .collect()
        })
        .collect()
}

/// Draws `confusion_matrix.png` from the (nc+1) x (nc+1) `matrix`: `matrix[p][t]` counts the
/// detections of predicted class `p` matched to true class `t`, index nc being "background" (missed
/// objects in the last row, false positives in the last column). With `normalize` each column is
/// divided by its sum (ultralytics' default). Class names label the axes when `names` holds the nc
/// class names and nc < 99, otherwise the indices do; cells are annotated when nc < 30. The grid lies
/// where [`confusion_layout`] says. The matrix must be square, non-empty, finite and non-negative.
pub fn plot_confusion_matrix(
    matrix: &[Vec<f64>],
    names: &[String],
    normalize: bool,
    out: &Path,
) -> Result<(), TrainError> {
    let n = matrix.len();
    if n == 0 {
        return Err(plot_error(out, "the confusion matrix is empty"));
    }
    if let Some((r, row)) = matrix.iter().enumerate().find(|(_, row)| row.len() != n) {
        return Err(plot_error(out, format!("the confusion matrix has {n} rows but row {r} has {} values", row.len())));
    }
    if matrix.iter().flatten().any(|v| !v.is_finite() || *v < 0.0) {
        return Err(plot_error(out, "the confusion matrix holds a negative or non-finite value"));
    }
    let nc = n - 1;
    let labels: Vec<String> = if names.len() == nc && nc < 99 {
        names.iter().map(|s| truncate(s, 16)).chain(std::iter::once("background".to_string())).collect()
    } else {
        (0..n).map(|i| i.to_string()).collect()
    };
    let values = display_values(matrix, normalize);
    let vmax = values.iter().flatten().copied().filter(|v| v.is_finite()).fold(0.0, f64::max);
    let vmax = if vmax > 0.0 { vmax } else { 1.0 };
    let layout = confusion_layout(n);
    let annotate = nc < 30;
    let decimals = if normalize { 2 } else { 0 };

    render_png(out, CONFUSION_SIZE, |root| {
        let grid_mid = layout.left + layout.side() / 2;
        let title = TextSpec::new(22.0).anchor(HPos::Center, VPos::Center);
        draw_text(root, "Confusion Matrix", (grid_mid, TOP / 2), title)?;

        let annot_size = (f64::from(layout.cell) / 3.2).clamp(6.0, 16.0);
        for (r, row) in values.iter().enumerate() {
            for (c, &v) in row.iter().enumerate() {
                if !v.is_finite() {
                    continue;
                }
                let (x0, y0, x1, y1) = layout.cell_rect(r, c);
                let color = blues(v / vmax);
                root.draw(&Rectangle::new([(x0, y0), (x1, y1)], color.filled()))?;
                if annotate {
                    let text_color = if relative_luminance(color) > 0.408 { RGBColor(38, 38, 38) } else { WHITE };
                    let spec = TextSpec::new(annot_size).color(text_color).anchor(HPos::Center, VPos::Center);
                    draw_text(root, &format!("{v:.decimals$}"), layout.cell_center(r, c), spec)?;
                }
            }
        }
        draw_tick_labels(root, &layout, &labels)?;
        draw_colorbar(root, &layout, vmax)
    })
}

/// Class names along both axes (thinned to about 40 when there are many) and the axis titles.
fn draw_tick_labels(root: &Canvas<'_>, layout: &ConfusionLayout, labels: &[String]) -> DrawResult {
    let n = layout.n;
    let size = (f64::from(layout.cell) * 0.6).clamp(8.0, 14.0);
    let every = n.div_ceil(40).max(1);
    let shown: Vec<(usize, &String)> = labels.iter().enumerate().step_by(every).collect();
    let widest = shown.iter().map(|(_, l)| text_width(l, size)).fold(0.0, f64::max);
    let rotate = widest > f64::from(layout.cell * every as i32 - 4);
    let bottom = layout.top + layout.side();
    let spec = TextSpec::new(size);
    // Names written vertically under the grid are cut to leave room for "True" below them.
    let max_depth = f64::from(BOTTOM - 44);
    for &(i, label) in &shown {
        let (cx, cy) = layout.cell_center(i, i);
        draw_text(root, label, (layout.left - 6, cy), spec.anchor(HPos::Right, VPos::Center))?;
        if rotate {
            let cut = truncate_to_width(label, size, max_depth);
            draw_text(root, &cut, (cx, bottom + 6), spec.anchor(HPos::Right, VPos::Center).rotated())?;
        } else {
            draw_text(root, label, (cx, bottom + 6), spec.anchor(HPos::Center, VPos::Top))?;
        }
    }
    let x_extent = if rotate { widest.min(max_depth).ceil() as i32 } else { size as i32 };
    let desc = TextSpec::new(16.0);
    let true_at = (layout.left + layout.side() / 2, bottom + 6 + x_extent + 10);
    draw_text(root, "True", true_at, desc.anchor(HPos::Center, VPos::Top))?;
    let predicted_at = ((layout.left - 16 - widest.ceil() as i32).max(24), layout.top + layout.side() / 2);
    draw_text(root, "Predicted", predicted_at, desc.anchor(HPos::Center, VPos::Bottom).rotated())?;
    Ok(())
}

/// The colour bar right of the grid: the "Blues" gradient from 0 (bottom) to `vmax` (top) with ticks.
fn draw_colorbar(root: &Canvas<'_>, layout: &ConfusionLayout, vmax: f64) -> DrawResult {
    let x0 = layout.left + layout.side() + 30;
    let (top, height) = (layout.top, layout.side());
    for dy in 0..height {
        let t = 1.0 - f64::from(dy) / f64::from((height - 1).max(1));
        root.draw(&Rectangle::new([(x0, top + dy), (x0 + 20, top + dy + 1)], blues(t).filled()))?;
    }
    root.draw(&Rectangle::new([(x0, top), (x0 + 20, top + height)], BLACK.stroke_width(1)))?;
    let (ticks, decimals) = nice_ticks(0.0, vmax, 6);
    let spec = TextSpec::new(12.0).anchor(HPos::Left, VPos::Center);
    for v in ticks {
        let y = top + height - 1 - (f64::from(height - 1) * v / vmax).round() as i32;
        root.draw(&PathElement::new(vec![(x0 + 20, y), (x0 + 24, y)], BLACK.stroke_width(1)))?;
        draw_text(root, &format!("{v:.decimals$}"), (x0 + 27, y), spec)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_are_normalised_and_small_values_blank() {
        let m = vec![vec![3.0, 0.0, 1.0], vec![1.0, 0.0, 0.0], vec![0.0, 0.001, 1000.0]];
        let v = display_values(&m, true);
        assert!((v[0][0] - 0.75).abs() < 1e-6 && (v[1][0] - 0.25).abs() < 1e-6);
        assert!(v[2][0].is_nan(), "zero is blank");
        assert!(v[0][1].is_nan() && v[1][1].is_nan() && (v[2][1] - 1.0).abs() < 1e-6, "{:?}", v);
        assert!(v[0][2].is_nan(), "1/1001 < 0.005 is blank");
        let raw = display_values(&m, false);
        assert_eq!(raw[0][0], 3.0);
        assert!(raw[2][1].is_nan());
    }

    #[test]
    fn layout_fits_the_image() {
        for n in [1, 2, 4, 21, 81, 100] {
            let l = confusion_layout(n);
            assert!(l.cell >= 1);
            assert!(l.left + l.side() + RIGHT <= CONFUSION_SIZE.0 as i32, "n {n}");
            assert!(l.top + l.side() + BOTTOM <= CONFUSION_SIZE.1 as i32, "n {n}");
            let (x, y) = l.cell_center(n - 1, n - 1);
            assert!(x < l.left + l.side() && y < l.top + l.side());
        }
        assert_eq!(confusion_layout(4).cell, 150);
    }

    #[test]
    fn bad_matrices_are_plot_errors() {
        let out = Path::new("/nonexistent/cm.png");
        let names = vec!["a".to_string()];
        for m in [
            vec![],
            vec![vec![1.0, 2.0], vec![3.0]],
            vec![vec![1.0, f64::NAN], vec![0.0, 0.0]],
            vec![vec![1.0, -1.0], vec![0.0, 0.0]],
        ] {
            let err = plot_confusion_matrix(&m, &names, true, out).unwrap_err();
            assert!(matches!(err, TrainError::Plot { ref path, .. } if path == out), "{err:?}");
        }
    }
}
