//! `ycomp synth`: write a synthetic YOLO dataset of shapes (no download needed).

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};

use anyhow::Result;
use clap::{Args, ValueEnum};
use yolo_compress::data::synth::{ImageFormat, SynthConfig, WriteOptions, write_dataset_with};

use crate::Common;

/// Image file format of `ycomp synth`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum SynthFormat {
    /// Lossless PNG.
    Png,
    /// JPEG (smaller, lossy; see --quality).
    Jpg,
}

/// Arguments of `ycomp synth`.
#[derive(Args)]
pub struct SynthArgs {
    /// Dataset directory to write (images/, labels/, data.yaml).
    #[arg(long)]
    out: PathBuf,
    /// Training images.
    #[arg(long, default_value_t = 1000)]
    images: usize,
    /// Validation images (0: data.yaml's val points at the training images).
    #[arg(long, default_value_t = 200)]
    val: usize,
    /// Number of classes, 1-40: shape kinds up to 10, then (kind, fill style) pairs.
    #[arg(long, default_value_t = 8)]
    classes: usize,
    /// Square image size in pixels.
    #[arg(long, default_value_t = 256)]
    imgsz: u32,
    /// Fewest objects drawn per image.
    #[arg(long, default_value_t = 1)]
    min_objects: usize,
    /// Most objects drawn per image.
    #[arg(long, default_value_t = 12)]
    max_objects: usize,
    /// Smallest object size in pixels.
    #[arg(long, default_value_t = 8.0)]
    min_size: f32,
    /// Largest object size as a fraction of --imgsz.
    #[arg(long, default_value_t = 0.6)]
    max_size: f32,
    /// Amount of background clutter (0: none, 1: default, 2: twice as much).
    #[arg(long, default_value_t = 1.0)]
    clutter: f32,
    /// Largest per-pixel noise standard deviation in grey levels.
    #[arg(long, default_value_t = 8.0)]
    noise: f32,
    /// Image file format.
    #[arg(long, value_enum, default_value_t = SynthFormat::Png)]
    format: SynthFormat,
    /// JPEG quality (1-100) with --format jpg.
    #[arg(long, default_value_t = 95)]
    quality: u8,
    /// Worker threads (0: all cores); the files do not depend on it.
    #[arg(long, default_value_t = 0)]
    threads: usize,
    /// Replace a synthetic dataset already in --out.
    #[arg(long)]
    overwrite: bool,
    #[command(flatten)]
    common: Common,
}

/// Writes the dataset and prints where, how much and how fast (`--json`: the summary).
pub fn run(a: SynthArgs) -> Result<()> {
    let cfg = SynthConfig {
        images: a.images,
        val: a.val,
        classes: a.classes,
        imgsz: a.imgsz,
        seed: a.common.seed,
        min_objects: a.min_objects,
        max_objects: a.max_objects,
        min_size: a.min_size,
        max_size: a.max_size,
        clutter: a.clutter,
        noise: a.noise,
        ..SynthConfig::default()
    };
    let format = match a.format {
        SynthFormat::Png => ImageFormat::Png,
        SynthFormat::Jpg => ImageFormat::Jpeg { quality: a.quality },
    };
    let opts = WriteOptions { threads: a.threads, overwrite: a.overwrite, format };
    let show = !a.common.quiet && std::io::stderr().is_terminal();
    let shown = AtomicUsize::new(0);
    let progress = |done: usize, total: usize| {
        // About a hundred updates, each percent once.
        let pct = done * 100 / total.max(1);
        if show && shown.fetch_max(pct + 1, Ordering::Relaxed) < pct + 1 {
            eprint!("\rsynth {done}/{total} images ({pct}%)");
            let _ = std::io::stderr().flush();
        }
    };
    let summary = write_dataset_with(&cfg, &a.out, &opts, &progress);
    if show {
        eprintln!();
    }
    let summary = summary?;
    if a.common.json {
        out!("{}", serde_json::to_string(&summary)?);
    } else if !a.common.quiet {
        out!(
            "{} train + {} val images, {} + {} objects of {} classes in {:.1} s ({:.0} images/s)",
            summary.train_images,
            summary.val_images,
            summary.train_instances,
            summary.val_instances,
            summary.names.len(),
            summary.seconds,
            summary.images_per_second
        );
        out!("dataset: {}", summary.data_yaml.display());
    }
    Ok(())
}
