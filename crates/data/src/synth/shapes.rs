//! The object classes of the synthetic datasets — shape kinds and fill styles — and how one
//! object is built ([`ShapeSpec`] → [`Geometry`]) and painted ([`Paint`]).

use image::RgbImage;
use serde::{Deserialize, Serialize};

use super::geometry::{Geometry, Mask, Vec2, ffloor, rasterize, rotate, to_byte};

/// The shape kinds, in class order: with `K ≤ 10` classes, class `k` is `ShapeKind::ALL[k]`.
///
/// Several are deliberately alike at small sizes (star / cross, hexagon / circle, crescent /
/// semicircle, triangle / arrow).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ShapeKind {
    /// A filled ellipse (aspect 0.5–2).
    Circle,
    /// A rectangle (aspect 0.4–2.5).
    Rectangle,
    /// An isosceles triangle.
    Triangle,
    /// A five-pointed star.
    Star,
    /// A plus-shaped cross (rotated, also an X).
    Cross,
    /// A hexagon.
    Hexagon,
    /// A circular ring (annulus), hole 50–75 % of the radius.
    Ring,
    /// A crescent moon.
    Crescent,
    /// A block arrow.
    Arrow,
    /// A half disk.
    Semicircle,
}

impl ShapeKind {
    /// Every kind, in class order.
    pub const ALL: [ShapeKind; 10] = [
        ShapeKind::Circle,
        ShapeKind::Rectangle,
        ShapeKind::Triangle,
        ShapeKind::Star,
        ShapeKind::Cross,
        ShapeKind::Hexagon,
        ShapeKind::Ring,
        ShapeKind::Crescent,
        ShapeKind::Arrow,
        ShapeKind::Semicircle,
    ];

    /// Lower-case name, as used in class names.
    pub fn name(self) -> &'static str {
        match self {
            ShapeKind::Circle => "circle",
            ShapeKind::Rectangle => "rectangle",
            ShapeKind::Triangle => "triangle",
            ShapeKind::Star => "star",
            ShapeKind::Cross => "cross",
            ShapeKind::Hexagon => "hexagon",
            ShapeKind::Ring => "ring",
            ShapeKind::Crescent => "crescent",
            ShapeKind::Arrow => "arrow",
            ShapeKind::Semicircle => "semicircle",
        }
    }

    /// The range of width/height aspect ratios drawn for this kind (before rotation).
    pub fn aspect_range(self) -> (f32, f32) {
        match self {
            ShapeKind::Circle => (0.5, 2.0),
            ShapeKind::Rectangle => (0.4, 2.5),
            ShapeKind::Triangle | ShapeKind::Cross | ShapeKind::Arrow => (0.7, 1.5),
            ShapeKind::Star | ShapeKind::Hexagon => (0.8, 1.25),
            ShapeKind::Ring | ShapeKind::Crescent | ShapeKind::Semicircle => (1.0, 1.0),
        }
    }
}

/// How an object's inside is painted. With more classes than shape kinds, the class is the pair
/// (kind, style); otherwise the style is random and carries no class information.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FillStyle {
    /// One colour.
    Solid,
    /// Parallel stripes of two colours along the object's local axis.
    Striped,
    /// A checkerboard of two colours in the object's frame.
    Checkered,
    /// Two halves of different colours.
    Twotone,
}

impl FillStyle {
    /// Every style, in class order (classes `10·s .. 10·s + 9` use `ALL[s]`).
    pub const ALL: [FillStyle; 4] = [FillStyle::Solid, FillStyle::Striped, FillStyle::Checkered, FillStyle::Twotone];

    /// Lower-case name; class names are `"{style}_{kind}"` for every style but solid.
    pub fn name(self) -> &'static str {
        match self {
            FillStyle::Solid => "solid",
            FillStyle::Striped => "striped",
            FillStyle::Checkered => "checkered",
            FillStyle::Twotone => "twotone",
        }
    }
}

/// The most classes a synthetic dataset can have: every (kind, style) pair.
pub const MAX_CLASSES: usize = ShapeKind::ALL.len() * FillStyle::ALL.len();

/// The shape kind and, when it is part of the class, the fill style of class `class_id` in a
/// dataset of `classes` classes: `None` for the style means "random" (`classes ≤ 10`).
pub fn class_shape(class_id: usize, classes: usize) -> (ShapeKind, Option<FillStyle>) {
    let n = ShapeKind::ALL.len();
    let kind = ShapeKind::ALL[class_id % n];
    if classes <= n { (kind, None) } else { (kind, Some(FillStyle::ALL[(class_id / n) % FillStyle::ALL.len()])) }
}

