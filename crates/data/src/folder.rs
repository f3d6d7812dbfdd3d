//! Unlabeled images and re-labelled sources: the label-free path.
//!
//! [`ImageFolder`] is a [`SampleSource`] over the image files of one folder (no labels: every
//! sample has no boxes); [`Relabeled`] gives the images of any source new boxes, e.g. a reference
//! model's detections, so that a compressed model can be validated against the model it was made
//! from ("fidelity") on nothing but the user's own images.
//!
//! ```no_run
//! use std::sync::Arc;
//! use yolo_compress_data::{ImageFolder, LabeledBox, Relabeled, SampleSource};
//!
//! let folder = ImageFolder::open("camera/")?;
//! println!("{} images", folder.len());
//! let boxes = vec![vec![LabeledBox { class_id: 0, xyxy: [10.0, 20.0, 50.0, 90.0] }]; folder.len()];
//! let labelled = Relabeled::new(Arc::new(folder), boxes)?;
//! assert_eq!(labelled.get(0)?.boxes.len(), 1);
//! # Ok::<(), yolo_compress_data::DataError>(())
//! ```

use std::path::{Path, PathBuf};
use std::sync::Arc;

use image::{ImageDecoder, ImageReader};

use crate::error::DataError;
use crate::image_io::{list_images, load_rgb};
use crate::sample::{LabeledBox, Sample, SampleSource};

/// The image files directly inside a folder (jpg, jpeg, png, bmp, webp, any case; not recursive;
/// sorted by file name), as unlabeled samples.
///
/// Files are chosen by extension when the folder is opened; a file that turns out to be corrupt
/// fails in [`get`](SampleSource::get) with an error naming it (the
/// [`Loader`](crate::loader::Loader) replaces such samples and reports them).
#[derive(Debug, Clone)]
pub struct ImageFolder {
    dir: PathBuf,
    files: Vec<PathBuf>,
}

impl ImageFolder {
    /// Lists the images of `dir`. Errors: [`DataError::NotAFolder`] when `dir` is not a folder,
    /// [`DataError::NoImages`] when it holds no image file, [`DataError::ReadDir`] when it cannot
    /// be listed.
    pub fn open(dir: impl AsRef<Path>) -> Result<Self, DataError> {
        let dir = dir.as_ref();
        if !dir.is_dir() {
            return Err(DataError::NotAFolder { path: dir.to_path_buf() });
        }
        let files = list_images(dir)?;
        if files.is_empty() {
            return Err(DataError::NoImages { path: dir.to_path_buf() });
        }
        Ok(ImageFolder { dir: dir.to_path_buf(), files })
    }

    /// The folder the images were listed from.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The image files, sorted by name.
    pub fn files(&self) -> &[PathBuf] {
        &self.files
    }
}

/// `(height, width)` of an image file from its header (after the EXIF orientation), without
/// decoding the pixels; `None` when the header cannot be read.
pub fn image_header_shape(path: &Path) -> Option<(u32, u32)> {
    let mut decoder = ImageReader::open(path).ok()?.with_guessed_format().ok()?.into_decoder().ok()?;
    let (w, h) = decoder.dimensions();
    if w == 0 || h == 0 {
        return None;
    }
    use image::metadata::Orientation;
    let rotated = matches!(
        decoder.orientation().unwrap_or(Orientation::NoTransforms),
        Orientation::Rotate90 | Orientation::Rotate270 | Orientation::Rotate90FlipH | Orientation::Rotate270FlipH
    );
    Some(if rotated { (w, h) } else { (h, w) })
}

impl SampleSource for ImageFolder {
    fn len(&self) -> usize {
        self.files.len()
    }

    fn get(&self, index: usize) -> Result<Sample, DataError> {
        let path = self.files.get(index).ok_or(DataError::IndexOutOfRange { index, len: self.files.len() })?;
        Ok(Sample { image: load_rgb(path)?, boxes: Vec::new() })
    }

    fn shape(&self, index: usize) -> Option<(u32, u32)> {
        image_header_shape(self.files.get(index)?)
    }

    fn name(&self, index: usize) -> String {
        self.files.get(index).map_or_else(|| format!("sample {index}"), |p| p.display().to_string())
    }
}

/// The images of another source with other boxes: `boxes[i]` (in pixels of image `i`) replaces
/// whatever labels the inner source had. Shapes and names are the inner source's.
#[derive(Clone)]
pub struct Relabeled {
    inner: Arc<dyn SampleSource>,
    boxes: Vec<Vec<LabeledBox>>,
}

impl std::fmt::Debug for Relabeled {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Relabeled").field("len", &self.boxes.len()).finish_non_exhaustive()
    }
}

impl Relabeled {
    /// `inner`'s images with `boxes` (one list per sample). Errors with
    /// [`DataError::LabelCountMismatch`] when there are not exactly `inner.len()` lists.
    pub fn new(inner: Arc<dyn SampleSource>, boxes: Vec<Vec<LabeledBox>>) -> Result<Self, DataError> {
        if boxes.len() != inner.len() {
            return Err(DataError::LabelCountMismatch { samples: inner.len(), labels: boxes.len() });
        }
        Ok(Relabeled { inner, boxes })
    }

    /// The boxes of every sample.
    pub fn boxes(&self) -> &[Vec<LabeledBox>] {
        &self.boxes
    }

    /// The source the images come from.
    pub fn inner(&self) -> &Arc<dyn SampleSource> {
        &self.inner
    }

    /// Number of boxes over all samples.
    pub fn instances(&self) -> usize {
        self.boxes.iter().map(Vec::len).sum()
    }
}

impl SampleSource for Relabeled {
    fn len(&self) -> usize {
        self.boxes.len()
    }

