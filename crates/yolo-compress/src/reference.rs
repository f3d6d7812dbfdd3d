//! The label-free path: a pretrained *reference* model's detections stand in for ground truth on
//! a folder of unlabeled images.
//!
//! - [`pseudo_labels`]: the reference's detections (detect.py settings, [`reference_config`]) on
//!   every image of a source, in original-image pixels;
//! - [`fidelity_source`] / [`fidelity_source_with`] + [`fidelity`]: the reference's detections through val.py's own
//!   pre-processing, and another model (pruned, quantized, distilled) validated against them as
//!   `val.py` scores a model against labels: its mAP50-95 is its *fidelity* to the reference
//!   (`ycomp val --reference T --source DIR`);
//! - [`write_pseudo_dataset`]: the detections written as a YOLO dataset with a held-out val split,
//!   for label-free recovery training (`ycomp train --unlabeled DIR --teacher T`).
//!
//! ```no_run
//! use std::sync::Arc;
//! use yolo_compress::prelude::*;
//! use yolo_compress::data::ImageFolder;
//! use yolo_compress::reference::{FidelityConfig, fidelity, fidelity_source_with};
//!
//! let device = Device::flex();
//! let classes = ClassOverride::default();
//! let teacher = load_model(None, Some("yolov5s_sd.pt".as_ref()), &classes, &device)?.model;
//! let student = load_model(None, Some("pruned.safetensors".as_ref()), &classes, &device)?.model;
//! let images = Arc::new(ImageFolder::open("camera/")?);
//! let cfg = FidelityConfig::new(640);
//! let labelled = fidelity_source_with(&teacher, images, &cfg, &device, &mut |_, _| {})?;
//! let report = fidelity(&student, &labelled.source, &cfg, &device)?;
//! println!("fidelity (mAP50-95 against the reference): {:.3}", report.metrics.map50_95);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use burn::prelude::*;
use serde::Serialize;

use crate::data::dataset::LabelRow;
use crate::data::loader::{Loader, LoaderConfig, LoaderError};
use crate::data::{DataError, ImageFolder, LabeledBox, Relabeled, SampleSource, Subset};
use crate::model::DetectionModel;
use crate::model::postprocess::NmsConfig;
use crate::model::weights::atomic_write;
use crate::predict::{PredictConfig, Predictor};
use crate::train::TrainError;
use crate::train::val::{ValConfig, ValReport, validate};

