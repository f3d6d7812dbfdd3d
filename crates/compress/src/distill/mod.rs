//! Knowledge distillation (Hinton et al., "Distilling the Knowledge in a Neural Network", 2015)
//! for YOLOv5 detectors: a student (typically a pruned model) is trained on the detection loss plus
//! a loss that pulls its raw Detect outputs towards those of a frozen teacher (typically the
//! unpruned model) on the same augmented batch.
//!
//! - [`output`]: the output-level loss, objectness-weighted as in Mehta & Ozturk, "Object
//!   detection at 200 Frames Per Second" (ECCV workshops 2018);
//! - [`distiller`]: [`Distiller`], the [`TrainHook`](yolo_compress_train::trainer::TrainHook) that
//!   runs the teacher and adds the loss in `ycomp train --teacher`.
//!
//! Teacher and student must share the head's layout (levels, anchors per level, classes); their
//! widths and backbones may differ, which is exactly the pruned-student case.

pub mod distiller;
pub mod output;

pub use distiller::Distiller;
pub use output::{OutputDistill, OutputDistillConfig};
