//! Host-side activation observers (calibrators) for int8 post-training quantization.
//!
//! An [`Observer`] watches the activations of one tensor, batch after batch ([`Observer::observe`]),
//! and then proposes a clipping range `(lo, hi)` for a quantization [`Grid`] ([`Observer::range`]).
//! Every range contains zero, so that zero is exactly representable, and is non-degenerate
//! (`hi > lo`); on a symmetric grid it is `(-a, a)`.
//!
//! # Methods ([`CalibMethod`])
//!
//! - **Min-max**: the running minimum and maximum of everything seen, or, with
//!   [`ObserverConfig::ema`] set, an exponential moving average of the per-batch extremes
//!   (Krishnamoorthi 2018, "Quantizing deep convolutional networks for efficient inference: a
//!   whitepaper"). It never clips, so a single outlier stretches the grid.
//! - **Percentile**: the `p`-th percentile of `|x|` (symmetric grids), or the `(100 - p)`-th and
//!   `p`-th percentiles of `x` (asymmetric grids), read off the histogram with linear interpolation
//!   inside a bin (Wu et al. 2020, "Integer Quantization for Deep Learning Inference: Principles and
//!   Empirical Evaluation", arXiv:2004.09602).
//! - **MSE**: the clip range that minimises the expected squared error of quantize → dequantize
//!   over the histogram, each bin's values represented by its centre and weighted by its count;
//!   values beyond the clip contribute their clipping error (Wu et al. 2020). Note that the MSE
//!   criterion weighs an outlier by its squared distance: a handful of huge outliers is usually
//!   *kept* (clipping them costs more than the rounding error it saves), while long, thin tails are
//!   clipped.
//! - **Entropy**: the clip range minimising the KL divergence `KL(P‖Q)` between the clipped
//!   histogram `P` (the mass beyond the clip added to the last bin) and its quantized version `Q`
//!   (Migacz 2017, "8-bit Inference with TensorRT", GTC; Wu et al. 2020). `Q` is built as in
//!   TensorRT: the bins inside the clip (without the clipped mass) are merged into as many equal
//!   groups as the clip holds levels, each group's mass is spread uniformly over the bins where `P`
//!   is non-zero, and bins where `P > 0` but `Q = 0` are smoothed with a small ε. The search is
//!   one-sided, from zero outwards: a symmetric grid works on `|x|` with 128 levels (8 bits), as
//!   TensorRT does. An asymmetric grid keeps the lower bound at the observed minimum and searches
//!   the upper clip `c` on the histogram of the values `≥ 0` alone (negative values are in neither
//!   `P` nor `Q`), with the positive share of the 256 levels, `round(256 · c / (c + |lo|))` (all
//!   256 when `lo = 0`). Clipping a small negative range such as SiLU's hard minimum (−0.2785)
//!   would save less than a level, while treating its spike of values as clipped mass distorts the
//!   divergence; only a real negative tail (`|min|` at least half the upper clip) is searched the
//!   same way, on the mirrored negative half, alternating with the upper clip. Exact zeros are left
//!   out of `P` and `Q` (zero is exactly representable). Clip edges are rounded outwards to bin
//!   edges, so the `t = 1` candidate keeps every value. Only clips covering at least as many
//!   histogram bins as levels are candidates; when the histogram is too coarse for any, the method
//!   falls back to min-max.
//!
//! # Candidates
//!
//! MSE and entropy search clips `t · [lo, hi]`, where `[lo, hi]` is the observed range widened to
//! include zero (`[0, max|x|]` on symmetric grids), for `t` on a grid of ~130–330 values in `(0, 1]`:
//! `k/128` for `k = 1..=128`, refined below `t ≈ 0.18` by geometric steps of `2^(-1/16)` (≈ 4.4 %)
//! down to one histogram bin, so that clips far below the maximum are found precisely. On
//! asymmetric grids MSE refines the best common `t` by coordinate descent on separate scales for
//! the negative and the positive side (a one-sided outlier must not drag the other side in);
//! entropy searches `t · hi` and, for a real negative tail, `t · lo` separately (see above).
//!
//! # Histogram
//!
//! All methods but min-max read a histogram, which is always kept. Its bin width is fixed by the
//! first batch with a non-zero spread (`(max(hi, 0) - min(lo, 0)) / bins`), and its bin edges are
//! integer multiples of the width, so zero is always an edge and the histogram of `|x|` is an exact
//! fold of the signed one. Later values outside it grow it by whole bins; when it would exceed
//! `16 × bins` bins, adjacent pairs of bins are merged (doubling the width) until it fits, so earlier
//! counts never need re-binning and memory stays bounded. Zeros seen before any spread are counted
//! and added once the histogram exists. Exact zeros (frequent after ReLU, or from padding) are also
//! counted apart, and the percentile and MSE methods treat them as a point mass at 0 instead of
//! spreading them over the first bin.
//!
//! # Degenerate data
//!
//! If every value seen is zero, [`Observer::range`] returns `(-1e-8, 1e-8)` on symmetric grids and
//! `(0, 1e-8)` on asymmetric ones ([`DEGENERATE_HALF_RANGE`]).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Half-width of the range returned when every observed value is zero: `(-ε, ε)` on symmetric
/// grids, `(0, ε)` on asymmetric ones.
pub const DEGENERATE_HALF_RANGE: f32 = 1e-8;

/// The histogram never holds more than this many times [`ObserverConfig::bins`] bins.
const MAX_BINS_FACTOR: usize = 16;

/// Upper bound on [`ObserverConfig::bins`] (larger values are clamped), to keep memory bounded.
const MAX_TARGET_BINS: usize = 1 << 16;

/// Number of linear candidate scales `k / LINEAR_STEPS`.
const LINEAR_STEPS: usize = 128;

/// Geometric refinement of the candidate scales: ratio `2^(-1/GEOMETRIC_PER_OCTAVE)`.
const GEOMETRIC_PER_OCTAVE: f64 = 16.0;

/// Rounds of coordinate descent for asymmetric clip searches.
const ASYMMETRIC_ROUNDS: usize = 4;

/// Asymmetric entropy search: the negative side is searched only when its magnitude is at least this
/// fraction of the positive clip (a real negative tail); otherwise the lower bound stays at the
/// observed minimum (e.g. SiLU's hard bound at −0.2785, whose clipping would save less than a level).
const NEG_SEARCH_RATIO: f64 = 0.5;

/// Smoothing mass (in normalised units) for bins where `P > 0` but `Q = 0` in the KL divergence.
const KL_EPSILON: f64 = 1e-4;

/// Calibration method: how an [`Observer`] turns the values it has seen into a clipping range.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CalibMethod {
    /// Running minimum and maximum (or their EMA); never clips.
    MinMax,
    /// A percentile of `|x|` (symmetric) or of both tails of `x` (asymmetric).
    Percentile,
    /// The clip minimising the mean squared quantize → dequantize error over the histogram.
    Mse,
    /// The clip minimising `KL(P‖Q)` between the clipped and the quantized histogram (TensorRT).
    Entropy,
}

impl CalibMethod {
    /// Every method, in declaration order.
    pub const ALL: [CalibMethod; 4] =
        [CalibMethod::MinMax, CalibMethod::Percentile, CalibMethod::Mse, CalibMethod::Entropy];

    /// The method's name: `"minmax"`, `"percentile"`, `"mse"` or `"entropy"` (also its serde name).
    pub fn name(self) -> &'static str {
        match self {
            CalibMethod::MinMax => "minmax",
            CalibMethod::Percentile => "percentile",
            CalibMethod::Mse => "mse",
            CalibMethod::Entropy => "entropy",
        }
    }
}

impl FromStr for CalibMethod {
    type Err = String;

    /// Parses a method name (case-insensitive, surrounding blanks ignored); `"kl"` is accepted as an
    /// alias of `"entropy"`. The error lists the valid names.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let wanted = s.trim().to_ascii_lowercase();
        if wanted == "kl" {
            return Ok(CalibMethod::Entropy);
        }
        CalibMethod::ALL.into_iter().find(|m| m.name() == wanted).ok_or_else(|| {
            let names: Vec<&str> = CalibMethod::ALL.iter().map(|m| m.name()).collect();
            format!("unknown calibration method `{s}`; expected one of: {}", names.join(", "))
        })
    }
}

