//! Per-layer quantization sensitivity and a mixed-precision suggestion.
//!
//! Every conv a calibrated [`QuantModel`] quantizes is measured alone: the model with only that conv
//! quantized (its weights per channel, its input and output activations by the
//! [placement](super::graph::place) rules, so shared concat / residual-add quantizers come with it) is
//! compared with the float model on the same images. The measures are
//!
//! - the SQNR of the raw Detect outputs (all levels, all images concatenated):
//!   `10·log10(Σ y² / Σ (y − ŷ)²)` in dB, `y` float and `ŷ` quantized. Outputs without any error give
//!   [`SQNR_CAP_DB`], NaN outputs `−SQNR_CAP_DB`, and every value is clamped to `±SQNR_CAP_DB`, so
//!   the number is always finite (see [`sqnr_db`]);
//! - optionally mAP50 and mAP50-95 on a labelled loader, through
//!   [`validate`].
//!
//! Layers are ranked by their SQNR (lowest first), or, with [`SensitivityConfig::rank_by_map`], by
//! their mAP50-95 drop against the float model (SQNR breaking ties). SQNR is the default because a
//! single quantized layer of a healthy model moves mAP by less than the evaluation's noise (on the
//! yolov5n of docs/quantization.md every single-layer drop is below 0.001, in an order unrelated
//! to the SQNR). The suggestion keeps the [`SensitivityConfig::keep_float`] most
//! sensitive convs in float and quantizes the rest (same calibrated ranges).
//!
//! [`write_sensitivity`] writes `sensitivity.md` (a table), `sensitivity.json` and `sensitivity.png`
//! (a bar chart with the convs kept in float highlighted).

use std::path::{Path, PathBuf};

use burn::prelude::*;
use serde::{Deserialize, Serialize};
use yolo_compress_data::loader::Loader;
use yolo_compress_model::DetectionModel;
use yolo_compress_train::TrainError;
use yolo_compress_train::plots::plot_bars;
use yolo_compress_train::val::{ValConfig, validate};

use super::model::QuantModel;
use crate::error::QuantError;

/// The SQNR reported for outputs equal to the float reference (no measurable error), in dB; every
/// SQNR is clamped to `−SQNR_CAP_DB..=SQNR_CAP_DB`.
pub const SQNR_CAP_DB: f64 = 200.0;

/// Settings of [`sensitivity`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SensitivityConfig {
    /// How many of the most sensitive convs the mixed-precision suggestion keeps in float (default 3).
    pub keep_float: usize,
    /// Measure mAP50 / mAP50-95 per layer when an evaluation loader is given (default true).
    pub with_map: bool,
    /// Rank by the measured mAP50-95 drop instead of the SQNR (default false).
    pub rank_by_map: bool,
}

impl Default for SensitivityConfig {
    fn default() -> Self {
        SensitivityConfig { keep_float: 3, with_map: true, rank_by_map: false }
    }
}

/// The sensitivity of one conv: the model with only this conv quantized against the float model.
#[derive(Clone, Debug, Serialize)]
pub struct LayerSensitivity {
    /// The conv's name (`model.2.m.0.cv1`).
    pub name: String,
    /// SQNR of the raw outputs in dB (see the module docs).
    pub sqnr_db: f64,
    /// mAP50 with only this conv quantized (when measured).
    pub map50: Option<f64>,
    /// mAP50-95 with only this conv quantized (when measured).
    pub map50_95: Option<f64>,
}

/// A mixed-precision configuration: the most sensitive convs in float, the others quantized.
#[derive(Clone, Debug, Serialize)]
pub struct MixedPrecision {
    /// Names of the convs kept in float, most sensitive first.
    pub keep_float: Vec<String>,
    /// SQNR of the raw outputs against the float model, dB.
    pub sqnr_db: f64,
    /// mAP50 (when measured).
    pub map50: Option<f64>,
    /// mAP50-95 (when measured).
    pub map50_95: Option<f64>,
}

/// The result of [`sensitivity`].
#[derive(Clone, Debug, Serialize)]
pub struct SensitivityReport {
    /// mAP50 of the float model (when measured).
    pub float_map50: Option<f64>,
    /// mAP50-95 of the float model (when measured).
    pub float_map50_95: Option<f64>,
    /// SQNR of the given quantized model (every candidate quantized) against the float model, dB.
    pub int8_sqnr_db: f64,
    /// mAP50 of the given quantized model (when measured).
    pub int8_map50: Option<f64>,
    /// mAP50-95 of the given quantized model (when measured).
    pub int8_map50_95: Option<f64>,
    /// One entry per candidate conv, most sensitive first.
    pub layers: Vec<LayerSensitivity>,
    /// The suggested mixed-precision configuration.
    pub suggestion: MixedPrecision,
}

