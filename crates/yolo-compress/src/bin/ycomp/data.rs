//! `ycomp data`: check a YOLO dataset (`check`), import COCO or Pascal VOC annotations
//! (`convert`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand, ValueEnum};
use yolo_compress::data::convert::{ConvertOptions, ConvertReport, LinkMode, convert_coco, convert_voc};
use yolo_compress::data::dataset::{DEFAULT_MAX_PIXELS, DataConfig, Split, SplitReport, VerifyOptions, verify_split};

use crate::Common;

/// How many skipped files `check` and `convert` list per split before summarising (all are in
/// the `--json` output).
const LIST_AT_MOST: usize = 50;

/// Arguments of `ycomp data`.
#[derive(Args)]
pub struct DataArgs {
    #[command(subcommand)]
    command: DataCommand,
}

#[derive(Subcommand)]
enum DataCommand {
    /// Verify every image and label of a dataset; summarise each split and list the bad files.
    Check(CheckArgs),
    /// Convert COCO JSON or Pascal VOC XML annotations into a YOLO dataset with a data.yaml.
    Convert(ConvertArgs),
}

/// Arguments of `ycomp data check`.
#[derive(Args)]
struct CheckArgs {
    /// Data YAML (ultralytics format: path, train, val, test, names/nc).
    #[arg(long)]
    data: PathBuf,
    /// Splits to check, comma-separated (default: every split the YAML defines).
    #[arg(long, value_delimiter = ',')]
    splits: Option<Vec<Split>>,
    /// Largest image accepted, in pixels (decompression-bomb guard, checked on the header).
    #[arg(long, default_value_t = DEFAULT_MAX_PIXELS)]
    max_pixels: u64,
    /// Verify everything again, ignoring (and not writing) the cache next to the labels.
    #[arg(long)]
    no_cache: bool,
    /// Verification threads (0 = one per core).
    #[arg(long, default_value_t = 0)]
    workers: usize,
    #[command(flatten)]
    common: Common,
}

/// Source annotation formats.
#[derive(Clone, Copy, ValueEnum)]
enum Format {
    /// COCO detection JSON (`--src instances.json`).
    Coco,
    /// Pascal VOC (`--src` a root with Annotations/ and JPEGImages/).
    Voc,
}

/// Arguments of `ycomp data convert`.
#[derive(Args)]
struct ConvertArgs {
    /// Source format.
    #[arg(long, value_enum)]
    from: Format,
    /// COCO: the annotation JSON. VOC: the root folder with Annotations/, JPEGImages/ and
    /// optionally ImageSets/Main/{train,val,test}.txt.
    #[arg(long)]
    src: PathBuf,
    /// Output folder: images/SPLIT/, labels/SPLIT/ and data.yaml are written there.
    #[arg(long)]
    out: PathBuf,
    /// Class names in class-id order, comma-separated; objects of other classes are left out
    /// (default: COCO's categories by id, VOC's names sorted).
    #[arg(long, value_delimiter = ',')]
    names: Option<Vec<String>>,
    /// Split to write: train, val or test (COCO default: train; VOC default: each list in
    /// ImageSets/Main, or everything into train).
    #[arg(long)]
    split: Option<Split>,
    /// COCO: the folder that `file_name`s are relative to (default: the JSON's folder).
    #[arg(long)]
    images: Option<PathBuf>,
    /// How images get into the output: copy, hardlink or symlink.
    #[arg(long, default_value = "copy")]
    link: LinkMode,
    /// VOC: keep objects marked difficult (left out by default, as ultralytics does).
    #[arg(long)]
    keep_difficult: bool,
    #[command(flatten)]
    common: Common,
}

/// Runs `ycomp data check` or `ycomp data convert`.
pub fn run(a: DataArgs) -> Result<()> {
    match a.command {
        DataCommand::Check(c) => check(c),
        DataCommand::Convert(c) => convert(c),
    }
}

