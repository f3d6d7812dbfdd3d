//! `ycomp val`: mAP of a model on a dataset split, as ultralytics' val.py computes it. Float models
//! and int8 checkpoints (simulated int8 arithmetic) alike.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;
use yolo_compress::backend::device_from_name;
use yolo_compress::data::dataset::{DataConfig, Split, YoloDataset};
use yolo_compress::data::loader::{Loader, LoaderConfig};
use yolo_compress::model::DetectionModel;
use yolo_compress::train::val::{ValConfig, validate};

use crate::{Common, ModelArgs};

/// Arguments of `ycomp val` (defaults of ultralytics val.py).
#[derive(Args)]
pub struct ValArgs {
    #[command(flatten)]
    model: ModelArgs,
    /// Dataset YAML (ultralytics format).
    #[arg(long)]
    data: PathBuf,
    /// Split to evaluate: val, train or test.
    #[arg(long, default_value = "val")]
    task: String,
    /// Inference size (pixels).
    #[arg(long, default_value_t = 640)]
    imgsz: u32,
    /// Batch size.
    #[arg(long, default_value_t = 16)]
    batch: usize,
    /// Confidence threshold.
    #[arg(long, default_value_t = 0.001)]
    conf: f32,
    /// NMS IoU threshold.
    #[arg(long, default_value_t = 0.6)]
    iou: f32,
    /// Maximum detections per image.
    #[arg(long, default_value_t = 300)]
    max_det: usize,
    /// Data-loader worker threads.
    #[arg(long, default_value_t = 2)]
    workers: usize,
    /// Write the metrics JSON to this file.
    #[arg(long)]
    save_json: Option<PathBuf>,
    /// Write COCO-format predictions (for pycocotools) to this file.
    #[arg(long)]
    save_coco: Option<PathBuf>,
    #[command(flatten)]
    common: Common,
}

/// Runs validation.
pub fn run(a: ValArgs) -> Result<()> {
    let device = device_from_name(&a.common.device)?;
    let split: Split = a.task.parse().map_err(|e| anyhow::anyhow!("--task: {e}"))?;
    let config = DataConfig::load(&a.data)?;
    let names = config.names.clone();
    let ds = YoloDataset::from_config(config, split, &Default::default())
        .with_context(|| format!("{}: {split} split", a.data.display()))?;
    let mut model_args = a.model.clone();
    if model_args.nc.is_none() && model_args.names.is_none() && model_args.weights.is_none() {
        model_args.names = Some(names.clone());
    }
    let model = model_args.load_any(&device)?.model;
    let stride = model.max_stride().max(32) as u32;
    let images = ds.report().images;
    let cfg = LoaderConfig { workers: a.workers, stride, ..LoaderConfig::val(a.imgsz, a.batch) };
    let loader = Loader::new(std::sync::Arc::new(ds), cfg, &device)?;
    let val_cfg = ValConfig {
        conf: a.conf,
        iou: a.iou,
        max_det: a.max_det,
        multi_label: true,
        collect_coco: a.save_coco.is_some(),
    };
    let report = validate(&model, &loader, &val_cfg, None)?;
    for w in &report.warnings {
        eprintln!("warning: {w}");
    }
    let m = &report.metrics;
    let name = |c: usize| names.get(c).cloned().unwrap_or_else(|| c.to_string());
    let json = serde_json::json!({
        "precision": m.precision,
        "recall": m.recall,
        "map50": m.map50,
        "map50_95": m.map50_95,
        "images": m.images,
        "instances": m.instances,
        "per_class": m.per_class.iter().map(|c| serde_json::json!({
            "class_id": c.class_id,
            "name": name(c.class_id),
            "images": c.images,
            "instances": c.instances,
            "precision": c.precision,
            "recall": c.recall,
            "ap50": c.ap50,
            "ap50_95": c.ap50_95,
        })).collect::<Vec<_>>(),
        "speed_ms": {"pre": report.speed.pre, "inference": report.speed.inference, "nms": report.speed.nms},
    });
    if let Some(p) = &a.save_json {
        yolo_compress::model::weights::atomic_write(p, serde_json::to_string_pretty(&json)?.as_bytes())
            .with_context(|| format!("writing {}", p.display()))?;
    }
    if let Some(p) = &a.save_coco {
        yolo_compress::model::weights::atomic_write(p, serde_json::to_string(&report.coco)?.as_bytes())
            .with_context(|| format!("writing {}", p.display()))?;
    }
    if a.common.json {
        out!("{}", serde_json::to_string_pretty(&json)?);
        return Ok(());
    }
    out!(
        "{:>20} {:>8} {:>10} {:>10} {:>10} {:>10} {:>10}",
        "Class",
        "Images",
        "Instances",
        "P",
        "R",
        "mAP50",
        "mAP50-95"
    );
    out!(
        "{:>20} {:>8} {:>10} {:>10.3} {:>10.3} {:>10.3} {:>10.3}",
        "all",
        images,
        m.instances,
        m.precision,
        m.recall,
        m.map50,
        m.map50_95
    );
    for c in &m.per_class {
        out!(
            "{:>20} {:>8} {:>10} {:>10.3} {:>10.3} {:>10.3} {:>10.3}",
            name(c.class_id),
            c.images,
            c.instances,
            c.precision,
            c.recall,
            c.ap50,
            c.ap50_95
        );
    }
    let s = report.speed;
    out!(
        "Speed: {:.1}ms pre-process, {:.1}ms inference, {:.1}ms NMS per image at shape ({}, 3, {}, {})",
        s.pre,
        s.inference,
        s.nms,
        a.batch,
        a.imgsz,
        a.imgsz
    );
    Ok(())
}
