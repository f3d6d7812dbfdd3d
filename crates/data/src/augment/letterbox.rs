//! Resizing and letterboxing a labelled sample for training and validation: ultralytics'
//! `load_image` (long side to `imgsz`) and its letterbox with the boxes mapped along.

use crate::error::DataError;
use crate::letterbox::{LetterboxConfig, LetterboxInfo, letterbox};
use crate::resize::resize_bilinear;
use crate::sample::{LabeledBox, Sample};

/// Ultralytics `load_image`: resizes so that the longer side is `imgsz`
/// (`r = imgsz / max(h0, w0)`, new size `(ceil(w0 r), ceil(h0 r))` in `f64`, as YOLOv5 v7.0), with
/// the OpenCV-exact bilinear resize, and scales the boxes by `new / old` on each axis. Returns the
/// resized sample and the original `(height, width)`.
///
/// Ultralytics downsizes validation images (no augmentation) with `INTER_AREA`; this crate has only
/// the bilinear resize, so downsized validation images differ slightly. Images whose longer side is
/// already `imgsz` (all of COCO at 640) are not resized at all.
pub fn resize_to_imgsz(sample: &Sample, imgsz: u32) -> Result<(Sample, (u32, u32)), DataError> {
    let (w0, h0) = sample.image.dimensions();
    if w0 == 0 || h0 == 0 {
        return Err(DataError::EmptyImage { width: w0, height: h0 });
    }
    let r = f64::from(imgsz) / f64::from(w0.max(h0));
    if r == 1.0 {
        return Ok((sample.clone(), (h0, w0)));
    }
    let nw = ((f64::from(w0) * r).ceil() as u32).max(1);
    let nh = ((f64::from(h0) * r).ceil() as u32).max(1);
    let image = resize_bilinear(&sample.image, nw, nh)?;
    let (sx, sy) = (f64::from(nw) / f64::from(w0), f64::from(nh) / f64::from(h0));
    let boxes = sample
        .boxes
        .iter()
        .map(|b| {
            let [x1, y1, x2, y2] = b.xyxy.map(f64::from);
            LabeledBox { class_id: b.class_id, xyxy: [x1 * sx, y1 * sy, x2 * sx, y2 * sy].map(|v| v as f32) }
        })
        .collect();
    Ok((Sample { image, boxes }, (h0, w0)))
}

/// Letterboxes a sample to exactly `new_shape` = `(height, width)` (no stride-minimal padding,
/// as the training/validation loader of ultralytics: `letterbox(img, shape, auto=False,
/// scaleup=augment)`) and maps its boxes with `x * ratio + pad` (the unrounded padding, as
/// ultralytics does for labels).
pub fn letterbox_sample(
    sample: &Sample,
    new_shape: (u32, u32),
    scale_up: bool,
) -> Result<(Sample, LetterboxInfo), DataError> {
    let cfg = LetterboxConfig::new(new_shape).with_auto(false).with_scale_up(scale_up);
    let (image, info) = letterbox(&sample.image, &cfg)?;
    let boxes =
        sample.boxes.iter().map(|b| LabeledBox { class_id: b.class_id, xyxy: info.letterbox_box(b.xyxy) }).collect();
    Ok((Sample { image, boxes }, info))
}