impl fmt::Display for CalibMethod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Settings of an [`Observer`]. Missing fields deserialize to their [`Default`] values.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ObserverConfig {
    /// How the clip range is chosen.
    pub method: CalibMethod,
    /// Percentile (in percent) kept by [`CalibMethod::Percentile`]; default 99.99. Clamped to
    /// `[0, 100]` (non-finite values read as 100). On asymmetric grids the lower bound is the
    /// `(100 - p)`-th percentile and the upper the `p`-th (whichever is smaller comes first).
    pub percentile: f64,
    /// Number of histogram bins the first batch's spread is divided into; default 2048. The
    /// histogram holds at most `16 × bins` bins. Clamped to `1..=65536`.
    pub bins: usize,
    /// Min-max only: `None` keeps the running min/max; `Some(m)` keeps an exponential moving average
    /// of the per-batch min/max, `new = (1 - m) · old + m · batch` (the first batch initialises it).
    /// `m` is clamped to `[0, 1]`; a non-finite `m` reads as `None`.
    pub ema: Option<f64>,
}

impl Default for ObserverConfig {
    /// Min-max, 99.99 %, 2048 bins, no EMA.
    fn default() -> Self {
        ObserverConfig { method: CalibMethod::MinMax, percentile: 99.99, bins: 2048, ema: None }
    }
}

/// The quantization grid a range is chosen for.
///
/// With `bits = b`, a symmetric grid has the integer levels `-(2^(b-1) - 1) ..= 2^(b-1) - 1`
/// (`-127..=127` for 8 bits) and zero point 0; an asymmetric grid has `0 ..= 2^b - 1` (`0..=255`)
/// and a zero point. `bits` is clamped to `2..=16`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Grid {
    /// Symmetric (signed, zero point 0) rather than asymmetric (unsigned with a zero point).
    pub symmetric: bool,
    /// Bit width.
    pub bits: u32,
}

impl Grid {
    /// Symmetric 8-bit grid: levels `-127..=127`.
    pub const INT8: Grid = Grid { symmetric: true, bits: 8 };
    /// Asymmetric 8-bit grid: levels `0..=255`.
    pub const UINT8: Grid = Grid { symmetric: false, bits: 8 };

    /// The integer levels `(qmin, qmax)`: `(-127, 127)` or `(0, 255)` for 8 bits.
    pub fn qrange(self) -> (i64, i64) {
        let bits = self.bits.clamp(2, 16);
        if self.symmetric {
            let q = (1i64 << (bits - 1)) - 1;
            (-q, q)
        } else {
            (0, (1i64 << bits) - 1)
        }
    }

    /// Number of quantized levels the entropy method merges the histogram into: `2^(bits-1)` on
    /// `|x|` for symmetric grids (128 for 8 bits, as TensorRT), `2^bits` for asymmetric ones (shared
    /// between the two sides of zero in proportion to their clips).
    fn entropy_levels(self) -> usize {
        let bits = self.bits.clamp(2, 16);
        if self.symmetric { 1usize << (bits - 1) } else { 1usize << bits }
    }
}

/// Collects the activations of one tensor and proposes a clipping range for it.
///
/// ```ignore
/// let mut obs = Observer::new(ObserverConfig { method: CalibMethod::Percentile, ..Default::default() });
/// for batch in batches {
///     obs.observe(&batch);
/// }
/// let (lo, hi) = obs.range(Grid::INT8).expect("saw data");
/// ```
#[derive(Clone, Debug)]
pub struct Observer {
    cfg: ObserverConfig,
    count: u64,
    raw: Option<(f32, f32)>,
    ema: Option<(f64, f64)>,
    hist: Histogram,
}

impl Observer {
    /// An observer that has seen nothing yet.
    pub fn new(cfg: ObserverConfig) -> Self {
        let hist = Histogram::new(cfg.bins);
        Observer { cfg, count: 0, raw: None, ema: None, hist }
    }

    /// The observer's settings.
    pub fn config(&self) -> &ObserverConfig {
        &self.cfg
    }

    /// Adds a batch of values. Non-finite values (NaN, ±∞) are ignored; a batch without finite values
    /// (empty included) changes nothing, not even the EMA.
    pub fn observe(&mut self, values: &[f32]) {
        let mut n = 0u64;
        let (mut lo, mut hi) = (f32::INFINITY, f32::NEG_INFINITY);
        for &v in values.iter().filter(|v| v.is_finite()) {
            n += 1;
            lo = lo.min(v);
            hi = hi.max(v);
        }
        if n == 0 {
            return;
        }
        self.count += n;
        self.raw = Some(match self.raw {
            Some((a, b)) => (a.min(lo), b.max(hi)),
            None => (lo, hi),
        });
        if let Some(m) = self.ema_momentum() {
            let (bl, bh) = (f64::from(lo), f64::from(hi));
            self.ema = Some(match self.ema {
                Some((a, b)) => ((1.0 - m) * a + m * bl, (1.0 - m) * b + m * bh),
                None => (bl, bh),
            });
        }
        self.hist.add(values, lo, hi, n);
    }

    /// Number of finite values observed.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// The raw running `(min, max)` of the values seen (not widened to include zero), or their EMA
    /// when [`ObserverConfig::ema`] is set; `None` before any finite value.
    pub fn min_max(&self) -> Option<(f32, f32)> {
        match (self.ema_momentum(), self.ema) {
            (Some(_), Some((a, b))) => Some((a as f32, b as f32)),
            _ => self.raw,
        }
    }

    /// The clipping range chosen by the configured method for `grid`; `None` before any finite value.
    ///
    /// The range contains zero and has `hi > lo`; on symmetric grids it is `(-a, a)`. Histogram
    /// methods that find no candidate (e.g. entropy on a too-coarse histogram) or choose a
    /// degenerate range (e.g. a percentile of mostly-zero data) fall back to the raw min-max range;
    /// all-zero data gives the tiny range described in the module docs.
    pub fn range(&self, grid: Grid) -> Option<(f32, f32)> {
        let (raw_lo, raw_hi) = self.raw?;
        let (raw_lo, raw_hi) = (f64::from(raw_lo), f64::from(raw_hi));
        let chosen = match self.cfg.method {
            CalibMethod::MinMax => self.min_max().map(|(a, b)| (f64::from(a), f64::from(b))),
            method => self.hist.view(grid.symmetric, raw_lo, raw_hi).and_then(|view| match method {
                CalibMethod::Percentile => Some(view.percentile_range(self.cfg.percentile)),
                CalibMethod::Mse => view.mse_range(grid),
                CalibMethod::Entropy => view.entropy_range(grid),
                CalibMethod::MinMax => None,
            }),
        };
        // A degenerate choice (e.g. the 99.99th percentile of mostly-zero data) falls back to the raw
        // min-max range, and all-zero data to the tiny default range.
        Some(
            chosen
                .and_then(|(lo, hi)| finish_range(lo, hi, grid))
                .or_else(|| finish_range(raw_lo, raw_hi, grid))
                .unwrap_or(if grid.symmetric {
                    (-DEGENERATE_HALF_RANGE, DEGENERATE_HALF_RANGE)
                } else {
                    (0.0, DEGENERATE_HALF_RANGE)
                }),
        )
    }

    /// The EMA momentum in use, if any.
    fn ema_momentum(&self) -> Option<f64> {
        self.cfg.ema.filter(|m| m.is_finite()).map(|m| m.clamp(0.0, 1.0))
    }
}

/// Widens `(lo, hi)` to include zero and makes it symmetric for symmetric grids; `None` if the result
/// is degenerate (`hi == lo` in `f32`) or not finite.
fn finish_range(lo: f64, hi: f64, grid: Grid) -> Option<(f32, f32)> {
    // `f32::min`/`max` ignore NaN, so a NaN bound collapses to zero.
    let lo = (lo as f32).min(0.0);
    let hi = (hi as f32).max(0.0);
    let (lo, hi) = if grid.symmetric {
        let a = (-lo).max(hi);
        (-a, a)
    } else {
        (lo, hi)
    };
    (hi > lo && lo.is_finite() && hi.is_finite()).then_some((lo, hi))
}

/// Fixed-width histogram of the signed values, with bin edges at integer multiples of `width`:
/// `counts[j]` counts values in `[(start + j) · width, (start + j + 1) · width)`.
#[derive(Clone, Debug)]
struct Histogram {
    /// Bins the first spread is divided into.
    target_bins: usize,
    /// Bin width; meaningless while `counts` is empty.
    width: f64,
    /// Absolute index of `counts[0]`.
    start: i64,
    counts: Vec<u64>,
    /// Zeros seen before the width could be chosen.
    pending_zeros: u64,
    /// Exact zeros seen (all in the bin whose left edge is 0); the methods treat them as a point mass
    /// at 0 rather than spread over that bin (ReLU outputs are often mostly zeros).
    zeros: u64,
}

