//! Plug your own backbone into the YOLOv5 neck and head.
//!
//! `cargo run --example custom_backbone`
//!
//! A backbone is any Burn module that implements [`Backbone`]: it returns feature maps at strides
//! 8, 16 and 32 (P3–P5), names its tensors for weight loading ([`NamedTensors`]) and reports its MACs.
//! [`yolov5_pan_neck`] builds the standard PAN neck and Detect head on top of it. Implementing
//! [`PrunableBackbone`] as well (a few lines: each block describes its channels through
//! `ChannelDeps`) makes the whole detector prunable with [`prune_detector`].

use burn::prelude::*;
use yolo_compress::compress::prune::surgery::model_tensors;
use yolo_compress::compress::prune::{
    ChannelDeps, ChannelGraph, Channels, Criterion, DetectorGraph, PrunableBackbone, PrunePlan, key, plan_from_ratios,
    prune_detector, under, unit_scores,
};
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

impl PrunableBackbone for TinyBackbone {
    fn channels(&self, g: &mut ChannelGraph, prefix: &str, image: &Channels) -> Vec<Channels> {
        let mut p3 = image.clone();
        for (i, c) in self.stem.iter().enumerate() {
            p3 = c.channels(g, &key(prefix, &format!("stem.{i}")), &[p3]);
        }
        let p4 = self.down4.channels(g, &key(prefix, "down4"), std::slice::from_ref(&p3));
        let p5 = self.down5.channels(g, &key(prefix, "down5"), std::slice::from_ref(&p4));
        vec![p3, p4, p5]
    }

    fn resized(&self, width: &dyn Fn(&str) -> usize, _device: &Device) -> Self {
        let mut c1 = 3;
        let mut stem = Vec::new();
        for (i, c) in self.stem.iter().enumerate() {
            stem.push(c.resized(&[c1], &under(width, &format!("stem.{i}"))));
            c1 = stem[i].out_channels();
        }
        let down4 = self.down4.resized(&[c1], &under(width, "down4"));
        let down5 = self.down5.resized(&[down4.out_channels()], &under(width, "down5"));
        TinyBackbone { stem, down4, down5 }
    }
}

/// Prunes `model` by removing every other channel unit of every prunable group (a real run would
/// rank units by importance); returns the graph and plan too.
pub fn prune_half(
    model: &Detector<TinyBackbone>,
    device: &Device,
) -> (Detector<TinyBackbone>, DetectorGraph, PrunePlan) {
    let graph = DetectorGraph::new(model, &[]).expect("the backbone describes its features");
    // Rank units by the L1 norm of their filters and keep the best half of every group.
    let tensors = model_tensors(model).expect("an unfused model");
    let scores = unit_scores(&graph, &tensors, Criterion::L1, None, device).expect("L1 needs no data");
    let plan = plan_from_ratios(&graph, &scores, &vec![0.5; graph.groups.groups.len()], 8);
    let pruned = prune_detector(model, &graph, &plan, device).expect("an unfused model fits its graph");
    (pruned, graph, plan)
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
    let (pruned, _, _) = prune_half(&model, &device);
    let after = ModelInfo::of(&pruned, 640);
    println!("pruned to half the channels: {} → {} parameters, {:.2} GFLOPs", info.params, after.params, after.gflops);
}
