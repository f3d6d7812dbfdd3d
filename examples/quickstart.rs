//! Quickstart: the whole path on an embedded default, no downloads.
//!
//! 1. generate the synthetic shapes dataset (`ycomp synth`),
//! 2. train a YOLOv5n from scratch on it (`ycomp train`),
//! 3. validate the best checkpoint (`ycomp val`),
//! 4. detect objects on a few validation images and save them annotated (`ycomp detect`),
//! 5. prune it with EagleEye to half its FLOPs and fine-tune it (`ycomp prune`, `ycomp train --weights`),
//! 6. quantize the pruned model to int8 by post-training quantization (`ycomp quantize --method ptq`),
//! 7. print a summary table, one row per stage: params, GFLOPs, checkpoint size, mAP50, mAP50-95,
//!    latency.
//!
//! ```bash
//! cargo run --release --example quickstart            # ~10 minutes on a 2-core CPU
//! cargo run --release --example quickstart -- --epochs 3 --images 300   # a faster smoke run
//! ```
//!
//! Options: `--out DIR` (default `runs/quickstart`), `--epochs N`, `--images N`, `--val N`,
//! `--imgsz S`, `--batch B`, `--model NAME` (default `yolov5n.yaml`), `--device cpu|vulkan|wgpu`,
//! `--seed N`, and the scene: `--classes K` (4), `--min-size PX` (20), `--max-objects N` (4),
//! `--clutter X` (0.3); pruning: `--prune-target F` (kept FLOPs fraction, 0.5), `--finetune-epochs N` (4);
//! quantization: `--calib-images N` (64), `--calib-method minmax|percentile|mse|entropy` (mse).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use yolo_compress::compress::prune::{Compensation, EagleEyeConfig, Method, PruneConfig, PruneData, prune};
use yolo_compress::compress::quant::checkpoint::save_int8;
use yolo_compress::compress::quant::{CalibMethod, ObserverConfig, QuantConfig, loader_images, ptq};
use yolo_compress::data::dataset::{Split, YoloDataset};
use yolo_compress::data::loader::{Loader, LoaderConfig};
use yolo_compress::data::synth::{SynthConfig, write_dataset};
use yolo_compress::data::{Annotation, SampleSource, Subset, draw_detections, load_rgb};
use yolo_compress::loading::LoadedModel;
use yolo_compress::model::weights::{load_checkpoint, save_checkpoint};
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
    min_size: f32,
    max_objects: usize,
    clutter: f32,
    prune_target: f64,
    calib_images: usize,
    calib_method: CalibMethod,
    finetune_epochs: usize,
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
        min_size: 20.0,
        max_objects: 4,
        clutter: 0.3,
        prune_target: 0.5,
        calib_images: 64,
        calib_method: CalibMethod::Mse,
        finetune_epochs: 4,
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
            "--min-size" => o.min_size = value()?.parse()?,
            "--max-objects" => o.max_objects = value()?.parse()?,
            "--clutter" => o.clutter = value()?.parse()?,
            "--prune-target" => o.prune_target = value()?.parse()?,
            "--calib-images" => o.calib_images = value()?.parse()?,
            "--calib-method" => o.calib_method = value()?.parse().map_err(anyhow::Error::msg)?,
            "--finetune-epochs" => o.finetune_epochs = value()?.parse()?,
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
        // An easier scene than the generator's default (bigger, fewer, less occluded objects on
        // calmer backgrounds), so that a 10-minute CPU run learns visibly.
        min_size: o.min_size,
        max_objects: o.max_objects,
        clutter: o.clutter,
        max_occlusion: 0.3,
        min_inside: 0.8,
        noise: 4.0,
        ..SynthConfig::default()
    };
    let t = Instant::now();
    let summary = write_dataset(&synth, &data_dir)?;
    eprintln!(
        "[1/6] synthetic dataset: {} + {} images in {:.1} s → {}",
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
    eprintln!("[2/6] trained {} epochs in {:.0} s → {}", outcome.epochs_done, train_secs, outcome.run_dir.display());

    // 3. Validate the best checkpoint, detect on a few validation images, measure latency.
    let (best, _) = load_checkpoint(&outcome.best, &device)?;
    let val_ds = Arc::new(YoloDataset::open(&yaml, Split::Val)?);
    let trained = evaluate(best.clone().into(), &best, &val_ds, &o, &device, Some(&o.out.join("detect")))?;
    eprintln!(
        "[3/6] val: mAP50 {:.3} mAP50-95 {:.3}; detect: {} objects (conf {DETECT_CONF}) on 8 images, annotated copies in {}",
        trained.map50,
        trained.map50_95,
        trained.found,
        o.out.join("detect").display()
    );

    // 4. Prune with EagleEye to half the FLOPs: random per-group ratios, adaptive BN, the best of a
    //    few candidates on held-out training images.
    let t = Instant::now();
    let train_src: Arc<dyn SampleSource> = Arc::new(YoloDataset::open(&yaml, Split::Train)?);
    let bn_loader = Loader::new(train_src.clone(), LoaderConfig::train(o.imgsz, o.batch), &device)?;
    let eval_loader =
        Loader::new(Arc::new(Subset::evenly(train_src.clone(), 64)), LoaderConfig::val(o.imgsz, 32), &device)?;
    let prune_cfg = PruneConfig {
        method: Method::EagleEye,
        target: o.prune_target,
        imgsz: o.imgsz as usize,
        bn_batches: 10,
        eagleeye: EagleEyeConfig { candidates: 4, tolerance: 0.03, seed: o.seed, ..EagleEyeConfig::default() },
        // The settings the README's table was measured with (before compensation and re-anchoring).
        compensation: Compensation::None,
        reanchor: false,
        ..PruneConfig::default()
    };
    let pruned = prune(
        &best,
        &prune_cfg,
        &PruneData { train: &bn_loader, eval: &eval_loader, calib: None },
        &device,
        &mut |_| {},
    )?;
    eprintln!(
        "[4/6] pruned (EagleEye, {} candidates): {:.1} % of the FLOPs kept in {:.0} s",
        pruned.candidates.len(),
        100.0 * pruned.flops_fraction,
        t.elapsed().as_secs_f64()
    );

    // 5. Fine-tune the pruned model with the same recipe.
    let ft_cfg = TrainConfig { epochs: o.finetune_epochs, name: "finetune".into(), ..cfg.clone() };
    let t = Instant::now();
    let ft = train(pruned.model, &data, &ft_cfg, &device)?;
    let ft_secs = t.elapsed().as_secs_f64();
    let (ft_best, _) = load_checkpoint(&ft.best, &device)?;
    let finetuned = evaluate(ft_best.clone().into(), &ft_best, &val_ds, &o, &device, None)?;
    eprintln!("[5/6] fine-tuned {} epochs in {ft_secs:.0} s → {}", ft.epochs_done, ft.run_dir.display());

    // 6. Post-training int8 quantization of the pruned model: BN folded, per-channel int8 weights,
    //    per-tensor activations calibrated on training images, Detect's output convs in float.
    let t = Instant::now();
    let calib_loader = Loader::new(train_src, LoaderConfig::val(o.imgsz, 16), &device)?;
    let calib = loader_images(&calib_loader, o.calib_images)?;
    let qcfg =
        QuantConfig { calib: ObserverConfig { method: o.calib_method, ..Default::default() }, ..Default::default() };
    let int8 = ptq(&ft_best, calib, &qcfg)?;
    let int8_path = o.out.join("int8.safetensors");
    save_int8(&int8, &int8_path, &Default::default())?;
    let q_secs = t.elapsed().as_secs_f64();
    let quantized = evaluate(int8.into(), &ft_best, &val_ds, &o, &device, None)?;
    eprintln!(
        "[6/6] int8 PTQ ({} calibration, {} images) in {q_secs:.0} s → {}",
        o.calib_method,
        o.calib_images,
        int8_path.display()
    );

    println!();
    println!(
        "| stage | params | GFLOPs @{} | checkpoint MB | mAP50 | mAP50-95 | latency ms (b1, {}) |",
        o.imgsz, o.device
    );
    println!("|---|---|---|---|---|---|---|");
    for (stage, r) in [
        (format!("trained ({} epochs, {train_secs:.0} s)", outcome.epochs_done), &trained),
        (
            format!(
                "pruned to {:.0} % FLOPs + {} epochs ({ft_secs:.0} s)",
                100.0 * pruned.flops_fraction,
                ft.epochs_done
            ),
            &finetuned,
        ),
        (format!("int8 PTQ of the pruned model ({q_secs:.0} s, simulated int8)"), &quantized),
    ] {
        println!(
            "| {stage} | {} | {:.2} | {:.2} | {:.3} | {:.3} | {:.1} |",
            r.params,
            r.gflops,
            r.size_bytes as f64 / 1e6,
            r.map50,
            r.map50_95,
            r.latency_ms
        );
    }
    println!();
    println!(
        "total {:.0} s; run folders {} and {}",
        t_all.elapsed().as_secs_f64(),
        outcome.run_dir.display(),
        ft.run_dir.display()
    );
    Ok(())
}

