//! # yolo-compress-compress
//!
//! Model compression for YOLOv5 detectors built with `yolo-compress-model`:
//!
//! - [`prune`]: the channel-dependency graph, importance criteria, selection and channel surgery
//!   (L1/L2/FPGM/Taylor, network slimming, EagleEye).

pub mod error;
pub mod prune;

pub use error::PruneError;
