//! Detection heads.

pub mod detect;

pub use detect::{Detect, DetectConfig, RawOutputs};
