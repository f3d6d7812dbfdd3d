//! Composing one synthetic image: background, clutter and objects placed under the occlusion and
//! inside-the-image rules, and the labels.

use image::RgbImage;
use rand::Rng;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use super::background::{add_noise, mix64, random_color, render_background};
use super::geometry::{Geometry, Mask, rasterize, rasterize_soft, to_byte};
use super::shapes::{FillStyle, MAX_CLASSES, Paint, ShapeKind, ShapeSpec, class_shape, paint_mask};
use super::{Split, SynthConfig};
use crate::sample::{LabeledBox, Sample};

/// One labelled object of a generated image.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SceneObject {
    /// Class index in `0..classes`.
    pub class_id: usize,
    /// Its geometry.
    pub shape: ShapeSpec,
    /// How it was painted.
    pub paint: Paint,
    /// The label, `[x1, y1, x2, y2]` pixels: the tight box of the part of the shape inside the
    /// image, occluded parts included ([`Geometry::clipped_bbox`](super::geometry::Geometry::clipped_bbox)).
    pub bbox: [f32; 4],
    /// The full extent, not clipped (may reach outside the image).
    pub full_bbox: [f32; 4],
    /// Fraction of the shape's area inside the image.
    pub inside: f32,
    /// Fraction of its pixels in the image (coverage ≥ ½) that no later item covers.
    pub visible: f32,
}

/// A generated image with its objects, in drawing order (later objects on top).
#[derive(Debug, Clone, PartialEq)]
pub struct Scene {
    /// The pixels, `imgsz × imgsz`.
    pub image: RgbImage,
    /// The labelled objects.
    pub objects: Vec<SceneObject>,
}

impl Scene {
    /// The image and its ground-truth boxes.
    pub fn into_sample(self) -> Sample {
        let boxes = self.objects.iter().map(|o| LabeledBox { class_id: o.class_id, xyxy: o.bbox }).collect();
        Sample { image: self.image, boxes }
    }
}

/// Image `index` of `split` as an image and its labels (see [`generate_scene`]).
pub fn generate_sample(cfg: &SynthConfig, split: Split, index: usize) -> Sample {
    generate_scene(cfg, split, index).into_sample()
}

/// The seed of one image: a mix of the dataset seed, the split and the index, so every image is
/// independent of the others (and of how many there are, and of the thread that draws it).
fn image_seed(seed: u64, split: Split, index: usize) -> u64 {
    let split_id: u64 = match split {
        Split::Train => 0x7452_4149_4E00_0001,
        Split::Val => 0x5641_4C00_0000_0002,
    };
    mix64(mix64(seed ^ mix64(split_id)) ^ (index as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15))
}

/// Attempts at a position before an item is dropped; from half-way on the item also shrinks.
const ATTEMPTS: usize = 12;

/// Smallest number of pixels (coverage ≥ ½) a labelled object must show in the image.
const MIN_PIXELS: u32 = 6;

/// Colour distance (Euclidean, RGB 0–255) an object keeps from the pixels it is drawn over.
const MIN_CONTRAST: f32 = 80.0;

/// What an item is, for labelling and occlusion bookkeeping.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Role {
    /// A labelled object of this class.
    Object(usize),
    /// A filled shape of a kind or style that is not a class here: never labelled.
    Distractor,
    /// A thin outline of any shape, this half-width in pixels.
    Outline(f32),
}

/// An item waiting to be placed: its shape (position drawn at placement) and role.
#[derive(Debug, Clone)]
struct Item {
    role: Role,
    kind: ShapeKind,
    style: Option<FillStyle>,
    size: f32,
    aspect: f32,
    angle: f32,
    detail: f32,
    depth: f32,
}

/// The image being composed plus, per pixel, which labelled object is on top.
struct Canvas {
    img: RgbImage,
    size: u32,
    /// `1 + object index` of the labelled object visible at each pixel, 0 for none.
    owner: Vec<u16>,
    /// Per placed object: pixels it showed when placed, and pixels still visible.
    area0: Vec<u32>,
    visible: Vec<u32>,
    /// Scratch: pixels each object would lose to the candidate, and which objects are touched.
    lost: Vec<u32>,
    touched: Vec<usize>,
}

impl Canvas {
    /// Image indices of the pixels of `mask` with coverage ≥ ½ (the solid part used for
    /// ownership), passed to `f`.
    fn for_solid(size: u32, mask: &Mask, mut f: impl FnMut(usize)) {
        for (y, covs) in mask.rows() {
            let base = (y * size + mask.x0) as usize;
            for (i, &c) in covs.iter().enumerate() {
                if c >= 0.5 {
                    f(base + i);
                }
            }
        }
    }

