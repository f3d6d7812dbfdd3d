//! Datasets on disk: ultralytics data YAML, YOLO labels, verification and its cache.
//!
//! - [`DataConfig`]: the data YAML (`path`, `train`/`val`/`test`, `names`/`nc`), paths resolved.
//! - [`parse_labels`], [`label_path`]: YOLO label files (`class xc yc w h` normalised, or
//!   ultralytics polygons read as their bounding box).
//! - [`verify_split`]: decodes every image, parses every label file, reports and skips what is
//!   bad (see [`SplitReport`]), cached next to the labels.
//! - [`YoloDataset`]: a verified split as a [`SampleSource`](crate::SampleSource).

mod cache;
mod config;
mod error;
mod labels;
mod verify;
mod yolo;

pub use cache::{CACHE_VERSION, cache_key, cache_path};
pub use config::{DataConfig, MAX_CLASSES, Split};
pub use error::DatasetError;
pub use labels::{COORD_TOLERANCE, LabelError, LabelRow, ParsedLabels, label_path, parse_labels};
pub use verify::{
    CorruptFile, DEFAULT_MAX_PIXELS, SplitReport, Verified, VerifiedImage, VerifyOptions, check_image,
    check_jpeg_complete, verify_images, verify_split,
};
pub use yolo::YoloDataset;
