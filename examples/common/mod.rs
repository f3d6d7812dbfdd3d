//! Helpers shared by the study examples.

use std::path::Path;
use std::time::Instant;

use anyhow::{Result, bail};
use burn::prelude::*;
use yolo_compress::model::weights::load_checkpoint;
use yolo_compress::model::{DetectionModel, YoloModel};
use yolo_compress::prelude::device_from_name;

/// Start of a study: checks that `--weights` and `--data` were given, opens the device (seeded with
/// `seed`), creates the output folder and loads the checkpoint.
pub fn start_study(weights: &Path, data: &Path, out: &Path, device: &str, seed: u64) -> Result<(Device, YoloModel)> {
    if weights.as_os_str().is_empty() || data.as_os_str().is_empty() {
        bail!("--weights and --data are required");
    }
    let device = device_from_name(device)?;
    device.seed(seed);
    std::fs::create_dir_all(out)?;
    let (model, _) = load_checkpoint(weights, &device)?;
    Ok((device, model))
}

/// Median batch-1 forward latency (ms, decode included) over 20 runs after 3 warm-ups.
pub fn latency_ms(model: &dyn DetectionModel, imgsz: usize, device: &Device) -> f64 {
    let x = Tensor::<4>::zeros([1, 3, imgsz, imgsz], device);
    let mut t: Vec<f64> = (0..23)
        .map(|_| {
            let s = Instant::now();
            let _ = model.forward(x.clone()).decoded.into_data();
            s.elapsed().as_secs_f64() * 1e3
        })
        .skip(3)
        .collect();
    t.sort_by(f64::total_cmp);
    t[t.len() / 2]
}
