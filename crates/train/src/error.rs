//! Errors of the training crate.

use std::path::PathBuf;

/// Everything that can stop training or validation.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    /// Reading or writing a file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file at fault.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A configuration value is out of range or inconsistent.
    #[error("invalid training configuration: {0}")]
    Config(String),
    /// The loss became NaN or infinite.
    #[error("non-finite loss ({value}) at epoch {epoch}, batch {batch}; the last good checkpoint is kept")]
    NonFiniteLoss {
        /// The offending loss value.
        value: f32,
        /// Epoch (0-based).
        epoch: usize,
        /// Batch within the epoch.
        batch: usize,
    },
    /// A checkpoint could not be read or does not match the model.
    #[error("checkpoint {path}: {reason}")]
    Checkpoint {
        /// The file at fault.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// Weights could not be loaded or saved.
    #[error(transparent)]
    Weights(#[from] yolo_compress_model::WeightsError),
    /// The model architecture is invalid.
    #[error(transparent)]
    Arch(#[from] yolo_compress_model::ArchError),
    /// The data loader failed.
    #[error(transparent)]
    Loader(#[from] yolo_compress_data::loader::LoaderError),
    /// A plot could not be drawn.
    #[error("plot {path}: {reason}")]
    Plot {
        /// The PNG being written.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
}
