//! Loader settings and errors.

use serde::{Deserialize, Serialize};

use crate::augment::{Hyp, HypError};

/// Settings of a [`Loader`](super::Loader). The default is ultralytics' training loader: batch 16,
/// 640 px, shuffled, augmented with `hyp.scratch-low` (mosaic on), not rectangular, stride 32.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct LoaderConfig {
    /// Images per batch (default 16).
    pub batch_size: usize,
    /// Training / validation image size in pixels: the long side after resizing, and the side of
    /// the square letterbox or mosaic (default 640). Must be a multiple of `stride`.
    pub imgsz: u32,
    /// Worker threads that decode and augment (default 2). 0 runs everything on the consuming
    /// thread, one sample after the other (same batches, handy for debugging).
    pub workers: usize,
    /// Batches that may be ready or in progress ahead of the consumer (default 2, at least 1):
    /// bounds memory to about `prefetch * batch_size` images.
    pub prefetch: usize,
    /// Shuffle the order every epoch, from `(seed, epoch)` (default `true`). Ignored with `rect`,
    /// whose order is sorted by aspect ratio (ultralytics does the same).
    pub shuffle: bool,
    /// Seed of the order and of every random draw (default 0).
    pub seed: u64,
    /// Apply training augmentation from `hyp` (default `true`). Off, images are only resized and
    /// letterboxed (validation).
    pub augment: bool,
    /// Augmentation settings (ultralytics names and defaults).
    pub hyp: Hyp,
    /// Rectangular batches (default `false`): images sorted by aspect ratio and letterboxed to one
    /// stride-multiple shape per batch, padded by half a stride when `augment` is off (`val.py`)
    /// and not at all when it is on (`train.py --rect`). No mosaic in this mode.
    pub rect: bool,
    /// The model's largest stride (default 32): rectangular shapes are multiples of it.
    pub stride: u32,
    /// Drop the last batch when it is smaller than `batch_size` (default `false`).
    pub drop_last: bool,
}

impl Default for LoaderConfig {
    fn default() -> Self {
        Self {
            batch_size: 16,
            imgsz: 640,
            workers: 2,
            prefetch: 2,
            shuffle: true,
            seed: 0,
            augment: true,
            hyp: Hyp::default(),
            rect: false,
            stride: 32,
            drop_last: false,
        }
    }
}

impl LoaderConfig {
    /// Training settings (the default) with the given image size and batch size.
    pub fn train(imgsz: u32, batch_size: usize) -> Self {
        Self { imgsz, batch_size, ..Self::default() }
    }

    /// Validation settings as `val.py`: no augmentation, rectangular batches padded by half a
    /// stride, in aspect-ratio order.
    pub fn val(imgsz: u32, batch_size: usize) -> Self {
        Self { imgsz, batch_size, augment: false, rect: true, shuffle: false, ..Self::default() }
    }

    /// Whether samples are built as mosaics at all (`augment && !rect && hyp.mosaic > 0`).
    pub fn uses_mosaic(&self) -> bool {
        self.augment && !self.rect && self.hyp.mosaic > 0.0
    }

    /// Checks the settings; each error names the field.
    pub fn validate(&self) -> Result<(), LoaderError> {
        let bad = |field: &'static str, reason: String| Err(LoaderError::Config { field, reason });
        if self.batch_size == 0 {
            return bad("batch_size", "must be at least 1".into());
        }
        if self.prefetch == 0 {
            return bad("prefetch", "must be at least 1".into());
        }
        if self.stride == 0 {
            return bad("stride", "must be at least 1".into());
        }
        if self.imgsz == 0 || !self.imgsz.is_multiple_of(self.stride) {
            return bad(
                "imgsz",
                format!(
                    "{} is not a positive multiple of stride {} (use {})",
                    self.imgsz,
                    self.stride,
                    self.imgsz.max(1).div_ceil(self.stride) * self.stride
                ),
            );
        }
        self.hyp.validate()?;
        Ok(())
    }
}

/// Why the loader could not produce a batch. A sample that fails to decode is not an error: it is
/// replaced and reported in [`Batch::warnings`](super::Batch::warnings).
#[derive(Debug, thiserror::Error)]
pub enum LoaderError {
    /// A setting that cannot work.
    #[error("invalid loader setting `{field}`: {reason}")]
    Config {
        /// The field at fault.
        field: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// The augmentation settings are invalid.
    #[error(transparent)]
    Hyp(#[from] HypError),
    /// Pre-processing failed on a decoded image (an empty image or a zero letterbox shape).
    #[error(transparent)]
    Data(#[from] crate::error::DataError),
    /// The source has no samples.
    #[error("the sample source is empty")]
    EmptySource,
    /// Every sample of the source failed to decode, so no replacement exists.
    #[error("no usable sample: all {count} samples failed to decode (last: {last})")]
    NoUsableSamples {
        /// Number of samples tried.
        count: usize,
        /// The last failure.
        last: String,
    },
    /// A worker thread panicked while building a sample (a bug: please report it).
    #[error("loader worker panicked on sample {position} of the epoch: {message}")]
    WorkerPanic {
        /// Position of the sample in the epoch order.
        position: usize,
        /// The panic message.
        message: String,
    },
    /// The images of one batch came out with different shapes (a bug: please report it).
    #[error("batch {batch}: image {image} is {got:?} but the batch is {want:?} (height, width)")]
    BatchShape {
        /// Batch number in the epoch.
        batch: usize,
        /// Image index in the batch.
        image: usize,
        /// Its `(height, width)`.
        got: (usize, usize),
        /// The first image's `(height, width)`.
        want: (usize, usize),
    },
    /// The worker threads ended before delivering every sample.
    #[error("loader workers stopped unexpectedly")]
    WorkersGone,
}
