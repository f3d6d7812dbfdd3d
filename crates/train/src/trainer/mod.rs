//! The training loop and its run folder (`ycomp train`).
//!
//! - [`config`]: [`TrainConfig`], saved as `args.yaml`;
//! - [`fit`]: [`train`] and [`resume`], the loop itself;
//! - [`run_dir`]: run folders, `results.csv`;
//! - [`state`]: resumable checkpoints.

pub mod config;
pub mod fit;
pub mod run_dir;
pub mod state;

pub use config::TrainConfig;
pub use fit::{EpochRecord, MAX_GRAD_NORM, TrainData, TrainOutcome, loss_and_grads, optimizer_step, resume, train};
pub use state::{latest_run, resume_checkpoint_path};
