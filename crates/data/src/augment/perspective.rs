//! Random perspective / affine transform of an image and its boxes, as ultralytics'
//! `random_perspective`, and its `box_candidates` filter.
//!
//! The transform is `M = T @ S @ R @ P @ C` (applied right to left): `C` moves the input centre to
//! the origin, `P` adds perspective (`P[2][0]`, `P[2][1]` drawn in `±perspective`), `R` rotates by
//! an angle in `±degrees` and scales by `uniform(1 - scale, 1 + scale)` (OpenCV's
//! `getRotationMatrix2D` about the origin), `S` shears by `tan(±shear°)` on each axis, and `T`
//! translates the origin to `uniform(0.5 ± translate)` times the output size. The output is the
//! input grown by `2 * border` on each axis (mosaic passes a negative border of `-imgsz / 2` to
//! crop its 2s x 2s canvas to s x s). Pixels are warped with [`warp_affine`] (or
//! [`warp_perspective`] when a perspective term is non-zero) and grey 114 fills the uncovered
//! area; nothing is resampled when `M` is the identity and the border is 0.
//!
//! Boxes are transformed by their four corners; the new box is their min/max, clipped to the
//! output, and kept only if [`box_candidates`] accepts it against the original box scaled by the
//! drawn scale.

use rand::Rng;

use super::uniform;
use super::warp::{IDENTITY, Mat3, mat3_mul, warp_affine, warp_perspective};
use crate::sample::{LabeledBox, Sample};

/// Grey level of the area a warp uncovers (ultralytics' `borderValue=(114, 114, 114)`).
pub const BORDER_VALUE: u8 = 114;

/// Ranges of the random geometric transform, under ultralytics' hyp names.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PerspectiveParams {
    /// Rotation range, ± degrees.
    pub degrees: f64,
    /// Translation range, ± fraction of the output size.
    pub translate: f64,
    /// Scale range: the gain is drawn in `[1 - scale, 1 + scale]`.
    pub scale: f64,
    /// Shear range, ± degrees on each axis.
    pub shear: f64,
    /// Perspective range, ± (0 to 0.001 is sensible).
    pub perspective: f64,
}

impl PerspectiveParams {
    /// The geometric keys of a [`Hyp`](super::Hyp).
    pub fn from_hyp(hyp: &super::Hyp) -> Self {
        Self {
            degrees: hyp.degrees,
            translate: hyp.translate,
            scale: hyp.scale,
            shear: hyp.shear,
            perspective: hyp.perspective,
        }
    }
}

/// One draw of the random transform: everything [`random_perspective`] picks at random.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PerspectiveDraw {
    /// `P[2][0]`, the x perspective term.
    pub perspective_x: f64,
    /// `P[2][1]`, the y perspective term.
    pub perspective_y: f64,
    /// Rotation in degrees (counter-clockwise on screen, as `getRotationMatrix2D`).
    pub angle: f64,
    /// Scale gain.
    pub scale: f64,
    /// x shear in degrees (`S[0][1] = tan(shear_x)`).
    pub shear_x: f64,
    /// y shear in degrees (`S[1][0] = tan(shear_y)`).
    pub shear_y: f64,
    /// Where the input centre lands, as a fraction of the output width (0.5 = centred).
    pub translate_x: f64,
    /// Where the input centre lands, as a fraction of the output height (0.5 = centred).
    pub translate_y: f64,
}

impl Default for PerspectiveDraw {
    /// The identity draw (with a zero border, `M` is the identity).
    fn default() -> Self {
        Self {
            perspective_x: 0.0,
            perspective_y: 0.0,
            angle: 0.0,
            scale: 1.0,
            shear_x: 0.0,
            shear_y: 0.0,
            translate_x: 0.5,
            translate_y: 0.5,
        }
    }
}

