//! Left-right and up-down flips of a sample.

use rand::Rng;

use crate::sample::{LabeledBox, Sample};

/// Mirrors the image left-right; a box `[x1, y1, x2, y2]` becomes `[W - x2, y1, W - x1, y2]`
/// (ultralytics: `xc = 1 - xc` in normalised coordinates).
pub fn flip_lr(mut sample: Sample) -> Sample {
    image::imageops::flip_horizontal_in_place(&mut sample.image);
    let w = sample.image.width() as f32;
    for b in &mut sample.boxes {
        let [x1, y1, x2, y2] = b.xyxy;
        *b = LabeledBox { class_id: b.class_id, xyxy: [w - x2, y1, w - x1, y2] };
    }
    sample
}

/// Mirrors the image up-down; a box `[x1, y1, x2, y2]` becomes `[x1, H - y2, x2, H - y1]`.
pub fn flip_ud(mut sample: Sample) -> Sample {
    image::imageops::flip_vertical_in_place(&mut sample.image);
    let h = sample.image.height() as f32;
    for b in &mut sample.boxes {
        let [x1, y1, x2, y2] = b.xyxy;
        *b = LabeledBox { class_id: b.class_id, xyxy: [x1, h - y2, x2, h - y1] };
    }
    sample
}

/// Ultralytics' random flips: up-down with probability `flipud`, then left-right with probability
/// `fliplr` (one uniform draw each, in that order, `random() < p`). Returns the sample and
/// `(flipped_ud, flipped_lr)`.
pub fn random_flips(sample: Sample, flipud: f64, fliplr: f64, rng: &mut impl Rng) -> (Sample, (bool, bool)) {
    let ud = rng.random::<f64>() < flipud;
    let sample = if ud { flip_ud(sample) } else { sample };
    let lr = rng.random::<f64>() < fliplr;
    let sample = if lr { flip_lr(sample) } else { sample };
    (sample, (ud, lr))
}
