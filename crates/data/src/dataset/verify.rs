//! The verification pass: every image decoded in full, every label file parsed, bad pairs
//! reported and skipped. Runs in parallel; results are in the order of the input list whatever
//! the thread count. See [`verify_split`] for the cached entry point.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use image::metadata::Orientation;
use image::{DynamicImage, ImageDecoder, ImageFormat, ImageReader, Limits};
use serde::{Deserialize, Serialize};

use super::labels::{LabelRow, label_path, parse_labels};

/// Default pixel-count limit, PIL's `MAX_IMAGE_PIXELS` × 2 (the size at which PIL refuses an
/// image as a decompression bomb).
pub const DEFAULT_MAX_PIXELS: u64 = 178_956_970;

/// Settings of the verification pass.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyOptions {
    /// Images with more pixels than this (read from the header, before decoding) are rejected as
    /// possible decompression bombs. Default [`DEFAULT_MAX_PIXELS`].
    pub max_pixels: u64,
    /// Images whose width or height is below this are rejected. Default 1 (only zero-size images;
    /// ultralytics uses 10).
    pub min_side: u32,
    /// Worker threads; 0 (the default) = the available parallelism.
    pub workers: usize,
    /// Read and write the verification cache next to the labels. Default true.
    pub cache: bool,
}

impl Default for VerifyOptions {
    fn default() -> Self {
        VerifyOptions { max_pixels: DEFAULT_MAX_PIXELS, min_side: 1, workers: 0, cache: true }
    }
}

/// An image that passed verification, with its labels.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VerifiedImage {
    /// The image file.
    pub image: PathBuf,
    /// `(height, width)` in pixels, after the EXIF orientation is applied.
    pub shape: (u32, u32),
    /// Its objects (empty for backgrounds).
    pub labels: Vec<LabelRow>,
    /// Whether a label file exists (`false`: a background image without one).
    pub label_file: bool,
}

/// A file that was skipped, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CorruptFile {
    /// The file at fault: the image, or its label file when the labels are bad.
    pub file: String,
    /// What is wrong (for label files: the line and the value).
    pub reason: String,
    /// The image that was skipped because of it.
    pub image: String,
}

/// What verification found in one split. Serialises to the `ycomp data check --json` fields.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SplitReport {
    /// Usable images.
    pub images: usize,
    /// Usable images that have a label file.
    pub labels: usize,
    /// Objects in the usable images.
    pub instances: usize,
    /// Usable images whose label file has no object.
    pub empty: usize,
    /// Usable images without a label file (backgrounds).
    pub missing_labels: usize,
    /// Skipped files, each with its reason.
    pub corrupt: Vec<CorruptFile>,
    /// Exact duplicate label rows dropped.
    pub duplicates_removed: usize,
    /// Non-fatal notes (duplicates dropped, cache not writable, ...).
    pub warnings: Vec<String>,
    /// Whether the result came from the cache.
    pub cache_hit: bool,
}

/// The usable images of a split and the report.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Verified {
    /// The usable images, in list order.
    pub items: Vec<VerifiedImage>,
    /// Counts, skipped files and warnings.
    pub report: SplitReport,
}

/// Verifies `images` for a dataset of `nc` classes, through the cache next to the labels when
/// `opts.cache` is set: a cache whose key (every image and label file's path, size and
/// modification time, `nc`, the options and the cache format version) matches is used as is;
/// otherwise every image is decoded and the cache rewritten (atomically; a cache that cannot be
/// written is a warning).
pub fn verify_split(images: &[PathBuf], nc: usize, opts: &VerifyOptions) -> Verified {
    if !opts.cache {
        return verify_images(images, nc, opts);
    }
    // No cache where the labels folder does not exist (a dataset of backgrounds only).
    let Some(path) = super::cache::cache_path(images).filter(|p| p.parent().is_some_and(Path::is_dir)) else {
        return verify_images(images, nc, opts);
    };
    let key = super::cache::cache_key(images, nc, opts);
    if let Some(mut hit) = super::cache::load(&path, key) {
        hit.report.cache_hit = true;
        return hit;
    }
    let mut verified = verify_images(images, nc, opts);
    if let Err(e) = super::cache::save(&path, key, &verified) {
        verified.report.warnings.push(format!("cache not saved to {}: {e}", path.display()));
    }
    verified
}

