//! A user-defined backbone plugs into the YOLOv5 neck and head: forward shapes, weights round trip
//! through state-dict keys, fusing, FLOP accounting, and pruning.

#[path = "../../../examples/custom_backbone.rs"]
mod example;

use burn::prelude::*;
use example::{prune_half, tiny_detector};
use yolo_compress::compress::prune::{Role, mask_detector};
use yolo_compress::model::state::{Collector, NamedTensors};
use yolo_compress::model::weights::{StateDict, apply_state_dict};
use yolo_compress::prelude::{Backbone, ModelInfo};

fn values<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.into_data().convert::<f32>().try_to_vec::<f32>().unwrap()
}

#[test]
fn custom_backbone_runs_through_neck_and_head() {
    let device = Device::flex();
    let model = tiny_detector(3, &device);
    let out = model.forward(Tensor::random([2, 3, 64, 96], burn::tensor::Distribution::Default, &device));
    let dims: Vec<[usize; 5]> = out.raw.iter().map(|r| r.dims()).collect();
    assert_eq!(dims, vec![[2, 3, 8, 12, 8], [2, 3, 4, 6, 8], [2, 3, 2, 3, 8]]);
    assert_eq!(out.decoded.dims(), [2, 3 * (96 + 24 + 6), 8]);
}

#[test]
fn custom_backbone_weights_round_trip_and_fuse() {
    let device = Device::flex();
    let a = tiny_detector(3, &device);
    let mut col = Collector::default();
    a.clone().visit_tensors("model", &mut col).unwrap();
    assert!(col.tensors.iter().any(|(k, _, _)| k == "model.stem.0.conv.weight"));
    assert!(col.tensors.iter().any(|(k, _, _)| k == "model.3.conv.weight"), "neck numbering starts after the 3 taps");
    let sd =
        StateDict { path: "memory".into(), tensors: col.tensors.into_iter().map(|(k, s, v)| (k, (s, v))).collect() };
    let b = apply_state_dict(tiny_detector(3, &device), &sd, &device).unwrap();
    let x = Tensor::<4>::random([1, 3, 64, 64], burn::tensor::Distribution::Default, &device);
    let (ya, yb) = (values(a.forward(x.clone()).decoded), values(b.forward(x.clone()).decoded));
    assert_eq!(ya, yb, "loading the saved tensors reproduces the model exactly");
    let yf = values(b.fuse().forward(x).decoded);
    let max = ya.iter().zip(&yf).map(|(p, q)| (p - q).abs() / (1.0 + p.abs())).fold(0.0, f32::max);
    assert!(max < 1e-4, "fused model differs by {max}");
}

#[test]
fn custom_backbone_flops_add_up() {
    let device = Device::flex();
    let m = tiny_detector(3, &device);
    let info = ModelInfo::of(&m, 320);
    // Backbone by hand: 3×3 stride-2 convs (+ BN 4·numel) at 160², 80², 40², 20², 10².
    let conv = |ci: f64, co: f64, s: f64| co * s * s * (ci * 9.0 + 4.0);
    let bb = conv(3.0, 16.0, 160.0)
        + conv(16.0, 16.0, 80.0)
        + conv(16.0, 32.0, 40.0)
        + conv(32.0, 64.0, 20.0)
        + conv(64.0, 128.0, 10.0);
    assert!((m.backbone.macs(320, 320) - bb).abs() < 1.0);
    assert!(info.macs > bb && info.params > 0);
}

/// The example's backbone is prunable: the pruned detector computes what the original does with the
/// removed channels masked where they are consumed, with fewer parameters and FLOPs.
#[test]
fn custom_backbone_prunes() {
    let device = Device::flex();
    let model = tiny_detector(3, &device);
    let (pruned, graph, plan) = prune_half(&model, &device);
    assert!(graph.groups.prunable().count() >= 10);
    let (before, after) = (ModelInfo::of(&model, 320), ModelInfo::of(&pruned, 320));
    assert!(after.params < before.params * 2 / 3 && after.macs < before.macs * 2.0 / 3.0, "{before:?} → {after:?}");
    assert_eq!(pruned.backbone.features()[2].channels, 64, "down5 keeps half of its 128 channels");
    let masked = mask_detector(model, &graph, &plan, &[Role::Input], &device).unwrap();
    let x = Tensor::<4>::random([1, 3, 64, 96], burn::tensor::Distribution::Default, &device);
    let (a, b) = (pruned.forward_raw(x.clone()), masked.forward_raw(x));
    for (a, b) in a.into_iter().zip(b) {
        let (a, b) = (values(a), values(b));
        let max = a.iter().zip(&b).map(|(p, q)| (p - q).abs() / (1.0 + q.abs())).fold(0.0, f32::max);
        assert!(max < 2e-4, "pruned vs masked differ by {max}");
    }
}