impl SensitivityReport {
    /// The mAP50-95 drop of layer `i` of [`SensitivityReport::layers`] against the float model (positive =
    /// worse), when both were measured.
    pub fn map_drop(&self, i: usize) -> Option<f64> {
        Some(self.float_map50_95? - self.layers.get(i)?.map50_95?)
    }
}

/// SQNR in dB of a signal energy `signal` against an error energy `noise`, clamped to
/// `±`[`SQNR_CAP_DB`]: no error at all gives the cap, non-finite outputs (NaN energies) the floor.
pub fn sqnr_db(signal: f64, noise: f64) -> f64 {
    if signal.is_nan() || noise.is_nan() {
        return -SQNR_CAP_DB;
    }
    if noise <= 0.0 {
        return SQNR_CAP_DB;
    }
    let db = 10.0 * (signal / noise).log10();
    if db.is_nan() { -SQNR_CAP_DB } else { db.clamp(-SQNR_CAP_DB, SQNR_CAP_DB) }
}

/// The float model's raw outputs on the images, flattened per image, and their energy.
struct Reference {
    outputs: Vec<Tensor<1>>,
    signal: f64,
}

/// All levels of the raw outputs of `model` on `x`, flattened into one vector.
fn raw_flat(model: &QuantModel, x: Tensor<4>) -> Tensor<1> {
    Tensor::cat(model.forward_raw(x).into_iter().map(|t| t.flatten::<1>(0, 4)).collect(), 0)
}

/// Sum of the `[1]` tensors, added up on the host in f64.
fn host_sum(parts: Vec<Tensor<1>>) -> Result<f64, QuantError> {
    let values = Tensor::cat(parts, 0)
        .into_data()
        .convert::<f32>()
        .try_to_vec::<f32>()
        .map_err(|e| QuantError::Graph(format!("cannot read the output energies back from the device: {e:?}")))?;
    Ok(values.iter().map(|&v| f64::from(v)).sum())
}

impl Reference {
    fn new(float: &QuantModel, images: &[Tensor<4>]) -> Result<Self, QuantError> {
        let outputs: Vec<Tensor<1>> = images.iter().map(|x| raw_flat(float, x.clone())).collect();
        let signal = host_sum(outputs.iter().map(|y| y.clone().powi_scalar(2).sum()).collect())?;
        Ok(Reference { outputs, signal })
    }

    /// SQNR of `model`'s raw outputs against the reference.
    fn sqnr(&self, model: &QuantModel, images: &[Tensor<4>]) -> Result<f64, QuantError> {
        let noise = images
            .iter()
            .zip(&self.outputs)
            .map(|(x, y)| (raw_flat(model, x.clone()) - y.clone()).powi_scalar(2).sum())
            .collect();
        Ok(sqnr_db(self.signal, host_sum(noise)?))
    }
}

/// Checks that every image is a non-empty `[B, C, H, W]` batch the model accepts.
fn check_images(model: &QuantModel, images: &[Tensor<4>]) -> Result<(), QuantError> {
    let bad = |msg: String| Err(QuantError::Option { name: "images", msg });
    if images.is_empty() {
        return bad("no images to measure the sensitivity on".into());
    }
    let stride = DetectionModel::max_stride(model).max(1);
    let channels = model.arch.input_channels;
    for (i, x) in images.iter().enumerate() {
        let [b, c, h, w] = x.dims();
        if b == 0 || h == 0 || w == 0 {
            return bad(format!("batch {i} is empty ({b}×{c}×{h}×{w})"));
        }
        if c != channels {
            return bad(format!("batch {i} has {c} channels, the model takes {channels}"));
        }
        if !h.is_multiple_of(stride) || !w.is_multiple_of(stride) {
            return bad(format!("batch {i} is {h}×{w}, not a multiple of the model's stride {stride}"));
        }
    }
    Ok(())
}

/// `(mAP50, mAP50-95)` of `model` on `eval`, when measured.
fn measure(model: &QuantModel, eval: Option<(&Loader, &ValConfig)>) -> Result<(Option<f64>, Option<f64>), QuantError> {
    match eval {
        Some((loader, cfg)) => {
            let m = validate(model, loader, cfg, None)?.metrics;
            Ok((Some(m.map50), Some(m.map50_95)))
        }
        None => Ok((None, None)),
    }
}