    /// Whether drawing `mask` on top leaves every labelled object at least `keep` visible.
    fn occlusion_ok(&mut self, mask: &Mask, keep: f32) -> bool {
        let (owner, lost, touched) = (&self.owner, &mut self.lost, &mut self.touched);
        Self::for_solid(self.size, mask, |i| {
            let o = owner[i];
            if o != 0 {
                let o = usize::from(o - 1);
                if lost[o] == 0 {
                    touched.push(o);
                }
                lost[o] += 1;
            }
        });
        let mut ok = true;
        for &o in &self.touched {
            ok &= (self.visible[o] - self.lost[o]) as f32 >= keep * self.area0[o] as f32;
            self.lost[o] = 0;
        }
        self.touched.clear();
        ok
    }

    /// Records `mask` as drawn on top: its pixels now belong to `object` (or to nobody).
    fn claim(&mut self, mask: &Mask, object: Option<usize>) {
        let (owner, visible) = (&mut self.owner, &mut self.visible);
        let new = object.map_or(0, |o| o as u16 + 1);
        Self::for_solid(self.size, mask, |i| {
            if owner[i] != 0 {
                visible[usize::from(owner[i] - 1)] -= 1;
            }
            owner[i] = new;
            if let Some(o) = object {
                visible[o] += 1;
            }
        });
    }

    /// Mean colour of the image under the mask's solid part (coverage ≥ ½).
    fn mean_under(&self, mask: &Mask) -> [f32; 3] {
        let raw = self.img.as_raw();
        let (mut sum, mut n) = ([0u64; 3], 0u64);
        Self::for_solid(self.size, mask, |i| {
            (0..3).for_each(|k| sum[k] += u64::from(raw[3 * i + k]));
            n += 1;
        });
        if n == 0 {
            return [128.0; 3];
        }
        sum.map(|s| (s as f64 / n as f64) as f32)
    }
}

fn distance(a: [f32; 3], b: [f32; 3]) -> f32 {
    ((a[0] - b[0]).powi(2) + (a[1] - b[1]).powi(2) + (a[2] - b[2]).powi(2)).sqrt()
}

fn to_u8(c: [f32; 3]) -> [u8; 3] {
    c.map(to_byte)
}

/// A random colour at least [`MIN_CONTRAST`] from `under` (and, with `avoid`, some distance from
/// that colour too); the best of a few tries if none qualifies.
fn contrasting_color(rng: &mut impl Rng, under: [f32; 3], avoid: Option<[f32; 3]>) -> [f32; 3] {
    let score = |c: [f32; 3]| {
        let d = distance(c, under) / MIN_CONTRAST;
        avoid.map_or(d, |a| d.min(distance(c, a) / (0.8 * MIN_CONTRAST)))
    };
    let mut best = random_color(rng);
    let mut best_score = score(best);
    for _ in 0..24 {
        if best_score >= 1.0 {
            break;
        }
        let c = random_color(rng);
        let s = score(c);
        if s > best_score {
            (best, best_score) = (c, s);
        }
    }
    best
}

/// Log-uniform in `[lo, hi]`.
fn log_uniform(rng: &mut impl Rng, lo: f32, hi: f32) -> f32 {
    if hi <= lo {
        return lo;
    }
    (lo.ln() + rng.random::<f32>() * (hi.ln() - lo.ln())).exp()
}

/// Up to `mean·2` (rounded) of something, uniformly.
fn count(rng: &mut impl Rng, mean: f32) -> usize {
    let max = (2.0 * mean).round() as usize;
    rng.random_range(0..=max)
}

/// The (kind, style) pairs that are not classes: filled distractors are drawn from these.
fn unused_shapes(classes: usize) -> Vec<(ShapeKind, Option<FillStyle>)> {
    let n = ShapeKind::ALL.len();
    if classes <= n {
        ShapeKind::ALL[classes..].iter().map(|&k| (k, None)).collect()
    } else {
        (classes..MAX_CLASSES).map(|c| class_shape(c, MAX_CLASSES)).collect()
    }
}

