//! Detection on images, as ultralytics `detect.py`: letterbox to a stride multiple with grey padding,
//! fused model forward, NMS (`conf = obj·cls`, class-aware), boxes mapped back to original pixels.
//! Float models and int8 models (simulated int8 arithmetic) alike: see [`Predictor::with_model`].

use std::time::Instant;

use burn::prelude::*;
use serde::Serialize;

use crate::data::{LetterboxConfig, LetterboxInfo, image_to_chw, letterbox};
use crate::loading::LoadedModel;
use crate::model::postprocess::{NmsConfig, non_max_suppression_batch};
use crate::model::{DetectionModel, YoloModel};

/// One detection in original-image pixels (the `ycomp detect --json` record).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ImageDetection {
    /// Image file name.
    pub image: String,
    /// Class index.
    pub class_id: usize,
    /// Class name.
    pub class_name: String,
    /// Confidence `obj·cls`.
    pub score: f32,
    /// `[x1, y1, x2, y2]` in original-image pixels.
    pub bbox_xyxy: [f32; 4],
}

/// Wall-clock time per stage, summed over images, in milliseconds.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Timings {
    /// Letterbox + conversion to a tensor.
    pub pre: f64,
    /// Model forward (including the device → host copy).
    pub inference: f64,
    /// NMS and box mapping.
    pub nms: f64,
}

/// Settings of a [`Predictor`].
#[derive(Debug, Clone)]
pub struct PredictConfig {
    /// Target size (long side), rounded up to a multiple of the model's largest stride.
    pub imgsz: usize,
    /// NMS settings (detect.py defaults: conf 0.25, IoU 0.45, max_det 1000).
    pub nms: NmsConfig,
    /// Pad only up to a stride multiple (`true`, detect.py) or to the full square.
    pub auto: bool,
    /// Images per forward pass (images of the same letterboxed shape are batched).
    pub batch: usize,
}

impl Default for PredictConfig {
    fn default() -> Self {
        PredictConfig { imgsz: 640, nms: NmsConfig::default().with_max_det(1000), auto: true, batch: 1 }
    }
}

/// A fused model ready for inference.
pub struct Predictor {
    model: LoadedModel,
    device: Device,
    cfg: PredictConfig,
}

impl Predictor {
    /// Fuses `model` (BN folded into convs) for inference on `device`.
    pub fn new(model: YoloModel, device: &Device, cfg: PredictConfig) -> Self {
        Self::with_model(model, device, cfg)
    }

    /// A predictor for a float model (fused here) or an int8
    /// [`QuantModel`](crate::compress::quant::QuantModel) (run with simulated int8 arithmetic).
    pub fn with_model(model: impl Into<LoadedModel>, device: &Device, mut cfg: PredictConfig) -> Self {
        let model = model.into().fuse();
        let s = model.max_stride();
        cfg.imgsz = cfg.imgsz.div_ceil(s) * s;
        cfg.batch = cfg.batch.max(1);
        Predictor { model, device: device.clone(), cfg }
    }

    /// The model predictions are made with.
    pub fn model(&self) -> &LoadedModel {
        &self.model
    }

    /// The device predictions run on.
    pub fn device(&self) -> &Device {
        &self.device
    }

    /// The effective settings (imgsz rounded to the stride).
    pub fn config(&self) -> &PredictConfig {
        &self.cfg
    }

    /// Letterboxes one image as detect.py does.
    pub fn preprocess(&self, img: &image::RgbImage) -> Result<(Vec<f32>, LetterboxInfo), crate::data::DataError> {
        let s = self.cfg.imgsz as u32;
        let lb = LetterboxConfig::new((s, s)).with_auto(self.cfg.auto).with_stride(self.model.max_stride() as u32);
        let (boxed, info) = letterbox(img, &lb)?;
        Ok((image_to_chw(&boxed), info))
    }

    /// Detects objects in named images; returns detections per image (in input order) and timings.
    pub fn predict(
        &self,
        images: &[(String, image::RgbImage)],
    ) -> Result<(Vec<Vec<ImageDetection>>, Timings), crate::data::DataError> {
        let t0 = Instant::now();
        let pre = images.iter().map(|(_, img)| self.preprocess(img)).collect::<Result<Vec<_>, _>>()?;
        let pre_ms = t0.elapsed().as_secs_f64() * 1e3;
        let names: Vec<String> = images.iter().map(|(n, _)| n.clone()).collect();
        let (results, mut t) = self.predict_letterboxed(&names, &pre);
        t.pre += pre_ms;
        Ok((results, t))
    }

    /// Detects objects in already letterboxed inputs: `pre[i]` is a `[3, H, W]` image in 0..1 with the
    /// [`LetterboxInfo`] that maps its boxes back, labelled `names[i]`.
    pub fn predict_letterboxed(
        &self,
        names: &[String],
        pre: &[(Vec<f32>, LetterboxInfo)],
    ) -> (Vec<Vec<ImageDetection>>, Timings) {
        let mut t = Timings::default();
        let mut results = vec![Vec::new(); pre.len()];
        // Group images by letterboxed shape so each forward pass is one batch.
        let mut order: Vec<usize> = (0..pre.len()).collect();
        order.sort_by_key(|&i| pre[i].1.shape);
        let groups = order.chunk_by(|&a, &b| pre[a].1.shape == pre[b].1.shape);
        for group in groups {
            for chunk in group.chunks(self.cfg.batch) {
                let t0 = Instant::now();
                let (h, w) = pre[chunk[0]].1.shape;
                let mut flat = Vec::with_capacity(chunk.len() * 3 * (h * w) as usize);
                for &i in chunk {
                    flat.extend_from_slice(&pre[i].0);
                }
                let x = Tensor::<4>::from_data(
                    TensorData::new(flat, [chunk.len(), 3, h as usize, w as usize]),
                    &self.device,
                );
                t.pre += t0.elapsed().as_secs_f64() * 1e3;
                let t1 = Instant::now();
                let out = self.model.forward(x).decoded;
                let [b, n, no] = out.dims();
                let rows = out.into_data().convert::<f32>().try_to_vec::<f32>().expect("f32 output");
                t.inference += t1.elapsed().as_secs_f64() * 1e3;
                let t2 = Instant::now();
                let dets = non_max_suppression_batch(&rows, b, n, no, &self.cfg.nms).expect("valid NMS settings");
                for (&i, dets) in chunk.iter().zip(dets) {
                    let info = &pre[i].1;
                    results[i] = dets
                        .into_iter()
                        .map(|d| ImageDetection {
                            image: names[i].clone(),
                            class_id: d.class_id,
                            class_name: self
                                .model
                                .names()
                                .get(d.class_id)
                                .cloned()
                                .unwrap_or_else(|| d.class_id.to_string()),
                            score: d.score,
                            bbox_xyxy: info.unletterbox_box_from_shapes(d.xyxy),
                        })
                        .collect();
                }
                t.nms += t2.elapsed().as_secs_f64() * 1e3;
            }
        }
        (results, t)
    }
}
