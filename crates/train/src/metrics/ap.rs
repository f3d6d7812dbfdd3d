//! Average precision: ultralytics' `ap_per_class`, `compute_ap` and `smooth`, pycocotools' 101-point
//! rule, and the NumPy primitives they rest on (`linspace`, `interp`, pairwise summation).

use serde::{Deserialize, Serialize};

use super::NUM_IOU_THRESHOLDS;

/// The `eps` of `ap_per_class` (in the recall denominator and the F1 formula).
const EPS: f64 = 1e-16;

/// Number of points of the confidence / recall grid of the curves.
const CURVE_POINTS: usize = 1000;

/// Fraction of the box filter applied to the mean F1 curve before taking its maximum.
const F1_SMOOTH_FRACTION: f64 = 0.1;

/// How AP is integrated from a class's recall/precision curve.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum ApMethod {
    /// ultralytics' [`compute_ap`]: sentinels (0, 1) and (1, 0), precision envelope, linear
    /// interpolation on 101 recall points and the trapezoid rule. 0.995 for perfect detections.
    #[default]
    Ultralytics,
    /// pycocotools' [`compute_ap_coco`]: the envelope sampled at 101 recall thresholds, 0 above the
    /// maximum recall, averaged. 1.0 for perfect detections; what published COCO numbers use.
    Coco101,
}

/// NumPy's `linspace(start, stop, num)` (endpoint included), value for value:
/// `i * ((stop - start) / (num - 1)) + start`, and exactly `stop` last.
pub fn linspace(start: f64, stop: f64, num: usize) -> Vec<f64> {
    match num {
        0 => Vec::new(),
        1 => vec![start],
        _ => {
            let step = (stop - start) / (num - 1) as f64;
            let mut y: Vec<f64> = (0..num).map(|i| i as f64 * step + start).collect();
            y[num - 1] = stop;
            y
        }
    }
}

/// NumPy's `interp(x, xp, fp, left, right)` for one point: piecewise-linear interpolation on the
/// non-decreasing `xp`, `left` below `xp[0]` and `right` above the last `xp`.
///
/// Like NumPy, the segment is the last `j` with `xp[j] <= x` (so among repeated `xp` the last one
/// counts), `fp[j]` is returned when `xp[j] == x`, and otherwise
/// `slope * (x - xp[j]) + fp[j]` with `slope = (fp[j+1] - fp[j]) / (xp[j+1] - xp[j])`.
///
/// # Panics
///
/// If `xp` is empty or `fp` is shorter than `xp`.
pub fn np_interp(x: f64, xp: &[f64], fp: &[f64], left: f64, right: f64) -> f64 {
    let n = xp.len();
    if x.is_nan() {
        return x;
    }
    if x > xp[n - 1] {
        return right;
    }
    if x < xp[0] {
        return left;
    }
    let j = xp.partition_point(|&v| v <= x) - 1;
    if j == n - 1 || xp[j] == x {
        return fp[j];
    }
    let slope = (fp[j + 1] - fp[j]) / (xp[j + 1] - xp[j]);
    let y = slope * (x - xp[j]) + fp[j];
    if y.is_nan() {
        let y2 = slope * (x - xp[j + 1]) + fp[j + 1];
        if y2.is_nan() && fp[j] == fp[j + 1] {
            return fp[j];
        }
        return y2;
    }
    y
}

/// NumPy's pairwise summation (`add.reduce` over a contiguous axis): left to right below 8
/// elements, eight interleaved partial sums up to 128, halves above.
pub(crate) fn pairwise_sum(a: &[f64]) -> f64 {
    let n = a.len();
    if n < 8 {
        let mut res = 0.0;
        for &v in a {
            res += v;
        }
        res
    } else if n <= 128 {
        let mut r = [0.0; 8];
        r.copy_from_slice(&a[..8]);
        let full = n - n % 8;
        let mut i = 8;
        while i < full {
            for (k, rk) in r.iter_mut().enumerate() {
                *rk += a[i + k];
            }
            i += 8;
        }
        let mut res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
        for &v in &a[full..] {
            res += v;
        }
        res
    } else {
        let mut n2 = n / 2;
        n2 -= n2 % 8;
        pairwise_sum(&a[..n2]) + pairwise_sum(&a[n2..])
    }
}

/// NumPy's `mean` of a 1-D array (pairwise sum divided by the length); 0 for an empty slice
/// (NumPy gives NaN).
pub(crate) fn np_mean(a: &[f64]) -> f64 {
    if a.is_empty() { 0.0 } else { pairwise_sum(a) / a.len() as f64 }
}

