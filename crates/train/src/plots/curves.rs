//! `PR_curve.png`, `F1_curve.png`, `P_curve.png` and `R_curve.png`, drawn like ultralytics'
//! `plot_pr_curve` and `plot_mc_curve`: one thin line per class (tab10 colours with a legend when
//! there are 1 to 20 named classes, grey and unlabelled otherwise) and the thick blue mean over the
//! classes, the legend outside the axes on the right.

use std::path::Path;

use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, VPos};

use super::font::{TextSpec, draw_text, text_width};
use super::{Axes, Canvas, DrawResult, TAB10, plot_error, render_png, truncate};
use crate::error::TrainError;

/// Size of the curve plots in pixels.
pub const CURVE_SIZE: (u32, u32) = (900, 600);

/// Width in pixels of the left part of a curve plot that holds the axes; the legend takes the rest.
pub const CURVE_CHART_WIDTH: u32 = 620;

/// The frame of the axes of a curve plot, `(x0, y0, x1, y1)` in pixels: confidence or recall 0 at x0,
/// 1 at x1 - 1; the metric 1 at y0, 0 at y1 - 1.
pub const CURVE_AXES: (i32, i32, i32, i32) = (76, 44, 606, 530);

/// Colour of the mean curve ("all classes"), matplotlib's "blue".
pub const MEAN_COLOR: RGBColor = RGBColor(0, 0, 255);

/// Colour of the per-class curves when there are too many classes (or no names) for a legend.
pub const GREY: RGBColor = RGBColor(128, 128, 128);

/// Per-class legends are drawn for fewer than this many named classes (as in ultralytics).
const MAX_LEGEND_CLASSES: usize = 21;

/// ultralytics' box filter (`smooth`, fraction `f` of the points), shared with the metrics.
pub use crate::metrics::smooth;

/// The mean over the classes at every point of the grid (`curves[c][i]` → `mean[i]`); empty without classes.
pub fn mean_curve(curves: &[Vec<f64>]) -> Vec<f64> {
    let Some(first) = curves.first() else { return Vec::new() };
    (0..first.len()).map(|i| curves.iter().map(|c| c[i]).sum::<f64>() / curves.len() as f64).collect()
}

/// The maximum of `y` (NaN ignored) and the grid value where it is first reached: the
/// "all classes 0.xx at 0.xxx" of a metric-confidence curve. `None` when `y` has no finite value.
pub fn best_of(px: &[f64], y: &[f64]) -> Option<(f64, f64)> {
    let mut best: Option<(f64, usize)> = None;
    for (i, &v) in y.iter().enumerate().take(px.len()) {
        if v.is_finite() && best.is_none_or(|(b, _)| v > b) {
            best = Some((v, i));
        }
    }
    best.map(|(v, i)| (v, px[i]))
}

/// One legend entry: text, colour, line width.
type LegendEntry = (String, RGBColor, u32);

/// Checks that every curve has one value per grid point and that `names` is empty or one per curve.
fn check_curves(px: &[f64], curves: &[Vec<f64>], names: &[String], out: &Path) -> Result<(), TrainError> {
    if px.is_empty() {
        return Err(plot_error(out, "the grid (px) is empty"));
    }
    if let Some((c, curve)) = curves.iter().enumerate().find(|(_, c)| c.len() != px.len()) {
        return Err(plot_error(out, format!("curve {c} has {} points, the grid has {}", curve.len(), px.len())));
    }
    if !names.is_empty() && names.len() != curves.len() {
        return Err(plot_error(out, format!("{} names for {} classes", names.len(), curves.len())));
    }
    Ok(())
}