impl PerspectiveDraw {
    /// Draws the transform in ultralytics' order: perspective x, y, angle, scale, shear x, y,
    /// translation x, y (each `uniform(lo, hi)`).
    pub fn sample(params: &PerspectiveParams, rng: &mut impl Rng) -> Self {
        let p = params.perspective;
        let perspective_x = uniform(rng, -p, p);
        let perspective_y = uniform(rng, -p, p);
        let angle = uniform(rng, -params.degrees, params.degrees);
        let scale = uniform(rng, 1.0 - params.scale, 1.0 + params.scale);
        let shear_x = uniform(rng, -params.shear, params.shear);
        let shear_y = uniform(rng, -params.shear, params.shear);
        let translate_x = uniform(rng, 0.5 - params.translate, 0.5 + params.translate);
        let translate_y = uniform(rng, 0.5 - params.translate, 0.5 + params.translate);
        Self { perspective_x, perspective_y, angle, scale, shear_x, shear_y, translate_x, translate_y }
    }

    /// Whether the transform has a perspective term (warped with a homography, boxes divided by w).
    pub fn is_perspective(&self) -> bool {
        self.perspective_x != 0.0 || self.perspective_y != 0.0
    }

    /// `M = T @ S @ R @ P @ C` for an `in_w x in_h` input and an `out_w x out_h` output.
    pub fn matrix(&self, in_w: u32, in_h: u32, out_w: u32, out_h: u32) -> Mat3 {
        let mut c = IDENTITY;
        c[0][2] = -f64::from(in_w) / 2.0;
        c[1][2] = -f64::from(in_h) / 2.0;
        let mut p = IDENTITY;
        p[2][0] = self.perspective_x;
        p[2][1] = self.perspective_y;
        let a = self.angle.to_radians();
        let (alpha, beta) = (a.cos() * self.scale, a.sin() * self.scale);
        let r = [[alpha, beta, 0.0], [-beta, alpha, 0.0], [0.0, 0.0, 1.0]];
        let mut s = IDENTITY;
        s[0][1] = (self.shear_x * std::f64::consts::PI / 180.0).tan();
        s[1][0] = (self.shear_y * std::f64::consts::PI / 180.0).tan();
        let mut t = IDENTITY;
        t[0][2] = self.translate_x * f64::from(out_w);
        t[1][2] = self.translate_y * f64::from(out_h);
        mat3_mul(&t, &mat3_mul(&s, &mat3_mul(&r, &mat3_mul(&p, &c))))
    }
}

/// Ultralytics' `box_candidates` with its defaults (`wh_thr = 2`, `ar_thr = 100`,
/// `area_thr = 0.1`): keeps a box whose width and height after augmentation exceed 2 px, whose area
/// is more than 10 % of the area before (`before` already multiplied by the scale gain), and whose
/// aspect ratio stays below 100. Boxes are `[x1, y1, x2, y2]`.
pub fn box_candidates(before: [f64; 4], after: [f64; 4]) -> bool {
    box_candidates_with(before, after, 2.0, 100.0, 0.1)
}

/// [`box_candidates`] with explicit thresholds (`eps = 1e-16` as ultralytics).
pub fn box_candidates_with(before: [f64; 4], after: [f64; 4], wh_thr: f64, ar_thr: f64, area_thr: f64) -> bool {
    const EPS: f64 = 1e-16;
    let (w1, h1) = (before[2] - before[0], before[3] - before[1]);
    let (w2, h2) = (after[2] - after[0], after[3] - after[1]);
    let ar = (w2 / (h2 + EPS)).max(h2 / (w2 + EPS));
    w2 > wh_thr && h2 > wh_thr && w2 * h2 / (w1 * h1 + EPS) > area_thr && ar < ar_thr
}

/// Transforms boxes by `m` (corners → min/max, divided by w when `perspective`), clips them to
/// `width x height` and keeps the [`box_candidates`] against the originals times `scale`.
pub fn transform_boxes(
    boxes: &[LabeledBox],
    m: &Mat3,
    perspective: bool,
    width: u32,
    height: u32,
    scale: f64,
) -> Vec<LabeledBox> {
    let (wf, hf) = (f64::from(width), f64::from(height));
    let mut out = Vec::with_capacity(boxes.len());
    for b in boxes {
        let [x1, y1, x2, y2] = b.xyxy.map(f64::from);
        let (mut xmin, mut ymin, mut xmax, mut ymax) =
            (f64::INFINITY, f64::INFINITY, f64::NEG_INFINITY, f64::NEG_INFINITY);
        for (x, y) in [(x1, y1), (x2, y2), (x1, y2), (x2, y1)] {
            let mut tx = m[0][0] * x + m[0][1] * y + m[0][2];
            let mut ty = m[1][0] * x + m[1][1] * y + m[1][2];
            if perspective {
                let w = m[2][0] * x + m[2][1] * y + m[2][2];
                tx /= w;
                ty /= w;
            }
            xmin = xmin.min(tx);
            ymin = ymin.min(ty);
            xmax = xmax.max(tx);
            ymax = ymax.max(ty);
        }
        let new = [xmin.clamp(0.0, wf), ymin.clamp(0.0, hf), xmax.clamp(0.0, wf), ymax.clamp(0.0, hf)];
        let before = [x1 * scale, y1 * scale, x2 * scale, y2 * scale];
        if box_candidates(before, new) {
            out.push(LabeledBox { class_id: b.class_id, xyxy: new.map(|v| v as f32) });
        }
    }
    out
}

