//! # yolo-compress-train
//!
//! Training and evaluation of YOLOv5 detectors, reproducing ultralytics' recipe:
//!
//! - [`loss`]: the YOLOv5 loss (target assignment, CIoU, objectness and class BCE);
//! - [`optim`]: SGD-Nesterov / AdamW with ultralytics' three parameter groups, warmup, LR schedules,
//!   global-norm gradient clipping, and the EMA of weights;
//! - [`autoanchor`]: best-possible-recall check, k-means and genetic evolution of anchors;
//! - [`metrics`]: matching at IoU 0.50:0.05:0.95, AP, P/R at max F1, confusion matrix;
//! - [`val`]: the validation loop (`ycomp val`);
//! - [`trainer`]: the training loop, run folders, resumable checkpoints (`ycomp train`);
//! - [`plots`]: PNG plots of a run.

pub mod adaptive_bn;
pub mod autoanchor;
pub mod error;
pub mod loss;
pub mod metrics;
pub mod optim;
pub mod plots;
pub mod trainer;
pub mod val;

pub use error::TrainError;
