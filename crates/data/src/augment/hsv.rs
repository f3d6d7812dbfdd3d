//! HSV colour augmentation as ultralytics' `augment_hsv`, on OpenCV's 8-bit HSV representation.
//!
//! Ultralytics draws gains `r = uniform(-1, 1, 3) * [hsv_h, hsv_s, hsv_v] + 1`, converts the image
//! with `cv2.cvtColor(BGR2HSV)` (8-bit: H in `0..180`, S and V in `0..=255`), maps each channel
//! through a lookup table (`(x * r_h) % 180`, `clip(x * r_s, 0, 255)`, `clip(x * r_v, 0, 255)`,
//! computed in `f64` and truncated to `u8`) and converts back with `HSV2BGR`. Nothing happens when
//! all three gains are zero.
//!
//! The two conversions reproduce OpenCV's 8-bit code paths:
//!
//! - **RGB → HSV** (`RGB2HSV_b`, integer): `v = max`, `diff = max - min`,
//!   `s = (diff * sdiv[v] + 2^11) >> 12`, hue numerator `g - b`, `b - r + 2 diff` or
//!   `r - g + 4 diff` (for max = R, G, B, in that priority), `h = (num * hdiv[diff] + 2^11) >> 12`
//!   (arithmetic shift), `+ 180` when negative; the tables are `sdiv[i] = round(255 * 2^12 / i)` and
//!   `hdiv[i] = round(180 * 2^12 / (6 i))`, 0 at `i = 0`.
//! - **HSV → RGB** (`HSV2RGB_b`, `f32`): `s, v` scaled by `1/255`, `h * (6/180)` split into
//!   sector and fraction by truncation, the usual `v (1 - s)`, `v (1 - s f)`, `v (1 - s (1 - f))`
//!   table, then `value * 255` **truncated** to `u8`. That is OpenCV 5.0's vectorised path, which
//!   covers every pixel of rows whose width is a multiple of the SIMD block (32 or 64 pixels, so
//!   every training width that is a multiple of 64); OpenCV's scalar tail for the remaining pixels
//!   of a row rounds instead, so a different value by one level is possible there.
//!
//! Bit-identical to `opencv-python-headless` 5.0.0 (x86-64) on 9 images of widths 64 to 640 with
//! random and fixed gains; `tests/augment_cv2.rs` keeps three as checksums.

use image::RgbImage;
use rand::Rng;

use super::uniform;
use super::warp::fma;

/// Fixed-point shift of OpenCV's HSV division tables.
const HSV_SHIFT: u32 = 12;

/// `(sdiv, hdiv180)`: OpenCV's reciprocal tables for saturation and 8-bit hue.
fn tables() -> &'static ([i32; 256], [i32; 256]) {
    static TABLES: std::sync::OnceLock<([i32; 256], [i32; 256])> = std::sync::OnceLock::new();
    TABLES.get_or_init(|| {
        let mut sdiv = [0i32; 256];
        let mut hdiv = [0i32; 256];
        for i in 1..256 {
            // saturate_cast<int>(double) rounds half to even.
            sdiv[i] = (f64::from(255i32 << HSV_SHIFT) / i as f64).round_ties_even() as i32;
            hdiv[i] = (f64::from(180i32 << HSV_SHIFT) / (6.0 * i as f64)).round_ties_even() as i32;
        }
        (sdiv, hdiv)
    })
}

/// One RGB pixel to OpenCV's 8-bit HSV `(h in 0..180, s, v)`, as `cv2.cvtColor(COLOR_RGB2HSV)`.
pub fn rgb_to_hsv(rgb: [u8; 3]) -> [u8; 3] {
    rgb_to_hsv_with(tables(), rgb)
}

/// [`rgb_to_hsv`] with the tables looked up once by the caller.
#[inline]
fn rgb_to_hsv_with((sdiv, hdiv): &([i32; 256], [i32; 256]), rgb: [u8; 3]) -> [u8; 3] {
    let [r, g, b] = rgb.map(i32::from);
    let v = r.max(g).max(b);
    let vmin = r.min(g).min(b);
    let diff = v - vmin;
    let s = (diff * sdiv[v as usize] + (1 << (HSV_SHIFT - 1))) >> HSV_SHIFT;
    // OpenCV's branch-free selection with all-ones masks (`vr`, `vg`); fast on noisy images.
    let vr = -i32::from(v == r);
    let vg = -i32::from(v == g);
    let num = (vr & (g - b)) + (!vr & ((vg & (b - r + 2 * diff)) + (!vg & (r - g + 4 * diff))));
    let h = (num * hdiv[diff as usize] + (1 << (HSV_SHIFT - 1))) >> HSV_SHIFT;
    let h = h + (180 & -i32::from(h < 0));
    [h.clamp(0, 255) as u8, s as u8, v as u8]
}

