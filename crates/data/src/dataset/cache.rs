//! The verification cache: the result of [`verify_images`](super::verify_images) stored as JSON
//! next to the labels (`labels/train.cache` for `labels/train/*.txt`, as ultralytics names it),
//! keyed by a hash of every image and label file's path, size and modification time, `nc`, the
//! verification options and [`CACHE_VERSION`]. Any change to a file, a file added or removed, or
//! a label file appearing, changes the key and the split is verified again.

use std::hash::Hasher;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::UNIX_EPOCH;

use serde::{Deserialize, Serialize};

use super::labels::label_path;
use super::verify::{Verified, VerifyOptions};

/// Version of the cache format and of the verification rules; bump it when either changes.
pub const CACHE_VERSION: u32 = 1;

/// Marks a file as ours.
const CACHE_FORMAT: &str = "yolo-compress verification cache";

#[derive(Serialize, Deserialize)]
struct CacheFile {
    format: String,
    version: u32,
    key: String,
    verified: Verified,
}

/// Where the cache of a split lives: the folder of the first image's label file, with
/// `.cache` appended (`ds/labels/train` → `ds/labels/train.cache`). `None` for an empty list.
pub fn cache_path(images: &[PathBuf]) -> Option<PathBuf> {
    let folder = label_path(images.first()?).parent()?.to_path_buf();
    let name = folder.file_name()?.to_string_lossy().into_owned();
    Some(folder.with_file_name(format!("{name}.cache")))
}

/// The cache key of a split (see the module documentation).
pub fn cache_key(images: &[PathBuf], nc: usize, opts: &VerifyOptions) -> u64 {
    let mut h = Fnv1a::default();
    h.write(CACHE_FORMAT.as_bytes());
    h.write_u32(CACHE_VERSION);
    h.write_u64(nc as u64);
    h.write_u64(opts.max_pixels);
    h.write_u32(opts.min_side);
    h.write_u64(images.len() as u64);
    for image in images {
        stamp(&mut h, image);
        stamp(&mut h, &label_path(image));
    }
    h.finish()
}

/// Path, then size and modification time when the file exists.
fn stamp(h: &mut Fnv1a, path: &Path) {
    let bytes = path.as_os_str().as_encoded_bytes();
    h.write_u64(bytes.len() as u64);
    h.write(bytes);
    match std::fs::metadata(path) {
        Ok(m) if m.is_file() => {
            h.write_u8(1);
            h.write_u64(m.len());
            let mtime = m.modified().ok().and_then(|t| t.duration_since(UNIX_EPOCH).ok()).map_or(0, |d| d.as_nanos());
            h.write_u128(mtime);
        }
        _ => h.write_u8(0),
    }
}

/// The cached result at `path` if it exists, parses, and has `key`.
pub fn load(path: &Path, key: u64) -> Option<Verified> {
    let text = std::fs::read(path).ok()?;
    let file: CacheFile = serde_json::from_slice(&text).ok()?;
    (file.format == CACHE_FORMAT && file.version == CACHE_VERSION && file.key == format!("{key:016x}"))
        .then_some(file.verified)
}

/// Writes the cache atomically (a temporary file in the same folder, then a rename).
pub fn save(path: &Path, key: u64, verified: &Verified) -> std::io::Result<()> {
    let file = CacheFile {
        format: CACHE_FORMAT.into(),
        version: CACHE_VERSION,
        key: format!("{key:016x}"),
        verified: Verified {
            report: super::SplitReport { cache_hit: false, ..verified.report.clone() },
            ..verified.clone()
        },
    };
    let text = serde_json::to_vec(&file).map_err(std::io::Error::other)?;
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    static WRITES: AtomicU64 = AtomicU64::new(0);
    let n = WRITES.fetch_add(1, Ordering::Relaxed);
    let tmp = path.with_file_name(format!(".{name}.{}.{n}.tmp", std::process::id()));
    std::fs::write(&tmp, text).and_then(|()| std::fs::rename(&tmp, path)).inspect_err(|_| {
        let _ = std::fs::remove_file(&tmp);
    })
}

/// 64-bit FNV-1a: small, and stable across Rust releases and platforms (unlike `DefaultHasher`).
struct Fnv1a(u64);

impl Default for Fnv1a {
    fn default() -> Self {
        Fnv1a(0xcbf2_9ce4_8422_2325)
    }
}

impl Hasher for Fnv1a {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cache_sits_next_to_the_labels() {
        let p = cache_path(&[PathBuf::from("/ds/images/train2017.v2/a.jpg")]).unwrap();
        assert_eq!(p, Path::new("/ds/labels/train2017.v2.cache"));
        assert!(cache_path(&[]).is_none());
    }

    #[test]
    fn fnv1a_known_value() {
        let mut h = Fnv1a::default();
        h.write(b"a");
        assert_eq!(h.finish(), 0xaf63_dc4c_8601_ec8c);
    }
}