/// Why pseudo-labelling, a fidelity check or writing a pseudo-labelled dataset failed.
#[derive(Debug, thiserror::Error)]
pub enum ReferenceError {
    /// Reading or pre-processing images.
    #[error(transparent)]
    Data(#[from] DataError),
    /// Building the validation loader.
    #[error(transparent)]
    Loader(#[from] LoaderError),
    /// The validation pass.
    #[error(transparent)]
    Train(#[from] TrainError),
    /// No image of the source could be read.
    #[error("none of the {images} images could be read (first error: {first})")]
    NothingDecoded {
        /// Images in the source.
        images: usize,
        /// The first image's error.
        first: String,
    },
    /// The reference's labels use a class the scored model does not have.
    #[error(
        "the reference labels use class {class_id} but the model has only {nc} classes (give a model with the reference's classes)"
    )]
    ClassMismatch {
        /// The first class id out of range.
        class_id: usize,
        /// The model's number of classes.
        nc: usize,
    },
    /// A held-out slice that leaves no training images, or none at all.
    #[error("holdout of {holdout} images from {images}: keep at least one image for training and one for validation")]
    Holdout {
        /// Held-out images asked for.
        holdout: usize,
        /// Readable images available.
        images: usize,
    },
    /// A file or folder of the pseudo-labelled dataset could not be written.
    #[error("cannot write {}: {source}", path.display())]
    Io {
        /// The path at fault.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
}

/// `detect.py`'s settings for reference detections: conf 0.25, IoU 0.45, `max_det` 1000, one class
/// per box, class-aware NMS, letterboxed to `imgsz` (rounded up to the stride) with minimal padding;
/// `batch` images per forward pass.
pub fn reference_config(imgsz: usize, batch: usize) -> PredictConfig {
    PredictConfig { imgsz, nms: NmsConfig::default().with_max_det(1000), auto: true, batch: batch.max(1) }
}

/// A reference model's detections on every sample of a source.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PseudoLabels {
    /// Boxes per sample, in original-image pixels (empty for the samples in [`failed`](Self::failed)).
    pub boxes: Vec<Vec<LabeledBox>>,
    /// The reference's confidence of each box (same layout as `boxes`).
    pub scores: Vec<Vec<f32>>,
    /// `(height, width)` of each decoded sample (`(0, 0)` for failed ones).
    pub shapes: Vec<(u32, u32)>,
    /// Indices of the samples that could not be read or pre-processed.
    pub failed: Vec<usize>,
    /// One message per failed sample, naming it.
    pub warnings: Vec<String>,
}

impl PseudoLabels {
    /// Number of boxes over all samples.
    pub fn instances(&self) -> usize {
        self.boxes.iter().map(Vec::len).sum()
    }
}

/// Samples decoded per forward round: enough to fill a few batches, bounded in memory.
const CHUNK_MIN: usize = 16;

/// Runs `reference` (configured e.g. with [`reference_config`]) on every sample of `source` as
/// `detect` does (detect.py's letterbox) and returns its detections as boxes with class ids, in
/// pixels of each original image; boxes under [`MIN_LABEL_PX`] are dropped.
///
/// Samples are decoded in parallel, a chunk at a time, and batched by letterboxed shape (up to the
/// predictor's batch size). A sample that fails to decode is recorded in
/// [`PseudoLabels::failed`] / [`warnings`](PseudoLabels::warnings) with no boxes, never a panic.
/// `on_progress(done, total)` is called after every chunk.
pub fn pseudo_labels(
    reference: &Predictor,
    source: &dyn SampleSource,
    on_progress: &mut dyn FnMut(usize, usize),
) -> Result<PseudoLabels, ReferenceError> {
    let n = source.len();
    let mut out = PseudoLabels {
        boxes: vec![Vec::new(); n],
        scores: vec![Vec::new(); n],
        shapes: vec![(0, 0); n],
        ..PseudoLabels::default()
    };
    let threads = std::thread::available_parallelism().map_or(1, |t| t.get()).clamp(1, 8);
    let chunk = (reference.config().batch * 2).max(CHUNK_MIN);
    let mut start = 0;
    while start < n {
        let end = (start + chunk).min(n);
        let decoded = decode_parallel(source, start..end, threads);
        let mut names = Vec::new();
        let mut pre = Vec::new();
        let mut index = Vec::new();
        for (i, result) in (start..end).zip(decoded) {
            match result.and_then(|s| {
                let (h, w) = (s.image.height(), s.image.width());
                reference.preprocess(&s.image).map(|p| (p, (h, w)))
            }) {
                Ok((p, shape)) => {
                    out.shapes[i] = shape;
                    names.push(source.name(i));
                    pre.push(p);
                    index.push(i);
                }
                Err(e) => {
                    out.failed.push(i);
                    out.warnings.push(format!("{}: {e}; skipped", source.name(i)));
                }
            }
        }
        let (dets, _) = reference.predict_letterboxed(&names, &pre);
        for (i, dets) in index.into_iter().zip(dets) {
            let dets: Vec<_> = dets
                .into_iter()
                .filter(|d| {
                    let [x1, y1, x2, y2] = d.bbox_xyxy;
                    x2 - x1 >= MIN_LABEL_PX && y2 - y1 >= MIN_LABEL_PX
                })
                .collect();
            out.scores[i] = dets.iter().map(|d| d.score).collect();
            out.boxes[i] = dets.into_iter().map(|d| LabeledBox { class_id: d.class_id, xyxy: d.bbox_xyxy }).collect();
        }
        start = end;
        on_progress(end, n);
    }
    Ok(out)
}

/// Decodes `range` of `source` on up to `threads` threads, results in order.
fn decode_parallel(
    source: &dyn SampleSource,
    range: std::ops::Range<usize>,
    threads: usize,
) -> Vec<Result<crate::data::Sample, DataError>> {
    let indices: Vec<usize> = range.collect();
    let per = indices.len().div_ceil(threads.max(1)).max(1);
    std::thread::scope(|s| {
        let handles: Vec<_> = indices
            .chunks(per)
            .map(|part| s.spawn(move || part.iter().map(|&i| source.get(i)).collect::<Vec<_>>()))
            .collect();
        handles
            .into_iter()
            .zip(indices.chunks(per))
            .flat_map(|(h, part)| {
                h.join().unwrap_or_else(|_| {
                    part.iter().map(|&index| Err(DataError::IndexOutOfRange { index, len: source.len() })).collect()
                })
            })
            .collect()
    })
}

/// Images labelled with a reference model's detections, ready for [`fidelity`].
#[derive(Debug, Clone)]
pub struct FidelitySource {
    /// The readable images with the reference's boxes (unreadable images are left out).
    pub source: Relabeled,
    /// The reference's class names (for reports).
    pub names: Vec<String>,
    /// Images that could not be read, one message each.
    pub warnings: Vec<String>,
    /// Images in the original source, readable or not.
    pub total: usize,
}

/// Settings of a fidelity check: the reference's NMS (detect.py's) and the validation pass of
/// `val.py` (conf 0.001, IoU 0.6, `max_det` 300, multi-label) at `imgsz` with rectangular batches.
/// The same settings serve [`fidelity_source_with`] and [`fidelity`].
#[derive(Debug, Clone)]
pub struct FidelityConfig {
    /// Image size in pixels (default 640).
    pub imgsz: u32,
    /// Images per batch (default 16).
    pub batch: usize,
    /// Loader worker threads (default 2).
    pub workers: usize,
    /// NMS of the reference's detections, the labels (default detect.py's: conf 0.25, IoU 0.45,
    /// `max_det` 1000, one class per box).
    pub reference_nms: NmsConfig,
    /// NMS settings of the scored model (default `val.py`'s).
    pub val: ValConfig,
}

impl FidelityConfig {
    /// detect.py's settings for the reference and val.py's for the scored model, at `imgsz`.
    pub fn new(imgsz: u32) -> Self {
        FidelityConfig {
            imgsz,
            batch: 16,
            workers: 2,
            reference_nms: reference_config(imgsz as usize, 1).nms,
            val: ValConfig::default(),
        }
    }