/// Verifies `images` (no cache): decodes each in full and parses its label file, on
/// `opts.workers` threads.
pub fn verify_images(images: &[PathBuf], nc: usize, opts: &VerifyOptions) -> Verified {
    let workers = match opts.workers {
        0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
        n => n,
    }
    .clamp(1, images.len().max(1));
    let next = AtomicUsize::new(0);
    let mut results: Vec<(usize, Outcome)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..workers)
            .map(|_| {
                s.spawn(|| {
                    let mut done = Vec::new();
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some(image) = images.get(i) else { break };
                        done.push((i, verify_guarded(image, nc, opts)));
                    }
                    done
                })
            })
            .collect();
        handles.into_iter().flat_map(|h| h.join().expect("verification worker panicked")).collect()
    });
    results.sort_by_key(|(i, _)| *i);

    let mut out = Verified::default();
    let r = &mut out.report;
    for (_, outcome) in results {
        match outcome {
            Outcome::Ok { item, duplicates } => {
                r.images += 1;
                r.instances += item.labels.len();
                if item.label_file {
                    r.labels += 1;
                    r.empty += usize::from(item.labels.is_empty());
                } else {
                    r.missing_labels += 1;
                }
                if duplicates > 0 {
                    r.duplicates_removed += duplicates;
                    r.warnings.push(format!(
                        "{}: {duplicates} duplicate label row{} removed",
                        label_path(&item.image).display(),
                        if duplicates == 1 { "" } else { "s" }
                    ));
                }
                out.items.push(item);
            }
            Outcome::Corrupt(c) => r.corrupt.push(c),
        }
    }
    out
}

/// The verdict on one image.
enum Outcome {
    Ok { item: VerifiedImage, duplicates: usize },
    Corrupt(CorruptFile),
}

/// [`verify_image`], with a decoder panic (a bug in a codec on a hostile file) reported as a
/// corrupt file instead of ending the run.
fn verify_guarded(image: &Path, nc: usize, opts: &VerifyOptions) -> Outcome {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| verify_image(image, nc, opts))).unwrap_or_else(|panic| {
        let msg = panic
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_default();
        Outcome::Corrupt(CorruptFile {
            file: image.display().to_string(),
            reason: format!("the decoder failed on this file ({msg})"),
            image: image.display().to_string(),
        })
    })
}

fn verify_image(image: &Path, nc: usize, opts: &VerifyOptions) -> Outcome {
    let corrupt = |file: &Path, reason: String| {
        Outcome::Corrupt(CorruptFile { file: file.display().to_string(), reason, image: image.display().to_string() })
    };
    let shape = match check_image(image, opts) {
        Ok(shape) => shape,
        Err(reason) => return corrupt(image, reason),
    };
    let label = label_path(image);
    if !label.is_file() {
        return Outcome::Ok {
            item: VerifiedImage { image: image.to_path_buf(), shape, labels: Vec::new(), label_file: false },
            duplicates: 0,
        };
    }
    let text = match std::fs::read(&label) {
        Ok(bytes) => match String::from_utf8(bytes) {
            Ok(t) => t,
            Err(_) => return corrupt(&label, "label file is not UTF-8 text".into()),
        },
        Err(e) => return corrupt(&label, format!("cannot read label file: {e}")),
    };
    match parse_labels(&text, nc) {
        Ok(parsed) => Outcome::Ok {
            item: VerifiedImage { image: image.to_path_buf(), shape, labels: parsed.rows, label_file: true },
            duplicates: parsed.duplicates_removed,
        },
        Err(e) => corrupt(&label, e.to_string()),
    }
}

/// Checks that `path` is a complete, decodable image within the limits of `opts`; returns its
/// `(height, width)` after the EXIF orientation.
///
/// The pixel-count limit is checked on the header's dimensions, before anything is decoded.
/// The whole image is then decoded (a header alone says nothing of the data), and a JPEG must
/// reach its end-of-image marker: the JPEG decoder fills a stream cut short with grey instead of
/// failing, so truncation is checked on the file's structure (see [`check_jpeg_complete`]).
pub fn check_image(path: &Path, opts: &VerifyOptions) -> Result<(u32, u32), String> {
    let size = std::fs::metadata(path).map_err(|e| format!("cannot read: {e}"))?.len();
    if size == 0 {
        return Err("empty file (0 bytes)".into());
    }
    // The format comes from the contents alone (`with_guessed_format` would fall back on the
    // extension, and call a text file named .jpg a broken JPEG).
    let mut head = Vec::with_capacity(64);
    std::fs::File::open(path)
        .and_then(|f| f.take(64).read_to_end(&mut head))
        .map_err(|e| format!("cannot read: {e}"))?;
    let format = image::guess_format(&head).map_err(|_| "not an image (its contents match no image format)")?;
    let mut reader = ImageReader::open(path).map_err(|e| format!("cannot read: {e}"))?;
    reader.set_format(format);
    if !matches!(format, ImageFormat::Jpeg | ImageFormat::Png | ImageFormat::Bmp | ImageFormat::WebP) {
        return Err(format!("unsupported image format {format:?} (jpg, png, bmp and webp are read)"));
    }
    // Our own pixel limit replaces the crate's default allocation cap of 512 MiB, which would
    // otherwise refuse images just under the limit; allocations stay bounded by it.
    let mut limits = Limits::no_limits();
    limits.max_alloc = Some(opts.max_pixels.saturating_mul(8).max(512 << 20));
    reader.limits(limits);
    let mut decoder = reader.into_decoder().map_err(|e| format!("cannot read image header: {e}"))?;
    let (w, h) = decoder.dimensions();
    if w == 0 || h == 0 {
        return Err(format!("zero-size image ({w}x{h} px)"));
    }
    let pixels = u64::from(w) * u64::from(h);
    if pixels > opts.max_pixels {
        return Err(format!(
            "image is {w}x{h} = {pixels} px, above the limit of {} px (decompression bomb guard; raise the \
             limit, e.g. `--max-pixels`, if the file is genuine)",
            opts.max_pixels
        ));
    }
    if w.min(h) < opts.min_side {
        return Err(format!("image is {w}x{h} px, smaller than {} px on a side", opts.min_side));
    }
    let orientation = decoder.orientation().unwrap_or(Orientation::NoTransforms);
    DynamicImage::from_decoder(decoder).map_err(|e| format!("corrupt or truncated image data: {e}"))?;
    if format == ImageFormat::Jpeg {
        let bytes = std::fs::read(path).map_err(|e| format!("cannot read: {e}"))?;
        check_jpeg_complete(&bytes)?;
    }
    let rotated = matches!(
        orientation,
        Orientation::Rotate90 | Orientation::Rotate270 | Orientation::Rotate90FlipH | Orientation::Rotate270FlipH
    );
    Ok(if rotated { (w, h) } else { (h, w) })
}

