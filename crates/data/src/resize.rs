//! Bilinear image resize that follows OpenCV's `cv2.resize(..., interpolation=INTER_LINEAR)`.
//!
//! ultralytics resizes with OpenCV, and the `image` crate's `Triangle` filter is not the same
//! thing: when downscaling it widens its kernel (an area-like average over all covered source
//! pixels) while OpenCV's `INTER_LINEAR` always blends just the two nearest source pixels per axis.
//! This module reimplements the OpenCV algorithm for 8-bit images:
//!
//! - half-pixel-centre sampling: destination pixel `d` reads source coordinate
//!   `f = (d + 0.5) * scale - 0.5` with `scale = 1 / (dst / src)` (computed in `f64`, `f` rounded to
//!   `f32`), `s = floor(f)`, weight `f - s`;
//! - border replication: coordinates left of the first or right of the last pixel clamp to it;
//! - 11-bit fixed-point weights (`round_half_even(w * 2048)`), a horizontal pass into `i32` and a
//!   vertical pass rounded as `(acc + 2^21) >> 22`.
//!
//! This is OpenCV's scalar code path. OpenCV's SIMD path for the vertical pass truncates in a
//! slightly different order, so individual pixels of large images can differ from `cv2.resize` by
//! one grey level; exact 2x downscales agree bit for bit (both reduce to a rounded 2x2 mean).

use image::RgbImage;

use crate::error::DataError;

/// Fixed-point precision of the interpolation weights (OpenCV's `INTER_RESIZE_COEF_BITS`).
const COEF_BITS: u32 = 11;
/// `1.0` in fixed point.
const COEF_SCALE: f32 = (1 << COEF_BITS) as f32;

/// Source index pair and fixed-point weights for one destination coordinate.
#[derive(Debug, Clone, Copy)]
struct Tap {
    /// First source index.
    i0: usize,
    /// Second source index (equal to `i0` at a border).
    i1: usize,
    /// Weight of `i0` in 11-bit fixed point.
    w0: i32,
    /// Weight of `i1` in 11-bit fixed point.
    w1: i32,
}

/// Rounds like OpenCV's `saturate_cast<short>(float)` (round half to even).
fn fixed(w: f32) -> i32 {
    w.round_ties_even() as i32
}

/// Source coordinate of destination index `d` and its split into index and fraction, as
/// OpenCV computes them.
fn source_coord(d: usize, scale: f64) -> (i64, f32) {
    let f = ((d as f64 + 0.5) * scale - 0.5) as f32;
    let s = f.floor();
    (s as i64, f - s)
}

/// Horizontal taps: OpenCV zeroes the fraction where the sample falls outside the source.
fn horizontal_taps(src: usize, dst: usize) -> Vec<Tap> {
    let scale = 1.0 / (dst as f64 / src as f64);
    let last = src as i64 - 1;
    (0..dst)
        .map(|d| {
            let (mut s, mut f) = source_coord(d, scale);
            if s < 0 {
                s = 0;
                f = 0.0;
            }
            if s >= last {
                s = last;
                f = 0.0;
            }
            let i0 = s as usize;
            Tap { i0, i1: (i0 + 1).min(src - 1), w0: fixed((1.0 - f) * COEF_SCALE), w1: fixed(f * COEF_SCALE) }
        })
        .collect()
}

/// Vertical taps: OpenCV keeps the fraction and clamps both row indices instead.
fn vertical_taps(src: usize, dst: usize) -> Vec<Tap> {
    let scale = 1.0 / (dst as f64 / src as f64);
    let last = src as i64 - 1;
    (0..dst)
        .map(|d| {
            let (s, f) = source_coord(d, scale);
            Tap {
                i0: s.clamp(0, last) as usize,
                i1: (s + 1).clamp(0, last) as usize,
                w0: fixed((1.0 - f) * COEF_SCALE),
                w1: fixed(f * COEF_SCALE),
            }
        })
        .collect()
}