    fn get(&self, index: usize) -> Result<Sample, DataError> {
        let boxes = self.boxes.get(index).ok_or(DataError::IndexOutOfRange { index, len: self.boxes.len() })?;
        let image = self.inner.get(index)?.image;
        Ok(Sample { image, boxes: boxes.clone() })
    }

    fn shape(&self, index: usize) -> Option<(u32, u32)> {
        self.inner.shape(index)
    }

    fn name(&self, index: usize) -> String {
        self.inner.name(index)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sample::VecSource;
    use image::{Rgb, RgbImage};

    /// A folder with two tiny PNGs, a JPEG with an upper-case extension, a corrupt "image", a text
    /// file and a sub-folder.
    fn folder() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        RgbImage::from_pixel(6, 4, Rgb([10, 20, 30])).save(dir.path().join("b.png")).unwrap();
        RgbImage::from_pixel(3, 5, Rgb([200, 0, 0])).save(dir.path().join("a.png")).unwrap();
        RgbImage::from_pixel(8, 2, Rgb([0, 0, 0]))
            .save_with_format(dir.path().join("c.JPG"), image::ImageFormat::Jpeg)
            .unwrap();
        std::fs::write(dir.path().join("d_corrupt.jpg"), b"definitely not a jpeg").unwrap();
        std::fs::write(dir.path().join("notes.txt"), b"hello").unwrap();
        std::fs::create_dir(dir.path().join("sub.png")).unwrap();
        dir
    }

    #[test]
    fn lists_images_sorted_and_decodes_without_boxes() {
        let dir = folder();
        let f = ImageFolder::open(dir.path()).unwrap();
        let names: Vec<String> =
            f.files().iter().map(|p| p.file_name().unwrap().to_string_lossy().into_owned()).collect();
        assert_eq!(names, ["a.png", "b.png", "c.JPG", "d_corrupt.jpg"]);
        assert_eq!(f.len(), 4);
        assert_eq!(f.dir(), dir.path());
        let a = f.get(0).unwrap();
        assert_eq!(a.image.dimensions(), (3, 5));
        assert_eq!(a.image.get_pixel(1, 1), &Rgb([200, 0, 0]));
        assert!(a.boxes.is_empty());
        assert_eq!(f.shape(0), Some((5, 3)), "(height, width) from the header");
        assert_eq!(f.shape(1), Some((4, 6)));
        assert_eq!(f.shape(2), Some((2, 8)));
        assert_eq!(f.name(1), dir.path().join("b.png").display().to_string());
    }

    #[test]
    fn a_corrupt_file_is_an_error_naming_it() {
        let dir = folder();
        let f = ImageFolder::open(dir.path()).unwrap();
        assert_eq!(f.shape(3), None);
        let err = f.get(3).unwrap_err();
        assert!(matches!(err, DataError::ImageRead { .. }), "{err:?}");
        assert!(err.to_string().contains("d_corrupt.jpg"), "{err}");
        assert!(matches!(f.get(9), Err(DataError::IndexOutOfRange { index: 9, len: 4 })));
    }

    #[test]
    fn typed_errors_for_missing_folders_and_folders_without_images() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope");
        let err = ImageFolder::open(&missing).unwrap_err();
        assert!(matches!(err, DataError::NotAFolder { ref path } if *path == missing), "{err:?}");
        assert!(err.to_string().contains("nope"), "{err}");

        let file = dir.path().join("x.png");
        RgbImage::new(2, 2).save(&file).unwrap();
        assert!(matches!(ImageFolder::open(&file), Err(DataError::NotAFolder { .. })), "a file is not a folder");

        let empty = dir.path().join("empty");
        std::fs::create_dir(&empty).unwrap();
        std::fs::write(empty.join("readme.txt"), b"no images here").unwrap();
        let err = ImageFolder::open(&empty).unwrap_err();
        assert!(matches!(err, DataError::NoImages { ref path } if *path == empty), "{err:?}");
        assert!(err.to_string().contains("empty") && err.to_string().contains("no images"), "{err}");
    }

    #[test]
    fn relabeled_replaces_boxes_and_checks_lengths() {
        let dir = folder();
        let f: Arc<dyn SampleSource> = Arc::new(ImageFolder::open(dir.path()).unwrap());
        let b = |c: usize| LabeledBox { class_id: c, xyxy: [0.0, 0.0, 1.0, 1.0] };
        let err = Relabeled::new(f.clone(), vec![vec![b(0)]]).unwrap_err();
        assert!(matches!(err, DataError::LabelCountMismatch { samples: 4, labels: 1 }), "{err:?}");
        let r = Relabeled::new(f.clone(), vec![vec![b(1)], vec![], vec![b(2), b(3)], vec![b(4)]]).unwrap();
        assert_eq!(r.len(), 4);
        assert_eq!(r.instances(), 4);
        let s = r.get(2).unwrap();
        assert_eq!(s.image.dimensions(), (8, 2));
        assert_eq!(s.boxes, vec![b(2), b(3)]);
        assert!(r.get(1).unwrap().boxes.is_empty());
        assert_eq!(r.shape(0), Some((5, 3)));
        assert_eq!(r.name(1), f.name(1));
        assert!(r.get(3).unwrap_err().to_string().contains("d_corrupt.jpg"), "the inner error comes through");

        // Any source: in-memory samples lose their own boxes.
        let mem = VecSource(vec![Sample { image: RgbImage::new(4, 4), boxes: vec![b(7)] }]);
        let r = Relabeled::new(Arc::new(mem), vec![vec![]]).unwrap();
        assert!(r.get(0).unwrap().boxes.is_empty());
    }
}
