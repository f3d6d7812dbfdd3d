//! [`quantize`]: post-training quantization or quantization-aware training end to end, the entry
//! point of `ycomp quantize` and the examples.
//!
//! - **PTQ**: BN folded, every value calibrated on unlabelled images, the selected convs quantized
//!   ([`ptq`]).
//! - **QAT**: the float graph with BN *unfolded* is calibrated the same way, the selected convs are
//!   fake-quantized, and the model is fine-tuned with the YOLOv5 loss ([`qat`]); BN is folded at
//!   the end so that the result is the same kind of model PTQ gives.
//!
//! Optionally a per-layer [sensitivity] analysis runs on the PTQ-calibrated, BN-folded model (for
//! QAT too: it describes how the float model tolerates int8, before any fine-tuning).

use std::fmt;
use std::str::FromStr;

use burn::prelude::*;
use serde::{Deserialize, Serialize};
use yolo_compress_data::loader::Loader;
use yolo_compress_model::YoloModel;
use yolo_compress_train::val::ValConfig;

use super::calibrate::{QuantConfig, calibrated, ptq};
use super::model::QuantModel;
use super::qat::{QatConfig, QatEpoch, qat};
use super::sensitivity::{SensitivityConfig, SensitivityReport, sensitivity};
use crate::error::QuantError;

/// How the int8 model is obtained.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum QuantMethod {
    /// Post-training quantization: calibration only, no training.
    Ptq,
    /// Quantization-aware training: calibration, then fine-tuning through the fake quantizers.
    Qat,
}

impl QuantMethod {
    /// Every method, in declaration order.
    pub const ALL: [QuantMethod; 2] = [QuantMethod::Ptq, QuantMethod::Qat];

    /// The method's name: `"ptq"` or `"qat"` (also its serde name).
    pub fn name(self) -> &'static str {
        match self {
            QuantMethod::Ptq => "ptq",
            QuantMethod::Qat => "qat",
        }
    }
}

impl FromStr for QuantMethod {
    type Err = String;

    /// Parses `ptq` or `qat` (case-insensitive, surrounding blanks ignored).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let wanted = s.trim().to_ascii_lowercase();
        QuantMethod::ALL
            .into_iter()
            .find(|m| m.name() == wanted)
            .ok_or_else(|| format!("unknown quantization method `{s}`; expected one of: ptq, qat"))
    }
}

impl fmt::Display for QuantMethod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Settings of [`quantize`].
#[derive(Clone, Debug)]
pub struct QuantizeConfig {
    /// PTQ or QAT.
    pub method: QuantMethod,
    /// Calibration method, activation grid and conv selection (both methods).
    pub quant: QuantConfig,
    /// Fine-tuning settings (QAT only).
    pub qat: QatConfig,
    /// Per-layer sensitivity analysis (`None`: skipped).
    pub sensitivity: Option<SensitivityConfig>,
}

impl Default for QuantizeConfig {
    /// PTQ with the default [`QuantConfig`], no sensitivity analysis.
    fn default() -> Self {
        QuantizeConfig {
            method: QuantMethod::Ptq,
            quant: QuantConfig::default(),
            qat: QatConfig::default(),
            sensitivity: None,
        }
    }
}

/// What [`quantize`] returns.
pub struct QuantizeOutcome {
    /// The int8 model, BN folded: ready for [`save_int8`](super::checkpoint::save_int8) and for
    /// validation / prediction (it implements `DetectionModel`).
    pub model: QuantModel,
    /// One record per QAT epoch (empty for PTQ).
    pub qat_epochs: Vec<QatEpoch>,
    /// The sensitivity report, when asked for.
    pub sensitivity: Option<SensitivityReport>,
}

