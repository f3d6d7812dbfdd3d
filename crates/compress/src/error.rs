//! Errors of the compression crate.

use yolo_compress_model::{ArchError, WeightsError};

/// Errors from pruning.
#[derive(Debug, thiserror::Error)]
pub enum PruneError {
    /// The architecture is invalid.
    #[error(transparent)]
    Arch(#[from] ArchError),
    /// Adaptive BN, validation or a gradient pass failed.
    #[error(transparent)]
    Train(#[from] yolo_compress_train::TrainError),
    /// Reading or writing a tensor failed.
    #[error(transparent)]
    Weights(#[from] WeightsError),
    /// The channel description of a block disagrees with the model.
    #[error("channel graph: {0}")]
    Graph(String),
    /// A plan does not fit its graph.
    #[error("pruning plan: {0}")]
    Plan(String),
    /// The model's tensors do not match the graph (e.g. a fused model).
    #[error("tensor {key}: {msg}")]
    Tensor {
        /// State-dict key.
        key: String,
        /// What is wrong.
        msg: String,
    },
    /// A model without a resolved architecture (custom backbone) cannot be pruned this way.
    #[error(
        "the model has no resolved architecture: this function needs a model built from an Architecture (custom backbones: use DetectorGraph and prune_detector)"
    )]
    NoArchitecture,
    /// An option is out of range.
    #[error("invalid option {name}: {msg}")]
    Option {
        /// The option.
        name: &'static str,
        /// Why.
        msg: String,
    },
}

/// Errors from quantization.
#[derive(Debug, thiserror::Error)]
pub enum QuantError {
    /// The architecture is invalid.
    #[error(transparent)]
    Arch(#[from] ArchError),
    /// Calibration, validation or training failed.
    #[error(transparent)]
    Train(#[from] yolo_compress_train::TrainError),
    /// Reading or writing a tensor failed.
    #[error(transparent)]
    Weights(#[from] WeightsError),
    /// The model cannot be lowered to a deployed graph.
    #[error("quantization graph: {0}")]
    Graph(String),
    /// A model without a resolved architecture (custom backbone) cannot be quantized.
    #[error("the model has no resolved architecture: quantization needs a model built from an Architecture")]
    NoArchitecture,
    /// An int8 checkpoint is unreadable or inconsistent.
    #[error("int8 checkpoint {path}: {msg}")]
    Checkpoint {
        /// The file.
        path: std::path::PathBuf,
        /// What is wrong.
        msg: String,
    },
    /// An option is out of range.
    #[error("invalid option {name}: {msg}")]
    Option {
        /// The option.
        name: &'static str,
        /// Why.
        msg: String,
    },
}

/// Errors from knowledge distillation.
#[derive(Debug, thiserror::Error)]
pub enum DistillError {
    /// Student and teacher outputs do not line up (levels, anchors, grid or classes).
    #[error("distillation: {0}")]
    Shape(String),
    /// Student and teacher heads differ.
    #[error("distillation: the teacher's head does not match the student's: {0}")]
    Head(String),
}
