//! AutoAnchor: how well a detector's anchors fit a data set's label sizes, and new anchors from
//! k-means plus genetic evolution when they do not — the behaviour of ultralytics YOLOv5's
//! `utils/autoanchor.py` (`check_anchors`, `kmean_anchors`, `check_anchor_order`), re-implemented on
//! host `f32`/`f64` data.
//!
//! The flow `train.py` runs before the first epoch:
//!
//! 1. [`label_wh`]: every label's (w, h) in pixels at the training size, letterboxed like the image
//!    and multiplied by a random per-image scale in [0.9, 1.1);
//! 2. [`anchor_fit`]: the ratio metric of each label against each anchor, `min(r, 1/r)` with
//!    `r = label_wh / anchor_wh`, the worse of the two axes; a label is *recallable* when its best
//!    anchor's metric exceeds `1 / anchor_t` (the same rule the loss uses to assign targets), and the
//!    best possible recall (BPR) is the fraction of recallable labels;
//! 3. [`check_anchors`]: when BPR ≤ 0.98, [`kmean_anchors`] proposes new anchors, which replace the
//!    current ones only if their BPR is higher.
//!
//! Deviations from ultralytics, all deliberate:
//!
//! - ultralytics' `kmean_anchors` recomputes the label sizes *without* the random scale, while
//!   `check_anchors` measures BPR *with* it; here the caller passes one set of sizes to both
//!   (normally [`label_wh`]'s, which includes the scale);
//! - k-means is our own seeded Lloyd, 30 restarts alternating scipy's seeding (random observations)
//!   and k-means++, best by scipy's mean-distance criterion, instead of scipy's `kmeans(iter=30)`;
//!   an emptied cluster is re-seeded instead of dropped, and an axis whose standard deviation is zero
//!   is not whitened (scipy would divide by zero);
//! - every random draw comes from one ChaCha8 stream seeded by the caller, so results are
//!   reproducible across runs and platforms; ultralytics mixes NumPy's and Python's global RNGs;
//! - fitness and BPR are accumulated in `f64` (the per-pair ratio is computed in `f32`, as in torch);
//! - [`check_anchor_order`] does nothing when the first and last strides are equal (ultralytics would
//!   reverse whenever the mean areas differ, since `sign(0)` never equals `sign(da)`).

mod kmeans;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// YOLOv5's default COCO anchors in pixels, P3/8, P4/16, P5/32, three per level, flattened.
pub const DEFAULT_ANCHORS_PX: [[f32; 2]; 9] = [
    [10.0, 13.0],
    [16.0, 30.0],
    [33.0, 23.0],
    [30.0, 61.0],
    [62.0, 45.0],
    [59.0, 119.0],
    [116.0, 90.0],
    [156.0, 198.0],
    [373.0, 326.0],
];

/// BPR above which [`check_anchors`] keeps the current anchors (ultralytics: `bpr > 0.98`).
pub const BPR_THRESHOLD: f64 = 0.98;

/// Generations of genetic evolution [`check_anchors`] runs (ultralytics: `gen=1000`).
pub const DEFAULT_GENERATIONS: usize = 1000;

/// Probability that one anchor coordinate is mutated in a generation.
const MUTATION_PROB: f64 = 0.9;
/// Standard deviation of the multiplicative mutation (before the per-generation random factor).
const MUTATION_SIGMA: f64 = 0.1;
/// Labels with a side below this many pixels are reported as extremely small.
const SMALL_LABEL_PX: f32 = 3.0;
/// Labels with both sides below this many pixels are left out of k-means and evolution.
const MIN_KMEANS_PX: f32 = 2.0;
/// Evolved anchors never shrink below this many pixels per side.
const MIN_ANCHOR_PX: f64 = 2.0;

/// One image: its pixel size and its boxes' normalized (w, h).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ImageLabels {
    /// Image width in pixels.
    pub width: u32,
    /// Image height in pixels.
    pub height: u32,
    /// Every box's (w, h), normalized to the image size (0..1).
    pub boxes_wh: Vec<[f32; 2]>,
}

