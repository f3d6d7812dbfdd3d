//! Quickstart: the whole path on an embedded default, no downloads.
//!
//! 1. generate the synthetic shapes dataset (`ycomp synth`),
//! 2. train a YOLOv5n from scratch on it (`ycomp train`),
//! 3. validate the best checkpoint (`ycomp val`),
//! 4. detect objects on a few validation images and save them annotated (`ycomp detect`),
//! 5. print a summary table: params, GFLOPs, mAP50, mAP50-95, latency.
//!
//! ```bash
//! cargo run --release --example quickstart            # ~10 minutes on a 2-core CPU
//! cargo run --release --example quickstart -- --epochs 3 --images 300   # a faster smoke run
//! ```
//!
//! Options: `--out DIR` (default `runs/quickstart`), `--epochs N`, `--images N`, `--val N`,
//! `--imgsz S`, `--batch B`, `--model NAME` (default `yolov5n.yaml`), `--device cpu|vulkan|wgpu`,
//! `--seed N`.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use yolo_compress::data::dataset::{Split, YoloDataset};
use yolo_compress::data::loader::{Loader, LoaderConfig};
use yolo_compress::data::synth::{SynthConfig, write_dataset};
use yolo_compress::data::{Annotation, draw_detections, load_rgb};
use yolo_compress::model::weights::load_checkpoint;
use yolo_compress::prelude::*;
use yolo_compress::train::trainer::{TrainConfig, TrainData, train};
use yolo_compress::train::val::{ValConfig, validate};

struct Options {
    out: PathBuf,
    epochs: usize,
    images: usize,
    val: usize,
    classes: usize,
    imgsz: u32,
    batch: usize,
    model: String,
    device: String,
    seed: u64,
}

fn parse_args() -> Result<Options> {
    let mut o = Options {
        out: PathBuf::from("runs/quickstart"),
        epochs: 15,
        images: 500,
        val: 100,
        classes: 4,
        imgsz: 128,
        batch: 16,
        model: "yolov5n.yaml".into(),
        device: "cpu".into(),
        seed: 0,
    };
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        let mut value = || it.next().with_context(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--out" => o.out = PathBuf::from(value()?),
            "--epochs" => o.epochs = value()?.parse()?,
            "--images" => o.images = value()?.parse()?,
            "--val" => o.val = value()?.parse()?,
            "--classes" => o.classes = value()?.parse()?,
            "--imgsz" => o.imgsz = value()?.parse()?,
            "--batch" => o.batch = value()?.parse()?,
            "--model" => o.model = value()?.clone(),
            "--device" => o.device = value()?.clone(),
            "--seed" => o.seed = value()?.parse()?,
            other => bail!("unknown option {other} (see the doc comment of examples/quickstart.rs)"),
        }
    }
    Ok(o)
}

