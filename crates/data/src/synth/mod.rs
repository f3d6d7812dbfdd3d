//! Synthetic shape datasets: a deterministic, download-free YOLO dataset generator.
//!
//! Each image shows 1–12 (configurable) objects of `K` classes — ten shape kinds (circle,
//! rectangle, triangle, star, cross, hexagon, ring, crescent, arrow, semicircle), and past ten
//! classes (kind, fill style) pairs, up to [`MAX_CLASSES`] — with random colour, size (8 px to
//! 60 % of the image, log-uniform, so small objects dominate), rotation, aspect, overlap and
//! partial occlusion, on gradient / value-noise / stripe / checker backgrounds with clutter:
//! translucent blobs, line segments, thin outlines of any shape and, when some kinds are not
//! classes, filled shapes of those kinds that are not labelled. Colour never tells the class.
//! Edges are anti-aliased.
//!
//! **Labels** are the tight axis-aligned box of each object's *full* extent — occluded parts
//! included, as ultralytics datasets label occluded objects — within the image: computed from
//! the geometry, not from pixels (analytically for an object inside the image; for one cut by
//! the border, from its outline clipped to the image, curves within 0.002 px). Anti-aliasing
//! never touches a pixel a full pixel beyond that box. An object is placed only if at least
//! [`SynthConfig::min_inside`] of its area lies inside the image, and a later item (object or
//! clutter) is placed only if no labelled object below it ends up with more than
//! [`SynthConfig::max_occlusion`] of its pixels covered; an item that cannot be placed after a
//! few tries is dropped (so an image may hold fewer objects than drawn for it). Every labelled
//! object is therefore at least 30 % visible with the defaults.
//!
//! **Determinism**: image `i` of a split depends only on the seed, the split, `i` and the
//! content settings (not on the number of images or threads), so the same settings always give
//! byte-identical files — on a given platform: the trigonometric and logarithm functions come
//! from the system's math library, whose last bits may differ between platforms.
//!
//! ```
//! use yolo_compress_data::SampleSource;
//! use yolo_compress_data::synth::{Split, SynthConfig, SynthSource, generate_sample};
//!
//! let cfg = SynthConfig { imgsz: 64, classes: 4, ..SynthConfig::default() };
//! let s = generate_sample(&cfg, Split::Train, 7);
//! assert_eq!(s.image.dimensions(), (64, 64));
//! assert!(s.boxes.iter().all(|b| b.class_id < 4));
//! // The same sample, on demand, through the pipeline's SampleSource interface:
//! let source = SynthSource::new(cfg, Split::Train)?;
//! assert_eq!(source.get(7)?, s);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! [`write_dataset`] writes the same images as a YOLO dataset on disk (`ycomp synth`).

mod background;
pub mod error;
pub mod geometry;
mod scene;
pub mod shapes;
mod writer;

use serde::{Deserialize, Serialize};

pub use error::SynthError;
pub use scene::{Scene, SceneObject, generate_sample, generate_scene};
pub use shapes::{FillStyle, MAX_CLASSES, Paint, ShapeKind, ShapeSpec, class_names, class_shape, draw_shape};
pub use writer::{ImageFormat, SynthSummary, WriteOptions, write_dataset, write_dataset_with};

use crate::sample::{Sample, SampleSource};

/// What to generate. Everything but `images` and `val` shapes the content of each image;
/// `images` and `val` only say how many to write.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SynthConfig {
    /// Training images (default 1000).
    pub images: usize,
    /// Validation images (default 200).
    pub val: usize,
    /// Number of classes, `1..=40` (default 8). Up to 10 the class is the shape kind; past 10
    /// it is the (kind, fill style) pair.
    pub classes: usize,
    /// Side of the square images in pixels, at least 32 (default 256).
    pub imgsz: u32,
    /// Random seed (default 0).
    pub seed: u64,
    /// Fewest objects drawn for an image (default 1).
    pub min_objects: usize,
    /// Most objects drawn for an image (default 12). The count is uniform in
    /// `min_objects..=max_objects`; objects that cannot be placed are dropped.
    pub max_objects: usize,
    /// Smallest object size in pixels: diameter of the circle around the shape (default 8).
    pub min_size: f32,
    /// Largest object size as a fraction of `imgsz` (default 0.6). Sizes are log-uniform.
    pub max_size: f32,
    /// Largest fraction of a labelled object's pixels that later items may cover (default 0.7).
    pub max_occlusion: f32,
    /// Smallest fraction of an object's area that must lie inside the image (default 0.4).
    pub min_inside: f32,
    /// Multiplies the amount of clutter (default 1; 0 for clean backgrounds).
    pub clutter: f32,
    /// Largest standard deviation of the per-pixel noise, in grey levels (default 8); each
    /// image draws its own in `0..=noise`.
    pub noise: f32,
}

impl Default for SynthConfig {
    fn default() -> Self {
        SynthConfig {
            images: 1000,
            val: 200,
            classes: 8,
            imgsz: 256,
            seed: 0,
            min_objects: 1,
            max_objects: 12,
            min_size: 8.0,
            max_size: 0.6,
            max_occlusion: 0.7,
            min_inside: 0.4,
            clutter: 1.0,
            noise: 8.0,
        }
    }
}

