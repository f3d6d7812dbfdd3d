//! Shapes in image pixels as signed distance functions (negative inside), their exact bounding
//! boxes and areas, and anti-aliased rasterisation into a coverage mask.
//!
//! Coverage of a pixel is `clamp(0.5 - d, 0, 1)` where `d` is the signed distance from the pixel
//! centre to the shape: one pixel of linear anti-aliasing, centred on the edge. A pixel is touched
//! only when its centre is closer than half a pixel to the shape, so the touched pixels never reach
//! a full pixel beyond the exact [`Geometry::bbox`] — which is what makes the labels exact.
//!
//! Every distance here is exact (1-Lipschitz) except the ellipse's, a first-order approximation
//! that is exact on the outline only; [`rasterize`] uses the Lipschitz property to fill or skip
//! whole 8×8 tiles from one evaluation at the tile centre, so large shapes cost about their
//! perimeter. Filled ellipses are therefore anti-aliased by 4×4 sub-sampling of the exact
//! inside test instead (touching only pixels that overlap the ellipse); the approximate distance
//! serves only unlabelled clutter (outlines, soft blobs).

use std::f32::consts::PI;

/// A point or vector `[x, y]` in pixels (x right, y down).
pub type Vec2 = [f32; 2];

/// `x.floor()` without the libm call that baseline x86-64 makes of it (`|x| < 2³¹`).
#[inline]
pub(crate) fn ffloor(x: f32) -> f32 {
    let t = x as i32 as f32;
    if t > x { t - 1.0 } else { t }
}

/// A colour channel in `0..=255` rounded to the nearest byte (`v.round()` without libm).
#[inline]
pub(crate) fn to_byte(v: f32) -> u8 {
    (v.clamp(0.0, 255.0) + 0.5) as i32 as u8
}

/// A shape in image pixels. Angles are in radians; a rotation by `angle` maps the shape's local
/// `+x` axis to `(cos angle, sin angle)`.
#[derive(Debug, Clone, PartialEq)]
pub enum Geometry {
    /// A simple (non-self-intersecting, possibly non-convex) polygon; vertices in pixels.
    Polygon(Vec<Vec2>),
    /// A filled ellipse with semi-axes `radii` along its local axes.
    Ellipse {
        /// Centre in pixels.
        center: Vec2,
        /// Semi-axes `[rx, ry]` in pixels (both positive).
        radii: Vec2,
        /// Rotation of the local `x` axis.
        angle: f32,
    },
    /// A circular ring (annulus) between radii `inner < outer`.
    Ring {
        /// Centre in pixels.
        center: Vec2,
        /// Outer radius in pixels.
        outer: f32,
        /// Inner (hole) radius in pixels.
        inner: f32,
    },
    /// A crescent: the disk `(center, outer)` minus the disk of radius `inner` centred `offset`
    /// pixels from `center` along the rotated local `x` axis. Needs `offset + inner > outer` and
    /// `offset < outer + inner` (the disks overlap without one containing the other).
    Crescent {
        /// Centre of the outer disk in pixels.
        center: Vec2,
        /// Radius of the outer disk.
        outer: f32,
        /// Radius of the removed disk.
        inner: f32,
        /// Distance between the two centres.
        offset: f32,
        /// Direction of the removed disk's centre.
        angle: f32,
    },
    /// The half of the disk `(center, radius)` on the local `+y` side of its rotated diameter.
    HalfDisk {
        /// Centre of the full disk in pixels.
        center: Vec2,
        /// Radius in pixels.
        radius: f32,
        /// Rotation of the local `x` axis (the diameter's direction).
        angle: f32,
    },
    /// A thick line segment with round caps (a capsule).
    Segment {
        /// First end point.
        a: Vec2,
        /// Second end point.
        b: Vec2,
        /// Half the line width in pixels.
        half_width: f32,
    },
}

fn sub(a: Vec2, b: Vec2) -> Vec2 {
    [a[0] - b[0], a[1] - b[1]]
}

fn dot(a: Vec2, b: Vec2) -> f32 {
    a[0] * b[0] + a[1] * b[1]
}

fn length(a: Vec2) -> f32 {
    dot(a, a).sqrt()
}

/// `p` rotated by `-angle` about the origin (image → local frame), given `(sin, cos)` of `angle`.
fn unrotate(p: Vec2, (s, c): (f32, f32)) -> Vec2 {
    [c * p[0] + s * p[1], -s * p[0] + c * p[1]]
}

/// `p` rotated by `angle` (local → image frame), given `(sin, cos)` of `angle`.
pub(crate) fn rotate(p: Vec2, (s, c): (f32, f32)) -> Vec2 {
    [c * p[0] - s * p[1], s * p[0] + c * p[1]]
}