    /// The settings a [`Predictor`] implies: its image size, batch size and NMS for the reference,
    /// val.py's NMS for the scored model, 2 loader workers.
    pub fn for_predictor(predictor: &Predictor) -> Self {
        let c = predictor.config();
        FidelityConfig {
            imgsz: c.imgsz as u32,
            batch: c.batch,
            workers: 2,
            reference_nms: c.nms.clone(),
            val: ValConfig::default(),
        }
    }

    fn loader(&self, max_stride: usize) -> LoaderConfig {
        let stride = max_stride.max(32) as u32;
        LoaderConfig { workers: self.workers, stride, ..LoaderConfig::val(self.imgsz, self.batch.max(1)) }
    }
}

impl Default for FidelityConfig {
    fn default() -> Self {
        Self::new(640)
    }
}

/// Boxes narrower or lower than this (pixels of the original image, after clipping) are left out
/// of the reference's labels: they cannot be matched at any IoU.
pub const MIN_LABEL_PX: f32 = 1.0;

/// [`fidelity_source_with`] for a [`Predictor`]: its (fused) model and NMS settings, at its image
/// size and batch size ([`FidelityConfig::for_predictor`]), with 2 loader workers. Score the other
/// model with [`fidelity`] at that same `FidelityConfig` for identical pre-processing.
pub fn fidelity_source(
    reference: &Predictor,
    source: Arc<dyn SampleSource>,
    on_progress: &mut dyn FnMut(usize, usize),
) -> Result<FidelitySource, ReferenceError> {
    let cfg = FidelityConfig::for_predictor(reference);
    fidelity_source_with(reference.model(), source, &cfg, reference.device(), on_progress)
}

/// The reference's detections on every sample of `source` through `cfg`'s loader (`None` for a
/// sample that could not be read), and the loader's warnings.
#[allow(clippy::type_complexity)]
fn loader_labels<M: DetectionModel + ?Sized>(
    reference: &M,
    source: &Arc<dyn SampleSource>,
    cfg: &FidelityConfig,
    device: &Device,
    on_progress: &mut dyn FnMut(usize, usize),
) -> Result<(Vec<Option<Vec<LabeledBox>>>, Vec<String>), ReferenceError> {
    let total = source.len();
    cfg.reference_nms.validate().map_err(|e| TrainError::Config(format!("reference NMS: {e}")))?;
    let loader = Loader::new(source.clone(), cfg.loader(reference.max_stride()), device)?;
    let mut labels: Vec<Option<Vec<LabeledBox>>> = vec![None; total];
    let mut loader_warnings = Vec::new();
    let mut done = 0;
    for batch in loader.epoch(0) {
        let batch = match batch {
            Ok(b) => b,
            Err(LoaderError::NoUsableSamples { count, last }) => {
                return Err(ReferenceError::NothingDecoded { images: count, first: last });
            }
            Err(e) => return Err(e.into()),
        };
        let out = reference.forward(batch.images.clone());
        let (rows, [b, n, no]) = crate::train::val::decoded_rows(out.decoded)?;
        let dets = crate::model::postprocess::non_max_suppression_batch(&rows, b, n, no, &cfg.reference_nms)
            .map_err(|e| TrainError::Config(e.to_string()))?;
        for (si, dets) in dets.into_iter().enumerate() {
            let (preds, _) = crate::train::val::to_original(&batch, si, dets);
            let boxes = preds
                .into_iter()
                .filter(|d| d.xyxy[2] - d.xyxy[0] >= MIN_LABEL_PX && d.xyxy[3] - d.xyxy[1] >= MIN_LABEL_PX)
                .map(|d| LabeledBox { class_id: d.class_id, xyxy: d.xyxy })
                .collect();
            labels[batch.samples[si].index] = Some(boxes);
        }
        loader_warnings.extend(batch.warnings);
        done += b;
        on_progress(done.min(total), total);
    }
    Ok((labels, loader_warnings))
}

/// Labels the images of `source` with `reference`'s detections (NMS
/// [`FidelityConfig::reference_nms`]), for [`fidelity`] with the same `cfg`.
///
/// The reference runs through the very loader [`fidelity`] uses (val.py's resize, rectangular
/// batches, padding), so a model scored against its own labels sees identical inputs and scores
/// ~0.995 mAP50-95 (the ceiling of the 101-point AP), whatever the image size; any drop measures a
/// real difference between the two models, not a difference in pre-processing. (Use
/// [`pseudo_labels`] for detect.py's own letterbox.) Boxes are mapped back to original-image
/// pixels; boxes under [`MIN_LABEL_PX`] are dropped. Images that cannot be read are left out and
/// reported in [`FidelitySource::warnings`] (so validation does not count a substitute twice); no
/// readable image at all is [`ReferenceError::NothingDecoded`]. `on_progress(done, total)` follows
/// the batches.
pub fn fidelity_source_with<M: DetectionModel + ?Sized>(
    reference: &M,
    source: Arc<dyn SampleSource>,
    cfg: &FidelityConfig,
    device: &Device,
    on_progress: &mut dyn FnMut(usize, usize),
) -> Result<FidelitySource, ReferenceError> {
    let total = source.len();
    let (mut labels, loader_warnings) = loader_labels(reference, &source, cfg, device, on_progress)?;
    let keep: Vec<usize> = (0..total).filter(|&i| labels[i].is_some()).collect();
    if keep.is_empty() {
        let first = loader_warnings.first().cloned().unwrap_or_else(|| "the source is empty".into());
        return Err(ReferenceError::NothingDecoded { images: total, first });
    }
    let warnings: Vec<String> = (0..total)
        .filter(|&i| labels[i].is_none())
        .map(|i| {
            let name = source.name(i);
            let prefix = format!("{name}: ");
            let reason = loader_warnings
                .iter()
                .find_map(|w| w.strip_prefix(&prefix).and_then(|r| r.split("; replaced by").next()))
                .unwrap_or("could not be read");
            format!("{name}: {reason}; left out")
        })
        .collect();
    let names = reference.names().to_vec();
    let relabeled = if keep.len() == total {
        Relabeled::new(source, labels.into_iter().flatten().collect())?
    } else {
        let boxes = keep.iter().map(|&i| labels[i].take().unwrap_or_default()).collect();
        Relabeled::new(Arc::new(Subset::new(source, keep)), boxes)?
    };
    Ok(FidelitySource { source: relabeled, names, warnings, total })
}

/// Validates `model` against `source` (typically [`FidelitySource::source`]: a reference's
/// detections) exactly as `ycomp val` validates against labels; the report's mAP50-95 is the
/// model's fidelity to the reference (1.0 = the same boxes and classes).
pub fn fidelity<M: DetectionModel + ?Sized>(
    model: &M,
    source: &Relabeled,
    cfg: &FidelityConfig,
    device: &Device,
) -> Result<ValReport, ReferenceError> {
    let nc = model.nc();
    if let Some(b) = source.boxes().iter().flatten().find(|b| b.class_id >= nc) {
        return Err(ReferenceError::ClassMismatch { class_id: b.class_id, nc });
    }
    let loader = Loader::new(Arc::new(source.clone()), cfg.loader(model.max_stride()), device)?;
    Ok(validate(model, &loader, &cfg.val, None)?)
}

/// Which images of a folder a pseudo-labelled dataset holds out for validation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Holdout {
    /// 10 % of the readable images, at least one (the default).
    #[default]
    Default,
    /// Exactly this many images.
    Count(usize),
}

