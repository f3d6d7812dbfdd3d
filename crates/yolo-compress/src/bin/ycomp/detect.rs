//! `ycomp detect`: detections on an image or a folder, as JSON records in original-image pixels and
//! optionally as annotated images. Float models and int8 checkpoints alike.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::Args;
use yolo_compress::backend::device_from_name;
use yolo_compress::data::{Annotation, ImageFolder, draw_detections, is_image_file, load_rgb};
use yolo_compress::model::postprocess::NmsConfig;
use yolo_compress::predict::{ImageDetection, PredictConfig, Predictor};
use yolo_compress::train::trainer::run_dir::format_g;

use crate::{Common, ModelArgs};

/// Arguments of `ycomp detect` (defaults of ultralytics detect.py).
#[derive(Args)]
pub struct DetectArgs {
    #[command(flatten)]
    model: ModelArgs,
    /// An image file or a folder of images.
    #[arg(long)]
    source: PathBuf,
    /// Inference size (long side), rounded up to a multiple of the model stride.
    #[arg(long, default_value_t = 640)]
    imgsz: usize,
    /// Confidence threshold (obj × cls).
    #[arg(long, default_value_t = 0.25)]
    conf: f32,
    /// NMS IoU threshold.
    #[arg(long, default_value_t = 0.45)]
    iou: f32,
    /// Maximum detections per image.
    #[arg(long, default_value_t = 1000)]
    max_det: usize,
    /// Keep only these class ids (comma-separated).
    #[arg(long, value_delimiter = ',')]
    classes: Option<Vec<usize>>,
    /// Class-agnostic NMS.
    #[arg(long)]
    agnostic_nms: bool,
    /// Images per forward pass (images with the same letterboxed shape are batched together).
    #[arg(long, default_value_t = 1)]
    batch: usize,
    /// Write the detections as a JSON array to this file.
    #[arg(long)]
    save_json: Option<PathBuf>,
    /// Write annotated images (and, with `--save-txt`, `labels/`) to this folder.
    #[arg(long)]
    save_dir: Option<PathBuf>,
    /// Write YOLO label files as detect.py does: `SAVE_DIR/labels/STEM.txt`, one
    /// `class xc yc w h` line per detection, normalised by the original image size. Without
    /// `--save-dir`, the folder is `runs/detect/exp` (`exp2`, `exp3`, … when taken).
    #[arg(long)]
    save_txt: bool,
    /// With `--save-txt`: append each detection's confidence to its line.
    #[arg(long, requires = "save_txt")]
    save_conf: bool,
    /// Do not write annotated images (labels and JSON are still written).
    #[arg(long)]
    nosave: bool,
    #[command(flatten)]
    common: Common,
}