/// Area of the lens where disks of radii `r1`, `r2` with centres `d` apart overlap.
fn lens_area(r1: f32, r2: f32, d: f32) -> f32 {
    let (r1, r2, d) = (f64::from(r1), f64::from(r2), f64::from(d));
    if d >= r1 + r2 {
        return 0.0;
    }
    if d <= (r1 - r2).abs() {
        return (std::f64::consts::PI * r1.min(r2).powi(2)) as f32;
    }
    let a1 = ((d * d + r1 * r1 - r2 * r2) / (2.0 * d * r1)).clamp(-1.0, 1.0).acos();
    let a2 = ((d * d + r2 * r2 - r1 * r1) / (2.0 * d * r2)).clamp(-1.0, 1.0).acos();
    let k = ((-d + r1 + r2) * (d + r1 - r2) * (d - r1 + r2) * (d + r1 + r2)).max(0.0).sqrt();
    (r1 * r1 * a1 + r2 * r2 * a2 - 0.5 * k) as f32
}

/// One polygon edge with what the distance loop needs precomputed.
#[derive(Debug, Clone, Copy)]
struct Edge {
    /// Start vertex `v[i]`.
    v: Vec2,
    /// Edge vector `v[i-1] - v[i]`.
    e: Vec2,
    /// `1 / |e|²` (0 for a degenerate edge).
    inv_len2: f32,
    /// `y` of the other end, `v[i-1].y`.
    y_prev: f32,
}

fn polygon_edges(v: &[Vec2]) -> Vec<Edge> {
    let n = v.len();
    (0..n)
        .map(|i| {
            let j = (i + n - 1) % n;
            let e = sub(v[j], v[i]);
            let l2 = dot(e, e);
            Edge { v: v[i], e, inv_len2: if l2 > 0.0 { 1.0 / l2 } else { 0.0 }, y_prev: v[j][1] }
        })
        .collect()
}

/// Exact signed distance to a simple polygon (Inigo Quilez's formulation: nearest edge for the
/// magnitude, crossing parity for the sign).
fn polygon_distance(edges: &[Edge], p: Vec2) -> f32 {
    let mut d2 = f32::INFINITY;
    let mut inside = false;
    for ed in edges {
        let w = sub(p, ed.v);
        let t = (dot(w, ed.e) * ed.inv_len2).clamp(0.0, 1.0);
        let b = [w[0] - ed.e[0] * t, w[1] - ed.e[1] * t];
        d2 = d2.min(dot(b, b));
        let c1 = p[1] >= ed.v[1];
        let c2 = p[1] < ed.y_prev;
        let c3 = ed.e[0] * w[1] > ed.e[1] * w[0];
        if (c1 && c2 && c3) || (!c1 && !c2 && !c3) {
            inside = !inside;
        }
    }
    let d = d2.sqrt();
    if inside { -d } else { d }
}

/// Approximate signed distance to an axis-aligned ellipse at the origin: exact on the outline
/// and to first order near it, which is all anti-aliasing needs.
fn ellipse_distance(p: Vec2, r: Vec2) -> f32 {
    let k0 = length([p[0] / r[0], p[1] / r[1]]);
    let k1 = length([p[0] / (r[0] * r[0]), p[1] / (r[1] * r[1])]);
    if k1 <= f32::MIN_POSITIVE {
        return -r[0].min(r[1]);
    }
    k0 * (k0 - 1.0) / k1
}

/// Exact signed distance to the crescent `disk(0, ra) − disk((d, 0), rb)` (after Inigo Quilez's
/// `sdMoon`).
fn crescent_distance(p: Vec2, d: f32, ra: f32, rb: f32) -> f32 {
    let p = [p[0], p[1].abs()];
    let a = (ra * ra - rb * rb + d * d) / (2.0 * d);
    let b = (ra * ra - a * a).max(0.0).sqrt();
    if d * (p[0] * b - p[1] * a) > d * d * (b - p[1]).max(0.0) {
        return length([p[0] - a, p[1] - b]);
    }
    (length(p) - ra).max(-(length([p[0] - d, p[1]]) - rb))
}

/// Exact signed distance to the half disk `{|p| ≤ r, p.y ≥ 0}`.
fn half_disk_distance(p: Vec2, r: f32) -> f32 {
    if p[1] >= 0.0 {
        let l = length(p);
        if l >= r { l - r } else { -(r - l).min(p[1]) }
    } else if p[0].abs() <= r {
        -p[1]
    } else {
        length([p[0].abs() - r, p[1]])
    }
}

fn segment_distance(p: Vec2, a: Vec2, b: Vec2, hw: f32) -> f32 {
    let pa = sub(p, a);
    let ba = sub(b, a);
    let l2 = dot(ba, ba);
    let t = if l2 > 0.0 { (dot(pa, ba) / l2).clamp(0.0, 1.0) } else { 0.0 };
    length([pa[0] - ba[0] * t, pa[1] - ba[1] * t]) - hw
}

/// Extends `bb` (`[x1, y1, x2, y2]`) to contain `p`.
fn include(bb: &mut [f32; 4], p: Vec2) {
    bb[0] = bb[0].min(p[0]);
    bb[1] = bb[1].min(p[1]);
    bb[2] = bb[2].max(p[0]);
    bb[3] = bb[3].max(p[1]);
}

