//! Letterbox resize (aspect ratio kept, grey padding) and the mapping of boxes back to the
//! original image.
//!
//! [`letterbox`] follows ultralytics YOLOv5's `letterbox()`:
//!
//! 1. gain `r = min(new_h / h, new_w / w)` (in `f64`), capped at 1 unless `scale_up`;
//! 2. resized size `(round(w * r), round(h * r))` with Python's round-half-to-even;
//! 3. padding `dw = new_w - unpad_w`, `dh = new_h - unpad_h`; with `auto` only the remainder
//!    modulo `stride` is padded (the smallest stride-multiple canvas, as `detect.py` does for
//!    PyTorch models); with `center` the padding is split between both sides;
//! 4. OpenCV-style bilinear resize ([`resize_bilinear`]) when the size changes;
//! 5. borders `top = round(dh - 0.1)`, `bottom = round(dh + 0.1)`, `left = round(dw - 0.1)`,
//!    `right = round(dw + 0.1)` filled with `pad_value` (grey 114), so an odd padding puts the
//!    extra pixel at the bottom/right.
//!
//! [`LetterboxInfo`] keeps what is needed to map boxes between the two images.

use image::{Rgb, RgbImage};
use serde::{Deserialize, Serialize};

use crate::error::DataError;
use crate::resize::resize_bilinear;

/// Settings of [`letterbox`]; the default is `detect.py`'s (640x640, `auto`, stride 32).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LetterboxConfig {
    /// Target size `(height, width)` in pixels (default `(640, 640)`).
    pub new_shape: (u32, u32),
    /// Pad only up to the next multiple of `stride` instead of up to `new_shape` (default `true`,
    /// like `detect.py` with PyTorch models; `val.py` and fixed-size exports use `false`).
    pub auto: bool,
    /// Stride the padded size must be a multiple of when `auto` (default 32).
    pub stride: u32,
    /// Allow enlarging images smaller than `new_shape` (default `true`).
    pub scale_up: bool,
    /// Split the padding between both sides (default `true`); otherwise the image sits at the
    /// top-left corner and all padding is at the bottom/right.
    pub center: bool,
    /// Grey level of the padding, used for all three channels (default 114).
    pub pad_value: u8,
}

impl Default for LetterboxConfig {
    fn default() -> Self {
        Self { new_shape: (640, 640), auto: true, stride: 32, scale_up: true, center: true, pad_value: 114 }
    }
}

impl LetterboxConfig {
    /// Default settings with target size `(height, width)` in pixels.
    pub fn new(new_shape: (u32, u32)) -> Self {
        Self { new_shape, ..Self::default() }
    }

    /// Sets the target size `(height, width)` in pixels.
    pub fn with_new_shape(mut self, new_shape: (u32, u32)) -> Self {
        self.new_shape = new_shape;
        self
    }

    /// Sets minimal stride-multiple padding on or off.
    pub fn with_auto(mut self, auto: bool) -> Self {
        self.auto = auto;
        self
    }

    /// Sets the stride used by `auto` padding.
    pub fn with_stride(mut self, stride: u32) -> Self {
        self.stride = stride;
        self
    }

    /// Allows or forbids enlarging small images.
    pub fn with_scale_up(mut self, scale_up: bool) -> Self {
        self.scale_up = scale_up;
        self
    }

    /// Centres the image (padding on both sides) or puts it at the top-left corner.
    pub fn with_center(mut self, center: bool) -> Self {
        self.center = center;
        self
    }

    /// Sets the grey level of the padding.
    pub fn with_pad_value(mut self, pad_value: u8) -> Self {
        self.pad_value = pad_value;
        self
    }
}

