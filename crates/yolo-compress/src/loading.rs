//! Resolving the `--model` / `--weights` arguments the way ultralytics users expect.
//!
//! - `--weights file.safetensors` (a native checkpoint) needs nothing else;
//! - `--weights file.pt` (a PyTorch state_dict) takes its architecture from `--model`, or, when that
//!   is absent, from the built-in config whose tensor shapes match the file;
//! - `--model name.yaml` alone builds a randomly initialised model;
//! - `--model checkpoint.safetensors` is the same as `--weights`.

use std::path::Path;

use burn::prelude::*;

use crate::model::arch::{BUILTIN_CONFIGS, BlockSpec, default_names};
use crate::model::weights::{
    self, StateDict, apply_state_dict, is_pytorch_path, load_checkpoint, read_pytorch_state_dict,
};
use crate::model::{ArchError, Architecture, WeightsError, YoloModel};

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

/// Resolves `--model` and `--weights` into a model on `device`.
pub fn load_model(
    model: Option<&str>,
    weights: Option<&Path>,
    classes: &ClassOverride,
    device: &Device,
) -> Result<Loaded, LoadError> {
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
