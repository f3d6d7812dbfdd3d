//! `ycomp export`: write a loaded model in another format (today: a native safetensors checkpoint).

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::{Result, bail};
use clap::{Args, ValueEnum};
use yolo_compress::backend::device_from_name;
use yolo_compress::model::weights::save_checkpoint;

use crate::{Common, ModelArgs};

/// Export formats.
#[derive(Clone, Copy, Debug, ValueEnum)]
enum Format {
    /// Native single-file checkpoint (architecture + weights + metadata).
    Safetensors,
    /// ONNX graph (not implemented yet).
    Onnx,
}

/// Arguments of `ycomp export`.
#[derive(Args)]
pub struct ExportArgs {
    #[command(flatten)]
    model: ModelArgs,
    /// Output format.
    #[arg(long, value_enum, default_value = "safetensors")]
    format: Format,
    /// Output file (default: the weights' name with the new extension).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Fold BN into the convs before saving (smaller, inference only).
    #[arg(long)]
    fuse: bool,
    #[command(flatten)]
    common: Common,
}

/// Converts and writes the model.
pub fn run(a: ExportArgs) -> Result<()> {
    if let Format::Onnx = a.format {
        bail!("ONNX export is not implemented yet; use --format safetensors");
    }
    let device = device_from_name(&a.common.device)?;
    let loaded = a.model.load(&device)?;
    let model = if a.fuse { loaded.model.fuse() } else { loaded.model };
    let out = match (&a.out, &a.model.weights) {
        (Some(o), _) => o.clone(),
        (None, Some(w)) => w.with_extension("safetensors"),
        (None, None) => bail!("give --out"),
    };
    if a.model.weights.as_ref() == Some(&out) {
        bail!("--out would overwrite the input {}", out.display());
    }
    let mut meta = BTreeMap::new();
    meta.insert("producer".to_string(), format!("ycomp {}", env!("CARGO_PKG_VERSION")));
    meta.insert("source".to_string(), loaded.origin.clone());
    save_checkpoint(&model, &out, &meta)?;
    let size = std::fs::metadata(&out)?.len();
    if a.common.json {
        out!("{}", serde_json::json!({"out": out, "bytes": size, "source": loaded.origin}));
    } else {
        out!("wrote {} ({} bytes) from {}", out.display(), size, loaded.origin);
    }
    Ok(())
}
