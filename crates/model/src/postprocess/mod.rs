//! Post-processing of decoded YOLOv5 outputs.
//!
//! The Detect head (in eval mode) yields rows `(xc, yc, w, h, obj, cls_0 .. cls_{nc-1})` with the
//! box in input pixels and `obj`/`cls` already passed through the sigmoid. This module turns those
//! rows into final [`Detection`]s: confidence filtering followed by class-aware greedy
//! non-maximum suppression, with the same semantics as ultralytics YOLOv5 v7.0
//! `non_max_suppression` (see [`nms`]).
//!
//! Everything here works on plain `f32` slices and needs no tensor backend.

pub mod nms;

pub use nms::{
    Detection, NmsConfig, NmsError, box_iou, box_iou_matrix, non_max_suppression, non_max_suppression_batch,
};
