//! The types every stage of the data pipeline shares: a labelled image in pixels and a source of
//! them by index. Datasets on disk, the synthetic generator and in-memory test data all implement
//! [`SampleSource`]; augmentation and the loader consume it.

use image::RgbImage;
use serde::{Deserialize, Serialize};

/// One ground-truth box in image pixels.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct LabeledBox {
    /// Class index in `0..nc`.
    pub class_id: usize,
    /// `[x1, y1, x2, y2]` in pixels of the image it belongs to.
    pub xyxy: [f32; 4],
}

impl LabeledBox {
    /// From a normalised YOLO row `(xc, yc, w, h)` on a `width × height` image.
    pub fn from_yolo(class_id: usize, xywhn: [f32; 4], width: u32, height: u32) -> Self {
        let (w, h) = (width as f32, height as f32);
        let [xc, yc, bw, bh] = xywhn;
        LabeledBox {
            class_id,
            xyxy: [(xc - bw / 2.0) * w, (yc - bh / 2.0) * h, (xc + bw / 2.0) * w, (yc + bh / 2.0) * h],
        }
    }

    /// As a normalised YOLO row `(xc, yc, w, h)` on a `width × height` image.
    pub fn to_yolo(&self, width: u32, height: u32) -> [f32; 4] {
        let (w, h) = (width as f32, height as f32);
        let [x1, y1, x2, y2] = self.xyxy;
        [(x1 + x2) / 2.0 / w, (y1 + y2) / 2.0 / h, (x2 - x1) / w, (y2 - y1) / h]
    }

    /// Box width and height in pixels.
    pub fn size(&self) -> (f32, f32) {
        (self.xyxy[2] - self.xyxy[0], self.xyxy[3] - self.xyxy[1])
    }
}

/// A decoded image with its boxes.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// RGB pixels.
    pub image: RgbImage,
    /// Ground truth in pixels of `image`.
    pub boxes: Vec<LabeledBox>,
}

/// Samples by index. `get` decodes (it is called from worker threads, so it must be `Sync`).
pub trait SampleSource: Send + Sync {
    /// Number of samples.
    fn len(&self) -> usize;
    /// Whether there are no samples.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Decodes sample `index` (`index < len()`).
    fn get(&self, index: usize) -> Result<Sample, crate::DataError>;
    /// Original `(height, width)` of sample `index`, if known without decoding (for rectangular
    /// batches); `None` when unknown.
    fn shape(&self, index: usize) -> Option<(u32, u32)> {
        let _ = index;
        None
    }
    /// A name for messages (file path or generated id).
    fn name(&self, index: usize) -> String {
        format!("sample {index}")
    }
}

/// An in-memory [`SampleSource`] (tests, small experiments).
#[derive(Debug, Clone, Default)]
pub struct VecSource(pub Vec<Sample>);

impl SampleSource for VecSource {
    fn len(&self) -> usize {
        self.0.len()
    }

    fn get(&self, index: usize) -> Result<Sample, crate::DataError> {
        Ok(self.0[index].clone())
    }

    fn shape(&self, index: usize) -> Option<(u32, u32)> {
        let (w, h) = self.0[index].image.dimensions();
        Some((h, w))
    }
}

/// A subset of another source: the samples at `indices`, in that order (a held-out slice of a
/// training set, a calibration subset, …).
#[derive(Clone)]
pub struct Subset {
    inner: std::sync::Arc<dyn SampleSource>,
    indices: Vec<usize>,
}

impl Subset {
    /// The samples of `inner` at `indices`; indices past its end are dropped.
    pub fn new(inner: std::sync::Arc<dyn SampleSource>, indices: Vec<usize>) -> Self {
        let n = inner.len();
        Subset { inner, indices: indices.into_iter().filter(|&i| i < n).collect() }
    }

    /// `n` samples spread evenly over `inner` (every `len / n`-th), deterministic.
    pub fn evenly(inner: std::sync::Arc<dyn SampleSource>, n: usize) -> Self {
        let len = inner.len();
        let n = n.min(len);
        let indices = (0..n).map(|i| i * len / n.max(1)).collect();
        Subset { inner, indices }
    }

    /// Positions in the inner source.
    pub fn indices(&self) -> &[usize] {
        &self.indices
    }
}

impl SampleSource for Subset {
    fn len(&self) -> usize {
        self.indices.len()
    }

    fn get(&self, index: usize) -> Result<Sample, crate::DataError> {
        self.inner.get(self.indices[index])
    }

    fn shape(&self, index: usize) -> Option<(u32, u32)> {
        self.inner.shape(self.indices[index])
    }

    fn name(&self, index: usize) -> String {
        self.inner.name(self.indices[index])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subset_maps_indices() {
        let img = |v: u8| Sample { image: RgbImage::from_pixel(2, 3, image::Rgb([v, v, v])), boxes: vec![] };
        let src: std::sync::Arc<dyn SampleSource> = std::sync::Arc::new(VecSource((0..10).map(img).collect()));
        let s = Subset::evenly(src.clone(), 4);
        assert_eq!(s.indices(), &[0, 2, 5, 7]);
        assert_eq!(s.get(2).unwrap().image.get_pixel(0, 0)[0], 5);
        assert_eq!(s.shape(1), Some((3, 2)));
        let t = Subset::new(src, vec![9, 3, 42]);
        assert_eq!(t.len(), 2, "out-of-range index dropped");
        assert_eq!(t.get(0).unwrap().image.get_pixel(0, 0)[0], 9);
    }

    #[test]
    fn yolo_round_trip() {
        let b = LabeledBox::from_yolo(3, [0.5, 0.25, 0.2, 0.1], 200, 100);
        for (a, e) in b.xyxy.iter().zip([80.0, 20.0, 120.0, 30.0]) {
            assert!((a - e).abs() < 1e-4, "{:?}", b.xyxy);
        }
        assert!((b.size().0 - 40.0).abs() < 1e-4 && (b.size().1 - 10.0).abs() < 1e-4);
        let back = b.to_yolo(200, 100);
        for (a, e) in back.iter().zip([0.5, 0.25, 0.2, 0.1]) {
            assert!((a - e).abs() < 1e-6);
        }
    }
}
