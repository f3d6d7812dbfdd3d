//! The building blocks of YOLOv5 models, one per file, each with its `Config`, `init`, `forward`,
//! BN folding (`fuse`), thop-style MAC counting and unit tests.

pub mod bottleneck;
pub mod c3;
pub mod c3_ghost;
pub mod conv;
pub mod dwconv;
pub mod focus;
pub mod ghost_bottleneck;
pub mod ghost_conv;
pub mod ghost_module;
pub mod ghostnet_bottleneck;
pub mod pool;
pub mod spp;
pub mod sppf;
pub mod squeeze_excite;
pub mod upsample;

pub use bottleneck::{Bottleneck, BottleneckConfig};
pub use c3::{C3, C3Config, C3Inner};
pub use c3_ghost::C3GhostConfig;
pub use conv::{BN_EPS, BN_MOMENTUM, Conv, ConvConfig};
pub use dwconv::DwConvConfig;
pub use focus::{Focus, FocusConfig};
pub use ghost_bottleneck::{GhostBottleneck, GhostBottleneckConfig};
pub use ghost_conv::{GhostConv, GhostConvConfig};
pub use ghost_module::{GhostModule, GhostModuleConfig};
pub use ghostnet_bottleneck::{GhostNetBottleneck, GhostNetBottleneckConfig};
pub use spp::{Spp, SppConfig};
pub use sppf::{Sppf, SppfConfig};
pub use squeeze_excite::{SqueezeExcite, SqueezeExciteConfig};
pub use upsample::{concat, upsample_nearest};