impl Holdout {
    /// Held-out images out of `images` readable ones.
    pub fn count(self, images: usize) -> usize {
        match self {
            Holdout::Default => (images / 10).max(1),
            Holdout::Count(n) => n,
        }
    }
}

/// A YOLO-format dataset written from a reference model's detections.
#[derive(Debug, Clone, Serialize)]
pub struct PseudoDataset {
    /// The dataset folder (`images/`, `labels/`, `data.yaml`).
    pub root: PathBuf,
    /// Its `data.yaml`.
    pub data_yaml: PathBuf,
    /// The class names (the reference's).
    pub names: Vec<String>,
    /// Images in the train split.
    pub train_images: usize,
    /// Images in the val split (the held-out slice).
    pub val_images: usize,
    /// Boxes written, over both splits.
    pub instances: usize,
    /// Images that could not be read and were left out, one message each.
    pub warnings: Vec<String>,
}

/// Pseudo-labels the images of `folder` with `reference` — through the loader [`fidelity`] uses,
/// at the predictor's image size and NMS (as [`fidelity_source`] labels), so that validating on the
/// val split is the fidelity `ycomp val --reference` reports — and writes them to `root` as a YOLO
/// dataset:
///
/// - `root/images/{train,val}/NAME`: symbolic links to the original files (copies where the
///   platform has no symbolic links); a file whose stem another image already has is linked as
///   `STEM_EXT.EXT` so that label files do not collide;
/// - `root/labels/{train,val}/STEM.txt`: one `class xc yc w h` row per detection (`%.6f`),
///   normalised by the original image size; an image with no detection gets an empty file (a
///   background image);
/// - `root/data.yaml`: `path` (absolute), `train: images/train`, `val: images/val`, `nc`, and the
///   reference's class names.
///
/// The held-out val split is the **last** `holdout.count(n)` readable images in file-name order (for
/// consecutive video frames, a contiguous tail leaks less than frames spread between training
/// frames). Unreadable images are left out and reported. Label files and `data.yaml` are written
/// atomically.
pub fn write_pseudo_dataset(
    reference: &Predictor,
    folder: &ImageFolder,
    root: &Path,
    holdout: Holdout,
    on_progress: &mut dyn FnMut(usize, usize),
) -> Result<PseudoDataset, ReferenceError> {
    // Labelled through the loader fidelity uses, so that the val split's mAP in results.csv is
    // the fidelity `ycomp val --reference` reports.
    let source: Arc<dyn SampleSource> = Arc::new(folder.clone());
    let cfg = FidelityConfig::for_predictor(reference);
    let (boxes, loader_warnings) = loader_labels(reference.model(), &source, &cfg, reference.device(), on_progress)?;
    let mut warnings = Vec::new();
    let mut shapes = vec![(0u32, 0u32); folder.len()];
    let mut ok = Vec::new();
    for (i, b) in boxes.iter().enumerate() {
        match (b, folder.shape(i)) {
            (Some(_), Some(shape)) => {
                shapes[i] = shape;
                ok.push(i);
            }
            _ => warnings.push(format!("{}: could not be read; left out", folder.name(i))),
        }
    }
    if ok.is_empty() {
        let first = loader_warnings.first().cloned().or_else(|| warnings.first().cloned()).unwrap_or_default();
        return Err(ReferenceError::NothingDecoded { images: folder.len(), first });
    }
    let n_val = holdout.count(ok.len());
    if n_val == 0 || n_val >= ok.len() {
        return Err(ReferenceError::Holdout { holdout: n_val, images: ok.len() });
    }
    std::fs::create_dir_all(root).map_err(io_error(root))?;
    let root = std::path::absolute(root).map_err(io_error(root))?;
    let names = reference.model().names().to_vec();
    let mut stems: HashSet<String> = HashSet::new();
    let mut instances = 0;
    let split_at = ok.len() - n_val;
    for (k, &i) in ok.iter().enumerate() {
        let split = if k < split_at { "train" } else { "val" };
        let (image_dir, label_dir) = (root.join("images").join(split), root.join("labels").join(split));
        if k == 0 || k == split_at {
            std::fs::create_dir_all(&image_dir).map_err(io_error(&image_dir))?;
            std::fs::create_dir_all(&label_dir).map_err(io_error(&label_dir))?;
        }
        let file = &folder.files()[i];
        let original = std::path::absolute(file).map_err(io_error(file))?;
        let (stem, link_name) = unique_name(file, &mut stems);
        let link = image_dir.join(&link_name);
        link_or_copy(&original, &link).map_err(io_error(&link))?;
        let (h, w) = shapes[i];
        let mut text = String::new();
        for b in boxes[i].iter().flatten() {
            let Some(row) = yolo_row(b, w, h) else { continue };
            text.push_str(&row.to_line());
            text.push('\n');
            instances += 1;
        }
        let label = label_dir.join(format!("{stem}.txt"));
        atomic_write(&label, text.as_bytes()).map_err(io_error(&label))?;
    }
    let data_yaml = root.join("data.yaml");
    let yaml = DataYaml {
        path: root.display().to_string(),
        train: "images/train",
        val: "images/val",
        nc: names.len(),
        names: names.clone(),
    };
    let text = serde_norway::to_string(&yaml)
        .map_err(|e| ReferenceError::Io { path: data_yaml.clone(), source: std::io::Error::other(e.to_string()) })?;
    let text = format!("# pseudo-labels of a reference model (ycomp train --unlabeled)\n{text}");
    atomic_write(&data_yaml, text.as_bytes()).map_err(io_error(&data_yaml))?;
    Ok(PseudoDataset { root, data_yaml, names, train_images: split_at, val_images: n_val, instances, warnings })
}

