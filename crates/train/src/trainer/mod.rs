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
pub use fit::{
    EpochRecord, HookChain, MAX_GRAD_NORM, NoHook, TrainData, TrainHook, TrainOutcome, loss_and_grads,
    loss_and_grads_with_hook, optimizer_step, resume, resume_with_hook, train, train_with_hook,
};
pub use state::{latest_run, resume_checkpoint_path};
