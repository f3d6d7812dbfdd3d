//! Errors of the data crate; each names the file or the setting at fault.

use std::path::PathBuf;

/// Everything that can go wrong while loading, listing or pre-processing images.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    /// An image file could not be opened or decoded.
    #[error("cannot read image {}: {source}", path.display())]
    ImageRead {
        /// The file that failed.
        path: PathBuf,
        /// The underlying I/O or decoding error.
        #[source]
        source: image::ImageError,
    },
    /// A directory could not be listed.
    #[error("cannot list directory {}: {source}", path.display())]
    ReadDir {
        /// The directory that failed.
        path: PathBuf,
        /// The underlying I/O error.
        #[source]
        source: std::io::Error,
    },
    /// An image with zero width or height was given where pixels are needed.
    #[error("image has zero size ({width}x{height} px)")]
    EmptyImage {
        /// Width in pixels.
        width: u32,
        /// Height in pixels.
        height: u32,
    },
    /// A letterbox or resize setting that cannot work (zero target size, zero stride, ...).
    #[error("invalid letterbox setting: {reason}")]
    InvalidLetterbox {
        /// What is wrong, with the offending value.
        reason: String,
    },
    /// A folder of images was expected and `path` is not one.
    #[error("{}: not a folder", path.display())]
    NotAFolder {
        /// The path given.
        path: PathBuf,
    },
    /// A folder holds no image files.
    #[error("{}: no images (jpg, jpeg, png, bmp, webp) found", path.display())]
    NoImages {
        /// The folder.
        path: PathBuf,
    },
    /// A sample index past the end of a source.
    #[error("sample {index} requested from a source of {len} samples")]
    IndexOutOfRange {
        /// The index asked for.
        index: usize,
        /// The number of samples.
        len: usize,
    },
    /// Box lists given for a source do not match its number of samples.
    #[error("{labels} box lists given for {samples} samples (one list per sample is needed)")]
    LabelCountMismatch {
        /// Samples of the source.
        samples: usize,
        /// Box lists given.
        labels: usize,
    },
}
