//! `ycomp bench`: forward latency of a (fused) model on random input, median of `--runs`.

use std::time::Instant;

use anyhow::{Result, bail};
use burn::prelude::*;
use clap::Args;
use yolo_compress::backend::device_from_name;

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
    #[command(flatten)]
    common: Common,
}

/// Times the forward pass (input upload excluded, output download included).
pub fn run(a: BenchArgs) -> Result<()> {
    if a.runs == 0 || a.batch == 0 {
        bail!("--runs and --batch must be positive");
    }
    let device = device_from_name(&a.common.device)?;
    let loaded = a.model.load(&device)?;
    let model = if a.unfused { loaded.model } else { loaded.model.fuse() };
    let s = model.max_stride();
    if a.imgsz == 0 || !a.imgsz.is_multiple_of(s) {
        bail!("--imgsz {} must be a positive multiple of the model's stride {s}", a.imgsz);
    }
    let x = Tensor::<4>::random([a.batch, 3, a.imgsz, a.imgsz], burn::tensor::Distribution::Default, &device);
    for _ in 0..a.warmup {
        let _ = model.forward(x.clone()).decoded.into_data();
    }
    let mut ms: Vec<f64> = (0..a.runs)
        .map(|_| {
            let t = Instant::now();
            let _ = model.forward(x.clone()).decoded.into_data();
            t.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    ms.sort_by(f64::total_cmp);
    let median = if ms.len() % 2 == 1 { ms[ms.len() / 2] } else { (ms[ms.len() / 2 - 1] + ms[ms.len() / 2]) / 2.0 };
    let report = serde_json::json!({
        "median_ms": median,
        "min_ms": ms[0],
        "max_ms": ms[ms.len() - 1],
        "images_per_s": a.batch as f64 * 1e3 / median,
        "backend": a.common.device,
        "model": loaded.origin,
        "imgsz": a.imgsz,
        "batch": a.batch,
        "runs": a.runs,
        "fused": !a.unfused,
    });
    if a.common.json {
        println!("{report}");
    } else {
        println!(
            "{}: {:.2} ms median ({:.2}–{:.2}), {:.1} images/s, batch {} at {}² on {}",
            loaded.origin,
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
