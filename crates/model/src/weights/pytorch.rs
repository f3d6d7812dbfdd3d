//! Reading ultralytics weights saved as a PyTorch state_dict (`torch.save(model.state_dict())`),
//! unfused (Conv + BN) or fused (conv with bias), fp32/fp16/bf16/fp64 (converted to f32).
//!
//! Nothing in the file is ever executed: the pickle is parsed by a pure-Rust reader, and any pickle
//! that names a Python callable other than the tensor-rebuild functions of a state dict is refused.
//! A full ultralytics checkpoint (`{'model': DetectionModel, 'ema': …}`) is refused with the one-line
//! conversion to run in Python:
//!
//! ```text
//! python -c "import torch; ck = torch.load('yolov5s.pt', weights_only=False); torch.save((ck.get('ema') or ck['model']).float().state_dict(), 'yolov5s_sd.pt')"
//! ```

use std::collections::HashMap;
use std::path::Path;

use pytorch_reader::{DType, PickleValue, PytorchReader};

use super::StateDict;
use crate::error::WeightsError;

/// The conversion command printed when a full checkpoint is given instead of a state dict.
pub const CONVERSION_HINT: &str = "convert it in Python with: python -c \"import torch; ck = torch.load('IN.pt', weights_only=False); \
     torch.save((ck.get('ema') or ck['model']).float().state_dict(), 'OUT.pt')\" (run that only on files you trust)";

/// Walks the pickle and returns the first value naming something other than a tensor.
fn find_foreign(v: &PickleValue) -> Option<String> {
    match v {
        PickleValue::Unsupported(name) if name != "torch.Tensor" => Some(name.clone()),
        PickleValue::List(items) => items.iter().find_map(find_foreign),
        PickleValue::Dict(map) => map.values().find_map(find_foreign),
        _ => None,
    }
}

/// Reads a PyTorch state dict, refusing anything that is not one. Tensors become `f32`.
pub fn read_pytorch_state_dict(path: &Path) -> Result<StateDict, WeightsError> {
    let read_err = |m: String| WeightsError::Read { path: path.to_path_buf(), message: m };
    if !path.is_file() {
        return Err(read_err("no such file".into()));
    }
    let root = PytorchReader::read_pickle_data(path, None).map_err(|e| read_err(e.to_string()))?;
    let PickleValue::Dict(map) = &root else {
        let what = match &root {
            PickleValue::Unsupported(name) => name.clone(),
            other => format!("{other:?}").chars().take(40).collect(),
        };
        if let PickleValue::Unsupported(name) = &root
            && !name.starts_with("torch.")
            && !name.starts_with("models.")
        {
            return Err(WeightsError::UnsafePickle { path: path.to_path_buf(), callable: name.clone() });
        }
        return Err(WeightsError::NotStateDict {
            path: path.to_path_buf(),
            message: format!("its top level is `{what}`, not a dict of tensors; {CONVERSION_HINT}"),
        });
    };
    if ["model", "ema", "optimizer"].iter().any(|k| map.contains_key(*k)) {
        return Err(WeightsError::NotStateDict {
            path: path.to_path_buf(),
            message: format!("it is a full training checkpoint (keys: {:?}); {CONVERSION_HINT}", {
                let mut k: Vec<_> = map.keys().collect();
                k.sort();
                k
            }),
        });
    }
    if let Some(callable) = find_foreign(&root) {
        return Err(WeightsError::UnsafePickle { path: path.to_path_buf(), callable });
    }
    let reader = PytorchReader::new(path).map_err(|e| read_err(e.to_string()))?;
    let mut tensors = HashMap::new();
    for (key, t) in reader.tensors() {
        if key.ends_with("num_batches_tracked") {
            continue;
        }
        let bytes = t.read().map_err(|e| read_err(e.to_string()))?;
        let values = to_f32(&bytes, t.dtype()).ok_or_else(|| WeightsError::Dtype {
            path: path.to_path_buf(),
            key: key.clone(),
            dtype: format!("{:?}", t.dtype()),
        })?;
        tensors.insert(key.clone(), (t.shape().to_vec(), values));
    }
    let mut sd = StateDict { path: path.to_path_buf(), tensors };
    sd.strip_prefix("module.");
    Ok(sd)
}

/// Converts little-endian floating-point bytes to `f32` (integer dtypes are refused).
fn to_f32(bytes: &[u8], dtype: DType) -> Option<Vec<f32>> {
    Some(match dtype {
        DType::F32 => bytes.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect(),
        DType::F16 => bytes.chunks_exact(2).map(|c| half::f16::from_le_bytes([c[0], c[1]]).to_f32()).collect(),
        DType::BF16 => bytes.chunks_exact(2).map(|c| half::bf16::from_le_bytes([c[0], c[1]]).to_f32()).collect(),
        DType::F64 => {
            bytes.chunks_exact(8).map(|c| f64::from_le_bytes(c.try_into().expect("8 bytes")) as f32).collect()
        }
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn half_precision_converts() {
        let h: Vec<u8> = [1.5f32, -2.25].iter().flat_map(|v| half::f16::from_f32(*v).to_le_bytes()).collect();
        assert_eq!(to_f32(&h, DType::F16).unwrap(), vec![1.5, -2.25]);
        assert!(to_f32(&[0; 8], DType::I64).is_none());
    }
}
