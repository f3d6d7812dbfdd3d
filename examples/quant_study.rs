//! Quantization evidence on a trained checkpoint: the numbers of docs/quantization.md.
//!
//! 1. **PTQ per calibration method** (min-max, percentile, MSE, entropy): mAP of the simulated-int8
//!    model on the validation split next to the float model's.
//! 2. **QAT**: a few epochs of quantization-aware fine-tuning from the best PTQ calibration, and
//!    the same loop with nothing quantized as a control (the gain of plain extra training).
//! 3. **Checkpoint sizes** (float native vs int8) and batch-1 latency (float, fused vs simulated int8).
//!
//! ```bash
//! cargo run --release --example quickstart      # makes runs/quickstart/{data,train}
//! cargo run --release --example quant_study -- --weights runs/quickstart/train/weights/best.safetensors \
//!     --data runs/quickstart/data/data.yaml --imgsz 128 --qat-epochs 3
//! ```
//! Writes `study.json` and `study.md` into `--out` (default `runs/quant_study`).

mod common;

use common::{latency_ms, start_study};

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use yolo_compress::compress::quant::checkpoint::save_int8;
use yolo_compress::compress::quant::qat::{QatConfig, qat};
use yolo_compress::compress::quant::{
    CalibMethod, ObserverConfig, QuantConfig, QuantModel, calibrated, loader_images, ptq,
};
use yolo_compress::data::dataset::{Split, YoloDataset};
use yolo_compress::data::loader::{Loader, LoaderConfig};
use yolo_compress::model::DetectionModel;
use yolo_compress::model::weights::save_checkpoint;
use yolo_compress::train::val::{ValConfig, validate};

struct Options {
    weights: PathBuf,
    data: PathBuf,
    out: PathBuf,
    imgsz: u32,
    batch: usize,
    calib_images: usize,
    methods: Vec<CalibMethod>,
    qat_epochs: usize,
    qat_lr: f64,
    device: String,
}

fn parse_args() -> Result<Options> {
    let mut o = Options {
        weights: PathBuf::new(),
        data: PathBuf::new(),
        out: PathBuf::from("runs/quant_study"),
        imgsz: 128,
        batch: 16,
        calib_images: 128,
        methods: CalibMethod::ALL.to_vec(),
        qat_epochs: 3,
        qat_lr: 1e-4,
        device: "cpu".into(),
    };
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        let mut value = || it.next().with_context(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--weights" => o.weights = value()?.into(),
            "--data" => o.data = value()?.into(),
            "--out" => o.out = value()?.into(),
            "--imgsz" => o.imgsz = value()?.parse()?,
            "--batch" => o.batch = value()?.parse()?,
            "--calib-images" => o.calib_images = value()?.parse()?,
            "--methods" => {
                o.methods = value()?.split(',').map(|m| m.parse().map_err(anyhow::Error::msg)).collect::<Result<_>>()?
            }
            "--qat-epochs" => o.qat_epochs = value()?.parse()?,
            "--qat-lr" => o.qat_lr = value()?.parse()?,
            "--device" => o.device = value()?.clone(),
            other => bail!("unknown option {other} (see the doc comment of examples/quant_study.rs)"),
        }
    }
    Ok(o)
}