impl Histogram {
    fn new(bins: usize) -> Self {
        Histogram {
            target_bins: bins.clamp(1, MAX_TARGET_BINS),
            width: 0.0,
            start: 0,
            counts: Vec::new(),
            pending_zeros: 0,
            zeros: 0,
        }
    }

    fn max_len(&self) -> usize {
        self.target_bins * MAX_BINS_FACTOR
    }

    /// Adds the finite values of a batch whose finite min/max are `lo`/`hi` (`n` finite values).
    fn add(&mut self, values: &[f32], lo: f32, hi: f32, n: u64) {
        let (lo, hi) = (f64::from(lo), f64::from(hi));
        if self.counts.is_empty() {
            let (lo0, hi0) = (lo.min(0.0), hi.max(0.0));
            let spread = hi0 - lo0;
            if spread <= 0.0 {
                // Only zeros so far: no scale to choose a width from yet.
                self.pending_zeros += n;
                self.zeros += n;
                return;
            }
            self.width = spread / self.target_bins as f64;
            self.start = (lo0 / self.width).floor() as i64;
            let end = (hi0 / self.width).floor() as i64;
            let len = usize::try_from(end - self.start + 1).unwrap_or(1).max(1);
            self.counts = vec![0; len];
            let zeros = std::mem::take(&mut self.pending_zeros);
            let z = self.index(0.0);
            self.counts[z] += zeros;
            // The first spread gives ~bins + 2 bins; `max_len` ≥ 16 × bins, but stay safe for tiny `bins`.
            self.ensure(lo0, hi0);
        } else {
            self.ensure(lo, hi);
        }
        for &v in values.iter().filter(|v| v.is_finite()) {
            let j = self.index(f64::from(v));
            self.counts[j] += 1;
            if v == 0.0 {
                self.zeros += 1;
            }
        }
    }

    /// Grows the histogram by whole bins to cover `[lo, hi]`, halving its resolution first as often as
    /// needed to stay within `max_len` bins.
    fn ensure(&mut self, lo: f64, hi: f64) {
        let max_len = self.max_len() as f64;
        loop {
            let cur_lo = self.start as f64;
            let cur_hi = (self.start + self.counts.len() as i64 - 1) as f64;
            let need_lo = (lo / self.width).floor().min(cur_lo);
            let need_hi = (hi / self.width).floor().max(cur_hi);
            if need_hi - need_lo + 1.0 <= max_len {
                let (new_lo, new_hi) = (need_lo as i64, need_hi as i64);
                let front = usize::try_from(self.start - new_lo).unwrap_or(0);
                let back = usize::try_from(new_hi - cur_hi as i64).unwrap_or(0);
                if front > 0 {
                    let mut grown = vec![0; front];
                    grown.extend_from_slice(&self.counts);
                    self.counts = grown;
                    self.start = new_lo;
                }
                self.counts.resize(self.counts.len() + back, 0);
                return;
            }
            self.halve();
        }
    }

    /// Merges adjacent pairs of bins, doubling the width; edges stay multiples of the new width.
    fn halve(&mut self) {
        if self.start.rem_euclid(2) != 0 {
            self.counts.insert(0, 0);
            self.start -= 1;
        }
        if !self.counts.len().is_multiple_of(2) {
            self.counts.push(0);
        }
        self.counts = self.counts.chunks_exact(2).map(|p| p[0] + p[1]).collect();
        self.start = self.start.div_euclid(2);
        self.width *= 2.0;
    }

    /// The bin holding `v` (clamped into the histogram against floating-point edge effects).
    fn index(&self, v: f64) -> usize {
        let k = (v / self.width).floor() - self.start as f64;
        k.clamp(0.0, (self.counts.len() - 1) as f64) as usize
    }

    /// The histogram the methods work on: of `|x|` (folded) when `symmetric`, else of `x`. `min`/`max`
    /// are the raw extremes of the data. `None` while no width has been chosen (only zeros seen).
    fn view(&self, symmetric: bool, min: f64, max: f64) -> Option<View> {
        if self.counts.is_empty() || !self.width.is_normal() {
            return None;
        }
        if symmetric {
            let end = self.start + self.counts.len() as i64;
            let len = usize::try_from(end.max(-self.start)).ok()?.max(1);
            let mut counts = vec![0u64; len];
            for (j, &c) in self.counts.iter().enumerate() {
                let k = self.start + j as i64;
                // Bin k < 0 covers [k·w, (k+1)·w), i.e. |x| in ((-k-1)·w, -k·w]: bin -k-1 of |x|.
                let a = if k >= 0 { k } else { -k - 1 };
                if let Some(slot) = usize::try_from(a).ok().and_then(|a| counts.get_mut(a)) {
                    *slot += c;
                }
            }
            let amax = min.abs().max(max.abs());
            Some(View {
                folded: true,
                width: self.width,
                origin: 0,
                counts,
                zeros: self.zeros,
                vmin: 0.0,
                vmax: amax,
                lo: 0.0,
                hi: amax,
            })
        } else {
            Some(View {
                folded: false,
                width: self.width,
                origin: self.start,
                counts: self.counts.clone(),
                zeros: self.zeros,
                vmin: min,
                vmax: max,
                lo: min.min(0.0),
                hi: max.max(0.0),
            })
        }
    }
}

/// A histogram as the methods see it: `counts[j]` covers `[(origin + j) · width, (origin + j + 1) ·
/// width)`, of which `zeros` values (in the bin with left edge 0) are exact zeros; `vmin..=vmax` are
/// the data's extremes (of `|x|` when folded) and `lo..=hi` that range widened to include zero.
struct View {
    /// Histogram of `|x|` (for symmetric grids) rather than of `x`.
    folded: bool,
    width: f64,
    origin: i64,
    counts: Vec<u64>,
    zeros: u64,
    vmin: f64,
    vmax: f64,
    lo: f64,
    hi: f64,
}

impl View {
    /// Left edge of bin `j`.
    fn edge(&self, j: usize) -> f64 {
        (self.origin + j as i64) as f64 * self.width
    }

    fn total(&self) -> f64 {
        self.counts.iter().map(|&c| c as f64).sum()
    }

    /// How many of bin `j`'s values are exact zeros.
    fn zeros_in(&self, j: usize) -> u64 {
        if self.origin + j as i64 == 0 { self.zeros.min(self.counts[j]) } else { 0 }
    }

    /// The `q`-quantile (`q` in `[0, 1]`), linear within a bin (after the point mass of exact zeros
    /// in the bin starting at 0), clamped to the data's extremes.
    fn quantile(&self, q: f64) -> f64 {
        let target = q.clamp(0.0, 1.0) * self.total();
        let mut cum = 0.0;
        for (j, &c) in self.counts.iter().enumerate() {
            if c == 0 {
                continue;
            }
            let zeros = self.zeros_in(j) as f64;
            let c = c as f64;
            if cum + c >= target {
                let rest = target - cum - zeros;
                let x = if rest <= 0.0 { 0.0 } else { self.edge(j) + (rest / (c - zeros)).min(1.0) * self.width };
                return x.clamp(self.vmin, self.vmax);
            }
            cum += c;
        }
        self.vmax
    }

    /// Percentile clip: symmetric views give `(-a, a)` with `a` the `p`-th percentile of `|x|`;
    /// asymmetric ones the `(100 - p)`-th and `p`-th percentiles of `x`.
    fn percentile_range(&self, percentile: f64) -> (f64, f64) {
        let p = if percentile.is_finite() { percentile.clamp(0.0, 100.0) } else { 100.0 };
        let q = p / 100.0;
        if self.folded {
            let a = self.quantile(q);
            (-a, a)
        } else {
            (self.quantile(q.min(1.0 - q)), self.quantile(q.max(1.0 - q)))
        }
    }

    /// Candidate scales for clips of this view.
    fn scales(&self) -> Vec<f64> {
        let span = self.hi.max(-self.lo);
        candidate_scales(if span > 0.0 { self.width / span } else { 1.0 })
    }

    /// MSE clip: symmetric grids search `t · max|x|`, asymmetric ones `(t_lo · lo, t_hi · hi)`.
    fn mse_range(&self, grid: Grid) -> Option<(f64, f64)> {
        let bins = MseBins::new(self);
        let ts = self.scales();
        if grid.symmetric {
            let a = self.hi;
            let t = search_symmetric(&ts, |t| bins.error(-t * a, t * a, grid))?;
            Some((-t * a, t * a))
        } else {
            let (lo, hi) = (self.lo, self.hi);
            let (tl, th) = search_asymmetric(&ts, |tl, th| bins.error(tl * lo, th * hi, grid))?;
            Some((tl * lo, th * hi))
        }
    }

