//! Plug your own backbone into the YOLOv5 neck and head.
//!
//! `cargo run --example custom_backbone`
//!
//! A backbone is any Burn module that implements [`Backbone`]: it returns feature maps at strides
//! 8, 16 and 32 (P3–P5), names its tensors for weight loading ([`NamedTensors`]) and reports its MACs.
//! [`yolov5_pan_neck`] builds the standard PAN neck and Detect head on top of it.

use burn::prelude::*;
use yolo_compress::model::blocks::{Conv, ConvConfig};
use yolo_compress::model::neck::{NeckConfig, yolov5_pan_neck};
use yolo_compress::model::state::{NamedTensors, TensorVisitor, join};
use yolo_compress::model::{Backbone, Detector, FeatureSpec, WeightsError};
use yolo_compress::prelude::ModelInfo;

/// A toy backbone: a stride-2 stem, then one stride-2 conv per level down to /32.
#[derive(Module, Debug)]
pub struct TinyBackbone {
    /// `[B, 3, H, W]` → `[B, c, H/2, W/2]` then down to /8.
    pub stem: Vec<Conv>,
    /// /8 → /16.
    pub down4: Conv,
    /// /16 → /32.
    pub down5: Conv,
}

impl TinyBackbone {
    /// Builds the backbone with base width `c`.
    pub fn new(c: usize, device: &Device) -> Self {
        let conv = |c1, c2| ConvConfig::new(c1, c2).with_k(3).with_s(2).init(device);
        TinyBackbone {
            stem: vec![conv(3, c), conv(c, c), conv(c, 2 * c)],
            down4: conv(2 * c, 4 * c),
            down5: conv(4 * c, 8 * c),
        }
    }
}

impl NamedTensors for TinyBackbone {
    fn visit_tensors(&mut self, prefix: &str, v: &mut dyn TensorVisitor) -> Result<(), WeightsError> {
        for (i, c) in self.stem.iter_mut().enumerate() {
            c.visit_tensors(&join(prefix, &format!("stem.{i}")), v)?;
        }
        self.down4.visit_tensors(&join(prefix, "down4"), v)?;
        self.down5.visit_tensors(&join(prefix, "down5"), v)
    }
}

impl Backbone for TinyBackbone {
    fn features(&self) -> Vec<FeatureSpec> {
        vec![
            FeatureSpec { channels: self.stem[2].out_channels(), stride: 8 },
            FeatureSpec { channels: self.down4.out_channels(), stride: 16 },
            FeatureSpec { channels: self.down5.out_channels(), stride: 32 },
        ]
    }

    fn forward(&self, x: Tensor<4>) -> Vec<Tensor<4>> {
        let p3 = self.stem.iter().fold(x, |x, c| c.forward(x));
        let p4 = self.down4.forward(p3.clone());
        let p5 = self.down5.forward(p4.clone());
        vec![p3, p4, p5]
    }

    fn macs(&self, height: usize, width: usize) -> f64 {
        let (mut h, mut w, mut total) = (height, width, 0.0);
        for c in self.stem.iter().chain([&self.down4, &self.down5]) {
            let (m, (h2, w2)) = c.macs(h, w);
            total += m;
            (h, w) = (h2, w2);
        }
        total
    }

    fn fuse(self) -> Self {
        TinyBackbone {
            stem: self.stem.into_iter().map(Conv::fuse).collect(),
            down4: self.down4.fuse(),
            down5: self.down5.fuse(),
        }
    }
}

/// A detector for `nc` classes on the tiny backbone with a yolov5n-sized neck.
pub fn tiny_detector(nc: usize, device: &Device) -> Detector<TinyBackbone> {
    let backbone = TinyBackbone::new(16, device);
    let neck = yolov5_pan_neck(&backbone.features(), &NeckConfig::yolov5(nc, 0.33, 0.25)).expect("P3-P5 features");
    let names = (0..nc).map(|i| format!("class{i}")).collect();
    Detector::new(backbone, &neck, names, device).expect("channels fit")
}

#[allow(dead_code)]
fn main() {
    let device = Device::flex();
    let model = tiny_detector(3, &device);
    let info = ModelInfo::of(&model, 640);
    println!("tiny backbone + YOLOv5 neck: {} parameters, {:.2} GFLOPs at 640", info.params, info.gflops);
    let out = model.forward(Tensor::zeros([1, 3, 256, 320], &device));
    println!("decoded output {:?} (rows = 3 anchors × (32·40 + 16·20 + 8·10))", out.decoded.dims());
}
