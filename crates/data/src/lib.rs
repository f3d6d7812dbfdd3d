//! Image input and output for yolo-compress: loading and listing images, the letterbox
//! pre-processing of ultralytics YOLOv5 (with an OpenCV-compatible bilinear resize), conversion
//! to the network's planar float layout, mapping boxes back to the original image, and drawing
//! detections.
//!
//! This crate does not depend on Burn: images are [`image::RgbImage`], network inputs are plain
//! `Vec<f32>` in `[3, H, W]` layout, boxes are `[x1, y1, x2, y2]` pixels.
//!
//! A typical detection pre-processing:
//!
//! ```
//! use yolo_compress_data::{LetterboxConfig, image_to_chw, letterbox};
//!
//! let img = image::RgbImage::from_pixel(810, 1080, image::Rgb([0, 0, 0]));
//! let (boxed, info) = letterbox(&img, &LetterboxConfig::new((640, 640)))?;
//! assert_eq!(info.shape, (640, 480)); // (height, width): padded only to a multiple of 32
//! let input = image_to_chw(&boxed); // [3, 640, 480], values in 0..=1
//! assert_eq!(input.len(), 3 * 640 * 480);
//! // A box predicted on `boxed`, back in the pixels of `img`:
//! let original = info.unletterbox_box([48.0, 64.0, 240.0, 320.0]);
//! assert!((original[2] - 405.0).abs() < 1e-3);
//! # Ok::<(), yolo_compress_data::DataError>(())
//! ```

pub mod annotate;
pub mod augment;
pub mod chw;
pub mod convert;
pub mod dataset;
pub mod error;
pub mod folder;
pub mod image_io;
pub mod letterbox;
pub mod loader;
pub mod resize;
pub mod sample;
pub mod synth;

pub use annotate::{AnnotateStyle, Annotation, class_color, draw_detections, draw_detections_with, draw_text};
pub use chw::{image_to_chw, image_to_chw_into};
pub use error::DataError;
pub use folder::{ImageFolder, Relabeled, image_header_shape};
pub use image_io::{IMAGE_EXTENSIONS, is_image_file, list_images, load_rgb};
pub use letterbox::{LetterboxConfig, LetterboxInfo, letterbox};
pub use resize::resize_bilinear;
pub use sample::{LabeledBox, Sample, SampleSource, Subset, VecSource};