/// Label box sizes scaled the way `check_anchors` does: for each image,
/// `shape = imgsz * (w, h) / max(w, h)` (the letterboxed size at the training resolution) and
/// `wh = normalized box wh * shape * s`, with one uniform `s` in [0.9, 1.1) per image drawn from `rng`.
///
/// One scale is drawn for every image in order, including images without boxes (as ultralytics draws
/// one per dataset image), so the result depends only on the images and the RNG state. Images with a
/// zero side are skipped. All boxes are returned, tiny ones included: they count for [`anchor_fit`];
/// [`kmean_anchors`] leaves out those with both sides under 2 px itself, and [`small_labels`] counts
/// them for the warning ultralytics prints.
pub fn label_wh(images: &[ImageLabels], imgsz: u32, rng: &mut impl Rng) -> Vec<[f32; 2]> {
    let mut out = Vec::with_capacity(images.iter().map(|i| i.boxes_wh.len()).sum());
    for img in images {
        let scale: f64 = rng.random_range(0.9..1.1);
        let longest = img.width.max(img.height) as f64;
        if img.width == 0 || img.height == 0 {
            continue;
        }
        let sx = imgsz as f64 * img.width as f64 / longest * scale;
        let sy = imgsz as f64 * img.height as f64 / longest * scale;
        out.extend(img.boxes_wh.iter().map(|b| [(b[0] as f64 * sx) as f32, (b[1] as f64 * sy) as f32]));
    }
    out
}

/// How many labels are too small for k-means, as ultralytics reports them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SmallLabels {
    /// Labels in total.
    pub total: usize,
    /// Labels with a side under 3 px (ultralytics' "extremely small objects" warning).
    pub below_3px: usize,
    /// Labels with both sides under 2 px, left out of k-means and evolution (ultralytics keeps a
    /// label when *any* side is ≥ 2 px, so a 1×40 px box stays in).
    pub dropped: usize,
}

/// Counts the labels of `wh` (pixels) that ultralytics warns about and that [`kmean_anchors`] drops.
pub fn small_labels(wh: &[[f32; 2]]) -> SmallLabels {
    SmallLabels {
        total: wh.len(),
        below_3px: wh.iter().filter(|b| b[0] < SMALL_LABEL_PX || b[1] < SMALL_LABEL_PX).count(),
        dropped: wh.iter().filter(|b| !kept_for_kmeans(b)).count(),
    }
}

fn kept_for_kmeans(b: &[f32; 2]) -> bool {
    b[0] >= MIN_KMEANS_PX || b[1] >= MIN_KMEANS_PX
}

/// Best possible recall and anchors-above-threshold of a set of anchors for a set of label sizes.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct AnchorFit {
    /// Best possible recall: the fraction of labels whose best anchor's ratio metric exceeds
    /// `1 / anchor_t`.
    pub bpr: f64,
    /// Anchors above threshold: the mean, over labels, of the number of anchors whose ratio metric
    /// exceeds `1 / anchor_t`.
    pub aat: f64,
}

/// The ratio metric of one label against one anchor: `min(r, 1/r)` per axis with `r = wh / anchor`,
/// then the smaller of the two axes; 1 is a perfect fit. Degenerate pairs (NaN) count as 0.
#[inline]
pub fn ratio_metric(wh: [f32; 2], anchor: [f32; 2]) -> f32 {
    let rx = wh[0] / anchor[0];
    let ry = wh[1] / anchor[1];
    let m = rx.min(1.0 / rx).min(ry.min(1.0 / ry));
    if m.is_nan() { 0.0 } else { m }
}

