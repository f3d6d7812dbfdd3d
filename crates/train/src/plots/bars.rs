//! A horizontal bar chart: one named bar per row, the first label at the top, some bars highlighted
//! in a second colour (e.g. the layers a quantization sensitivity analysis keeps in float).

use std::path::Path;

use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, VPos};

use super::font::{TextSpec, draw_text, text_width};
use super::{Canvas, DrawResult, TAB10, nice_ticks, padded_range, plot_error, render_png, truncate_to_width};
use crate::error::TrainError;

/// Width of the bar chart in pixels.
pub const BARS_WIDTH: u32 = 900;

/// Most pixels per row; rows get thinner only when the chart would exceed [`BARS_MAX_HEIGHT`].
pub const BARS_ROW: u32 = 18;

/// Tallest bar chart in pixels (many bars share it).
pub const BARS_MAX_HEIGHT: u32 = 2400;

/// Colour of the ordinary bars (matplotlib's "C0").
pub const BAR_COLOR: RGBColor = TAB10[0];

/// Colour of the highlighted bars (matplotlib's "C3").
pub const HIGHLIGHT_COLOR: RGBColor = TAB10[3];

/// Space above the frame (title).
const TOP: u32 = 44;
/// Space below the frame (ticks and x label).
const BOTTOM: u32 = 56;
/// Space right of the frame.
const RIGHT: i32 = 24;
/// Widest label column in pixels; longer labels are cut with an ellipsis.
const MAX_LABEL_PX: f64 = 260.0;
/// Font size of labels and ticks.
const TICK_SIZE: f64 = 12.0;
/// Rows thinner than this get no labels (they would overlap).
const MIN_LABELLED_ROW: f64 = 10.0;

/// Size in pixels of the bar chart of `n` bars: [`BARS_WIDTH`] wide, [`BARS_ROW`] pixels per bar plus
/// the margins, at most [`BARS_MAX_HEIGHT`] tall.
pub fn bars_size(n: usize) -> (u32, u32) {
    let rows = u32::try_from(n).unwrap_or(u32::MAX).saturating_mul(BARS_ROW);
    (BARS_WIDTH, rows.saturating_add(TOP + BOTTOM).min(BARS_MAX_HEIGHT))
}

/// Draws a horizontal bar chart to `out`: bar `i` is named `labels[i]` (left of the axes; the first
/// bar at the top), runs from 0 to `values[i]` along x (negative values to the left of a vertical zero
/// line) and is drawn in [`HIGHLIGHT_COLOR`] where `highlight[i]`, in [`BAR_COLOR`] otherwise. `title`
/// goes above the axes and `x_label` under them; the PNG is [`bars_size`]`(labels.len())`, written
/// atomically.
///
/// The three slices must be equally long and not empty and every value finite; otherwise, or when
/// the PNG cannot be drawn or written, this gives [`TrainError::Plot`] for `out`.
pub fn plot_bars(
    labels: &[String],
    values: &[f64],
    highlight: &[bool],
    title: &str,
    x_label: &str,
    out: &Path,
) -> Result<(), TrainError> {
    if labels.is_empty() {
        return Err(plot_error(out, "no bars to plot (labels is empty)"));
    }
    if values.len() != labels.len() || highlight.len() != labels.len() {
        return Err(plot_error(
            out,
            format!(
                "{} labels, {} values and {} highlight flags: expected as many of each",
                labels.len(),
                values.len(),
                highlight.len()
            ),
        ));
    }
    if let Some((i, v)) = values.iter().enumerate().find(|(_, v)| !v.is_finite()) {
        return Err(plot_error(out, format!("bar {i} ('{}') is {v}, expected a finite value", labels[i])));
    }
    let size = bars_size(labels.len());
    render_png(out, size, |root| draw(root, size, labels, values, highlight, title, x_label))
}