const EMPTY_BOX: [f32; 4] = [f32::INFINITY, f32::INFINITY, f32::NEG_INFINITY, f32::NEG_INFINITY];

/// The four points of a circle that are extreme in `x` or `y`.
fn circle_extremes(c: Vec2, r: f32) -> [Vec2; 4] {
    [[c[0] - r, c[1]], [c[0] + r, c[1]], [c[0], c[1] - r], [c[0], c[1] + r]]
}

/// Largest distance, in pixels, between a curve and the polyline standing for it in
/// [`Geometry::clipped_bbox`].
const SAGITTA: f32 = 0.002;

/// Sutherland–Hodgman: the part of the closed polygon `poly` with `p[axis] ≥ bound`
/// (`keep_above`) or `≤ bound`. Valid for non-convex polygons too (pieces stay joined by
/// zero-width edges along the bound, which do not change the bounding box).
fn clip_half_plane(poly: &[Vec2], axis: usize, bound: f32, keep_above: bool) -> Vec<Vec2> {
    let inside = |p: &Vec2| if keep_above { p[axis] >= bound } else { p[axis] <= bound };
    let mut out = Vec::with_capacity(poly.len() + 4);
    for (i, cur) in poly.iter().enumerate() {
        let prev = &poly[(i + poly.len() - 1) % poly.len()];
        let (ci, pi) = (inside(cur), inside(prev));
        if ci != pi {
            let t = (bound - prev[axis]) / (cur[axis] - prev[axis]);
            let mut x = [prev[0] + (cur[0] - prev[0]) * t, prev[1] + (cur[1] - prev[1]) * t];
            x[axis] = bound;
            out.push(x);
        }
        if ci {
            out.push(*cur);
        }
    }
    out
}

/// A distance function ready to be evaluated many times (polygon edges precomputed).
enum Prepared<'a> {
    Polygon(Vec<Edge>),
    Other(&'a Geometry, (f32, f32)),
}

impl Prepared<'_> {
    fn distance(&self, p: Vec2) -> f32 {
        match self {
            Prepared::Polygon(edges) => polygon_distance(edges, p),
            Prepared::Other(g, sc) => match **g {
                Geometry::Polygon(_) => unreachable!("polygons are prepared"),
                Geometry::Ellipse { center, radii, .. } => ellipse_distance(unrotate(sub(p, center), *sc), radii),
                Geometry::Ring { center, outer, inner } => {
                    (length(sub(p, center)) - 0.5 * (outer + inner)).abs() - 0.5 * (outer - inner)
                }
                Geometry::Crescent { center, outer, inner, offset, .. } => {
                    crescent_distance(unrotate(sub(p, center), *sc), offset, outer, inner)
                }
                Geometry::HalfDisk { center, radius, .. } => half_disk_distance(unrotate(sub(p, center), *sc), radius),
                Geometry::Segment { a, b, half_width } => segment_distance(p, a, b, half_width),
            },
        }
    }
}

impl Geometry {
    fn angle(&self) -> f32 {
        match *self {
            Geometry::Ellipse { angle, .. } | Geometry::Crescent { angle, .. } | Geometry::HalfDisk { angle, .. } => {
                angle
            }
            _ => 0.0,
        }
    }