/// Best possible recall and anchors-above-threshold of `anchors_px` (pixels, all levels flattened) for
/// label sizes `wh` (pixels), with threshold `1 / anchor_t`: a label/anchor pair counts when
/// [`ratio_metric`] is strictly above it, as in ultralytics' `metric`. Empty `wh` gives zeros.
pub fn anchor_fit(wh: &[[f32; 2]], anchors_px: &[[f32; 2]], anchor_t: f32) -> AnchorFit {
    if wh.is_empty() {
        return AnchorFit::default();
    }
    let thr = 1.0 / anchor_t;
    let mut recalled = 0usize;
    let mut above = 0usize;
    for &b in wh {
        let mut best = 0.0f32;
        for &a in anchors_px {
            let m = ratio_metric(b, a);
            above += usize::from(m > thr);
            best = best.max(m);
        }
        recalled += usize::from(best > thr);
    }
    let n = wh.len() as f64;
    AnchorFit { bpr: recalled as f64 / n, aat: above as f64 / n }
}

/// The fitness genetic evolution maximizes: the mean over labels of the best anchor's ratio metric,
/// counting 0 for labels whose best metric is not above `1 / anchor_t` (ultralytics'
/// `anchor_fitness`). Empty `wh` gives 0.
pub fn anchor_fitness(wh: &[[f32; 2]], anchors_px: &[[f32; 2]], anchor_t: f32) -> f64 {
    if wh.is_empty() {
        return 0.0;
    }
    let thr = 1.0 / anchor_t;
    let mut sum = 0.0f64;
    for &b in wh {
        let best = anchors_px.iter().fold(0.0f32, |best, &a| best.max(ratio_metric(b, a)));
        if best > thr {
            sum += best as f64;
        }
    }
    sum / wh.len() as f64
}

/// Standard normal draws by the Box–Muller transform (rand 0.9 has no normal distribution without
/// `rand_distr`).
fn fill_normal(rng: &mut impl Rng, out: &mut [f64]) {
    for pair in out.chunks_mut(2) {
        let u1 = 1.0 - rng.random::<f64>(); // (0, 1]
        let u2 = rng.random::<f64>();
        let r = (-2.0 * u1.ln()).sqrt();
        let t = std::f64::consts::TAU * u2;
        pair[0] = r * t.cos();
        if pair.len() > 1 {
            pair[1] = r * t.sin();
        }
    }
}

fn to_f32(k: &[[f64; 2]]) -> Vec<[f32; 2]> {
    k.iter().map(|a| [a[0] as f32, a[1] as f32]).collect()
}

fn sort_by_area(k: &mut [[f32; 2]]) {
    k.sort_by(|a, b| (a[0] * a[1]).total_cmp(&(b[0] * b[1])));
}

/// Initial anchors from k-means on whitened sizes, or ultralytics' random fallback
/// (`sort(uniform(2n)) * imgsz`, paired up) when k-means cannot give `n` distinct centres.
fn initial_anchors(wh: &[[f32; 2]], n: usize, imgsz: u32, rng: &mut impl Rng) -> Vec<[f64; 2]> {
    if wh.len() >= n {
        // Whiten: divide by the per-axis (population) standard deviation, cluster, multiply back.
        let len = wh.len() as f64;
        let mut sigma = [0.0f64; 2];
        for (ax, s) in sigma.iter_mut().enumerate() {
            let mean = wh.iter().map(|b| b[ax] as f64).sum::<f64>() / len;
            let var = wh.iter().map(|b| (b[ax] as f64 - mean).powi(2)).sum::<f64>() / len;
            *s = if var.sqrt() > 0.0 { var.sqrt() } else { 1.0 };
        }
        let white: Vec<[f64; 2]> = wh.iter().map(|b| [b[0] as f64 / sigma[0], b[1] as f64 / sigma[1]]).collect();
        if let Some(c) = kmeans::kmeans(&white, n, rng) {
            return c.into_iter().map(|p| [p[0] * sigma[0], p[1] * sigma[1]]).collect();
        }
    }
    let mut u: Vec<f64> = (0..2 * n).map(|_| rng.random::<f64>()).collect();
    u.sort_by(f64::total_cmp);
    u.chunks(2).map(|p| [p[0] * imgsz as f64, p[1] * imgsz as f64]).collect()
}

