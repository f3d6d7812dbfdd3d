//! Drawing detections on an image: box outlines in a per-class colour and a filled label with
//! the text `"name 0.87"` rendered from the `font8x8` bitmap font.
//!
//! Everything is clipped to the image, so boxes partly or wholly outside it are safe to draw.

use font8x8::{BASIC_FONTS, UnicodeFonts};
use image::{Rgb, RgbImage};
use serde::{Deserialize, Serialize};

/// Side of one `font8x8` glyph in pixels (before scaling).
const GLYPH: u32 = 8;

/// One detection to draw.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Annotation<'a> {
    /// Box corners `[x1, y1, x2, y2]` in pixels of the image drawn on.
    pub xyxy: [f32; 4],
    /// Class name shown in the label.
    pub label: &'a str,
    /// Confidence in `0..=1`, shown with two decimals.
    pub score: f32,
    /// Class index, which picks the colour (see [`class_color`]).
    pub class_id: usize,
}

impl<'a> From<([f32; 4], &'a str, f32, usize)> for Annotation<'a> {
    fn from((xyxy, label, score, class_id): ([f32; 4], &'a str, f32, usize)) -> Self {
        Self { xyxy, label, score, class_id }
    }
}

/// Line width and text size used by [`draw_detections_with`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct AnnotateStyle {
    /// Box outline thickness in pixels, drawn inside the box (default 2).
    pub line_width: u32,
    /// Integer magnification of the 8x8 font (default 1: 8 px tall text).
    pub text_scale: u32,
}

impl Default for AnnotateStyle {
    fn default() -> Self {
        Self { line_width: 2, text_scale: 1 }
    }
}

/// A distinct, saturated colour for a class index; the same index always gets the same colour.
///
/// Hues step by the golden ratio around the colour wheel, so neighbouring class indices get
/// clearly different colours.
pub fn class_color(class_id: usize) -> Rgb<u8> {
    const GOLDEN: f64 = 0.618_033_988_749_895;
    let hue = ((class_id as f64 * GOLDEN) % 1.0) * 6.0;
    let (s, v) = (0.85, 0.95);
    let sector = hue.floor();
    let (r, g, b) = hsv_sector_to_rgb(sector as u32, hue - sector, s, v);
    let byte = |c: f64| (c * 255.0).round() as u8;
    Rgb([byte(r), byte(g), byte(b)])
}

/// HSV → RGB (all in `0..=1`) for a hue already split into its sector `0..6` and the fraction `f`
/// within it. Generic so that `f32` callers (the synthetic generator, whose pixels must stay
/// bit-identical) and `f64` callers share one formula with the same operation order.
pub(crate) fn hsv_sector_to_rgb<T>(sector: u32, f: T, s: T, v: T) -> (T, T, T)
where
    T: Copy + std::ops::Sub<Output = T> + std::ops::Mul<Output = T> + From<f32>,
{
    let one = T::from(1.0);
    let (p, q, t) = (v * (one - s), v * (one - s * f), v * (one - s * (one - f)));
    match sector {
        0 => (v, t, p),
        1 => (q, v, p),
        2 => (p, v, t),
        3 => (p, q, v),
        4 => (t, p, v),
        _ => (v, p, q),
    }
}