/// Class names of a dataset of `classes` classes (`classes ≤` [`MAX_CLASSES`]): `circle`,
/// `rectangle`, … and, past ten classes, `striped_circle`, `checkered_circle`, ….
pub fn class_names(classes: usize) -> Vec<String> {
    (0..classes.min(MAX_CLASSES))
        .map(|c| match class_shape(c, classes) {
            (kind, Some(style)) if style != FillStyle::Solid => format!("{}_{}", style.name(), kind.name()),
            (kind, _) => kind.name().to_string(),
        })
        .collect()
}

/// The geometry of one object: kind, placement and shape parameters.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ShapeSpec {
    /// Which shape.
    pub kind: ShapeKind,
    /// Centre `[x, y]` in pixels (the centre of the circumscribing circle before aspect).
    pub center: Vec2,
    /// Diameter of the circumscribing circle, in pixels, before the aspect stretch.
    pub size: f32,
    /// Width/height stretch along the local axes (`√aspect` and `1/√aspect`); 1 for none.
    pub aspect: f32,
    /// Rotation in radians.
    pub angle: f32,
    /// A kind-specific proportion in `0..=1`: star inner radius, cross arm width, ring hole,
    /// crescent bite, arrow shaft width (ignored by the other kinds).
    pub detail: f32,
}

impl ShapeSpec {
    /// The shape in image pixels.
    pub fn geometry(&self) -> Geometry {
        let r = self.size / 2.0;
        let t = self.detail.clamp(0.0, 1.0);
        let (sx, sy) = (self.aspect.sqrt(), 1.0 / self.aspect.sqrt());
        let sc = self.angle.sin_cos();
        let place = |pts: &[Vec2]| -> Geometry {
            Geometry::Polygon(
                pts.iter()
                    .map(|p| {
                        let q = rotate([p[0] * r * sx, p[1] * r * sy], sc);
                        [self.center[0] + q[0], self.center[1] + q[1]]
                    })
                    .collect(),
            )
        };
        let regular = |n: usize, radius: &dyn Fn(usize) -> f32, phase: f32| -> Vec<Vec2> {
            (0..n)
                .map(|i| {
                    let a = phase + i as f32 * std::f32::consts::TAU / n as f32;
                    [radius(i) * a.cos(), radius(i) * a.sin()]
                })
                .collect()
        };
        let up = -std::f32::consts::FRAC_PI_2;
        match self.kind {
            ShapeKind::Circle => Geometry::Ellipse { center: self.center, radii: [r * sx, r * sy], angle: self.angle },
            ShapeKind::Rectangle => place(&[[-0.7, -0.7], [0.7, -0.7], [0.7, 0.7], [-0.7, 0.7]]),
            ShapeKind::Triangle => place(&regular(3, &|_| 1.0, up)),
            ShapeKind::Star => {
                let inner = 0.38 + 0.17 * t;
                place(&regular(10, &|i| if i % 2 == 0 { 1.0 } else { inner }, up))
            }
            ShapeKind::Cross => {
                // Arm half-width b, arm ends on the unit circle.
                let b = 0.22 + 0.14 * t;
                let l = (1.0 - b * b).sqrt();
                place(&[
                    [b, -l],
                    [b, -b],
                    [l, -b],
                    [l, b],
                    [b, b],
                    [b, l],
                    [-b, l],
                    [-b, b],
                    [-l, b],
                    [-l, -b],
                    [-b, -b],
                    [-b, -l],
                ])
            }
            ShapeKind::Hexagon => place(&regular(6, &|_| 1.0, 0.0)),
            ShapeKind::Ring => {
                // Hole 50–75 % of the radius, the band at least 1.5 px wide.
                let inner = (r * (0.75 - 0.25 * t)).min(r - 1.5).max(0.0);
                Geometry::Ring { center: self.center, outer: r, inner }
            }
            ShapeKind::Crescent => Geometry::Crescent {
                center: self.center,
                outer: r,
                inner: r * (0.75 + 0.2 * t),
                offset: r * (0.6 - 0.15 * t),
                angle: self.angle,
            },
            ShapeKind::Arrow => {
                let w = 0.2 + 0.12 * t;
                let tail = -(1.0 - w * w).sqrt();
                place(&[[tail, -w], [0.1, -w], [0.1, -0.7], [1.0, 0.0], [0.1, 0.7], [0.1, w], [tail, w]])
            }
            ShapeKind::Semicircle => Geometry::HalfDisk { center: self.center, radius: r, angle: self.angle },
        }
    }
}

/// How an object is painted: fill style and colours, in the object's own frame.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Paint {
    /// Fill pattern.
    pub style: FillStyle,
    /// Main colour (RGB).
    pub color: [u8; 3],
    /// Second colour of the patterned styles.
    pub color2: [u8; 3],
    /// Pattern period in pixels (stripe pair, checker cell pair).
    pub period: f32,
    /// Brightness ramp across the object: the colour is scaled by `1 + shade · u` where `u` runs
    /// from −1 to 1 along the local `x` axis (0 for flat colour).
    pub shade: f32,
    /// Opacity in `0..=1` (1: opaque).
    pub alpha: f32,
}

