//! Errors of the importers; each names the file, and the annotation or element where there is one.

use std::path::PathBuf;

/// Everything that stops a conversion.
#[derive(Debug, thiserror::Error)]
pub enum ConvertError {
    /// A file or folder could not be read.
    #[error("cannot read {}: {source}", path.display())]
    Read {
        /// The file or folder.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// An output file could not be written.
    #[error("cannot write {}: {source}", path.display())]
    Write {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The input is not well-formed JSON or XML (the message has the line and column).
    #[error("{}: {message}", path.display())]
    Syntax {
        /// The file.
        path: PathBuf,
        /// What the parser said.
        message: String,
    },
    /// An entry of the input has a value of the wrong type or a missing field.
    #[error("{}: {at}: {reason}", path.display())]
    Invalid {
        /// The file.
        path: PathBuf,
        /// The entry: `annotations[3] (id 17)`, `<object> at line 12`, `categories[0]`.
        at: String,
        /// What is wrong.
        reason: String,
    },
    /// The output folder already has a `data.yaml` that this conversion cannot extend.
    #[error("{}: {reason}", path.display())]
    Existing {
        /// The existing `data.yaml`.
        path: PathBuf,
        /// Why it cannot be extended (e.g. other class names).
        reason: String,
    },
    /// The options cannot work (e.g. `--names` empty or with duplicates).
    #[error("invalid conversion option: {0}")]
    Options(String),
}
