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
}
