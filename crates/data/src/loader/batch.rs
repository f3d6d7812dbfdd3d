//! A collated batch: image and target tensors plus host-side metadata.

use burn::tensor::{Device, Tensor, TensorData};
use image::RgbImage;

use super::config::LoaderError;
use super::pipeline::SampleMeta;

/// One batch as ultralytics' `collate_fn` returns it, on the loader's device.
#[derive(Debug, Clone)]
pub struct Batch {
    /// Images `[B, 3, H, W]`, RGB, `f32` in `0..=1`.
    pub images: Tensor<4>,
    /// Targets `[N, 6]`: `(image index in the batch, class, xc, yc, w, h)`, box coordinates
    /// normalised to `W` and `H` (ultralytics' format for `build_targets`). `N` may be 0.
    pub targets: Tensor<2>,
    /// The rows of `targets`, on the host.
    pub target_rows: Vec<[f32; 6]>,
    /// Per image: source index, name, original and batch shapes, letterbox mapping.
    pub samples: Vec<SampleMeta>,
    /// Number of this batch in its epoch (0-based).
    pub index: usize,
    /// Samples that failed to decode and were replaced, one message each (log them).
    pub warnings: Vec<String>,
}

impl Batch {
    /// Number of images.
    pub fn len(&self) -> usize {
        self.samples.len()
    }

    /// Whether the batch has no images (never true for a batch from a loader).
    pub fn is_empty(&self) -> bool {
        self.samples.is_empty()
    }

    /// `(height, width)` of the images.
    pub fn image_shape(&self) -> (usize, usize) {
        let [_, _, h, w] = self.images.dims();
        (h, w)
    }
}

/// One finished sample as the workers deliver it.
pub(crate) struct Item {
    /// The final image.
    pub image: RgbImage,
    /// `(class, xc, yc, w, h)` rows normalised to the image.
    pub labels: Vec<[f32; 5]>,
    /// Where it came from.
    pub meta: SampleMeta,
    /// Replaced corrupt samples.
    pub warnings: Vec<String>,
}

/// A batch collated on the host, ready to become tensors.
pub(crate) struct HostBatch {
    index: usize,
    /// `[B, 3, H, W]` planar `f32` pixels.
    pixels: Vec<f32>,
    dims: [usize; 4],
    target_rows: Vec<[f32; 6]>,
    samples: Vec<SampleMeta>,
    warnings: Vec<String>,
}

/// Collates the samples of batch `index` (in order) on the host: one `[B, 3, H, W]` buffer and the
/// target rows. The first failed sample's error is the batch's error.
pub(crate) fn collate_host(index: usize, items: Vec<Result<Item, LoaderError>>) -> Result<HostBatch, LoaderError> {
    let items = items.into_iter().collect::<Result<Vec<Item>, LoaderError>>()?;
    let (h, w) = items.first().map_or((0, 0), |it| (it.image.height() as usize, it.image.width() as usize));
    let per_image = 3 * h * w;
    let mut pixels = vec![0.0f32; items.len() * per_image];
    let mut target_rows = Vec::new();
    let mut samples = Vec::with_capacity(items.len());
    let mut warnings = Vec::new();
    for (i, (item, out)) in items.into_iter().zip(pixels.chunks_exact_mut(per_image.max(1))).enumerate() {
        // Every image of a batch is letterboxed (or mosaicked) to the batch shape, a multiple of the
        // stride that `LoaderConfig::validate` guarantees; checked rather than assumed, since a
        // panic here would stall the epoch.
        let got = (item.image.height() as usize, item.image.width() as usize);
        if got != (h, w) {
            return Err(LoaderError::BatchShape { batch: index, image: i, got, want: (h, w) });
        }
        crate::chw::image_to_chw_into(&item.image, out);
        target_rows.extend(item.labels.iter().map(|l| [i as f32, l[0], l[1], l[2], l[3], l[4]]));
        samples.push(item.meta);
        warnings.extend(item.warnings);
    }
    let dims = [samples.len(), 3, h, w];
    Ok(HostBatch { index, pixels, dims, target_rows, samples, warnings })
}

impl HostBatch {
    /// Batch number in the epoch.
    pub fn index(&self) -> usize {
        self.index
    }

    /// Moves the buffers into tensors on `device`.
    pub fn into_batch(self, device: &Device) -> Batch {
        let images = Tensor::<4>::from_data(TensorData::new(self.pixels, self.dims), device);
        let rows: Vec<f32> = self.target_rows.iter().flatten().copied().collect();
        let targets = Tensor::<2>::from_data(TensorData::new(rows, [self.target_rows.len(), 6]), device);
        Batch {
            images,
            targets,
            target_rows: self.target_rows,
            samples: self.samples,
            index: self.index,
            warnings: self.warnings,
        }
    }
}