#[derive(Serialize)]
struct DataYaml {
    path: String,
    train: &'static str,
    val: &'static str,
    nc: usize,
    names: Vec<String>,
}

/// Wraps an I/O error with the path at fault.
fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> ReferenceError + use<> {
    let path = path.to_path_buf();
    move |source| ReferenceError::Io { path, source }
}

/// The label stem and link name of `file`, unique among `taken` stems.
fn unique_name(file: &Path, taken: &mut HashSet<String>) -> (String, String) {
    let stem = file.file_stem().map_or_else(|| "image".into(), |s| s.to_string_lossy().into_owned());
    let ext = file.extension().map_or_else(String::new, |e| e.to_string_lossy().into_owned());
    let mut candidate = stem.clone();
    let mut n = 1;
    while taken.contains(&candidate) {
        candidate = if n == 1 { format!("{stem}_{ext}") } else { format!("{stem}_{ext}{n}") };
        n += 1;
    }
    taken.insert(candidate.clone());
    let link = if ext.is_empty() { candidate.clone() } else { format!("{candidate}.{ext}") };
    (candidate, link)
}

/// A box clipped to a `width × height` image as a label row; `None` when it has no area left at
/// the label files' `%.6f` precision.
fn yolo_row(b: &LabeledBox, width: u32, height: u32) -> Option<LabelRow> {
    let (w, h) = (width as f32, height as f32);
    let [x1, y1, x2, y2] = b.xyxy;
    let clipped = LabeledBox {
        class_id: b.class_id,
        xyxy: [x1.clamp(0.0, w), y1.clamp(0.0, h), x2.clamp(0.0, w), y2.clamp(0.0, h)],
    };
    let xywhn = clipped.to_yolo(width, height).map(|v| v.clamp(0.0, 1.0));
    (xywhn[2] >= 1e-6 && xywhn[3] >= 1e-6 && xywhn.iter().all(|v| v.is_finite()))
        .then_some(LabelRow { class_id: b.class_id, xywhn })
}