    /// Entropy (KL) clip; see the module docs. Symmetric grids search `t · max|x|` on the folded
    /// histogram; asymmetric ones search each side of zero on its own half of the histogram
    /// ([`KlSide`]): first the positive side with the lower bound at the observed minimum, then,
    /// only if that minimum is at least [`NEG_SEARCH_RATIO`] times the positive clip, both sides in
    /// turn (the levels each side gets depend on the other side's clip). Exact zeros are left out
    /// of `P` and `Q`: zero is exactly representable, and a spike of zeros in the first bin would
    /// make the divergence depend on how many bins the first group spans. `None` if no side has a
    /// candidate (too coarse a histogram).
    fn entropy_range(&self, grid: Grid) -> Option<(f64, f64)> {
        let levels = grid.entropy_levels();
        let ts = self.scales();
        // Relative index of the bin whose left edge is zero (the histogram always covers zero).
        let z = usize::try_from(-self.origin).ok().filter(|&z| z < self.counts.len())?;
        // The positive (or folded) side from the zero edge on, without the exact zeros.
        let mut upper = self.counts[z..].to_vec();
        upper[0] -= self.zeros_in(z);
        if self.folded {
            let c = KlSide::new(upper, self.width, self.hi, false).search(&ts, 0.0, levels)?;
            return Some((-c, c));
        }
        let pos = KlSide::new(upper, self.width, self.hi, false);
        let neg = KlSide::new(self.counts[..z].iter().rev().copied().collect(), self.width, -self.lo, true);
        let (mut c_lo, mut c_hi) = (-self.lo, self.hi);
        let mut found = false;
        if let Some(c) = pos.search(&ts, c_lo, levels) {
            c_hi = c;
            found = true;
        }
        if c_lo > 0.0 && c_lo >= NEG_SEARCH_RATIO * c_hi {
            for _ in 0..ASYMMETRIC_ROUNDS {
                let before = (c_lo, c_hi);
                if let Some(c) = neg.search(&ts, c_hi, levels) {
                    c_lo = c;
                    found = true;
                }
                if let Some(c) = pos.search(&ts, c_lo, levels) {
                    c_hi = c;
                }
                if (c_lo, c_hi) == before {
                    break;
                }
            }
        }
        found.then_some((if c_lo > 0.0 { -c_lo } else { 0.0 }, c_hi))
    }
}

/// One side of a histogram for the entropy search: the bins from the zero edge outwards, bin `j`
/// holding the magnitudes between `j · width` and `(j + 1) · width` (the negative side mirrored;
/// the folded histogram of `|x|` is one side on its own). Mass on the other side of zero is in
/// neither `P` nor `Q`.
struct KlSide {
    kl: KlPrefix,
    len: usize,
    width: f64,
    /// The largest magnitude on this side (the `t = 1` clip).
    extreme: f64,
    /// Negative side: bins are closed on the right (`(j·w, (j+1)·w]` in magnitude), not the left.
    mirrored: bool,
}

impl KlSide {
    fn new(counts: Vec<u64>, width: f64, extreme: f64, mirrored: bool) -> Self {
        KlSide { kl: KlPrefix::new(&counts), len: counts.len(), width, extreme, mirrored }
    }

    /// The number of bins from zero that hold every magnitude up to `x`: rounded *up*, so that a
    /// clip never cuts into the bin of a value it should keep (and `t = 1` keeps everything).
    fn bins_to(&self, x: f64) -> usize {
        let k = x / self.width;
        let k = if self.mirrored { k.ceil() } else { k.floor() + 1.0 };
        k.clamp(0.0, self.len as f64) as usize
    }

    /// The clip magnitude (an edge at or above `t · extreme`, at most `extreme`) for candidate `t`,
    /// with the number of bins it covers.
    fn clip(&self, t: f64) -> (f64, usize) {
        let p1 = self.bins_to(t * self.extreme);
        ((p1 as f64 * self.width).min(self.extreme), p1)
    }

    /// The clip magnitude minimising `KL(P‖Q)` on this side, `other` being the magnitude of the
    /// clip on the other side of zero: the grid's `levels` are shared in proportion, this side
    /// getting `round(levels · c / (c + other))` of them for a clip `c` (all of them when
    /// `other = 0`). `None` if no candidate covers enough bins or the side holds no mass.
    fn search(&self, ts: &[f64], other: f64, levels: usize) -> Option<f64> {
        let t = search_symmetric(ts, |t| {
            let (c, p1) = self.clip(t);
            self.kl.divergence(0, p1, side_levels(levels, c, other))
        })?;
        Some(self.clip(t).0)
    }
}

/// The share of `levels` that falls on a side clipped at magnitude `c` when the other side is
/// clipped at `other` (at least 2).
fn side_levels(levels: usize, c: f64, other: f64) -> usize {
    let share = if c + other > 0.0 { c / (c + other) } else { 1.0 };
    ((levels as f64 * share).round() as usize).clamp(2, levels.max(2))
}

/// Candidate scales `t` in `(0, 1]`, in decreasing order: `k / 128` for `k = 128..=1`, plus geometric
/// steps of `2^(-1/16)` where they are finer than `1/128`, down to `min_t` (one histogram bin).
fn candidate_scales(min_t: f64) -> Vec<f64> {
    // A non-finite or non-positive bound (no resolution known) keeps the linear scales only.
    let min_t = if min_t.is_finite() && min_t > 0.0 { min_t } else { 1.0 };
    let mut ts: Vec<f64> = (1..=LINEAR_STEPS).rev().map(|k| k as f64 / LINEAR_STEPS as f64).collect();
    let ratio = (-1.0 / GEOMETRIC_PER_OCTAVE).exp2();
    let linear_step = 1.0 / LINEAR_STEPS as f64;
    let mut t = 1.0f64;
    // 40 octaves at most: far below any histogram's resolution.
    for _ in 0..(40.0 * GEOMETRIC_PER_OCTAVE) as usize {
        t *= ratio;
        if t < min_t {
            break;
        }
        if t * (1.0 - ratio) < linear_step && t < 1.0 - linear_step {
            ts.push(t);
        }
    }
    ts.sort_by(|a, b| b.total_cmp(a));
    ts.dedup_by(|a, b| (*a - *b).abs() <= 1e-12);
    ts
}

/// The `t` (scanned in the given order, decreasing) with the smallest objective; ties keep the
/// larger `t`. `None` if no candidate is feasible.
fn search_symmetric(ts: &[f64], f: impl Fn(f64) -> Option<f64>) -> Option<f64> {
    let mut best: Option<(f64, f64)> = None;
    for &t in ts {
        if let Some(e) = f(t).filter(|e| e.is_finite())
            && best.is_none_or(|(b, _)| e < b)
        {
            best = Some((e, t));
        }
    }
    best.map(|(_, t)| t)
}

/// The best common scale `t` for both sides, refined by coordinate descent on separate scales
/// `(t_lo, t_hi)` for the negative and positive side. Returns `(t_lo, t_hi)`.
fn search_asymmetric(ts: &[f64], f: impl Fn(f64, f64) -> Option<f64>) -> Option<(f64, f64)> {
    let t = search_symmetric(ts, |t| f(t, t))?;
    let (mut tl, mut th) = (t, t);
    let mut err = f(tl, th)?;
    for _ in 0..ASYMMETRIC_ROUNDS {
        let before = err;
        for &t in ts {
            if let Some(e) = f(tl, t).filter(|e| e.is_finite())
                && e < err
            {
                err = e;
                th = t;
            }
        }
        for &t in ts {
            if let Some(e) = f(t, th).filter(|e| e.is_finite())
                && e < err
            {
                err = e;
                tl = t;
            }
        }
        if err >= before {
            break;
        }
    }
    Some((tl, th))
}

/// The non-empty bins of a view as (representative value, count), with prefix sums of `c`, `c·x`
/// and `c·x²` so that the error of clipped bins costs O(1) per candidate.
struct MseBins {
    x: Vec<f64>,
    c: Vec<f64>,
    pre_c: Vec<f64>,
    pre_cx: Vec<f64>,
    pre_cx2: Vec<f64>,
}