/// Resizes an RGB image to `width x height` pixels with OpenCV-style bilinear interpolation.
///
/// Returns a copy when the size is unchanged. Fails with [`DataError::EmptyImage`] when the
/// source or the requested size has a zero side.
pub fn resize_bilinear(img: &RgbImage, width: u32, height: u32) -> Result<RgbImage, DataError> {
    let (src_w, src_h) = img.dimensions();
    if src_w == 0 || src_h == 0 {
        return Err(DataError::EmptyImage { width: src_w, height: src_h });
    }
    if width == 0 || height == 0 {
        return Err(DataError::EmptyImage { width, height });
    }
    if (src_w, src_h) == (width, height) {
        return Ok(img.clone());
    }
    const CN: usize = 3;
    let (sw, dw, dh) = (src_w as usize, width as usize, height as usize);
    let xs = horizontal_taps(sw, dw);
    let ys = vertical_taps(src_h as usize, dh);
    let src = img.as_raw();

    // Horizontal pass of one source row into a fixed-point buffer of `dw * CN` values.
    let hpass = |row: usize, out: &mut [i32]| {
        let line = &src[row * sw * CN..(row + 1) * sw * CN];
        for (dx, t) in xs.iter().enumerate() {
            for c in 0..CN {
                let a = i32::from(line[t.i0 * CN + c]);
                let b = i32::from(line[t.i1 * CN + c]);
                out[dx * CN + c] = a * t.w0 + b * t.w1;
            }
        }
    };

    let mut out = vec![0u8; dw * dh * CN];
    let mut row0 = vec![0i32; dw * CN];
    let mut row1 = vec![0i32; dw * CN];
    let mut cached: (Option<usize>, Option<usize>) = (None, None);
    for (dy, t) in ys.iter().enumerate() {
        if cached.0 != Some(t.i0) {
            if cached.1 == Some(t.i0) {
                std::mem::swap(&mut row0, &mut row1);
                cached = (cached.1, cached.0);
            } else {
                hpass(t.i0, &mut row0);
                cached.0 = Some(t.i0);
            }
        }
        if cached.1 != Some(t.i1) {
            hpass(t.i1, &mut row1);
            cached.1 = Some(t.i1);
        }
        let dst = &mut out[dy * dw * CN..(dy + 1) * dw * CN];
        let (w0, w1) = (i64::from(t.w0), i64::from(t.w1));
        for ((o, &a), &b) in dst.iter_mut().zip(&row0).zip(&row1) {
            let acc = i64::from(a) * w0 + i64::from(b) * w1;
            *o = ((acc + (1 << (2 * COEF_BITS - 1))) >> (2 * COEF_BITS)).clamp(0, 255) as u8;
        }
    }
    RgbImage::from_raw(width, height, out).ok_or(DataError::EmptyImage { width, height })
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::Rgb;

    fn grey(w: u32, h: u32, values: &[u8]) -> RgbImage {
        RgbImage::from_fn(w, h, |x, y| {
            let v = values[(y * w + x) as usize];
            Rgb([v, v, v])
        })
    }

    fn channel0(img: &RgbImage) -> Vec<u8> {
        img.pixels().map(|p| p[0]).collect()
    }

    #[test]
    fn constant_image_stays_constant() {
        let img = RgbImage::from_pixel(37, 23, Rgb([10, 114, 250]));
        for (w, h) in [(64, 64), (13, 7), (37, 50), (1, 1), (100, 3)] {
            let out = resize_bilinear(&img, w, h).unwrap();
            assert_eq!(out.dimensions(), (w, h));
            assert!(out.pixels().all(|p| *p == Rgb([10, 114, 250])), "{w}x{h}");
        }
    }

    #[test]
    fn upscale_2x2_matches_opencv() {
        // cv2.resize(np.array([[0, 100], [200, 255]], np.uint8), (4, 4)), worked by hand:
        // columns sample x = -0.25 (clamped), 0.25, 0.75, 1.25 (clamped), rows likewise.
        let img = grey(2, 2, &[0, 100, 200, 255]);
        let out = resize_bilinear(&img, 4, 4).unwrap();
        #[rustfmt::skip]
        let want = [
            0, 25, 75, 100,
            50, 72, 117, 139,
            150, 167, 200, 216,
            200, 214, 241, 255,
        ];
        assert_eq!(channel0(&out), want);
    }

    #[test]
    fn downscale_2x_is_a_rounded_block_mean() {
        let img = grey(4, 2, &[0, 1, 10, 20, 2, 2, 30, 41]);
        let out = resize_bilinear(&img, 2, 1).unwrap();
        // (0+1+2+2+2)>>2 = 1, (10+20+30+41+2)>>2 = 25.
        assert_eq!(channel0(&out), vec![1, 25]);
    }

    #[test]
    fn non_integer_scale_hand_computed() {
        // 3 -> 2 columns: scale 1.5, x = 0.25 and 1.75 -> weights (1536, 512) on (0,1) and
        // (512, 1536) on (1,2).
        let img = grey(3, 1, &[0, 80, 160]);
        let out = resize_bilinear(&img, 2, 1).unwrap();
        assert_eq!(channel0(&out), vec![20, 140]);
    }

    #[test]
    fn same_size_is_a_copy_and_empty_is_an_error() {
        let img = grey(2, 2, &[1, 2, 3, 4]);
        assert_eq!(resize_bilinear(&img, 2, 2).unwrap(), img);
        assert!(matches!(resize_bilinear(&img, 0, 2), Err(DataError::EmptyImage { .. })));
        assert!(matches!(resize_bilinear(&RgbImage::new(0, 3), 2, 2), Err(DataError::EmptyImage { .. })));
    }
}