fn main() -> Result<()> {
    let o = parse_args()?;
    let (device, model) = start_study(&o.weights, &o.data, &o.out, &o.device, 0)?;
    let imgsz = o.imgsz as usize;
    let train_ds = YoloDataset::open(&o.data, Split::Train)?;
    let val_ds = YoloDataset::open(&o.data, Split::Val)?;
    let train_src: Arc<dyn yolo_compress::data::SampleSource> = Arc::new(train_ds);
    // Calibration images: training images without augmentation.
    let calib_loader = Loader::new(train_src.clone(), LoaderConfig::val(o.imgsz, o.batch), &device)?;
    let train_loader = Loader::new(train_src, LoaderConfig::train(o.imgsz, o.batch), &device)?;
    let val_loader = Loader::new(Arc::new(val_ds), LoaderConfig::val(o.imgsz, 32), &device)?;
    let calib = loader_images(&calib_loader, o.calib_images)?;
    let val = |m: &dyn DetectionModel| -> Result<(f64, f64)> {
        let r = validate(m, &val_loader, &ValConfig::default(), None)?.metrics;
        Ok((r.map50, r.map50_95))
    };

    let fused = model.clone().fuse();
    let (f50, f5095) = val(&model)?;
    let float_lat = latency_ms(&fused, imgsz, &device);
    let float_path = o.out.join("float.safetensors");
    save_checkpoint(&model, &float_path, &BTreeMap::new())?;
    let float_size = std::fs::metadata(&float_path)?.len();
    eprintln!("float: mAP50 {f50:.4} mAP50-95 {f5095:.4} latency {float_lat:.2} ms size {float_size} B");

    let mut rows = vec![
        serde_json::json!({"model": "float", "map50": f50, "map50_95": f5095, "size_bytes": float_size, "latency_ms": float_lat}),
    ];
    let mut best: Option<(CalibMethod, f64)> = None;
    for &method in &o.methods {
        let t = Instant::now();
        let cfg = QuantConfig { calib: ObserverConfig { method, ..Default::default() }, ..Default::default() };
        let q = ptq(&model, calib.iter().cloned(), &cfg)?;
        let (m50, m5095) = val(&q)?;
        let path = o.out.join(format!("ptq-{method}.safetensors"));
        let size = save_int8(&q, &path, &BTreeMap::new())?;
        let lat = latency_ms(&q, imgsz, &device);
        eprintln!(
            "PTQ {method}: mAP50 {m50:.4} mAP50-95 {m5095:.4} ({:+.2} points) size {size} B latency {lat:.2} ms ({:.0} s)",
            (m5095 - f5095) * 100.0,
            t.elapsed().as_secs_f64()
        );
        if best.is_none_or(|(_, b)| m5095 > b) {
            best = Some((method, m5095));
        }
        rows.push(serde_json::json!({"model": format!("ptq-{method}"), "map50": m50, "map50_95": m5095, "size_bytes": size, "latency_ms": lat, "quantized_convs": q.quantized().iter().filter(|q| **q).count(), "convs": q.convs.len()}));
    }

    if o.qat_epochs > 0 {
        let (method, _) = best.context("QAT starts from the best PTQ calibration: give at least one method")?;
        let t = Instant::now();
        let cfg = QuantConfig { calib: ObserverConfig { method, ..Default::default() }, ..Default::default() };
        let q = calibrated(QuantModel::from_model(&model)?, calib.iter().cloned(), &cfg)?;
        let qcfg = QatConfig { epochs: o.qat_epochs, lr: o.qat_lr, verbose: true, ..Default::default() };
        let out = qat(q, &train_loader, Some(&val_loader), &qcfg, &device)?;
        let q = out.model.fold_bn();
        let (m50, m5095) = val(&q)?;
        let path = o.out.join("qat.safetensors");
        let size = save_int8(&q, &path, &BTreeMap::new())?;
        eprintln!(
            "QAT ({method}, {} epochs, lr {}): mAP50 {m50:.4} mAP50-95 {m5095:.4} ({:+.2} points) ({:.0} s)",
            o.qat_epochs,
            o.qat_lr,
            (m5095 - f5095) * 100.0,
            t.elapsed().as_secs_f64()
        );
        rows.push(serde_json::json!({"model": format!("qat-{method}"), "map50": m50, "map50_95": m5095, "size_bytes": size, "epochs": out.epochs}));

        // Control: the same loop, data and schedule with nothing quantized — how much of QAT's gain
        // is plain extra training of the float model.
        let t = Instant::now();
        let f = QuantModel::from_model(&model)?;
        let none = vec![false; f.convs.len()];
        let f = f.with_quantized(&none)?;
        let out = qat(f, &train_loader, Some(&val_loader), &qcfg, &device)?;
        let (c50, c5095) = val(&out.model.fold_bn())?;
        eprintln!(
            "control (float, same loop): mAP50 {c50:.4} mAP50-95 {c5095:.4} ({:+.2} points) ({:.0} s)",
            (c5095 - f5095) * 100.0,
            t.elapsed().as_secs_f64()
        );
        rows.push(serde_json::json!({"model": "float-finetuned-control", "map50": c50, "map50_95": c5095, "size_bytes": float_size, "epochs": out.epochs}));
    }

    let mut md = String::from(
        "| model | mAP50 | mAP50-95 | Δ mAP50-95 (points) | size (bytes) | latency ms (b1) |\n|---|---|---|---|---|---|\n",
    );
    for r in &rows {
        let m = r["map50_95"].as_f64().unwrap_or(0.0);
        md.push_str(&format!(
            "| {} | {:.4} | {:.4} | {:+.2} | {} | {} |\n",
            r["model"].as_str().unwrap_or(""),
            r["map50"].as_f64().unwrap_or(0.0),
            m,
            (m - f5095) * 100.0,
            r["size_bytes"],
            r["latency_ms"].as_f64().map_or("–".into(), |l| format!("{l:.2}"))
        ));
    }
    println!("{md}");
    std::fs::write(o.out.join("study.md"), &md)?;
    std::fs::write(o.out.join("study.json"), serde_json::to_string_pretty(&rows)?)?;
    Ok(())
}
