//! The batch loader: parallel decode + augmentation, bounded prefetch, deterministic by seed.
//!
//! [`Loader`] turns any [`SampleSource`](crate::SampleSource) into batches of
//! `[B, 3, H, W]` image tensors and `[N, 6]` target tensors on a Burn [`Device`](burn::tensor::Device),
//! as ultralytics' `LoadImagesAndLabels` + `collate_fn` do:
//!
//! - **training** ([`LoaderConfig::train`]): mosaic with probability `hyp.mosaic` (else resize +
//!   letterbox + random perspective), mixup, HSV, flips; shuffled per epoch;
//! - **validation** ([`LoaderConfig::val`]): resize + letterbox only, rectangular batches sorted by
//!   aspect ratio, with [`SampleMeta::letterbox`] to map predictions back to original pixels.
//!
//! Worker threads build samples ahead of the consumer, never more than
//! [`LoaderConfig::prefetch`] batches, and the batches come out in order. Every random draw of
//! the sample at position `k` of epoch `e` comes from a generator keyed by `(seed, e, k)` (the
//! order from `(seed, e)`), so a seed gives the same batches with any number of workers. A sample
//! whose `get` fails is replaced by the next index that decodes and reported in
//! [`Batch::warnings`]; only a source where nothing decodes is an error.

mod batch;
mod config;
mod epoch;
mod pipeline;

pub use batch::Batch;
pub use config::{LoaderConfig, LoaderError};
pub use epoch::{Epoch, Loader};
pub use pipeline::{Prepared, SampleMeta, order_rng, sample_rng};