/// Applies a fixed [`PerspectiveDraw`] to `sample`: the output is the input grown by
/// `2 * border` = `(rows, cols)` (negative to crop), pixels warped, boxes transformed and filtered.
pub fn apply_perspective(sample: &Sample, draw: &PerspectiveDraw, border: (i32, i32)) -> Sample {
    let (in_w, in_h) = sample.image.dimensions();
    let out_h = (i64::from(in_h) + 2 * i64::from(border.0)).max(0) as u32;
    let out_w = (i64::from(in_w) + 2 * i64::from(border.1)).max(0) as u32;
    let m = draw.matrix(in_w, in_h, out_w, out_h);
    let perspective = draw.is_perspective();
    let image = if border == (0, 0) && m == IDENTITY {
        sample.image.clone()
    } else if perspective {
        warp_perspective(&sample.image, &m, out_w, out_h, BORDER_VALUE)
    } else {
        warp_affine(&sample.image, &m, out_w, out_h, BORDER_VALUE)
    };
    let boxes = transform_boxes(&sample.boxes, &m, perspective, out_w, out_h, draw.scale);
    Sample { image, boxes }
}

/// Ultralytics `random_perspective(im, targets, degrees, translate, scale, shear, perspective,
/// border)`: draws a [`PerspectiveDraw`] from `params` and applies it. Returns the augmented sample
/// and the draw.
pub fn random_perspective(
    sample: &Sample,
    params: &PerspectiveParams,
    border: (i32, i32),
    rng: &mut impl Rng,
) -> (Sample, PerspectiveDraw) {
    let draw = PerspectiveDraw::sample(params, rng);
    (apply_perspective(sample, &draw, border), draw)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn box_candidates_by_hand() {
        let b = [0.0, 0.0, 10.0, 10.0];
        assert!(box_candidates(b, [0.0, 0.0, 10.0, 10.0]));
        // Width must exceed 2 px (strictly).
        assert!(!box_candidates(b, [0.0, 0.0, 2.0, 10.0]));
        assert!(box_candidates(b, [0.0, 0.0, 2.1, 10.0]));
        // Area ratio must exceed 0.1: 3 x 3 = 9 % of 100 fails, 3.2 x 3.2 = 10.24 % passes.
        assert!(!box_candidates(b, [0.0, 0.0, 3.0, 3.0]));
        assert!(box_candidates(b, [0.0, 0.0, 3.2, 3.2]));
        // Aspect ratio must stay below 100.
        let long = [0.0, 0.0, 310.0, 3.0];
        assert!(box_candidates(long, [0.0, 0.0, 299.0, 3.0]));
        assert!(!box_candidates(long, [0.0, 0.0, 300.0, 3.0]));
        // Degenerate original box: any surviving box passes the area test.
        assert!(box_candidates([5.0, 5.0, 5.0, 5.0], [0.0, 0.0, 3.0, 3.0]));
    }

    #[test]
    fn identity_draw_is_the_identity_matrix() {
        let d = PerspectiveDraw::default();
        assert_eq!(d.matrix(64, 48, 64, 48), IDENTITY);
        // The mosaic crop: a 2s canvas into s, centred.
        let m = d.matrix(128, 128, 64, 64);
        assert_eq!(m[0][2], -32.0);
        assert_eq!(m[1][2], -32.0);
    }
}