    fn prepare(&self) -> Prepared<'_> {
        match self {
            Geometry::Polygon(v) => Prepared::Polygon(polygon_edges(v)),
            g => Prepared::Other(g, g.angle().sin_cos()),
        }
    }

    /// Signed distance in pixels from `p` to the outline: negative inside, positive outside.
    /// Exact for every shape but [`Geometry::Ellipse`] (exact on the outline, approximate away
    /// from it).
    pub fn distance(&self, p: Vec2) -> f32 {
        self.prepare().distance(p)
    }

    /// Whether [`Geometry::distance`] is exact (so 1-Lipschitz, which tile skipping relies on).
    pub fn exact_distance(&self) -> bool {
        !matches!(self, Geometry::Ellipse { .. })
    }

    /// The tight axis-aligned bounding box `[x1, y1, x2, y2]` of the whole shape in pixels
    /// (not clipped to any image), computed analytically.
    pub fn bbox(&self) -> [f32; 4] {
        let mut bb = EMPTY_BOX;
        match *self {
            Geometry::Polygon(ref v) => v.iter().for_each(|&p| include(&mut bb, p)),
            Geometry::Ellipse { center, radii, angle } => {
                let (s, c) = angle.sin_cos();
                let hx = ((radii[0] * c).powi(2) + (radii[1] * s).powi(2)).sqrt();
                let hy = ((radii[0] * s).powi(2) + (radii[1] * c).powi(2)).sqrt();
                bb = [center[0] - hx, center[1] - hy, center[0] + hx, center[1] + hy];
            }
            Geometry::Ring { center, outer, .. } => {
                bb = [center[0] - outer, center[1] - outer, center[0] + outer, center[1] + outer];
            }
            Geometry::Crescent { center, outer, inner, offset, angle } => {
                // The outline is an arc of each circle: its extremes are the arc ends (the two
                // tips) and whichever of each circle's axis extremes lie on the kept arc.
                let sc = angle.sin_cos();
                let ci = [center[0] + offset * sc.1, center[1] + offset * sc.0];
                let a = (outer * outer - inner * inner + offset * offset) / (2.0 * offset);
                let b = (outer * outer - a * a).max(0.0).sqrt();
                for tip in [[a, b], [a, -b]] {
                    let t = rotate(tip, sc);
                    include(&mut bb, [center[0] + t[0], center[1] + t[1]]);
                }
                for p in circle_extremes(center, outer) {
                    if length(sub(p, ci)) >= inner {
                        include(&mut bb, p);
                    }
                }
                for p in circle_extremes(ci, inner) {
                    if length(sub(p, center)) <= outer {
                        include(&mut bb, p);
                    }
                }
            }
            Geometry::HalfDisk { center, radius, angle } => {
                let sc = angle.sin_cos();
                for end in [[radius, 0.0], [-radius, 0.0]] {
                    let t = rotate(end, sc);
                    include(&mut bb, [center[0] + t[0], center[1] + t[1]]);
                }
                for p in circle_extremes(center, radius) {
                    if unrotate(sub(p, center), sc)[1] >= 0.0 {
                        include(&mut bb, p);
                    }
                }
            }
            Geometry::Segment { a, b, half_width } => {
                bb = [
                    a[0].min(b[0]) - half_width,
                    a[1].min(b[1]) - half_width,
                    a[0].max(b[0]) + half_width,
                    a[1].max(b[1]) + half_width,
                ];
            }
        }
        bb
    }

    /// The tight box `[x1, y1, x2, y2]` of the part of the shape inside `rect` (same layout), or
    /// `None` when they do not overlap. For a shape inside `rect` this is [`Geometry::bbox`];
    /// otherwise the shape's outline (curves as polylines within 0.002 px) is clipped to `rect`,
    /// so a shape cut by the image border gets the box of what remains of it, not its full box
    /// clipped.
    pub fn clipped_bbox(&self, rect: [f32; 4]) -> Option<[f32; 4]> {
        let bb = self.bbox();
        if bb[0] >= rect[0] && bb[1] >= rect[1] && bb[2] <= rect[2] && bb[3] <= rect[3] {
            return Some(bb);
        }
        if bb[0] >= rect[2] || bb[2] <= rect[0] || bb[1] >= rect[3] || bb[3] <= rect[1] {
            return None;
        }
        let mut poly = self.outline();
        for (axis, bound, keep_above) in
            [(0, rect[0], true), (0, rect[2], false), (1, rect[1], true), (1, rect[3], false)]
        {
            poly = clip_half_plane(&poly, axis, bound, keep_above);
            if poly.is_empty() {
                return None;
            }
        }
        let mut out = EMPTY_BOX;
        poly.iter().for_each(|&p| include(&mut out, p));
        // The polylines lie inside the curves, at most SAGITTA away: a side within that of the
        // exact box is the exact box's (its extreme point survived the clipping).
        for k in 0..4 {
            if (out[k] - bb[k]).abs() <= 2.0 * SAGITTA {
                out[k] = bb[k];
            }
        }
        (out[0] < out[2] && out[1] < out[3]).then_some(out)
    }

    /// The outline as one closed polygon in pixels: curves sampled finely enough that chords stay
    /// within [`SAGITTA`] of them; a ring's hole joined to its rim by a zero-width cut.
    fn outline(&self) -> Vec<Vec2> {
        // Steps for an arc of `sweep` radians on radius `r` with sagitta ≤ SAGITTA.
        let steps = |r: f32, sweep: f32| {
            let step = 2.0 * (1.0 - SAGITTA / r.max(2.0 * SAGITTA)).clamp(-1.0, 1.0).acos();
            ((sweep.abs() / step.max(1e-3)).ceil() as usize).clamp(4, 20_000)
        };
        // Points of the arc of circle (c, r) from angle t0 to t1 (local frame), ends included.
        let arc = |out: &mut Vec<Vec2>, c: Vec2, r: f32, t0: f32, t1: f32| {
            let n = steps(r, t1 - t0);
            out.extend((0..=n).map(|i| {
                let t = t0 + (t1 - t0) * i as f32 / n as f32;
                [c[0] + r * t.cos(), c[1] + r * t.sin()]
            }));
        };
        let to_world = |pts: Vec<Vec2>, center: Vec2, angle: f32| -> Vec<Vec2> {
            let sc = angle.sin_cos();
            pts.into_iter()
                .map(|p| {
                    let q = rotate(p, sc);
                    [center[0] + q[0], center[1] + q[1]]
                })
                .collect()
        };
        let tau = std::f32::consts::TAU;
        let mut pts = Vec::new();
        match *self {
            Geometry::Polygon(ref v) => v.clone(),
            Geometry::Ellipse { center, radii, angle } => {
                let n = steps(radii[0].max(radii[1]), tau);
                pts.extend((0..n).map(|i| {
                    let t = tau * i as f32 / n as f32;
                    [radii[0] * t.cos(), radii[1] * t.sin()]
                }));
                to_world(pts, center, angle)
            }
            Geometry::Ring { center, outer, inner } => {
                arc(&mut pts, [0.0, 0.0], outer, 0.0, tau);
                arc(&mut pts, [0.0, 0.0], inner, tau, 0.0);
                to_world(pts, center, 0.0)
            }
            Geometry::Crescent { center, outer, inner, offset, angle } => {
                let a = (outer * outer - inner * inner + offset * offset) / (2.0 * offset);
                let b = (outer * outer - a * a).max(0.0).sqrt();
                let phi = b.atan2(a);
                let psi = b.atan2(a - offset);
                arc(&mut pts, [0.0, 0.0], outer, phi, tau - phi);
                arc(&mut pts, [offset, 0.0], inner, tau - psi, psi);
                to_world(pts, center, angle)
            }
            Geometry::HalfDisk { center, radius, angle } => {
                arc(&mut pts, [0.0, 0.0], radius, 0.0, std::f32::consts::PI);
                to_world(pts, center, angle)
            }
            Geometry::Segment { .. } => {
                let bb = self.bbox();
                vec![[bb[0], bb[1]], [bb[2], bb[1]], [bb[2], bb[3]], [bb[0], bb[3]]]
            }
        }
    }

    /// The exact area in square pixels.
    pub fn area(&self) -> f32 {
        match *self {
            Geometry::Polygon(ref v) => {
                let n = v.len();
                let twice: f32 = (0..n).map(|i| v[i][0] * v[(i + 1) % n][1] - v[(i + 1) % n][0] * v[i][1]).sum();
                twice.abs() / 2.0
            }
            Geometry::Ellipse { radii, .. } => PI * radii[0] * radii[1],
            Geometry::Ring { outer, inner, .. } => PI * (outer * outer - inner * inner),
            Geometry::Crescent { outer, inner, offset, .. } => PI * outer * outer - lens_area(outer, inner, offset),
            Geometry::HalfDisk { radius, .. } => PI * radius * radius / 2.0,
            Geometry::Segment { a, b, half_width } => 2.0 * half_width * length(sub(b, a)) + PI * half_width.powi(2),
        }
    }
}