/// Draws every detection with the default [`AnnotateStyle`] (2 px boxes, 8 px text).
pub fn draw_detections(img: &mut RgbImage, dets: &[Annotation<'_>]) {
    draw_detections_with(img, dets, &AnnotateStyle::default());
}

/// Draws every detection: a box outline `style.line_width` pixels thick inside `xyxy`, and a
/// label `"{label} {score:.2}"` on a filled background above the box's top-left corner (inside
/// the box when there is no room above). Boxes with non-finite coordinates or wholly outside
/// the image are skipped.
pub fn draw_detections_with(img: &mut RgbImage, dets: &[Annotation<'_>], style: &AnnotateStyle) {
    let (w, h) = (i64::from(img.width()), i64::from(img.height()));
    for det in dets {
        let [x1, y1, x2, y2] = det.xyxy;
        if !det.xyxy.iter().all(|v| v.is_finite()) || x2 <= 0.0 || y2 <= 0.0 || x1 >= w as f32 || y1 >= h as f32 {
            continue;
        }
        let color = class_color(det.class_id);
        // Inclusive pixel bounds of the box.
        let (l, t) = (x1.round() as i64, y1.round() as i64);
        let r = (x2.round() as i64 - 1).max(l);
        let b = (y2.round() as i64 - 1).max(t);
        let lw = i64::from(style.line_width.max(1));
        fill_rect(img, l, t, r, (t + lw - 1).min(b), color);
        fill_rect(img, l, (b - lw + 1).max(t), r, b, color);
        fill_rect(img, l, t, (l + lw - 1).min(r), b, color);
        fill_rect(img, (r - lw + 1).max(l), t, r, b, color);

        let text = format!("{} {:.2}", det.label, det.score);
        let scale = i64::from(style.text_scale.max(1));
        let pad = scale;
        let text_w = text.chars().count() as i64 * i64::from(GLYPH) * scale;
        let label_h = i64::from(GLYPH) * scale + 2 * pad;
        let lx = l.max(0);
        let ly = if t - label_h >= 0 { t - label_h } else { t.max(0) };
        fill_rect(img, lx, ly, lx + text_w + 2 * pad - 1, ly + label_h - 1, color);
        draw_text(img, lx + pad, ly + pad, &text, text_color(color), style.text_scale);
    }
}

/// Renders `text` with the 8x8 bitmap font, top-left corner at `(x, y)` pixels, each glyph pixel
/// drawn as a `scale x scale` square (glyphs `8 * scale` pixels apart). Only the set pixels are
/// drawn (transparent background); characters outside basic ASCII show as `?`. Clipped.
pub fn draw_text(img: &mut RgbImage, x: i64, y: i64, text: &str, color: Rgb<u8>, scale: u32) {
    let scale = i64::from(scale.max(1));
    let step = i64::from(GLYPH) * scale;
    for (i, ch) in text.chars().enumerate() {
        let glyph = BASIC_FONTS.get(ch).or_else(|| BASIC_FONTS.get('?')).unwrap_or([0; 8]);
        let gx = x + i as i64 * step;
        for (row, bits) in (0i64..).zip(glyph) {
            for col in 0..i64::from(GLYPH) {
                // Bit 0 is the leftmost pixel of the row.
                if bits >> col & 1 == 1 {
                    let px = gx + col * scale;
                    let py = y + row * scale;
                    fill_rect(img, px, py, px + scale - 1, py + scale - 1, color);
                }
            }
        }
    }
}

/// White or black, whichever reads better on `bg`.
fn text_color(bg: Rgb<u8>) -> Rgb<u8> {
    let [r, g, b] = bg.0.map(f32::from);
    if 0.299 * r + 0.587 * g + 0.114 * b > 150.0 { Rgb([0, 0, 0]) } else { Rgb([255, 255, 255]) }
}

/// Fills the inclusive pixel rectangle `[x0, x1] x [y0, y1]`, clipped to the image.
fn fill_rect(img: &mut RgbImage, x0: i64, y0: i64, x1: i64, y1: i64, color: Rgb<u8>) {
    let (w, h) = (i64::from(img.width()), i64::from(img.height()));
    let (x0, x1) = (x0.max(0), x1.min(w - 1));
    let (y0, y1) = (y0.max(0), y1.min(h - 1));
    if x0 > x1 || y0 > y1 {
        return;
    }
    for y in y0..=y1 {
        for x in x0..=x1 {
            // In range by the clipping above.
            img.put_pixel(x as u32, y as u32, color);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BLACK: Rgb<u8> = Rgb([0, 0, 0]);

    #[test]
    fn border_is_drawn_and_inside_is_untouched() {
        let mut img = RgbImage::new(100, 100);
        let det = Annotation::from(([20.0, 30.0, 80.0, 70.0], "car", 0.87, 2));
        draw_detections(&mut img, &[det]);
        let c = class_color(2);
        // Left, right, top and bottom edges, 2 px thick.
        for (x, y) in [(20, 50), (21, 50), (79, 50), (78, 50), (50, 30), (50, 31), (50, 69)] {
            assert_eq!(*img.get_pixel(x, y), c, "({x}, {y})");
        }
        // Just inside the outline and far inside.
        for (x, y) in [(22, 50), (77, 50), (50, 32), (50, 67), (50, 50)] {
            assert_eq!(*img.get_pixel(x, y), BLACK, "({x}, {y})");
        }
        // Outside the box, away from the label.
        assert_eq!(*img.get_pixel(90, 50), BLACK);
        assert_eq!(*img.get_pixel(10, 80), BLACK);
    }

    #[test]
    fn label_sits_above_the_box_with_text() {
        let mut img = RgbImage::new(120, 60);
        let det = Annotation::from(([10.0, 30.0, 110.0, 55.0], "dog", 0.5, 0));
        draw_detections(&mut img, &[det]);
        let c = class_color(0);
        // Label area: "dog 0.50" is 8 chars -> 64 px + 2 px padding, 10 px tall, rows 20..30.
        let label: Vec<Rgb<u8>> =
            (20..30).flat_map(|y| (10..76).map(move |x| (x, y))).map(|(x, y)| *img.get_pixel(x, y)).collect();
        let text = label.iter().filter(|p| **p == text_color(c)).count();
        let bg = label.iter().filter(|p| **p == c).count();
        assert_eq!(text + bg, label.len());
        assert!(text > 20 && bg > text, "text {text} bg {bg}");
        // Nothing right of the label.
        assert_eq!(*img.get_pixel(80, 25), BLACK);
    }

    #[test]
    fn label_goes_inside_when_the_box_touches_the_top() {
        let mut img = RgbImage::new(100, 100);
        let det = Annotation::from(([0.0, 0.0, 90.0, 90.0], "a", 1.0, 1));
        draw_detections(&mut img, &[det]);
        // Label background fills rows 0..10 near the left edge, inside the box.
        assert_eq!(*img.get_pixel(0, 5), class_color(1));
        assert_eq!(*img.get_pixel(50, 50), BLACK);
    }

    #[test]
    fn out_of_image_and_nan_boxes_are_safe() {
        let mut img = RgbImage::new(50, 40);
        let dets = [
            Annotation::from(([-30.0, -30.0, 500.0, 500.0], "big", 0.9, 3)),
            Annotation::from(([60.0, 10.0, 80.0, 20.0], "right", 0.9, 4)),
            Annotation::from(([f32::NAN, 10.0, 20.0, 20.0], "nan", 0.9, 5)),
            Annotation::from(([10.0, 10.0, 10.0, 10.0], "empty", 0.9, 6)),
        ];
        draw_detections_with(&mut img, &dets, &AnnotateStyle { line_width: 3, text_scale: 2 });
        assert_eq!(*img.get_pixel(25, 30), BLACK);
    }

    #[test]
    fn glyphs_are_blitted_from_font8x8() {
        let mut img = RgbImage::new(8, 8);
        let white = Rgb([255, 255, 255]);
        draw_text(&mut img, 0, 0, "|", white, 1);
        let glyph = BASIC_FONTS.get('|').unwrap();
        for (y, bits) in glyph.iter().enumerate() {
            for x in 0..8 {
                let set = bits >> x & 1 == 1;
                let want = if set { white } else { BLACK };
                assert_eq!(*img.get_pixel(x, y as u32), want, "({x}, {y})");
            }
        }
        assert!(img.pixels().any(|p| *p == white));
    }

    #[test]
    fn class_colors_differ_and_are_stable() {
        let colors: Vec<Rgb<u8>> = (0..20).map(class_color).collect();
        for i in 0..20 {
            for j in i + 1..20 {
                assert_ne!(colors[i], colors[j], "{i} {j}");
            }
        }
        assert_eq!(class_color(7), colors[7]);
    }
}
