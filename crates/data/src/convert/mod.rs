//! Importers from other annotation formats (COCO JSON, Pascal VOC XML) to YOLO.
//!
//! Both write an ultralytics-format dataset: `OUT/images/<split>/…` (the image files, copied or
//! linked), `OUT/labels/<split>/….txt` (one `class xc yc w h` row per object, normalised, six
//! decimals) and `OUT/data.yaml`. Converting another split into the same `OUT` later (COCO's
//! train and val JSONs, say) adds that split to the existing `data.yaml`, provided the class
//! names agree.
//!
//! Problems with single annotations or images (unknown image or category, degenerate box,
//! missing image file, two images writing the same label file) are reported in
//! [`ConvertReport::skipped`] and the rest is converted; annotations left out by design
//! (`iscrowd`, VOC `difficult`, classes not in `--names`) are counted in
//! [`ConvertReport::ignored`]. Files that cannot be read or parsed, and values of the wrong type,
//! are [`ConvertError`]s naming the file and the annotation or element.

pub mod coco;
mod error;
mod output;
pub mod voc;

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Serialize;

pub use coco::convert_coco;
pub use error::ConvertError;
pub use voc::convert_voc;

use crate::dataset::Split;

/// How image files get into the output dataset.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LinkMode {
    /// Copy the file (default).
    #[default]
    Copy,
    /// Hard link (falls back to a copy, with a warning, across file systems).
    Hardlink,
    /// Symbolic link to the source's absolute path.
    Symlink,
}

impl std::str::FromStr for LinkMode {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "copy" => Ok(LinkMode::Copy),
            "hardlink" => Ok(LinkMode::Hardlink),
            "symlink" => Ok(LinkMode::Symlink),
            _ => Err(format!("unknown link mode `{s}` (expected copy, hardlink or symlink)")),
        }
    }
}

/// Settings of a conversion.
#[derive(Debug, Clone, Default)]
pub struct ConvertOptions {
    /// The split to write. COCO: default `train`. VOC: default every list of
    /// `ImageSets/Main/{train,val,test}.txt` that exists, each into its split, or all of
    /// `Annotations/` into `train` when there is none; with a split given, its list when it
    /// exists, else all of `Annotations/`.
    pub split: Option<Split>,
    /// Class names, in class-id order. Objects of other classes are left out. COCO default: the
    /// category names in ascending category-id order; VOC default: the object names found,
    /// sorted.
    pub names: Option<Vec<String>>,
    /// Copy or link the images.
    pub link: LinkMode,
    /// VOC: keep objects marked `<difficult>1</difficult>` (default: leave them out, as
    /// ultralytics' VOC.yaml does).
    pub keep_difficult: bool,
    /// COCO: the folder that `file_name`s are relative to (default: the JSON's folder).
    pub images: Option<PathBuf>,
}

/// What was converted into one split.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ConvertedSplit {
    /// Images written (each with a label file, empty for backgrounds).
    pub images: usize,
    /// Objects written.
    pub instances: usize,
    /// Images with no object.
    pub empty: usize,
}

/// An annotation or image that was not converted, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Skipped {
    /// The source file (the COCO JSON, a VOC XML).
    pub file: String,
    /// Which entry: `annotation 17`, `image 3 (a.jpg)`, `object 2 (line 14)`.
    pub item: String,
    /// What is wrong.
    pub reason: String,
}

/// The outcome of a conversion.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ConvertReport {
    /// The `data.yaml` written (empty when nothing was converted, and nothing written).
    pub data_yaml: PathBuf,
    /// Class names, in class-id order.
    pub names: Vec<String>,
    /// Per split written.
    pub splits: BTreeMap<String, ConvertedSplit>,
    /// Entries left out because something is wrong with them.
    pub skipped: Vec<Skipped>,
    /// Entries left out by design, counted by reason (`iscrowd`, `difficult`, `not in --names`).
    pub ignored: BTreeMap<String, usize>,
    /// Non-fatal notes.
    pub warnings: Vec<String>,
}
