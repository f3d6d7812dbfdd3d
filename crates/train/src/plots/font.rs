//! The font of the plots: DejaVu Sans, embedded in the binary (see `assets/DejaVuSans-LICENSE.txt`,
//! the Bitstream Vera / Arev licence) and registered once with plotters' `ab_glyph` text renderer
//! under the family name [`FONT_FAMILY`], so that plots never depend on the fonts of the system.
//!
//! plotters 0.3.7's `ab_glyph` renderer puts every glyph's ink box at the pen position, dropping the
//! glyph's left side bearing, and truncates the pen to whole pixels, which spaces small text
//! unevenly ("0. 5", "cl asses"). The crate-private `draw_text` therefore lays text out itself, from
//! the advance widths, side bearings and kerning pairs of the embedded font (read here from its
//! `hmtx`, `cmap` and `kern` tables), and has plotters draw one glyph at a time at the right place.
//! All text of the plots goes through it.

use std::collections::HashMap;
use std::sync::OnceLock;

use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::{Canvas, DrawResult};

/// The family name the embedded font is registered under; plotters' default family for axis labels.
pub const FONT_FAMILY: &str = "sans-serif";

/// DejaVu Sans 2.37 (regular), the TrueType file embedded in the binary.
pub static DEJAVU_SANS: &[u8] = include_bytes!("../../assets/DejaVuSans.ttf");

/// Registers [`DEJAVU_SANS`] with plotters as [`FONT_FAMILY`] (all styles fall back to it) and reads
/// its metrics. This runs once per process; later calls return its outcome.
pub fn ensure_registered() -> Result<(), String> {
    static REGISTERED: OnceLock<Result<(), String>> = OnceLock::new();
    REGISTERED
        .get_or_init(|| {
            metrics()?;
            plotters::style::register_font(FONT_FAMILY, FontStyle::Normal, DEJAVU_SANS)
                .map_err(|_| "the embedded DejaVu Sans font could not be parsed".to_string())
        })
        .clone()
}

/// Horizontal metrics of the embedded font, in font units.
#[derive(Debug)]
struct Metrics {
    /// Offset of the format-4 (BMP) `cmap` subtable.
    cmap4: usize,
    /// Offset of the `hmtx` table.
    hmtx: usize,
    /// Number of `(advance, lsb)` pairs in `hmtx`.
    n_hmetrics: usize,
    /// Number of glyphs.
    n_glyphs: usize,
    /// `hhea` ascender - descender: ab_glyph scales this height to the font size in pixels.
    height: f64,
    /// Height of the capital letters (the top of "H").
    cap_height: f64,
    /// Depth of the descenders (positive).
    descent: f64,
    /// Kerning pairs of the `kern` table (format 0), by glyph ids.
    kern: HashMap<(u16, u16), i16>,
}

fn u16_at(d: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*d.get(at)?, *d.get(at + 1)?]))
}

fn i16_at(d: &[u8], at: usize) -> Option<i16> {
    u16_at(d, at).map(|v| v as i16)
}

fn u32_at(d: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes([*d.get(at)?, *d.get(at + 1)?, *d.get(at + 2)?, *d.get(at + 3)?]))
}