/// Measures the sensitivity of every conv `model` quantizes (see the module docs).
///
/// `model` must be calibrated ([`QuantModel::with_value_ranges`]) with its candidate convs quantized
/// (e.g. the result of [`ptq`](super::calibrate::ptq)); `images` are the batches the SQNR is measured
/// on; with `eval` and [`SensitivityConfig::with_map`] the float model, the given quantized model,
/// every single-layer model and the suggestion are validated on the loader too (one validation per
/// candidate conv: this dominates the run time). The float model's raw outputs on all `images` stay
/// on the device during the run (≈ 8.6 MB per 640×640 image at 80 classes). Errors when there are no images or one is not a
/// batch the model accepts, when nothing is quantized, when `keep_float` exceeds the number of
/// quantized convs, when a quantized value was never calibrated, and when validation fails.
pub fn sensitivity(
    model: &QuantModel,
    images: &[Tensor<4>],
    eval: Option<(&Loader, &ValConfig)>,
    cfg: &SensitivityConfig,
) -> Result<SensitivityReport, QuantError> {
    check_images(model, images)?;
    let candidates: Vec<usize> = model.quantized().iter().enumerate().filter(|(_, q)| **q).map(|(i, _)| i).collect();
    if candidates.is_empty() {
        return Err(QuantError::Option {
            name: "model",
            msg: "no conv is quantized: calibrate and quantize the model (ptq) before measuring its sensitivity".into(),
        });
    }
    if cfg.keep_float > candidates.len() {
        return Err(QuantError::Option {
            name: "keep_float",
            msg: format!("{} convs to keep in float, but only {} are quantized", cfg.keep_float, candidates.len()),
        });
    }
    let eval = eval.filter(|_| cfg.with_map);
    // Inference form: no autodiff graph, QAT observers do not update.
    let model = model.valid();
    let device = model.devices().first().cloned().unwrap_or_else(|| images[0].device());
    let images: Vec<Tensor<4>> = images.iter().map(|x| x.clone().to_device(&device)).collect();
    let n = model.convs.len();

    let float = model.clone().with_quantized(&vec![false; n])?;
    let reference = Reference::new(&float, &images)?;
    let (float_map50, float_map50_95) = measure(&float, eval)?;
    let int8_sqnr_db = reference.sqnr(&model, &images)?;
    let (int8_map50, int8_map50_95) = measure(&model, eval)?;

    let mut layers = Vec::with_capacity(candidates.len());
    for &i in &candidates {
        let mut one = vec![false; n];
        one[i] = true;
        let single = model.clone().with_quantized(&one)?;
        let sqnr_db = reference.sqnr(&single, &images)?;
        let (map50, map50_95) = measure(&single, eval)?;
        layers.push((i, LayerSensitivity { name: model.convs[i].name.clone(), sqnr_db, map50, map50_95 }));
    }
    // Most sensitive first: lowest SQNR (or, ranking by mAP, largest mAP50-95 drop = lowest
    // mAP50-95, then lowest SQNR), then graph order.
    let map_key = |l: &LayerSensitivity| if cfg.rank_by_map { l.map50_95.unwrap_or(f64::INFINITY) } else { 0.0 };
    layers.sort_by(|(ia, a), (ib, b)| {
        map_key(a).total_cmp(&map_key(b)).then(a.sqnr_db.total_cmp(&b.sqnr_db)).then(ia.cmp(ib))
    });

    let mut mixed = model.quantized();
    for &(i, _) in &layers[..cfg.keep_float] {
        mixed[i] = false;
    }
    let mixed_model = model.clone().with_quantized(&mixed)?;
    let sqnr = reference.sqnr(&mixed_model, &images)?;
    let (map50, map50_95) = measure(&mixed_model, eval)?;
    let keep_float = layers[..cfg.keep_float].iter().map(|(_, l)| l.name.clone()).collect();
    Ok(SensitivityReport {
        float_map50,
        float_map50_95,
        int8_sqnr_db,
        int8_map50,
        int8_map50_95,
        layers: layers.into_iter().map(|(_, l)| l).collect(),
        suggestion: MixedPrecision { keep_float, sqnr_db: sqnr, map50, map50_95 },
    })
}

fn fmt_opt(v: Option<f64>) -> String {
    v.map_or_else(|| "–".to_string(), |v| format!("{v:.4}"))
}

fn fmt_sqnr(db: f64) -> String {
    if db >= SQNR_CAP_DB { format!("≥ {SQNR_CAP_DB:.0}") } else { format!("{db:.2}") }
}

