//! Calibration and post-training quantization (PTQ).
//!
//! Calibration runs the float deployed graph over unlabelled images and feeds every value to its
//! own [`Observer`]; each value's clip range then comes from the chosen method (min-max, percentile,
//! MSE, entropy). [`ptq`] folds BN, calibrates, and quantizes the convs [`QuantConfig`] selects.

use burn::prelude::*;
use serde::{Deserialize, Serialize};
use yolo_compress_data::loader::Loader;
use yolo_compress_model::YoloModel;

use super::model::QuantModel;
use super::observer::{CalibMethod, Grid, Observer, ObserverConfig};
use crate::error::QuantError;

/// What to quantize and how to calibrate.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct QuantConfig {
    /// Calibration method and its settings (default: histogram MSE).
    pub calib: ObserverConfig,
    /// Symmetric activation grid (`[−127, 127]`, zero-point 0) instead of asymmetric `[0, 255]`.
    pub act_symmetric: bool,
    /// Quantize Detect's output convs too (float by default).
    pub quantize_detect: bool,
    /// Quantize the first conv (default true).
    pub quantize_first: bool,
    /// Convs forced to int8 (name prefixes: `model.24`, `model.2.m.0`, or a bare layer index `2`).
    pub include: Vec<String>,
    /// Convs kept in float (same patterns); wins over the defaults, loses to `include`.
    pub exclude: Vec<String>,
}

impl Default for QuantConfig {
    fn default() -> Self {
        QuantConfig {
            // Histogram MSE: the best PTQ mAP in docs/quantization.md's study (as in NVIDIA's).
            calib: ObserverConfig { method: CalibMethod::Mse, ..ObserverConfig::default() },
            act_symmetric: false,
            quantize_detect: false,
            quantize_first: true,
            include: Vec::new(),
            exclude: Vec::new(),
        }
    }
}

impl QuantConfig {
    /// The activation grid.
    pub fn act_grid(&self) -> Grid {
        Grid { symmetric: self.act_symmetric, bits: 8 }
    }
}

fn normalize(pattern: &str) -> String {
    let p = pattern.trim();
    if p.chars().next().is_some_and(|c| c.is_ascii_digit()) { format!("model.{p}") } else { p.to_string() }
}

fn matches(name: &str, pattern: &str) -> bool {
    name == pattern || name.strip_prefix(pattern).is_some_and(|rest| rest.starts_with('.'))
}

/// Which convs (by name, in graph order) are quantized under `cfg`: all but Detect's (unless
/// `quantize_detect`) and the first (unless `quantize_first`), minus `exclude`, plus `include`.
/// A pattern that matches no conv is an error naming it.
pub fn select_convs(names: &[String], cfg: &QuantConfig) -> Result<Vec<bool>, QuantError> {
    let detect_prefix = names.last().and_then(|n| n.rsplit_once(".m.").map(|(p, _)| p.to_string()));
    let mut sel: Vec<bool> = names
        .iter()
        .enumerate()
        .map(|(i, n)| {
            let is_detect = detect_prefix.as_deref().is_some_and(|p| matches(n, p));
            (cfg.quantize_first || i != 0) && (cfg.quantize_detect || !is_detect)
        })
        .collect();
    for (list, value, option) in [(&cfg.exclude, false, "exclude"), (&cfg.include, true, "include")] {
        for pattern in list {
            let p = normalize(pattern);
            let mut hit = false;
            for (s, n) in sel.iter_mut().zip(names) {
                if matches(n, &p) {
                    *s = value;
                    hit = true;
                }
            }
            if !hit {
                return Err(QuantError::Option {
                    name: option,
                    msg: format!("`{pattern}` matches no conv (names look like {})", names.first().map_or("", |n| n)),
                });
            }
        }
    }
    Ok(sel)
}