/// The chart on `root` (see [`plot_bars`]; the inputs are checked).
fn draw(
    root: &Canvas<'_>,
    (width, height): (u32, u32),
    labels: &[String],
    values: &[f64],
    highlight: &[bool],
    title: &str,
    x_label: &str,
) -> DrawResult {
    let n = labels.len();
    let row = f64::from(height - TOP - BOTTOM) / n as f64;
    let named = row >= MIN_LABELLED_ROW;
    let label_size = TICK_SIZE.min(row * 0.8);
    let shown: Vec<String> = if named {
        labels.iter().map(|l| truncate_to_width(l, label_size, MAX_LABEL_PX)).collect()
    } else {
        Vec::new()
    };
    let widest = shown.iter().map(|l| text_width(l, label_size)).fold(0.0, f64::max);
    let (x0, y0) = (16 + widest.ceil() as i32 + 10, TOP as i32);
    let (x1, y1) = (width as i32 - RIGHT, (height - BOTTOM) as i32);

    let (lo, hi) = padded_range(values.iter().copied().chain([0.0]));
    // Bars start at zero: no margin on the side of zero when all values lie on one side of it.
    let (lo, hi) = (if lo < 0.0 && values.iter().all(|&v| v >= 0.0) { 0.0 } else { lo }, hi);
    let (lo, hi) = (lo, if hi > 0.0 && values.iter().all(|&v| v <= 0.0) { 0.0 } else { hi });
    let chart = ChartBuilder::on(root)
        .margin_left(x0)
        .margin_top(y0)
        .margin_right(width as i32 - x1)
        .margin_bottom(height as i32 - y1)
        .build_cartesian_2d(lo..hi, 0.0..n as f64)?;
    let mut chart = chart;
    // Bar `i` occupies the row from the top, with a gap of a fifth of the row.
    let band = |i: usize| (n as f64 - i as f64 - 0.9, n as f64 - i as f64 - 0.1);
    chart.draw_series(values.iter().zip(highlight).enumerate().map(|(i, (&v, &h))| {
        let (b, t) = band(i);
        let color = if h { HIGHLIGHT_COLOR } else { BAR_COLOR };
        Rectangle::new([(0.0, b), (v, t)], color.filled())
    }))?;
    if lo < 0.0 && hi > 0.0 {
        let zx = chart.backend_coord(&(0.0, 0.0)).0;
        root.draw(&PathElement::new(vec![(zx, y0), (zx, y1 - 1)], BLACK.stroke_width(1)))?;
    }
    root.draw(&Rectangle::new([(x0, y0), (x1 - 1, y1 - 1)], BLACK.stroke_width(1)))?;

    let tick = TextSpec::new(TICK_SIZE);
    let (ticks, decimals) = nice_ticks(lo, hi, 6);
    for v in ticks {
        let px = chart.backend_coord(&(v, 0.0)).0;
        root.draw(&PathElement::new(vec![(px, y1 - 1), (px, y1 + 3)], BLACK.stroke_width(1)))?;
        draw_text(root, &format!("{v:.decimals$}"), (px, y1 + 6), tick.anchor(HPos::Center, VPos::Top))?;
    }
    let label = TextSpec::new(label_size);
    for (i, text) in shown.iter().enumerate() {
        let (b, t) = band(i);
        let py = chart.backend_coord(&(lo, (b + t) / 2.0)).1;
        root.draw(&PathElement::new(vec![(x0 - 4, py), (x0, py)], BLACK.stroke_width(1)))?;
        draw_text(root, text, (x0 - 7, py), label.anchor(HPos::Right, VPos::Center))?;
    }
    if !x_label.is_empty() {
        let below = y1 + 6 + (TICK_SIZE * 0.75) as i32 + 8;
        draw_text(
            root,
            x_label,
            ((x0 + x1) / 2, below),
            TextSpec::new(TICK_SIZE + 2.0).anchor(HPos::Center, VPos::Top),
        )?;
    }
    if !title.is_empty() {
        let spec = TextSpec::new(18.0).anchor(HPos::Center, VPos::Bottom);
        draw_text(root, title, ((x0 + x1) / 2, y0 - 8), spec)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("model.{i}.cv1")).collect()
    }

    /// Pixels of colour `c` in the image row band `ys`, inside the columns `xs`.
    fn count(img: &image::RgbImage, c: RGBColor, xs: std::ops::Range<u32>, ys: std::ops::Range<u32>) -> usize {
        ys.flat_map(|y| xs.clone().map(move |x| (x, y)))
            .filter(|&(x, y)| img.get_pixel(x, y).0 == [c.0, c.1, c.2])
            .count()
    }

    #[test]
    fn size_grows_with_the_bars_up_to_a_cap() {
        assert_eq!(bars_size(1), (BARS_WIDTH, BARS_ROW + TOP + BOTTOM));
        assert_eq!(bars_size(10), (BARS_WIDTH, 10 * BARS_ROW + TOP + BOTTOM));
        assert_eq!(bars_size(100_000), (BARS_WIDTH, BARS_MAX_HEIGHT));
    }

    #[test]
    fn writes_a_png_with_the_highlighted_bars_in_their_colour() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("sub").join("bars.png");
        let n = 6;
        // Bar 1 is the longest and highlighted, bar 4 is negative and highlighted, bar 2 is zero.
        let values = [10.0, 40.0, 0.0, 25.0, -8.0, 5.0];
        let highlight = [false, true, false, false, true, false];
        plot_bars(&labels(n), &values, &highlight, "SQNR per layer", "SQNR (dB)", &out).unwrap();

        let bytes = std::fs::read(&out).unwrap();
        assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n");
        let img = image::load_from_memory_with_format(&bytes, image::ImageFormat::Png).unwrap().to_rgb8();
        assert_eq!(img.dimensions(), bars_size(n));
        // No temporary file left next to it.
        assert_eq!(std::fs::read_dir(out.parent().unwrap()).unwrap().count(), 1);

        // Row i spans TOP + i·ROW .. TOP + (i+1)·ROW.
        let (w, _) = bars_size(n);
        let rows = |i: u32| TOP + i * BARS_ROW..TOP + (i + 1) * BARS_ROW;
        let bar = |i: u32, c: RGBColor| count(&img, c, 0..w, rows(i));
        for i in 0..n as u32 {
            let (hi, plain) = (bar(i, HIGHLIGHT_COLOR), bar(i, BAR_COLOR));
            match i {
                1 | 4 => assert!(hi > 100 && plain == 0, "row {i}: {hi} highlighted, {plain} plain pixels"),
                2 => assert!(hi == 0 && plain < 2 * BARS_ROW as usize, "row 2 (zero): {hi} {plain}"),
                _ => assert!(plain > 50 && hi == 0, "row {i}: {hi} highlighted, {plain} plain pixels"),
            }
        }
        // Along the middle of a row, bars run from the zero line to their value: lengths are
        // proportional to the values (40 vs 10, ±1 pixel of rounding per end).
        let span = |i: u32, c: RGBColor| {
            let y = TOP + i * BARS_ROW + BARS_ROW / 2;
            let xs: Vec<u32> = (0..w).filter(|&x| img.get_pixel(x, y).0 == [c.0, c.1, c.2]).collect();
            (xs[0], xs[xs.len() - 1] + 1)
        };
        let ((l1, r1), (l0, r0)) = (span(1, HIGHLIGHT_COLOR), span(0, BAR_COLOR));
        assert!(l0.abs_diff(l1) <= 1, "bars start at {l0} and {l1}");
        let ratio = f64::from(r1 - l1) / f64::from(r0 - l0);
        assert!((ratio - 4.0).abs() < 0.1, "{ratio}");
        // The negative bar ends at the zero line, where the positive ones start.
        let (_, neg_right) = span(4, HIGHLIGHT_COLOR);
        let pos_left = l0;
        assert!(neg_right.abs_diff(pos_left) <= 2, "negative bar ends at {neg_right}, positive starts at {pos_left}");
        // Labels (dark text) left of the bars.
        let dark = (0..pos_left.saturating_sub(8))
            .flat_map(|x| rows(0).map(move |y| (x, y)))
            .filter(|&(x, y)| img.get_pixel(x, y).0.iter().all(|&c| c < 100))
            .count();
        assert!(dark > 20, "{dark} dark pixels of the first label");
    }

    #[test]
    fn many_bars_share_the_largest_canvas() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("many.png");
        let n = 400;
        let values: Vec<f64> = (0..n).map(|i| i as f64).collect();
        let highlight: Vec<bool> = (0..n).map(|i| i % 7 == 0).collect();
        plot_bars(&labels(n), &values, &highlight, "", "", &out).unwrap();
        let img = image::open(&out).unwrap().to_rgb8();
        assert_eq!(img.dimensions(), (BARS_WIDTH, BARS_MAX_HEIGHT));
        let (w, h) = img.dimensions();
        assert!(count(&img, HIGHLIGHT_COLOR, 0..w, 0..h) > 1000);
    }

    #[test]
    fn bad_input_is_a_plot_error_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("bad.png");
        let l = labels(3);
        let bad = [
            plot_bars(&[], &[], &[], "t", "x", &out),
            plot_bars(&l, &[1.0, 2.0], &[false; 3], "t", "x", &out),
            plot_bars(&l, &[1.0, 2.0, 3.0], &[false; 2], "t", "x", &out),
            plot_bars(&l, &[1.0, f64::NAN, 3.0], &[false; 3], "t", "x", &out),
            plot_bars(&l, &[1.0, 2.0, f64::INFINITY], &[false; 3], "t", "x", &out),
        ];
        for err in bad {
            let err = err.unwrap_err();
            assert!(matches!(err, TrainError::Plot { ref path, .. } if *path == out), "{err:?}");
            assert!(err.to_string().contains("bad.png"), "{err}");
        }
        let err = plot_bars(&l, &[1.0, f64::NAN, 3.0], &[false; 3], "t", "x", &out).unwrap_err().to_string();
        assert!(err.contains("model.1.cv1") && err.contains("NaN"), "{err}");
        assert!(!out.exists());
    }
}