/// NumPy's `trapezoid(y, x)`: `sum(diff(x) * (y[1:] + y[:-1]) / 2)`.
fn trapezoid(y: &[f64], x: &[f64]) -> f64 {
    let terms: Vec<f64> = (0..x.len().saturating_sub(1)).map(|i| (x[i + 1] - x[i]) * (y[i + 1] + y[i]) / 2.0).collect();
    pairwise_sum(&terms)
}

/// ultralytics' `smooth`: a box filter of fraction `f`, with `round(len * f * 2) // 2 + 1` taps
/// (odd), the ends padded with the first and last values, output of the input's length.
pub fn smooth(y: &[f64], f: f64) -> Vec<f64> {
    if y.is_empty() {
        return Vec::new();
    }
    let nf = ((y.len() as f64 * f * 2.0).round_ties_even() as usize) / 2 + 1;
    let half = nf / 2;
    let mut yp = Vec::with_capacity(y.len() + 2 * half);
    yp.extend(std::iter::repeat_n(y[0], half));
    yp.extend_from_slice(y);
    yp.extend(std::iter::repeat_n(y[y.len() - 1], half));
    let w = 1.0 / nf as f64;
    (0..y.len())
        .map(|k| {
            let mut s = 0.0;
            for &v in &yp[k..k + nf] {
                s += v * w;
            }
            s
        })
        .collect()
}

/// ultralytics' `compute_ap` ('interp' method): AP of one recall/precision curve.
///
/// Appends the sentinels (recall 0, precision 1) and (recall 1, precision 0), replaces precision by
/// its envelope (the running maximum from the right), interpolates it linearly at recall
/// `linspace(0, 1, 101)` and integrates with the trapezoid rule. When the maximum recall is below 1
/// the sentinel adds a triangle, and perfect detections give 0.995 rather than 1.
///
/// Returns `(ap, mpre, mrec)`: the AP, the precision envelope and the recall, both with sentinels.
pub fn compute_ap(recall: &[f64], precision: &[f64]) -> (f64, Vec<f64>, Vec<f64>) {
    let mut mrec = Vec::with_capacity(recall.len() + 2);
    mrec.push(0.0);
    mrec.extend_from_slice(recall);
    mrec.push(1.0);
    let mut mpre = Vec::with_capacity(precision.len() + 2);
    mpre.push(1.0);
    mpre.extend_from_slice(precision);
    mpre.push(0.0);
    for i in (0..mpre.len() - 1).rev() {
        if mpre[i + 1] > mpre[i] {
            mpre[i] = mpre[i + 1];
        }
    }
    let x = linspace(0.0, 1.0, 101);
    let (first, last) = (mpre[0], mpre[mpre.len() - 1]);
    let y: Vec<f64> = x.iter().map(|&xi| np_interp(xi, &mrec, &mpre, first, last)).collect();
    (trapezoid(&y, &x), mpre, mrec)
}

/// pycocotools' AP of one recall/precision curve (`COCOeval.accumulate`): the precision envelope
/// (without sentinels) read at the first point whose recall reaches each of the 101 thresholds
/// `linspace(0, 1, 101)` (`searchsorted(..., side='left')`), 0 for thresholds above the maximum
/// recall, averaged. 1.0 for perfect detections, 0 for an empty curve.
///
/// Given ultralytics' curves of a class this reproduces pycocotools' AP whenever the matching agrees
/// (pycocotools divides precision by `tp + fp + 2.2e-16`, a one-ulp difference).
pub fn compute_ap_coco(recall: &[f64], precision: &[f64]) -> f64 {
    let n = recall.len().min(precision.len());
    let mut pr = precision[..n].to_vec();
    for i in (1..n).rev() {
        if pr[i] > pr[i - 1] {
            pr[i - 1] = pr[i];
        }
    }
    let thresholds = linspace(0.0, 1.0, 101);
    let mut q = vec![0.0; thresholds.len()];
    for (qi, &t) in q.iter_mut().zip(&thresholds) {
        let idx = recall[..n].partition_point(|&r| r < t);
        if idx >= n {
            break;
        }
        *qi = pr[idx];
    }
    np_mean(&q)
}