/// Runs `model` in float over `batches` and returns the clip range of every value for `grid`
/// (`None` for values never computed).
pub fn calibrate<I>(model: &QuantModel, batches: I, cfg: &ObserverConfig, grid: Grid) -> Vec<Option<(f32, f32)>>
where
    I: IntoIterator<Item = Tensor<4>>,
{
    let mut observers: Vec<Observer> = (0..model.graph.num_values()).map(|_| Observer::new(cfg.clone())).collect();
    for x in batches {
        model.forward_tap(x, &mut |v, t| {
            if let Ok(values) = t.clone().into_data().convert::<f32>().try_to_vec::<f32>() {
                observers[v].observe(&values);
            }
        });
    }
    observers.iter().map(|o| o.range(grid)).collect()
}

/// The images of the first batches of `loader`'s epoch 0, up to `max_images` in total.
pub fn loader_images(loader: &Loader, max_images: usize) -> Result<Vec<Tensor<4>>, QuantError> {
    let mut out = Vec::new();
    let mut seen = 0;
    let mut epoch = loader.epoch(0);
    while seen < max_images {
        let Some(batch) = epoch.next() else { break };
        let batch = batch.map_err(yolo_compress_train::TrainError::from)?;
        let n = batch.images.dims()[0].min(max_images - seen);
        out.push(batch.images.narrow(0, 0, n));
        seen += n;
    }
    if out.is_empty() {
        return Err(QuantError::Option { name: "calib", msg: "no calibration images".into() });
    }
    Ok(out)
}

/// Calibrates `model` (BN folded or not: eval-mode BN equals the folded conv) on `batches` with
/// `cfg`'s method and grid, and quantizes the convs `cfg` selects: the start of PTQ and of QAT.
pub fn calibrated<I>(model: QuantModel, batches: I, cfg: &QuantConfig) -> Result<QuantModel, QuantError>
where
    I: IntoIterator<Item = Tensor<4>>,
{
    let grid = cfg.act_grid();
    let sel = select_convs(&model.conv_names(), cfg)?;
    let ranges = calibrate(&model, batches, &cfg.calib, grid);
    model.with_value_ranges(ranges, grid).with_quantized(&sel)
}

/// Post-training quantization: folds BN, calibrates on `batches`, and quantizes the convs `cfg`
/// selects. The result runs on `model`'s device.
pub fn ptq<I>(model: &YoloModel, batches: I, cfg: &QuantConfig) -> Result<QuantModel, QuantError>
where
    I: IntoIterator<Item = Tensor<4>>,
{
    calibrated(QuantModel::from_model(model)?.fold_bn(), batches, cfg)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names() -> Vec<String> {
        ["model.0", "model.2.cv1", "model.2.m.0.cv1", "model.20.cv1", "model.24.m.0", "model.24.m.1"]
            .iter()
            .map(|s| s.to_string())
            .collect()
    }

    #[test]
    fn default_selection_keeps_detect_in_float() {
        let sel = select_convs(&names(), &QuantConfig::default()).unwrap();
        assert_eq!(sel, [true, true, true, true, false, false]);
        let cfg = QuantConfig { quantize_first: false, quantize_detect: true, ..Default::default() };
        assert_eq!(select_convs(&names(), &cfg).unwrap(), [false, true, true, true, true, true]);
    }

    #[test]
    fn include_and_exclude_match_by_prefix_and_index() {
        let cfg = QuantConfig {
            exclude: vec!["2".into()],
            include: vec!["model.24.m.1".into(), "model.2.m.0".into()],
            ..Default::default()
        };
        // `2` must not match `model.20`; include wins over exclude.
        assert_eq!(select_convs(&names(), &cfg).unwrap(), [true, false, true, true, false, true]);
        let bad = QuantConfig { exclude: vec!["model.3".into()], ..Default::default() };
        let err = select_convs(&names(), &bad).unwrap_err().to_string();
        assert!(err.contains("model.3") && err.contains("exclude"), "{err}");
    }
}
