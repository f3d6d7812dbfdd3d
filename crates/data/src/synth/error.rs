//! Errors of the synthetic dataset generator; each names the setting or the path at fault.

use std::path::PathBuf;

/// What can go wrong while configuring or writing a synthetic dataset.
#[derive(Debug, thiserror::Error)]
pub enum SynthError {
    /// A [`SynthConfig`](super::SynthConfig) setting out of range.
    #[error("invalid synth setting {field}: {reason}")]
    InvalidConfig {
        /// The setting, as named in the config and on the command line.
        field: &'static str,
        /// What is wrong, with the offending value.
        reason: String,
    },
    /// The output directory already holds a dataset (or other files where the dataset goes) and
    /// overwriting was not asked for.
    #[error("{} is not empty (pass --overwrite to replace a synthetic dataset there)", path.display())]
    OutputExists {
        /// The file or directory found.
        path: PathBuf,
    },
    /// `--overwrite` was asked for, but the `data.yaml` there was not written by this generator:
    /// that dataset is left alone.
    #[error("{} was not written by ycomp synth; not overwriting that dataset", path.display())]
    NotSynthetic {
        /// The foreign data YAML.
        path: PathBuf,
    },
    /// A directory could not be created or listed.
    #[error("cannot create or list directory {}: {source}", path.display())]
    Dir {
        /// The directory.
        path: PathBuf,
        /// The underlying I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A file could not be written or removed.
    #[error("cannot write {}: {source}", path.display())]
    Write {
        /// The file.
        path: PathBuf,
        /// The underlying I/O error.
        #[source]
        source: std::io::Error,
    },
    /// An image could not be encoded.
    #[error("cannot encode image {}: {source}", path.display())]
    Encode {
        /// The image file being written.
        path: PathBuf,
        /// The encoder's error.
        #[source]
        source: image::ImageError,
    },
    /// The data YAML could not be serialised.
    #[error("cannot serialise {}: {source}", path.display())]
    Yaml {
        /// The YAML file being written.
        path: PathBuf,
        /// The serialiser's error.
        #[source]
        source: serde_norway::Error,
    },
}