fn main() -> Result<()> {
    let o = parse_args()?;
    let device = device_from_name(&o.device)?;
    device.seed(o.seed);
    let t_all = Instant::now();

    // 1. Data.
    let data_dir = o.out.join("data");
    let synth = SynthConfig {
        images: o.images,
        val: o.val,
        classes: o.classes,
        imgsz: o.imgsz,
        seed: o.seed,
        ..SynthConfig::default()
    };
    let t = Instant::now();
    let summary = write_dataset(&synth, &data_dir)?;
    eprintln!(
        "[1/4] synthetic dataset: {} + {} images in {:.1} s → {}",
        o.images,
        o.val,
        t.elapsed().as_secs_f64(),
        data_dir.display()
    );
    let yaml = summary.data_yaml.clone();

    // 2. Train from scratch.
    let train_ds = YoloDataset::open(&yaml, Split::Train)?;
    let val_ds = YoloDataset::open(&yaml, Split::Val)?;
    let names = train_ds.names().to_vec();
    let model = Architecture::from_name_or_path(&o.model)?.with_classes(names.clone()).build(&device)?;
    // ultralytics' SGD recipe is tuned for hundreds of epochs. A 10-minute run from scratch learns
    // faster with Adam at lr0 0.001 (ultralytics' advice for Adam), no gradient accumulation
    // (nominal batch = batch) and a one-epoch warmup.
    let hyp = yolo_compress::data::augment::Hyp { lr0: 0.001, warmup_epochs: 1.0, ..Default::default() };
    hyp.validate()?;
    let cfg = TrainConfig {
        hyp,
        optimizer: yolo_compress::train::optim::OptimizerKind::Adam,
        nbs: o.batch,
        epochs: o.epochs,
        batch_size: o.batch,
        imgsz: o.imgsz,
        seed: o.seed,
        project: o.out.clone(),
        name: "train".into(),
        exist_ok: true,
        ..TrainConfig::default()
    };
    let data = TrainData::from_datasets(train_ds, Some(val_ds));
    let t = Instant::now();
    let outcome = train(model, &data, &cfg, &device)?;
    let train_secs = t.elapsed().as_secs_f64();
    eprintln!("[2/4] trained {} epochs in {:.0} s → {}", outcome.epochs_done, train_secs, outcome.run_dir.display());

    // 3. Validate the best checkpoint.
    let (best, _) = load_checkpoint(&outcome.best, &device)?;
    let best = best.fuse();
    let val_ds = Arc::new(YoloDataset::open(&yaml, Split::Val)?);
    let loader = Loader::new(val_ds.clone(), LoaderConfig::val(o.imgsz, 32), &device)?;
    let report = validate(&best, &loader, &ValConfig::default(), None)?;
    let m = &report.metrics;
    eprintln!("[3/4] val: P {:.3} R {:.3} mAP50 {:.3} mAP50-95 {:.3}", m.precision, m.recall, m.map50, m.map50_95);

    // 4. Detect on a few validation images, and measure batch-1 latency.
    let detect_dir = o.out.join("detect");
    std::fs::create_dir_all(&detect_dir)?;
    let info = ModelInfo::of(&best, o.imgsz as usize);
    let predictor =
        Predictor::new(best, &device, PredictConfig { imgsz: o.imgsz as usize, ..PredictConfig::default() });
    let mut latencies = Vec::new();
    let mut found = 0;
    for i in 0..val_ds.items().len().min(8) {
        let path = val_ds.image_path(i).clone();
        let img = load_rgb(&path)?;
        let t = Instant::now();
        let (dets, _) = predictor.predict(&[(path.display().to_string(), img.clone())])?;
        latencies.push(t.elapsed().as_secs_f64() * 1e3);
        let anns: Vec<Annotation> = dets[0]
            .iter()
            .map(|d| Annotation { xyxy: d.bbox_xyxy, label: &d.class_name, score: d.score, class_id: d.class_id })
            .collect();
        found += anns.len();
        if i < 4 {
            let mut out = img;
            draw_detections(&mut out, &anns);
            out.save(detect_dir.join(path.file_name().context("image file name")?))?;
        }
    }
    latencies.sort_by(f64::total_cmp);
    let latency = latencies.get(latencies.len() / 2).copied().unwrap_or(f64::NAN);
    eprintln!(
        "[4/4] detect: {found} objects on {} images, annotated copies in {}",
        latencies.len(),
        detect_dir.display()
    );

    println!();
    println!("| stage | params | GFLOPs @{} | mAP50 | mAP50-95 | latency ms (b1, {}) |", o.imgsz, o.device);
    println!("|---|---|---|---|---|---|");
    println!(
        "| trained ({} epochs, {:.0} s) | {} | {:.2} | {:.3} | {:.3} | {:.1} |",
        outcome.epochs_done, train_secs, info.params, info.gflops, m.map50, m.map50_95, latency
    );
    println!();
    println!("total {:.0} s; run folder {}", t_all.elapsed().as_secs_f64(), outcome.run_dir.display());
    Ok(())
}
