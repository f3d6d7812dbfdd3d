//! `labels.png`: statistics of the training labels, after ultralytics' `plot_labels` — the number of
//! instances per class (bars in the class palette) and the 2-D histogram of the normalised box
//! widths and heights.

use std::path::Path;

use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, VPos};

use super::font::{TextSpec, draw_text, text_width};
use super::{Axes, Canvas, DrawResult, blues, class_color, plot_error, render_png, truncate};
use crate::error::TrainError;

/// Size of `labels.png` in pixels; the bar chart takes the left half, the histogram the right half.
pub const LABELS_SIZE: (u32, u32) = (1200, 600);

/// Bins per axis of the width-height histogram.
pub const WH_BINS: usize = 50;

/// Class names (or indices) are written under the bars for fewer than this many classes.
const MAX_NAMED_CLASSES: usize = 30;

/// Draws `labels.png` from the labels of a data set: `classes[i]` and `boxes_wh[i]` are the class and
/// the normalised (0..1) width and height of label `i`. Left: instances per class, bars coloured with
/// [`class_color`], named under the axis for fewer than 30 classes (with
/// `names[c]` where given, the index otherwise). Right: the [`WH_BINS`]² histogram of width (x) against
/// height (y), empty bins white and fuller bins darker ("Blues", square-root scale). The number of
/// classes is the larger of `names.len()` and the largest class + 1; the two slices must be as long.
pub fn plot_labels(classes: &[usize], boxes_wh: &[[f32; 2]], names: &[String], out: &Path) -> Result<(), TrainError> {
    if classes.len() != boxes_wh.len() {
        return Err(plot_error(out, format!("{} classes for {} boxes", classes.len(), boxes_wh.len())));
    }
    let nc = names.len().max(classes.iter().max().map_or(0, |m| m + 1));
    let mut counts = vec![0usize; nc];
    for &c in classes {
        counts[c] += 1;
    }
    let mut bins = vec![[0usize; WH_BINS]; WH_BINS];
    for &[w, h] in boxes_wh {
        if w.is_finite() && h.is_finite() {
            bins[bin_of(w)][bin_of(h)] += 1;
        }
    }
    let labels: Vec<String> =
        (0..nc).map(|i| names.get(i).map_or_else(|| i.to_string(), |n| truncate(n, 20))).collect();

    render_png(out, LABELS_SIZE, |root| {
        draw_instances(root, &counts, &labels)?;
        draw_wh_histogram(root, &bins)
    })
}

/// The histogram bin of a normalised size (clamped to 0..=1).
fn bin_of(v: f32) -> usize {
    ((v.clamp(0.0, 1.0) * WH_BINS as f32) as usize).min(WH_BINS - 1)
}

/// Bars of the instances per class in the left half of the canvas, with the class names under them.
fn draw_instances(root: &Canvas<'_>, counts: &[usize], labels: &[String]) -> DrawResult {
    let nc = counts.len();
    let named = nc > 0 && nc < MAX_NAMED_CLASSES;
    let size = 12.0;
    let (left, right, top) = (76, LABELS_SIZE.0 as i32 / 2 - 16, 44);
    let spacing = f64::from(right - left) / nc.max(1) as f64;
    let widest = if named { labels.iter().map(|l| text_width(l, size)).fold(0.0, f64::max) } else { 0.0 };
    let rotate = named && widest + 4.0 > spacing;
    let label_depth = if rotate { (widest.ceil() as i32).min(170) } else { size as i32 };
    let bottom = LABELS_SIZE.1 as i32 - 6 - label_depth - 40;
    let ymax = counts.iter().copied().max().unwrap_or(0).max(1) as f64 * 1.08;
    let axes = Axes {
        rect: (left, top, right, bottom),
        x: (-0.5, nc.max(1) as f64 - 0.5),
        y: (0.0, ymax),
        title: "Instances per class",
        xlabel: if named { "" } else { "classes" },
        ylabel: "instances",
        x_ticks: !named,
        title_size: 18.0,
        tick_size: size,
    };
    let mut chart = axes.draw(root)?;
    chart.draw_series(
        counts.iter().enumerate().map(|(i, &c)| {
            Rectangle::new([(i as f64 - 0.4, 0.0), (i as f64 + 0.4, c as f64)], class_color(i).filled())
        }),
    )?;
    if named {
        let spec = TextSpec::new(size);
        for (i, label) in labels.iter().enumerate() {
            let x = chart.backend_coord(&(i as f64, 0.0)).0;
            root.draw(&PathElement::new(vec![(x, bottom - 1), (x, bottom + 3)], BLACK.stroke_width(1)))?;
            let spec = if rotate {
                spec.anchor(HPos::Right, VPos::Center).rotated()
            } else {
                spec.anchor(HPos::Center, VPos::Top)
            };
            draw_text(root, label, (x, bottom + 6), spec)?;
        }
    }
    Ok(())
}

/// The width-height histogram in the right half of the canvas: `bins[x][y]` counts the boxes of width
/// bin `x` and height bin `y`.
fn draw_wh_histogram(root: &Canvas<'_>, bins: &[[usize; WH_BINS]]) -> DrawResult {
    let half = LABELS_SIZE.0 as i32 / 2;
    let axes = Axes {
        rect: (half + 76, 44, LABELS_SIZE.0 as i32 - 20, LABELS_SIZE.1 as i32 - 64),
        x: (0.0, 1.0),
        y: (0.0, 1.0),
        title: "Box width vs height (normalised)",
        xlabel: "width",
        ylabel: "height",
        x_ticks: true,
        title_size: 18.0,
        tick_size: 12.0,
    };
    let mut chart = axes.draw(root)?;
    let max = bins.iter().flatten().copied().max().unwrap_or(0);
    if max == 0 {
        return Ok(());
    }
    let step = 1.0 / WH_BINS as f64;
    chart.draw_series(bins.iter().enumerate().flat_map(|(x, col)| {
        col.iter().enumerate().filter(|(_, c)| **c > 0).map(move |(y, &c)| {
            let t = 0.15 + 0.85 * (c as f64 / max as f64).sqrt();
            let (x0, y0) = (x as f64 * step, y as f64 * step);
            Rectangle::new([(x0, y0), (x0 + step, y0 + step)], blues(t).filled())
        })
    }))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bins_clamp_to_the_grid() {
        assert_eq!(bin_of(0.0), 0);
        assert_eq!(bin_of(-3.0), 0);
        assert_eq!(bin_of(0.019), 0);
        assert_eq!(bin_of(0.021), 1);
        assert_eq!(bin_of(1.0), WH_BINS - 1);
        assert_eq!(bin_of(7.0), WH_BINS - 1);
    }

    #[test]
    fn mismatched_lengths_are_plot_errors() {
        let out = Path::new("/nonexistent/labels.png");
        let err = plot_labels(&[0, 1], &[[0.1, 0.1]], &[], out).unwrap_err();
        assert!(matches!(err, TrainError::Plot { ref path, .. } if path == out), "{err:?}");
    }
}
