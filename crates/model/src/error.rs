//! Typed errors of the model crate: architecture parsing and weight loading.

use std::path::PathBuf;

/// An error raised while reading or resolving a model configuration (YAML or architecture JSON).
#[derive(Debug, thiserror::Error)]
pub enum ArchError {
    /// The configuration file could not be read.
    #[error("cannot read model config {path}: {source}")]
    Io {
        /// File at fault.
        path: PathBuf,
        /// Underlying I/O error.
        source: std::io::Error,
    },
    /// The YAML text is not valid YAML or misses required keys.
    #[error("invalid model YAML {origin}: {message}")]
    Yaml {
        /// File name or built-in name.
        origin: String,
        /// What is wrong.
        message: String,
    },
    /// A layer row is malformed.
    #[error("{origin}: layer {index} ({module}): {message}")]
    Layer {
        /// File name or built-in name.
        origin: String,
        /// Index of the row in backbone + head.
        index: usize,
        /// Module name of the row.
        module: String,
        /// What is wrong.
        message: String,
    },
    /// The name is neither a built-in config nor an existing file.
    #[error("unknown model '{0}': not a built-in config (see `ycomp models`) and no such file")]
    Unknown(String),
    /// A resolved architecture is inconsistent (e.g. a channel count that does not match its input).
    #[error("invalid architecture: {0}")]
    Invalid(String),
}

/// An error raised while loading or saving weights.
#[derive(Debug, thiserror::Error)]
pub enum WeightsError {
    /// The weights file could not be opened or read.
    #[error("cannot read weights {path}: {message}")]
    Read {
        /// File at fault.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
    /// The file's pickle names a Python callable that a state_dict never contains.
    #[error(
        "refusing {path}: its pickle references `{callable}`, which a plain state_dict never contains \
         (only tensors, OrderedDict and torch rebuild functions are accepted; nothing was executed)"
    )]
    UnsafePickle {
        /// File at fault.
        path: PathBuf,
        /// The Python callable named by the pickle.
        callable: String,
    },
    /// The file is not a state_dict (e.g. a whole pickled model or a checkpoint dict).
    #[error("{path} is not a plain state_dict: {message}")]
    NotStateDict {
        /// File at fault.
        path: PathBuf,
        /// What was found instead and how to convert it.
        message: String,
    },
    /// A tensor the model needs is not in the file.
    #[error("missing tensor `{key}` (expected shape {expected:?}) in {path}")]
    Missing {
        /// File at fault.
        path: PathBuf,
        /// State-dict key.
        key: String,
        /// Shape the model expects.
        expected: Vec<usize>,
    },
    /// The file holds a tensor the model does not have.
    #[error("unexpected tensor `{key}` with shape {shape:?} in {path}: the file does not fit this model")]
    Unexpected {
        /// File at fault.
        path: PathBuf,
        /// State-dict key.
        key: String,
        /// Its shape in the file.
        shape: Vec<usize>,
    },
    /// A tensor's shape differs from the model's.
    #[error("shape mismatch for `{key}` in {path}: file has {found:?}, model expects {expected:?}")]
    Shape {
        /// File at fault.
        path: PathBuf,
        /// State-dict key.
        key: String,
        /// Shape in the file.
        found: Vec<usize>,
        /// Shape the model expects.
        expected: Vec<usize>,
    },
    /// A tensor has a data type that cannot be converted to f32.
    #[error("tensor `{key}` in {path} has unsupported dtype {dtype}")]
    Dtype {
        /// File at fault.
        path: PathBuf,
        /// State-dict key.
        key: String,
        /// The dtype found.
        dtype: String,
    },
    /// The native checkpoint lacks or has a corrupt architecture record.
    #[error("checkpoint {path}: {message}")]
    Checkpoint {
        /// File at fault.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// Writing a file failed.
    #[error("cannot write {path}: {source}")]
    Write {
        /// File at fault.
        path: PathBuf,
        /// Underlying I/O error.
        source: std::io::Error,
    },
    /// The architecture stored in a checkpoint is invalid.
    #[error(transparent)]
    Arch(#[from] ArchError),
}