/// The markdown report: a summary and one table row per conv, most sensitive first.
pub fn sensitivity_markdown(report: &SensitivityReport) -> String {
    let with_map = report.float_map50_95.is_some();
    let n = report.layers.len();
    let mut s = String::from("# Quantization sensitivity\n\n");
    s += &format!(
        "Each of the {n} quantized convs was quantized alone (weights, input and output activations); \
         SQNR of the raw outputs against the float model (capped at {SQNR_CAP_DB:.0} dB){}.\n\n",
        if with_map { " and mAP on the evaluation set" } else { "" }
    );
    s += "| model | SQNR (dB) | mAP50 | mAP50-95 |\n|---|---:|---:|---:|\n";
    s += &format!(
        "| float | {} | {} | {} |\n",
        fmt_sqnr(SQNR_CAP_DB),
        fmt_opt(report.float_map50),
        fmt_opt(report.float_map50_95)
    );
    s += &format!(
        "| int8 (all {n}) | {} | {} | {} |\n",
        fmt_sqnr(report.int8_sqnr_db),
        fmt_opt(report.int8_map50),
        fmt_opt(report.int8_map50_95)
    );
    let sug = &report.suggestion;
    s += &format!(
        "| mixed ({} in float) | {} | {} | {} |\n\n",
        sug.keep_float.len(),
        fmt_sqnr(sug.sqnr_db),
        fmt_opt(sug.map50),
        fmt_opt(sug.map50_95)
    );
    if sug.keep_float.is_empty() {
        s += "Suggestion: quantize every conv.\n\n";
    } else {
        let names: Vec<String> = sug.keep_float.iter().map(|n| format!("`{n}`")).collect();
        s += &format!("Suggestion: keep {} in float, quantize the rest.\n\n", names.join(", "));
    }
    s += "| rank | layer | SQNR (dB) | mAP50-95 | ΔmAP50-95 | precision |\n|---:|---|---:|---:|---:|---|\n";
    for (i, l) in report.layers.iter().enumerate() {
        let drop = report.map_drop(i).map_or_else(|| "–".to_string(), |d| format!("{:+.4}", -d));
        let precision = if sug.keep_float.contains(&l.name) { "float" } else { "int8" };
        s += &format!(
            "| {} | `{}` | {} | {} | {drop} | {precision} |\n",
            i + 1,
            l.name,
            fmt_sqnr(l.sqnr_db),
            fmt_opt(l.map50_95)
        );
    }
    s
}

/// Writes `sensitivity.md` (see [`sensitivity_markdown`]), `sensitivity.json` (the report) and
/// `sensitivity.png` (one bar per conv, most sensitive at the top: the mAP50-95 drop when measured,
/// the SQNR otherwise; the convs kept in float highlighted) into `dir` (created if needed), each
/// atomically, and returns their paths. Errors name the file at fault.
pub fn write_sensitivity(report: &SensitivityReport, dir: &Path) -> Result<Vec<PathBuf>, QuantError> {
    let io =
        |path: &Path, source: std::io::Error| QuantError::Train(TrainError::Io { path: path.to_path_buf(), source });
    let md = dir.join("sensitivity.md");
    yolo_compress_model::weights::atomic_write(&md, sensitivity_markdown(report).as_bytes()).map_err(|e| io(&md, e))?;

    let json = dir.join("sensitivity.json");
    let text = serde_json::to_vec_pretty(report).map_err(|e| io(&json, std::io::Error::other(e)))?;
    yolo_compress_model::weights::atomic_write(&json, &text).map_err(|e| io(&json, e))?;

    let png = dir.join("sensitivity.png");
    if report.layers.is_empty() {
        return Err(QuantError::Train(TrainError::Plot { path: png, reason: "the report has no layers".into() }));
    }
    let labels: Vec<String> = report.layers.iter().map(|l| l.name.clone()).collect();
    let highlight: Vec<bool> = report.layers.iter().map(|l| report.suggestion.keep_float.contains(&l.name)).collect();
    let drops: Option<Vec<f64>> = (0..report.layers.len()).map(|i| report.map_drop(i)).collect();
    let (values, x_label) = match drops {
        Some(d) => (d, "mAP50-95 drop with only this conv quantized"),
        None => (report.layers.iter().map(|l| l.sqnr_db).collect(), "SQNR (dB) with only this conv quantized"),
    };
    plot_bars(&labels, &values, &highlight, "Quantization sensitivity (red: kept in float)", x_label, &png)?;
    Ok(vec![md, json, png])
}

#[cfg(test)]
mod tests {
    use burn::module::{Param, RunningState};
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;
    use yolo_compress_model::Architecture;
    use yolo_compress_model::state::{NamedTensors, Slot, TensorVisitor};
    use yolo_compress_train::adaptive_bn::adaptive_bn_images;

    use super::super::calibrate::{QuantConfig, calibrate, select_convs};
    use super::super::graph::Op;
    use super::*;

