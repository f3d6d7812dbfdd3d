//! Rectangular (aspect-sorted) batches, ultralytics' `rect` mode: images sorted by aspect ratio,
//! one padded shape per batch instead of a square canvas, so validation wastes few pixels on grey.

/// The order and per-batch shapes of rectangular batching.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RectBatches {
    /// Sample indices sorted by aspect ratio `h / w` (ascending, stable for ties).
    pub order: Vec<usize>,
    /// Letterbox shape `(height, width)` of each batch of `order.chunks(batch_size)`; multiples of
    /// the stride.
    pub shapes: Vec<(u32, u32)>,
}

/// Ultralytics' rectangular batches for images of original shapes `(height, width)`: sorts by
/// `ar = h / w`; for each batch of `batch_size` consecutive images takes
/// `[max ar, 1]` when all are wider than tall (`max ar < 1`), `[1, 1 / min ar]` when all are taller
/// than wide (`min ar > 1`), else `[1, 1]`; and the shape is
/// `ceil(rel * imgsz / stride + pad) * stride` on each axis. `pad` is 0.5 for validation
/// (`val.py`), 0.0 for rectangular training.
pub fn rect_batches(shapes: &[(u32, u32)], batch_size: usize, imgsz: u32, stride: u32, pad: f64) -> RectBatches {
    let ar: Vec<f64> = shapes.iter().map(|&(h, w)| f64::from(h) / f64::from(w.max(1))).collect();
    let mut order: Vec<usize> = (0..shapes.len()).collect();
    order.sort_by(|&a, &b| ar[a].total_cmp(&ar[b]));
    let batch_size = batch_size.max(1);
    let stride_f = f64::from(stride.max(1));
    let out = order
        .chunks(batch_size)
        .map(|chunk| {
            let mini = chunk.iter().map(|&i| ar[i]).fold(f64::INFINITY, f64::min);
            let maxi = chunk.iter().map(|&i| ar[i]).fold(f64::NEG_INFINITY, f64::max);
            let rel = if maxi < 1.0 {
                (maxi, 1.0)
            } else if mini > 1.0 {
                (1.0, 1.0 / mini)
            } else {
                (1.0, 1.0)
            };
            let side = |v: f64| ((v * f64::from(imgsz) / stride_f + pad).ceil() * stride_f) as u32;
            (side(rel.0), side(rel.1))
        })
        .collect();
    RectBatches { order, shapes: out }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes_by_hand() {
        // Batch 0: 480x640 and 360x640 (ar 0.75, 0.5625) -> [0.75, 1] * 640 / 32 + 0.5 = [15.5, 20.5]
        // -> ceil [16, 21] * 32 = [512, 672]. Batch 1: 640x480 alone (ar 1.333) -> [1, 0.75] ->
        // [20.5, 15.5] -> [672, 512].
        let r = rect_batches(&[(640, 480), (480, 640), (360, 640)], 2, 640, 32, 0.5);
        assert_eq!(r.order, vec![2, 1, 0]);
        assert_eq!(r.shapes, vec![(512, 672), (672, 512)]);
        // Without padding (rect training): [15, 20] -> exactly [480, 640].
        let r = rect_batches(&[(480, 640), (360, 640)], 2, 640, 32, 0.0);
        assert_eq!(r.shapes, vec![(480, 640)]);
        // Mixed aspect ratios in one batch: square.
        let r = rect_batches(&[(480, 640), (640, 480)], 2, 640, 32, 0.0);
        assert_eq!(r.shapes, vec![(640, 640)]);
    }
}
