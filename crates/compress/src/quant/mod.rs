//! Int8 quantization of YOLOv5 detectors.
//!
//! - [`fake`]: quantize/dequantize with the straight-through estimator;
//! - [`observer`]: calibrators (min-max with optional EMA, percentile, histogram MSE, entropy/KL);
//! - [`qconv`]: conv + BN with folding and per-channel weight fake quantization;
//! - [`graph`]: the deployed graph of a model and the placement of activation quantizers (shared
//!   scales for concat and residual-add inputs);
//! - [`model`]: [`QuantModel`], the model executed with simulated int8 arithmetic;
//! - [`calibrate`](mod@calibrate): calibration, conv selection and post-training quantization;
//! - [`qat`]: quantization-aware training;
//! - [`sensitivity`]: per-layer SQNR / mAP and a mixed-precision suggestion;
//! - [`checkpoint`]: int8 checkpoints; [`intref`]: an integer-arithmetic reference conv;
//! - [`pipeline`]: [`quantize`](pipeline::quantize), PTQ or QAT end to end.

pub mod calibrate;
pub mod checkpoint;
pub mod fake;
pub mod graph;
pub mod intref;
pub mod model;
pub mod observer;
pub mod pipeline;
pub mod qat;
pub mod qconv;
pub mod sensitivity;

pub use calibrate::{QuantConfig, calibrate, calibrated, loader_images, ptq, select_convs};
pub use model::{ActQuant, QuantModel};
pub use observer::{CalibMethod, Grid, Observer, ObserverConfig};
pub use qconv::{Act, QConv};
