//! Resolving the `--model` / `--weights` arguments the way ultralytics users expect.
//!
//! - `--weights file.safetensors` (a native checkpoint) needs nothing else;
//! - `--weights file.pt` (a PyTorch state_dict) takes its architecture from `--model`, or, when that
//!   is absent, from the built-in config whose tensor shapes match the file;
//! - `--model name.yaml` alone builds a randomly initialised model;
//! - `--model checkpoint.safetensors` is the same as `--weights`;
//! - an int8 checkpoint (`ycomp quantize`) loads with [`load_any_model`] as a [`QuantModel`] that
//!   runs with simulated int8 arithmetic; [`load_model`] (float models only) refuses it by name.

use std::path::Path;

use burn::prelude::*;

use crate::compress::QuantError;
use crate::compress::quant::QuantModel;
use crate::compress::quant::checkpoint::{is_int8_checkpoint, load_int8};
use crate::model::arch::{BUILTIN_CONFIGS, BlockSpec, default_names};
use crate::model::weights::{
    self, StateDict, apply_state_dict, is_pytorch_path, load_checkpoint, read_pytorch_state_dict,
};
use crate::model::{ArchError, Architecture, DetectionModel, DetectorOutput, WeightsError, YoloModel};

/// Why a model could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// Bad architecture.
    #[error(transparent)]
    Arch(#[from] ArchError),
    /// Bad weights.
    #[error(transparent)]
    Weights(#[from] WeightsError),
    /// Nothing to load.
    #[error("give --model (a built-in config, a YAML file or a checkpoint) and/or --weights")]
    NothingGiven,
    /// No built-in config fits a state dict given without `--model`.
    #[error("{0}: no built-in config matches this state_dict's tensor shapes; pass --model with its YAML")]
    NoMatchingConfig(String),
    /// An int8 checkpoint was given where a float model is needed.
    #[error(
        "{0}: an int8 checkpoint (from `ycomp quantize`) cannot be used here; give the float checkpoint it was made from"
    )]
    Int8NotSupported(String),
    /// An int8 checkpoint could not be read.
    #[error(transparent)]
    Quant(#[from] QuantError),
}

/// A loaded model and where it came from.
pub struct Loaded {
    /// The model (unfused unless the weights were fused).
    pub model: YoloModel,
    /// Human-readable origin (config name and weights file).
    pub origin: String,
}

/// Options for class overrides.
#[derive(Debug, Clone, Default)]
pub struct ClassOverride {
    /// Number of classes (`--nc`).
    pub nc: Option<usize>,
    /// Class names (`--names`).
    pub names: Option<Vec<String>>,
}

impl ClassOverride {
    fn apply(&self, arch: Architecture) -> Architecture {
        match (&self.names, self.nc) {
            (Some(names), _) => arch.with_classes(names.clone()),
            (None, Some(nc)) if nc != arch.nc => arch.with_classes(default_names(nc)),
            _ => arch,
        }
    }
}

fn is_checkpoint(path: &str) -> bool {
    Path::new(path).is_file() && matches!(Path::new(path).extension().and_then(|e| e.to_str()), Some("safetensors"))
}

/// Number of classes implied by a state dict's first Detect conv (`na·(nc+5)` outputs, 3 anchors).
fn state_dict_nc(sd: &StateDict, arch: &Architecture) -> Option<usize> {
    let d = arch.layers.len() - 1;
    let BlockSpec::Detect { anchors, .. } = &arch.layers[d].block else { return None };
    let na = anchors.first()?.len();
    let (shape, _) = sd.tensors.get(&format!("model.{d}.m.0.weight"))?;
    (shape[0] % na == 0 && shape[0] / na > 5).then(|| shape[0] / na - 5)
}

/// Finds the built-in config whose layers fit `sd` (checked cheaply on the stem width first).
fn infer_arch(sd: &StateDict, device: &Device) -> Result<YoloModel, LoadError> {
    for (name, _) in BUILTIN_CONFIGS {
        let arch = Architecture::from_name_or_path(name)?;
        let Some((shape, _)) = sd.tensors.get("model.0.conv.weight") else { break };
        if shape.first() != Some(&arch.layers[0].out_channels) {
            continue;
        }
        let Some(nc) = state_dict_nc(sd, &arch) else { continue };
        let arch = if nc == arch.nc { arch } else { arch.with_classes(default_names(nc)) };
        if let Ok(model) = apply_state_dict(arch.build(device)?, sd, device) {
            return Ok(model);
        }
    }
    Err(LoadError::NoMatchingConfig(sd.path.display().to_string()))
}

/// A float or an int8 model: what `ycomp val`, `detect` and `bench` run. Both kinds implement
/// [`DetectionModel`], so validation and [`Predictor`](crate::predict::Predictor) take either.
#[derive(Debug, Clone)]
pub enum LoadedModel {
    /// A float model (as loaded: BN not folded unless the weights were fused).
    Float(YoloModel),
    /// An int8 model executed with simulated int8 arithmetic (BN folded).
    Int8(QuantModel),
}

impl LoadedModel {
    /// Whether this is an int8 model.
    pub fn is_int8(&self) -> bool {
        matches!(self, LoadedModel::Int8(_))
    }