/// One 8-bit HSV pixel `(h in 0..180, s, v)` back to RGB, as OpenCV 5.0's vectorised
/// `cv2.cvtColor(COLOR_HSV2RGB)` (see the module docs for the truncation).
pub fn hsv_to_rgb(hsv: [u8; 3]) -> [u8; 3] {
    let hscale = 6.0f32 / 180.0;
    let h = f32::from(hsv[0]) * hscale;
    let s = f32::from(hsv[1]) * (1.0f32 / 255.0);
    let v = f32::from(hsv[2]) * (1.0f32 / 255.0);
    // `as` truncates toward zero like `v_trunc`; the sector is `pre - trunc(pre / 6) * 6` in
    // OpenCV, i.e. `pre % 6` (only hues of 180 and more reach 6).
    let pre = h as i32;
    let f = h - pre as f32;
    let sector = pre % 6;
    let tab0 = v;
    let tab1 = v * (1.0 - s);
    // OpenCV's `v * (1 - s * f)` is compiled into a fused multiply-add on x86 (its AVX2/AVX-512
    // dispatch targets have FMA); without it 1 pixel in ~600 differs by one level.
    let tab2 = v * fma(-s, f, 1.0);
    let tab3 = v * fma(-s, 1.0 - f, 1.0);
    // Which of (tab0..tab3) is (b, g, r) in each sector: OpenCV's `sector_data`, as a lookup
    // instead of a branch (sectors are random on noisy images).
    const SECTOR: [[usize; 3]; 6] = [[1, 3, 0], [1, 0, 2], [3, 0, 1], [0, 2, 1], [0, 1, 3], [2, 1, 0]];
    let tab = [tab0, tab1, tab2, tab3];
    let [bi, gi, ri] = SECTOR[sector as usize];
    let (r, g, b) = (tab[ri], tab[gi], tab[bi]);
    // v_trunc then v_pack_u: truncation toward zero, saturated to 0..=255 (what `as u8` does).
    let q = |x: f32| (x * 255.0) as u8;
    [q(r), q(g), q(b)]
}

/// The three lookup tables of `augment_hsv` for gains `r = [r_h, r_s, r_v]` (each around 1).
pub fn hsv_luts(r: [f64; 3]) -> [[u8; 256]; 3] {
    let mut luts = [[0u8; 256]; 3];
    let [hue, sat, val] = &mut luts;
    for (x, ((h, s), v)) in hue.iter_mut().zip(sat.iter_mut()).zip(val.iter_mut()).enumerate() {
        let xf = x as f64;
        // numpy's float `%` takes the sign of the divisor; `astype(uint8)` truncates.
        *h = (xf * r[0]).rem_euclid(180.0) as u8;
        *s = (xf * r[1]).clamp(0.0, 255.0) as u8;
        *v = (xf * r[2]).clamp(0.0, 255.0) as u8;
    }
    luts
}

/// Applies fixed HSV gains `r = [r_h, r_s, r_v]` (1 = unchanged) in place: RGB → HSV, the lookup
/// tables of [`hsv_luts`], HSV → RGB. Unlike [`augment_hsv`] this always converts, so gains of
/// exactly 1 still quantise through OpenCV's HSV representation.
pub fn apply_hsv_gains(img: &mut RgbImage, r: [f64; 3]) {
    let luts = hsv_luts(r);
    let tables = tables();
    // Cache the last conversion: images have runs of equal pixels (padding, flat regions).
    let mut last: Option<([u8; 3], [u8; 3])> = None;
    for px in img.pixels_mut() {
        let key = px.0;
        let out = match last {
            Some((k, v)) if k == key => v,
            _ => {
                let [h, s, v] = rgb_to_hsv_with(tables, key);
                let out = hsv_to_rgb([luts[0][h as usize], luts[1][s as usize], luts[2][v as usize]]);
                last = Some((key, out));
                out
            }
        };
        px.0 = out;
    }
}

/// Ultralytics `augment_hsv(im, hgain, sgain, vgain)`: draws `r = uniform(-1, 1, 3) * gains + 1`
/// and applies [`apply_hsv_gains`]; leaves the image untouched (and draws nothing) when all gains
/// are zero. Returns the gains used, `None` when skipped.
pub fn augment_hsv(img: &mut RgbImage, gains: [f64; 3], rng: &mut impl Rng) -> Option<[f64; 3]> {
    if gains.iter().all(|&g| g == 0.0) {
        return None;
    }
    let r = gains.map(|g| uniform(rng, -1.0, 1.0) * g + 1.0);
    apply_hsv_gains(img, r);
    Some(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn primary_colours_and_greys() {
        assert_eq!(rgb_to_hsv([255, 0, 0]), [0, 255, 255]);
        assert_eq!(rgb_to_hsv([0, 255, 0]), [60, 255, 255]);
        assert_eq!(rgb_to_hsv([0, 0, 255]), [120, 255, 255]);
        assert_eq!(rgb_to_hsv([114, 114, 114]), [0, 0, 114]);
        assert_eq!(hsv_to_rgb([0, 0, 114]), [114, 114, 114]);
        assert_eq!(hsv_to_rgb([60, 255, 255]), [0, 255, 0]);
        assert_eq!(hsv_to_rgb([120, 255, 255]), [0, 0, 255]);
    }

    #[test]
    fn luts_match_numpy() {
        let l = hsv_luts([1.01, 1.5, 0.5]);
        // 179 * 1.01 = 180.79 -> 0.79 -> 0; 100 * 1.01 = 101.0 -> 101.
        assert_eq!((l[0][179], l[0][100], l[0][0]), (0, 101, 0));
        assert_eq!((l[1][200], l[1][101]), (255, 151));
        assert_eq!((l[2][255], l[2][3]), (127, 1));
    }
}
