//! ultralytics' optimisation recipe: parameter groups, SGD-Nesterov / Adam / AdamW, the LR schedule
//! and warmup, global-norm gradient clipping, gradient accumulation to a nominal batch of 64, and
//! the EMA of weights.
//!
//! - [`groups`] — the three parameter groups (biases, decayed weights, BN weights) and the named walk;
//! - [`optimizer`] — the [`Optimizer`] and its checkpointable state;
//! - [`schedule`] — [`LrSchedule`] (linear / cosine) and the [`Warmup`];
//! - [`clip`] — [`clip_grad_norm`] (`torch.nn.utils.clip_grad_norm_`);
//! - [`accumulate`] — [`GradAccumulator`] and the nominal-batch helpers;
//! - [`ema`] — [`ModelEma`].
//!
//! Every piece identifies tensors by their ultralytics state-dict key, so state survives a restart.
//!
//! One training iteration `ni` (counted from the start of training) in ultralytics' order:
//!
//! ```text
//! lrs = warmup.lrs(ni, lr0, schedule.factor(epoch)).unwrap_or([schedule.lr(lr0, epoch); 3]);
//! momentum = warmup.momentum(ni).unwrap_or(hyp.momentum);
//! accumulate = warmup.accumulate(ni, 64, batch_size);
//! forward, loss, backward → accumulator.add(&model, grads)
//! if ni - last_opt_step >= accumulate {
//!     let mut grads = accumulator.take();
//!     clip_grad_norm(&mut model, &mut grads, 10.0);
//!     model = optimizer.step(model, &grads, lrs, momentum, weight_decay);
//!     ema.update(&mut model);
//! }
//! ```

pub mod accumulate;
pub mod clip;
pub mod ema;
pub mod groups;
pub mod optimizer;
pub mod schedule;

pub use accumulate::{GradAccumulator, NOMINAL_BATCH_SIZE, accumulate_steps, scaled_weight_decay};
pub use clip::{CLIP_MAX_NORM, clip_grad_norm, clip_grad_norm_params};
pub use ema::{EMA_DECAY, EMA_TAU, ModelEma, ema_blend, ema_decay};
pub use groups::{KEY_PREFIX, NamedParam, ParamGroup, group_sizes, named_params, param_group};
pub use optimizer::{ADAM_BETA2, ADAM_EPS, Optimizer, OptimizerConfig, OptimizerKind};
pub use schedule::{LrSchedule, MIN_WARMUP_ITERATIONS, Warmup, interp};