/// Image `index` of `split`: the pixels and the labelled objects with their geometry, paint,
/// inside and visible fractions. Invalid settings are clamped into range (see
/// [`SynthConfig::validate`]).
pub fn generate_scene(cfg: &SynthConfig, split: Split, index: usize) -> Scene {
    let cfg = cfg.sanitized();
    let mut rng = ChaCha8Rng::seed_from_u64(image_seed(cfg.seed, split, index));
    let size = cfg.imgsz;
    let sf = size as f32;
    let img = render_background(&mut rng, size);
    let mut canvas = Canvas {
        img,
        size,
        owner: vec![0; (size * size) as usize],
        area0: Vec::new(),
        visible: Vec::new(),
        lost: Vec::new(),
        touched: Vec::new(),
    };
    let mut mask = Mask::default();

    // Translucent blobs and some line segments under everything.
    for _ in 0..count(&mut rng, 1.5 * cfg.clutter) {
        let center = [rng.random::<f32>() * sf, rng.random::<f32>() * sf];
        let radii = [sf * rng.random_range(0.03..0.25f32), sf * rng.random_range(0.03..0.25f32)];
        let angle = rng.random::<f32>() * std::f32::consts::TAU;
        let feather = rng.random_range(1.0..(0.5 * radii[0].min(radii[1])).max(1.5));
        rasterize_soft(&Geometry::Ellipse { center, radii, angle }, None, feather, size, size, &mut mask);
        let paint = Paint { alpha: rng.random_range(0.2..0.7f32), ..Paint::solid(to_u8(random_color(&mut rng))) };
        paint_mask(&mut canvas.img, &mask, &paint, center, radii[0], angle);
    }
    for _ in 0..count(&mut rng, 1.5 * cfg.clutter) {
        let (geom, paint) = random_line(&mut rng, sf);
        rasterize(&geom, None, size, size, &mut mask);
        paint_mask(&mut canvas.img, &mask, &paint, [0.0, 0.0], 1.0, 0.0);
    }

    // Objects, filled distractors and thin outlines, larger ones mostly first.
    let max_size = cfg.max_size * sf;
    let new_item = |rng: &mut ChaCha8Rng, role: Role, kind: ShapeKind, style: Option<FillStyle>| {
        let size = log_uniform(rng, cfg.min_size, max_size);
        let (lo, hi) = kind.aspect_range();
        Item {
            role,
            kind,
            style,
            size,
            aspect: log_uniform(rng, lo, hi),
            angle: rng.random::<f32>() * std::f32::consts::TAU,
            detail: rng.random::<f32>(),
            depth: size.ln() + rng.random_range(-0.7..0.7f32),
        }
    };
    let mut items = Vec::new();
    let n_objects = rng.random_range(cfg.min_objects..=cfg.max_objects);
    for _ in 0..n_objects {
        let class_id = rng.random_range(0..cfg.classes);
        let (kind, style) = class_shape(class_id, cfg.classes);
        items.push(new_item(&mut rng, Role::Object(class_id), kind, style));
    }
    let unused = unused_shapes(cfg.classes);
    if !unused.is_empty() {
        for _ in 0..count(&mut rng, 0.75 * cfg.clutter) {
            let (kind, style) = unused[rng.random_range(0..unused.len())];
            items.push(new_item(&mut rng, Role::Distractor, kind, style));
        }
    }
    for _ in 0..count(&mut rng, 1.0 * cfg.clutter) {
        let kind = ShapeKind::ALL[rng.random_range(0..ShapeKind::ALL.len())];
        let hw = rng.random_range(0.5..0.9f32);
        items.push(new_item(&mut rng, Role::Outline(hw), kind, Some(FillStyle::Solid)));
    }
    items.sort_by(|a, b| b.depth.total_cmp(&a.depth));

    let keep = 1.0 - cfg.max_occlusion;
    let mut objects: Vec<SceneObject> = Vec::new();
    for item in &items {
        let mut spec = ShapeSpec {
            kind: item.kind,
            center: [0.0, 0.0],
            size: item.size,
            aspect: item.aspect,
            angle: item.angle,
            detail: item.detail,
        };
        for attempt in 0..ATTEMPTS {
            if attempt >= ATTEMPTS / 2 {
                spec.size = (spec.size * 0.85).max(cfg.min_size);
            }
            spec.center = [rng.random::<f32>() * sf, rng.random::<f32>() * sf];
            let geom = spec.geometry();
            let stroke = match item.role {
                Role::Outline(hw) => Some(hw),
                _ => None,
            };
            rasterize(&geom, stroke, size, size, &mut mask);
            let mut inside = 1.0;
            let mut pixels = 0;
            if let Role::Object(_) = item.role {
                inside = (mask.cov.iter().sum::<f32>() / geom.area().max(1e-3)).min(1.0);
                Canvas::for_solid(size, &mask, |_| pixels += 1);
                if inside < cfg.min_inside || pixels < MIN_PIXELS {
                    continue;
                }
            }
            let label = match item.role {
                Role::Object(_) => match geom.clipped_bbox([0.0, 0.0, sf, sf]) {
                    Some(b) => Some(b),
                    None => continue,
                },
                _ => None,
            };
            if !canvas.occlusion_ok(&mask, keep) {
                continue;
            }
            let paint = match item.role {
                Role::Outline(_) => Paint::solid(to_u8(random_color(&mut rng))),
                _ => object_paint(&mut rng, &canvas, &mask, item.style, spec.size),
            };
            paint_mask(&mut canvas.img, &mask, &paint, spec.center, spec.size / 2.0, spec.angle);
            if let Role::Object(class_id) = item.role {
                let id = objects.len();
                canvas.area0.push(pixels);
                canvas.visible.push(0);
                canvas.lost.push(0);
                canvas.claim(&mask, Some(id));
                let bbox = label.unwrap_or_default();
                objects.push(SceneObject {
                    class_id,
                    shape: spec,
                    paint,
                    bbox,
                    full_bbox: geom.bbox(),
                    inside,
                    visible: 1.0,
                });
            } else {
                canvas.claim(&mask, None);
            }
            break;
        }
    }

    // Line segments on top, under the same occlusion rule.
    for _ in 0..count(&mut rng, 1.0 * cfg.clutter) {
        for _ in 0..3 {
            let (geom, paint) = random_line(&mut rng, sf);
            rasterize(&geom, None, size, size, &mut mask);
            if canvas.occlusion_ok(&mask, keep) {
                paint_mask(&mut canvas.img, &mask, &paint, [0.0, 0.0], 1.0, 0.0);
                canvas.claim(&mask, None);
                break;
            }
        }
    }

    let sigma = rng.random::<f32>() * cfg.noise;
    add_noise(&mut canvas.img, sigma, rng.random());
    for (i, o) in objects.iter_mut().enumerate() {
        o.visible = canvas.visible[i] as f32 / canvas.area0[i].max(1) as f32;
    }
    Scene { image: canvas.img, objects }
}

