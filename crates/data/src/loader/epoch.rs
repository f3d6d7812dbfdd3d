//! The loader and its per-epoch iterator: worker threads, a bounded window of batches, in-order
//! delivery.
//!
//! Work is handed out one sample at a time, in epoch order, from a shared counter. A worker may
//! take the sample at position `k` only while `k / batch_size < consumed + prefetch`, where
//! `consumed` is the number of batches the consumer has taken: at most `prefetch` batches exist
//! (in progress or finished) ahead of the consumer, whatever the speed of either side. Finished
//! samples wait in a staging area until their batch is complete; the worker that completes a batch
//! collates it into one `[B, 3, H, W]` buffer (so the consumer only wraps buffers in tensors) and
//! sends it through a crossbeam channel of capacity `prefetch`; the consumer puts batches back in
//! order. Every sample draws its randomness from `sample_rng(seed, epoch, position)`, so the
//! batches are identical for any number of workers.

use std::collections::HashMap;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;

use burn::tensor::Device;
use crossbeam_channel::{Receiver, Sender};
use rand::seq::SliceRandom;

use super::batch::{Batch, HostBatch, Item, collate_host};
use super::config::{LoaderConfig, LoaderError};
use super::pipeline::{Pipeline, Prepared, order_rng, sample_rng};
use crate::augment::{RectBatches, rect_batches};
use crate::sample::SampleSource;

/// Batches of augmented samples from a [`SampleSource`], ultralytics-style, on a Burn device.
///
/// ```
/// use std::sync::Arc;
/// use burn::tensor::Device;
/// use image::{Rgb, RgbImage};
/// use yolo_compress_data::loader::{Loader, LoaderConfig};
/// use yolo_compress_data::{LabeledBox, Sample, VecSource};
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let sample = Sample {
///     image: RgbImage::from_pixel(96, 64, Rgb([114, 114, 114])),
///     boxes: vec![LabeledBox { class_id: 0, xyxy: [10.0, 10.0, 40.0, 30.0] }],
/// };
/// let source = Arc::new(VecSource(vec![sample; 10]));
/// let loader = Loader::new(source, LoaderConfig::train(64, 4), &Device::default())?;
/// for batch in loader.epoch(0) {
///     let batch = batch?;
///     assert_eq!(batch.images.dims()[1..], [3, 64, 64]);
///     for w in &batch.warnings {
///         eprintln!("warning: {w}");
///     }
/// }
/// # Ok(())
/// # }
/// ```
pub struct Loader {
    source: Arc<dyn SampleSource>,
    cfg: Arc<LoaderConfig>,
    device: Device,
    rect: Option<Arc<RectBatches>>,
    warnings: Vec<String>,
}

impl std::fmt::Debug for Loader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Loader")
            .field("samples", &self.source.len())
            .field("cfg", &self.cfg)
            .field("device", &self.device)
            .finish_non_exhaustive()
    }
}

impl Loader {
    /// A loader over `source` producing tensors on `device`. Checks the settings; in `rect` mode
    /// reads every sample's shape (decoding those whose [`SampleSource::shape`] is unknown) to
    /// sort them by aspect ratio.
    pub fn new(source: Arc<dyn SampleSource>, cfg: LoaderConfig, device: &Device) -> Result<Self, LoaderError> {
        cfg.validate()?;
        if source.is_empty() {
            return Err(LoaderError::EmptySource);
        }
        let mut warnings = Vec::new();
        let rect = if cfg.rect {
            let shapes: Vec<(u32, u32)> = (0..source.len())
                .map(|i| {
                    source.shape(i).unwrap_or_else(|| match source.get(i) {
                        Ok(s) => (s.image.height(), s.image.width()),
                        Err(e) => {
                            warnings.push(format!("{}: {e}; shape unknown, sorted as square", source.name(i)));
                            (cfg.imgsz, cfg.imgsz)
                        }
                    })
                })
                .collect();
            let pad = if cfg.augment { 0.0 } else { 0.5 };
            Some(Arc::new(rect_batches(&shapes, cfg.batch_size, cfg.imgsz, cfg.stride, pad)))
        } else {
            None
        };
        Ok(Self { source, cfg: Arc::new(cfg), device: device.clone(), rect, warnings })
    }

    /// The settings.
    pub fn config(&self) -> &LoaderConfig {
        &self.cfg
    }

    /// The device the batches are created on.
    pub fn device(&self) -> &Device {
        &self.device
    }

    /// Batches per epoch.
    pub fn len(&self) -> usize {
        let (n, b) = (self.source.len(), self.cfg.batch_size);
        if self.cfg.drop_last { n / b } else { n.div_ceil(b) }
    }

    /// Whether an epoch has no batches (`drop_last` with fewer samples than a batch).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Samples per epoch (all of them unless `drop_last` drops a partial batch).
    pub fn num_samples(&self) -> usize {
        (self.len() * self.cfg.batch_size).min(self.source.len())
    }

