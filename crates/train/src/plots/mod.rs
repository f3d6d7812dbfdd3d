//! PNG plots of a training or validation run, drawn like ultralytics draws them:
//!
//! - [`plot_results`]: `results.png`, the 2x5 grid of losses and metrics per epoch read from `results.csv`;
//! - [`plot_pr_curve`]: `PR_curve.png`, precision vs recall per class and for all classes;
//! - [`plot_metric_curve`]: `F1_curve.png`, `P_curve.png`, `R_curve.png`, a metric vs the confidence threshold;
//! - [`plot_confusion_matrix`]: `confusion_matrix.png`, the (nc+1)x(nc+1) heat map incl. "background";
//! - [`plot_labels`]: `labels.png`, instances per class and the distribution of box sizes.
//!
//! Text uses DejaVu Sans embedded in the binary ([`font`]); no system font is read at run time.
//! Every plot is rendered into a memory buffer, encoded to PNG with `image` and written atomically
//! (temporary file + rename), so a crash never leaves a truncated PNG behind.

pub mod bars;
pub mod confusion;
pub mod curves;
pub mod font;
pub mod labels;
pub mod results;
pub mod sensitivity;

pub use bars::plot_bars;
pub use confusion::{ConfusionLayout, confusion_layout, plot_confusion_matrix};
pub use curves::{best_of, mean_curve, plot_metric_curve, plot_pr_curve, smooth};
pub use labels::plot_labels;
pub use results::{RESULTS_COLUMNS, plot_results};
pub use sensitivity::plot_sensitivity;

use std::error::Error;
use std::path::Path;

use image::ImageEncoder;
use plotters::coord::Shift;
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, VPos};

use crate::error::TrainError;
use font::{TextSpec, draw_text, text_width};

/// Result of a drawing closure: plotters' errors are boxed and turned into [`TrainError::Plot`].
pub(crate) type DrawResult = Result<(), Box<dyn Error>>;

/// The drawing area every plot draws on: an RGB buffer in memory.
pub(crate) type Canvas<'a> = DrawingArea<BitMapBackend<'a>, Shift>;

/// A chart with `f64` axes drawn on a [`Canvas`].
pub(crate) type Chart<'a, 'b> = ChartContext<'a, BitMapBackend<'b>, Cartesian2d<RangedCoordf64, RangedCoordf64>>;

/// ultralytics' class palette (`utils.plots.Colors`), used for the per-class bars of `labels.png`.
pub const CLASS_PALETTE: [RGBColor; 20] = [
    RGBColor(0xFF, 0x38, 0x38),
    RGBColor(0xFF, 0x9D, 0x97),
    RGBColor(0xFF, 0x70, 0x1F),
    RGBColor(0xFF, 0xB2, 0x1D),
    RGBColor(0xCF, 0xD2, 0x31),
    RGBColor(0x48, 0xF9, 0x0A),
    RGBColor(0x92, 0xCC, 0x17),
    RGBColor(0x3D, 0xDB, 0x86),
    RGBColor(0x1A, 0x93, 0x34),
    RGBColor(0x00, 0xD4, 0xBB),
    RGBColor(0x2C, 0x99, 0xA8),
    RGBColor(0x00, 0xC2, 0xFF),
    RGBColor(0x34, 0x45, 0x93),
    RGBColor(0x64, 0x73, 0xFF),
    RGBColor(0x00, 0x18, 0xEC),
    RGBColor(0x84, 0x38, 0xFF),
    RGBColor(0x52, 0x00, 0x85),
    RGBColor(0xCB, 0x38, 0xFF),
    RGBColor(0xFF, 0x95, 0xC8),
    RGBColor(0xFF, 0x37, 0xC7),
];

/// matplotlib's default colour cycle (`tab10`, "C0".."C9"), used for per-class curves and results lines.
pub const TAB10: [RGBColor; 10] = [
    RGBColor(0x1F, 0x77, 0xB4),
    RGBColor(0xFF, 0x7F, 0x0E),
    RGBColor(0x2C, 0xA0, 0x2C),
    RGBColor(0xD6, 0x27, 0x28),
    RGBColor(0x94, 0x67, 0xBD),
    RGBColor(0x8C, 0x56, 0x4B),
    RGBColor(0xE3, 0x77, 0xC2),
    RGBColor(0x7F, 0x7F, 0x7F),
    RGBColor(0xBC, 0xBD, 0x22),
    RGBColor(0x17, 0xBE, 0xCF),
];

/// The colour of class `i` in [`CLASS_PALETTE`] (cycling).
pub fn class_color(i: usize) -> RGBColor {
    CLASS_PALETTE[i % CLASS_PALETTE.len()]
}