/// `n` anchors (pixels) for label sizes `wh` (pixels), sorted by area ascending: k-means followed by
/// genetic evolution, as ultralytics' `kmean_anchors`, seeded and deterministic.
///
/// 1. Labels with both sides under 2 px are left out ([`small_labels`] counts them).
/// 2. k-means on the whitened sizes (each axis divided by its population standard deviation): the
///    best (by mean Euclidean distance, as scipy) of 30 seeded Lloyd runs, started alternately from
///    `n` random labels (scipy's seeding) and by k-means++, scaled back to pixels. With fewer
///    than `n` distinct sizes it falls back to ultralytics' random init (`2n` sorted uniforms times
///    `imgsz`, paired up).
/// 3. `generations` rounds of evolution: each mutates every coordinate with probability 0.9 by the
///    factor `1 + g · N(0, 1) · 0.1` (with `g` one uniform [0, 1) draw per generation), clipped to
///    [0.3, 3.0], re-drawing when nothing changed; multiplies the anchors by it, clips them at 2 px,
///    and keeps the result when its [`anchor_fitness`] is strictly higher.
///
/// All randomness comes from one ChaCha8 stream seeded with `seed`. `n == 0` gives no anchors; empty
/// `wh` gives the random init unchanged.
pub fn kmean_anchors(
    wh: &[[f32; 2]],
    n: usize,
    imgsz: u32,
    anchor_t: f32,
    generations: usize,
    seed: u64,
) -> Vec<[f32; 2]> {
    if n == 0 {
        return Vec::new();
    }
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let wh: Vec<[f32; 2]> = wh.iter().copied().filter(kept_for_kmeans).collect();
    let mut k = initial_anchors(&wh, n, imgsz, &mut rng);

    let mut best = anchor_fitness(&wh, &to_f32(&k), anchor_t);
    let mut mutate = vec![false; 2 * n];
    let mut normal = vec![0.0f64; 2 * n];
    let mut v = vec![1.0f64; 2 * n];
    for _ in 0..generations {
        loop {
            for m in mutate.iter_mut() {
                *m = rng.random::<f64>() < MUTATION_PROB;
            }
            let g = rng.random::<f64>();
            fill_normal(&mut rng, &mut normal);
            for ((vi, &m), &z) in v.iter_mut().zip(&mutate).zip(&normal) {
                let step = if m { g * z * MUTATION_SIGMA } else { 0.0 };
                *vi = (step + 1.0).clamp(0.3, 3.0);
            }
            if v.iter().any(|&x| x != 1.0) {
                break;
            }
        }
        let kg: Vec<[f64; 2]> = k
            .iter()
            .enumerate()
            .map(|(i, a)| [(a[0] * v[2 * i]).max(MIN_ANCHOR_PX), (a[1] * v[2 * i + 1]).max(MIN_ANCHOR_PX)])
            .collect();
        let fg = anchor_fitness(&wh, &to_f32(&kg), anchor_t);
        if fg > best {
            best = fg;
            k = kg;
        }
    }
    let mut out = to_f32(&k);
    sort_by_area(&mut out);
    out
}

/// What [`check_anchors`] found.
#[derive(Debug, Clone, PartialEq)]
pub struct AnchorCheck {
    /// BPR of the current anchors.
    pub bpr_before: f64,
    /// Anchors above threshold per label, current anchors.
    pub aat_before: f64,
    /// Evolved anchors (pixels, sorted by area ascending, so consecutive groups of `na_per_level`
    /// belong to increasing strides), when they beat the current ones; `None` keeps the current ones.
    pub new_anchors: Option<Vec<[f32; 2]>>,
    /// BPR of the evolved anchors whenever evolution ran — also when they lost and were discarded;
    /// `None` when the current anchors were good enough to skip it.
    pub bpr_after: Option<f64>,
    /// Anchors per detection level, to split [`Self::new_anchors`] into levels.
    pub na_per_level: usize,
}