    /// Messages about samples whose shape could not be read for rectangular batching.
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }

    /// The letterbox shape `(height, width)` of batch `batch`: the rectangular shape in `rect`
    /// mode, else `(imgsz, imgsz)`.
    pub fn batch_shape(&self, batch: usize) -> (u32, u32) {
        match &self.rect {
            Some(r) => r.shapes.get(batch).copied().unwrap_or((self.cfg.imgsz, self.cfg.imgsz)),
            None => (self.cfg.imgsz, self.cfg.imgsz),
        }
    }

    /// Source indices in the order of `epoch` (sorted by aspect ratio in `rect` mode, shuffled
    /// from `(seed, epoch)` when `shuffle`, else `0..n`), without the samples `drop_last` drops.
    pub fn order(&self, epoch: u64) -> Vec<usize> {
        let mut order: Vec<usize> = match &self.rect {
            Some(r) => r.order.clone(),
            None => {
                let mut o: Vec<usize> = (0..self.source.len()).collect();
                if self.cfg.shuffle {
                    o.shuffle(&mut order_rng(self.cfg.seed, epoch));
                }
                o
            }
        };
        order.truncate(self.num_samples());
        order
    }

    /// Builds the sample at `position` of `epoch` exactly as the batches contain it, as 8-bit
    /// pixels with boxes (for inspecting augmentation).
    pub fn prepare(&self, epoch: u64, position: usize) -> Result<Prepared, LoaderError> {
        let order = self.order(epoch);
        let index = *order.get(position).ok_or(LoaderError::Config {
            field: "position",
            reason: format!("{position} is past the {} samples of an epoch", order.len()),
        })?;
        let pipeline = Pipeline { source: &*self.source, cfg: &self.cfg };
        let shape = self.batch_shape(position / self.cfg.batch_size);
        pipeline.prepare(index, shape, &mut sample_rng(self.cfg.seed, epoch, position))
    }

    /// The batches of `epoch`, in order. Workers start at once and stop when the iterator is
    /// dropped.
    pub fn epoch(&self, epoch: u64) -> Epoch {
        let order = self.order(epoch);
        let shared = Arc::new(Shared {
            source: Arc::clone(&self.source),
            cfg: Arc::clone(&self.cfg),
            rect: self.rect.clone(),
            order,
            epoch,
            window: Mutex::new(Window { next: 0, consumed: 0, cancelled: false }),
            wake: Condvar::new(),
            staging: Mutex::new(HashMap::new()),
        });
        let workers = self.cfg.workers;
        let (tx, rx) = crossbeam_channel::bounded(self.cfg.prefetch);
        let handles = (0..workers)
            .map(|w| {
                let shared = Arc::clone(&shared);
                let tx = tx.clone();
                std::thread::Builder::new()
                    .name(format!("ycomp-loader-{w}"))
                    .spawn(move || worker(&shared, &tx))
                    .expect("spawning a loader thread")
            })
            .collect();
        drop(tx);
        Epoch {
            n_batches: self.len(),
            shared,
            rx: (workers > 0).then_some(rx),
            workers: handles,
            pending: HashMap::new(),
            next_batch: 0,
            device: self.device.clone(),
            finished: false,
        }
    }
}

/// A finished (or failed) sample waiting for the rest of its batch; `None` until it arrives.
type Slot = Option<Result<Item, LoaderError>>;

/// State shared by the workers and the consumer of one epoch.
struct Shared {
    source: Arc<dyn SampleSource>,
    cfg: Arc<LoaderConfig>,
    rect: Option<Arc<RectBatches>>,
    order: Vec<usize>,
    epoch: u64,
    window: Mutex<Window>,
    wake: Condvar,
    /// Finished samples of incomplete batches, by batch.
    staging: Mutex<HashMap<usize, Vec<Slot>>>,
}

