//! The YOLOv5 loss, reproducing ultralytics/yolov5 v7.0 `utils/loss.py` (`ComputeLoss`,
//! `build_targets`, `FocalLoss`) and `utils/metrics.py` (`bbox_iou`).
//!
//! - [`bce`]: binary cross-entropy with logits (soft targets, `pos_weight`, mean reduction) and the
//!   focal variant, as `nn.BCEWithLogitsLoss` / `FocalLoss`;
//! - [`iou`]: IoU / GIoU / DIoU / CIoU of paired `xywh` boxes, `[n, 4]` → `[n]`, as `bbox_iou`;
//! - [`targets`]: host-side target assignment, as `ComputeLoss.build_targets`;
//! - [`yolo_loss`]: [`YoloLoss`], the box + objectness + class loss over the raw head outputs
//!   `[B, na, ny, nx, 5 + nc]`, and [`YoloLossConfig`], its gains scaled as `train.py` scales them.

pub mod bce;
pub mod iou;
pub mod targets;
pub mod yolo_loss;

pub use bce::{FOCAL_ALPHA, bce_or_focal, bce_with_logits, bce_with_logits_elementwise, focal_bce_with_logits};
pub use iou::{IOU_EPS, IouKind, bbox_iou};
pub use targets::{LevelTargets, build_targets};
pub use yolo_loss::{LossOutput, YoloLoss, YoloLossConfig};
