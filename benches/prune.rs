//! Latency of pruned models against the unpruned one, side by side in one run: yolov5s cut to
//! 75 %, 50 % and 25 % of its FLOPs (uniform L1, round_to 8), fused, batch 1, `flex` CPU backend.
//!
//! `cargo bench -p yolo-compress --bench prune` (`YCOMP_BENCH_IMGSZ`, default 320; `YCOMP_BENCH_MODEL`,
//! default yolov5s). Results: `docs/benchmarks.md`.

use std::collections::HashMap;

use burn::prelude::*;
use criterion::{Criterion, criterion_group, criterion_main};
use yolo_compress::compress::prune::surgery::model_tensors;
use yolo_compress::compress::prune::{
    Criterion as Importance, FlopsTarget, PruneGraph, Scope, plan_for_flops, prune_model, unit_scores,
};
use yolo_compress::model::Architecture;
use yolo_compress::model::info::ModelInfo;

fn pruned(c: &mut Criterion) {
    let device = Device::flex();
    device.seed(0);
    let imgsz: usize = std::env::var("YCOMP_BENCH_IMGSZ").ok().and_then(|s| s.parse().ok()).unwrap_or(320);
    let name = std::env::var("YCOMP_BENCH_MODEL").unwrap_or_else(|_| "yolov5s".into());
    let arch = Architecture::from_name_or_path(&name).unwrap();
    let model = arch.build(&device).unwrap();
    let pg = PruneGraph::new(&arch, &[]).unwrap();
    let scores = unit_scores(&pg, &model_tensors(&model).unwrap(), Importance::L1, None, &device).unwrap();
    let x = Tensor::<4>::random([1, 3, imgsz, imgsz], burn::tensor::Distribution::Default, &device);
    let mut group = c.benchmark_group(format!("pruned_{name}_b1_{imgsz}_flex"));
    group.sample_size(20);
    for target in [1.0, 0.75, 0.5, 0.25] {
        let m = if target < 1.0 {
            let t = FlopsTarget {
                fraction: target,
                scope: Scope::Uniform,
                round_to: 8,
                imgsz,
                layer_ratios: HashMap::new(),
            };
            let (plan, _) = plan_for_flops(&pg, &scores, &t).unwrap();
            prune_model(&model, &pg, &plan, &device).unwrap()
        } else {
            model.clone()
        };
        let info = ModelInfo::of(&m, imgsz);
        let m = m.fuse();
        let _ = m.forward(x.clone()).decoded.into_data();
        let label = format!("flops{:.0}_params{}_gflops{:.2}", 100.0 * target, info.params, info.gflops);
        group.bench_function(label, |b| b.iter(|| m.forward(x.clone()).decoded.into_data()));
    }
    group.finish();
}

criterion_group!(benches, pruned);
criterion_main!(benches);
