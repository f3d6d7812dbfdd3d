//! Validation as ultralytics' `val.py` runs it: rectangular letterboxed batches, NMS at conf 0.001 /
//! IoU 0.6 / `max_det` 300 / multi-label, predictions and labels mapped back to original-image pixels,
//! matching at IoU 0.50:0.05:0.95, AP from the precision envelope ([`crate::metrics`]), and the time
//! split into pre-process (waiting for the batch), inference and NMS.
//!
//! The same pass optionally computes the validation losses (`val/box_loss` … in `results.csv`) and
//! the confusion matrix, and collects COCO-format predictions for pycocotools.

use std::time::Instant;

use serde::Serialize;
use yolo_compress_data::loader::{Batch, Loader};
use yolo_compress_model::DetectionModel;
use yolo_compress_model::postprocess::nms::{Detection, NmsConfig, non_max_suppression_batch};

use crate::error::TrainError;
use crate::loss::YoloLoss;
use crate::metrics::{ConfusionMatrix, DetectionMetrics, GroundTruth, MetricsAccumulator};

/// Settings of a validation pass (ultralytics' `val.py` defaults).
#[derive(Debug, Clone, Serialize)]
pub struct ValConfig {
    /// Confidence threshold of NMS (default 0.001).
    pub conf: f32,
    /// IoU threshold of NMS (default 0.6).
    pub iou: f32,
    /// Maximum detections per image (default 300).
    pub max_det: usize,
    /// One row per (box, class) pair above `conf` (default true).
    pub multi_label: bool,
    /// Collect COCO-format predictions (default false).
    pub collect_coco: bool,
}

impl Default for ValConfig {
    fn default() -> Self {
        Self { conf: 0.001, iou: 0.6, max_det: 300, multi_label: true, collect_coco: false }
    }
}

/// Milliseconds per image.
#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq)]
pub struct Speed {
    /// Waiting for the batch (decode, letterbox, upload).
    pub pre: f64,
    /// Forward pass (including the device-to-host copy of the decoded rows).
    pub inference: f64,
    /// Non-maximum suppression.
    pub nms: f64,
}

/// One prediction in COCO's results format (`bbox` is `[x, y, w, h]` in original pixels).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct CocoPrediction {
    /// The image's file stem (as a number when it is one, like ultralytics).
    pub image_id: serde_json::Value,
    /// Class id (contiguous; map to COCO's category ids where needed).
    pub category_id: usize,
    /// `[x, y, w, h]`, rounded to 3 decimals.
    pub bbox: [f64; 4],
    /// Confidence, rounded to 5 decimals.
    pub score: f64,
}

/// Everything a validation pass measured.
#[derive(Debug, Clone)]
pub struct ValReport {
    /// P, R, mAP and the per-class table.
    pub metrics: DetectionMetrics,
    /// Mean `[box, obj, cls]` loss over the batches (when a loss was given).
    pub loss: Option<[f32; 3]>,
    /// Time per image.
    pub speed: Speed,
    /// Confusion matrix at conf 0.25 / IoU 0.45.
    pub confusion: ConfusionMatrix,
    /// COCO-format predictions (when [`ValConfig::collect_coco`] is set).
    pub coco: Vec<CocoPrediction>,
    /// Loader warnings (corrupt samples that were replaced).
    pub warnings: Vec<String>,
}