/// How an image was letterboxed: enough to map boxes between original and letterboxed pixels.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct LetterboxInfo {
    /// Scale factor `r` from original to letterboxed pixels (same on both axes).
    pub ratio: f32,
    /// Offset `(dw, dh)` in letterboxed pixels of the resized image inside the canvas, before
    /// rounding to whole pixels (what ultralytics' `letterbox` returns as `pad`); `(0, 0)` when
    /// not centred.
    pub pad: (f32, f32),
    /// Original image size `(height, width)` in pixels.
    pub original: (u32, u32),
    /// Letterboxed image size `(height, width)` in pixels.
    pub shape: (u32, u32),
}

impl LetterboxInfo {
    /// Maps a box `[x1, y1, x2, y2]` from original to letterboxed pixels: `x * ratio + pad`
    /// (as ultralytics transforms training labels). No clipping.
    pub fn letterbox_box(&self, xyxy: [f32; 4]) -> [f32; 4] {
        let (px, py) = self.pad;
        [xyxy[0] * self.ratio + px, xyxy[1] * self.ratio + py, xyxy[2] * self.ratio + px, xyxy[3] * self.ratio + py]
    }

    /// Maps a box `[x1, y1, x2, y2]` from letterboxed back to original pixels like ultralytics
    /// `scale_boxes(..., ratio_pad=(ratio, pad))` (what `val.py` does): subtract `pad`, divide by
    /// `ratio`, clip x to `0..=width` and y to `0..=height` of the original image.
    pub fn unletterbox_box(&self, xyxy: [f32; 4]) -> [f32; 4] {
        self.unmap(xyxy, self.ratio, self.pad)
    }

    /// Like [`unletterbox_box`](Self::unletterbox_box), but with the gain and padding recomputed
    /// from the two image sizes, as `detect.py` calls `scale_boxes(im.shape[2:], det, im0.shape)`:
    /// `gain = min(shape_h / h, shape_w / w)`, `pad = ((shape_w - w * gain) / 2,
    /// (shape_h - h * gain) / 2)`. Differs from `unletterbox_box` by a fraction of a pixel when
    /// `auto` padding rounded the size; only meaningful for centred letterboxes.
    pub fn unletterbox_box_from_shapes(&self, xyxy: [f32; 4]) -> [f32; 4] {
        let (h0, w0) = (f64::from(self.original.0), f64::from(self.original.1));
        let (h1, w1) = (f64::from(self.shape.0), f64::from(self.shape.1));
        let gain = (h1 / h0).min(w1 / w0);
        let pad = ((w1 - w0 * gain) / 2.0, (h1 - h0 * gain) / 2.0);
        self.unmap(xyxy, gain as f32, (pad.0 as f32, pad.1 as f32))
    }

    /// `(v - pad) / gain` per coordinate in `f32`, then clipped to the original image.
    fn unmap(&self, xyxy: [f32; 4], gain: f32, pad: (f32, f32)) -> [f32; 4] {
        let (h, w) = (self.original.0 as f32, self.original.1 as f32);
        let x = |v: f32| ((v - pad.0) / gain).clamp(0.0, w);
        let y = |v: f32| ((v - pad.1) / gain).clamp(0.0, h);
        [x(xyxy[0]), y(xyxy[1]), x(xyxy[2]), y(xyxy[3])]
    }
}

/// Python's `round()` on a float: nearest integer, ties to even.
fn round_py(v: f64) -> i64 {
    v.round_ties_even() as i64
}