/// Anti-aliased coverage of a shape over a window of the image: `cov[(y - y0) * w + (x - x0)]`
/// in `0..=1` for pixel `(x, y)`. Pixels outside the window have coverage 0.
#[derive(Debug, Clone, Default)]
pub struct Mask {
    /// Left column of the window.
    pub x0: u32,
    /// Top row of the window.
    pub y0: u32,
    /// Window width in pixels (0 when the shape misses the image).
    pub w: u32,
    /// Window height in pixels.
    pub h: u32,
    /// Row-major coverage, `w * h` values.
    pub cov: Vec<f32>,
}

impl Mask {
    /// Coverage of image pixel `(x, y)`, which must lie in the window.
    pub fn at(&self, x: u32, y: u32) -> f32 {
        self.cov[((y - self.y0) * self.w + (x - self.x0)) as usize]
    }

    /// Each window row as `(y, coverage of pixels x0..x0 + w)`.
    pub fn rows(&self) -> impl Iterator<Item = (u32, &[f32])> + '_ {
        self.cov.chunks_exact(self.w.max(1) as usize).enumerate().map(move |(r, c)| (self.y0 + r as u32, c))
    }

    /// `(x, y, coverage)` of every window pixel with non-zero coverage.
    pub fn iter(&self) -> impl Iterator<Item = (u32, u32, f32)> + '_ {
        let w = self.w.max(1);
        self.cov
            .iter()
            .enumerate()
            .filter(|(_, c)| **c > 0.0)
            .map(move |(i, &c)| (self.x0 + i as u32 % w, self.y0 + i as u32 / w, c))
    }
}

/// Side of the square tiles that are filled or skipped from one distance evaluation.
const TILE: u32 = 8;

/// Rasterises `geom` into `mask` (reusing its buffer) over the part of a `width × height` image
/// it touches. With `stroke = Some(hw)` only the outline is drawn, `2·hw` pixels wide, centred on
/// the shape's edge.
pub fn rasterize(geom: &Geometry, stroke: Option<f32>, width: u32, height: u32, mask: &mut Mask) {
    rasterize_soft(geom, stroke, 1.0, width, height, mask);
}

