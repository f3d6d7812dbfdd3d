//! Model architectures: ultralytics YAML configs resolved once into an explicit, serialisable
//! [`Architecture`] that records every layer's real channel counts, inputs, anchors, strides and
//! class names. Models are built from it and native checkpoints store it, so a model with arbitrary
//! (e.g. pruned) widths reloads exactly without any YAML.

mod builtin;
mod cost;
mod yaml;

use serde::{Deserialize, Serialize};

use crate::error::ArchError;

pub use builtin::{BUILTIN_CONFIGS, builtin_yaml};
pub use yaml::{make_divisible, parse_model_yaml, round_half_even};

/// A fully resolved detector architecture (ultralytics layer numbering).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Architecture {
    /// Human-readable name (`yolov5s`, a file stem, or a user name).
    pub name: String,
    /// Number of classes.
    pub nc: usize,
    /// Class names (`nc` entries).
    pub names: Vec<String>,
    /// Input image channels (3).
    pub input_channels: usize,
    /// Every layer in execution order; the last one is the Detect head.
    pub layers: Vec<LayerSpec>,
    /// How many leading layers form the backbone (the rest is neck + head).
    pub backbone_len: usize,
}

/// One layer: where its inputs come from and what it computes.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct LayerSpec {
    /// Inputs: `-1` = previous layer, otherwise absolute layer indices (ultralytics `from`).
    pub from: Vec<i64>,
    /// The module name as written in the YAML (`Conv`, `C3Ghost`, …), for display.
    pub module: String,
    /// What the layer computes, with explicit widths.
    pub block: BlockSpec,
    /// Output channels.
    pub out_channels: usize,
    /// Total stride of the output relative to the input image.
    pub stride: usize,
}

/// A block with every width explicit.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(tag = "type")]
pub enum BlockSpec {
    /// Conv-BN-SiLU (also DWConv with `g = gcd(c1, c2)`).
    Conv {
        /// Input channels.
        c1: usize,
        /// Output channels.
        c2: usize,
        /// Kernel.
        k: usize,
        /// Stride.
        s: usize,
        /// Padding (`None` = `k/2`).
        p: Option<usize>,
        /// Groups.
        g: usize,
        /// SiLU on/off.
        act: bool,
    },
    /// Space-to-depth + Conv.
    Focus {
        /// Input channels.
        c1: usize,
        /// Output channels.
        c2: usize,
        /// Kernel.
        k: usize,
        /// Stride.
        s: usize,
    },
    /// Standalone bottleneck.
    Bottleneck {
        /// Input channels.
        c1: usize,
        /// Output channels.
        c2: usize,
        /// Hidden width.
        hidden: usize,
        /// Residual (when `c1 == c2`).
        shortcut: bool,
        /// Groups of the 3×3 conv.
        g: usize,
    },
    /// C3 / C3Ghost.
    C3 {
        /// Input channels.
        c1: usize,
        /// Output channels.
        c2: usize,
        /// Width of `cv1` (bottleneck branch).
        hidden1: usize,
        /// Width of `cv2` (bypass branch).
        hidden2: usize,
        /// Hidden width of each bottleneck (its length is the repeat count).
        inner: Vec<usize>,
        /// Residuals in plain bottlenecks.
        shortcut: bool,
        /// Groups of the plain bottlenecks' 3×3 convs.
        g: usize,
        /// Ghost bottlenecks (C3Ghost) instead of plain ones.
        ghost: bool,
    },
    /// SPP with parallel pools.
    Spp {
        /// Input channels.
        c1: usize,
        /// Output channels.
        c2: usize,
        /// Pool kernels.
        k: Vec<usize>,
    },
    /// SPPF with chained pools.
    Sppf {
        /// Input channels.
        c1: usize,
        /// Output channels.
        c2: usize,
        /// Hidden width.
        hidden: usize,
        /// Pool kernel.
        k: usize,
    },
    /// Ghost convolution.
    GhostConv {
        /// Input channels.
        c1: usize,
        /// Output channels.
        c2: usize,
        /// Kernel.
        k: usize,
        /// Stride.
        s: usize,
        /// Groups.
        g: usize,
        /// SiLU on/off.
        act: bool,
    },
    /// Ghost bottleneck.
    GhostBottleneck {
        /// Input channels.
        c1: usize,
        /// Output channels.
        c2: usize,
        /// Hidden width.
        hidden: usize,
        /// Depth-wise kernel.
        k: usize,
        /// Stride.
        s: usize,
    },
    /// GhostNet bottleneck (GhostNet backbone rows; see
    /// [`GhostNetBottleneck`](crate::blocks::GhostNetBottleneck)).
    GhostNetBottleneck {
        /// Input channels.
        c1: usize,
        /// Output channels.
        c2: usize,
        /// Expansion width (output of the first ghost module).
        hidden: usize,
        /// Depth-wise kernel.
        k: usize,
        /// Squeeze-excite width (`0` = no squeeze-excite).
        se: usize,
        /// Stride.
        s: usize,
    },
    /// Nearest upsampling.
    Upsample {
        /// Integer scale factor.
        scale: usize,
    },
    /// Channel concatenation.
    Concat,
    /// Detection head.
    Detect {
        /// Classes.
        nc: usize,
        /// Anchors per level in pixels.
        anchors: Vec<Vec<[f32; 2]>>,
        /// Strides per level.
        strides: Vec<f32>,
        /// Input channels per level.
        ch: Vec<usize>,
    },
}

