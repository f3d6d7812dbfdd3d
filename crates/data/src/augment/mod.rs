//! Box-aware, seeded augmentation with ultralytics hyperparameter names and defaults.
//!
//! Every operation is a function of its input sample(s), its parameters and a caller-supplied
//! random number generator (`&mut impl Rng`), so a seeded generator reproduces it exactly. Boxes are
//! [`LabeledBox`](crate::LabeledBox)es in pixels of the sample's image and follow the pixels:
//!
//! | ultralytics | here |
//! |---|---|
//! | `load_image` | [`resize_to_imgsz`] |
//! | `letterbox(..., auto=False)` + label mapping | [`letterbox_sample`] |
//! | `load_mosaic` (placement + crop) | [`mosaic`], [`mosaic_canvas`], [`mosaic_center`] |
//! | `random_perspective`, `box_candidates` | [`random_perspective`], [`apply_perspective`], [`box_candidates`] |
//! | `augment_hsv` (OpenCV 8-bit HSV) | [`augment_hsv`], [`apply_hsv_gains`] |
//! | `np.flipud` / `np.fliplr` + labels | [`flip_ud`], [`flip_lr`], [`random_flips`] |
//! | `mixup` (Beta(32, 32)) | [`mixup`] |
//! | `rect` batch shapes | [`rect_batches`] |
//! | `hyp.scratch-low.yaml` | [`Hyp`] |
//!
//! The loader ([`crate::loader`]) chains them as ultralytics' `LoadImagesAndLabels.__getitem__`
//! does. Random draws use `uniform(a, b) = a + (b - a) * u` with `u` in `[0, 1)`, in ultralytics'
//! order; the streams are ChaCha, not Python's, so the same seed does not give ultralytics' exact
//! images, only the same distributions.

mod flip;
mod hsv;
mod hyp;
mod letterbox;
mod mixup;
mod mosaic;
mod perspective;
mod rect;
mod warp;

pub use flip::{flip_lr, flip_ud, random_flips};
pub use hsv::{apply_hsv_gains, augment_hsv, hsv_luts, hsv_to_rgb, rgb_to_hsv};
pub use hyp::{Hyp, HypError};
pub use letterbox::{letterbox_sample, resize_to_imgsz};
pub use mixup::{mixup, mixup_with_ratio, sample_beta};
pub use mosaic::{mosaic, mosaic_border, mosaic_canvas, mosaic_center};
pub use perspective::{
    BORDER_VALUE, PerspectiveDraw, PerspectiveParams, apply_perspective, box_candidates, box_candidates_with,
    random_perspective, transform_boxes,
};
pub use rect::{RectBatches, rect_batches};
pub use warp::{IDENTITY, Mat3, mat3_mul, warp_affine, warp_perspective};

use rand::Rng;

/// Errors of the augmentation operations (settings errors are [`HypError`]).
#[derive(Debug, thiserror::Error)]
pub enum AugmentError {
    /// Two images that must have the same size do not.
    #[error("{op} needs images of the same size, got {}x{} and {}x{}", first.0, first.1, second.0, second.1)]
    SizeMismatch {
        /// The operation.
        op: &'static str,
        /// `(width, height)` of the first image.
        first: (u32, u32),
        /// `(width, height)` of the second image.
        second: (u32, u32),
    },
}

/// Python's `random.uniform(a, b)`: `a + (b - a) * u`, `u` uniform in `[0, 1)`; `a == b` is allowed.
pub(crate) fn uniform(rng: &mut impl Rng, a: f64, b: f64) -> f64 {
    a + (b - a) * rng.random::<f64>()
}
