//! Int8 checkpoints: a quantized model stored with int8 weights, about 4× smaller than its float
//! checkpoint, and loaded back to the same fake-quantized model.
//!
//! One safetensors file, written atomically. For every conv of the deployed graph (names from
//! [`QConv::name`](super::qconv::QConv::name), BN folded with the running statistics):
//!
//! - quantized convs: `{name}.weight` as `I8` `[c_out, c_in/g, kh, kw]` holding the levels
//!   `clamp(round(w / s_c), −127, 127)` and `{name}.weight_scale` `F32` `[c_out]` holding
//!   `s_c = max|w_c| / 127` — exactly what [`super::fake::fake_quant_weight`] uses, so `level · s_c`
//!   is bit-identical to the weight the fake-quantized model runs with (after loading, the model
//!   re-derives `s_c` from these weights, equal up to one ulp, and lands on the same levels);
//! - float convs: `{name}.weight` `F32`;
//! - every conv: `{name}.bias` `F32` `[c_out]` (the folded bias).
//!
//! Plus `act_ranges` `F32` `[G, 2]`: the clip range `[lo, hi]` in use by each activation quantizer
//! (scale and zero-point follow from it and the grid, see [`super::fake::QParams::from_range`]).
//! Header metadata: `format` ([`INT8_FORMAT`]), `architecture` (the resolved [`Architecture`] as
//! JSON, as native float checkpoints store it), `names` (the conv names in graph order, JSON),
//! `quantized` (JSON `[bool]` per conv), `act_grid` (JSON `{"symmetric", "bits"}`), `value_ranges`
//! (the calibrated range of every graph value, JSON, so quantizers can be re-placed — sensitivity,
//! mixed precision — after loading), and the caller's own keys.
//!
//! # Why Burn's quantized tensors are not the storage
//!
//! Burn 0.22.1 (`burn-std` / `cubecl-common` 0.11 `QuantScheme`) quantizes with
//! `QuantMode::Symmetric` only (no zero-point, so asymmetric activation grids do not fit) and sets
//! per-block scales with a `BlockSize` of at most five dimensions of at most 255 elements each
//! (`u8`), the tensor having to be a whole number of blocks along every axis. A per-output-channel
//! weight scale is the block `[1, c_in/g, kh, kw]`: it fits while `c_in/g ≤ 255`, but not for the
//! wider convs every YOLOv5 has (yolov5n's SPPF `cv2` reads 512 channels, yolov5s convs up to
//! 1024), where Burn could only repeat the channel's scale over sub-blocks. Burn's quantized tensor
//! data is also a Burn-specific byte layout (levels, then the scales appended) with no safetensors
//! dtype, while `I8` levels plus an `F32` scale vector are readable by any safetensors tool or int8
//! engine; and the model itself runs its convs on float weights (fake quantization), so loading
//! dequantizes in any case — `level as f32 · s_c`, the same product Burn's `dequantize` forms.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::Read;
use std::path::Path;

use burn::module::Param;
use burn::prelude::*;
use safetensors::tensor::TensorView;
use safetensors::{Dtype, SafeTensors};
use serde::{Deserialize, Serialize};
use yolo_compress_model::weights::{CHECKPOINT_FORMAT, atomic_write};
use yolo_compress_model::{Architecture, WeightsError};

use super::intref::quantize_weight_int8;
use super::model::{ActQuant, QuantModel};
use super::observer::Grid;
use crate::error::QuantError;

/// Value of the `format` metadata key of an int8 checkpoint.
pub const INT8_FORMAT: &str = "yolo-compress-int8/1";

/// Name of the activation-range tensor `[G, 2]`.
pub const ACT_RANGES: &str = "act_ranges";

/// Metadata keys written by [`save_int8`]; callers' keys with these names are replaced.
pub const RESERVED_KEYS: [&str; 6] = ["format", "architecture", "names", "quantized", "act_grid", "value_ranges"];

#[derive(Serialize, Deserialize)]
struct GridRecord {
    symmetric: bool,
    bits: u32,
}

fn ck_err(path: &Path, msg: impl Into<String>) -> QuantError {
    QuantError::Checkpoint { path: path.to_path_buf(), msg: msg.into() }
}

fn host_f32<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.into_data().try_into_vec_as::<f32>().unwrap_or_default()
}

