//! Writing a synthetic dataset to disk in YOLO format, in parallel, deterministically.
//!
//! Layout (ultralytics): `images/{train,val}/NNNNNN.png`, `labels/{train,val}/NNNNNN.txt` with
//! rows `class xc yc w h` (normalised, six decimals; an empty file for an image without
//! objects), and `data.yaml`, written last so that it never points at a half-written dataset.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Instant;

use image::codecs::jpeg::JpegEncoder;
use image::codecs::png::{CompressionType, FilterType, PngEncoder};
use image::{ExtendedColorType, ImageEncoder, RgbImage};
use serde::{Deserialize, Serialize};

use super::scene::generate_scene;
use super::{Split, SynthConfig, SynthError};

/// File format of the written images.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ImageFormat {
    /// Lossless PNG (fast deflate): the pixels read back are the pixels generated.
    #[default]
    Png,
    /// JPEG at this quality (1–100): about five times smaller, lossy.
    Jpeg {
        /// Encoder quality, 1–100.
        quality: u8,
    },
}

impl ImageFormat {
    /// File extension without the dot.
    pub fn extension(self) -> &'static str {
        match self {
            ImageFormat::Png => "png",
            ImageFormat::Jpeg { .. } => "jpg",
        }
    }
}

/// How to write (none of it changes the pixels or labels generated).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct WriteOptions {
    /// Worker threads; 0 (default) uses every available core. The output does not depend on it.
    pub threads: usize,
    /// Replace a synthetic dataset already in the output directory (its numbered images and
    /// labels, label caches and `data.yaml`); other files there are never removed, and their
    /// presence — or a `data.yaml` this writer did not write — is an error.
    pub overwrite: bool,
    /// Image file format (default PNG).
    pub format: ImageFormat,
}

/// What [`write_dataset`] wrote.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SynthSummary {
    /// The dataset directory (absolute).
    pub out: PathBuf,
    /// The data YAML to pass to `ycomp train --data`.
    pub data_yaml: PathBuf,
    /// Training images written.
    pub train_images: usize,
    /// Validation images written.
    pub val_images: usize,
    /// Labelled objects in the training images.
    pub train_instances: usize,
    /// Labelled objects in the validation images.
    pub val_instances: usize,
    /// Images without any labelled object (both splits).
    pub empty_images: usize,
    /// Class names, index = class id.
    pub names: Vec<String>,
    /// Labelled objects per class (both splits).
    pub instances_per_class: Vec<usize>,
    /// Wall-clock time of the generation and writing, in seconds.
    pub seconds: f64,
    /// Images generated and written per second.
    pub images_per_second: f64,
}

/// Writes the dataset `cfg` describes to `out` with default [`WriteOptions`] (every core, PNG,
/// refusing to overwrite). See [`write_dataset_with`].
pub fn write_dataset(cfg: &SynthConfig, out: impl AsRef<Path>) -> Result<SynthSummary, SynthError> {
    write_dataset_with(cfg, out, &WriteOptions::default(), &|_, _| {})
}