/// Draws `PR_curve.png`: the precision `pr[c]` of each class against the recall grid `px` (ultralytics
/// uses 1000 points over 0..1), labelled "name AP50" with `ap50[c]`, and the thick blue mean over the
/// classes labelled "all classes x.xxx mAP@0.5" (the mean of `ap50`). `names` is empty or one per class;
/// per-class legends are drawn for 1 to 20 named classes, otherwise the classes are grey lines.
pub fn plot_pr_curve(
    px: &[f64],
    pr: &[Vec<f64>],
    ap50: &[f64],
    names: &[String],
    out: &Path,
) -> Result<(), TrainError> {
    check_curves(px, pr, names, out)?;
    if ap50.len() != pr.len() {
        return Err(plot_error(out, format!("{} AP values for {} classes", ap50.len(), pr.len())));
    }
    let labels: Vec<String> = names.iter().zip(ap50).map(|(n, ap)| format!("{} {ap:.3}", truncate(n, 20))).collect();
    let mean = if pr.is_empty() {
        None
    } else {
        let map50 = ap50.iter().sum::<f64>() / ap50.len() as f64;
        Some((mean_curve(pr), format!("all classes {map50:.3} mAP@0.5")))
    };
    draw_curves(out, "Precision-Recall Curve", "Recall", "Precision", px, pr, &labels, mean)
}

/// Draws a metric-confidence curve (`F1_curve.png`, `P_curve.png`, `R_curve.png`): `curves[c]`, the
/// metric of class `c` against the confidence grid `px`, labelled with `names[c]`, and the thick blue mean
/// over the classes, smoothed like ultralytics (`smooth(mean, 0.05)`), labelled "all classes 0.xx at 0.xxx"
/// with its maximum and where it is reached ([`best_of`]). `ylabel` names the metric ("F1", "Precision",
/// "Recall") and titles the plot "`ylabel`-Confidence Curve". `names` is empty or one per class.
pub fn plot_metric_curve(
    px: &[f64],
    curves: &[Vec<f64>],
    names: &[String],
    ylabel: &str,
    out: &Path,
) -> Result<(), TrainError> {
    check_curves(px, curves, names, out)?;
    let labels: Vec<String> = names.iter().map(|n| truncate(n, 26)).collect();
    let mean = if curves.is_empty() {
        None
    } else {
        let y = smooth(&mean_curve(curves), 0.05);
        let label = match best_of(px, &y) {
            Some((best, at)) => format!("all classes {best:.2} at {at:.3}"),
            None => "all classes".to_string(),
        };
        Some((y, label))
    };
    let title = format!("{ylabel}-Confidence Curve");
    draw_curves(out, &title, "Confidence", ylabel, px, curves, &labels, mean)
}

/// Shared drawing of the curve plots; `labels` is empty or one per curve, `mean` the thick curve and its label.
#[allow(clippy::too_many_arguments)]
fn draw_curves(
    out: &Path,
    title: &str,
    xlabel: &str,
    ylabel: &str,
    px: &[f64],
    curves: &[Vec<f64>],
    labels: &[String],
    mean: Option<(Vec<f64>, String)>,
) -> Result<(), TrainError> {
    let per_class_legend = !labels.is_empty() && labels.len() < MAX_LEGEND_CLASSES;
    render_png(out, CURVE_SIZE, |root| {
        let axes = Axes {
            rect: CURVE_AXES,
            x: (0.0, 1.0),
            y: (0.0, 1.0),
            title,
            xlabel,
            ylabel,
            x_ticks: true,
            title_size: 20.0,
            tick_size: 13.0,
        };
        let mut chart = axes.draw(root)?;
        let mut legend: Vec<LegendEntry> = Vec::new();
        for (c, curve) in curves.iter().enumerate() {
            let color = if per_class_legend { TAB10[c % TAB10.len()] } else { GREY };
            chart.draw_series(LineSeries::new(finite_points(px, curve), color.stroke_width(1)))?;
            if per_class_legend {
                legend.push((labels[c].clone(), color, 1));
            }
        }
        if let Some((y, label)) = mean {
            chart.draw_series(LineSeries::new(finite_points(px, &y), MEAN_COLOR.stroke_width(3)))?;
            legend.push((label, MEAN_COLOR, 3));
        }
        draw_legend(root, (CURVE_CHART_WIDTH as i32 + 8, CURVE_AXES.1), &legend)
    })
}