fn f32_bytes(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

fn to_json<T: Serialize>(v: &T, err: &dyn Fn(String) -> QuantError) -> Result<String, QuantError> {
    serde_json::to_string(v).map_err(|e| err(e.to_string()))
}

/// The JSON metadata record `key`.
fn field<T: serde::de::DeserializeOwned>(
    meta: &HashMap<String, String>,
    key: &str,
    err: &dyn Fn(String) -> QuantError,
) -> Result<T, QuantError> {
    let s = meta.get(key).ok_or_else(|| err(format!("no `{key}` metadata")))?;
    serde_json::from_str(s).map_err(|e| err(format!("corrupt `{key}` metadata: {e}")))
}

/// Saves `model` as an int8 checkpoint at `path` (see the module docs for the layout), atomically;
/// returns the bytes written. BN still present (a model straight from QAT) is folded with its
/// running statistics first; learned activation ranges are stored as the ranges in use.
pub fn save_int8(model: &QuantModel, path: &Path, metadata: &BTreeMap<String, String>) -> Result<u64, QuantError> {
    let err = |m: String| ck_err(path, m);
    // (key, dtype, shape, little-endian bytes)
    let mut rows: Vec<(String, Dtype, Vec<usize>, Vec<u8>)> = Vec::with_capacity(3 * model.convs.len() + 1);
    for c in &model.convs {
        let (w, b) = c.folded();
        let dims = w.dims().to_vec();
        if c.quantized {
            let (levels, scales) = quantize_weight_int8(w);
            rows.push((format!("{}.weight", c.name), Dtype::I8, dims, levels.iter().map(|&q| q as u8).collect()));
            rows.push((format!("{}.weight_scale", c.name), Dtype::F32, vec![scales.len()], f32_bytes(&scales)));
        } else {
            rows.push((format!("{}.weight", c.name), Dtype::F32, dims, f32_bytes(&host_f32(w))));
        }
        let b = host_f32(b);
        rows.push((format!("{}.bias", c.name), Dtype::F32, vec![b.len()], f32_bytes(&b)));
    }
    if let Some((v, r)) = model
        .value_ranges
        .iter()
        .enumerate()
        .find(|(_, r)| r.is_some_and(|(lo, hi)| !(lo.is_finite() && hi.is_finite())))
    {
        return Err(err(format!("value {v} has a non-finite calibrated range {r:?}")));
    }
    let ranges: Vec<f32> = model
        .acts
        .iter()
        .flat_map(|a| {
            let (lo, hi) = a.host_range();
            [lo, hi]
        })
        .collect();
    if let Some(r) = ranges.iter().find(|r| !r.is_finite()) {
        return Err(err(format!("an activation range is not finite ({r})")));
    }
    rows.push((ACT_RANGES.into(), Dtype::F32, vec![model.acts.len(), 2], f32_bytes(&ranges)));
    let views = rows
        .iter()
        .map(|(k, dtype, shape, bytes)| TensorView::new(*dtype, shape.clone(), bytes).map(|v| (k.clone(), v)))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| err(e.to_string()))?;

    let mut meta: HashMap<String, String> = metadata.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    meta.insert("format".into(), INT8_FORMAT.into());
    meta.insert("architecture".into(), to_json(&model.arch, &err)?);
    meta.insert("names".into(), to_json(&model.conv_names(), &err)?);
    meta.insert("quantized".into(), to_json(&model.quantized(), &err)?);
    let grid = GridRecord { symmetric: model.act_grid.symmetric, bits: model.act_grid.bits };
    meta.insert("act_grid".into(), to_json(&grid, &err)?);
    meta.insert("value_ranges".into(), to_json(&model.value_ranges, &err)?);
    let data = safetensors::serialize(views, Some(meta)).map_err(|e| err(e.to_string()))?;
    atomic_write(path, &data).map_err(|source| WeightsError::Write { path: path.to_path_buf(), source })?;
    Ok(data.len() as u64)
}

/// Whether `path` is an int8 checkpoint: reads only the safetensors header and checks its
/// `format` metadata. `false` for unreadable files and anything else.
pub fn is_int8_checkpoint(path: &Path) -> bool {
    read_header_format(path).as_deref() == Some(INT8_FORMAT)
}

