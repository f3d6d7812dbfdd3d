//! `ycomp models`: the built-in configs.

use anyhow::Result;
use clap::Args;
use yolo_compress::model::arch::BUILTIN_CONFIGS;

use crate::Common;

/// Arguments of `ycomp models`.
#[derive(Args)]
pub struct ModelsArgs {
    #[command(flatten)]
    common: Common,
}

/// Lists the configs usable with `--model`.
pub fn run(a: ModelsArgs) -> Result<()> {
    let names: Vec<&str> = BUILTIN_CONFIGS.iter().map(|(n, _)| *n).collect();
    if a.common.json {
        out!("{}", serde_json::to_string(&names)?);
    } else {
        for n in names {
            out!("{n}");
        }
    }
    Ok(())
}
