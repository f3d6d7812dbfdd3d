//! # yolo-compress-model
//!
//! YOLOv5 detectors written in [Burn](https://burn.dev) that reproduce ultralytics' PyTorch numbers:
//!
//! - [`blocks`]: Conv, DWConv, Bottleneck, C3, C3Ghost, SPP, SPPF, Focus, GhostConv, GhostBottleneck,
//!   GhostNet's GhostModule, Squeeze-Excite and bottleneck,
//!   upsampling and concatenation, each with its config, `init`, `forward`, BN folding and tests;
//! - [`head`]: the Detect head and its decode;
//! - [`model`]: the [`Backbone`] trait, the neck graph and the [`Detector`] / [`YoloModel`];
//! - [`neck`]: the YOLOv5 PAN neck as layer specs, for plugging custom backbones;
//! - [`arch`]: ultralytics YAML → resolved [`Architecture`] (built-in `yolov5{n,s,m,l,x}.yaml`,
//!   `yolov5s-ghost.yaml`, and `yolov5-ghostnet.yaml`, a GhostNet-1.0× backbone under a YOLOv5l head);
//! - [`weights`]: PyTorch state dicts and native safetensors checkpoints;
//! - [`postprocess`]: non-maximum suppression;
//! - [`info`]: parameter / FLOP summaries.
//!
//! Library code never picks a backend: everything takes a `&Device`.
//!
//! ```no_run
//! use burn::prelude::*;
//! use yolo_compress_model::{Architecture, info::ModelInfo};
//!
//! let device = Device::flex();
//! let arch = Architecture::from_name_or_path("yolov5s.yaml").unwrap();
//! let model = arch.build(&device).unwrap();
//! let info = ModelInfo::of(&model, 640);
//! assert_eq!(info.params, 7_235_389);
//! let out = model.forward(Tensor::zeros([1, 3, 640, 640], &device));
//! assert_eq!(out.decoded.dims(), [1, 25_200, 85]);
//! ```

pub mod arch;
pub mod blocks;
pub mod error;
pub mod head;
pub mod info;
pub mod layer;
pub mod model;
pub mod neck;
pub mod postprocess;
pub mod state;
pub mod weights;

#[cfg(test)]
pub(crate) mod test_util;

pub use arch::{Architecture, BlockSpec, LayerSpec};
pub use error::{ArchError, WeightsError};
pub use head::{Detect, DetectConfig};
pub use model::{Backbone, DetectionModel, Detector, DetectorOutput, FeatureSpec, GraphBackbone, YoloModel};