/// Runs detection.
pub fn run(a: DetectArgs) -> Result<()> {
    let device = device_from_name(&a.common.device)?;
    let files = if a.source.is_dir() {
        ImageFolder::open(&a.source).context("--source")?.files().to_vec()
    } else if a.source.is_file() && is_image_file(&a.source) {
        vec![a.source.clone()]
    } else {
        bail!("--source {}: not an image file or a folder", a.source.display());
    };
    let loaded = a.model.load_any(&device)?;
    let nms = NmsConfig::default()
        .with_conf_thres(a.conf)
        .with_iou_thres(a.iou)
        .with_max_det(a.max_det)
        .with_classes(a.classes.clone())
        .with_agnostic(a.agnostic_nms);
    nms.validate()?;
    let predictor =
        Predictor::with_model(loaded.model, &device, PredictConfig { imgsz: a.imgsz, nms, auto: true, batch: a.batch });
    let mut images = Vec::new();
    for f in &files {
        match load_rgb(f) {
            Ok(img) => images
                .push((f.file_name().map_or_else(|| f.display().to_string(), |n| n.to_string_lossy().into()), img)),
            Err(e) => eprintln!("warning: skipping {}: {e}", f.display()),
        }
    }
    let (per_image, t) = predictor.predict(&images)?;
    let all: Vec<&ImageDetection> = per_image.iter().flatten().collect();
    let save_dir = match (&a.save_dir, a.save_txt) {
        (Some(dir), _) => Some(dir.clone()),
        (None, true) => Some(increment_path(std::path::Path::new("runs/detect"), "exp")),
        (None, false) => None,
    };
    if let Some(dir) = &save_dir {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    if let (Some(dir), true) = (&save_dir, a.save_txt) {
        let labels = dir.join("labels");
        std::fs::create_dir_all(&labels).with_context(|| format!("creating {}", labels.display()))?;
        for ((name, img), dets) in images.iter().zip(&per_image) {
            if dets.is_empty() {
                continue; // detect.py writes no file for an image without detections
            }
            let stem =
                std::path::Path::new(name).file_stem().map_or_else(|| name.clone(), |s| s.to_string_lossy().into());
            let path = labels.join(format!("{stem}.txt"));
            let text = label_lines(dets, img.width(), img.height(), a.save_conf);
            yolo_compress::model::weights::atomic_write(&path, text.as_bytes())
                .with_context(|| format!("writing {}", path.display()))?;
        }
    }
    if let Some(dir) = save_dir.as_ref().filter(|_| !a.nosave) {
        for ((name, img), dets) in images.iter().zip(&per_image) {
            let mut canvas = img.clone();
            let ann: Vec<Annotation> = dets
                .iter()
                .map(|d| Annotation { xyxy: d.bbox_xyxy, label: &d.class_name, score: d.score, class_id: d.class_id })
                .collect();
            draw_detections(&mut canvas, &ann);
            let out = dir.join(name);
            canvas.save(&out).with_context(|| format!("writing {}", out.display()))?;
        }
    }
    let json = serde_json::to_string_pretty(&all)?;
    if let Some(p) = &a.save_json {
        yolo_compress::model::weights::atomic_write(p, json.as_bytes())
            .with_context(|| format!("writing {}", p.display()))?;
    }
    if a.common.json {
        out!("{json}");
    } else {
        for ((name, _), dets) in images.iter().zip(&per_image) {
            let mut counts: std::collections::BTreeMap<&str, usize> = Default::default();
            for d in dets {
                *counts.entry(d.class_name.as_str()).or_default() += 1;
            }
            let summary: Vec<String> = counts.iter().map(|(k, v)| format!("{v} {k}")).collect();
            out!("{name}: {}", if summary.is_empty() { "(no detections)".to_string() } else { summary.join(", ") });
        }
    }
    if !a.common.quiet {
        if let Some(dir) = &save_dir {
            eprintln!("Results saved to {}", dir.display());
        }
        let n = images.len().max(1) as f64;
        eprintln!(
            "{} images, {} detections; speed per image: {:.1} ms pre-process, {:.1} ms inference, {:.1} ms NMS at imgsz {} on {}",
            images.len(),
            all.len(),
            t.pre / n,
            t.inference / n,
            t.nms / n,
            predictor.config().imgsz,
            a.common.device
        );
    }
    Ok(())
}

/// One YOLO label line per detection, as detect.py writes them with `--save-txt`: `class xc yc w h`
/// (`%g`), normalised by the `width × height` original image, then the confidence with `save_conf`.
fn label_lines(dets: &[ImageDetection], width: u32, height: u32, save_conf: bool) -> String {
    let g = |v: f64| format_g(v, 6);
    // In f32, as detect.py computes it on tensors (`xyxy2xywh(xyxy) / gn`).
    let (w, h) = (width as f32, height as f32);
    let mut text = String::new();
    for d in dets {
        let [x1, y1, x2, y2] = d.bbox_xyxy;
        let xywh = [(x1 + x2) / 2.0 / w, (y1 + y2) / 2.0 / h, (x2 - x1) / w, (y2 - y1) / h];
        text.push_str(&d.class_id.to_string());
        for v in xywh {
            text.push(' ');
            text.push_str(&g(f64::from(v)));
        }
        if save_conf {
            text.push(' ');
            text.push_str(&g(f64::from(d.score)));
        }
        text.push('\n');
    }
    text
}

/// `project/name`, or `name2`, `name3`, … when taken (detect.py's `increment_path`).
fn increment_path(project: &std::path::Path, name: &str) -> PathBuf {
    let first = project.join(name);
    if !first.exists() {
        return first;
    }
    (2..).map(|n| project.join(format!("{name}{n}"))).find(|p| !p.exists()).unwrap_or(first)
}