/// The hand-out counter and the consumer's progress.
struct Window {
    /// Next position to hand out.
    next: usize,
    /// Batches the consumer has taken.
    consumed: usize,
    /// The epoch iterator was dropped.
    cancelled: bool,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Window> {
        self.window.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Positions of batch `batch`.
    fn batch_range(&self, batch: usize) -> std::ops::Range<usize> {
        let b = self.cfg.batch_size;
        batch * b..((batch + 1) * b).min(self.order.len())
    }

    /// Builds the sample at `position` (on any thread).
    fn build(&self, position: usize) -> Result<Item, LoaderError> {
        let b = self.cfg.batch_size;
        let shape = match &self.rect {
            Some(r) => r.shapes.get(position / b).copied().unwrap_or((self.cfg.imgsz, self.cfg.imgsz)),
            None => (self.cfg.imgsz, self.cfg.imgsz),
        };
        let pipeline = Pipeline { source: &*self.source, cfg: &self.cfg };
        let mut rng = sample_rng(self.cfg.seed, self.epoch, position);
        let prepared = pipeline.prepare(self.order[position], shape, &mut rng)?;
        let labels = prepared.label_rows();
        Ok(Item { image: prepared.sample.image, labels, meta: prepared.meta, warnings: prepared.warnings })
    }

    /// [`build`](Self::build) with a panic turned into an error.
    fn build_caught(&self, position: usize) -> Result<Item, LoaderError> {
        catch_unwind(AssertUnwindSafe(|| self.build(position))).unwrap_or_else(|payload| {
            let message = payload
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".into());
            Err(LoaderError::WorkerPanic { position, message })
        })
    }

    /// Files a finished sample; returns its batch's samples, in order, when it completes the batch.
    fn stage(&self, position: usize, item: Result<Item, LoaderError>) -> Option<Vec<Result<Item, LoaderError>>> {
        let b = self.cfg.batch_size;
        let (batch, slot) = (position / b, position % b);
        let len = self.batch_range(batch).len();
        let mut staging = self.staging.lock().unwrap_or_else(PoisonError::into_inner);
        let slots = staging.entry(batch).or_insert_with(|| (0..len).map(|_| None).collect());
        slots[slot] = Some(item);
        if slots.iter().all(Option::is_some) {
            staging.remove(&batch).map(|slots| slots.into_iter().flatten().collect())
        } else {
            None
        }
    }
}

/// A worker: takes positions inside the window, builds them, collates and sends the batches it
/// completes.
fn worker(shared: &Shared, tx: &Sender<Result<HostBatch, (usize, LoaderError)>>) {
    let (b, prefetch, total) = (shared.cfg.batch_size, shared.cfg.prefetch, shared.order.len());
    loop {
        let position = {
            let mut w = shared.lock();
            loop {
                if w.cancelled || w.next >= total {
                    return;
                }
                if w.next / b < w.consumed + prefetch {
                    w.next += 1;
                    break w.next - 1;
                }
                w = shared.wake.wait(w).unwrap_or_else(PoisonError::into_inner);
            }
        };
        let item = shared.build_caught(position);
        if let Some(items) = shared.stage(position, item) {
            let batch = position / b;
            let collated = collate_host(batch, items).map_err(|e| (batch, e));
            if tx.send(collated).is_err() {
                return;
            }
        }
    }
}

/// The batches of one epoch, in order (see [`Loader::epoch`]). Yields `Err` once and then stops if
/// a batch cannot be built (every sample corrupt, or a worker panic); corrupt samples alone are
/// replaced and reported in [`Batch::warnings`].
pub struct Epoch {
    shared: Arc<Shared>,
    rx: Option<Receiver<Result<HostBatch, (usize, LoaderError)>>>,
    workers: Vec<JoinHandle<()>>,
    pending: HashMap<usize, Result<HostBatch, LoaderError>>,
    next_batch: usize,
    n_batches: usize,
    device: Device,
    finished: bool,
}

impl Epoch {
    /// Batches not yet returned.
    pub fn remaining(&self) -> usize {
        if self.finished { 0 } else { self.n_batches - self.next_batch }
    }

    /// Waits for (or, without workers, builds) batch `batch`.
    fn take_batch(&mut self, batch: usize) -> Result<HostBatch, LoaderError> {
        match &self.rx {
            None => {
                let items = self.shared.batch_range(batch).map(|k| self.shared.build_caught(k)).collect();
                collate_host(batch, items)
            }
            Some(rx) => {
                while !self.pending.contains_key(&batch) {
                    match rx.recv().map_err(|_| LoaderError::WorkersGone)? {
                        Ok(host) => self.pending.insert(host.index(), Ok(host)),
                        Err((b, e)) => self.pending.insert(b, Err(e)),
                    };
                }
                self.pending.remove(&batch).unwrap_or(Err(LoaderError::WorkersGone))
            }
        }
    }

    /// Stops the workers and waits for them.
    fn shutdown(&mut self) {
        self.shared.lock().cancelled = true;
        self.shared.wake.notify_all();
        self.rx = None;
        self.pending.clear();
        self.shared.staging.lock().unwrap_or_else(PoisonError::into_inner).clear();
        for h in self.workers.drain(..) {
            let _ = h.join();
        }
    }
}

impl Iterator for Epoch {
    type Item = Result<Batch, LoaderError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.finished || self.next_batch >= self.n_batches {
            return None;
        }
        let batch = self.next_batch;
        let host = match self.take_batch(batch) {
            Ok(h) => h,
            Err(e) => {
                self.finished = true;
                self.shutdown();
                return Some(Err(e));
            }
        };
        self.next_batch += 1;
        self.shared.lock().consumed = self.next_batch;
        self.shared.wake.notify_all();
        Some(Ok(host.into_batch(&self.device)))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (0, Some(self.remaining()))
    }
}

impl Drop for Epoch {
    fn drop(&mut self) {
        self.shutdown();
    }
}

impl std::fmt::Debug for Epoch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Epoch")
            .field("epoch", &self.shared.epoch)
            .field("next_batch", &self.next_batch)
            .field("n_batches", &self.n_batches)
            .finish_non_exhaustive()
    }
}