impl AnchorCheck {
    /// The new anchors split into levels (smallest stride first), when there are new anchors.
    pub fn new_anchors_per_level(&self) -> Option<Vec<Vec<[f32; 2]>>> {
        let na = self.na_per_level.max(1);
        self.new_anchors.as_ref().map(|a| a.chunks(na).map(<[_]>::to_vec).collect())
    }

    /// A one-line report in the spirit of ultralytics' `AutoAnchor:` log lines.
    pub fn summary(&self) -> String {
        let head = format!("{:.2} anchors/target, {:.3} Best Possible Recall (BPR).", self.aat_before, self.bpr_before);
        match (&self.new_anchors, self.bpr_after) {
            (_, None) => format!("{head} Current anchors are a good fit to dataset"),
            (Some(_), Some(b)) => format!("{head} Anchors were a poor fit; evolved anchors raise BPR to {b:.3}"),
            (None, Some(b)) => {
                format!("{head} Anchors are a poor fit, but evolved anchors reach only {b:.3}; keeping the originals")
            }
        }
    }
}

/// The check `train.py` runs before training, with [`DEFAULT_GENERATIONS`] generations of evolution;
/// see [`check_anchors_with`].
///
/// # Panics
/// When `na_per_level` is 0 or does not divide `anchors_px.len()`.
pub fn check_anchors(
    wh: &[[f32; 2]],
    anchors_px: &[[f32; 2]],
    na_per_level: usize,
    imgsz: u32,
    anchor_t: f32,
    seed: u64,
) -> AnchorCheck {
    check_anchors_with(wh, anchors_px, na_per_level, imgsz, anchor_t, seed, DEFAULT_GENERATIONS)
}

/// The check `train.py` runs: measures the current anchors (pixels, all levels flattened, smallest
/// stride first) on `wh` (pixels, normally from [`label_wh`]); if BPR > 0.98 keeps them; otherwise
/// evolves as many new anchors with [`kmean_anchors`] and proposes them only when their BPR is
/// strictly higher. With no labels at all there is nothing to fit and the current anchors are kept.
///
/// # Panics
/// When `na_per_level` is 0 or does not divide `anchors_px.len()`.
pub fn check_anchors_with(
    wh: &[[f32; 2]],
    anchors_px: &[[f32; 2]],
    na_per_level: usize,
    imgsz: u32,
    anchor_t: f32,
    seed: u64,
    generations: usize,
) -> AnchorCheck {
    assert!(
        na_per_level > 0 && anchors_px.len().is_multiple_of(na_per_level),
        "check_anchors: {} anchors do not split into levels of {na_per_level}",
        anchors_px.len()
    );
    let before = anchor_fit(wh, anchors_px, anchor_t);
    let mut check = AnchorCheck {
        bpr_before: before.bpr,
        aat_before: before.aat,
        new_anchors: None,
        bpr_after: None,
        na_per_level,
    };
    if before.bpr > BPR_THRESHOLD || wh.is_empty() {
        return check;
    }
    let evolved = kmean_anchors(wh, anchors_px.len(), imgsz, anchor_t, generations, seed);
    let after = anchor_fit(wh, &evolved, anchor_t).bpr;
    check.bpr_after = Some(after);
    if after > before.bpr {
        check.new_anchors = Some(evolved);
    }
    check
}

