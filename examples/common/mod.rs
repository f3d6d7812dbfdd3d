//! Helpers shared by the study examples.

use std::time::Instant;

use burn::prelude::*;
use yolo_compress::model::DetectionModel;

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