impl Metrics {
    /// Reads the tables of a TrueType font; `None` when one is missing or truncated.
    fn parse(d: &'static [u8]) -> Option<Self> {
        let n_tables = usize::from(u16_at(d, 4)?);
        let mut tables = HashMap::new();
        for i in 0..n_tables {
            let rec = 12 + 16 * i;
            tables.insert(d.get(rec..rec + 4)?, u32_at(d, rec + 8)? as usize);
        }
        let table = |tag: &[u8]| tables.get(tag).copied();
        let (head, hhea, hmtx, maxp, cmap) =
            (table(b"head")?, table(b"hhea")?, table(b"hmtx")?, table(b"maxp")?, table(b"cmap")?);
        let ascender = f64::from(i16_at(d, hhea + 4)?);
        let descender = f64::from(i16_at(d, hhea + 6)?);
        let n_hmetrics = usize::from(u16_at(d, hhea + 34)?);
        let n_glyphs = usize::from(u16_at(d, maxp + 4)?);

        // The Windows Unicode BMP (3, 1) or Unicode BMP (0, 3) subtable, format 4.
        let mut cmap4 = None;
        for i in 0..usize::from(u16_at(d, cmap + 2)?) {
            let rec = cmap + 4 + 8 * i;
            let (platform, encoding) = (u16_at(d, rec)?, u16_at(d, rec + 2)?);
            let sub = cmap + u32_at(d, rec + 4)? as usize;
            if matches!((platform, encoding), (3, 1) | (0, 3)) && u16_at(d, sub)? == 4 {
                cmap4 = Some(sub);
                break;
            }
        }
        let mut m = Metrics {
            cmap4: cmap4?,
            hmtx,
            n_hmetrics,
            n_glyphs,
            height: ascender - descender,
            cap_height: 0.0,
            descent: -descender,
            kern: HashMap::new(),
        };

        // Cap height: the yMax of the glyph of "H" (glyf header, located through loca).
        let (loca, glyf) = (table(b"loca")?, table(b"glyf")?);
        let long_loca = i16_at(d, head + 50)? != 0;
        let h = usize::from(m.glyph(d, 'H')?);
        let glyph_at =
            if long_loca { u32_at(d, loca + 4 * h)? as usize } else { 2 * usize::from(u16_at(d, loca + 2 * h)?) };
        m.cap_height = f64::from(i16_at(d, glyf + glyph_at + 8)?);

        // Kerning pairs: the horizontal format-0 subtables of the (version 0) kern table.
        if let Some(kern) = table(b"kern") {
            let mut sub = kern + 4;
            for _ in 0..u16_at(d, kern + 2)? {
                let (length, coverage) = (usize::from(u16_at(d, sub + 2)?), u16_at(d, sub + 4)?);
                if coverage >> 8 == 0 && coverage & 1 == 1 {
                    for p in 0..usize::from(u16_at(d, sub + 6)?) {
                        let pair = sub + 14 + 6 * p;
                        m.kern.insert((u16_at(d, pair)?, u16_at(d, pair + 2)?), i16_at(d, pair + 4)?);
                    }
                }
                sub += length;
            }
        }
        Some(m)
    }

    /// The glyph id of `c` (0, the missing glyph, when the font lacks it or it is outside the BMP).
    fn glyph(&self, d: &[u8], c: char) -> Option<u16> {
        let Ok(c) = u16::try_from(u32::from(c)) else { return Some(0) };
        let t = self.cmap4;
        let seg_count = usize::from(u16_at(d, t + 6)? / 2);
        let (ends, starts) = (t + 14, t + 16 + 2 * seg_count);
        let (deltas, offsets) = (starts + 2 * seg_count, starts + 4 * seg_count);
        // The first segment whose end code is >= c (end codes are sorted).
        let (mut lo, mut hi) = (0, seg_count);
        while lo < hi {
            let mid = (lo + hi) / 2;
            if u16_at(d, ends + 2 * mid)? < c { lo = mid + 1 } else { hi = mid }
        }
        if lo == seg_count || u16_at(d, starts + 2 * lo)? > c {
            return Some(0);
        }
        let (start, delta, range_offset) =
            (u16_at(d, starts + 2 * lo)?, u16_at(d, deltas + 2 * lo)?, usize::from(u16_at(d, offsets + 2 * lo)?));
        if range_offset == 0 {
            return Some(c.wrapping_add(delta));
        }
        let g = u16_at(d, offsets + 2 * lo + range_offset + 2 * usize::from(c - start))?;
        Some(if g == 0 { 0 } else { g.wrapping_add(delta) })
    }

    /// `(advance width, left side bearing)` of glyph `g`.
    fn h_metrics(&self, d: &[u8], g: u16) -> (f64, f64) {
        let g = usize::from(g).min(self.n_glyphs.saturating_sub(1));
        let last = self.n_hmetrics.saturating_sub(1);
        let advance = u16_at(d, self.hmtx + 4 * g.min(last)).unwrap_or(0);
        let lsb = if g < self.n_hmetrics {
            i16_at(d, self.hmtx + 4 * g + 2)
        } else {
            i16_at(d, self.hmtx + 4 * self.n_hmetrics + 2 * (g - self.n_hmetrics))
        };
        (f64::from(advance), f64::from(lsb.unwrap_or(0)))
    }
}

