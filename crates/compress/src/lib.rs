//! # yolo-compress-compress
//!
//! Model compression for YOLOv5 detectors built with `yolo-compress-model`:
//!
//! - [`prune`]: the channel-dependency graph, importance criteria, selection and channel surgery
//!   (L1/L2/FPGM/Taylor, network slimming, EagleEye);
//! - [`quant`]: int8 quantization — fake quantization with the straight-through estimator, BN
//!   folding, calibration (min-max, percentile, MSE, entropy), post-training quantization, QAT,
//!   per-layer sensitivity and int8 checkpoints;
//! - [`distill`]: knowledge distillation from a teacher detector while training.

pub mod distill;
pub mod error;
pub mod prune;
pub mod quant;

pub use error::{DistillError, PruneError, QuantError};