/// The output of [`ap_per_class`]; all per-class vectors are in the order of `classes`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ApPerClass {
    /// The classes present in the labels, ascending (`unique_classes`).
    pub classes: Vec<usize>,
    /// Number of labels of each class.
    pub nt: Vec<usize>,
    /// True positives at the chosen confidence, `round(r * nt)`.
    pub tp: Vec<f64>,
    /// False positives at the chosen confidence, `round(tp / (p + eps) - tp)`.
    pub fp: Vec<f64>,
    /// Precision at the chosen confidence.
    pub p: Vec<f64>,
    /// Recall at the chosen confidence.
    pub r: Vec<f64>,
    /// F1 at the chosen confidence.
    pub f1: Vec<f64>,
    /// AP at each IoU threshold (0 for a class without predictions).
    pub ap: Vec<[f64; NUM_IOU_THRESHOLDS]>,
    /// The confidence / recall grid `linspace(0, 1, 1000)`.
    pub px: Vec<f64>,
    /// Per class, precision against confidence on `px` (all zeros without predictions).
    pub p_curve: Vec<Vec<f64>>,
    /// Per class, recall against confidence on `px` (all zeros without predictions).
    pub r_curve: Vec<Vec<f64>>,
    /// Per class, F1 against confidence on `px`.
    pub f1_curve: Vec<Vec<f64>>,
    /// Per class, the IoU-0.5 precision envelope against recall on `px` (all zeros without
    /// predictions).
    pub pr_curve: Vec<Vec<f64>>,
    /// Index into `px` of the maximum of the smoothed (f = 0.1) mean F1 curve.
    pub best_index: usize,
}

/// ultralytics' `ap_per_class` on accumulated predictions.
///
/// - `tp`: one row per prediction, true positive at each IoU threshold; `conf`, `pred_cls`: its
///   confidence and class; `target_cls`: the class of every label.
/// - Predictions are sorted by confidence, descending, with a **stable** sort (NumPy's `argsort`
///   is not stable; with tied confidences the order there is an implementation detail).
/// - For each class present in the labels with at least one prediction: cumulative TP/FP, recall
///   `tpc / (n_l + 1e-16)`, precision `tpc / (tpc + fpc)`; the IoU-0.5 recall and precision are
///   interpolated against confidence on `px = linspace(0, 1, 1000)` as
///   `interp(-px, -conf, ·)` (left value 0 for recall, 1 for precision); AP at each threshold by
///   `method`. A class without predictions keeps zeros everywhere.
/// - F1 = `2 p r / (p + r + 1e-16)` on the grid; P, R and F1 are read at the first maximum of the
///   mean F1 over classes after [`smooth`] with f = 0.1.
pub fn ap_per_class(
    tp: &[[bool; NUM_IOU_THRESHOLDS]],
    conf: &[f32],
    pred_cls: &[usize],
    target_cls: &[usize],
    method: ApMethod,
) -> ApPerClass {
    assert!(tp.len() == conf.len() && conf.len() == pred_cls.len(), "tp, conf and pred_cls must have equal lengths");
    let mut order: Vec<usize> = (0..conf.len()).collect();
    order.sort_by(|&a, &b| conf[b].total_cmp(&conf[a]));

    let mut sorted_targets = target_cls.to_vec();
    sorted_targets.sort_unstable();
    let mut classes: Vec<usize> = Vec::new();
    let mut nt: Vec<usize> = Vec::new();
    for &c in &sorted_targets {
        if classes.last() == Some(&c) {
            *nt.last_mut().expect("nt follows classes") += 1;
        } else {
            classes.push(c);
            nt.push(1);
        }
    }
    let nk = classes.len();

    let px = linspace(0.0, 1.0, CURVE_POINTS);
    let mut ap = vec![[0.0; NUM_IOU_THRESHOLDS]; nk];
    let mut p_curve = vec![vec![0.0; CURVE_POINTS]; nk];
    let mut r_curve = vec![vec![0.0; CURVE_POINTS]; nk];
    let mut pr_curve = vec![vec![0.0; CURVE_POINTS]; nk];

    for (ci, &c) in classes.iter().enumerate() {
        let idx: Vec<usize> = order.iter().copied().filter(|&i| pred_cls[i] == c).collect();
        let n_l = nt[ci];
        if idx.is_empty() || n_l == 0 {
            continue;
        }
        let n_p = idx.len();
        // recall[t][j], precision[t][j] for threshold t and the j-th prediction of the class.
        let mut recall = vec![vec![0.0; n_p]; NUM_IOU_THRESHOLDS];
        let mut precision = vec![vec![0.0; n_p]; NUM_IOU_THRESHOLDS];
        for t in 0..NUM_IOU_THRESHOLDS {
            let (mut tpc, mut fpc) = (0u64, 0u64);
            for (j, &i) in idx.iter().enumerate() {
                if tp[i][t] {
                    tpc += 1;
                } else {
                    fpc += 1;
                }
                recall[t][j] = tpc as f64 / (n_l as f64 + EPS);
                precision[t][j] = tpc as f64 / (tpc + fpc) as f64;
            }
        }
        let neg_conf: Vec<f64> = idx.iter().map(|&i| -f64::from(conf[i])).collect();
        let (r0, p0) = (&recall[0], &precision[0]);
        for (k, &x) in px.iter().enumerate() {
            r_curve[ci][k] = np_interp(-x, &neg_conf, r0, 0.0, r0[n_p - 1]);
            p_curve[ci][k] = np_interp(-x, &neg_conf, p0, 1.0, p0[n_p - 1]);
        }
        for t in 0..NUM_IOU_THRESHOLDS {
            let (ap_u, mpre, mrec) = compute_ap(&recall[t], &precision[t]);
            ap[ci][t] = match method {
                ApMethod::Ultralytics => ap_u,
                ApMethod::Coco101 => compute_ap_coco(&recall[t], &precision[t]),
            };
            if t == 0 {
                let (first, last) = (mpre[0], mpre[mpre.len() - 1]);
                for (k, &x) in px.iter().enumerate() {
                    pr_curve[ci][k] = np_interp(x, &mrec, &mpre, first, last);
                }
            }
        }
    }

    let f1_curve: Vec<Vec<f64>> = p_curve
        .iter()
        .zip(&r_curve)
        .map(|(pc, rc)| pc.iter().zip(rc).map(|(&p, &r)| 2.0 * p * r / (p + r + EPS)).collect())
        .collect();

    let best_index = if nk == 0 {
        0
    } else {
        let mut mean_f1 = vec![0.0; CURVE_POINTS];
        for row in &f1_curve {
            for (m, &v) in mean_f1.iter_mut().zip(row) {
                *m += v;
            }
        }
        for m in &mut mean_f1 {
            *m /= nk as f64;
        }
        argmax_first(&smooth(&mean_f1, F1_SMOOTH_FRACTION))
    };

    let p: Vec<f64> = p_curve.iter().map(|c| c[best_index]).collect();
    let r: Vec<f64> = r_curve.iter().map(|c| c[best_index]).collect();
    let f1: Vec<f64> = f1_curve.iter().map(|c| c[best_index]).collect();
    let tp_out: Vec<f64> = r.iter().zip(&nt).map(|(&r, &n)| (r * n as f64).round_ties_even()).collect();
    let fp_out: Vec<f64> = tp_out.iter().zip(&p).map(|(&t, &p)| (t / (p + EPS) - t).round_ties_even()).collect();

    ApPerClass {
        classes,
        nt,
        tp: tp_out,
        fp: fp_out,
        p,
        r,
        f1,
        ap,
        px,
        p_curve,
        r_curve,
        f1_curve,
        pr_curve,
        best_index,
    }
}