fn read_header_format(path: &Path) -> Option<String> {
    let mut f = std::fs::File::open(path).ok()?;
    let mut len = [0u8; 8];
    f.read_exact(&mut len).ok()?;
    let n = usize::try_from(u64::from_le_bytes(len)).ok()?;
    // safetensors caps headers at 100 MB.
    if n > 100_000_000 {
        return None;
    }
    let mut header = Vec::with_capacity(n);
    f.take(n as u64).read_to_end(&mut header).ok()?;
    let v: serde_json::Value = serde_json::from_slice(&header).ok()?;
    v.get("__metadata__")?.get("format")?.as_str().map(str::to_string)
}

/// Loads an int8 checkpoint written by [`save_int8`] onto `device`: the architecture is rebuilt,
/// BN folded, every conv's weight (int8 levels × scale for quantized convs) and bias set, the
/// quantizers re-placed from the stored flags and value ranges, and every activation range set
/// to the stored one. The result computes what the saved model computed (QAT state — EMA
/// observers, learnable ranges, unfrozen BN — is not restored: it is an inference model).
/// Returns the model and the caller's metadata (the [`RESERVED_KEYS`] removed).
///
/// Errors: [`QuantError::Weights`] when the file cannot be read; [`QuantError::Checkpoint`] naming
/// the file (and the tensor or key at fault) for anything else: not a safetensors file, a float
/// checkpoint, a missing, misshaped or mistyped tensor, metadata that disagrees with the
/// architecture.
pub fn load_int8(path: &Path, device: &Device) -> Result<(QuantModel, BTreeMap<String, String>), QuantError> {
    let err = |m: String| ck_err(path, m);
    let data =
        std::fs::read(path).map_err(|e| WeightsError::Read { path: path.to_path_buf(), message: e.to_string() })?;
    let (_, header) = SafeTensors::read_metadata(&data).map_err(|e| err(format!("not a safetensors file: {e}")))?;
    let meta = header.metadata().clone().unwrap_or_default();
    match meta.get("format").map(String::as_str) {
        Some(INT8_FORMAT) => {}
        Some(CHECKPOINT_FORMAT) => {
            return Err(err(format!(
                "a float checkpoint (format `{CHECKPOINT_FORMAT}`), not an int8 one: load it with \
                 load_checkpoint, or quantize it first"
            )));
        }
        other => {
            return Err(err(format!(
                "not an int8 checkpoint: `format` metadata is {other:?}, expected `{INT8_FORMAT}`"
            )));
        }
    }
    let arch: Architecture = field(&meta, "architecture", &err)?;
    arch.validate().map_err(|e| err(format!("invalid `architecture` metadata: {e}")))?;
    let names: Vec<String> = field(&meta, "names", &err)?;
    let flags: Vec<bool> = field(&meta, "quantized", &err)?;
    let grid: GridRecord = field(&meta, "act_grid", &err)?;
    if !(2..=16).contains(&grid.bits) {
        return Err(err(format!("`act_grid` metadata: {} bits (2..=16 supported)", grid.bits)));
    }
    let grid = Grid { symmetric: grid.symmetric, bits: grid.bits };
    let value_ranges: Vec<Option<(f32, f32)>> = field(&meta, "value_ranges", &err)?;
    let st = SafeTensors::deserialize(&data).map_err(|e| err(format!("not a safetensors file: {e}")))?;

    let model = arch.build(device).map_err(|e| err(format!("cannot build the stored architecture: {e}")))?;
    let mut q = QuantModel::from_model(&model)
        .map_err(|e| err(format!("cannot lower the stored architecture: {e}")))?
        .fold_bn();
    let want = q.conv_names();
    if names.len() != want.len() || flags.len() != want.len() {
        return Err(err(format!(
            "conv count mismatch: `names` lists {} convs and `quantized` {}, the architecture has {}",
            names.len(),
            flags.len(),
            want.len()
        )));
    }
    if let Some((i, (a, b))) = names.iter().zip(&want).enumerate().find(|(_, (a, b))| a != b) {
        return Err(err(format!("conv {i} is `{a}` in `names` but `{b}` in the architecture")));
    }
    if value_ranges.len() != q.graph.num_values() {
        return Err(err(format!(
            "`value_ranges` has {} entries, the graph has {} values",
            value_ranges.len(),
            q.graph.num_values()
        )));
    }

    let mut used = BTreeSet::new();
    let mut read = |key: String, dtype: Dtype, shape: &[usize]| -> Result<Vec<u8>, QuantError> {
        let view = st.tensor(&key).map_err(|_| err(format!("missing tensor `{key}`")))?;
        if view.dtype() != dtype {
            return Err(err(format!("tensor `{key}` is {:?}, expected {dtype:?}", view.dtype())));
        }
        if view.shape() != shape {
            return Err(err(format!("tensor `{key}` has shape {:?}, expected {shape:?}", view.shape())));
        }
        used.insert(key);
        Ok(view.data().to_vec())
    };
    let floats =
        |b: Vec<u8>| -> Vec<f32> { b.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect() };
    for (c, &quantized) in q.convs.iter_mut().zip(&flags) {
        let dims = c.conv.weight.dims();
        let co = dims[0];
        let wkey = format!("{}.weight", c.name);
        let w: Vec<f32> = if quantized {
            let levels = read(wkey.clone(), Dtype::I8, &dims)?;
            let skey = format!("{}.weight_scale", c.name);
            let scales = floats(read(skey.clone(), Dtype::F32, &[co])?);
            if let Some(s) = scales.iter().find(|s| !(s.is_finite() && **s > 0.0)) {
                return Err(err(format!("tensor `{skey}`: scale {s} is not a positive finite number")));
            }
            if levels.contains(&(i8::MIN as u8)) {
                return Err(err(format!("tensor `{wkey}`: level −128 is outside the weight grid [−127, 127]")));
            }
            let per = levels.len() / co.max(1);
            levels.iter().enumerate().map(|(i, &b)| f32::from(b as i8) * scales[i / per]).collect()
        } else {
            floats(read(wkey, Dtype::F32, &dims)?)
        };
        let b = floats(read(format!("{}.bias", c.name), Dtype::F32, &[co])?);
        let w = Tensor::<4>::from_data(TensorData::new(w, dims), device);
        let b = Tensor::<1>::from_data(TensorData::new(b, [co]), device);
        c.conv.weight = Param::initialized(c.conv.weight.id, w);
        c.conv.bias = Some(match &c.conv.bias {
            Some(p) => Param::initialized(p.id, b),
            None => Param::from_tensor(b),
        });
    }

    let mut q = q.with_value_ranges(value_ranges, grid).with_quantized(&flags).map_err(|e| err(e.to_string()))?;
    let g = q.acts.len();
    let ranges = floats(read(ACT_RANGES.into(), Dtype::F32, &[g, 2])?);
    for (i, (a, r)) in q.acts.iter_mut().zip(ranges.chunks_exact(2)).enumerate() {
        let (lo, hi) = (r[0], r[1]);
        if !(lo.is_finite() && hi.is_finite() && lo <= hi) {
            return Err(err(format!("tensor `{ACT_RANGES}`: range {i} is [{lo}, {hi}]")));
        }
        *a = ActQuant::new(lo, hi, device);
    }
    if let Some(extra) = st.names().into_iter().find(|k| !used.contains(*k)) {
        return Err(err(format!("unexpected tensor `{extra}` (no such conv in the architecture)")));
    }
    let metadata = meta.into_iter().filter(|(k, _)| !RESERVED_KEYS.contains(&k.as_str())).collect();
    Ok((q, metadata))
}