impl Paint {
    /// An opaque, flat, solid colour.
    pub fn solid(color: [u8; 3]) -> Self {
        Paint { style: FillStyle::Solid, color, color2: color, period: 4.0, shade: 0.0, alpha: 1.0 }
    }

    /// The colour at local coordinates `uv` (pixels, relative to the centre, unrotated) of an
    /// object of radius `r`.
    #[inline]
    fn color_at(&self, uv: Vec2, r: f32) -> [f32; 3] {
        let parity = |v: f32| ffloor(v) as i32 & 1 == 1;
        let second = match self.style {
            FillStyle::Solid => false,
            FillStyle::Striped => parity(uv[1] / self.period),
            FillStyle::Checkered => {
                let cell = 2.0 / self.period;
                (ffloor(uv[0] * cell) as i32 + ffloor(uv[1] * cell) as i32) & 1 == 1
            }
            FillStyle::Twotone => uv[0] < 0.0,
        };
        let c = if second { self.color2 } else { self.color };
        let k = 1.0 + self.shade * (uv[0] / r.max(1e-3)).clamp(-1.0, 1.0);
        c.map(|v| f32::from(v) * k)
    }
}

/// Composites `paint` over `img` through the coverage `mask` of an object with centre `center`,
/// radius `radius` and rotation `angle` (the frame the pattern is drawn in).
pub fn paint_mask(img: &mut RgbImage, mask: &Mask, paint: &Paint, center: Vec2, radius: f32, angle: f32) {
    let (s, c) = angle.sin_cos();
    let width = img.width() as usize;
    let raw: &mut [u8] = img.as_mut();
    let flat = (paint.style == FillStyle::Solid && paint.shade == 0.0).then(|| paint.color.map(f32::from));
    for row in 0..mask.h as usize {
        let y = mask.y0 as usize + row;
        let dy = y as f32 + 0.5 - center[1];
        let covs = &mask.cov[row * mask.w as usize..(row + 1) * mask.w as usize];
        for (col, &cov) in covs.iter().enumerate() {
            if cov <= 0.0 {
                continue;
            }
            let x = mask.x0 as usize + col;
            let dx = x as f32 + 0.5 - center[0];
            let fg = flat.unwrap_or_else(|| paint.color_at([c * dx + s * dy, -s * dx + c * dy], radius));
            let a = cov * paint.alpha;
            let px = &mut raw[3 * (y * width + x)..3 * (y * width + x) + 3];
            for (v, f) in px.iter_mut().zip(fg) {
                let bg = f32::from(*v);
                *v = to_byte(bg + (f - bg) * a);
            }
        }
    }
}

/// Draws one object on `img` (anti-aliased) and returns its exact, unclipped bounding box
/// `[x1, y1, x2, y2]` in pixels. A convenience for tests and examples; the scene generator
/// uses [`rasterize`] and [`paint_mask`] directly.
pub fn draw_shape(img: &mut RgbImage, spec: &ShapeSpec, paint: &Paint) -> [f32; 4] {
    let geom = spec.geometry();
    let mut mask = Mask::default();
    rasterize(&geom, None, img.width(), img.height(), &mut mask);
    paint_mask(img, &mask, paint, spec.center, spec.size / 2.0, spec.angle);
    geom.bbox()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn class_names_and_mapping() {
        assert_eq!(class_names(3), ["circle", "rectangle", "triangle"]);
        let n = class_names(MAX_CLASSES);
        assert_eq!(n.len(), 40);
        assert_eq!(n[9], "semicircle");
        assert_eq!(n[10], "striped_circle");
        assert_eq!(n[39], "twotone_semicircle");
        assert_eq!(class_shape(13, 20), (ShapeKind::Star, Some(FillStyle::Striped)));
        assert_eq!(class_shape(3, 8), (ShapeKind::Star, None));
        let mut unique = n.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), 40);
    }

    #[test]
    fn every_kind_has_positive_area_and_a_box_around_its_centre() {
        for kind in ShapeKind::ALL {
            for detail in [0.0, 1.0] {
                let spec = ShapeSpec { kind, center: [50.0, 50.0], size: 40.0, aspect: 1.3, angle: 0.4, detail };
                let g = spec.geometry();
                assert!(g.area() > 100.0, "{kind:?} area {}", g.area());
                let bb = g.bbox();
                assert!(bb[0] < 50.0 && bb[2] > 50.0 && bb[1] < 50.0 && bb[3] > 50.0, "{kind:?} {bb:?}");
                assert!(bb[2] - bb[0] <= 40.0 * 1.3f32.sqrt() + 1e-3, "{kind:?} {bb:?}");
            }
        }
    }
}
