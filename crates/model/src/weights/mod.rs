//! Weights: ultralytics PyTorch state_dicts (`.pt`), native single-file checkpoints (safetensors
//! with the architecture in the metadata) and the state-dict application both share.

pub mod atomic;
pub mod checkpoint;
pub mod pytorch;

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use burn::prelude::*;

use crate::error::WeightsError;
use crate::model::{Backbone, Detector};
use crate::state::{NamedTensors, Slot, TensorVisitor};

pub use atomic::atomic_write;
pub use checkpoint::{
    CHECKPOINT_FORMAT, Checkpoint, EXTRA_PREFIX, ExtraTensors, load_checkpoint, read_checkpoint, save_checkpoint,
    save_checkpoint_with_extra,
};
pub use pytorch::read_pytorch_state_dict;

/// Tensors by state-dict key, converted to `f32`: `key → (shape, row-major values)`.
#[derive(Debug, Clone, Default)]
pub struct StateDict {
    /// Where the tensors came from (for error messages).
    pub path: PathBuf,
    /// The tensors.
    pub tensors: HashMap<String, (Vec<usize>, Vec<f32>)>,
}

/// Keys that are bookkeeping, not weights (ignored when loading).
fn is_bookkeeping(key: &str) -> bool {
    key.ends_with("num_batches_tracked")
}

impl StateDict {
    /// Whether the tensors come from a fused model (conv biases, no BN tensors).
    pub fn is_fused(&self) -> bool {
        !self.tensors.keys().any(|k| k.contains(".bn.")) && self.tensors.keys().any(|k| k.ends_with(".conv.bias"))
    }

    /// Removes a leading prefix (`module.` from DataParallel saves) from every key.
    pub fn strip_prefix(&mut self, prefix: &str) {
        if self.tensors.keys().all(|k| k.starts_with(prefix)) {
            self.tensors = std::mem::take(&mut self.tensors)
                .into_iter()
                .map(|(k, v)| (k[prefix.len()..].to_string(), v))
                .collect();
        }
    }
}

struct Applier<'a> {
    sd: &'a StateDict,
    used: HashSet<String>,
    device: Device,
}

impl TensorVisitor for Applier<'_> {
    fn visit(&mut self, key: &str, mut slot: Slot<'_>) -> Result<(), WeightsError> {
        let expected = slot.shape();
        let Some((shape, values)) = self.sd.tensors.get(key) else {
            return Err(WeightsError::Missing { path: self.sd.path.clone(), key: key.to_string(), expected });
        };
        if *shape != expected {
            return Err(WeightsError::Shape {
                path: self.sd.path.clone(),
                key: key.to_string(),
                found: shape.clone(),
                expected,
            });
        }
        slot.set(values.clone(), &self.device);
        self.used.insert(key.to_string());
        Ok(())
    }
}

/// Copies every tensor of `sd` into `model` (keys `model.{i}.…`), fusing the model first when the
/// state dict is fused. Missing, unexpected and mis-shaped tensors are errors naming the key.
pub fn apply_state_dict<B: Backbone>(
    model: Detector<B>,
    sd: &StateDict,
    device: &Device,
) -> Result<Detector<B>, WeightsError> {
    let mut model = if sd.is_fused() && !model.is_fused() { model.fuse() } else { model };
    let mut applier = Applier { sd, used: HashSet::new(), device: device.clone() };
    model.visit_tensors("model", &mut applier)?;
    let mut extra: Vec<_> = sd.tensors.keys().filter(|k| !applier.used.contains(*k) && !is_bookkeeping(k)).collect();
    extra.sort();
    if let Some(k) = extra.first() {
        return Err(WeightsError::Unexpected {
            path: sd.path.clone(),
            key: k.to_string(),
            shape: sd.tensors[*k].0.clone(),
        });
    }
    Ok(model)
}

/// Loads ultralytics weights or a native checkpoint into a model built from `model`'s architecture:
/// `.pt`/`.pth` files are read as PyTorch state dicts, anything else as a native checkpoint.
pub fn load_weights_into<B: Backbone>(
    model: Detector<B>,
    path: &Path,
    device: &Device,
) -> Result<Detector<B>, WeightsError> {
    let sd = if is_pytorch_path(path) { read_pytorch_state_dict(path)? } else { checkpoint::read_checkpoint(path)?.1 };
    apply_state_dict(model, &sd, device)
}

/// Whether a path names a PyTorch file (by extension).
pub fn is_pytorch_path(path: &Path) -> bool {
    matches!(path.extension().and_then(|e| e.to_str()), Some("pt" | "pth" | "bin"))
}