/// Runs `model` over one epoch of `loader` (which should be built with
/// [`LoaderConfig::val`](yolo_compress_data::loader::LoaderConfig::val)) and scores it.
///
/// `model` is used in inference mode: pass a model on a non-autodiff device (e.g. `model.valid()`
/// or the EMA copy). With `loss`, the validation losses are computed from the same forward pass.
pub fn validate<M: DetectionModel + ?Sized>(
    model: &M,
    loader: &Loader,
    cfg: &ValConfig,
    loss: Option<&YoloLoss>,
) -> Result<ValReport, TrainError> {
    let nc = model.nc();
    let nms = NmsConfig::default()
        .with_conf_thres(cfg.conf)
        .with_iou_thres(cfg.iou)
        .with_max_det(cfg.max_det)
        .with_multi_label(cfg.multi_label);
    nms.validate().map_err(|e| TrainError::Config(e.to_string()))?;
    let mut acc = MetricsAccumulator::new(nc);
    let mut confusion = ConfusionMatrix::new(nc);
    let mut coco = Vec::new();
    let mut warnings = Vec::new();
    let (mut t_pre, mut t_inf, mut t_nms) = (0.0f64, 0.0f64, 0.0f64);
    let mut loss_sum = [0.0f64; 3];
    let mut n_batches = 0usize;
    let mut seen = 0usize;

    let mut epoch = loader.epoch(0);
    loop {
        let t0 = Instant::now();
        let Some(batch) = epoch.next() else { break };
        let batch = batch?;
        let t1 = Instant::now();
        let out = model.forward(batch.images.clone());
        let (rows, [b, n, no]) = decoded_rows(out.decoded)?;
        let t2 = Instant::now();
        if let Some(loss) = loss {
            let items = loss.forward(&out.raw, &batch.target_rows).items;
            for (s, v) in loss_sum.iter_mut().zip(items) {
                *s += f64::from(v);
            }
        }
        let t3 = Instant::now();
        let dets = non_max_suppression_batch(&rows, b, n, no, &nms).map_err(|e| TrainError::Config(e.to_string()))?;
        let t4 = Instant::now();
        t_pre += (t1 - t0).as_secs_f64();
        t_inf += (t2 - t1).as_secs_f64();
        t_nms += (t4 - t3).as_secs_f64();
        n_batches += 1;
        seen += b;
        for (si, dets) in dets.into_iter().enumerate() {
            let (preds, gts) = to_original(&batch, si, dets);
            acc.add_image(&preds, &gts);
            confusion.process_batch(&preds, &gts);
            if cfg.collect_coco {
                coco.extend(coco_rows(&batch.samples[si].name, &preds));
            }
        }
        warnings.extend(batch.warnings);
    }
    let per_image = |t: f64| if seen == 0 { 0.0 } else { t * 1e3 / seen as f64 };
    let loss = (loss.is_some() && n_batches > 0).then(|| loss_sum.map(|s| (s / n_batches as f64) as f32));
    Ok(ValReport {
        metrics: acc.finish(),
        loss,
        speed: Speed { pre: per_image(t_pre), inference: per_image(t_inf), nms: per_image(t_nms) },
        confusion,
        coco,
        warnings,
    })
}

/// A decoded detector output `[B, N, 5 + nc]` on the host (row-major) with its dimensions, as
/// the NMS functions take it.
pub fn decoded_rows(decoded: burn::tensor::Tensor<3>) -> Result<(Vec<f32>, [usize; 3]), TrainError> {
    let dims = decoded.dims();
    let rows = decoded
        .into_data()
        .convert::<f32>()
        .try_into_vec::<f32>()
        .map_err(|e| TrainError::Config(format!("decoded output is not readable as f32: {e:?}")))?;
    Ok((rows, dims))
}

/// Maps image `si`'s detections and labels from batch-image pixels back to its original pixels
/// (ultralytics' `scale_boxes` with the letterbox ratio and pad), as `val.py` does before matching.
pub fn to_original(batch: &Batch, si: usize, dets: Vec<Detection>) -> (Vec<Detection>, Vec<GroundTruth>) {
    let meta = &batch.samples[si];
    let (h, w) = batch.image_shape();
    let map = |xyxy: [f32; 4]| match &meta.letterbox {
        Some(info) => info.unletterbox_box(xyxy),
        None => xyxy,
    };
    let preds = dets.into_iter().map(|d| Detection { xyxy: map(d.xyxy), ..d }).collect();
    let gts = batch
        .target_rows
        .iter()
        .filter(|r| r[0] as usize == si)
        .map(|r| {
            let (xc, yc, bw, bh) = (r[2] * w as f32, r[3] * h as f32, r[4] * w as f32, r[5] * h as f32);
            let xyxy = [xc - bw / 2.0, yc - bh / 2.0, xc + bw / 2.0, yc + bh / 2.0];
            GroundTruth { xyxy: map(xyxy), class_id: r[1] as usize }
        })
        .collect();
    (preds, gts)
}

