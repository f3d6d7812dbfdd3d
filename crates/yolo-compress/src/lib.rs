//! # yolo-compress
//!
//! Train, compress and export YOLOv5 object detectors in pure Rust on [Burn](https://burn.dev).
//! This facade re-exports the workspace crates and holds the `ycomp` command-line tool.
//!
//! - [`model`]: YOLOv5 blocks, the pluggable [`Backbone`](model::Backbone) trait, the Detect head,
//!   ultralytics YAML configs, PyTorch and native weights, NMS;
//! - [`data`]: image loading, letterbox, drawing;
//! - [`train`]: the YOLOv5 loss, optimiser recipe, EMA, AutoAnchor, validation (mAP) and the
//!   training loop with resumable run folders;
//! - [`compress`]: structured pruning (channel-dependency graph, EagleEye, slimming, L1/L2/FPGM/Taylor)
//!   and int8 quantization (fake quantization, BN folding, PTQ calibration, QAT, sensitivity, int8
//!   checkpoints); distillation to come;
//! - [`predict`]: end-to-end detection on images; [`loading`]: `--model`/`--weights` resolution;
//!   [`backend`]: device selection by name;
//! - [`reference`](mod@reference): the label-free path: a reference model's detections as labels (fidelity
//!   checks, pseudo-labelled datasets for recovery training).
//!
//! ```no_run
//! use yolo_compress::prelude::*;
//!
//! let device = Device::flex();
//! // A built-in config: no file on disk is needed.
//! let model = Architecture::from_name_or_path("yolov5n.yaml")?.build(&device)?;
//! let info = ModelInfo::of(&model, 640);
//! println!("{} parameters, {:.1} GFLOPs", info.params, info.gflops);
//!
//! let predictor = Predictor::new(model, &device, PredictConfig::default());
//! let img = image::RgbImage::from_pixel(480, 360, image::Rgb([114, 114, 114]));
//! let (detections, _timings) = predictor.predict(&[("grey.png".to_string(), img)])?;
//! println!("{} objects", detections[0].len());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

/// The README's library example, compiled as a doctest.
#[cfg(doctest)]
#[doc = include_str!("../../../README.md")]
pub struct ReadmeDoctests;

pub mod backend;
pub mod loading;
pub mod predict;
pub mod reference;

pub use yolo_compress_compress as compress;
pub use yolo_compress_data as data;
pub use yolo_compress_model as model;
pub use yolo_compress_train as train;

/// The types most programs use.
pub mod prelude {
    pub use crate::backend::device_from_name;
    pub use crate::loading::{ClassOverride, LoadedModel, load_any_model, load_model};
    pub use crate::model::info::ModelInfo;
    pub use crate::model::{Architecture, Backbone, DetectionModel, Detector, YoloModel};
    pub use crate::predict::{ImageDetection, PredictConfig, Predictor};
    pub use burn::prelude::*;
}
