//! Gradient accumulation towards ultralytics' nominal batch of 64.
//!
//! With batch size `bs`, ultralytics steps the optimizer every `accumulate = max(round(64/bs), 1)`
//! batches, summing the gradients in between (PyTorch's `.grad` accumulation), and scales the weight
//! decay by `bs·accumulate/64` so that its strength does not depend on the batch size.

use burn::module::Module;
use burn::optim::{GradientsAccumulator, GradientsParams};

/// ultralytics' nominal batch size (`nbs`).
pub const NOMINAL_BATCH_SIZE: usize = 64;

/// Batches per optimizer step: `max(round(nbs / bs), 1)` (Python's `round`, ties to even).
///
/// # Panics
///
/// If `bs` is 0.
pub fn accumulate_steps(nbs: usize, bs: usize) -> usize {
    assert!(bs > 0, "batch size must be positive");
    ((nbs as f64 / bs as f64).round_ties_even() as usize).max(1)
}

/// The weight decay applied at each step: `weight_decay · (bs · accumulate / nbs)`.
pub fn scaled_weight_decay(weight_decay: f64, bs: usize, accumulate: usize, nbs: usize) -> f64 {
    weight_decay * ((bs * accumulate) as f64 / nbs as f64)
}

/// Sums gradients over micro-batches until the optimizer step.
///
/// Uses Burn's [`GradientsAccumulator`], which needs the module to enumerate the parameters
/// ([`GradientsParams`] cannot list its own entries), hence the `model` argument of
/// [`GradAccumulator::add`]; it also counts the micro-batches.
#[derive(Default)]
pub struct GradAccumulator {
    grads: GradientsParams,
    count: usize,
}

impl GradAccumulator {
    /// An empty accumulator.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds the gradients of one micro-batch of `model` (element-wise sum per parameter; a
    /// parameter missing from either side keeps the other side's gradient).
    pub fn add<M: Module>(&mut self, model: &M, grads: GradientsParams) {
        if self.count == 0 {
            self.grads = grads;
        } else {
            let mut acc = GradientsAccumulator::<M>::new();
            acc.accumulate(model, std::mem::take(&mut self.grads));
            acc.accumulate(model, grads);
            self.grads = acc.grads();
        }
        self.count += 1;
    }

    /// Number of micro-batches added since the last [`GradAccumulator::take`].
    pub fn len(&self) -> usize {
        self.count
    }

    /// Whether nothing was added since the last [`GradAccumulator::take`].
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The summed gradients; resets the accumulator.
    pub fn take(&mut self) -> GradientsParams {
        self.count = 0;
        std::mem::take(&mut self.grads)
    }
}
