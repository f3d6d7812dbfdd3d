//! `ycomp val`: mAP of a model on a dataset split, as ultralytics' val.py computes it. Float models
//! and int8 checkpoints (simulated int8 arithmetic) alike.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use burn::prelude::Device;
use clap::Args;
use yolo_compress::backend::device_from_name;
use yolo_compress::data::dataset::{DataConfig, Split, YoloDataset};
use yolo_compress::data::loader::{Loader, LoaderConfig};
use yolo_compress::data::{ImageFolder, SampleSource};
use yolo_compress::model::DetectionModel;
use yolo_compress::model::postprocess::NmsConfig;
use yolo_compress::reference::{FidelityConfig, fidelity, fidelity_source_with};
use yolo_compress::train::val::{ValConfig, ValReport, validate};

use crate::{Common, ModelArgs};

/// Arguments of `ycomp val` (defaults of ultralytics val.py).
#[derive(Args)]
pub struct ValArgs {
    #[command(flatten)]
    model: ModelArgs,
    /// Dataset YAML (ultralytics format).
    #[arg(long)]
    data: Option<PathBuf>,
    /// Label-free validation, instead of `--data`: a folder of unlabeled images, labelled with the
    /// `--reference` model's detections; the scores are then fidelity to the reference.
    #[arg(long, value_name = "DIR")]
    source: Option<PathBuf>,
    /// With `--source`: the reference model (weights or checkpoint) whose detections (conf
    /// `--reference-conf`, IoU 0.45, max 1000 per image, at `--imgsz`) are the labels.
    #[arg(long, value_name = "WEIGHTS")]
    reference: Option<PathBuf>,
    /// With `--reference`: confidence threshold of the reference's detections.
    #[arg(long, default_value_t = 0.25, value_name = "CONF")]
    reference_conf: f32,
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
    let val_cfg = ValConfig {
        conf: a.conf,
        iou: a.iou,
        max_det: a.max_det,
        multi_label: true,
        collect_coco: a.save_coco.is_some(),
    };
    let (report, names, images) = match (&a.data, &a.source, &a.reference) {
        (Some(_), Some(_), _) => bail!("give --data (a labelled dataset) or --source (unlabeled images), not both"),
        (None, None, _) => bail!("give --data (a dataset YAML) or --source DIR with --reference WEIGHTS"),
        (Some(_), None, Some(_)) => bail!("--reference needs --source: it labels a folder of unlabeled images"),
        (None, Some(_), None) => bail!("--source needs --reference: the model whose detections are the labels"),
        (Some(data), None, None) => val_dataset(&a, data, &val_cfg, &device)?,
        (None, Some(source), Some(reference)) => val_reference(&a, source, reference, &val_cfg, &device)?,
    };
    for w in &report.warnings {
        eprintln!("warning: {w}");
    }
    let m = &report.metrics;
    let name = |c: usize| names.get(c).cloned().unwrap_or_else(|| c.to_string());
    let mut json = serde_json::json!({
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
    if let (Some(source), Some(reference)) = (&a.source, &a.reference) {
        json["reference"] = serde_json::json!(reference.display().to_string());
        json["source"] = serde_json::json!(source.display().to_string());
    }
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

/// Validation against the labels of a dataset split: the report, the class names and the number of
/// images.
fn val_dataset(
    a: &ValArgs,
    data: &std::path::Path,
    val_cfg: &ValConfig,
    device: &Device,
) -> Result<(ValReport, Vec<String>, usize)> {
    let split: Split = a.task.parse().map_err(|e| anyhow::anyhow!("--task: {e}"))?;
    let config = DataConfig::load(data)?;
    let names = config.names.clone();
    let ds = YoloDataset::from_config(config, split, &Default::default())
        .with_context(|| format!("{}: {split} split", data.display()))?;
    let mut model_args = a.model.clone();
    if model_args.nc.is_none() && model_args.names.is_none() && model_args.weights.is_none() {
        model_args.names = Some(names.clone());
    }
    let model = model_args.load_any(device)?.model;
    let stride = model.max_stride().max(32) as u32;
    let images = ds.report().images;
    let cfg = LoaderConfig { workers: a.workers, stride, ..LoaderConfig::val(a.imgsz, a.batch) };
    let loader = Loader::new(std::sync::Arc::new(ds), cfg, device)?;
    Ok((validate(&model, &loader, val_cfg, None)?, names, images))
}

/// Label-free validation: `--weights` scored against `--reference`'s detections on the images of
/// `--source` (fidelity to the reference).
fn val_reference(
    a: &ValArgs,
    source: &std::path::Path,
    reference: &std::path::Path,
    val_cfg: &ValConfig,
    device: &Device,
) -> Result<(ValReport, Vec<String>, usize)> {
    if a.save_coco.is_some() {
        bail!("--save-coco needs --data: COCO predictions are for scoring against labels");
    }
    let folder = ImageFolder::open(source).context("--source")?;
    let classes = yolo_compress::loading::ClassOverride::default();
    let teacher = yolo_compress::loading::load_any_model(None, Some(reference), &classes, device)
        .with_context(|| format!("--reference {}", reference.display()))?
        .model;
    let cfg = FidelityConfig {
        imgsz: a.imgsz,
        batch: a.batch,
        workers: a.workers,
        reference_nms: NmsConfig::default().with_conf_thres(a.reference_conf).with_iou_thres(0.45).with_max_det(1000),
        val: val_cfg.clone(),
    };
    cfg.reference_nms.validate().context("--reference-conf")?;
    let mut model_args = a.model.clone();
    if model_args.nc.is_none() && model_args.names.is_none() && model_args.weights.is_none() {
        model_args.names = Some(teacher.names().to_vec());
    }
    let model = model_args.load_any(device)?.model;
    let labelled = fidelity_source_with(&teacher.fuse(), std::sync::Arc::new(folder), &cfg, device, &mut |_, _| {})
        .with_context(|| format!("--source {}", source.display()))?;
    let mut report = fidelity(&model, &labelled.source, &cfg, device).context("--reference")?;
    let mut warnings = labelled.warnings;
    warnings.append(&mut report.warnings);
    report.warnings = warnings;
    Ok((report, labelled.names, labelled.source.len()))
}