/// COCO results rows for one image (ultralytics' `save_one_json`).
fn coco_rows(name: &str, preds: &[Detection]) -> Vec<CocoPrediction> {
    let stem = std::path::Path::new(name).file_stem().map_or_else(|| name.to_string(), |s| s.to_string_lossy().into());
    let image_id = stem.parse::<u64>().map_or_else(|_| serde_json::Value::from(stem.clone()), serde_json::Value::from);
    let round = |v: f64, d: i32| (v * 10f64.powi(d)).round() / 10f64.powi(d);
    preds
        .iter()
        .map(|d| {
            let [x1, y1, x2, y2] = d.xyxy.map(f64::from);
            CocoPrediction {
                image_id: image_id.clone(),
                category_id: d.class_id,
                bbox: [round(x1, 3), round(y1, 3), round(x2 - x1, 3), round(y2 - y1, 3)],
                score: round(f64::from(d.score), 5),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::prelude::*;
    use yolo_compress_data::letterbox::LetterboxInfo;
    use yolo_compress_data::loader::SampleMeta;

    fn batch_with(rows: Vec<[f32; 6]>, info: Option<LetterboxInfo>) -> Batch {
        let device = Device::flex();
        let meta = SampleMeta {
            index: 0,
            name: "images/000123.png".into(),
            original_shape: (100, 200),
            resized_shape: (160, 320),
            shape: (192, 320),
            letterbox: info,
            mosaic: false,
        };
        Batch {
            images: Tensor::zeros([1, 3, 192, 320], &device),
            targets: Tensor::zeros([rows.len(), 6], &device),
            target_rows: rows,
            samples: vec![meta],
            index: 0,
            warnings: vec![],
        }
    }

    #[test]
    fn labels_and_predictions_map_back_to_original_pixels() {
        // Original 200x100 → ×1.6 → 320x160, padded by 16 px top and bottom to 320x192.
        let info = LetterboxInfo { ratio: 1.6, pad: (0.0, 16.0), original: (100, 200), shape: (192, 320) };
        // A label covering x 20..60, y 10..50 in the original: in the batch x 32..96, y 32..96.
        let (xc, yc, w, h) = (64.0 / 320.0, 64.0 / 192.0, 64.0 / 320.0, 64.0 / 192.0);
        let batch = batch_with(vec![[0.0, 3.0, xc, yc, w, h]], Some(info));
        let det = Detection { xyxy: [32.0, 32.0, 96.0, 96.0], score: 0.9, class_id: 3 };
        let (preds, gts) = to_original(&batch, 0, vec![det]);
        assert_eq!(gts.len(), 1);
        assert_eq!(gts[0].class_id, 3);
        for (g, e) in gts[0].xyxy.iter().zip([20.0, 10.0, 60.0, 50.0]) {
            assert!((g - e).abs() < 1e-4, "{:?}", gts[0].xyxy);
        }
        assert_eq!(preds[0].xyxy, gts[0].xyxy);
        let rows = coco_rows(&batch.samples[0].name, &preds);
        assert_eq!(rows[0].image_id, serde_json::json!(123));
        assert_eq!(rows[0].bbox, [20.0, 10.0, 40.0, 40.0]);
    }

    #[test]
    fn labels_of_other_images_are_not_mixed_in() {
        let batch = batch_with(vec![[1.0, 0.0, 0.5, 0.5, 0.1, 0.1]], None);
        let (_, gts) = to_original(&batch, 0, vec![]);
        assert!(gts.is_empty());
    }
}