/// [`rasterize`] with a soft edge `feather` pixels wide (coverage `clamp(0.5 - d / feather, 0, 1)`);
/// `feather = 1` is the usual one-pixel anti-aliasing.
pub fn rasterize_soft(geom: &Geometry, stroke: Option<f32>, feather: f32, width: u32, height: u32, mask: &mut Mask) {
    let feather = feather.max(1e-3);
    let grow = stroke.unwrap_or(0.0) + 0.5 * (feather - 1.0).max(0.0);
    let bb = geom.bbox();
    // Pixels whose centre (x + 0.5) may lie within half a pixel of the (grown) shape.
    let lo = |v: f32, max: u32| ((v - grow - 1.0).floor().max(0.0) as u32).min(max);
    let hi = |v: f32, max: u32| ((v + grow + 1.0).ceil().max(0.0) as u32).min(max);
    let (x0, y0, x1, y1) = (lo(bb[0], width), lo(bb[1], height), hi(bb[2], width), hi(bb[3], height));
    mask.x0 = x0;
    mask.y0 = y0;
    mask.w = x1.saturating_sub(x0);
    mask.h = y1.saturating_sub(y0);
    mask.cov.clear();
    mask.cov.resize((mask.w * mask.h) as usize, 0.0);
    if mask.w == 0 || mask.h == 0 || !bb.iter().all(|v| v.is_finite()) {
        mask.w = 0;
        mask.h = 0;
        mask.cov.clear();
        return;
    }
    if let (&Geometry::Ellipse { center, radii, angle }, None) = (geom, stroke)
        && feather == 1.0
    {
        supersample_ellipse(center, radii, angle, [x0, y0, x1, y1], mask);
        return;
    }
    let prepared = geom.prepare();
    let dist = |p: Vec2| {
        let d = prepared.distance(p);
        match stroke {
            Some(hw) => d.abs() - hw,
            None => d,
        }
    };
    let cov_of = |d: f32| (0.5 - d / feather).clamp(0.0, 1.0);
    let edge = 0.5 * feather;
    let tiles = geom.exact_distance();
    let mw = mask.w;
    let mut ty = y0;
    while ty < y1 {
        let th = TILE.min(y1 - ty);
        let mut tx = x0;
        while tx < x1 {
            let tw = TILE.min(x1 - tx);
            let mut uniform = None;
            if tiles {
                // Farthest pixel centre from the tile centre.
                let r = (((tw - 1) as f32 / 2.0).powi(2) + ((th - 1) as f32 / 2.0).powi(2)).sqrt();
                let dc = dist([tx as f32 + tw as f32 / 2.0, ty as f32 + th as f32 / 2.0]);
                if dc - r >= edge {
                    uniform = Some(0.0);
                } else if dc + r <= -edge {
                    uniform = Some(1.0);
                }
            }
            for y in ty..ty + th {
                let row = ((y - y0) * mw + (tx - x0)) as usize;
                let out = &mut mask.cov[row..row + tw as usize];
                match uniform {
                    Some(c) => out.fill(c),
                    None => {
                        let py = y as f32 + 0.5;
                        for (i, o) in out.iter_mut().enumerate() {
                            *o = cov_of(dist([(tx + i as u32) as f32 + 0.5, py]));
                        }
                    }
                }
            }
            tx += tw;
        }
        ty += th;
    }
}

/// Sub-samples per pixel side for ellipses.
const SUB: usize = 4;