impl MseBins {
    fn new(view: &View) -> Self {
        let (mut x, mut c) = (Vec::new(), Vec::new());
        for (j, &n) in view.counts.iter().enumerate() {
            let zeros = view.zeros_in(j);
            if zeros > 0 {
                x.push(0.0f64.clamp(view.vmin, view.vmax));
                c.push(zeros as f64);
            }
            if n > zeros {
                // The bin centre, clamped to the data (the outermost bins may reach past it).
                x.push((view.edge(j) + 0.5 * view.width).clamp(view.vmin, view.vmax));
                c.push((n - zeros) as f64);
            }
        }
        let prefix = |f: &dyn Fn(f64, f64) -> f64| {
            let mut acc = 0.0;
            let mut out = Vec::with_capacity(x.len() + 1);
            out.push(0.0);
            for (&xi, &ci) in x.iter().zip(&c) {
                acc += f(xi, ci);
                out.push(acc);
            }
            out
        };
        let pre_c = prefix(&|_, c| c);
        let pre_cx = prefix(&|x, c| c * x);
        let pre_cx2 = prefix(&|x, c| c * x * x);
        MseBins { x, c, pre_c, pre_cx, pre_cx2 }
    }

    /// Mean squared error of quantize → dequantize with clip `(lo, hi)` on `grid`; `None` if the clip
    /// is degenerate or there is no data.
    fn error(&self, lo: f64, hi: f64, grid: Grid) -> Option<f64> {
        let total = *self.pre_c.last()?;
        let usable = hi > lo && total > 0.0;
        if !usable {
            return None;
        }
        let (qmin, qmax) = grid.qrange();
        let (qmin, qmax) = (qmin as f64, qmax as f64);
        let s = (hi - lo) / (qmax - qmin);
        let usable = s > 0.0 && s.is_finite();
        if !usable {
            return None;
        }
        let zp = (qmin - (lo / s).round()).clamp(qmin, qmax);
        // Every value at or below `e_lo` (at or above `e_hi`) dequantizes to exactly `e_lo` (`e_hi`).
        let (e_lo, e_hi) = ((qmin - zp) * s, (qmax - zp) * s);
        let i0 = self.x.partition_point(|&x| x <= e_lo);
        let i1 = self.x.partition_point(|&x| x < e_hi).max(i0);
        let n = self.x.len();
        let mut err = self.clipped(0, i0, e_lo) + self.clipped(i1, n, e_hi);
        for (&x, &c) in self.x[i0..i1].iter().zip(&self.c[i0..i1]) {
            let q = (((x / s).round() + zp).clamp(qmin, qmax) - zp) * s;
            err += c * (x - q) * (x - q);
        }
        Some(err / total)
    }

    /// `Σ c·(x - e)²` over the bins `a..b`.
    fn clipped(&self, a: usize, b: usize, e: f64) -> f64 {
        if b <= a {
            return 0.0;
        }
        let c = self.pre_c[b] - self.pre_c[a];
        let cx = self.pre_cx[b] - self.pre_cx[a];
        let cx2 = self.pre_cx2[b] - self.pre_cx2[a];
        (cx2 - 2.0 * e * cx + e * e * c).max(0.0)
    }
}

/// `x · ln x`, with `0 · ln 0 = 0`.
fn xlnx(x: f64) -> f64 {
    if x > 0.0 { x * x.ln() } else { 0.0 }
}

/// Prefix sums over a histogram's bins (count, number of non-empty bins, `c·ln c`) that make each
/// KL candidate cost O(levels) instead of O(bins).
struct KlPrefix {
    counts: Vec<f64>,
    pre_c: Vec<f64>,
    pre_nz: Vec<f64>,
    pre_clnc: Vec<f64>,
}

impl KlPrefix {
    fn new(counts: &[u64]) -> Self {
        let counts: Vec<f64> = counts.iter().map(|&c| c as f64).collect();
        let mut pre_c = vec![0.0; counts.len() + 1];
        let mut pre_nz = vec![0.0; counts.len() + 1];
        let mut pre_clnc = vec![0.0; counts.len() + 1];
        for (j, &c) in counts.iter().enumerate() {
            pre_c[j + 1] = pre_c[j] + c;
            pre_nz[j + 1] = pre_nz[j] + if c > 0.0 { 1.0 } else { 0.0 };
            pre_clnc[j + 1] = pre_clnc[j] + xlnx(c);
        }
        KlPrefix { counts, pre_c, pre_nz, pre_clnc }
    }