/// Index of the first maximum (NumPy's `argmax`, NaN aside).
fn argmax_first(y: &[f64]) -> usize {
    let mut best = 0;
    for (i, &v) in y.iter().enumerate() {
        if v > y[best] {
            best = i;
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-12
    }

    #[test]
    fn linspace_matches_numpy() {
        let x = linspace(0.0, 1.0, 101);
        assert_eq!(x.len(), 101);
        assert_eq!(x[0], 0.0);
        assert_eq!(x[100], 1.0);
        assert_eq!(x[3], 3.0 * 0.01);
        assert_eq!(linspace(0.0, 1.0, 1000)[999], 1.0);
    }

    #[test]
    fn interp_like_numpy() {
        let xp = [0.0, 1.0, 1.0, 2.0];
        let fp = [0.0, 1.0, 5.0, 6.0];
        assert_eq!(np_interp(-1.0, &xp, &fp, -7.0, 9.0), -7.0);
        assert_eq!(np_interp(3.0, &xp, &fp, -7.0, 9.0), 9.0);
        assert_eq!(np_interp(2.0, &xp, &fp, -7.0, 9.0), 6.0);
        assert_eq!(np_interp(0.5, &xp, &fp, -7.0, 9.0), 0.5);
        // A repeated xp: the last one counts.
        assert_eq!(np_interp(1.0, &xp, &fp, -7.0, 9.0), 5.0);
        assert_eq!(np_interp(1.5, &xp, &fp, -7.0, 9.0), 5.5);
    }

    #[test]
    fn pairwise_sum_is_a_sum() {
        let a: Vec<f64> = (0..300).map(|i| i as f64).collect();
        assert_eq!(pairwise_sum(&a), 299.0 * 300.0 / 2.0);
        assert_eq!(pairwise_sum(&a[..5]), 10.0);
        assert_eq!(pairwise_sum(&a[..13]), 78.0);
    }

    #[test]
    fn smooth_of_constant_is_constant_and_width_is_odd() {
        let y = vec![0.25; 1000];
        assert!(smooth(&y, 0.1).iter().all(|&v| (v - 0.25).abs() < 1e-15));
        // A unit step smoothed by 101 taps reaches 1 only 50 samples after the step.
        let step: Vec<f64> = (0..1000).map(|i| if i >= 500 { 1.0 } else { 0.0 }).collect();
        let s = smooth(&step, 0.1);
        assert!(s[449] < 1e-15 && s[450] > 0.0);
        assert!(s[549] < 1.0 && (s[550] - 1.0).abs() < 1e-12);
    }

    #[test]
    fn compute_ap_perfect_is_0995_and_coco_is_1() {
        let (ap, mpre, mrec) = compute_ap(&[0.5, 1.0], &[1.0, 1.0]);
        assert!(close(ap, 0.995), "{ap}");
        assert_eq!(mrec, vec![0.0, 0.5, 1.0, 1.0]);
        assert_eq!(mpre, vec![1.0, 1.0, 1.0, 0.0]);
        assert!(close(compute_ap_coco(&[0.5, 1.0], &[1.0, 1.0]), 1.0));
    }

    #[test]
    fn compute_ap_half_recall() {
        // One label found out of two at precision 1: the envelope is 1 up to recall 0.5, then the
        // sentinel line from (0.5, 1) down to (1, 0) adds a triangle of 0.25.
        let (ap, _, _) = compute_ap(&[0.5], &[1.0]);
        assert!(close(ap, 0.75), "{ap}");
        // COCO: 51 of 101 thresholds (0.00 ..= 0.50) reach precision 1.
        assert!(close(compute_ap_coco(&[0.5], &[1.0]), 51.0 / 101.0));
    }

    #[test]
    fn compute_ap_uses_the_envelope() {
        // FP then TP: precision 0 then 0.5 at recall 0 then 1.
        let (ap, mpre, _) = compute_ap(&[0.0, 1.0], &[0.0, 0.5]);
        assert_eq!(mpre, vec![1.0, 0.5, 0.5, 0.0]);
        // interp at recall 0 hits the repeated 0 and takes the last one (0.5): 0.5 everywhere
        // but the last point, which takes fp at the repeated 1 (the sentinel 0).
        assert!(close(ap, 0.5 - 0.0025), "{ap}");
        assert!(close(compute_ap_coco(&[0.0, 1.0], &[0.0, 0.5]), 0.5));
    }

    #[test]
    fn ap_per_class_small_case() {
        let t = [true; NUM_IOU_THRESHOLDS];
        let f = [false; NUM_IOU_THRESHOLDS];
        // Class 0: 2 labels, predictions TP (0.9), FP (0.8), TP (0.7). Class 1: 1 label, no preds.
        let res = ap_per_class(&[t, f, t], &[0.9, 0.8, 0.7], &[0, 0, 0], &[0, 0, 1], ApMethod::Ultralytics);
        assert_eq!(res.classes, vec![0, 1]);
        assert_eq!(res.nt, vec![2, 1]);
        assert_eq!(res.ap[1], [0.0; NUM_IOU_THRESHOLDS]);
        // Envelope: precision 1 below recall 0.5, 2/3 from recall 0.5 (the repeated 0.5 takes the
        // later value) up to 1, and the sentinel 0 at recall 1.
        let expected = {
            let x = linspace(0.0, 1.0, 101);
            let y: Vec<f64> = x
                .iter()
                .map(|&r| {
                    if r < 0.5 {
                        1.0
                    } else if r < 1.0 {
                        2.0 / 3.0
                    } else {
                        0.0
                    }
                })
                .collect();
            trapezoid(&y, &x)
        };
        assert!(close(res.ap[0][0], expected));
        assert!(res.p_curve[1].iter().all(|&v| v == 0.0));
        // Class 1 has F1 0 everywhere, so the mean F1 peaks where class 0's does: at low
        // confidence, where all three predictions count (P 2/3, R 1).
        assert!(close(res.r[0], 1.0) && close(res.p[0], 2.0 / 3.0), "{:?} {:?}", res.p, res.r);
        assert_eq!(res.tp, vec![2.0, 0.0]);
        assert_eq!(res.fp, vec![1.0, 0.0]);
    }
}