#[cfg(test)]
mod tests {
    use burn::tensor::Distribution;
    use burn::tensor::quantization::{QuantScheme, QuantStore, QuantValue, ScaleDtype};
    use yolo_compress_model::weights::save_checkpoint;

    use super::*;
    use crate::quant::calibrate::{QuantConfig, ptq};

    /// A small PTQ model (yolov5n, 2 classes, calibrated on two random 32×32 images).
    fn small_model(device: &Device) -> QuantModel {
        let arch = Architecture::from_name_or_path("yolov5n.yaml").unwrap().with_classes(vec!["a".into(), "b".into()]);
        let model = arch.build(device).unwrap();
        let images = (0..2).map(|_| Tensor::<4>::random([1, 3, 32, 32], Distribution::Uniform(0.0, 1.0), device));
        ptq(&model, images, &QuantConfig::default()).unwrap()
    }

    fn msg(e: QuantError) -> String {
        match &e {
            QuantError::Checkpoint { .. } => e.to_string(),
            other => panic!("expected a checkpoint error, got {other:?}"),
        }
    }

    /// Rewrites a saved checkpoint with `edit` applied to its tensors and metadata.
    fn rewrite(
        src: &Path,
        dst: &Path,
        edit: impl FnOnce(&mut Vec<(String, Dtype, Vec<usize>, Vec<u8>)>, &mut HashMap<String, String>),
    ) {
        let data = std::fs::read(src).unwrap();
        let st = SafeTensors::deserialize(&data).unwrap();
        let (_, header) = SafeTensors::read_metadata(&data).unwrap();
        let mut meta = header.metadata().clone().unwrap();
        let mut rows: Vec<_> =
            st.tensors().into_iter().map(|(k, v)| (k, v.dtype(), v.shape().to_vec(), v.data().to_vec())).collect();
        edit(&mut rows, &mut meta);
        let views: Vec<_> =
            rows.iter().map(|(k, d, s, b)| (k.clone(), TensorView::new(*d, s.clone(), b).unwrap())).collect();
        std::fs::write(dst, safetensors::serialize(views, Some(meta)).unwrap()).unwrap();
    }