/// Resizes `img` keeping its aspect ratio and pads it with grey, as ultralytics `letterbox()`.
///
/// Returns the letterboxed image (`info.shape` = `(height, width)`) and the [`LetterboxInfo`] to
/// map boxes back. The resized part is at least 1 pixel on each side (ultralytics would fail on
/// such extreme aspect ratios). Fails on an empty image, a zero target size, or a zero `stride`
/// with `auto`.
pub fn letterbox(img: &RgbImage, cfg: &LetterboxConfig) -> Result<(RgbImage, LetterboxInfo), DataError> {
    let (w, h) = img.dimensions();
    if w == 0 || h == 0 {
        return Err(DataError::EmptyImage { width: w, height: h });
    }
    let (new_h, new_w) = cfg.new_shape;
    if new_h == 0 || new_w == 0 {
        return Err(DataError::InvalidLetterbox {
            reason: format!("new_shape must be positive, got {new_h}x{new_w} (h x w)"),
        });
    }
    if cfg.auto && cfg.stride == 0 {
        return Err(DataError::InvalidLetterbox { reason: "stride must be positive when auto padding is on".into() });
    }

    let mut r = (f64::from(new_h) / f64::from(h)).min(f64::from(new_w) / f64::from(w));
    if !cfg.scale_up {
        r = r.min(1.0);
    }
    let unpad_w = round_py(f64::from(w) * r).max(1);
    let unpad_h = round_py(f64::from(h) * r).max(1);
    let mut dw = (i64::from(new_w) - unpad_w).max(0);
    let mut dh = (i64::from(new_h) - unpad_h).max(0);
    if cfg.auto {
        dw = dw.rem_euclid(i64::from(cfg.stride));
        dh = dh.rem_euclid(i64::from(cfg.stride));
    }
    let (dw, dh) = if cfg.center { (dw as f64 / 2.0, dh as f64 / 2.0) } else { (dw as f64, dh as f64) };
    let (top, left) = if cfg.center { (round_py(dh - 0.1), round_py(dw - 0.1)) } else { (0, 0) };
    let bottom = round_py(dh + 0.1);
    let right = round_py(dw + 0.1);

    // All sizes are bounded by max(new side, original side), so they fit in u32.
    let size = |v: i64| u32::try_from(v).unwrap_or(u32::MAX);
    let (unpad_w, unpad_h) = (size(unpad_w), size(unpad_h));
    let resized = resize_bilinear(img, unpad_w, unpad_h)?;
    let out_w = size(i64::from(unpad_w) + left + right);
    let out_h = size(i64::from(unpad_h) + top + bottom);
    let mut out = RgbImage::from_pixel(out_w, out_h, Rgb([cfg.pad_value; 3]));
    image::imageops::replace(&mut out, &resized, left, top);

    let info = LetterboxInfo {
        ratio: r as f32,
        pad: if cfg.center { (dw as f32, dh as f32) } else { (0.0, 0.0) },
        original: (h, w),
        shape: (out_h, out_w),
    };
    Ok((out, info))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Letterbox shape for an `h x w` image: (output (h, w), pad, top/left grey rows/cols).
    fn shape_of(h: u32, w: u32, cfg: &LetterboxConfig) -> ((u32, u32), (f32, f32), RgbImage) {
        let img = RgbImage::from_pixel(w, h, Rgb([0, 0, 0]));
        let (out, info) = letterbox(&img, cfg).unwrap();
        assert_eq!(info.shape, (out.height(), out.width()));
        assert_eq!(info.original, (h, w));
        (info.shape, info.pad, out)
    }

    /// Number of leading rows / columns that are entirely the pad colour (image is black).
    fn borders(img: &RgbImage) -> (u32, u32, u32, u32) {
        let grey = Rgb([114, 114, 114]);
        let row = |y: u32| (0..img.width()).all(|x| *img.get_pixel(x, y) == grey);
        let col = |x: u32| (0..img.height()).all(|y| *img.get_pixel(x, y) == grey);
        let (w, h) = img.dimensions();
        let top = (0..h).take_while(|&y| row(y)).count() as u32;
        let bottom = (0..h).rev().take_while(|&y| row(y)).count() as u32;
        let left = (0..w).take_while(|&x| col(x)).count() as u32;
        let right = (0..w).rev().take_while(|&x| col(x)).count() as u32;
        (top, bottom, left, right)
    }

    #[test]
    fn shapes_follow_the_ultralytics_formula() {
        let fixed = LetterboxConfig::new((640, 640)).with_auto(false);
        let auto = LetterboxConfig::new((640, 640));
        // (h, w, cfg) -> (out h, out w), pad (dw, dh), borders (top, bottom, left, right).
        let cases = [
            // r = 1, dh = 160 -> 80 / 80.
            (480, 640, &fixed, (640, 640), (0.0, 80.0), (80, 80, 0, 0)),
            // 160 mod 32 = 0: no padding at all.
            (480, 640, &auto, (480, 640), (0.0, 0.0), (0, 0, 0, 0)),
            // r = 640/1080, unpad 480 x 640, dw = 160 mod 32 = 0.
            (1080, 810, &auto, (640, 480), (0.0, 0.0), (0, 0, 0, 0)),
            (1080, 810, &fixed, (640, 640), (80.0, 0.0), (0, 0, 80, 80)),
            // r = 0.5, unpad 640 x 360, dh = 280 mod 32 = 24 -> 12 / 12.
            (720, 1280, &auto, (384, 640), (0.0, 12.0), (12, 12, 0, 0)),
            // r = 1.28, unpad h = round(426.24) = 426, dh = 214 mod 32 = 22 -> 11 / 11.
            (333, 500, &auto, (448, 640), (0.0, 11.0), (11, 11, 0, 0)),
        ];
        for (h, w, cfg, want_shape, want_pad, want_borders) in cases {
            let (shape, pad, out) = shape_of(h, w, cfg);
            assert_eq!(shape, want_shape, "{h}x{w} auto={}", cfg.auto);
            assert_eq!(pad, want_pad, "{h}x{w} auto={}", cfg.auto);
            assert_eq!(borders(&out), want_borders, "{h}x{w} auto={}", cfg.auto);
        }
    }

    #[test]
    fn odd_padding_puts_the_extra_pixel_at_the_bottom() {
        // r = 64/300, unpad h = round(21.33) = 21, dh = 43 -> 21.5: top 21, bottom 22.
        let cfg = LetterboxConfig::new((64, 64)).with_auto(false);
        let (shape, pad, out) = shape_of(100, 300, &cfg);
        assert_eq!(shape, (64, 64));
        assert_eq!(pad, (0.0, 21.5));
        assert_eq!(borders(&out), (21, 22, 0, 0));
    }

    #[test]
    fn rounding_is_half_to_even_like_python() {
        // 2 x 5 -> r = 0.5: w * r = 2.5 rounds to 2 (not 3), dw = 2 -> 1 / 1.
        let cfg = LetterboxConfig::new((1, 4)).with_auto(false);
        let (shape, _, out) = shape_of(2, 5, &cfg);
        assert_eq!(shape, (1, 4));
        assert_eq!(borders(&out), (0, 0, 1, 1));
        // 2 x 7 -> w * r = 3.5 rounds to 4, no padding left.
        let cfg = LetterboxConfig::new((1, 4)).with_auto(false);
        let (_, _, out) = shape_of(2, 7, &cfg);
        assert_eq!(borders(&out), (0, 0, 0, 0));
    }

    #[test]
    fn no_scale_up_and_no_center() {
        let cfg = LetterboxConfig::new((640, 640)).with_scale_up(false);
        // r = 1, dw = dh = 540 mod 32 = 28 -> 14 each side.
        let (shape, pad, out) = shape_of(100, 100, &cfg);
        assert_eq!((shape, pad), ((128, 128), (14.0, 14.0)));
        assert_eq!(borders(&out), (14, 14, 14, 14));
        let cfg = LetterboxConfig::new((640, 640)).with_auto(false).with_center(false);
        let (shape, pad, out) = shape_of(480, 640, &cfg);
        assert_eq!((shape, pad), ((640, 640), (0.0, 0.0)));
        assert_eq!(borders(&out), (0, 160, 0, 0));
    }

    #[test]
    fn pad_pixels_are_114_and_content_is_kept() {
        let img = RgbImage::from_pixel(640, 480, Rgb([7, 8, 9]));
        let cfg = LetterboxConfig::new((640, 640)).with_auto(false);
        let (out, _) = letterbox(&img, &cfg).unwrap();
        for (x, y, p) in out.enumerate_pixels() {
            let want = if (80..560).contains(&y) { Rgb([7, 8, 9]) } else { Rgb([114, 114, 114]) };
            assert_eq!(*p, want, "pixel ({x}, {y})");
        }
    }

    #[test]
    fn boxes_round_trip_within_a_pixel() {
        // A white rectangle in a black image: find it after letterboxing, map it back.
        let (h, w) = (333u32, 500u32);
        let rect = [120u32, 50, 301, 211]; // x1, y1, x2, y2 (exclusive)
        let img = RgbImage::from_fn(w, h, |x, y| {
            let inside = (rect[0]..rect[2]).contains(&x) && (rect[1]..rect[3]).contains(&y);
            Rgb(if inside { [255; 3] } else { [0; 3] })
        });
        let original = rect.map(|v| v as f32);
        for cfg in [
            LetterboxConfig::new((640, 640)),
            LetterboxConfig::new((640, 640)).with_auto(false),
            LetterboxConfig::new((256, 320)),
        ] {
            let (out, info) = letterbox(&img, &cfg).unwrap();
            // Bright pixels (> 127) in the letterboxed image.
            let bright: Vec<(u32, u32)> =
                out.enumerate_pixels().filter(|(_, _, p)| p[0] > 127).map(|(x, y, _)| (x, y)).collect();
            let found = [
                bright.iter().map(|p| p.0).min().unwrap() as f32,
                bright.iter().map(|p| p.1).min().unwrap() as f32,
                bright.iter().map(|p| p.0).max().unwrap() as f32 + 1.0,
                bright.iter().map(|p| p.1).max().unwrap() as f32 + 1.0,
            ];
            let mapped = info.letterbox_box(original);
            for k in 0..4 {
                assert!((mapped[k] - found[k]).abs() <= 1.0, "{cfg:?} {mapped:?} {found:?}");
            }
            for back in [info.unletterbox_box(found), info.unletterbox_box_from_shapes(found)] {
                for k in 0..4 {
                    assert!((back[k] - original[k]).abs() <= 1.0 / info.ratio.min(1.0), "{cfg:?} {back:?}");
                }
            }
            let exact = info.unletterbox_box(info.letterbox_box(original));
            for k in 0..4 {
                assert!((exact[k] - original[k]).abs() < 1e-3, "{exact:?}");
            }
        }
    }

    #[test]
    fn unletterbox_clips_to_the_original_image() {
        let info = LetterboxInfo { ratio: 0.5, pad: (0.0, 80.0), original: (960, 1280), shape: (640, 640) };
        assert_eq!(info.unletterbox_box([-10.0, 70.0, 700.0, 600.0]), [0.0, 0.0, 1280.0, 960.0]);
        assert_eq!(info.unletterbox_box([10.0, 90.0, 20.0, 100.0]), [20.0, 20.0, 40.0, 40.0]);
        assert_eq!(info.unletterbox_box_from_shapes([10.0, 90.0, 20.0, 100.0]), [20.0, 20.0, 40.0, 40.0]);
    }

    #[test]
    fn bad_settings_are_errors() {
        let img = RgbImage::new(4, 4);
        assert!(matches!(letterbox(&img, &LetterboxConfig::new((0, 640))), Err(DataError::InvalidLetterbox { .. })));
        assert!(matches!(
            letterbox(&img, &LetterboxConfig::default().with_stride(0)),
            Err(DataError::InvalidLetterbox { .. })
        ));
        assert!(matches!(
            letterbox(&RgbImage::new(0, 4), &LetterboxConfig::default()),
            Err(DataError::EmptyImage { .. })
        ));
        // Extreme aspect ratio: the resized side never collapses to 0 pixels.
        let (out, _) = letterbox(&RgbImage::new(4000, 1), &LetterboxConfig::default()).unwrap();
        assert_eq!(out.width(), 640);
        assert!(out.height() >= 1);
    }
}