    /// Number of parameters (int8 weights count once each).
    pub fn num_params(&self) -> usize {
        use burn::module::Module as _;
        match self {
            LoadedModel::Float(m) => m.num_params(),
            LoadedModel::Int8(m) => m.num_params(),
        }
    }

    /// Folds BN into the convs of a float model (int8 models are folded already).
    pub fn fuse(self) -> Self {
        match self {
            LoadedModel::Float(m) => LoadedModel::Float(m.fuse()),
            q => q,
        }
    }
}

impl From<YoloModel> for LoadedModel {
    fn from(m: YoloModel) -> Self {
        LoadedModel::Float(m)
    }
}

impl From<QuantModel> for LoadedModel {
    fn from(m: QuantModel) -> Self {
        LoadedModel::Int8(m)
    }
}

impl DetectionModel for LoadedModel {
    fn forward(&self, x: Tensor<4>) -> DetectorOutput {
        match self {
            LoadedModel::Float(m) => m.forward(x),
            LoadedModel::Int8(m) => DetectionModel::forward(m, x),
        }
    }

    fn nc(&self) -> usize {
        match self {
            LoadedModel::Float(m) => m.nc(),
            LoadedModel::Int8(m) => DetectionModel::nc(m),
        }
    }

    fn names(&self) -> &[String] {
        match self {
            LoadedModel::Float(m) => &m.names,
            LoadedModel::Int8(m) => DetectionModel::names(m),
        }
    }

    fn max_stride(&self) -> usize {
        match self {
            LoadedModel::Float(m) => m.max_stride(),
            LoadedModel::Int8(m) => DetectionModel::max_stride(m),
        }
    }
}

/// A loaded float or int8 model and where it came from.
pub struct LoadedAny {
    /// The model.
    pub model: LoadedModel,
    /// Human-readable origin (config name and weights file).
    pub origin: String,
    /// Metadata of an int8 checkpoint (empty for float models).
    pub metadata: std::collections::BTreeMap<String, String>,
}

/// Like [`load_model`], but an int8 checkpoint (given as `--weights` or as `--model`) loads too, as
/// [`LoadedModel::Int8`]. Class overrides do not apply to checkpoints (they carry their classes).
pub fn load_any_model(
    model: Option<&str>,
    weights: Option<&Path>,
    classes: &ClassOverride,
    device: &Device,
) -> Result<LoadedAny, LoadError> {
    let int8 = weights.or_else(|| model.map(Path::new)).filter(|p| p.is_file() && is_int8_checkpoint(p));
    if let Some(path) = int8 {
        let (q, metadata) = load_int8(path, device)?;
        return Ok(LoadedAny { model: LoadedModel::Int8(q), origin: format!("{} (int8)", path.display()), metadata });
    }
    let loaded = load_model(model, weights, classes, device)?;
    Ok(LoadedAny { model: LoadedModel::Float(loaded.model), origin: loaded.origin, metadata: Default::default() })
}

/// Resolves `--model` and `--weights` into a float model on `device` (an int8 checkpoint is an
/// error naming it: use [`load_any_model`] where int8 models are welcome).
pub fn load_model(
    model: Option<&str>,
    weights: Option<&Path>,
    classes: &ClassOverride,
    device: &Device,
) -> Result<Loaded, LoadError> {
    for p in weights.into_iter().chain(model.map(Path::new)) {
        if p.is_file() && is_int8_checkpoint(p) {
            return Err(LoadError::Int8NotSupported(p.display().to_string()));
        }
    }
    if let Some(m) = model.filter(|m| is_checkpoint(m))
        && weights.is_none()
    {
        let (model, _) = load_checkpoint(Path::new(m), device)?;
        return Ok(Loaded { model, origin: m.to_string() });
    }
    match (model, weights) {
        (None, None) => Err(LoadError::NothingGiven),
        (Some(m), None) => {
            let arch = classes.apply(Architecture::from_name_or_path(m)?);
            Ok(Loaded { model: arch.build(device)?, origin: format!("{m} (random init)") })
        }
        (_, Some(w)) if !is_pytorch_path(w) => {
            let (model, _) = load_checkpoint(w, device)?;
            Ok(Loaded { model, origin: w.display().to_string() })
        }
        (Some(m), Some(w)) => {
            let sd = read_pytorch_state_dict(w)?;
            let mut arch = Architecture::from_name_or_path(m)?;
            if classes.nc.is_none()
                && classes.names.is_none()
                && let Some(nc) = state_dict_nc(&sd, &arch).filter(|&nc| nc != arch.nc)
            {
                arch = arch.with_classes(default_names(nc));
            }
            let arch = classes.apply(arch);
            let model = apply_state_dict(arch.build(device)?, &sd, device)?;
            Ok(Loaded { model, origin: format!("{m} + {}", w.display()) })
        }
        (None, Some(w)) => {
            let sd = read_pytorch_state_dict(w)?;
            let model = infer_arch(&sd, device)?;
            let name = model.arch.as_ref().map_or("?", |a| a.name.as_str()).to_string();
            Ok(Loaded { model, origin: format!("{name}.yaml (inferred) + {}", w.display()) })
        }
    }
}

/// Re-exported for callers that load a weights file into an existing model.
pub use weights::load_weights_into;
