//! Reading images from disk and finding the images in a directory.

use std::path::{Path, PathBuf};

use image::{DynamicImage, ImageDecoder, ImageReader, RgbImage};

use crate::error::DataError;

/// File extensions (lower case, without the dot) recognised as images.
pub const IMAGE_EXTENSIONS: &[&str] = &["jpg", "jpeg", "png", "bmp", "webp"];

/// Loads an image file as 8-bit RGB (`width x height` pixels).
///
/// The format is guessed from the file contents. The EXIF orientation, where the format carries
/// one (JPEG, WebP), is applied, as `cv2.imread` does. Grey, alpha and 16-bit images are
/// converted to RGB8 (alpha dropped). Errors name the file.
pub fn load_rgb(path: impl AsRef<Path>) -> Result<RgbImage, DataError> {
    let path = path.as_ref();
    let read = || -> Result<RgbImage, image::ImageError> {
        let mut decoder = ImageReader::open(path)?.with_guessed_format()?.into_decoder()?;
        let orientation = decoder.orientation()?;
        let mut img = DynamicImage::from_decoder(decoder)?;
        img.apply_orientation(orientation);
        Ok(img.into_rgb8())
    };
    read().map_err(|source| DataError::ImageRead { path: path.to_path_buf(), source })
}

/// Whether `path` has one of the [`IMAGE_EXTENSIONS`] (case-insensitive).
pub fn is_image_file(path: impl AsRef<Path>) -> bool {
    path.as_ref()
        .extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| IMAGE_EXTENSIONS.iter().any(|x| e.eq_ignore_ascii_case(x)))
}

/// Lists the image files directly inside `dir` (not recursive), sorted by path.
///
/// Files are selected by extension (see [`IMAGE_EXTENSIONS`]); sub-directories are skipped.
pub fn list_images(dir: impl AsRef<Path>) -> Result<Vec<PathBuf>, DataError> {
    let dir = dir.as_ref();
    let io_err = |source| DataError::ReadDir { path: dir.to_path_buf(), source };
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io_err)? {
        let path = entry.map_err(io_err)?.path();
        if path.is_file() && is_image_file(&path) {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::Rgb;

    #[test]
    fn save_and_load_png_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.png");
        let img = RgbImage::from_fn(5, 3, |x, y| Rgb([x as u8, y as u8, 7]));
        img.save(&path).unwrap();
        assert_eq!(load_rgb(&path).unwrap(), img);
    }

    #[test]
    fn grey_images_become_rgb() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("g.bmp");
        image::GrayImage::from_pixel(2, 2, image::Luma([90])).save(&path).unwrap();
        let img = load_rgb(&path).unwrap();
        assert!(img.pixels().all(|p| *p == Rgb([90, 90, 90])));
    }

    #[test]
    fn errors_name_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing.jpg");
        let err = load_rgb(&missing).unwrap_err();
        assert!(matches!(err, DataError::ImageRead { ref path, .. } if *path == missing));
        assert!(err.to_string().contains("missing.jpg"));

        let garbage = dir.path().join("garbage.png");
        std::fs::write(&garbage, b"not an image").unwrap();
        let err = load_rgb(&garbage).unwrap_err();
        assert!(err.to_string().contains("garbage.png"), "{err}");

        let err = list_images(dir.path().join("nope")).unwrap_err();
        assert!(matches!(err, DataError::ReadDir { .. }));
        assert!(err.to_string().contains("nope"));
    }

    #[test]
    fn lists_images_sorted_by_name() {
        let dir = tempfile::tempdir().unwrap();
        for name in ["b.JPG", "a.png", "c.txt", "d.webp", "e.jpeg", "f.bmp", "labels"] {
            std::fs::write(dir.path().join(name), b"").unwrap();
        }
        std::fs::create_dir(dir.path().join("sub.png")).unwrap();
        let names: Vec<String> = list_images(dir.path())
            .unwrap()
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, ["a.png", "b.JPG", "d.webp", "e.jpeg", "f.bmp"]);
    }
}
