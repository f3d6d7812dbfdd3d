//! Bilinear image resize that reproduces `cv2.resize(..., interpolation=INTER_LINEAR)` on 8-bit
//! images bit for bit.
//!
//! ultralytics resizes with OpenCV, and the `image` crate's `Triangle` filter is not the same
//! thing: when downscaling it widens its kernel (an area-like average over all covered source
//! pixels) while OpenCV's `INTER_LINEAR` always blends just the two nearest source pixels per axis.
//! This module reimplements OpenCV's fixed-point algorithm for 8-bit images (`CV_8U`, any channel
//! count; used here with 3):
//!
//! 1. **Coordinates.** Destination index `d` samples source coordinate
//!    `f = (float)((d + 0.5) * scale - 0.5)` with `scale = 1 / (dst / src)` in `f64` and the result
//!    rounded to `f32`; `s = floor(f)`, fraction `t = f - s` (in `f32`).
//! 2. **Borders.** Horizontally, a sample left of the first pixel (`s < 0`) becomes `s = 0, t = 0`
//!    and one at or right of the last (`s >= src - 1`) becomes `s = src - 1, t = 0`. Vertically the
//!    fraction is kept and both row indices `s`, `s + 1` are clamped to `[0, src - 1]`.
//! 3. **Weights.** 11-bit fixed point (`INTER_RESIZE_COEF_BITS`):
//!    `w0 = saturate_cast<short>((1 - t) * 2048)`, `w1 = saturate_cast<short>(t * 2048)`, both
//!    products in `f32`, rounded half to even.
//! 4. **Horizontal pass** (exact, in `i32`): `H = src[s] * w0 + src[s + 1] * w1` per channel, i.e.
//!    the source value scaled by 2048. OpenCV's SIMD and scalar horizontal loops agree here because
//!    integer sums are exact.
//! 5. **Vertical pass**, the part that is *not* the textbook `(acc + 2^21) >> 22`:
//!    `out = (((H0 >> 4) * b0 >> 16) + ((H1 >> 4) * b1 >> 16) + 2) >> 2`, saturated to `u8`.
//!    Each row is first truncated to 7 fractional bits, each product to 2 fractional bits
//!    (`v_mul_hi` keeps the high 16 bits of the 16x16-bit product), and only the final sum is rounded.
//!    OpenCV's `VResizeLinearVec_32s8u` computes exactly that with `v_pack`/`v_mul_hi`/
//!    `v_rshr_pack_u<2>`, and the `VResizeLinear` specialisation for `uchar` runs the *same*
//!    formula in its scalar tail (not the generic `FixedPtCast<int, uchar, 22>`), so every column
//!    takes the same arithmetic whatever the vector width or SIMD level.
//! 6. **Exact 2x downscale** (`src == 2 * dst` on both axes): OpenCV switches to its `INTER_AREA`
//!    fast path, `(a + b + c + d + 2) >> 2` over the 2x2 block. The weights there are 1024/1024, so
//!    step 5 gives exactly the same value and needs no special case.
//!
//! An unchanged size is a plain copy, as in `cv::resize`.
//!
//! Verified against `opencv-python-headless` (`cv2` 5.0.0, x86-64, on an AVX-512 machine): 0
//! differing bytes over ~700 random cases (sources 1x1 to 700x700, targets 1x1 to 900x900, random
//! ratios, 2x downscales, letterbox-style 640 resizes, noise and smooth images), also with
//! `cv2.setUseOptimized(False)`, and on the two scene fixtures of `yolo-compress`
//! (300x200 -> 320x213, 173x241 -> 230x320). OpenCV's IPP path is not involved: it is disabled for
//! 8-bit linear resize unless "not exact" IPP is requested. `crates/data/tests/cv2_resize.rs` keeps a
//! fixture of cv2 outputs (`benches/peers/make_resize_fixture.py`).

use image::RgbImage;

use crate::error::DataError;

/// Fixed-point precision of the interpolation weights (OpenCV's `INTER_RESIZE_COEF_BITS`).
const COEF_BITS: u32 = 11;
/// `1.0` in fixed point.
const COEF_SCALE: f32 = (1 << COEF_BITS) as f32;
/// Channels of an [`RgbImage`].
const CN: usize = 3;

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

/// Rounds like OpenCV's `saturate_cast<short>(float)` (round half to even; the values here are
/// within `[0, 2048]`, so no saturation happens).
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