    #[test]
    fn corrupt_files_give_typed_errors_naming_file_and_tensor() {
        let device = Device::flex();
        let q = small_model(&device);
        let dir = tempfile::tempdir().unwrap();
        let good = dir.path().join("q.safetensors");
        let n = save_int8(&q, &good, &BTreeMap::from([("note".to_string(), "x".to_string())])).unwrap();
        assert_eq!(n, std::fs::metadata(&good).unwrap().len());
        assert!(is_int8_checkpoint(&good));
        let (_, meta) = load_int8(&good, &device).unwrap();
        assert_eq!(meta, BTreeMap::from([("note".to_string(), "x".to_string())]));

        // Truncated: header intact, tensor data cut; and cut inside the header.
        let bytes = std::fs::read(&good).unwrap();
        let bad = dir.path().join("bad.safetensors");
        for cut in [bytes.len() - 100, 40, 5] {
            std::fs::write(&bad, &bytes[..cut]).unwrap();
            let e = msg(load_int8(&bad, &device).unwrap_err());
            assert!(e.contains("bad.safetensors") && e.contains("not a safetensors file"), "{e}");
        }
        assert!(!is_int8_checkpoint(&bad), "a 5-byte file has no header");

        // Wrong format metadata.
        rewrite(&good, &bad, |_, m| {
            m.insert("format".into(), "something-else/2".into());
        });
        assert!(!is_int8_checkpoint(&bad));
        let e = msg(load_int8(&bad, &device).unwrap_err());
        assert!(e.contains("not an int8 checkpoint") && e.contains("something-else/2"), "{e}");

        // A tensor with the wrong shape, one with the wrong dtype, a missing one, an unknown one.
        let key = format!("{}.weight", q.convs[1].name);
        rewrite(&good, &bad, |rows, _| {
            let r = rows.iter_mut().find(|r| r.0 == key).unwrap();
            let n: usize = r.2.iter().product();
            r.2 = vec![n];
        });
        let e = msg(load_int8(&bad, &device).unwrap_err());
        assert!(e.contains(&key) && e.contains("shape"), "{e}");
        let skey = format!("{}.weight_scale", q.convs[1].name);
        rewrite(&good, &bad, |rows, _| {
            let r = rows.iter_mut().find(|r| r.0 == skey).unwrap();
            r.1 = Dtype::I32;
        });
        let e = msg(load_int8(&bad, &device).unwrap_err());
        assert!(e.contains(&skey) && e.contains("I32"), "{e}");
        let bkey = format!("{}.bias", q.convs[3].name);
        rewrite(&good, &bad, |rows, _| rows.retain(|r| r.0 != bkey));
        let e = msg(load_int8(&bad, &device).unwrap_err());
        assert!(e.contains(&bkey) && e.contains("missing"), "{e}");
        rewrite(&good, &bad, |rows, _| rows.push(("model.99.weight".into(), Dtype::F32, vec![1], vec![0; 4])));
        let e = msg(load_int8(&bad, &device).unwrap_err());
        assert!(e.contains("model.99.weight") && e.contains("unexpected"), "{e}");

        // Metadata inconsistent with the architecture.
        rewrite(&good, &bad, |_, m| {
            let mut flags: Vec<bool> = serde_json::from_str(&m["quantized"]).unwrap();
            flags.pop();
            m.insert("quantized".into(), serde_json::to_string(&flags).unwrap());
        });
        let e = msg(load_int8(&bad, &device).unwrap_err());
        assert!(e.contains("conv count mismatch"), "{e}");
        rewrite(&good, &bad, |_, m| {
            m.insert("value_ranges".into(), "[[1.0".into());
        });
        let e = msg(load_int8(&bad, &device).unwrap_err());
        assert!(e.contains("corrupt `value_ranges`"), "{e}");
        // A level outside the narrow weight grid.
        rewrite(&good, &bad, |rows, _| {
            rows.iter_mut().find(|r| r.0 == key).unwrap().3[0] = 0x80;
        });
        let e = msg(load_int8(&bad, &device).unwrap_err());
        assert!(e.contains(&key) && e.contains("−128"), "{e}");
    }