/// A thin line segment somewhere in the image and its colour.
fn random_line(rng: &mut impl Rng, sf: f32) -> (Geometry, Paint) {
    let a = [rng.random::<f32>() * sf, rng.random::<f32>() * sf];
    let angle = rng.random::<f32>() * std::f32::consts::TAU;
    let len = sf * rng.random_range(0.05..0.5f32);
    let b = [a[0] + len * angle.cos(), a[1] + len * angle.sin()];
    let geom = Geometry::Segment { a, b, half_width: rng.random_range(0.4..1.2f32) };
    (geom, Paint::solid(to_u8(random_color(rng))))
}

/// Paint of a filled object: colours that stand out from what lies under `mask`, the class's
/// fill style (or a random one, mostly solid, when the style is not part of the class), a
/// pattern period that scales with the object, and sometimes a shading ramp.
fn object_paint(rng: &mut impl Rng, canvas: &Canvas, mask: &Mask, style: Option<FillStyle>, size: f32) -> Paint {
    let style = style.unwrap_or_else(|| {
        if rng.random_bool(0.55) { FillStyle::Solid } else { FillStyle::ALL[rng.random_range(1..FillStyle::ALL.len())] }
    });
    let under = canvas.mean_under(mask);
    let color = contrasting_color(rng, under, None);
    let color2 = if style == FillStyle::Solid { color } else { contrasting_color(rng, under, Some(color)) };
    let shade = if rng.random_bool(0.5) { rng.random_range(-0.3..0.3f32) } else { 0.0 };
    Paint {
        style,
        color: to_u8(color),
        color2: to_u8(color2),
        period: (size / rng.random_range(3.0..6.0f32)).max(2.5),
        shade,
        alpha: 1.0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeds_differ_by_split_index_and_seed() {
        let a = image_seed(0, Split::Train, 0);
        assert_ne!(a, image_seed(0, Split::Val, 0));
        assert_ne!(a, image_seed(0, Split::Train, 1));
        assert_ne!(a, image_seed(1, Split::Train, 0));
    }

    #[test]
    fn labelled_objects_respect_the_rules() {
        let cfg = SynthConfig { imgsz: 96, ..SynthConfig::default() };
        for i in 0..40 {
            let s = generate_scene(&cfg, Split::Train, i);
            assert!(s.objects.len() <= cfg.max_objects);
            for o in &s.objects {
                assert!(o.inside >= cfg.min_inside - 1e-6, "{o:?}");
                assert!(o.visible >= 1.0 - cfg.max_occlusion - 1e-6, "{o:?}");
                let b = o.bbox;
                assert!(b[0] >= 0.0 && b[1] >= 0.0 && b[2] <= 96.0 && b[3] <= 96.0 && b[0] < b[2] && b[1] < b[3]);
            }
        }
    }
}