/// The metrics of [`DEJAVU_SANS`], read once.
fn metrics() -> Result<&'static Metrics, String> {
    static METRICS: OnceLock<Option<Metrics>> = OnceLock::new();
    METRICS
        .get_or_init(|| Metrics::parse(DEJAVU_SANS))
        .as_ref()
        .ok_or_else(|| "the embedded DejaVu Sans font lacks the hmtx, cmap or glyf data".to_string())
}

/// One glyph of a laid-out text: the character, its pen position and its left side bearing (pixels).
struct Placed {
    c: char,
    pen: f64,
    lsb: f64,
}

/// Lays `text` out at `size` pixels: the glyphs and the total advance width.
fn layout(m: &Metrics, text: &str, size: f64) -> (Vec<Placed>, f64) {
    let scale = size / m.height;
    let mut pen = 0.0;
    let mut prev: Option<u16> = None;
    let mut placed = Vec::with_capacity(text.len());
    for c in text.chars() {
        let g = m.glyph(DEJAVU_SANS, c).unwrap_or(0);
        if let Some(p) = prev {
            pen += f64::from(m.kern.get(&(p, g)).copied().unwrap_or(0)) * scale;
        }
        let (advance, lsb) = m.h_metrics(DEJAVU_SANS, g);
        placed.push(Placed { c, pen, lsb: lsb * scale });
        pen += advance * scale;
        prev = Some(g);
    }
    (placed, pen)
}

/// Width in pixels of `text` at font size `size` (0 if the font metrics are unavailable).
pub(crate) fn text_width(text: &str, size: f64) -> f64 {
    metrics().map_or(0.0, |m| layout(m, text, size).1)
}

/// How [`draw_text`] places a text: font size (pixels; ab_glyph maps the ascender-descender height
/// to it), colour, which point of the text the anchor is, and whether the text is turned a quarter
/// counter-clockwise (reading upwards, like matplotlib's y labels).
#[derive(Clone, Copy)]
pub(crate) struct TextSpec {
    size: f64,
    color: RGBColor,
    h: HPos,
    v: VPos,
    rotated: bool,
}

impl TextSpec {
    /// Black text of `size` pixels anchored at its left end, top.
    pub(crate) fn new(size: f64) -> Self {
        TextSpec { size, color: BLACK, h: HPos::Left, v: VPos::Top, rotated: false }
    }

    /// The colour.
    pub(crate) fn color(self, color: RGBColor) -> Self {
        TextSpec { color, ..self }
    }

    /// The anchor: `h` along the text (left end, centre, right end), `v` across it (top of the
    /// capitals, their middle, bottom of the descenders).
    pub(crate) fn anchor(self, h: HPos, v: VPos) -> Self {
        TextSpec { h, v, ..self }
    }

    /// Turned a quarter counter-clockwise: the text reads from bottom to top.
    pub(crate) fn rotated(self) -> Self {
        TextSpec { rotated: true, ..self }
    }
}