/// Checks that a JPEG stream is complete: walks its segments and entropy-coded scans and
/// requires the end-of-image marker (`FF D9`). Bytes after it are allowed (some cameras append
/// data). Stray bytes between segments are skipped, as libjpeg does.
///
/// Ultralytics re-saves JPEGs that lack the marker; here they are reported instead, since the
/// decoder cannot tell a file cut mid-scan (whose missing rows it paints grey) from one that only
/// lacks the marker.
pub fn check_jpeg_complete(bytes: &[u8]) -> Result<(), String> {
    let truncated =
        || format!("truncated JPEG: the data ends after {} bytes without an end-of-image marker", bytes.len());
    if bytes.len() < 2 || bytes[..2] != [0xFF, 0xD8] {
        return Err("not a JPEG (no start-of-image marker)".into());
    }
    let find_ff = |from: usize| bytes.get(from..).and_then(|b| b.iter().position(|&x| x == 0xFF)).map(|p| from + p);
    let mut i = 2;
    loop {
        // A marker: 0xFF (then fill bytes 0xFF), then its code.
        i = find_ff(i).ok_or_else(truncated)?;
        while bytes.get(i) == Some(&0xFF) {
            i += 1;
        }
        let marker = *bytes.get(i).ok_or_else(truncated)?;
        i += 1;
        match marker {
            0xD9 => return Ok(()),
            0x00 | 0x01 | 0xD0..=0xD8 => continue,
            _ => {}
        }
        let len = bytes.get(i..i + 2).ok_or_else(truncated)?;
        let len = usize::from(u16::from_be_bytes([len[0], len[1]]));
        if len < 2 {
            return Err(format!("corrupt JPEG: segment length {len} at byte {i}"));
        }
        i += len;
        if i > bytes.len() {
            return Err(truncated());
        }
        if marker == 0xDA {
            // Entropy-coded data runs to the next marker that is neither a stuffed 0xFF00 nor a
            // restart marker.
            loop {
                let j = find_ff(i).ok_or_else(truncated)?;
                let next = *bytes.get(j + 1).ok_or_else(truncated)?;
                if next == 0x00 || (0xD0..=0xD7).contains(&next) {
                    i = j + 2;
                } else if next == 0xFF {
                    i = j + 1;
                } else {
                    i = j;
                    break;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    fn jpeg(w: u32, h: u32) -> Vec<u8> {
        let img = image::RgbImage::from_fn(w, h, |x, y| image::Rgb([(x * 7) as u8, (y * 11) as u8, (x * y) as u8]));
        let mut buf = Cursor::new(Vec::new());
        img.write_to(&mut buf, ImageFormat::Jpeg).unwrap();
        buf.into_inner()
    }

    #[test]
    fn complete_jpegs_pass_and_truncated_ones_fail() {
        let b = jpeg(40, 30);
        check_jpeg_complete(&b).unwrap();
        let mut trailing = b.clone();
        trailing.extend_from_slice(b"trailing camera data");
        check_jpeg_complete(&trailing).unwrap();
        for cut in [b.len() - 1, b.len() - 2, b.len() * 3 / 4, b.len() / 2, 3, 1, 0] {
            let e = check_jpeg_complete(&b[..cut]).unwrap_err();
            assert!(e.contains("JPEG"), "{cut}: {e}");
        }
    }
}