    #[test]
    fn float_checkpoint_is_rejected_by_name() {
        let device = Device::flex();
        let model = Architecture::from_name_or_path("yolov5n.yaml").unwrap().build(&device).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("float.safetensors");
        save_checkpoint(&model, &path, &BTreeMap::new()).unwrap();
        assert!(!is_int8_checkpoint(&path));
        let e = msg(load_int8(&path, &device).unwrap_err());
        assert!(e.contains("float.safetensors") && e.contains("float checkpoint"), "{e}");
        let missing = dir.path().join("missing.safetensors");
        assert!(!is_int8_checkpoint(&missing));
        assert!(matches!(load_int8(&missing, &device), Err(QuantError::Weights(_))));
    }

    #[test]
    fn stored_levels_and_scales_are_the_fake_quantized_weights() {
        let device = Device::flex();
        let q = small_model(&device);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("q.safetensors");
        save_int8(&q, &path, &BTreeMap::new()).unwrap();
        let data = std::fs::read(&path).unwrap();
        let st = SafeTensors::deserialize(&data).unwrap();
        let (mut n_int8, mut n_float) = (0, 0);
        for c in &q.convs {
            let w = st.tensor(&format!("{}.weight", c.name)).unwrap();
            if c.quantized {
                n_int8 += 1;
                assert_eq!(w.dtype(), Dtype::I8);
                let s = st.tensor(&format!("{}.weight_scale", c.name)).unwrap();
                let s: Vec<f32> =
                    s.data().chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect();
                let per = w.data().len() / s.len();
                let fq = host_f32(c.effective_weight());
                for (i, (&l, f)) in w.data().iter().zip(fq).enumerate() {
                    assert_eq!(f32::from(l as i8) * s[i / per], f, "{} weight {i}", c.name);
                }
            } else {
                n_float += 1;
                assert_eq!(w.dtype(), Dtype::F32);
                assert!(st.tensor(&format!("{}.weight_scale", c.name)).is_err());
            }
        }
        // Default PTQ: Detect's three output convs stay float, everything else is int8.
        assert_eq!((n_int8, n_float), (q.convs.len() - 3, 3));
    }

    /// The claim in the module docs: Burn's block-quantized tensors hold a per-output-channel int8
    /// weight exactly while `c_in/g ≤ 255` (and dequantize to `level · s_c`, as [`load_int8`]
    /// does).
    #[test]
    fn burn_block_quantization_holds_per_channel_int8_weights_up_to_255_inputs() {
        let device = Device::flex();
        let w = Tensor::<4>::random([4, 255, 3, 3], Distribution::Normal(0.0, 1.0), &device);
        let (levels, scales) = quantize_weight_int8(w);
        let scheme = QuantScheme::default()
            .with_value(QuantValue::Q8S)
            .with_store(QuantStore::Native)
            .per_block([1u8, 255, 3, 3], ScaleDtype::F32);
        let data = TensorData::quantized(levels.clone(), [4, 255, 3, 3], scheme, &scales, None);
        let burn = host_f32(Tensor::<4>::from_data(data, &device).dequantize());
        let per = 255 * 9;
        for (i, (&l, b)) in levels.iter().zip(burn).enumerate() {
            assert_eq!(f32::from(l) * scales[i / per], b, "element {i}");
        }
    }
}
