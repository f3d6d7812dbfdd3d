//! Errors of loading a YOLO dataset: each names the data YAML (and the key) or the file at fault.

use std::path::PathBuf;

/// Everything that stops a dataset from opening.
///
/// Problems with single images or label files are not errors: verification reports and skips
/// them (see [`SplitReport`](super::SplitReport)). Only a split with no usable image at all is.
#[derive(Debug, thiserror::Error)]
pub enum DatasetError {
    /// A file (the data YAML, an image list) could not be read.
    #[error("cannot read {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A directory could not be listed.
    #[error("cannot list {}: {source}", path.display())]
    ReadDir {
        /// The directory.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The data YAML is not valid YAML, or its top level is not a mapping.
    #[error("{}: invalid data YAML: {message}", path.display())]
    Yaml {
        /// The data YAML.
        path: PathBuf,
        /// What the YAML parser said.
        message: String,
    },
    /// A key of the data YAML has a value that cannot be used.
    #[error("{}: key `{key}`: {reason}", path.display())]
    Key {
        /// The data YAML.
        path: PathBuf,
        /// The key (`names`, `nc`, `train`, `names.3`, ...).
        key: String,
        /// What is wrong, with the offending value.
        reason: String,
    },
    /// The requested split has no entry in the data YAML.
    #[error("{}: no `{split}` split (keys present: {present})", path.display())]
    MissingSplit {
        /// The data YAML.
        path: PathBuf,
        /// The split asked for.
        split: String,
        /// The split keys the YAML does have, comma-separated.
        present: String,
    },
    /// A split names a directory or list file that does not exist.
    #[error("{}: key `{key}`: {} does not exist", path.display(), target.display())]
    SplitNotFound {
        /// The data YAML.
        path: PathBuf,
        /// The split key.
        key: String,
        /// The resolved path that is missing.
        target: PathBuf,
    },
    /// After verification, a split has no usable image.
    #[error(
        "{}: split `{split}` has no usable images ({found} found, {corrupt} corrupt){}",
        path.display(),
        first_reason.as_ref().map(|r| format!("; first problem: {r}")).unwrap_or_default()
    )]
    NoUsableImages {
        /// The data YAML.
        path: PathBuf,
        /// The split.
        split: String,
        /// Image files found.
        found: usize,
        /// Of which corrupt.
        corrupt: usize,
        /// The first corrupt file and its reason, if any.
        first_reason: Option<String>,
    },
}