    /// Draws every conv weight from U(±1/√fan_in) (Burn's init, but seeded), every BN γ
    /// (`….bn.weight`) from U(0.5, 1.5) and β (`….bn.bias`) from U(−0.5, 0.5).
    struct RandomInit<'a>(&'a mut ChaCha8Rng);

    impl TensorVisitor for RandomInit<'_> {
        fn visit(&mut self, key: &str, mut slot: Slot<'_>) -> Result<(), yolo_compress_model::WeightsError> {
            let shape = slot.shape();
            let (lo, hi) = if shape.len() == 4 {
                let bound = 1.0 / ((shape[1] * shape[2] * shape[3]) as f32).sqrt();
                (-bound, bound)
            } else if key.ends_with(".bn.weight") {
                (0.5, 1.5)
            } else if key.ends_with(".bn.bias") {
                (-0.5, 0.5)
            } else {
                return Ok(());
            };
            let values = (0..shape.iter().product()).map(|_| self.0.random_range(lo..hi)).collect();
            slot.set(values, &Device::flex());
            Ok(())
        }
    }

    /// `n` images `[b, 3, size, size]` in U(0, 1) from `rng`.
    fn random_images(rng: &mut ChaCha8Rng, n: usize, b: usize, size: usize) -> Vec<Tensor<4>> {
        (0..n)
            .map(|_| {
                let values: Vec<f32> = (0..b * 3 * size * size).map(|_| rng.random_range(0.0..1.0)).collect();
                Tensor::from_data(TensorData::new(values, [b, 3, size, size]), &Device::flex())
            })
            .collect()
    }

    /// yolov5n (2 classes) as a float `QuantModel` (BN not folded yet), seeded, with random BN parameters
    /// and statistics of a realistic scale: random weights, γ and β; running statistics from adaptive BN on a
    /// batch of four random 128×128 images (the "training set"), perturbed by ±0.1σ (means) and
    /// ±10 % (variances). The init statistics (mean 0, variance 1) would make the activations vanish
    /// through the ~60 convs, so that the raw outputs were Detect's biases and every SQNR > 140 dB;
    /// statistics estimated on the two 64×64 measurement images themselves (2×2 values per channel
    /// at stride 32) make the net chaotic (single layers at < 3 dB).
    fn random_bn_model(device: &Device) -> QuantModel {
        let arch = Architecture::from_name_or_path("yolov5n.yaml").unwrap().with_classes(vec!["a".into(), "b".into()]);
        let mut model = arch.build(device).unwrap();
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        model.visit_tensors("model", &mut RandomInit(&mut rng)).unwrap();
        let train = random_images(&mut rng, 1, 4, 128);
        let (model, _) = adaptive_bn_images(model, train.into_iter().map(Ok), device).unwrap();
        let mut q = QuantModel::from_model(&model).unwrap();
        for c in &mut q.convs {
            let Some(bn) = c.bn.as_mut() else { continue };
            let n = bn.gamma.dims()[0];
            let mut v = |lo: f32, hi: f32| {
                let values: Vec<f32> = (0..n).map(|_| rng.random_range(lo..hi)).collect();
                Tensor::<1>::from_data(TensorData::new(values, [n]), device)
            };
            let (dm, dv) = (v(-0.1, 0.1), v(0.9, 1.1));
            let sd = bn.running_var.value().sqrt();
            bn.running_mean = RunningState::new(bn.running_mean.value() + dm * sd);
            bn.running_var = RunningState::new(bn.running_var.value() * dv);
        }
        q
    }

    /// The two 64×64 measurement (and calibration) images.
    fn images(_device: &Device) -> Vec<Tensor<4>> {
        random_images(&mut ChaCha8Rng::seed_from_u64(3), 2, 1, 64)
    }

    /// Folds BN, calibrates (min-max, asymmetric) on `xs` and quantizes the default selection.
    fn quantize(float: QuantModel, xs: &[Tensor<4>]) -> QuantModel {
        let q = float.fold_bn();
        let cfg = QuantConfig::default();
        let ranges = calibrate(&q, xs.iter().cloned(), &cfg.calib, cfg.act_grid());
        let sel = select_convs(&q.conv_names(), &cfg).unwrap();
        q.with_value_ranges(ranges, cfg.act_grid()).with_quantized(&sel).unwrap()
    }

    fn no_map() -> SensitivityConfig {
        SensitivityConfig { keep_float: 3, with_map: false, rank_by_map: false }
    }

    #[test]
    fn sqnr_is_capped_and_finite() {
        assert_eq!(sqnr_db(1.0, 0.0), SQNR_CAP_DB);
        assert_eq!(sqnr_db(0.0, 0.0), SQNR_CAP_DB);
        assert_eq!(sqnr_db(1.0, 1e-300), SQNR_CAP_DB);
        assert_eq!(sqnr_db(0.0, 1.0), -SQNR_CAP_DB);
        assert_eq!(sqnr_db(1.0, f64::NAN), -SQNR_CAP_DB);
        assert_eq!(sqnr_db(f64::INFINITY, f64::INFINITY), -SQNR_CAP_DB);
        assert_eq!(sqnr_db(1.0, f64::INFINITY), -SQNR_CAP_DB);
        assert!((sqnr_db(100.0, 1.0) - 20.0).abs() < 1e-12);
        assert!((sqnr_db(1.0, 2.0) + 3.0103).abs() < 1e-4);
    }

    #[test]
    fn single_layers_lose_less_than_the_whole_int8_model() {
        let device = Device::flex();
        let xs = images(&device);
        let model = quantize(random_bn_model(&device), &xs);
        let candidates = model.quantized().iter().filter(|q| **q).count();
        assert!(candidates > 40, "{candidates} candidates");

        // (a) The float reference against itself has no error at all.
        let float = model.clone().with_quantized(&vec![false; model.convs.len()]).unwrap();
        let reference = Reference::new(&float, &xs).unwrap();
        assert!(reference.signal > 0.0);
        assert_eq!(reference.sqnr(&float, &xs).unwrap(), SQNR_CAP_DB);

        let report = sensitivity(&model, &xs, None, &no_map()).unwrap();
        assert_eq!(report.layers.len(), candidates);
        assert!(report.float_map50_95.is_none() && report.layers.iter().all(|l| l.map50_95.is_none()));
        // The given model's SQNR is that of the reference comparison done by hand.
        assert!((report.int8_sqnr_db - reference.sqnr(&model, &xs).unwrap()).abs() < 1e-9);
        // (b) Every single-layer SQNR is finite, below the cap and above the full int8 SQNR.
        let int8 = report.int8_sqnr_db;
        assert!(int8.is_finite() && int8 > 0.0 && int8 < 60.0, "int8 SQNR {int8}");
        for l in &report.layers {
            assert!(l.sqnr_db.is_finite() && l.sqnr_db < SQNR_CAP_DB, "{}: {}", l.name, l.sqnr_db);
            assert!(l.sqnr_db > int8, "{}: {} dB alone vs {int8} dB all int8", l.name, l.sqnr_db);
        }
        // Ranked by SQNR, lowest first; each candidate exactly once; Detect convs are not candidates.
        assert!(report.layers.windows(2).all(|w| w[0].sqnr_db <= w[1].sqnr_db));
        let mut names: Vec<&str> = report.layers.iter().map(|l| l.name.as_str()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), candidates);
        assert!(!names.iter().any(|n| n.starts_with("model.24.")));
        // The suggestion keeps the three lowest-SQNR convs in float and quantizes the rest. (On this
        // random net that does not raise the SQNR — 17.0 dB all int8, 15.6 dB mixed: the errors of
        // the layers do not add up independently — so no improvement is asserted here; the
        // huge-channel test below asserts it where it must hold.)
        let sug = &report.suggestion;
        let top: Vec<String> = report.layers[..3].iter().map(|l| l.name.clone()).collect();
        assert_eq!(sug.keep_float, top);
        let mixed: Vec<bool> = model.convs.iter().map(|c| c.quantized && !top.contains(&c.name)).collect();
        assert_eq!(mixed.iter().filter(|q| **q).count(), candidates - 3);
        let want = reference.sqnr(&model.clone().with_quantized(&mixed).unwrap(), &xs).unwrap();
        assert!((sug.sqnr_db - want).abs() < 1e-9 && want < SQNR_CAP_DB, "{} vs {want}", sug.sqnr_db);
        eprintln!(
            "int8 {int8:.2} dB, mixed {:.2} dB, most sensitive {} {:.2} dB, least {} {:.2} dB",
            sug.sqnr_db,
            report.layers[0].name,
            report.layers[0].sqnr_db,
            report.layers[candidates - 1].name,
            report.layers[candidates - 1].sqnr_db
        );

        // Images on an autodiff device give the same numbers.
        let ad: Vec<Tensor<4>> = xs.iter().map(|x| x.clone().to_device(&device.clone().autodiff())).collect();
        let on_ad = sensitivity(&model, &ad, None, &no_map()).unwrap();
        assert!((on_ad.int8_sqnr_db - int8).abs() < 1e-9, "{} vs {int8}", on_ad.int8_sqnr_db);

        // Keeping every candidate in float is the float model; keeping more is an error.
        let all = SensitivityConfig { keep_float: candidates, with_map: false, rank_by_map: false };
        assert_eq!(sensitivity(&model, &xs, None, &all).unwrap().suggestion.sqnr_db, SQNR_CAP_DB);
        let too_many = SensitivityConfig { keep_float: candidates + 1, with_map: false, rank_by_map: false };
        let err = sensitivity(&model, &xs, None, &too_many).unwrap_err().to_string();
        assert!(err.contains("keep_float"), "{err}");
    }

    /// One output channel of a bottleneck's `cv1` is scaled ×1000 (folded weights and bias) and the
    /// matching input channel of its only consumer `cv2` by 1/1000: the float model computes nearly
    /// the same function (SiLU(1000·z)/1000 ≈ ReLU(z) on that channel), per-channel weight
    /// quantization does not mind, but the per-tensor quantizer of `cv1`'s output now spans a range
    /// ~1000× wider and wipes out the other channels. Exactly the two convs whose single-layer
    /// placement quantizes that value (`cv1` by its output, `cv2` by its input) must rank first,
    /// far below their SQNR in the unscaled model, and the suggestion must keep them in float.
    #[test]
    fn a_huge_activation_channel_ranks_its_convs_first() {
        let device = Device::flex();
        let xs = images(&device);
        let float = random_bn_model(&device).fold_bn();
        let (cv1, cv2) = ("model.6.m.0.cv1", "model.6.m.0.cv2");
        let index = |name: &str| float.convs.iter().position(|c| c.name == name).unwrap();
        let (t, u) = (index(cv1), index(cv2));
        // The graph as assumed: cv1's output value is read by cv2 only.
        let conv_out =
            |k: usize| float.graph.ops.iter().position(|op| matches!(op, Op::Conv { conv, .. } if *conv == k));
        let value = conv_out(t).unwrap() + 1;
        let readers: Vec<&Op> = float.graph.ops.iter().filter(|op| op.inputs().contains(&value)).collect();
        assert!(matches!(readers[..], [Op::Conv { conv, .. }] if *conv == u), "{readers:?}");
        let plain = sensitivity(&quantize(float.clone(), &xs), &xs, None, &no_map()).unwrap();

        let mut scaled = float;
        let co = scaled.convs[t].conv.weight.dims()[0];
        let c = co / 2;
        let factors = |f: f32, n: usize| {
            let mut v = vec![1.0f32; n];
            v[c] = f;
            Tensor::<1>::from_data(TensorData::new(v, [n]), &device)
        };
        {
            let conv = &mut scaled.convs[t].conv;
            let w = conv.weight.val() * factors(1000.0, co).reshape([co, 1, 1, 1]);
            conv.weight = Param::from_tensor(w);
            let b = conv.bias.as_ref().unwrap().val() * factors(1000.0, co);
            conv.bias = Some(Param::from_tensor(b));
            let conv = &mut scaled.convs[u].conv;
            assert_eq!((conv.weight.dims()[1], conv.groups), (co, 1));
            let w = conv.weight.val() * factors(1e-3, co).reshape([1, co, 1, 1]);
            conv.weight = Param::from_tensor(w);
        }
        let model = quantize(scaled, &xs);
        let (lo, hi) = model.value_ranges[value].unwrap();
        let (plo, phi) = quantize(random_bn_model(&device).fold_bn(), &xs).value_ranges[value].unwrap();
        assert!(hi - lo > 50.0 * (phi - plo), "range [{lo}, {hi}] vs [{plo}, {phi}] unscaled");
        let report = sensitivity(&model, &xs, None, &no_map()).unwrap();

        let mut top: Vec<&str> = report.layers[..2].iter().map(|l| l.name.as_str()).collect();
        top.sort_unstable();
        assert_eq!(top, [cv1, cv2], "{:?}", &report.layers[..4]);
        let sqnr = |r: &SensitivityReport, name: &str| r.layers.iter().find(|l| l.name == name).unwrap().sqnr_db;
        for name in [cv1, cv2] {
            let (s, p) = (sqnr(&report, name), sqnr(&plain, name));
            assert!(s < p - 10.0, "{name}: {s:.2} dB scaled vs {p:.2} dB");
        }
        // Keeping both in float recovers what int8 lost to them.
        assert!(report.suggestion.keep_float[..2].contains(&cv1.to_string()));
        assert!(report.suggestion.keep_float[..2].contains(&cv2.to_string()));
        let (mixed, int8) = (report.suggestion.sqnr_db, report.int8_sqnr_db);
        assert!(mixed > int8 + 3.0, "mixed {mixed:.2} dB vs int8 {int8:.2} dB");
        eprintln!(
            "scaled: {cv1} {:.2} dB (unscaled {:.2}), {cv2} {:.2} dB (unscaled {:.2}), third {} {:.2} dB; int8 {int8:.2}, mixed {mixed:.2}",
            sqnr(&report, cv1),
            sqnr(&plain, cv1),
            sqnr(&report, cv2),
            sqnr(&plain, cv2),
            report.layers[2].name,
            report.layers[2].sqnr_db
        );
    }

    #[test]
    fn bad_inputs_are_typed_errors() {
        let device = Device::flex();
        let xs = images(&device);
        let model = quantize(random_bn_model(&device), &xs);
        let check = |images: Vec<Tensor<4>>, want: &str| {
            let err = sensitivity(&model, &images, None, &no_map()).unwrap_err();
            assert!(matches!(err, QuantError::Option { name: "images", .. }), "{err:?}");
            assert!(err.to_string().contains(want), "{err}");
        };
        check(Vec::new(), "no images");
        check(vec![Tensor::zeros([0, 3, 64, 64], &device)], "empty");
        check(vec![Tensor::zeros([1, 1, 64, 64], &device)], "1 channels");
        check(vec![Tensor::zeros([1, 3, 64, 48], &device)], "stride 32");
        // Nothing quantized.
        let float = model.clone().with_quantized(&vec![false; model.convs.len()]).unwrap();
        let err = sensitivity(&float, &xs, None, &no_map()).unwrap_err();
        assert!(err.to_string().contains("no conv is quantized"), "{err}");
        // Quantized but never calibrated.
        let uncal = random_bn_model(&device);
        let sel = vec![true; uncal.convs.len()];
        let err = uncal.with_quantized(&sel).unwrap_err();
        assert!(err.to_string().contains("calibrate"), "{err}");
    }

    #[test]
    fn with_map_measures_every_layer_and_ranks_by_the_drop() {
        use std::sync::Arc;
        use yolo_compress_data::loader::LoaderConfig;
        use yolo_compress_data::synth::{Split, SynthConfig, SynthSource};
        let device = Device::flex();
        let cfg = SynthConfig { images: 0, val: 4, classes: 2, imgsz: 64, ..SynthConfig::default() };
        let src = Arc::new(SynthSource::new(cfg, Split::Val).unwrap());
        let loader = Loader::new(src, LoaderConfig { workers: 1, ..LoaderConfig::val(64, 4) }, &device).unwrap();
        let xs = images(&device);
        let model = quantize(random_bn_model(&device), &xs);
        let val = ValConfig::default();
        let by_map = SensitivityConfig { rank_by_map: true, ..SensitivityConfig::default() };
        let report = sensitivity(&model, &xs, Some((&loader, &val)), &by_map).unwrap();
        let in_unit = |v: Option<f64>| v.is_some_and(|v| (0.0..=1.0).contains(&v));
        assert!(in_unit(report.float_map50) && in_unit(report.float_map50_95));
        assert!(in_unit(report.int8_map50) && in_unit(report.int8_map50_95));
        assert!(in_unit(report.suggestion.map50_95));
        assert!(report.layers.iter().all(|l| in_unit(l.map50) && in_unit(l.map50_95)));
        // Largest drop first; equal drops by SQNR.
        for w in report.layers.windows(2) {
            let (a, b) = (w[0].map50_95.unwrap(), w[1].map50_95.unwrap());
            assert!(a < b || a == b && w[0].sqnr_db <= w[1].sqnr_db, "{} then {}", w[0].name, w[1].name);
        }
        assert!(report.map_drop(0).is_some());
        // The same measurement without mAP when `with_map` is off.
        let off = sensitivity(&model, &xs, Some((&loader, &val)), &no_map()).unwrap();
        assert!(off.float_map50.is_none() && off.layers.iter().all(|l| l.map50.is_none()));
    }

    #[test]
    fn write_sensitivity_writes_table_json_and_png() {
        let device = Device::flex();
        let xs = images(&device);
        let model = quantize(random_bn_model(&device), &xs);
        let report = sensitivity(&model, &xs, None, &no_map()).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("sens");
        let files = write_sensitivity(&report, &out).unwrap();
        let names: Vec<String> = files.iter().map(|p| p.file_name().unwrap().to_string_lossy().into_owned()).collect();
        assert_eq!(names, ["sensitivity.md", "sensitivity.json", "sensitivity.png"]);
        assert!(files.iter().all(|p| p.parent() == Some(out.as_path())));
        assert_eq!(std::fs::read_dir(&out).unwrap().count(), 3);

        let json: serde_json::Value = serde_json::from_slice(&std::fs::read(&files[1]).unwrap()).unwrap();
        let layers = json["layers"].as_array().unwrap();
        assert_eq!(layers.len(), model.quantized().iter().filter(|q| **q).count());
        assert_eq!(layers[0]["name"], report.layers[0].name.as_str());
        assert!(layers.iter().all(|l| l["sqnr_db"].is_f64() && l["map50_95"].is_null()));
        assert_eq!(json["suggestion"]["keep_float"].as_array().unwrap().len(), 3);
        assert!((json["int8_sqnr_db"].as_f64().unwrap() - report.int8_sqnr_db).abs() < 1e-9);

        let md = std::fs::read_to_string(&files[0]).unwrap();
        let rows = md.lines().filter(|l| l.starts_with("| ") && l.contains("`model.")).count();
        assert_eq!(rows, layers.len());
        assert!(md.contains(&format!("| 1 | `{}` |", report.layers[0].name)), "{md}");
        assert_eq!(md.matches("| float |").count(), 3 + 1, "{md}"); // three kept convs and the float row

        let png = std::fs::read(&files[2]).unwrap();
        assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
        let (w, h) =
            (u32::from_be_bytes(png[16..20].try_into().unwrap()), u32::from_be_bytes(png[20..24].try_into().unwrap()));
        assert_eq!((w, h), yolo_compress_train::plots::bars::bars_size(layers.len()));

        let empty = SensitivityReport { layers: Vec::new(), ..report };
        assert!(write_sensitivity(&empty, &dir.path().join("e")).is_err());
    }
}
