//! Native checkpoints: one safetensors file holding every tensor under its ultralytics key, with the
//! resolved [`Architecture`] (JSON) and free-form metadata in the header. Written atomically; loads
//! with no YAML, whatever the layer widths.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use burn::prelude::*;
use safetensors::tensor::TensorView;
use safetensors::{Dtype, SafeTensors};

use super::{StateDict, apply_state_dict, atomic_write};
use crate::arch::Architecture;
use crate::error::WeightsError;
use crate::model::YoloModel;
use crate::state::{Collector, NamedTensors};

/// Value of the `format` metadata key.
pub const CHECKPOINT_FORMAT: &str = "yolo-compress/1";

/// Key prefix of extra tensors stored beside the weights (training state: the raw model before EMA,
/// optimizer buffers, …). They are returned in [`Checkpoint::extra`] and never loaded as weights.
pub const EXTRA_PREFIX: &str = "extra/";

/// Extra tensors: `key → (shape, row-major values)`, keys without [`EXTRA_PREFIX`].
pub type ExtraTensors = BTreeMap<String, (Vec<usize>, Vec<f32>)>;

/// What a native checkpoint holds besides the tensors.
#[derive(Debug, Clone)]
pub struct Checkpoint {
    /// The resolved architecture.
    pub arch: Architecture,
    /// Whether BN was folded into the convs.
    pub fused: bool,
    /// Free-form metadata (producer, epoch, metrics, …).
    pub metadata: BTreeMap<String, String>,
    /// Extra tensors stored under [`EXTRA_PREFIX`] (empty for plain checkpoints).
    pub extra: ExtraTensors,
}

/// Saves `model` (which must come from an [`Architecture`]) with `metadata`, atomically.
pub fn save_checkpoint(
    model: &YoloModel,
    path: &Path,
    metadata: &BTreeMap<String, String>,
) -> Result<(), WeightsError> {
    save_checkpoint_with_extra(model, path, metadata, &ExtraTensors::new())
}

/// Like [`save_checkpoint`], with extra tensors stored under [`EXTRA_PREFIX`] in the same file (one
/// atomic write, so weights and training state never disagree).
pub fn save_checkpoint_with_extra(
    model: &YoloModel,
    path: &Path,
    metadata: &BTreeMap<String, String>,
    extra: &ExtraTensors,
) -> Result<(), WeightsError> {
    let ck_err = |m: &str| WeightsError::Checkpoint { path: path.to_path_buf(), message: m.to_string() };
    let arch = model.arch.as_ref().ok_or_else(|| ck_err("the model has no architecture record"))?;
    let mut col = Collector::default();
    model.clone().visit_tensors("model", &mut col)?;
    let extra_rows = extra.iter().map(|(k, (s, v))| (format!("{EXTRA_PREFIX}{k}"), s.clone(), v.clone()));
    let bytes: Vec<(String, Vec<usize>, Vec<u8>)> = col
        .tensors
        .into_iter()
        .chain(extra_rows)
        .map(|(k, s, v)| (k, s, v.iter().flat_map(|x| x.to_le_bytes()).collect()))
        .collect();
    let views = bytes
        .iter()
        .map(|(k, s, b)| TensorView::new(Dtype::F32, s.clone(), b).map(|v| (k.clone(), v)))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| ck_err(&e.to_string()))?;
    let mut meta: HashMap<String, String> = metadata.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    meta.insert("format".into(), CHECKPOINT_FORMAT.into());
    meta.insert("architecture".into(), serde_json::to_string(arch).map_err(|e| ck_err(&e.to_string()))?);
    meta.insert("fused".into(), model.is_fused().to_string());
    let data = safetensors::serialize(views, Some(meta)).map_err(|e| ck_err(&e.to_string()))?;
    atomic_write(path, &data).map_err(|source| WeightsError::Write { path: path.to_path_buf(), source })
}

/// Reads a native checkpoint's header and tensors.
pub fn read_checkpoint(path: &Path) -> Result<(Checkpoint, StateDict), WeightsError> {
    let ck_err = |m: String| WeightsError::Checkpoint { path: path.to_path_buf(), message: m };
    let data =
        std::fs::read(path).map_err(|e| WeightsError::Read { path: path.to_path_buf(), message: e.to_string() })?;
    let (_, header) = SafeTensors::read_metadata(&data).map_err(|e| ck_err(format!("not a safetensors file: {e}")))?;
    let meta = header.metadata().clone().unwrap_or_default();
    if meta.get("format").map(String::as_str) != Some(CHECKPOINT_FORMAT) {
        return Err(ck_err(format!("not a yolo-compress checkpoint (no `format: {CHECKPOINT_FORMAT}` metadata)")));
    }
    let arch_json = meta.get("architecture").ok_or_else(|| ck_err("no `architecture` metadata".into()))?;
    let arch: Architecture =
        serde_json::from_str(arch_json).map_err(|e| ck_err(format!("corrupt architecture record: {e}")))?;
    arch.validate()?;
    let st = SafeTensors::deserialize(&data).map_err(|e| ck_err(e.to_string()))?;
    let mut tensors = HashMap::new();
    let mut extra = ExtraTensors::new();
    for (name, view) in st.tensors() {
        if view.dtype() != Dtype::F32 {
            return Err(WeightsError::Dtype {
                path: path.to_path_buf(),
                key: name,
                dtype: format!("{:?}", view.dtype()),
            });
        }
        let values = view.data().chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect();
        match name.strip_prefix(EXTRA_PREFIX) {
            Some(k) => extra.insert(k.to_string(), (view.shape().to_vec(), values)),
            None => tensors.insert(name, (view.shape().to_vec(), values)),
        };
    }
    let fused = meta.get("fused").map(String::as_str) == Some("true");
    let metadata = meta.into_iter().filter(|(k, _)| k != "architecture" && k != "format" && k != "fused").collect();
    Ok((Checkpoint { arch, fused, metadata, extra }, StateDict { path: path.to_path_buf(), tensors }))
}

/// Loads a native checkpoint: builds the stored architecture and fills in its weights.
pub fn load_checkpoint(path: &Path, device: &Device) -> Result<(YoloModel, Checkpoint), WeightsError> {
    let (ck, sd) = read_checkpoint(path)?;
    let model = ck.arch.build(device)?;
    let model = apply_state_dict(model, &sd, device)?;
    Ok((model, ck))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extra_tensors_round_trip_beside_the_weights() {
        let device = Device::flex();
        let model = Architecture::from_name_or_path("yolov5n.yaml").unwrap().build(&device).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ck.safetensors");
        let mut extra = ExtraTensors::new();
        extra.insert("optim.model.0.conv.weight".into(), (vec![2, 2], vec![1.0, -2.0, 3.5, 0.25]));
        let meta = BTreeMap::from([("epoch".to_string(), "3".to_string())]);
        save_checkpoint_with_extra(&model, &path, &meta, &extra).unwrap();
        let (loaded, ck) = load_checkpoint(&path, &device).unwrap();
        assert_eq!(ck.extra, extra);
        assert_eq!(ck.metadata.get("epoch").map(String::as_str), Some("3"));
        assert_eq!(loaded.num_params(), model.num_params());
        // A plain checkpoint has no extras.
        save_checkpoint(&model, &path, &meta).unwrap();
        assert!(read_checkpoint(&path).unwrap().0.extra.is_empty());
    }
}
