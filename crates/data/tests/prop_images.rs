//! Robustness of image verification: mutated and truncated JPEG, PNG, BMP and WebP files are
//! either accepted with their true size or reported, never a panic; the JPEG structure walk
//! never panics on arbitrary bytes. `PROPTEST_CASES=20000` for a long run (each case writes and
//! decodes a file).

use std::io::Cursor;

use image::{ImageFormat, Rgb, RgbImage};
use proptest::prelude::*;
use proptest::sample::Index;
use yolo_compress_data::dataset::{VerifyOptions, check_image, check_jpeg_complete};

fn encoded(format: ImageFormat) -> Vec<u8> {
    let img = RgbImage::from_fn(23, 17, |x, y| Rgb([(x * 11) as u8, (y * 15) as u8, (x * y) as u8]));
    let mut buf = Cursor::new(Vec::new());
    img.write_to(&mut buf, format).unwrap();
    buf.into_inner()
}

/// Byte edits: overwrite, insert, delete, truncate.
fn edit() -> impl Strategy<Value = (u8, Index, u8)> {
    (0u8..4, any::<Index>(), any::<u8>())
}

fn apply(mut bytes: Vec<u8>, edits: &[(u8, Index, u8)]) -> Vec<u8> {
    for (kind, at, byte) in edits {
        if bytes.is_empty() {
            break;
        }
        let i = at.index(bytes.len());
        match kind {
            0 => bytes[i] = *byte,
            1 => bytes.insert(i, *byte),
            2 => {
                bytes.remove(i);
            }
            _ => bytes.truncate(i),
        }
    }
    bytes
}

proptest! {
    #[test]
    fn mutated_images_are_checked_without_panicking(
        format in prop::sample::select(&[ImageFormat::Jpeg, ImageFormat::Png, ImageFormat::Bmp, ImageFormat::WebP][..]),
        edits in proptest::collection::vec(edit(), 1..6),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.img");
        std::fs::write(&path, apply(encoded(format), &edits)).unwrap();
        let opts = VerifyOptions { max_pixels: 1 << 24, ..VerifyOptions::default() };
        if let Ok((h, w)) = check_image(&path, &opts) {
            prop_assert!(h > 0 && w > 0 && u64::from(h) * u64::from(w) <= 1 << 24);
        }
    }

    #[test]
    fn jpeg_walk_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..256), edits in proptest::collection::vec(edit(), 0..6)) {
        let _ = check_jpeg_complete(&bytes);
        let mut jpeg = encoded(ImageFormat::Jpeg);
        jpeg = apply(jpeg, &edits);
        let _ = check_jpeg_complete(&jpeg);
    }
}
