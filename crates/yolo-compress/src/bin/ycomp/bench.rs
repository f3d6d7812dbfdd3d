//! `ycomp bench`: forward latency of a (fused) model on random input, median of `--runs`. An int8
//! checkpoint is timed as it runs here: simulated int8 arithmetic in f32 (fake quantization), which
//! measures the simulation's cost, not an int8 engine's speed.

use std::time::Instant;

use anyhow::{Result, bail};
use burn::prelude::*;
use clap::Args;
use yolo_compress::backend::device_from_name;
use yolo_compress::loading::LoadedModel;
use yolo_compress::model::DetectionModel;

use crate::{Common, ModelArgs};

/// Arguments of `ycomp bench`.
#[derive(Args)]
pub struct BenchArgs {
    #[command(flatten)]
    model: ModelArgs,
    /// Square input size.
    #[arg(long, default_value_t = 640)]
    imgsz: usize,
    /// Images per forward pass.
    #[arg(long, default_value_t = 1)]
    batch: usize,
    /// Timed runs (after `--warmup` untimed ones).
    #[arg(long, default_value_t = 20)]
    runs: usize,
    /// Untimed warm-up runs (kernel compilation and autotuning on GPUs happen here).
    #[arg(long, default_value_t = 3)]
    warmup: usize,
    /// Benchmark the model without folding BN into the convs.
    #[arg(long)]
    unfused: bool,
    /// Time a full training step instead (forward in train mode, YOLOv5 loss, backward, gradient
    /// clipping, SGD step, EMA update) on a fixed random batch with 8 random boxes per image.
    #[arg(long)]
    train: bool,
    #[command(flatten)]
    common: Common,
}

/// Times the forward pass (input upload excluded, output download included).
pub fn run(a: BenchArgs) -> Result<()> {
    if a.runs == 0 || a.batch == 0 {
        bail!("--runs and --batch must be positive");
    }
    let device = device_from_name(&a.common.device)?;
    device.seed(a.common.seed);
    let loaded = a.model.load_any(&device)?;
    let int8 = loaded.model.is_int8();
    if a.train {
        let LoadedModel::Float(model) = loaded.model else {
            bail!("--train times float training steps: give the float checkpoint, not an int8 one");
        };
        let ms = train_steps(model, &a, &device)?;
        return report(&a, &loaded.origin, ms, "train_step", false);
    }
    let model = if a.unfused { loaded.model } else { loaded.model.fuse() };
    let s = model.max_stride();
    if a.imgsz == 0 || !a.imgsz.is_multiple_of(s) {
        bail!("--imgsz {} must be a positive multiple of the model's stride {s}", a.imgsz);
    }
    let x = Tensor::<4>::random([a.batch, 3, a.imgsz, a.imgsz], burn::tensor::Distribution::Default, &device);
    for _ in 0..a.warmup {
        let _ = model.forward(x.clone()).decoded.into_data();
    }
    let ms: Vec<f64> = (0..a.runs)
        .map(|_| {
            let t = Instant::now();
            let _ = model.forward(x.clone()).decoded.into_data();
            t.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    report(&a, &loaded.origin, ms, "forward", int8)
}

/// Times `--runs` training steps after `--warmup` untimed ones.
fn train_steps(model: yolo_compress::model::YoloModel, a: &BenchArgs, device: &Device) -> Result<Vec<f64>> {
    use rand::{Rng, SeedableRng};
    use yolo_compress::train::loss::{YoloLoss, YoloLossConfig};
    use yolo_compress::train::optim::{ModelEma, Optimizer, OptimizerConfig};
    use yolo_compress::train::trainer::{loss_and_grads, optimizer_step};
    let ad = device.clone().autodiff();
    let mut model = model.fork(&ad).train();
    let hyp = yolo_compress::data::augment::Hyp::default();
    let loss_fn = YoloLoss::new(
        YoloLossConfig::from_hyp(&hyp, model.nc(), model.detect.strides.len(), a.imgsz, 0.0),
        &model.detect,
    );
    let mut optimizer = Optimizer::new(OptimizerConfig::default());
    let mut ema = ModelEma::new(&model);
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(a.common.seed);
    let targets: Vec<[f32; 6]> = (0..a.batch * 8)
        .map(|i| {
            let (w, h) = (rng.random_range(0.02..0.5f32), rng.random_range(0.02..0.5f32));
            let (x, y) = (rng.random_range(w / 2.0..1.0 - w / 2.0), rng.random_range(h / 2.0..1.0 - h / 2.0));
            [(i / 8) as f32, rng.random_range(0..model.nc()) as f32, x, y, w, h]
        })
        .collect();
    let x = Tensor::<4>::random([a.batch, 3, a.imgsz, a.imgsz], burn::tensor::Distribution::Default, &ad);
    let mut ms = Vec::with_capacity(a.runs);
    for i in 0..a.warmup + a.runs {
        let t = Instant::now();
        let (items, grads) = loss_and_grads(&model, &loss_fn, x.clone(), &targets);
        model = optimizer_step(model, grads, &mut optimizer, &mut ema, [0.01; 3], 0.937, 5e-4);
        // Wait for the device: read one updated weight back.
        let _ = model.detect.m[0].weight.val().slice([0..1, 0..1, 0..1, 0..1]).into_data();
        if !items.iter().all(|v| v.is_finite()) {
            bail!("non-finite loss {items:?} at step {i}");
        }
        if i >= a.warmup {
            ms.push(t.elapsed().as_secs_f64() * 1e3);
        }
    }
    Ok(ms)
}

fn report(a: &BenchArgs, origin: &str, mut ms: Vec<f64>, mode: &str, int8: bool) -> Result<()> {
    ms.sort_by(f64::total_cmp);
    let median = if ms.len() % 2 == 1 { ms[ms.len() / 2] } else { (ms[ms.len() / 2 - 1] + ms[ms.len() / 2]) / 2.0 };
    let report = serde_json::json!({
        "median_ms": median,
        "min_ms": ms[0],
        "max_ms": ms[ms.len() - 1],
        "images_per_s": a.batch as f64 * 1e3 / median,
        "backend": a.common.device,
        "model": origin,
        "mode": mode,
        "imgsz": a.imgsz,
        "batch": a.batch,
        "runs": a.runs,
        "fused": int8 || (!a.unfused && !a.train),
        "int8": int8,
    });
    if a.common.json {
        out!("{report}");
    } else {
        out!(
            "{mode} {}: {:.2} ms median ({:.2}–{:.2}), {:.1} images/s, batch {} at {}² on {}",
            origin,
            median,
            ms[0],
            ms[ms.len() - 1],
            a.batch as f64 * 1e3 / median,
            a.batch,
            a.imgsz,
            a.common.device
        );
    }
    Ok(())
}