impl SynthConfig {
    /// Checks every setting; the error names the first one out of range.
    pub fn validate(&self) -> Result<(), SynthError> {
        let bad = |field, reason: String| Err(SynthError::InvalidConfig { field, reason });
        if self.classes == 0 || self.classes > MAX_CLASSES {
            return bad("classes", format!("{} is not in 1..={MAX_CLASSES}", self.classes));
        }
        if !(32..=16384).contains(&self.imgsz) {
            return bad("imgsz", format!("{} is not in 32..=16384", self.imgsz));
        }
        if self.min_objects > self.max_objects {
            return bad("min_objects", format!("{} exceeds max_objects {}", self.min_objects, self.max_objects));
        }
        if self.max_objects > 1000 {
            return bad("max_objects", format!("{} exceeds 1000", self.max_objects));
        }
        if self.min_size.is_nan() || self.min_size < 2.0 {
            return bad("min_size", format!("{} px is below 2 px", self.min_size));
        }
        if !(self.max_size > 0.0 && self.max_size <= 1.0) {
            return bad("max_size", format!("{} is not a fraction of the image in (0, 1]", self.max_size));
        }
        if self.min_size > self.max_size * self.imgsz as f32 {
            return bad(
                "min_size",
                format!("{} px exceeds max_size {} × imgsz {}", self.min_size, self.max_size, self.imgsz),
            );
        }
        if !(0.0..=1.0).contains(&self.max_occlusion) {
            return bad("max_occlusion", format!("{} is not in [0, 1]", self.max_occlusion));
        }
        if !(self.min_inside > 0.0 && self.min_inside <= 1.0) {
            return bad("min_inside", format!("{} is not in (0, 1]", self.min_inside));
        }
        if !(self.clutter >= 0.0 && self.clutter <= 100.0) {
            return bad("clutter", format!("{} is not in [0, 100]", self.clutter));
        }
        if !(self.noise >= 0.0 && self.noise <= 128.0) {
            return bad("noise", format!("{} is not in [0, 128]", self.noise));
        }
        Ok(())
    }

    /// The class names, `nc = classes` of them (see [`class_names`]).
    pub fn names(&self) -> Vec<String> {
        class_names(self.classes)
    }

    /// Number of images in `split`.
    pub fn len(&self, split: Split) -> usize {
        match split {
            Split::Train => self.images,
            Split::Val => self.val,
        }
    }

    /// A copy with every setting forced into its valid range (what the generators use, so they
    /// never panic; [`SynthConfig::validate`] reports instead).
    pub(crate) fn sanitized(&self) -> SynthConfig {
        let mut c = self.clone();
        c.classes = c.classes.clamp(1, MAX_CLASSES);
        c.imgsz = c.imgsz.clamp(32, 16384);
        c.max_objects = c.max_objects.min(1000);
        c.min_objects = c.min_objects.min(c.max_objects);
        let finite = |v: f32, default: f32| if v.is_finite() { v } else { default };
        c.max_size = finite(c.max_size, 0.6).clamp(0.01, 1.0);
        c.min_size = finite(c.min_size, 8.0).clamp(2.0, (c.max_size * c.imgsz as f32).max(2.0));
        c.max_occlusion = finite(c.max_occlusion, 0.7).clamp(0.0, 1.0);
        c.min_inside = finite(c.min_inside, 0.4).clamp(0.01, 1.0);
        c.clutter = finite(c.clutter, 1.0).clamp(0.0, 100.0);
        c.noise = finite(c.noise, 8.0).clamp(0.0, 128.0);
        c
    }
}

/// A dataset split; images of different splits are drawn independently.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Split {
    /// Training images (`images/train`).
    Train,
    /// Validation images (`images/val`).
    Val,
}

impl Split {
    /// `"train"` or `"val"`, the directory name.
    pub fn as_str(self) -> &'static str {
        match self {
            Split::Train => "train",
            Split::Val => "val",
        }
    }
}

impl std::fmt::Display for Split {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The synthetic images of one split as a [`SampleSource`]: sample `i` is generated on demand
/// (the same image [`write_dataset`] writes as file `i`), nothing touches the disk.
#[derive(Debug, Clone)]
pub struct SynthSource {
    cfg: SynthConfig,
    split: Split,
}

impl SynthSource {
    /// A source of `cfg.len(split)` samples; fails on an invalid config.
    pub fn new(cfg: SynthConfig, split: Split) -> Result<Self, SynthError> {
        cfg.validate()?;
        Ok(SynthSource { cfg, split })
    }

    /// The settings.
    pub fn config(&self) -> &SynthConfig {
        &self.cfg
    }

    /// The split.
    pub fn split(&self) -> Split {
        self.split
    }
}

impl SampleSource for SynthSource {
    fn len(&self) -> usize {
        self.cfg.len(self.split)
    }

    fn get(&self, index: usize) -> Result<Sample, crate::DataError> {
        Ok(generate_sample(&self.cfg, self.split, index))
    }

    fn shape(&self, _index: usize) -> Option<(u32, u32)> {
        Some((self.cfg.imgsz, self.cfg.imgsz))
    }

    fn name(&self, index: usize) -> String {
        format!("synth/{}/{index:06}", self.split)
    }
}
