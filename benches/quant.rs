//! Latency of the simulated-int8 model against the float one, side by side in one run: yolov5s,
//! batch 1, `flex` CPU backend: float fused (Detector), the float deployed graph (QuantModel with
//! nothing quantized, BN folded), and PTQ int8 (weights and activations fake-quantized, Detect float).
//!
//! Fake quantization runs in f32 and adds work (quantize/dequantize of every int8 tensor): this
//! bench measures that cost honestly; it is not an integer-kernel speed-up (Burn 0.22.1 has no
//! int8 convolution).
//!
//! `cargo bench -p yolo-compress --bench quant` (`YCOMP_BENCH_IMGSZ`, default 320; `YCOMP_BENCH_MODEL`,
//! default yolov5s). Results: `docs/benchmarks.md`.

use burn::prelude::*;
use criterion::{Criterion, criterion_group, criterion_main};
use yolo_compress::compress::quant::{QuantConfig, QuantModel, ptq};
use yolo_compress::model::{Architecture, DetectionModel};

fn quantized(c: &mut Criterion) {
    let device = Device::flex();
    device.seed(0);
    let imgsz: usize = std::env::var("YCOMP_BENCH_IMGSZ").ok().and_then(|s| s.parse().ok()).unwrap_or(320);
    let name = std::env::var("YCOMP_BENCH_MODEL").unwrap_or_else(|_| "yolov5s".into());
    let model = Architecture::from_name_or_path(&name).unwrap().build(&device).unwrap();
    let x = Tensor::<4>::random([1, 3, imgsz, imgsz], burn::tensor::Distribution::Default, &device);
    let calib: Vec<Tensor<4>> = (0..2)
        .map(|_| Tensor::<4>::random([2, 3, imgsz, imgsz], burn::tensor::Distribution::Default, &device))
        .collect();
    let int8 = ptq(&model, calib, &QuantConfig::default()).unwrap();
    let graph = QuantModel::from_model(&model).unwrap().fold_bn();
    let fused = model.fuse();
    let models: [(&str, &dyn DetectionModel); 3] =
        [("float_fused", &fused), ("float_graph", &graph), ("ptq_int8_simulated", &int8)];
    let mut group = c.benchmark_group(format!("quant_{name}_b1_{imgsz}_flex"));
    group.sample_size(20);
    for (label, m) in models {
        let _ = m.forward(x.clone()).decoded.into_data();
        group.bench_function(label, |b| b.iter(|| m.forward(x.clone()).decoded.into_data()));
    }
    group.finish();
}

criterion_group!(benches, quantized);
criterion_main!(benches);