/// matplotlib's "Blues" colour map (ColorBrewer's nine blues, linearly interpolated) at `t` in 0..=1
/// (clamped): from almost white at 0 to dark blue at 1.
pub fn blues(t: f64) -> RGBColor {
    const STOPS: [[f64; 3]; 9] = [
        [247.0, 251.0, 255.0],
        [222.0, 235.0, 247.0],
        [198.0, 219.0, 239.0],
        [158.0, 202.0, 225.0],
        [107.0, 174.0, 214.0],
        [66.0, 146.0, 198.0],
        [33.0, 113.0, 181.0],
        [8.0, 81.0, 156.0],
        [8.0, 48.0, 107.0],
    ];
    let t = if t.is_finite() { t.clamp(0.0, 1.0) } else { 0.0 };
    let x = t * (STOPS.len() - 1) as f64;
    let i = (x.floor() as usize).min(STOPS.len() - 2);
    let f = x - i as f64;
    let c = |k: usize| (STOPS[i][k] + (STOPS[i + 1][k] - STOPS[i][k]) * f).round() as u8;
    RGBColor(c(0), c(1), c(2))
}

/// Relative luminance (WCAG, linearised sRGB) of a colour, in 0..=1; seaborn writes dark text on
/// cells brighter than 0.408 and white text on darker ones.
pub fn relative_luminance(c: RGBColor) -> f64 {
    let lin = |v: u8| {
        let v = f64::from(v) / 255.0;
        if v <= 0.03928 { v / 12.92 } else { ((v + 0.055) / 1.055).powf(2.4) }
    };
    0.2126 * lin(c.0) + 0.7152 * lin(c.1) + 0.0722 * lin(c.2)
}

/// Builds the [`TrainError::Plot`] for the PNG `out`.
pub(crate) fn plot_error(out: &Path, reason: impl Into<String>) -> TrainError {
    TrainError::Plot { path: out.to_path_buf(), reason: reason.into() }
}

/// Renders a `width` x `height` plot on a white canvas with `draw`, encodes it as PNG and writes it
/// to `out` atomically (parent folders are created).
pub(crate) fn render_png<F>(out: &Path, (width, height): (u32, u32), draw: F) -> Result<(), TrainError>
where
    F: FnOnce(&Canvas<'_>) -> DrawResult,
{
    font::ensure_registered().map_err(|e| plot_error(out, e))?;
    let mut buf = vec![255u8; width as usize * height as usize * 3];
    {
        let root = BitMapBackend::with_buffer(&mut buf, (width, height)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| plot_error(out, e.to_string()))?;
        draw(&root).map_err(|e| plot_error(out, e.to_string()))?;
        root.present().map_err(|e| plot_error(out, e.to_string()))?;
    }
    let mut png = Vec::with_capacity(buf.len() / 8);
    image::codecs::png::PngEncoder::new_with_quality(
        &mut png,
        image::codecs::png::CompressionType::Fast,
        image::codecs::png::FilterType::Adaptive,
    )
    .write_image(&buf, width, height, image::ExtendedColorType::Rgb8)
    .map_err(|e| plot_error(out, format!("PNG encoding failed: {e}")))?;
    yolo_compress_model::weights::atomic::atomic_write(out, &png)
        .map_err(|e| plot_error(out, format!("cannot write the PNG: {e}")))
}

/// matplotlib-like axes: a frame around the pixel rectangle `rect` = `(x0, y0, x1, y1)` (right and
/// bottom exclusive) mapping `x` and `y`, ticks with labels outside it, the title above, the axis
/// labels below and left. Empty strings draw nothing.
pub(crate) struct Axes<'t> {
    /// The plotting rectangle in pixels of the canvas.
    pub rect: (i32, i32, i32, i32),
    /// The data range along x.
    pub x: (f64, f64),
    /// The data range along y.
    pub y: (f64, f64),
    /// Title above the frame.
    pub title: &'t str,
    /// Label under the x axis.
    pub xlabel: &'t str,
    /// Label left of the y axis (reading upwards).
    pub ylabel: &'t str,
    /// Whether x gets numeric ticks (false when the caller labels categories itself).
    pub x_ticks: bool,
    /// Font size of the title.
    pub title_size: f64,
    /// Font size of the tick labels.
    pub tick_size: f64,
}