fn check(a: CheckArgs) -> Result<()> {
    let config = DataConfig::load(&a.data)?;
    let splits = a.splits.clone().unwrap_or_else(|| config.splits());
    if splits.is_empty() {
        bail!("{}: no train, val or test split", a.data.display());
    }
    let opts = VerifyOptions { max_pixels: a.max_pixels, min_side: 1, workers: a.workers, cache: !a.no_cache };
    let mut reports = BTreeMap::new();
    for split in &splits {
        let images = config.images(*split)?;
        let verified = verify_split(&images, config.nc(), &opts);
        reports.insert(*split, (images.len(), verified.report));
    }

    if a.common.json {
        /// `{"splits": {"train": {...}, "val": {...}}}`, fields in the report's order.
        #[derive(serde::Serialize)]
        struct CheckJson<'a> {
            splits: BTreeMap<&'a str, &'a SplitReport>,
        }
        let splits = reports.iter().map(|(s, (_, r))| (s.as_str(), r)).collect();
        out!("{}", serde_json::to_string(&CheckJson { splits })?);
    } else {
        print_check(&config, &reports);
    }
    if !a.common.quiet {
        for (split, (_, r)) in &reports {
            for w in &r.warnings {
                eprintln!("warning: {split}: {w}");
            }
        }
    }
    if let Some((split, (found, r))) = reports.iter().find(|(_, (_, r))| r.images == 0) {
        bail!(
            "{}: split `{split}` has no usable images ({found} found, {} corrupt)",
            a.data.display(),
            r.corrupt.len()
        );
    }
    Ok(())
}

fn print_check(config: &DataConfig, reports: &BTreeMap<Split, (usize, SplitReport)>) {
    out!("{}: {} classes ({})", config.yaml.display(), config.nc(), shorten(&config.names.join(", "), 100));
    out!(
        "{:<6} {:>8} {:>8} {:>10} {:>7} {:>9} {:>8} {:>11}  cache",
        "split",
        "images",
        "labels",
        "instances",
        "empty",
        "no-label",
        "corrupt",
        "duplicates"
    );
    for (split, (_, r)) in reports {
        out!(
            "{:<6} {:>8} {:>8} {:>10} {:>7} {:>9} {:>8} {:>11}  {}",
            split.as_str(),
            r.images,
            r.labels,
            r.instances,
            r.empty,
            r.missing_labels,
            r.corrupt.len(),
            r.duplicates_removed,
            if r.cache_hit { "hit" } else { "verified" }
        );
    }
    for (split, (_, r)) in reports {
        if r.corrupt.is_empty() {
            continue;
        }
        out!("{split}: {} file(s) skipped:", r.corrupt.len());
        for c in r.corrupt.iter().take(LIST_AT_MOST) {
            out!("  {}: {}", relative(Path::new(&c.file), &config.root), c.reason);
        }
        if r.corrupt.len() > LIST_AT_MOST {
            out!("  ... and {} more (all are in --json)", r.corrupt.len() - LIST_AT_MOST);
        }
    }
}

fn convert(a: ConvertArgs) -> Result<()> {
    let opts = ConvertOptions {
        split: a.split,
        names: a.names.clone(),
        link: a.link,
        keep_difficult: a.keep_difficult,
        images: a.images.clone(),
    };
    let report = match a.from {
        Format::Coco => convert_coco(&a.src, &a.out, &opts),
        Format::Voc => convert_voc(&a.src, &a.out, &opts),
    }
    .with_context(|| format!("converting {}", a.src.display()))?;
    if a.common.json {
        out!("{}", serde_json::to_string(&report)?);
    } else {
        print_convert(&report);
    }
    if !a.common.quiet {
        for w in &report.warnings {
            eprintln!("warning: {w}");
        }
    }
    if report.splits.is_empty() {
        bail!("{}: no image was converted", a.src.display());
    }
    Ok(())
}

fn print_convert(r: &ConvertReport) {
    if r.splits.is_empty() {
        out!("nothing converted");
    } else {
        out!("{}: {} classes ({})", r.data_yaml.display(), r.names.len(), shorten(&r.names.join(", "), 100));
    }
    for (split, s) in &r.splits {
        out!("{split}: {} images, {} instances, {} without objects", s.images, s.instances, s.empty);
    }
    for (why, n) in &r.ignored {
        out!("left out: {n} ({why})");
    }
    if !r.skipped.is_empty() {
        out!("skipped {}:", r.skipped.len());
        for s in r.skipped.iter().take(LIST_AT_MOST) {
            out!("  {} {}: {}", s.file, s.item, s.reason);
        }
        if r.skipped.len() > LIST_AT_MOST {
            out!("  ... and {} more (all are in --json)", r.skipped.len() - LIST_AT_MOST);
        }
    }
}

/// `path` relative to `root` when it is inside it.
fn relative(path: &Path, root: &Path) -> String {
    path.strip_prefix(root).unwrap_or(path).display().to_string()
}

/// `s` cut to `n` characters with an ellipsis.
fn shorten(s: &str, n: usize) -> String {
    if s.chars().count() <= n { s.to_string() } else { s.chars().take(n).collect::<String>() + "…" }
}