    /// `KL(P‖Q)` for the clip covering bins `p0..p1` quantized to `levels` levels:
    ///
    /// - `P` = the bins `p0..p1`, the mass below `p0` added to bin `p0` and the mass from `p1` on
    ///   added to bin `p1 - 1`;
    /// - `Q`: bins `p0..p1` without the clipped mass, merged into `levels` groups of equal size
    ///   (group `g` = bins `p0 + g·m/levels .. p0 + (g+1)·m/levels`, `m = p1 - p0`), each group's mass
    ///   spread uniformly over its bins where `P > 0`; a bin with `P > 0` whose group has no mass
    ///   gets the normalised mass [`KL_EPSILON`] (and `Q` is renormalised).
    ///
    /// `None` if `m < levels` or nothing lies inside the clip.
    fn divergence(&self, p0: usize, p1: usize, levels: usize) -> Option<f64> {
        let m = p1.checked_sub(p0)?;
        if levels < 2 || m < levels || p1 > self.counts.len() {
            return None;
        }
        let total = *self.pre_c.last()?;
        let inside = self.pre_c[p1] - self.pre_c[p0];
        if inside <= 0.0 {
            return None;
        }
        let (first, last) = (p0, p1 - 1);
        // Mass added to the edge bins of P (first != last since m ≥ levels ≥ 2).
        let extra = |j: usize| {
            if j == first {
                self.pre_c[p0]
            } else if j == last {
                total - self.pre_c[p1]
            } else {
                0.0
            }
        };
        // Σ P ln P.
        let mut p_ln_p = self.pre_clnc[p1] - self.pre_clnc[p0];
        for j in [first, last] {
            p_ln_p += xlnx(self.counts[j] + extra(j)) - xlnx(self.counts[j]);
        }
        // Σ P ln q over bins with P > 0 (q unnormalised), split into groups with and without mass.
        let (mut cross, mut zero_mass, mut zero_bins) = (0.0, 0.0, 0.0);
        for g in 0..levels {
            let gs = p0 + g * m / levels;
            let ge = p0 + (g + 1) * m / levels;
            let raw = self.pre_c[ge] - self.pre_c[gs];
            let mut nonzero = self.pre_nz[ge] - self.pre_nz[gs];
            let mut p_mass = raw;
            for j in [first, last] {
                if (gs..ge).contains(&j) && extra(j) > 0.0 {
                    p_mass += extra(j);
                    if self.counts[j] == 0.0 {
                        nonzero += 1.0;
                    }
                }
            }
            if p_mass <= 0.0 {
                continue;
            }
            if raw > 0.0 {
                cross += p_mass * (raw / nonzero).ln();
            } else {
                zero_mass += p_mass;
                zero_bins += nonzero;
            }
        }
        // q̂ = q / SQ with q = eps·inside on smoothed bins and SQ = inside·(1 + zero_bins·eps):
        // KL = Σ p ln p − Σ p ln q̂, p = P / total.
        let sq = inside * (1.0 + zero_bins * KL_EPSILON);
        let kl = p_ln_p / total - total.ln() - (cross + zero_mass * (KL_EPSILON * inside).ln()) / total + sq.ln();
        Some(kl.max(0.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// SplitMix64: a tiny deterministic PRNG.
    struct Rng(u64);

    impl Rng {
        fn next_u64(&mut self) -> u64 {
            self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^ (z >> 31)
        }

        /// Uniform in `[0, 1)`.
        fn uniform(&mut self) -> f64 {
            (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
        }

        /// Standard normal (Box–Muller).
        fn gauss(&mut self) -> f64 {
            let u1 = 1.0 - self.uniform();
            let u2 = self.uniform();
            (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
        }
    }

    fn observer(method: CalibMethod) -> Observer {
        Observer::new(ObserverConfig { method, ..ObserverConfig::default() })
    }

    fn with_bins(method: CalibMethod, bins: usize) -> Observer {
        Observer::new(ObserverConfig { method, bins, ..ObserverConfig::default() })
    }

    fn linspace(a: f32, b: f32, n: usize) -> Vec<f32> {
        (0..n).map(|i| a + (b - a) * i as f32 / (n - 1) as f32).collect()
    }

    /// 10⁵ N(0, 1) values in batches of 10⁴, plus 5 values at 1000 in the middle of the 6th batch.
    fn gaussian_with_outliers() -> Vec<Vec<f32>> {
        let mut rng = Rng(7);
        let mut batches: Vec<Vec<f32>> = (0..10).map(|_| (0..10_000).map(|_| rng.gauss() as f32).collect()).collect();
        batches[5].splice(5000..5000, [1000.0; 5]);
        batches
    }

    fn observe_all(obs: &mut Observer, batches: &[Vec<f32>]) {
        for b in batches {
            obs.observe(b);
        }
    }

    /// Naive fake quantization of raw values (independent of `MseBins`): mean squared error.
    fn naive_mse(values: &[f32], lo: f64, hi: f64, grid: Grid) -> f64 {
        let (qmin, qmax) = grid.qrange();
        let scale = (hi - lo) / (qmax - qmin) as f64;
        let zero_point = if grid.symmetric { 0 } else { (-(lo / scale).round() as i64).clamp(qmin, qmax) };
        let sum: f64 = values
            .iter()
            .map(|&v| {
                let v = f64::from(v);
                let q = ((v / scale).round() as i64 + zero_point).clamp(qmin, qmax);
                let d = (q - zero_point) as f64 * scale;
                (v - d) * (v - d)
            })
            .sum();
        sum / values.len() as f64
    }

    /// SiLU activations of 64 channels (each with its own mean and spread) of Gaussian
    /// pre-activations, 1 % of which are drawn twice as wide (a heavier tail): a hard minimum of
    /// −0.2785 with a spike of values just above it, and a long, thin positive tail.
    fn silu_tensor(seed: u64, n: usize) -> Vec<f32> {
        let mut rng = Rng(seed);
        (0..n)
            .map(|i| {
                let c = (i % 64) as f64;
                let sigma = 1.0 + 1.5 * ((c * 37.0) % 64.0) / 63.0;
                let mu = 0.5 * (((c * 11.0) % 64.0) / 63.0 - 0.5);
                let mut g = rng.gauss();
                if rng.uniform() < 0.01 {
                    g *= 2.0;
                }
                let x = mu + sigma * g;
                (x / (1.0 + (-x).exp())) as f32
            })
            .collect()
    }

    /// The `p`-th percentile of `values` (nearest rank below).
    fn percentile_of(values: &[f32], p: f64) -> f32 {
        let mut sorted = values.to_vec();
        sorted.sort_by(f32::total_cmp);
        sorted[(p / 100.0 * (sorted.len() - 1) as f64) as usize]
    }

    /// An entropy observer with `bins` bins that has seen `data` in batches of 20 000.
    fn entropy_observer(data: &[f32], bins: usize) -> Observer {
        let mut obs = with_bins(CalibMethod::Entropy, bins);
        for batch in data.chunks(20_000) {
            obs.observe(batch);
        }
        obs
    }

    #[test]
    fn calib_method_names_parse_and_display() {
        let names: Vec<&str> = CalibMethod::ALL.iter().map(|m| m.name()).collect();
        assert_eq!(names, ["minmax", "percentile", "mse", "entropy"]);
        for m in CalibMethod::ALL {
            assert_eq!(m.to_string(), m.name());
            assert_eq!(m.name().parse::<CalibMethod>(), Ok(m));
            assert_eq!(m.name().to_uppercase().parse::<CalibMethod>(), Ok(m));
        }
        assert_eq!("kl".parse::<CalibMethod>(), Ok(CalibMethod::Entropy));
        let err = "histogram".parse::<CalibMethod>().unwrap_err();
        for name in names {
            assert!(err.contains(name), "{err}");
        }
    }

    #[test]
    fn defaults_and_grid_levels() {
        let cfg = ObserverConfig::default();
        assert_eq!(cfg, ObserverConfig { method: CalibMethod::MinMax, percentile: 99.99, bins: 2048, ema: None });
        assert_eq!(Grid::INT8.qrange(), (-127, 127));
        assert_eq!(Grid::UINT8.qrange(), (0, 255));
        assert_eq!(Grid { symmetric: true, bits: 4 }.qrange(), (-7, 7));
        assert_eq!(Grid::INT8.entropy_levels(), 128);
        assert_eq!(Grid::UINT8.entropy_levels(), 256);
    }

    #[test]
    fn no_data_gives_none_and_nonfinite_values_are_ignored() {
        for m in CalibMethod::ALL {
            let mut obs = observer(m);
            obs.observe(&[]);
            obs.observe(&[f32::NAN, f32::INFINITY, f32::NEG_INFINITY]);
            assert_eq!(obs.count(), 0);
            assert_eq!(obs.min_max(), None);
            assert_eq!(obs.range(Grid::INT8), None);
            obs.observe(&[f32::NAN, 2.0, f32::INFINITY, -1.0]);
            assert_eq!(obs.count(), 2);
            assert_eq!(obs.min_max(), Some((-1.0, 2.0)));
            assert!(obs.range(Grid::UINT8).is_some());
        }
    }

    #[test]
    fn minmax_is_exact_with_zero_inclusion() {
        let mut obs = observer(CalibMethod::MinMax);
        obs.observe(&[1.5, 3.0, 2.0]);
        assert_eq!(obs.min_max(), Some((1.5, 3.0)));
        assert_eq!(obs.range(Grid::UINT8), Some((0.0, 3.0)));
        assert_eq!(obs.range(Grid::INT8), Some((-3.0, 3.0)));
        obs.observe(&[-4.25, 0.5]);
        assert_eq!(obs.min_max(), Some((-4.25, 3.0)));
        assert_eq!(obs.range(Grid::UINT8), Some((-4.25, 3.0)));
        assert_eq!(obs.range(Grid::INT8), Some((-4.25, 4.25)));

        let mut neg = observer(CalibMethod::MinMax);
        neg.observe(&[-2.0, -0.5]);
        assert_eq!(neg.range(Grid::UINT8), Some((-2.0, 0.0)));
        assert_eq!(neg.range(Grid::INT8), Some((-2.0, 2.0)));
    }

    #[test]
    fn ema_follows_formula() {
        let mut obs = Observer::new(ObserverConfig { ema: Some(0.25), ..ObserverConfig::default() });
        obs.observe(&[-1.0, 0.5, 2.0]);
        assert_eq!(obs.min_max(), Some((-1.0, 2.0)));
        obs.observe(&[]); // no finite values: no update
        obs.observe(&[4.0, -3.0, f32::NAN]);
        // min = 0.75·(−1) + 0.25·(−3) = −1.5; max = 0.75·2 + 0.25·4 = 2.5.
        assert_eq!(obs.min_max(), Some((-1.5, 2.5)));
        assert_eq!(obs.range(Grid::UINT8), Some((-1.5, 2.5)));
        assert_eq!(obs.range(Grid::INT8), Some((-2.5, 2.5)));
        assert_eq!(obs.count(), 5);
    }

    #[test]
    fn all_zero_data_gives_tiny_range() {
        for m in CalibMethod::ALL {
            let mut obs = observer(m);
            obs.observe(&[0.0; 100]);
            assert_eq!(obs.range(Grid::INT8), Some((-DEGENERATE_HALF_RANGE, DEGENERATE_HALF_RANGE)), "{m}");
            assert_eq!(obs.range(Grid::UINT8), Some((0.0, DEGENERATE_HALF_RANGE)), "{m}");
            // Zeros seen before any spread land in the histogram once it exists.
            obs.observe(&[1.0, -1.0]);
            assert_eq!(obs.hist.counts.iter().sum::<u64>(), 102);
            assert_eq!(obs.hist.counts[obs.hist.index(0.0)], 100);
        }
    }

    #[test]
    fn degenerate_choice_falls_back_to_minmax() {
        // 99.99 % of |x| is 0 when more than 99.99 % of the values are zero (e.g. a mostly dead ReLU).
        let mut data = vec![0.0f32; 100_000];
        data.extend([2.0, -0.5, 1.0]);
        let mut obs = observer(CalibMethod::Percentile);
        obs.observe(&data);
        assert_eq!(obs.range(Grid::INT8), Some((-2.0, 2.0)));
        assert_eq!(obs.range(Grid::UINT8), Some((-0.5, 2.0)));
    }

    #[test]
    fn ranges_contain_zero_and_are_nondegenerate() {
        let mut rng = Rng(3);
        let pos: Vec<f32> = (0..4000).map(|_| 5.0 + 5.0 * rng.uniform() as f32).collect();
        let neg: Vec<f32> = pos.iter().map(|v| -v).collect();
        for data in [pos, neg] {
            for m in CalibMethod::ALL {
                let mut obs = observer(m);
                obs.observe(&data);
                for grid in [Grid::INT8, Grid::UINT8, Grid { symmetric: false, bits: 4 }] {
                    let (lo, hi) = obs.range(grid).unwrap();
                    assert!(lo <= 0.0 && 0.0 <= hi && hi > lo, "{m} {grid:?}: ({lo}, {hi})");
                    if grid.symmetric {
                        assert_eq!(lo, -hi);
                    }
                    // Data far from zero: the range must still reach the bulk.
                    assert!(hi - lo > 5.0, "{m} {grid:?}: ({lo}, {hi})");
                }
            }
        }
    }

    #[test]
    fn histogram_growth_matches_single_pass() {
        let first = linspace(0.0, 1.0, 1001);
        let second = linspace(-3.0, 5.0, 1001);
        let all: Vec<f32> = first.iter().chain(&second).copied().collect();
        for p in [90.0, 99.0, 99.99] {
            let cfg = ObserverConfig { method: CalibMethod::Percentile, percentile: p, ..ObserverConfig::default() };
            let mut grown = Observer::new(cfg.clone());
            grown.observe(&first);
            grown.observe(&second);
            let mut once = Observer::new(cfg);
            once.observe(&all);
            assert_eq!(grown.hist.counts.iter().sum::<u64>(), 2002);
            assert!(grown.hist.counts.len() <= 16 * 2048);
            let tol = grown.hist.width.max(once.hist.width) as f32;
            assert!(grown.hist.width < once.hist.width, "finer histogram from the first batch kept");
            for grid in [Grid::INT8, Grid::UINT8] {
                let (a, b) = (grown.range(grid).unwrap(), once.range(grid).unwrap());
                assert!((a.0 - b.0).abs() <= tol && (a.1 - b.1).abs() <= tol, "p={p} {grid:?}: {a:?} vs {b:?}");
            }
            assert_eq!(grown.min_max(), once.min_max());
            assert_eq!(grown.min_max(), Some((-3.0, 5.0)));
        }
    }

    #[test]
    fn histogram_merges_stay_bounded_and_aligned() {
        let mut obs = with_bins(CalibMethod::Percentile, 16);
        obs.observe(&linspace(0.0, 1.0, 101));
        let w0 = obs.hist.width;
        obs.observe(&[-1000.0, 1000.0, 0.3]);
        let h = &obs.hist;
        assert!(h.counts.len() <= 16 * 16, "{} bins", h.counts.len());
        assert!(h.width > w0 && (h.width / w0).log2().fract() == 0.0, "width doubled a whole number of times");
        assert_eq!(h.counts.iter().sum::<u64>(), 104);
        // Every value still lies inside its bin; zero is a bin edge.
        for v in [-1000.0, 1000.0, 0.0, 0.3, 1.0] {
            let j = h.index(v);
            let left = (h.start + j as i64) as f64 * h.width;
            assert!(left <= v && v < left + h.width, "{v} not in bin {j} [{left}, {})", left + h.width);
        }
        assert_eq!(h.counts[h.index(-1000.0)], 1);
    }

    #[test]
    fn percentile_ignores_outliers() {
        let batches = gaussian_with_outliers();
        let cfg = ObserverConfig { method: CalibMethod::Percentile, ..ObserverConfig::default() };
        // Outliers arriving in a later batch (histogram merged) and in the first one (coarse histogram).
        let mut later = Observer::new(cfg.clone());
        observe_all(&mut later, &batches);
        let mut first = Observer::new(cfg);
        observe_all(&mut first, &batches[5..]);
        observe_all(&mut first, &batches[..5]);
        for obs in [&later, &first] {
            let (lo, hi) = obs.range(Grid::INT8).unwrap();
            assert!((3.7..=4.5).contains(&hi) && lo == -hi, "symmetric: ({lo}, {hi})");
            let (lo, hi) = obs.range(Grid::UINT8).unwrap();
            assert!((3.3..=4.5).contains(&hi) && (-4.5..=-3.3).contains(&lo), "asymmetric: ({lo}, {hi})");
        }
    }

    #[test]
    fn percentile_on_uniform_matches_formula() {
        let mut rng = Rng(11);
        let data: Vec<f32> = (0..20_000).map(|_| 10.0 * rng.uniform() as f32).collect();
        for p in [90.0, 99.0, 99.99] {
            let mut obs =
                Observer::new(ObserverConfig { method: CalibMethod::Percentile, percentile: p, ..Default::default() });
            obs.observe(&data);
            let (lo, hi) = obs.range(Grid::UINT8).unwrap();
            let want = (10.0 * p / 100.0) as f32;
            // Lower percentile of non-negative data is widened to zero.
            assert_eq!(lo, 0.0);
            assert!((hi - want).abs() < 0.05, "p={p}: {hi} vs {want}");
        }
    }

    #[test]
    fn entropy_clips_outliers() {
        let batches = gaussian_with_outliers();
        let mut obs = observer(CalibMethod::Entropy);
        observe_all(&mut obs, &batches);
        let (lo, hi) = obs.range(Grid::INT8).unwrap();
        assert!(hi > 2.5 && hi < 20.0 && lo == -hi, "symmetric: ({lo}, {hi})");
        let (lo, hi) = obs.range(Grid::UINT8).unwrap();
        assert!(hi > 2.5 && hi < 20.0, "asymmetric: ({lo}, {hi})");
        assert!(lo < -2.5 && lo > -20.0, "asymmetric: ({lo}, {hi})");
        // Mirrored: the outliers on the negative side, whose tail is searched on the mirrored half.
        let mut neg = observer(CalibMethod::Entropy);
        for b in &batches {
            neg.observe(&b.iter().map(|v| -v).collect::<Vec<f32>>());
        }
        let (lo, hi) = neg.range(Grid::UINT8).unwrap();
        assert!(lo < -2.5 && lo > -20.0 && hi > 2.5 && hi < 20.0, "mirrored asymmetric: ({lo}, {hi})");
    }

    #[test]
    fn mse_clips_outliers_when_it_pays() {
        // 4 bits, 5 outliers at 20 among 10⁵ N(0, 1): keeping them gives a step of 20/7 ≈ 2.9 and an
        // error ≈ 0.6, while clipping near 3 costs 5e-5 · 17² ≈ 0.015 plus a small rounding error.
        let mut rng = Rng(5);
        let mut data: Vec<f32> = (0..100_000).map(|_| rng.gauss() as f32).collect();
        data.extend([20.0; 5]);
        let mut obs = observer(CalibMethod::Mse);
        obs.observe(&data);
        let grid = Grid { symmetric: true, bits: 4 };
        let (_, hi) = obs.range(grid).unwrap();
        assert!(hi > 1.5 && hi < 5.0, "{hi}");
        assert!(naive_mse(&data, f64::from(-hi), f64::from(hi), grid) < 0.2 * naive_mse(&data, -20.0, 20.0, grid));
    }

    #[test]
    fn mse_keeps_isolated_huge_outliers_at_8_bits() {
        // 5 values at 1000 among 10⁵: clipping them to ~4 costs 5e-5 · 996² ≈ 50, far more than the
        // ≈ 1 of rounding the whole bulk to zero, so the error-minimising clip keeps them.
        let batches = gaussian_with_outliers();
        let all: Vec<f32> = batches.concat();
        let mut obs = observer(CalibMethod::Mse);
        observe_all(&mut obs, &batches);
        let (lo, hi) = obs.range(Grid::INT8).unwrap();
        assert!(hi > 900.0 && lo == -hi, "({lo}, {hi})");
        let chosen = naive_mse(&all, f64::from(lo), f64::from(hi), Grid::INT8);
        assert!(chosen < naive_mse(&all, -4.0, 4.0, Grid::INT8));
    }

    #[test]
    fn mse_on_uniform_keeps_full_range() {
        let mut rng = Rng(9);
        let data: Vec<f32> = (0..20_000).map(|_| (4.0 * rng.uniform() - 1.0) as f32).collect();
        let mut obs = observer(CalibMethod::Mse);
        obs.observe(&data);
        let (_, max) = obs.min_max().unwrap();
        let (lo, hi) = obs.range(Grid::INT8).unwrap();
        assert!(hi >= 0.95 * max && lo == -hi, "({lo}, {hi}) vs max {max}");
        let (lo, hi) = obs.range(Grid::UINT8).unwrap();
        assert!(hi >= 0.95 * max && lo <= -0.95, "({lo}, {hi})");
    }

    #[test]
    fn mse_choice_beats_random_scales_bruteforce() {
        let mut rng = Rng(21);
        // Laplace-like heavy tail, slightly skewed.
        let data: Vec<f32> = (0..3000)
            .map(|_| {
                let u = rng.uniform() - 0.5;
                let v = -u.signum() * (1.0 - 2.0 * u.abs()).max(1e-12).ln();
                (if v > 0.0 { 1.5 * v } else { v }) as f32
            })
            .collect();
        for grid in [Grid::INT8, Grid::UINT8, Grid { symmetric: true, bits: 4 }, Grid { symmetric: false, bits: 4 }] {
            let mut obs = with_bins(CalibMethod::Mse, 256);
            obs.observe(&data);
            let (lo, hi) = obs.range(grid).unwrap();
            let chosen = naive_mse(&data, f64::from(lo), f64::from(hi), grid);
            let (min, max) = obs.min_max().unwrap();
            let (full_lo, full_hi) = if grid.symmetric {
                let a = f64::from(min.abs().max(max.abs()));
                (-a, a)
            } else {
                (f64::from(min.min(0.0)), f64::from(max.max(0.0)))
            };
            for _ in 0..20 {
                let t = 0.02 + 0.98 * rng.uniform();
                let random = naive_mse(&data, t * full_lo, t * full_hi, grid);
                assert!(chosen <= 1.05 * random, "{grid:?}: chosen {chosen} ({lo}, {hi}) vs t={t}: {random}");
            }
        }
    }

    #[test]
    fn kl_prefix_matches_naive() {
        // Direct KL(P‖Q) per the definition documented on `KlPrefix::divergence`.
        fn naive(counts: &[u64], p0: usize, p1: usize, levels: usize) -> f64 {
            let c: Vec<f64> = counts.iter().map(|&c| c as f64).collect();
            let total: f64 = c.iter().sum();
            let mut p: Vec<f64> = c[p0..p1].to_vec();
            p[0] += c[..p0].iter().sum::<f64>();
            *p.last_mut().unwrap() += c[p1..].iter().sum::<f64>();
            let m = p1 - p0;
            let mut q = vec![0.0; m];
            for g in 0..levels {
                let (gs, ge) = (g * m / levels, (g + 1) * m / levels);
                let mass: f64 = c[p0 + gs..p0 + ge].iter().sum();
                let nz = p[gs..ge].iter().filter(|&&x| x > 0.0).count() as f64;
                for j in gs..ge {
                    if p[j] > 0.0 {
                        q[j] = mass / nz;
                    }
                }
            }
            let sq: f64 = q.iter().sum();
            let mut qn: Vec<f64> = q.iter().map(|x| x / sq).collect();
            let mut zeros = 0.0;
            for (qj, pj) in qn.iter_mut().zip(&p) {
                if *pj > 0.0 && *qj == 0.0 {
                    *qj = KL_EPSILON;
                    zeros += 1.0;
                }
            }
            qn.iter_mut().for_each(|x| *x /= 1.0 + zeros * KL_EPSILON);
            p.iter().zip(&qn).filter(|(pj, _)| **pj > 0.0).map(|(pj, qj)| pj / total * (pj / total / qj).ln()).sum()
        }
        let mut rng = Rng(13);
        // Sparse random histogram with empty stretches (including empty edge bins).
        let counts: Vec<u64> = (0..300)
            .map(|j| if (40..60).contains(&j) || rng.uniform() < 0.3 { 0 } else { rng.next_u64() % 50 })
            .collect();
        let kl = KlPrefix::new(&counts);
        for (p0, p1, levels) in [(0, 300, 16), (10, 200, 16), (45, 120, 8), (41, 59, 4), (100, 132, 32), (0, 7, 2)] {
            let fast = kl.divergence(p0, p1, levels);
            let slow = naive(&counts, p0, p1, levels);
            match fast {
                Some(f) => assert!((f - slow.max(0.0)).abs() < 1e-9, "{p0}..{p1}/{levels}: {f} vs {slow}"),
                None => assert!(counts[p0..p1].iter().all(|&c| c == 0), "{p0}..{p1}"),
            }
        }
        assert_eq!(kl.divergence(0, 10, 16), None, "fewer bins than levels");
    }

    #[test]
    fn entropy_falls_back_to_minmax_on_coarse_histogram() {
        let data = linspace(-2.0, 3.0, 500);
        let mut coarse = with_bins(CalibMethod::Entropy, 64);
        coarse.observe(&data);
        assert_eq!(coarse.range(Grid::INT8), Some((-3.0, 3.0)));
        assert_eq!(coarse.range(Grid::UINT8), Some((-2.0, 3.0)));
    }

    #[test]
    fn asymmetric_search_clips_one_sided_tail_only() {
        // SiLU of 3·N(0, 1): a small negative lobe down to −0.278 and a long positive tail, plus 3
        // values at 30. Scaling both sides by one common t would pull the lower bound in to about
        // t · (−0.278); the per-side refinement must keep the lobe while clipping the tail.
        let mut rng = Rng(17);
        let mut data: Vec<f32> = (0..50_000)
            .map(|_| {
                let x = 3.0 * rng.gauss();
                (x / (1.0 + (-x).exp())) as f32
            })
            .collect();
        data.extend([30.0; 3]);
        for (method, bits, max_hi, max_lo) in [
            (CalibMethod::Entropy, 8, 15.0, -0.25),
            (CalibMethod::Percentile, 8, 15.0, -0.25),
            (CalibMethod::Mse, 6, 25.0, -0.1),
        ] {
            let mut obs = observer(method);
            obs.observe(&data);
            let (lo, hi) = obs.range(Grid { symmetric: false, bits }).unwrap();
            assert!(hi < max_hi && hi > 5.0, "{method}: ({lo}, {hi})");
            assert!(lo < max_lo && lo >= -0.2785, "{method}: ({lo}, {hi})");
        }
    }

    #[test]
    fn entropy_asymmetric_keeps_silu_bound_and_clips_only_the_far_tail() {
        // Regression: the lower clip was rounded to the nearest bin edge, so about half of all SiLU
        // tensors had the spike just above −0.2785 treated as clipped mass piled onto the first bin,
        // and the upper clip landed near a quarter of the range (~7 here, MSE ≈ 9–30× min-max's).
        let data = silu_tensor(1, 200_000);
        let obs = entropy_observer(&data, 2048);
        let (min, max) = obs.min_max().unwrap();
        let (lo, hi) = obs.range(Grid::UINT8).unwrap();
        assert_eq!(lo, min, "lower bound kept at the observed minimum: ({lo}, {hi})");
        let p999 = percentile_of(&data, 99.9);
        assert!(hi >= p999 && hi <= max, "hi {hi} outside [p99.9 = {p999}, max = {max}]");
        let kl = naive_mse(&data, f64::from(lo), f64::from(hi), Grid::UINT8);
        let minmax = naive_mse(&data, f64::from(min), f64::from(max), Grid::UINT8);
        assert!(kl <= 3.0 * minmax, "entropy ({lo}, {hi}) MSE {kl:e} vs min-max {minmax:e}");
    }

    #[test]
    fn entropy_clip_does_not_jump_with_bin_count() {
        // Regression: the KL cost of mass piled onto the first bin depended only on how many bins
        // the first group spanned, so the clip jumped with the histogram resolution.
        let silu = silu_tensor(1, 200_000);
        // Half exact zeros (ReLU-like): a spike at zero must not act the same way.
        let relu: Vec<f32> = silu.iter().map(|&v| v.max(0.0)).collect();
        for (name, data, grids) in
            [("silu", &silu, &[Grid::UINT8][..]), ("relu", &relu, &[Grid::UINT8, Grid::INT8][..])]
        {
            let p999 = percentile_of(data, 99.9);
            for &grid in grids {
                let his: Vec<f32> = [1024, 2048, 4096]
                    .iter()
                    .map(|&bins| entropy_observer(data, bins).range(grid).unwrap().1)
                    .collect();
                let (min, max) = his.iter().fold((f32::MAX, f32::MIN), |(a, b), &h| (a.min(h), b.max(h)));
                assert!(max <= 1.15 * min, "{name} {grid:?}: hi for 1024/2048/4096 bins {his:?}");
                assert!(min >= p999, "{name} {grid:?}: hi {his:?} below p99.9 = {p999}");
            }
        }
    }

    #[test]
    fn entropy_keeps_the_top_bin() {
        // Regression: the clip edge was rounded to the nearest bin edge, so the `t = 1` candidate
        // could leave out the top bin. Here the maximum lies 0.4 bin above an edge, with the top bin
        // as full as the others: the flat histogram must be kept whole.
        let w = 2.0 / 2048.0;
        let mut obs = observer(CalibMethod::Entropy);
        obs.observe(&linspace(0.0, 2.0, 100_001));
        let top = (2.0 + 0.4 * w) as f32;
        obs.observe(&linspace(2.0, top, 20));
        for grid in [Grid::INT8, Grid::UINT8] {
            let (_, hi) = obs.range(grid).unwrap();
            assert_eq!(hi, top, "{grid:?}");
        }
    }
}