/// Fixed-point weight pair of fraction `f`.
fn weights(f: f32) -> (i32, i32) {
    (fixed((1.0 - f) * COEF_SCALE), fixed(f * COEF_SCALE))
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
            let (w0, w1) = weights(f);
            Tap { i0, i1: (i0 + 1).min(src - 1), w0, w1 }
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
            let (w0, w1) = weights(f);
            Tap { i0: s.clamp(0, last) as usize, i1: (s + 1).clamp(0, last) as usize, w0, w1 }
        })
        .collect()
}

/// Horizontal pass of one source row (`line`, `CN` interleaved channels) into `out`
/// (`taps.len() * CN` values). Stores the fixed-point sum already shifted right by 4, the only
/// form the vertical pass uses.
fn horizontal_pass(line: &[u8], taps: &[Tap], out: &mut [i32]) {
    for (t, o) in taps.iter().zip(out.chunks_exact_mut(CN)) {
        let p0 = &line[t.i0 * CN..t.i0 * CN + CN];
        let p1 = &line[t.i1 * CN..t.i1 * CN + CN];
        for c in 0..CN {
            o[c] = (i32::from(p0[c]) * t.w0 + i32::from(p1[c]) * t.w1) >> 4;
        }
    }
}

/// Vertical pass of two horizontally resized rows (already `>> 4`) with weights `b0`, `b1`:
/// OpenCV's `(((h0 * b0) >> 16) + ((h1 * b1) >> 16) + 2) >> 2`, saturated to `u8`.
fn vertical_pass(h0: &[i32], h1: &[i32], b0: i32, b1: i32, out: &mut [u8]) {
    for ((o, &a), &b) in out.iter_mut().zip(h0).zip(h1) {
        // a, b <= 255 * 2048 >> 4 = 32640 and b0, b1 <= 2048: no overflow in i32.
        let v = (((a * b0) >> 16) + ((b * b1) >> 16) + 2) >> 2;
        *o = v.clamp(0, 255) as u8;
    }
}

/// Resizes an RGB image to `width x height` pixels, bit-exact with OpenCV's
/// `cv2.resize(img, (width, height), interpolation=cv2.INTER_LINEAR)` (see the module docs).
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
    let (sw, dw, dh) = (src_w as usize, width as usize, height as usize);
    let xs = horizontal_taps(sw, dw);
    let ys = vertical_taps(src_h as usize, dh);
    let src = img.as_raw();
    let line = |row: usize| &src[row * sw * CN..(row + 1) * sw * CN];

    let mut out = vec![0u8; dw * dh * CN];
    // Horizontally resized source rows `i0` and `i1` of the current tap; consecutive destination
    // rows mostly share them, so each source row is usually resized once.
    let mut row0 = vec![0i32; dw * CN];
    let mut row1 = vec![0i32; dw * CN];
    let mut cached: (Option<usize>, Option<usize>) = (None, None);
    for (t, dst) in ys.iter().zip(out.chunks_exact_mut(dw * CN)) {
        if cached.0 != Some(t.i0) {
            if cached.1 == Some(t.i0) {
                std::mem::swap(&mut row0, &mut row1);
                cached = (cached.1, cached.0);
            } else {
                horizontal_pass(line(t.i0), &xs, &mut row0);
                cached.0 = Some(t.i0);
            }
        }
        if cached.1 != Some(t.i1) {
            horizontal_pass(line(t.i1), &xs, &mut row1);
            cached.1 = Some(t.i1);
        }
        vertical_pass(&row0, &row1, t.w0, t.w1, dst);
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
    fn vertical_pass_truncates_like_opencv() {
        // cv2.resize of this 2x3 image to 2x4. Row 1 of column 1 samples y = 0.625 between 75 and
        // 87: weights (768, 1280), rows scaled to 75 * 128 and 87 * 128 after `>> 4`, products
        // 112.5 -> 112 and 217.5 -> 217, (112 + 217 + 2) >> 2 = 82. The exact rounding
        // (75 * 768 + 87 * 1280) / 2048 = 83.0 would give 83.
        let img = grey(2, 3, &[190, 75, 79, 87, 255, 139]);
        let out = resize_bilinear(&img, 2, 4).unwrap();
        assert_eq!(channel0(&out), vec![190, 75, 121, 82, 145, 106, 255, 139]);
    }

    #[test]
    fn same_size_is_a_copy_and_empty_is_an_error() {
        let img = grey(2, 2, &[1, 2, 3, 4]);
        assert_eq!(resize_bilinear(&img, 2, 2).unwrap(), img);
        assert!(matches!(resize_bilinear(&img, 0, 2), Err(DataError::EmptyImage { .. })));
        assert!(matches!(resize_bilinear(&RgbImage::new(0, 3), 2, 2), Err(DataError::EmptyImage { .. })));
    }
}