impl Axes<'_> {
    /// Most ticks per axis.
    const MAX_TICKS: usize = 6;

    /// Draws the frame, ticks and labels on `root` and returns the chart to draw the data on.
    pub(crate) fn draw<'a, 'b>(&self, root: &'a Canvas<'b>) -> Result<Chart<'a, 'b>, Box<dyn Error>> {
        let (w, h) = root.dim_in_pixel();
        let (x0, y0, x1, y1) = self.rect;
        let chart = ChartBuilder::on(root)
            .margin_left(x0)
            .margin_top(y0)
            .margin_right(w as i32 - x1)
            .margin_bottom(h as i32 - y1)
            .build_cartesian_2d(self.x.0..self.x.1, self.y.0..self.y.1)?;
        root.draw(&Rectangle::new([(x0, y0), (x1 - 1, y1 - 1)], BLACK.stroke_width(1)))?;
        let tick = TextSpec::new(self.tick_size);
        let label = TextSpec::new(self.tick_size + 2.0);
        let mut below = y1 + 6;
        if self.x_ticks {
            let (ticks, decimals) = nice_ticks(self.x.0, self.x.1, Self::MAX_TICKS);
            for v in ticks {
                let px = chart.backend_coord(&(v, self.y.0)).0;
                root.draw(&PathElement::new(vec![(px, y1 - 1), (px, y1 + 3)], BLACK.stroke_width(1)))?;
                draw_text(root, &format!("{v:.decimals$}"), (px, y1 + 6), tick.anchor(HPos::Center, VPos::Top))?;
            }
            below += (self.tick_size * 0.75) as i32 + 8;
        }
        if !self.xlabel.is_empty() {
            draw_text(root, self.xlabel, ((x0 + x1) / 2, below), label.anchor(HPos::Center, VPos::Top))?;
        }
        let (ticks, decimals) = nice_ticks(self.y.0, self.y.1, Self::MAX_TICKS);
        let mut widest: f64 = 0.0;
        for v in ticks {
            let py = chart.backend_coord(&(self.x.0, v)).1;
            let text = format!("{v:.decimals$}");
            widest = widest.max(text_width(&text, self.tick_size));
            root.draw(&PathElement::new(vec![(x0 - 4, py), (x0, py)], BLACK.stroke_width(1)))?;
            draw_text(root, &text, (x0 - 7, py), tick.anchor(HPos::Right, VPos::Center))?;
        }
        if !self.ylabel.is_empty() {
            let at = (x0 - 12 - widest.ceil() as i32, (y0 + y1) / 2);
            draw_text(root, self.ylabel, at, label.anchor(HPos::Center, VPos::Bottom).rotated())?;
        }
        if !self.title.is_empty() {
            let spec = TextSpec::new(self.title_size).anchor(HPos::Center, VPos::Bottom);
            draw_text(root, self.title, ((x0 + x1) / 2, y0 - 8), spec)?;
        }
        Ok(chart)
    }
}

/// matplotlib-like tick values inside `lo..=hi`: multiples of 1, 2, 2.5 or 5 times a power of ten,
/// at most `max_ticks` of them, and the decimals that print them exactly.
pub(crate) fn nice_ticks(lo: f64, hi: f64, max_ticks: usize) -> (Vec<f64>, usize) {
    if !(lo.is_finite() && hi.is_finite() && hi > lo) || max_ticks == 0 {
        return (Vec::new(), 0);
    }
    let raw = (hi - lo) / max_ticks as f64;
    let mag = 10f64.powf(raw.log10().floor());
    let mut step = 10.0 * mag;
    for m in [1.0, 2.0, 2.5, 5.0] {
        if m * mag * (1.0 + 1e-9) >= raw {
            step = m * mag;
            break;
        }
    }
    let mut decimals = 0;
    while decimals < 8 && {
        let scaled = step * 10f64.powi(decimals as i32);
        (scaled - scaled.round()).abs() > 1e-6 * scaled.max(1.0)
    } {
        decimals += 1;
    }
    let first = (lo / step - 1e-9).ceil() as i64;
    let last = (hi / step + 1e-9).floor() as i64;
    let ticks = (first..=last).map(|k| if k == 0 { 0.0 } else { k as f64 * step }).collect();
    (ticks, decimals)
}

/// `(lo, hi)` with a 5 % margin around the finite values of `values`; a sane range when all are equal
/// or none is finite.
pub(crate) fn padded_range(values: impl IntoIterator<Item = f64>) -> (f64, f64) {
    let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
    for v in values.into_iter().filter(|v| v.is_finite()) {
        lo = lo.min(v);
        hi = hi.max(v);
    }
    if lo > hi {
        return (0.0, 1.0);
    }
    let span = hi - lo;
    // Constant data (up to rounding, e.g. after smoothing): a range of +-5 % around the value.
    let scale = lo.abs().max(hi.abs());
    let constant = span <= 1e-9 * scale.max(1.0);
    let pad = match (constant, scale > 0.0) {
        (false, _) => span * 0.05,
        (true, true) => scale * 0.05,
        (true, false) => 0.01,
    };
    (lo - pad, hi + pad)
}