/// The finite `(px[i], y[i])` points.
fn finite_points(px: &[f64], y: &[f64]) -> Vec<(f64, f64)> {
    px.iter().zip(y).map(|(&x, &y)| (x, y)).filter(|(x, y)| x.is_finite() && y.is_finite()).collect()
}

/// A matplotlib-like legend box with its top left corner at `at`: a line sample and the text per entry.
fn draw_legend(root: &Canvas<'_>, at: (i32, i32), entries: &[LegendEntry]) -> DrawResult {
    if entries.is_empty() {
        return Ok(());
    }
    let (size, row) = (13.0, 20);
    let widest = entries.iter().map(|e| text_width(&e.0, size)).fold(0.0, f64::max);
    let (left, top) = at;
    let right = (left + 56 + widest.ceil() as i32).min(CURVE_SIZE.0 as i32 - 4);
    let bottom = top + row * entries.len() as i32 + 10;
    root.draw(&Rectangle::new([(left, top), (right, bottom)], RGBColor(204, 204, 204).stroke_width(1)))?;
    let spec = TextSpec::new(size).anchor(HPos::Left, VPos::Center);
    for (i, (text, color, width)) in entries.iter().enumerate() {
        let y = top + 5 + row * i as i32 + row / 2;
        root.draw(&PathElement::new(vec![(left + 8, y), (left + 38, y)], color.stroke_width(*width)))?;
        draw_text(root, text, (left + 46, y), spec)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn smooth_is_ultralytics_box_filter() {
        // 1000 points with f = 0.05: a 51-wide box, ends padded with the end values.
        let step: Vec<f64> = (0..1000).map(|i| if i < 500 { 0.0 } else { 1.0 }).collect();
        let s = smooth(&step, 0.05);
        assert_eq!(s.len(), 1000);
        assert_eq!(s[0], 0.0);
        assert!((s[999] - 1.0).abs() < 1e-12);
        assert_eq!(s[474], 0.0);
        assert!((s[475] - 1.0 / 51.0).abs() < 1e-12, "{}", s[475]);
        assert!((s[500] - 26.0 / 51.0).abs() < 1e-12);
        assert!((s[524] - 50.0 / 51.0).abs() < 1e-12);
        assert!((s[525] - 1.0).abs() < 1e-12);
        // Short input: nf = round(10 * 0.1) // 2 + 1 = 1, the identity.
        let y: Vec<f64> = (0..10).map(f64::from).collect();
        assert_eq!(smooth(&y, 0.05), y);
        assert!(smooth(&[], 0.05).is_empty());
    }

    #[test]
    fn mean_and_best() {
        let px = [0.0, 0.5, 1.0];
        let m = mean_curve(&[vec![0.0, 1.0, 0.5], vec![1.0, 0.5, 0.5]]);
        assert_eq!(m, vec![0.5, 0.75, 0.5]);
        assert_eq!(best_of(&px, &m), Some((0.75, 0.5)));
        assert_eq!(best_of(&px, &[0.2, 0.2, f64::NAN]), Some((0.2, 0.0)));
        assert_eq!(best_of(&px, &[f64::NAN; 3]), None);
        assert!(mean_curve(&[]).is_empty());
    }

    #[test]
    fn mismatched_inputs_are_plot_errors() {
        let out = Path::new("/nonexistent/never-written.png");
        let px = vec![0.0, 0.5, 1.0];
        let names = vec!["a".to_string()];
        let bad = [
            plot_pr_curve(&px, &[vec![1.0, 0.5]], &[0.5], &names, out),
            plot_pr_curve(&px, &[vec![1.0, 0.5, 0.1]], &[], &names, out),
            plot_pr_curve(&[], &[], &[], &[], out),
            plot_metric_curve(&px, &[vec![1.0, 0.5, 0.1]], &["a".into(), "b".into()], "F1", out),
        ];
        for err in bad {
            assert!(matches!(err, Err(TrainError::Plot { ref path, .. }) if path == out), "{err:?}");
        }
    }
}