/// A filled ellipse's coverage as the fraction of `SUB × SUB` sub-samples inside it (its distance
/// is only approximate, so the distance-based anti-aliasing could spill past the exact box).
/// Pixels and tiles far from the outline are classified with the exact lower bound
/// `|k − 1| · min(rx, ry) ≤ distance`, where `k` is the point's elliptic radius (`k = 1` on
/// the outline): that bound is 1-Lipschitz.
fn supersample_ellipse(center: Vec2, radii: Vec2, angle: f32, window: [u32; 4], mask: &mut Mask) {
    let [x0, y0, x1, y1] = window;
    let sc = angle.sin_cos();
    let inv = [1.0 / (radii[0] * radii[0]), 1.0 / (radii[1] * radii[1])];
    let rmin = radii[0].min(radii[1]);
    let k2 = |q: Vec2| q[0] * q[0] * inv[0] + q[1] * q[1] * inv[1];
    // Lower bound of the unsigned distance, and the sign (inside or not).
    let bound = |p: Vec2| {
        let k = k2(unrotate(sub(p, center), sc)).sqrt();
        ((k - 1.0).abs() * rmin, k < 1.0)
    };
    let mut offsets = [[0.0f32; 2]; SUB * SUB];
    for (i, o) in offsets.iter_mut().enumerate() {
        let d = [((i % SUB) as f32 + 0.5) / SUB as f32 - 0.5, ((i / SUB) as f32 + 0.5) / SUB as f32 - 0.5];
        *o = unrotate(d, sc);
    }
    // Half the diagonal of a pixel: farther than this from the outline, a pixel is uniform.
    let half_diag = std::f32::consts::FRAC_1_SQRT_2;
    let mw = mask.w;
    let mut ty = y0;
    while ty < y1 {
        let th = TILE.min(y1 - ty);
        let mut tx = x0;
        while tx < x1 {
            let tw = TILE.min(x1 - tx);
            let r = (((tw - 1) as f32 / 2.0).powi(2) + ((th - 1) as f32 / 2.0).powi(2)).sqrt();
            let (d, inside) = bound([tx as f32 + tw as f32 / 2.0, ty as f32 + th as f32 / 2.0]);
            let uniform = (d - r >= half_diag).then_some(if inside { 1.0 } else { 0.0 });
            for y in ty..ty + th {
                let row = ((y - y0) * mw + (tx - x0)) as usize;
                let out = &mut mask.cov[row..row + tw as usize];
                if let Some(c) = uniform {
                    out.fill(c);
                    continue;
                }
                for (i, o) in out.iter_mut().enumerate() {
                    let p = [(tx + i as u32) as f32 + 0.5, y as f32 + 0.5];
                    let (d, inside) = bound(p);
                    *o = if d >= half_diag {
                        if inside { 1.0 } else { 0.0 }
                    } else {
                        let q = unrotate(sub(p, center), sc);
                        let n = offsets.iter().filter(|o| k2([q[0] + o[0], q[1] + o[1]]) <= 1.0).count();
                        n as f32 / (SUB * SUB) as f32
                    };
                }
            }
            tx += tw;
        }
        ty += th;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Brute-force unsigned distance to a densely sampled outline.
    fn brute(outline: &[Vec2], p: Vec2) -> f32 {
        outline.iter().map(|&q| length(sub(p, q))).fold(f32::INFINITY, f32::min)
    }

    fn arc(c: Vec2, r: f32, keep: impl Fn(Vec2) -> bool) -> Vec<Vec2> {
        (0..20000)
            .map(|i| {
                let t = i as f32 / 20000.0 * 2.0 * PI;
                [c[0] + r * t.cos(), c[1] + r * t.sin()]
            })
            .filter(|&p| keep(p))
            .collect()
    }

    fn check_against(g: &Geometry, outline: &[Vec2], center: Vec2, reach: f32) {
        let mut bb = EMPTY_BOX;
        outline.iter().for_each(|&p| include(&mut bb, p));
        let gb = g.bbox();
        for k in 0..4 {
            assert!((gb[k] - bb[k]).abs() < 0.02, "bbox {gb:?} vs sampled {bb:?}");
        }
        for i in 0..40 {
            for j in 0..40 {
                let p = [
                    center[0] - reach + 2.0 * reach * i as f32 / 39.0,
                    center[1] - reach + 2.0 * reach * j as f32 / 39.0,
                ];
                let d = g.distance(p);
                assert!((d.abs() - brute(outline, p)).abs() < 0.02, "{g:?} at {p:?}: {d} vs {}", brute(outline, p));
            }
        }
    }

    #[test]
    fn crescent_distance_and_bbox_are_exact() {
        let (c, ra, rb, d, angle) = ([50.0, 40.0], 20.0, 17.0, 9.0, 0.7f32);
        let g = Geometry::Crescent { center: c, outer: ra, inner: rb, offset: d, angle };
        let ci = [c[0] + d * angle.cos(), c[1] + d * angle.sin()];
        let mut outline = arc(c, ra, |p| length(sub(p, ci)) >= rb);
        outline.extend(arc(ci, rb, |p| length(sub(p, c)) <= ra));
        check_against(&g, &outline, c, 30.0);
        // Sign: the outer disk's far side is inside, the removed disk's centre outside.
        assert!(g.distance([c[0] - 15.0 * angle.cos(), c[1] - 15.0 * angle.sin()]) < 0.0);
        assert!(g.distance(ci) > 0.0);
    }

    #[test]
    fn half_disk_distance_and_bbox_are_exact() {
        let (c, r, angle) = ([30.0, 30.0], 12.0, 2.2f32);
        let g = Geometry::HalfDisk { center: c, radius: r, angle };
        let sc = angle.sin_cos();
        let mut outline = arc(c, r, |p| unrotate(sub(p, c), sc)[1] >= 0.0);
        outline.extend((0..2000).map(|i| {
            let t = rotate([-r + 2.0 * r * i as f32 / 1999.0, 0.0], sc);
            [c[0] + t[0], c[1] + t[1]]
        }));
        check_against(&g, &outline, c, 20.0);
        let inside = rotate([0.0, 5.0], sc);
        assert!(g.distance([c[0] + inside[0], c[1] + inside[1]]) < 0.0);
    }

    #[test]
    fn polygon_distance_sign_and_area() {
        // An L shape (non-convex).
        let v = vec![[0.0, 0.0], [10.0, 0.0], [10.0, 4.0], [4.0, 4.0], [4.0, 10.0], [0.0, 10.0]];
        let g = Geometry::Polygon(v);
        assert!((g.distance([2.0, 2.0]) + 2.0).abs() < 1e-6);
        assert!((g.distance([7.0, 7.0]) - 3.0).abs() < 1e-6);
        assert!((g.area() - 64.0).abs() < 1e-4);
        assert_eq!(g.bbox(), [0.0, 0.0, 10.0, 10.0]);
    }

    #[test]
    fn ellipse_bbox_touches_outline() {
        let g = Geometry::Ellipse { center: [0.0, 0.0], radii: [10.0, 4.0], angle: 0.5 };
        let bb = g.bbox();
        let (s, c) = 0.5f32.sin_cos();
        let pts: Vec<Vec2> = (0..100000)
            .map(|i| {
                let t = i as f32 / 100000.0 * 2.0 * PI;
                rotate([10.0 * t.cos(), 4.0 * t.sin()], (s, c))
            })
            .collect();
        let mx = pts.iter().map(|p| p[0]).fold(f32::MIN, f32::max);
        let my = pts.iter().map(|p| p[1]).fold(f32::MIN, f32::max);
        assert!((bb[2] - mx).abs() < 1e-3 && (bb[3] - my).abs() < 1e-3);
        assert!(g.distance(rotate([10.0, 0.0], (s, c))).abs() < 1e-4);
    }

    #[test]
    fn ellipse_coverage_touches_only_overlapping_pixels() {
        for (radii, angle) in [([5.66, 2.83], 0.6f32), ([1.4, 0.7], 1.1), ([40.0, 12.0], 2.0), ([9.0, 9.0], 0.0)] {
            let center = [60.3, 58.7];
            let g = Geometry::Ellipse { center, radii, angle };
            let bb = g.bbox();
            let mut m = Mask::default();
            rasterize(&g, None, 128, 128, &mut m);
            let mut total = 0.0;
            for (x, y, c) in m.iter() {
                // Touched pixels intersect the exact box.
                assert!(x as f32 + 1.0 > bb[0] && (x as f32) < bb[2] && y as f32 + 1.0 > bb[1] && (y as f32) < bb[3]);
                total += c;
            }
            assert!((total - g.area()).abs() < 0.05 * g.area() + 1.0, "{radii:?}: {total} vs {}", g.area());
        }
    }

    #[test]
    fn clipped_bbox_is_the_box_of_what_remains() {
        // A diagonal bar cut by the left border: what remains spans less height than its box
        // (its edges cross x = 0 at y = 12 and y = 20).
        let bar = Geometry::Polygon(vec![[-20.0, 0.0], [-16.0, -4.0], [20.0, 32.0], [16.0, 36.0]]);
        assert_eq!(bar.clipped_bbox([0.0, 0.0, 100.0, 100.0]), Some([0.0, 12.0, 20.0, 36.0]));
        assert_eq!(bar.clipped_bbox([-30.0, -30.0, 100.0, 100.0]), Some(bar.bbox()));
        assert_eq!(bar.clipped_bbox([30.0, 0.0, 100.0, 100.0]), None);
        // A disk centred on the border keeps its full height; cut off-centre, a chord's.
        let disk = Geometry::Ellipse { center: [0.0, 50.0], radii: [10.0, 10.0], angle: 0.0 };
        let b = disk.clipped_bbox([0.0, 0.0, 100.0, 100.0]).unwrap();
        assert!((b[1] - 40.0).abs() < 0.01 && (b[3] - 60.0).abs() < 0.01 && b[0] == 0.0 && (b[2] - 10.0).abs() < 0.01);
        let disk = Geometry::Ellipse { center: [-6.0, 50.0], radii: [10.0, 10.0], angle: 0.0 };
        let b = disk.clipped_bbox([0.0, 0.0, 100.0, 100.0]).unwrap();
        assert!((b[1] - 42.0).abs() < 0.01 && (b[3] - 58.0).abs() < 0.01, "{b:?}");
        // A ring whose hole covers the border region: only the rim below counts.
        let ring = Geometry::Ring { center: [50.0, -2.0], outer: 10.0, inner: 8.0 };
        let b = ring.clipped_bbox([0.0, 0.0, 100.0, 100.0]).unwrap();
        assert!((b[3] - 8.0).abs() < 0.01 && b[1] == 0.0, "{b:?}");
        let chord = (100.0f32 - 4.0).sqrt();
        assert!((b[0] - (50.0 - chord)).abs() < 0.01, "{b:?}");
        // Crescent and half disk inside: the exact box.
        let c = Geometry::Crescent { center: [50.0, 50.0], outer: 20.0, inner: 17.0, offset: 9.0, angle: 0.3 };
        assert_eq!(c.clipped_bbox([0.0, 0.0, 100.0, 100.0]), Some(c.bbox()));
        let b = c.clipped_bbox([0.0, 0.0, 100.0, 50.0]).unwrap();
        assert!(b[3] == 50.0 && b[1] >= c.bbox()[1] - 1e-4);
    }

    #[test]
    fn tiles_match_per_pixel_evaluation() {
        let g = Geometry::Crescent { center: [40.0, 33.0], outer: 30.0, inner: 26.0, offset: 12.0, angle: 1.0 };
        let mut m = Mask::default();
        rasterize(&g, None, 80, 70, &mut m);
        for (i, &c) in m.cov.iter().enumerate() {
            let (x, y) = (m.x0 + i as u32 % m.w, m.y0 + i as u32 / m.w);
            let e = (0.5 - g.distance([x as f32 + 0.5, y as f32 + 0.5])).clamp(0.0, 1.0);
            assert!((c - e).abs() < 1e-6, "({x},{y}) {c} vs {e}");
        }
        let total: f32 = m.cov.iter().sum();
        assert!((total - g.area()).abs() / g.area() < 0.02, "{total} vs {}", g.area());
    }
}
