//! Forward latency of fused YOLOv5 models, batch 1, on the default CPU backend (`flex`).
//!
//! `cargo bench -p yolo-compress --bench forward` (set `YCOMP_BENCH_IMGSZ` to change the 640 default).
//! Peers measured the same way: `benches/peers/latency.py`. Results: `docs/benchmarks.md`.

use burn::prelude::*;
use criterion::{Criterion, criterion_group, criterion_main};
use yolo_compress::model::Architecture;

fn forward(c: &mut Criterion) {
    let device = Device::flex();
    let imgsz: usize = std::env::var("YCOMP_BENCH_IMGSZ").ok().and_then(|s| s.parse().ok()).unwrap_or(640);
    let mut group = c.benchmark_group(format!("forward_b1_{imgsz}_flex"));
    group.sample_size(20);
    for name in ["yolov5n", "yolov5s"] {
        let model = Architecture::from_name_or_path(name).unwrap().build(&device).unwrap().fuse();
        let x = Tensor::<4>::random([1, 3, imgsz, imgsz], burn::tensor::Distribution::Default, &device);
        // Warm-up (first call allocates and packs weights).
        let _ = model.forward(x.clone()).decoded.into_data();
        group.bench_function(name, |b| b.iter(|| model.forward(x.clone()).decoded.into_data()));
    }
    group.finish();
}

criterion_group!(benches, forward);
criterion_main!(benches);
