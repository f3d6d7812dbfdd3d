//! The 4-image mosaic of ultralytics' `load_mosaic`.
//!
//! Four tiles (already resized with [`resize_to_imgsz`](super::resize_to_imgsz)) are placed on a
//! `2s x 2s` canvas of grey 114 around a random centre `(xc, yc)`, each in its quadrant: top-left
//! ends at the centre, top-right starts at `xc`, and so on, every tile cut where it leaves the
//! canvas. Box coordinates are offset with their tile and clipped to `[0, 2s]`. The canvas then
//! goes through [`random_perspective`] with a border of `-s/2` (Python's `-s // 2`), which crops it
//! back to `s x s` around a randomly translated, scaled (etc.) view.

use image::{Rgb, RgbImage};
use rand::Rng;

use super::perspective::{BORDER_VALUE, PerspectiveParams, random_perspective};
use crate::sample::{LabeledBox, Sample};

/// Ultralytics' `mosaic_border` for image size `s`: `-s // 2` (floor division).
pub fn mosaic_border(s: u32) -> i32 {
    -(s.div_ceil(2) as i32)
}

/// Draws the mosaic centre `(xc, yc)` as ultralytics: `yc` then `xc`, each
/// `int(uniform(s // 2, 2s - s // 2))` (with Python's floor division of the negative border).
pub fn mosaic_center(s: u32, rng: &mut impl Rng) -> (u32, u32) {
    let lo = -f64::from(mosaic_border(s));
    let hi = 2.0 * f64::from(s) + f64::from(mosaic_border(s));
    let yc = super::uniform(rng, lo, hi) as u32;
    let xc = super::uniform(rng, lo, hi) as u32;
    (xc, yc)
}

/// Places four tiles around `center = (xc, yc)` on a `2s x 2s` grey canvas (top-left, top-right,
/// bottom-left, bottom-right, in the order given) and offsets and clips their boxes.
pub fn mosaic_canvas(tiles: &[Sample; 4], s: u32, center: (u32, u32)) -> Sample {
    let s2 = 2 * i64::from(s);
    let (xc, yc) = (i64::from(center.0).min(s2), i64::from(center.1).min(s2));
    let mut canvas = RgbImage::from_pixel(s2 as u32, s2 as u32, Rgb([BORDER_VALUE; 3]));
    let mut boxes = Vec::new();
    for (i, tile) in tiles.iter().enumerate() {
        let (w, h) = (i64::from(tile.image.width()), i64::from(tile.image.height()));
        // (x1a, y1a, x2a, y2a) on the canvas, (x1b, y1b, x2b, y2b) in the tile.
        let (a, b) = match i {
            0 => {
                let a = ((xc - w).max(0), (yc - h).max(0), xc, yc);
                (a, (w - (a.2 - a.0), h - (a.3 - a.1), w, h))
            }
            1 => {
                let a = (xc, (yc - h).max(0), (xc + w).min(s2), yc);
                (a, (0, h - (a.3 - a.1), w.min(a.2 - a.0), h))
            }
            2 => {
                let a = ((xc - w).max(0), yc, xc, s2.min(yc + h));
                (a, (w - (a.2 - a.0), 0, w, (a.3 - a.1).min(h)))
            }
            _ => {
                let a = (xc, yc, (xc + w).min(s2), s2.min(yc + h));
                (a, (0, 0, w.min(a.2 - a.0), (a.3 - a.1).min(h)))
            }
        };
        let (cw, ch) = ((a.2 - a.0).min(b.2 - b.0), (a.3 - a.1).min(b.3 - b.1));
        if cw > 0 && ch > 0 {
            let src = tile.image.as_raw();
            let dst_stride = s2 as usize * 3;
            let src_stride = w as usize * 3;
            let dst = &mut *canvas;
            for row in 0..ch as usize {
                let so = (b.1 as usize + row) * src_stride + b.0 as usize * 3;
                let d = (a.1 as usize + row) * dst_stride + a.0 as usize * 3;
                dst[d..d + cw as usize * 3].copy_from_slice(&src[so..so + cw as usize * 3]);
            }
        }
        let (padw, padh) = ((a.0 - b.0) as f64, (a.1 - b.1) as f64);
        let clip = |v: f64| v.clamp(0.0, s2 as f64) as f32;
        boxes.extend(tile.boxes.iter().map(|bx| {
            let [x1, y1, x2, y2] = bx.xyxy.map(f64::from);
            LabeledBox {
                class_id: bx.class_id,
                xyxy: [clip(x1 + padw), clip(y1 + padh), clip(x2 + padw), clip(y2 + padh)],
            }
        }));
    }
    Sample { image: canvas, boxes }
}

/// Ultralytics `load_mosaic` after loading: draws the centre, builds the canvas
/// ([`mosaic_canvas`]) and crops it back to `s x s` through [`random_perspective`] with border
/// `-s // 2`. `tiles` are resized already and in placement order (ultralytics shuffles the sample
/// and its three random partners before placing them; the loader does that).
pub fn mosaic(tiles: &[Sample; 4], s: u32, params: &PerspectiveParams, rng: &mut impl Rng) -> Sample {
    let center = mosaic_center(s, rng);
    let canvas = mosaic_canvas(tiles, s, center);
    let border = mosaic_border(s);
    random_perspective(&canvas, params, (border, border), rng).0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn border_is_python_floor_division() {
        assert_eq!(mosaic_border(640), -320);
        assert_eq!(mosaic_border(321), -161);
    }

    #[test]
    fn tiles_fill_their_quadrants() {
        let tile = |v: u8| Sample { image: RgbImage::from_pixel(40, 30, Rgb([v; 3])), boxes: vec![] };
        let tiles = [tile(1), tile(2), tile(3), tile(4)];
        let m = mosaic_canvas(&tiles, 64, (50, 60));
        assert_eq!(m.image.dimensions(), (128, 128));
        assert_eq!(m.image.get_pixel(49, 59)[0], 1);
        assert_eq!(m.image.get_pixel(10, 30)[0], 1);
        assert_eq!(m.image.get_pixel(9, 30)[0], BORDER_VALUE);
        assert_eq!(m.image.get_pixel(50, 59)[0], 2);
        assert_eq!(m.image.get_pixel(89, 30)[0], 2);
        assert_eq!(m.image.get_pixel(90, 30)[0], BORDER_VALUE);
        assert_eq!(m.image.get_pixel(49, 60)[0], 3);
        assert_eq!(m.image.get_pixel(50, 89)[0], 4);
        assert_eq!(m.image.get_pixel(50, 90)[0], BORDER_VALUE);
    }
}