/// Quantizes `model` to int8.
///
/// - `calib`: unlabelled calibration batches `[B, 3, H, W]` in `0..1` on `model`'s device (at least
///   one);
/// - `train`: training batches, required for [`QuantMethod::Qat`] (an error otherwise);
/// - `eval`: labelled held-out batches and validation settings: the per-epoch mAP of QAT and the
///   per-layer mAP of the sensitivity analysis (both skipped without it);
/// - `device`: where QAT trains (its autodiff twin is used).
///
/// The model keeps `model`'s device for PTQ; for QAT it ends on `device`.
pub fn quantize(
    model: &YoloModel,
    calib: &[Tensor<4>],
    train: Option<&Loader>,
    eval: Option<(&Loader, &ValConfig)>,
    cfg: &QuantizeConfig,
    device: &Device,
) -> Result<QuantizeOutcome, QuantError> {
    if calib.is_empty() {
        return Err(QuantError::Option { name: "calib", msg: "no calibration images".into() });
    }
    let sens = |q: &QuantModel| -> Result<Option<SensitivityReport>, QuantError> {
        cfg.sensitivity.as_ref().map(|s| sensitivity(q, calib, eval, s)).transpose()
    };
    match cfg.method {
        QuantMethod::Qat => {
            let train = train.ok_or_else(|| QuantError::Option {
                name: "method",
                msg: "qat needs labelled training data (a dataset YAML), not only calibration images".into(),
            })?;
            // Calibrate the float graph once, BN unfolded (eval-mode BN equals the folded conv).
            let start = calibrated(QuantModel::from_model(model)?, calib.iter().cloned(), &cfg.quant)?;
            let report = if cfg.sensitivity.is_some() { sens(&start.clone().fold_bn())? } else { None };
            let outcome = qat(start, train, eval.map(|(l, _)| l), &cfg.qat, device)?;
            let model = outcome.model.with_observers(None).fold_bn();
            Ok(QuantizeOutcome { model, qat_epochs: outcome.epochs, sensitivity: report })
        }
        QuantMethod::Ptq => {
            let q = ptq(model, calib.iter().cloned(), &cfg.quant)?;
            let report = sens(&q)?;
            Ok(QuantizeOutcome { model: q, qat_epochs: Vec::new(), sensitivity: report })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use yolo_compress_model::Architecture;

    #[test]
    fn method_names_round_trip_and_errors_list_the_choices() {
        for m in QuantMethod::ALL {
            assert_eq!(m.to_string().parse::<QuantMethod>().unwrap(), m);
            assert_eq!(serde_json::to_string(&m).unwrap(), format!("\"{m}\""));
        }
        assert_eq!(" QAT ".parse::<QuantMethod>().unwrap(), QuantMethod::Qat);
        let err = "int4".parse::<QuantMethod>().unwrap_err();
        assert!(err.contains("int4") && err.contains("ptq, qat"), "{err}");
    }

    fn tiny() -> (YoloModel, Vec<Tensor<4>>) {
        let device = Device::flex();
        device.seed(1);
        let arch = Architecture::from_name_or_path("yolov5n.yaml").unwrap().with_classes(vec!["a".into()]);
        let model = arch.build(&device).unwrap();
        let x = Tensor::<4>::random([2, 3, 64, 64], burn::tensor::Distribution::Uniform(0.0, 1.0), &device);
        (model, vec![x])
    }

    #[test]
    fn qat_without_training_data_is_a_typed_error() {
        let (model, calib) = tiny();
        let cfg = QuantizeConfig { method: QuantMethod::Qat, ..Default::default() };
        let err = quantize(&model, &calib, None, None, &cfg, &Device::flex()).err().expect("an error");
        assert!(matches!(err, QuantError::Option { name: "method", .. }), "{err}");
        assert!(err.to_string().contains("training data"), "{err}");
        let none = quantize(&model, &[], None, None, &QuantizeConfig::default(), &Device::flex()).err();
        assert!(matches!(none, Some(QuantError::Option { name: "calib", .. })));
    }

    #[test]
    fn ptq_quantizes_the_default_selection_and_skips_qat() {
        let (model, calib) = tiny();
        let out = quantize(&model, &calib, None, None, &QuantizeConfig::default(), &Device::flex()).unwrap();
        assert!(out.qat_epochs.is_empty() && out.sensitivity.is_none());
        let names = out.model.conv_names();
        let q = out.model.quantized();
        assert!(out.model.convs.iter().all(|c| c.bn.is_none()), "BN is folded");
        for (n, q) in names.iter().zip(&q) {
            assert_eq!(*q, !n.starts_with("model.24."), "{n}");
        }
        // A bad pattern surfaces as the selection's error.
        let bad = QuantizeConfig {
            quant: QuantConfig { exclude: vec!["model.99".into()], ..Default::default() },
            ..Default::default()
        };
        let err = quantize(&model, &calib, None, None, &bad, &Device::flex()).err().expect("an error");
        assert!(err.to_string().contains("model.99"), "{err}");
    }
}
