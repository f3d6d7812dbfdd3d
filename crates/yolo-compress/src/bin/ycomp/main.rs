//! `ycomp`: the yolo-compress command line. See `ycomp --help` and docs/cli.md.

/// `println!` for results on stdout that ends the process quietly (exit 0) when the reader has gone
/// away (`ycomp models | head -1`), where `println!` would panic on the broken pipe.
macro_rules! out {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        if let Err(e) = writeln!(std::io::stdout().lock(), $($arg)*) {
            if e.kind() == std::io::ErrorKind::BrokenPipe {
                std::process::exit(0);
            }
            panic!("writing to stdout: {e}");
        }
    }};
}

mod bench;
mod data;
mod detect;
mod export;
mod info;
mod models;
mod prune;
mod quantize;
mod synth;
mod train;
mod val;

use anyhow::Result;
use clap::{Args, Parser, Subcommand};

/// Train, compress and export YOLOv5 detectors in pure Rust.
#[derive(Parser)]
#[command(name = "ycomp", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Print a model's layers, parameters and GFLOPs.
    Info(info::InfoArgs),
    /// Detect objects in images.
    Detect(detect::DetectArgs),
    /// Convert weights (e.g. an ultralytics state_dict) to another format.
    Export(export::ExportArgs),
    /// List the built-in model configs.
    Models(models::ModelsArgs),
    /// Measure forward latency.
    Bench(bench::BenchArgs),
    /// Check a YOLO dataset, or convert COCO / VOC annotations to one.
    Data(data::DataArgs),
    /// Write a synthetic YOLO dataset of shapes.
    Synth(synth::SynthArgs),
    /// Prune channels to a FLOPs target (EagleEye, L1/L2/FPGM/Taylor, slimming), or sweep sensitivity.
    Prune(prune::PruneArgs),
    /// Quantize a detector to int8 (PTQ or QAT), with per-layer sensitivity.
    Quantize(quantize::QuantizeArgs),
    /// Train a detector (ultralytics' recipe), or resume a run.
    Train(train::TrainArgs),
    /// Validate a detector: P, R, mAP50, mAP50-95 per class.
    Val(val::ValArgs),
}

/// Options shared by every subcommand.
#[derive(Args, Clone, Debug)]
pub struct Common {
    /// Compute device: cpu (pure-Rust flex backend), vulkan, wgpu, ndarray or cuda (cuda:N picks a GPU).
    #[arg(long, default_value = "cpu", global = true)]
    pub device: String,
    /// Random seed.
    #[arg(long, default_value_t = 0, global = true)]
    pub seed: u64,
    /// Machine-readable JSON on stdout.
    #[arg(long, global = true)]
    pub json: bool,
    /// No progress output.
    #[arg(long, global = true)]
    pub quiet: bool,
}

/// Model selection shared by the subcommands that load a model.
#[derive(Args, Clone, Debug)]
pub struct ModelArgs {
    /// Built-in config (`yolov5s.yaml`, see `ycomp models`), a model YAML path, or a native checkpoint.
    #[arg(long)]
    pub model: Option<String>,
    /// Weights: an ultralytics PyTorch state_dict (.pt, unfused or fused) or a native checkpoint
    /// (`val`, `detect` and `bench` also take an int8 checkpoint from `ycomp quantize`).
    #[arg(long)]
    pub weights: Option<std::path::PathBuf>,
    /// Override the number of classes.
    #[arg(long)]
    pub nc: Option<usize>,
    /// Override the class names (comma-separated).
    #[arg(long, value_delimiter = ',')]
    pub names: Option<Vec<String>>,
}

impl ModelArgs {
    /// Loads the model on `device`.
    pub fn load(&self, device: &burn::prelude::Device) -> Result<yolo_compress::loading::Loaded> {
        let classes = yolo_compress::loading::ClassOverride { nc: self.nc, names: self.names.clone() };
        Ok(yolo_compress::loading::load_model(self.model.as_deref(), self.weights.as_deref(), &classes, device)?)
    }

    /// Loads a float model or an int8 checkpoint (`ycomp quantize`) on `device`.
    pub fn load_any(&self, device: &burn::prelude::Device) -> Result<yolo_compress::loading::LoadedAny> {
        let classes = yolo_compress::loading::ClassOverride { nc: self.nc, names: self.names.clone() };
        Ok(yolo_compress::loading::load_any_model(self.model.as_deref(), self.weights.as_deref(), &classes, device)?)
    }
}

fn main() {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Info(a) => info::run(a),
        Command::Detect(a) => detect::run(a),
        Command::Export(a) => export::run(a),
        Command::Models(a) => models::run(a),
        Command::Bench(a) => bench::run(a),
        Command::Data(a) => data::run(a),
        Command::Synth(a) => synth::run(a),
        Command::Prune(a) => prune::run(a),
        Command::Quantize(a) => quantize::run(a),
        Command::Train(a) => train::run(a),
        Command::Val(a) => val::run(a),
    };
    if let Err(e) = result {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}