/// A symbolic link at `link` to `target` (replacing a stale one), or a copy without symlinks.
fn link_or_copy(target: &Path, link: &Path) -> std::io::Result<()> {
    if link.symlink_metadata().is_ok() {
        std::fs::remove_file(link)?;
    }
    #[cfg(unix)]
    {
        std::os::unix::fs::symlink(target, link)
    }
    #[cfg(not(unix))]
    {
        std::fs::copy(target, link).map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unique_names_keep_label_files_apart() {
        let mut taken = HashSet::new();
        assert_eq!(unique_name(Path::new("d/a.jpg"), &mut taken), ("a".into(), "a.jpg".into()));
        assert_eq!(unique_name(Path::new("d/a.png"), &mut taken), ("a_png".into(), "a_png.png".into()));
        assert_eq!(unique_name(Path::new("d/b.png"), &mut taken), ("b".into(), "b.png".into()));
    }

    #[test]
    fn rows_are_clipped_and_degenerate_boxes_dropped() {
        let b = LabeledBox { class_id: 2, xyxy: [-10.0, 10.0, 50.0, 130.0] };
        let row = yolo_row(&b, 100, 100).unwrap();
        assert_eq!(row.class_id, 2);
        for (a, e) in row.xywhn.iter().zip([0.25, 0.55, 0.5, 0.9]) {
            assert!((a - e).abs() < 1e-6, "{:?}", row.xywhn);
        }
        assert!(yolo_row(&LabeledBox { class_id: 0, xyxy: [5.0, 5.0, 5.0, 9.0] }, 100, 100).is_none());
        assert!(yolo_row(&LabeledBox { class_id: 0, xyxy: [120.0, 5.0, 130.0, 9.0] }, 100, 100).is_none());
    }

    #[test]
    fn holdout_defaults_to_a_tenth_and_at_least_one() {
        assert_eq!(Holdout::Default.count(400), 40);
        assert_eq!(Holdout::Default.count(5), 1);
        assert_eq!(Holdout::Count(7).count(5), 7);
    }
}
