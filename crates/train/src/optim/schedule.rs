//! Learning-rate schedules and the warmup, as ultralytics' train.py computes them.
//!
//! After warmup every group's lr is `lr0 · lf(epoch)` (`LambdaLR` stepped once per epoch), with
//! `lf` one of [`LrSchedule`]. During the first `nw` iterations the warmup overrides the lrs, the
//! SGD momentum and the accumulation count with linear interpolations over `[0, nw]`
//! (`np.interp` semantics, `ni ≤ nw` inclusive).

use serde::{Deserialize, Serialize};

/// The minimum number of warmup iterations (`nw = max(round(warmup_epochs · nb), 100)`).
pub const MIN_WARMUP_ITERATIONS: usize = 100;

/// LR factor per epoch (`lf` in train.py). `epochs` must be positive.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub enum LrSchedule {
    /// The default: `(1 − x/epochs)·(1 − lrf) + lrf`, from 1 at epoch 0 to `lrf` at `epochs`.
    Linear {
        /// Final factor (hyp `lrf`).
        lrf: f64,
        /// Number of training epochs.
        epochs: usize,
    },
    /// `--cos-lr`: `one_cycle(1, lrf, epochs)`, `(1 − cos(xπ/epochs))/2 · (lrf − 1) + 1`.
    Cosine {
        /// Final factor (hyp `lrf`).
        lrf: f64,
        /// Number of training epochs.
        epochs: usize,
    },
}

impl LrSchedule {
    /// The factor `lf(epoch)` that multiplies `lr0`.
    pub fn factor(&self, epoch: usize) -> f64 {
        let x = epoch as f64;
        match *self {
            LrSchedule::Linear { lrf, epochs } => (1.0 - x / epochs as f64) * (1.0 - lrf) + lrf,
            LrSchedule::Cosine { lrf, epochs } => {
                ((1.0 - (x * std::f64::consts::PI / epochs as f64).cos()) / 2.0) * (lrf - 1.0) + 1.0
            }
        }
    }

    /// The lr of every group after warmup: `lr0 · lf(epoch)`.
    pub fn lr(&self, lr0: f64, epoch: usize) -> f64 {
        lr0 * self.factor(epoch)
    }
}

/// `np.interp(x, [x0, x1], [y0, y1])` for `x0 < x1`: `y0` at or below `x0`, `y1` at or above `x1`,
/// else `y0 + slope·(x − x0)` evaluated as numpy does.
pub fn interp(x: f64, x0: f64, x1: f64, y0: f64, y1: f64) -> f64 {
    if x <= x0 {
        y0
    } else if x >= x1 {
        y1
    } else {
        let slope = (y1 - y0) / (x1 - x0);
        slope * (x - x0) + y0
    }
}

/// ultralytics' warmup over `nw = max(round(warmup_epochs · nb), 100)` iterations: the bias lr
/// falls from `warmup_bias_lr` and the other lrs rise from 0 to `lr0 · lf(epoch)`; the SGD momentum
/// rises from `warmup_momentum` to `momentum`; gradient accumulation ramps from 1 to `nbs / bs`.
///
/// Note that `nw` is at least 100 even with `warmup_epochs = 0`, as in ultralytics.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Warmup {
    nw: usize,
    warmup_bias_lr: f64,
    warmup_momentum: f64,
    momentum: f64,
}

impl Warmup {
    /// A warmup for `nb` batches per epoch (Python's `round`, ties to even, for `nw`).
    pub fn new(warmup_epochs: f64, nb: usize, warmup_bias_lr: f64, warmup_momentum: f64, momentum: f64) -> Self {
        let nw = (warmup_epochs * nb as f64).round_ties_even().max(0.0) as usize;
        Self { nw: nw.max(MIN_WARMUP_ITERATIONS), warmup_bias_lr, warmup_momentum, momentum }
    }

    /// `nw`, the number of warmup iterations (the warmup covers iterations `0..=nw`).
    pub fn iterations(&self) -> usize {
        self.nw
    }