/// Writes `cfg.images` training and `cfg.val` validation images with their labels to `out`, then
/// `out/data.yaml` (`path` absolute, `train: images/train`, `val: images/val` — or
/// `images/train` when `cfg.val` is 0 —, `nc`, `names`, and the settings as a comment).
///
/// `progress(done, total)` is called from the worker threads after each image. The files are
/// identical whatever the thread count. Errors name the file or setting at fault; after an error
/// no `data.yaml` is left in `out`.
pub fn write_dataset_with(
    cfg: &SynthConfig,
    out: impl AsRef<Path>,
    opts: &WriteOptions,
    progress: &(dyn Fn(usize, usize) + Sync),
) -> Result<SynthSummary, SynthError> {
    let start = Instant::now();
    cfg.validate()?;
    if cfg.images == 0 {
        return Err(SynthError::InvalidConfig { field: "images", reason: "at least one training image".into() });
    }
    if let ImageFormat::Jpeg { quality } = opts.format
        && !(1..=100).contains(&quality)
    {
        return Err(SynthError::InvalidConfig { field: "quality", reason: format!("{quality} is not in 1..=100") });
    }
    let out = out.as_ref();
    prepare_output(out, opts.overwrite)?;
    let out = std::fs::canonicalize(out).map_err(|source| SynthError::Dir { path: out.to_path_buf(), source })?;

    let jobs: Vec<(Split, usize)> =
        [Split::Train, Split::Val].into_iter().flat_map(|split| (0..cfg.len(split)).map(move |i| (split, i))).collect();
    let total = jobs.len();
    let threads = match opts.threads {
        0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
        n => n,
    }
    .clamp(1, total.max(1));
    let next = AtomicUsize::new(0);
    let done = AtomicUsize::new(0);
    let stop = AtomicBool::new(false);
    let first_error: Mutex<Option<(usize, SynthError)>> = Mutex::new(None);
    let nc = cfg.classes;

    let tallies: Vec<Tally> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                s.spawn(|| {
                    let mut tally = Tally { per_class: vec![0; nc], ..Tally::default() };
                    while !stop.load(Ordering::Relaxed) {
                        let j = next.fetch_add(1, Ordering::Relaxed);
                        let Some(&(split, index)) = jobs.get(j) else { break };
                        match write_one(cfg, &out, split, index, opts.format) {
                            Ok(classes) => tally.add(split, &classes),
                            Err(e) => {
                                stop.store(true, Ordering::Relaxed);
                                let mut slot = first_error.lock().unwrap_or_else(|p| p.into_inner());
                                if slot.as_ref().is_none_or(|(k, _)| j < *k) {
                                    *slot = Some((j, e));
                                }
                                break;
                            }
                        }
                        progress(done.fetch_add(1, Ordering::Relaxed) + 1, total);
                    }
                    tally
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p))).collect()
    });
    if let Some((_, e)) = first_error.into_inner().unwrap_or_else(|p| p.into_inner()) {
        return Err(e);
    }

    let mut sum = Tally { per_class: vec![0; nc], ..Tally::default() };
    for t in &tallies {
        sum.instances[0] += t.instances[0];
        sum.instances[1] += t.instances[1];
        sum.empty += t.empty;
        sum.per_class.iter_mut().zip(&t.per_class).for_each(|(a, b)| *a += b);
    }
    let data_yaml = out.join("data.yaml");
    write_data_yaml(cfg, &out, &data_yaml, opts)?;
    let seconds = start.elapsed().as_secs_f64();
    Ok(SynthSummary {
        out,
        data_yaml,
        train_images: cfg.images,
        val_images: cfg.val,
        train_instances: sum.instances[0],
        val_instances: sum.instances[1],
        empty_images: sum.empty,
        names: cfg.names(),
        instances_per_class: sum.per_class,
        seconds,
        images_per_second: total as f64 / seconds.max(1e-9),
    })
}

/// Counts gathered by one worker.
#[derive(Debug, Default)]
struct Tally {
    instances: [usize; 2],
    empty: usize,
    per_class: Vec<usize>,
}

impl Tally {
    fn add(&mut self, split: Split, classes: &[usize]) {
        self.instances[usize::from(split == Split::Val)] += classes.len();
        self.empty += usize::from(classes.is_empty());
        classes.iter().for_each(|&c| self.per_class[c] += 1);
    }
}

/// The directories of one split: `(images/<split>, labels/<split>)`.
fn split_dirs(out: &Path, split: Split) -> (PathBuf, PathBuf) {
    (out.join("images").join(split.as_str()), out.join("labels").join(split.as_str()))
}

/// Whether `name` is one of the files this writer produces (`NNNNNN.png|jpg|txt`).
fn is_generated_name(name: &str) -> bool {
    let Some((stem, ext)) = name.rsplit_once('.') else { return false };
    !stem.is_empty() && stem.bytes().all(|b| b.is_ascii_digit()) && matches!(ext, "png" | "jpg" | "txt")
}

/// Creates the directories; finds what a previous run left and, with `overwrite`, removes it
/// (`data.yaml` first). Any other file where the dataset goes is an error, before anything is
/// removed.
fn prepare_output(out: &Path, overwrite: bool) -> Result<(), SynthError> {
    let dir_err = |path: &Path| {
        let path = path.to_path_buf();
        move |source| SynthError::Dir { path, source }
    };
    let mut stale = Vec::new();
    let data_yaml = out.join("data.yaml");
    if data_yaml.exists() {
        let ours = std::fs::read_to_string(&data_yaml).is_ok_and(|t| t.starts_with(YAML_HEADER));
        if overwrite && !ours {
            return Err(SynthError::NotSynthetic { path: data_yaml });
        }
        stale.push(data_yaml);
    }
    for split in [Split::Train, Split::Val] {
        let (images, labels) = split_dirs(out, split);
        let cache = out.join("labels").join(format!("{split}.cache"));
        if cache.exists() {
            stale.push(cache);
        }
        for dir in [images, labels] {
            if !dir.exists() {
                continue;
            }
            for entry in std::fs::read_dir(&dir).map_err(dir_err(&dir))? {
                let path = entry.map_err(dir_err(&dir))?.path();
                let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
                if path.is_file() && is_generated_name(name) {
                    stale.push(path);
                } else {
                    return Err(SynthError::OutputExists { path });
                }
            }
        }
    }
    if let Some(first) = stale.first() {
        if !overwrite {
            return Err(SynthError::OutputExists { path: first.clone() });
        }
        for path in &stale {
            std::fs::remove_file(path).map_err(|source| SynthError::Write { path: path.clone(), source })?;
        }
    }
    for split in [Split::Train, Split::Val] {
        let (images, labels) = split_dirs(out, split);
        for dir in [images, labels] {
            std::fs::create_dir_all(&dir).map_err(dir_err(&dir))?;
        }
    }
    Ok(())
}