/// ultralytics' `check_anchor_order`: the mean anchor area per level must grow in the same direction as
/// the strides. When the first-to-last change in mean area has the opposite sign to the first-to-last
/// change in stride, the levels are reversed in place and `true` is returned. Works in pixels or grid
/// units alike (ultralytics calls it in pixels). Nothing happens with fewer than two levels, equal
/// first and last strides or areas, or non-finite values.
///
/// # Panics
/// When `strides.len() != anchors.len()`.
pub fn check_anchor_order(anchors: &mut [Vec<[f32; 2]>], strides: &[f32]) -> bool {
    assert_eq!(strides.len(), anchors.len(), "check_anchor_order: one stride per level");
    if anchors.len() < 2 {
        return false;
    }
    let mean_area = |lvl: &[[f32; 2]]| {
        if lvl.is_empty() { 0.0 } else { lvl.iter().map(|a| a[0] as f64 * a[1] as f64).sum::<f64>() / lvl.len() as f64 }
    };
    let da = mean_area(&anchors[anchors.len() - 1]) - mean_area(&anchors[0]);
    let ds = strides[strides.len() - 1] as f64 - strides[0] as f64;
    if da == 0.0 || ds == 0.0 || !da.is_finite() || !ds.is_finite() || (da > 0.0) == (ds > 0.0) {
        return false;
    }
    anchors.reverse();
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ratio_metric_is_symmetric_and_worst_axis() {
        assert_eq!(ratio_metric([10.0, 20.0], [10.0, 20.0]), 1.0);
        assert_eq!(ratio_metric([20.0, 10.0], [10.0, 10.0]), 0.5);
        assert_eq!(ratio_metric([10.0, 10.0], [20.0, 10.0]), 0.5);
        assert_eq!(ratio_metric([10.0, 40.0], [20.0, 10.0]), 0.25);
        assert_eq!(ratio_metric([0.0, 0.0], [0.0, 10.0]), 0.0);
    }

    #[test]
    fn threshold_is_strict() {
        // 40x52 against 10x13 is exactly 1/4 on both axes: not above 1/4.
        let f = anchor_fit(&[[40.0, 52.0]], &[[10.0, 13.0]], 4.0);
        assert_eq!(f, AnchorFit { bpr: 0.0, aat: 0.0 });
        let f = anchor_fit(&[[39.0, 52.0]], &[[10.0, 13.0]], 4.0);
        assert_eq!(f.bpr, 0.0);
        let f = anchor_fit(&[[39.0, 51.0]], &[[10.0, 13.0]], 4.0);
        assert_eq!(f, AnchorFit { bpr: 1.0, aat: 1.0 });
    }

    #[test]
    fn fitness_zeroes_unrecallable_labels() {
        let wh = [[10.0, 10.0], [100.0, 100.0]];
        let f = anchor_fitness(&wh, &[[20.0, 10.0]], 4.0);
        assert!((f - 0.25).abs() < 1e-12, "{f}");
    }

    #[test]
    fn normal_draws_look_normal() {
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let mut z = vec![0.0; 20_001];
        fill_normal(&mut rng, &mut z);
        let mean = z.iter().sum::<f64>() / z.len() as f64;
        let var = z.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / z.len() as f64;
        assert!(mean.abs() < 0.03 && (var - 1.0).abs() < 0.05, "{mean} {var}");
    }

    #[test]
    fn random_init_when_too_few_labels() {
        let mut rng = ChaCha8Rng::seed_from_u64(0);
        let k = initial_anchors(&[[5.0, 5.0]], 3, 640, &mut rng);
        assert_eq!(k.len(), 3);
        let flat: Vec<f64> = k.iter().flatten().copied().collect();
        assert!(flat.windows(2).all(|w| w[0] <= w[1]) && flat.iter().all(|&x| (0.0..640.0).contains(&x)));
    }

    #[test]
    fn constant_axis_is_not_whitened_by_zero() {
        let wh: Vec<[f32; 2]> = (0..40).map(|i| [10.0, if i < 20 { 10.0 } else { 50.0 }]).collect();
        let mut rng = ChaCha8Rng::seed_from_u64(0);
        let mut k = initial_anchors(&wh, 2, 640, &mut rng);
        k.sort_by(|a, b| a[1].total_cmp(&b[1]));
        assert!((k[0][0] - 10.0).abs() < 1e-9 && (k[0][1] - 10.0).abs() < 1e-9, "{k:?}");
        assert!((k[1][1] - 50.0).abs() < 1e-9, "{k:?}");
    }
}