/// Confidence threshold of the demo detections (a 10-minute model is not yet confident).
const DETECT_CONF: f32 = 0.1;

/// What the summary table shows for one model.
struct Evaluation {
    params: usize,
    gflops: f64,
    size_bytes: u64,
    map50: f64,
    map50_95: f64,
    latency_ms: f64,
    found: usize,
}

/// Validates the model (float models fused; int8 models with simulated int8 arithmetic), measures
/// batch-1 latency on 8 validation images, the size of its checkpoint (native float or int8), and
/// saves annotated detections of the first 4 into `detect_dir`. `float` is the float model with
/// the same architecture (for params and GFLOPs).
fn evaluate(
    model: LoadedModel,
    float: &YoloModel,
    val_ds: &Arc<YoloDataset>,
    o: &Options,
    device: &Device,
    detect_dir: Option<&Path>,
) -> Result<Evaluation> {
    let model = model.fuse();
    let loader = Loader::new(val_ds.clone(), LoaderConfig::val(o.imgsz, 32), device)?;
    let m = validate(&model, &loader, &ValConfig::default(), None)?.metrics;
    let info = ModelInfo::of(float, o.imgsz as usize);
    let tmp = o.out.join(".size.safetensors");
    match &model {
        LoadedModel::Float(f) => save_checkpoint(f, &tmp, &Default::default())?,
        LoadedModel::Int8(q) => {
            save_int8(q, &tmp, &Default::default())?;
        }
    }
    let size_bytes = std::fs::metadata(&tmp)?.len();
    std::fs::remove_file(&tmp)?;
    let d = PredictConfig::default();
    let cfg = PredictConfig { imgsz: o.imgsz as usize, nms: d.nms.clone().with_conf_thres(DETECT_CONF), ..d };
    let predictor = Predictor::with_model(model, device, cfg);
    if let Some(d) = detect_dir {
        std::fs::create_dir_all(d)?;
    }
    let mut latencies = Vec::new();
    let mut found = 0;
    for i in 0..val_ds.items().len().min(8) {
        let path = val_ds.image_path(i).clone();
        let img = load_rgb(&path)?;
        let t = Instant::now();
        let (dets, _) = predictor.predict(&[(path.display().to_string(), img.clone())])?;
        latencies.push(t.elapsed().as_secs_f64() * 1e3);
        found += dets[0].len();
        if let (Some(d), true) = (detect_dir, i < 4) {
            let anns: Vec<Annotation> = dets[0]
                .iter()
                .map(|d| Annotation { xyxy: d.bbox_xyxy, label: &d.class_name, score: d.score, class_id: d.class_id })
                .collect();
            let mut out = img;
            draw_detections(&mut out, &anns);
            out.save(d.join(path.file_name().context("image file name")?))?;
        }
    }
    latencies.sort_by(f64::total_cmp);
    Ok(Evaluation {
        params: info.params,
        gflops: info.gflops,
        size_bytes,
        map50: m.map50,
        map50_95: m.map50_95,
        latency_ms: latencies.get(latencies.len() / 2).copied().unwrap_or(f64::NAN),
        found,
    })
}