/// Generates and writes image `index` of `split` and its label file; returns its class ids.
fn write_one(
    cfg: &SynthConfig,
    out: &Path,
    split: Split,
    index: usize,
    format: ImageFormat,
) -> Result<Vec<usize>, SynthError> {
    let scene = generate_scene(cfg, split, index);
    let (images, labels) = split_dirs(out, split);
    let image_path = images.join(format!("{index:06}.{}", format.extension()));
    let bytes =
        encode(&scene.image, format).map_err(|source| SynthError::Encode { path: image_path.clone(), source })?;
    std::fs::write(&image_path, bytes).map_err(|source| SynthError::Write { path: image_path, source })?;

    let s = f64::from(cfg.imgsz);
    let mut text = String::with_capacity(40 * scene.objects.len());
    for o in &scene.objects {
        let [x1, y1, x2, y2] = o.bbox.map(f64::from);
        let row = [(x1 + x2) / 2.0 / s, (y1 + y2) / 2.0 / s, (x2 - x1) / s, (y2 - y1) / s];
        text.push_str(&format!("{} {:.6} {:.6} {:.6} {:.6}\n", o.class_id, row[0], row[1], row[2], row[3]));
    }
    let label_path = labels.join(format!("{index:06}.txt"));
    std::fs::write(&label_path, text).map_err(|source| SynthError::Write { path: label_path, source })?;
    Ok(scene.objects.iter().map(|o| o.class_id).collect())
}

/// PNG row filter. On these noisy images `Sub` is within 4 % of the adaptive choice's size at
/// less than half its cost (adaptive tries five filters per row).
const PNG_FILTER: FilterType = FilterType::Sub;

/// The image in the file format's bytes.
fn encode(img: &RgbImage, format: ImageFormat) -> Result<Vec<u8>, image::ImageError> {
    let mut buf = Vec::with_capacity(img.as_raw().len() / 2);
    let (w, h) = img.dimensions();
    match format {
        ImageFormat::Png => PngEncoder::new_with_quality(&mut buf, CompressionType::Fast, PNG_FILTER).write_image(
            img.as_raw(),
            w,
            h,
            ExtendedColorType::Rgb8,
        )?,
        ImageFormat::Jpeg { quality } => {
            JpegEncoder::new_with_quality(&mut buf, quality).write_image(img.as_raw(), w, h, ExtendedColorType::Rgb8)?
        }
    }
    Ok(buf)
}

/// How every `data.yaml` this writer produces begins: `overwrite` replaces only those.
const YAML_HEADER: &str = "# Synthetic shapes dataset written by yolo-compress";

/// The keys of an ultralytics data YAML.
#[derive(Serialize)]
struct DataYaml<'a> {
    path: String,
    train: &'a str,
    val: &'a str,
    nc: usize,
    names: Vec<String>,
}

fn write_data_yaml(cfg: &SynthConfig, out: &Path, path: &Path, opts: &WriteOptions) -> Result<(), SynthError> {
    let doc = DataYaml {
        path: out.to_string_lossy().into_owned(),
        train: "images/train",
        val: if cfg.val > 0 { "images/val" } else { "images/train" },
        nc: cfg.classes,
        names: cfg.names(),
    };
    let body = serde_norway::to_string(&doc).map_err(|source| SynthError::Yaml { path: path.to_path_buf(), source })?;
    let settings = serde_json::to_string(cfg).unwrap_or_default();
    let mut text = String::new();
    text.push_str(YAML_HEADER);
    text.push_str(" (`ycomp synth`); regenerate it with the same\n# settings to get identical files.\n");
    text.push_str(&format!("# settings: {settings}\n"));
    text.push_str(&format!("# format: {}\n", opts.format.extension()));
    text.push_str(&body);
    let write = || -> std::io::Result<()> {
        let mut f = std::fs::File::create(path)?;
        f.write_all(text.as_bytes())?;
        f.sync_all()
    };
    write().map_err(|source| SynthError::Write { path: path.to_path_buf(), source })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_names() {
        assert!(is_generated_name("000012.png") && is_generated_name("1234567.txt") && is_generated_name("000001.jpg"));
        assert!(!is_generated_name("a.png") && !is_generated_name(".png") && !is_generated_name("000001.jpeg"));
        assert!(!is_generated_name("notes"));
    }
}