/// The 80 COCO class names, used when a model has 80 classes and no names are given.
pub const COCO_NAMES: [&str; 80] = [
    "person",
    "bicycle",
    "car",
    "motorcycle",
    "airplane",
    "bus",
    "train",
    "truck",
    "boat",
    "traffic light",
    "fire hydrant",
    "stop sign",
    "parking meter",
    "bench",
    "bird",
    "cat",
    "dog",
    "horse",
    "sheep",
    "cow",
    "elephant",
    "bear",
    "zebra",
    "giraffe",
    "backpack",
    "umbrella",
    "handbag",
    "tie",
    "suitcase",
    "frisbee",
    "skis",
    "snowboard",
    "sports ball",
    "kite",
    "baseball bat",
    "baseball glove",
    "skateboard",
    "surfboard",
    "tennis racket",
    "bottle",
    "wine glass",
    "cup",
    "fork",
    "knife",
    "spoon",
    "bowl",
    "banana",
    "apple",
    "sandwich",
    "orange",
    "broccoli",
    "carrot",
    "hot dog",
    "pizza",
    "donut",
    "cake",
    "chair",
    "couch",
    "potted plant",
    "bed",
    "dining table",
    "toilet",
    "tv",
    "laptop",
    "mouse",
    "remote",
    "keyboard",
    "cell phone",
    "microwave",
    "oven",
    "toaster",
    "sink",
    "refrigerator",
    "book",
    "clock",
    "vase",
    "scissors",
    "teddy bear",
    "hair drier",
    "toothbrush",
];

/// Default class names for `nc` classes: COCO's for 80, else `class0`, `class1`, ….
pub fn default_names(nc: usize) -> Vec<String> {
    if nc == 80 {
        COCO_NAMES.iter().map(|s| s.to_string()).collect()
    } else {
        (0..nc).map(|i| format!("class{i}")).collect()
    }
}

impl Architecture {
    /// Resolves a built-in config name (`yolov5s.yaml`, `yolov5s`) or a path to a YAML file.
    pub fn from_name_or_path(name: &str) -> Result<Self, ArchError> {
        if let Some(text) = builtin_yaml(name) {
            let stem = name.trim_end_matches(".yaml").trim_end_matches(".yml");
            return parse_model_yaml(text, stem);
        }
        let path = std::path::Path::new(name);
        if path.is_file() {
            let text = std::fs::read_to_string(path).map_err(|source| ArchError::Io { path: path.into(), source })?;
            let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or("model");
            return parse_model_yaml(&text, stem);
        }
        Err(ArchError::Unknown(name.to_string()))
    }

    /// The Detect layer (always last).
    pub fn detect(&self) -> Option<&BlockSpec> {
        self.layers.last().map(|l| &l.block).filter(|b| matches!(b, BlockSpec::Detect { .. }))
    }

    /// Resolves a `from` entry of layer `i` to an absolute layer index.
    pub fn source(i: usize, f: i64) -> usize {
        if f < 0 { (i as i64 + f) as usize } else { f as usize }
    }

    /// Replaces the classes (and Detect's class count), e.g. for `--nc`/`--names`. Weights of the
    /// Detect convs then no longer fit a checkpoint trained with another class count.
    pub fn with_classes(mut self, names: Vec<String>) -> Self {
        self.nc = names.len();
        if let Some(LayerSpec { block: BlockSpec::Detect { nc, .. }, .. }) = self.layers.last_mut() {
            *nc = names.len();
        }
        self.names = names;
        self
    }

    /// Checks internal consistency: indices in range, input channels matching sources, a Detect last.
    pub fn validate(&self) -> Result<(), ArchError> {
        if self.detect().is_none() {
            return Err(ArchError::Invalid("the last layer must be Detect".into()));
        }
        if self.names.len() != self.nc {
            return Err(ArchError::Invalid(format!("{} names for nc = {}", self.names.len(), self.nc)));
        }
        for (i, l) in self.layers.iter().enumerate() {
            for &f in &l.from {
                let src = i as i64 + if f < 0 { f } else { 0 };
                if (f < 0 && src < -1) || (f >= 0 && f as usize >= i) {
                    return Err(ArchError::Invalid(format!("layer {i} reads from {f}, which is not an earlier layer")));
                }
            }
        }
        Ok(())
    }
}