    /// Whether iteration `ni` (counted from the start of training) is in the warmup.
    pub fn active(&self, ni: usize) -> bool {
        ni <= self.nw
    }

    fn at(&self, ni: usize, start: f64, end: f64) -> f64 {
        interp(ni as f64, 0.0, self.nw as f64, start, end)
    }

    /// The lrs indexed by [`ParamGroup`](super::ParamGroup) at iteration `ni`, with `lf` the
    /// schedule's factor for the current epoch; `None` after warmup.
    pub fn lrs(&self, ni: usize, lr0: f64, lf: f64) -> Option<[f64; 3]> {
        self.active(ni).then(|| {
            let target = lr0 * lf;
            let other = self.at(ni, 0.0, target);
            [self.at(ni, self.warmup_bias_lr, target), other, other]
        })
    }

    /// The SGD momentum at iteration `ni`; `None` after warmup.
    pub fn momentum(&self, ni: usize) -> Option<f64> {
        self.active(ni).then(|| self.at(ni, self.warmup_momentum, self.momentum))
    }

    /// The number of batches to accumulate before an optimizer step at iteration `ni`
    /// (`max(1, round(interp(ni, [0, nw], [1, nbs/bs])))`, ties to even as numpy rounds), and
    /// [`accumulate_steps`](super::accumulate_steps) after warmup.
    ///
    /// # Panics
    ///
    /// If `bs` is 0.
    pub fn accumulate(&self, ni: usize, nbs: usize, bs: usize) -> usize {
        if !self.active(ni) {
            return super::accumulate_steps(nbs, bs);
        }
        assert!(bs > 0, "batch size must be positive");
        let a = self.at(ni, 1.0, nbs as f64 / bs as f64).round_ties_even();
        (a as usize).max(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interp_ends_and_middle() {
        assert_eq!(interp(-1.0, 0.0, 10.0, 2.0, 4.0), 2.0);
        assert_eq!(interp(0.0, 0.0, 10.0, 2.0, 4.0), 2.0);
        assert_eq!(interp(5.0, 0.0, 10.0, 2.0, 4.0), 3.0);
        assert_eq!(interp(10.0, 0.0, 10.0, 2.0, 4.0), 4.0);
        assert_eq!(interp(11.0, 0.0, 10.0, 2.0, 4.0), 4.0);
    }

    #[test]
    fn warmup_is_at_least_100_iterations_and_rounds_half_to_even() {
        assert_eq!(Warmup::new(3.0, 50, 0.1, 0.8, 0.937).iterations(), 150);
        assert_eq!(Warmup::new(3.0, 20, 0.1, 0.8, 0.937).iterations(), 100);
        assert_eq!(Warmup::new(0.0, 1000, 0.1, 0.8, 0.937).iterations(), 100);
        assert_eq!(Warmup::new(2.5, 41, 0.1, 0.8, 0.937).iterations(), 102); // 102.5 → 102
        assert_eq!(Warmup::new(2.5, 43, 0.1, 0.8, 0.937).iterations(), 108); // 107.5 → 108
    }

    #[test]
    fn warmup_ends_after_nw() {
        let w = Warmup::new(3.0, 50, 0.1, 0.8, 0.937);
        assert_eq!(w.lrs(150, 0.01, 1.0), Some([0.01, 0.01, 0.01]));
        assert_eq!(w.momentum(150), Some(0.937));
        assert_eq!(w.lrs(151, 0.01, 1.0), None);
        assert_eq!(w.momentum(151), None);
        assert_eq!(w.accumulate(151, 64, 16), 4);
        assert_eq!(w.accumulate(0, 64, 16), 1);
    }

    #[test]
    fn schedules_start_at_one_and_end_at_lrf() {
        for s in [LrSchedule::Linear { lrf: 0.01, epochs: 300 }, LrSchedule::Cosine { lrf: 0.01, epochs: 300 }] {
            assert_eq!(s.factor(0), 1.0);
            assert!((s.factor(300) - 0.01).abs() < 1e-15);
            assert!(s.factor(150) < 1.0 && s.factor(150) > 0.01);
        }
    }
}
