//! `ycomp info`: per-layer table and totals (parameters, MACs, GFLOPs at `--imgsz`).

use anyhow::{Result, bail};
use clap::Args;
use yolo_compress::backend::device_from_name;
use yolo_compress::model::info::{ModelInfo, layer_params};

use crate::{Common, ModelArgs};

/// Arguments of `ycomp info`.
#[derive(Args)]
pub struct InfoArgs {
    #[command(flatten)]
    model: ModelArgs,
    /// Image size for GFLOPs (square).
    #[arg(long, default_value_t = 640)]
    imgsz: usize,
    /// Report the model after folding BN into the convs (what detect/val run).
    #[arg(long)]
    fused: bool,
    #[command(flatten)]
    common: Common,
}

/// Prints the summary.
pub fn run(a: InfoArgs) -> Result<()> {
    let device = device_from_name(&a.common.device)?;
    let loaded = a.model.load(&device)?;
    let model = if a.fused { loaded.model.fuse() } else { loaded.model };
    let s = model.max_stride();
    if a.imgsz == 0 || !a.imgsz.is_multiple_of(s) {
        bail!("--imgsz {} must be a positive multiple of the model's stride {s}", a.imgsz);
    }
    let info = ModelInfo::of(&model, a.imgsz);
    if a.common.json {
        out!("{}", serde_json::to_string(&info)?);
        return Ok(());
    }
    let arch = model.arch.as_ref();
    out!("{:>4} {:>14} {:>3} {:>11}  {:<16} arguments", "", "from", "n", "params", "module");
    let per_layer = layer_params(&model);
    if let Some(arch) = arch {
        for (i, l) in arch.layers.iter().enumerate() {
            let from = if l.from.len() == 1 { l.from[0].to_string() } else { format!("{:?}", l.from) };
            let n = match &l.block {
                yolo_compress::model::BlockSpec::C3 { inner, .. } => inner.len(),
                _ => 1,
            };
            out!(
                "{i:>4} {from:>14} {n:>3} {:>11}  {:<16} {}",
                per_layer.get(i).copied().unwrap_or(0),
                l.module,
                describe(&l.block)
            );
        }
    }
    let name = arch.map_or("model", |a| a.name.as_str());
    out!(
        "{name} summary: {} layers, {} parameters, {:.1} GFLOPs ({:.2} GMACs) at {}x{}",
        info.layers,
        info.params,
        info.gflops,
        info.macs / 1e9,
        a.imgsz,
        a.imgsz
    );
    out!("source: {}", loaded.origin);
    Ok(())
}

fn describe(b: &yolo_compress::model::BlockSpec) -> String {
    use yolo_compress::model::BlockSpec::*;
    match b {
        Conv { c1, c2, k, s, g, .. } => {
            format!("[{c1}, {c2}, {k}, {s}{}]", if *g > 1 { format!(", g={g}") } else { String::new() })
        }
        Focus { c1, c2, k, s } => format!("[{c1}, {c2}, {k}, {s}]"),
        Bottleneck { c1, c2, shortcut, .. } => format!("[{c1}, {c2}, {shortcut}]"),
        C3 { c1, c2, inner, shortcut, .. } => format!("[{c1}, {c2}, {}, {shortcut}]", inner.len()),
        Spp { c1, c2, k } => format!("[{c1}, {c2}, {k:?}]"),
        Sppf { c1, c2, k, .. } => format!("[{c1}, {c2}, {k}]"),
        GhostConv { c1, c2, k, s, .. } => format!("[{c1}, {c2}, {k}, {s}]"),
        GhostBottleneck { c1, c2, k, s, .. } => format!("[{c1}, {c2}, {k}, {s}]"),
        GhostNetBottleneck { c1, c2, hidden, k, se, s } => format!("[{c1}, {c2}, exp={hidden}, {k}, se={se}, {s}]"),
        Upsample { scale } => format!("[None, {scale}, 'nearest']"),
        Concat => "[1]".into(),
        Detect { nc, ch, .. } => format!("[{nc}, anchors, {ch:?}]"),
    }
}