/// Truncates `s` to at most `max` characters, marking the cut with an ellipsis.
pub(crate) fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_string()
    } else {
        let mut t: String = s.chars().take(max.saturating_sub(1)).collect();
        t.push('…');
        t
    }
}

/// Truncates `s` (marking the cut with an ellipsis) until it is at most `max_px` wide at font size `size`.
pub(crate) fn truncate_to_width(s: &str, size: f64, max_px: f64) -> String {
    if text_width(s, size) <= max_px {
        return s.to_string();
    }
    let chars: Vec<char> = s.chars().collect();
    (1..chars.len())
        .rev()
        .map(|keep| chars[..keep].iter().collect::<String>() + "…")
        .find(|t| text_width(t, size) <= max_px)
        .unwrap_or_else(|| "…".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn padded_range_pads_and_handles_degenerate_input() {
        let (lo, hi) = padded_range([0.0, 1.0, f64::NAN]);
        assert!((lo + 0.05).abs() < 1e-12 && (hi - 1.05).abs() < 1e-12, "{lo} {hi}");
        let (lo, hi) = padded_range([2.0, 2.0]);
        assert!(lo < 2.0 && hi > 2.0);
        assert_eq!(padded_range([f64::NAN]), (0.0, 1.0));
        let (lo, hi) = padded_range([0.0]);
        assert!(lo < 0.0 && hi > 0.0);
        // Equal up to rounding is constant too: not a range of 1e-17.
        let (lo, hi) = padded_range([0.05, 0.05 + 1e-17, 0.05000000000000002]);
        assert!((hi - lo - 0.005).abs() < 1e-9, "{lo} {hi}");
    }

    #[test]
    fn nice_ticks_like_matplotlib() {
        let (t, d) = nice_ticks(0.0, 1.0, 6);
        assert_eq!(t, vec![0.0, 0.2, 0.4, 0.6000000000000001, 0.8, 1.0]);
        assert_eq!(d, 1);
        let (t, d) = nice_ticks(-1.45, 30.45, 6);
        assert_eq!((t, d), (vec![0.0, 10.0, 20.0, 30.0], 0));
        let (t, d) = nice_ticks(0.0375, 0.1025, 6);
        assert_eq!(d, 2);
        assert_eq!(t.len(), 4, "{t:?}");
        let (t, d) = nice_ticks(0.0, 0.94, 5);
        assert_eq!((t.len(), d), (5, 1), "{t:?}");
        let (_, d) = nice_ticks(0.0, 2.4, 6);
        assert_eq!(d, 1);
        let (_, d) = nice_ticks(0.0, 0.0125, 5);
        assert_eq!(d, 4);
        assert!(nice_ticks(1.0, 1.0, 6).0.is_empty());
        assert!(nice_ticks(0.0, f64::NAN, 6).0.is_empty());
    }

    #[test]
    fn truncate_marks_the_cut() {
        assert_eq!(truncate("person", 10), "person");
        assert_eq!(truncate("traffic light", 8), "traffic…");
        font::ensure_registered().unwrap();
        assert_eq!(truncate_to_width("car", 14.0, 100.0), "car");
        let t = truncate_to_width("a very long class name indeed", 14.0, 80.0);
        assert!(t.ends_with('…') && text_width(&t, 14.0) <= 80.0 && t.len() > 6, "{t}");
    }

    #[test]
    fn render_png_writes_a_decodable_png_atomically() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("sub").join("x.png");
        render_png(&out, (40, 30), |root| {
            root.fill(&RGBColor(10, 20, 30))?;
            Ok(())
        })
        .unwrap();
        let img = image::open(&out).unwrap().to_rgb8();
        assert_eq!(img.dimensions(), (40, 30));
        assert_eq!(img.get_pixel(5, 5).0, [10, 20, 30]);
        let names: Vec<_> = std::fs::read_dir(out.parent().unwrap()).unwrap().collect();
        assert_eq!(names.len(), 1);
    }

    #[test]
    fn render_png_reports_drawing_errors_as_plot_errors() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("y.png");
        let err = render_png(&out, (10, 10), |_| Err("boom".into())).unwrap_err();
        match err {
            TrainError::Plot { path, reason } => {
                assert_eq!(path, out);
                assert!(reason.contains("boom"), "{reason}");
            }
            other => panic!("unexpected error {other:?}"),
        }
        assert!(!out.exists());
    }
}