/// Draws `text` on `area` with its anchor (see [`TextSpec`]) at `at` (pixels of `area`).
pub(crate) fn draw_text(area: &Canvas<'_>, text: &str, at: (i32, i32), spec: TextSpec) -> DrawResult {
    let m = metrics()?;
    let (glyphs, width) = layout(m, text, spec.size);
    let scale = spec.size / m.height;
    let x0 = match spec.h {
        HPos::Left => 0.0,
        HPos::Center => -width / 2.0,
        HPos::Right => -width,
    };
    let baseline = match spec.v {
        VPos::Top => m.cap_height * scale,
        VPos::Center => m.cap_height * scale / 2.0,
        VPos::Bottom => -m.descent * scale,
    };
    let mut style = (FONT_FAMILY, spec.size).into_font().color(&spec.color).pos(Pos::new(HPos::Left, VPos::Top));
    if spec.rotated {
        style = style.transform(FontTransform::Rotate270);
    }
    for g in glyphs.iter().filter(|g| !g.c.is_whitespace()) {
        // plotters puts the first column of the glyph's ink at the given x and its baseline size/2
        // below the given y.
        let x = (x0 + g.pen).round() as i32 + g.lsb.floor() as i32;
        let y = (baseline - spec.size / 2.0).round() as i32;
        let (dx, dy) = if spec.rotated { (y, -x) } else { (x, y) };
        area.draw(&Text::new(g.c.to_string(), (at.0 + dx, at.1 + dy), style.clone()))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Renders `f` on a white `w` x `h` canvas and returns the RGB buffer.
    fn render(w: u32, h: u32, f: impl FnOnce(&Canvas<'_>)) -> Vec<u8> {
        ensure_registered().unwrap();
        let mut buf = vec![255u8; (w * h * 3) as usize];
        {
            let root = BitMapBackend::with_buffer(&mut buf, (w, h)).into_drawing_area();
            f(&root);
            root.present().unwrap();
        }
        buf
    }

    /// `(min x, min y, max x, max y)` of the dark pixels.
    fn ink_box(buf: &[u8], w: u32) -> (i32, i32, i32, i32) {
        let mut b = (i32::MAX, i32::MAX, i32::MIN, i32::MIN);
        for (i, p) in buf.chunks(3).enumerate() {
            if p[0] < 128 {
                let (x, y) = ((i as u32 % w) as i32, (i as u32 / w) as i32);
                b = (b.0.min(x), b.1.min(y), b.2.max(x), b.3.max(y));
            }
        }
        b
    }

    #[test]
    fn embedded_font_registers_and_renders_text() {
        ensure_registered().unwrap();
        ensure_registered().unwrap();
        let buf = render(120, 40, |root| {
            root.draw_text("Hg", &(FONT_FAMILY, 20).into_font().color(&BLACK), (10, 10)).unwrap();
            // Bold falls back to the regular face.
            root.draw_text("x", &(FONT_FAMILY, 20, FontStyle::Bold).into_font().color(&BLACK), (80, 10)).unwrap();
        });
        let dark = buf.chunks(3).filter(|p| p[0] < 128).count();
        assert!(dark > 20, "text drew {dark} dark pixels");
    }

    #[test]
    fn embedded_font_is_dejavu_sans() {
        assert_eq!(&DEJAVU_SANS[..4], &[0, 1, 0, 0]);
        let needle = b"DejaVu Sans";
        assert!(DEJAVU_SANS.windows(needle.len()).any(|w| w == needle));
        let m = metrics().unwrap();
        // DejaVu Sans 2.37: hhea 1901/-483, "H" 1493 units high, its glyph id and metrics.
        assert_eq!(m.height, 2384.0);
        assert_eq!(m.cap_height, 1493.0);
        let h = m.glyph(DEJAVU_SANS, 'H').unwrap();
        assert_eq!(m.h_metrics(DEJAVU_SANS, h), (1540.0, 201.0));
        assert_eq!(m.glyph(DEJAVU_SANS, '\u{10FFFF}'), Some(0));
        assert_ne!(m.glyph(DEJAVU_SANS, '…'), Some(0));
        let (a, v) = (m.glyph(DEJAVU_SANS, 'A').unwrap(), m.glyph(DEJAVU_SANS, 'V').unwrap());
        assert!(m.kern.get(&(a, v)).is_some_and(|k| *k < 0), "no negative A-V kerning");
    }

    #[test]
    fn widths_agree_with_plotters() {
        // plotters' (ab_glyph's) layout box of a long text, in whole pixels, matches our layout.
        ensure_registered().unwrap();
        let text = "all classes 0.584 mAP@0.5 Precision-Recall Curve";
        let size = 40.0;
        let (w, _) = (FONT_FAMILY, size).into_font().box_size(text).unwrap();
        let ours = text_width(text, size);
        assert!((f64::from(w) - ours).abs() <= 2.0, "plotters {w}, ours {ours}");
    }

    #[test]
    fn anchors_place_the_ink() {
        let (w, h) = (300u32, 120u32);
        let size = 30.0;
        let cap = 1493.0 / 2384.0 * size;
        let width = text_width("HHH", size);
        let buf = render(w, h, |root| draw_text(root, "HHH", (150, 60), TextSpec::new(size)).unwrap());
        let (x0, y0, _, y1) = ink_box(&buf, w);
        // "H" has a left side bearing of 201 units; its ink spans the cap height above the baseline.
        assert!((x0 - 150 - (201.0 / 2384.0 * size) as i32).abs() <= 1, "left {x0}");
        assert!((y0 - 60).abs() <= 1 && (f64::from(y1 - y0 + 1) - cap).abs() <= 1.5, "top {y0} bottom {y1}");

        let buf = render(w, h, |root| {
            draw_text(root, "HHH", (150, 60), TextSpec::new(size).anchor(HPos::Center, VPos::Center)).unwrap()
        });
        let (x0, y0, x1, y1) = ink_box(&buf, w);
        assert!((f64::from(x0 + x1) / 2.0 - 150.0).abs() <= 1.5, "{x0}..{x1} of {width}");
        assert!((f64::from(y0 + y1) / 2.0 - 60.0).abs() <= 1.5, "{y0}..{y1}");

        // Rotated, anchored at the right end: the text reads upwards, ending at the anchor, and hangs
        // below it (like x tick labels under an axis).
        let buf = render(w, h, |root| {
            draw_text(root, "HHH", (150, 10), TextSpec::new(size).anchor(HPos::Right, VPos::Center).rotated()).unwrap()
        });
        let (x0, y0, x1, y1) = ink_box(&buf, w);
        assert!((10..=14).contains(&y0) && f64::from(y1 - y0) > width * 0.8, "{y0}..{y1} of {width}");
        assert!((f64::from(x0 + x1) / 2.0 - 150.0).abs() <= 1.5, "{x0}..{x1}");
    }

    /// Coverage-weighted centres of the glyphs of a one-line text drawn at the top left of a 200 x 60 canvas.
    fn glyph_centres(f: impl FnOnce(&Canvas<'_>)) -> Vec<f64> {
        let (w, h) = (200usize, 60usize);
        let buf = render(w as u32, h as u32, f);
        let ink: Vec<f64> =
            (0..w).map(|x| (0..h).map(|y| f64::from(255 - buf[(y * w + x) * 3])).sum::<f64>()).collect();
        let mut centres = Vec::new();
        let (mut sum, mut moment) = (0.0, 0.0);
        for (x, &v) in ink.iter().enumerate() {
            if v > 0.0 {
                sum += v;
                moment += v * x as f64;
            } else if sum > 0.0 {
                centres.push(moment / sum);
                (sum, moment) = (0.0, 0.0);
            }
        }
        centres
    }

    #[test]
    fn glyphs_keep_their_side_bearings() {
        // "l.l": the dot sits in the middle between the two "l" (the advances and bearings of DejaVu
        // Sans put the three centres 10.2 px apart at size 40).
        let c = glyph_centres(|root| draw_text(root, "l.l", (10, 10), TextSpec::new(40.0)).unwrap());
        assert_eq!(c.len(), 3, "{c:?}");
        let (a, b) = (c[1] - c[0], c[2] - c[1]);
        // Whole-pixel pen positions: each glyph within half a pixel, each spacing within one.
        assert!((a - 10.24).abs() < 1.0 && (b - 10.24).abs() < 1.0, "centres {c:?}");
        // plotters' own layout (for the record; it drops the bearings and rounds every pen position).
        let p = glyph_centres(|root| {
            root.draw_text("l.l", &(FONT_FAMILY, 40).into_font().color(&BLACK), (10, 10)).unwrap();
        });
        eprintln!("centre spacing: ours {a:.2} / {b:.2}, plotters {:.2} / {:.2}", p[1] - p[0], p[2] - p[1]);
    }
}
