//! Matching of predictions to ground truth: `val.py`'s `process_batch` and the pair selection shared
//! with the confusion matrix.

use super::{Detection, GroundTruth, IOU_THRESHOLDS, NUM_IOU_THRESHOLDS};

/// IoU of two `xyxy` boxes, computed like ultralytics' `box_iou` in `f32`:
/// `inter / (area_a + area_b - inter + 1e-7)`, with `inter` the clamped overlap.
///
/// ultralytics calls it with the label first (`box_iou(labels, detections)`); the value does not
/// depend on the order.
pub fn box_iou(a: &[f32; 4], b: &[f32; 4]) -> f32 {
    const EPS: f32 = 1e-7;
    let iw = (a[2].min(b[2]) - a[0].max(b[0])).max(0.0);
    let ih = (a[3].min(b[3]) - a[1].max(b[1])).max(0.0);
    let inter = iw * ih;
    let area_a = (a[2] - a[0]) * (a[3] - a[1]);
    let area_b = (b[2] - b[0]) * (b[3] - b[1]);
    inter / (area_a + area_b - inter + EPS)
}

/// One candidate pair `(label, detection)` with its IoU.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Pair {
    pub label: usize,
    pub det: usize,
    pub iou: f32,
}

/// The IoU matrix `[label][detection]`.
pub(crate) fn iou_matrix(preds: &[Detection], gts: &[GroundTruth]) -> Vec<Vec<f32>> {
    gts.iter().map(|g| preds.iter().map(|p| box_iou(&g.xyxy, &p.xyxy)).collect()).collect()
}

/// Reorders `pairs` as NumPy's `pairs[iou.argsort()[::-1]]` does: IoU descending, ties in reverse of
/// their current order (a stable ascending sort, then a reversal).
fn sort_iou_desc(pairs: &mut [Pair]) {
    pairs.sort_by(|x, y| x.iou.total_cmp(&y.iou));
    pairs.reverse();
}

/// `pairs[np.unique(key(pairs), return_index=True)[1]]`: the first pair of each key, ordered by key.
fn unique_first_by(pairs: &[Pair], key: fn(&Pair) -> usize) -> Vec<Pair> {
    let mut out: Vec<Pair> = Vec::with_capacity(pairs.len());
    for p in pairs {
        if !out.iter().any(|q| key(q) == key(p)) {
            out.push(*p);
        }
    }
    out.sort_by_key(key);
    out
}

/// ultralytics' one-to-one selection among candidate pairs given in `torch.where` order (label-major).
///
/// With more than one candidate: sort by IoU descending, keep the first pair of each detection
/// (which leaves the pairs ordered by detection index), optionally sort by IoU descending again
/// (`resort`, done by the confusion matrix but not by `process_batch`), and keep the first pair of
/// each label. Without the re-sort a label goes to its **lowest-index** (highest-confidence)
/// detection among those that kept it, not to its highest-IoU one: YOLOv5 v7.0's behaviour.
pub(crate) fn select_matches(mut pairs: Vec<Pair>, resort: bool) -> Vec<Pair> {
    if pairs.len() <= 1 {
        return pairs;
    }
    sort_iou_desc(&mut pairs);
    let mut pairs = unique_first_by(&pairs, |p| p.det);
    if resort {
        sort_iou_desc(&mut pairs);
    }
    unique_first_by(&pairs, |p| p.label)
}

/// `val.py`'s `process_batch`: which predictions are true positives at each of the
/// [`IOU_THRESHOLDS`].
///
/// For each threshold, candidates are the `(label, prediction)` pairs of the same class with
/// `IoU >= threshold` (in `f32`); they are sorted by IoU descending and made unique per prediction,
/// then per label (NumPy's `unique` keeps the first occurrence; see the module docs for ties). The
/// predictions are taken in the order given (ultralytics gets them in NMS order, descending
/// confidence, and that order decides which duplicate wins a label).
///
/// Returns one row per prediction; all `false` when `gts` is empty.
pub fn match_predictions(preds: &[Detection], gts: &[GroundTruth]) -> Vec<[bool; NUM_IOU_THRESHOLDS]> {
    let mut correct = vec![[false; NUM_IOU_THRESHOLDS]; preds.len()];
    if preds.is_empty() || gts.is_empty() {
        return correct;
    }
    let iou = iou_matrix(preds, gts);
    for (t, &thr) in IOU_THRESHOLDS.iter().enumerate() {
        let mut pairs = Vec::new();
        for (li, g) in gts.iter().enumerate() {
            for (di, p) in preds.iter().enumerate() {
                let v = iou[li][di];
                if f64::from(v) >= thr && g.class_id == p.class_id {
                    pairs.push(Pair { label: li, det: di, iou: v });
                }
            }
        }
        for m in select_matches(pairs, false) {
            correct[m.det][t] = true;
        }
    }
    correct
}

#[cfg(test)]
mod tests {
    use super::*;

    fn det(xyxy: [f32; 4], score: f32, class_id: usize) -> Detection {
        Detection { xyxy, score, class_id }
    }

    fn gt(xyxy: [f32; 4], class_id: usize) -> GroundTruth {
        GroundTruth { xyxy, class_id }
    }

    fn row(n_true: usize) -> [bool; NUM_IOU_THRESHOLDS] {
        std::array::from_fn(|i| i < n_true)
    }

    #[test]
    fn iou_of_simple_boxes() {
        assert!((box_iou(&[0., 0., 10., 10.], &[0., 0., 10., 10.]) - 1.0).abs() < 1e-6);
        assert_eq!(box_iou(&[0., 0., 10., 10.], &[20., 20., 30., 30.]), 0.0);
        // overlap 5x10 = 50, union 150
        assert!((box_iou(&[0., 0., 10., 10.], &[5., 0., 15., 10.]) - 50.0 / 150.0).abs() < 1e-6);
    }

    #[test]
    fn exact_match_is_correct_at_every_threshold() {
        let c = match_predictions(&[det([0., 0., 10., 10.], 0.9, 3)], &[gt([0., 0., 10., 10.], 3)]);
        assert_eq!(c, vec![row(10)]);
    }

    #[test]
    fn iou_thresholds_are_inclusive_and_graded() {
        // IoU = 80 / (100 + 1e-7) = 0.8_f32 in f32 (the eps vanishes next to 100): equal to the
        // threshold, and `>=` keeps it.
        let c = match_predictions(&[det([0., 0., 8., 10.], 0.9, 0)], &[gt([0., 0., 10., 10.], 0)]);
        assert_eq!(c, vec![row(7)]);
        // IoU = 0.72: true at 0.50 .. 0.70.
        let c = match_predictions(&[det([0., 0., 7.2, 10.], 0.9, 0)], &[gt([0., 0., 10., 10.], 0)]);
        assert_eq!(c, vec![row(5)]);
    }

    #[test]
    fn class_mismatch_is_never_correct() {
        let c = match_predictions(&[det([0., 0., 10., 10.], 0.9, 1)], &[gt([0., 0., 10., 10.], 0)]);
        assert_eq!(c, vec![row(0)]);
    }

    #[test]
    fn duplicates_only_one_wins_and_it_is_the_first_prediction() {
        // Both predictions overlap the single label; the second has the higher IoU, but process_batch
        // (without the re-sort) gives the label to the lower prediction index.
        let g = [gt([0., 0., 10., 10.], 0)];
        let p = [det([0., 0., 9., 10.], 0.9, 0), det([0., 0., 10., 10.], 0.8, 0)];
        let c = match_predictions(&p, &g);
        // IoU 0.9_f32 for the first: true up to 0.90 inclusive.
        assert_eq!(c[0], row(9));
        // The second (IoU 1) wins only where the first does not qualify.
        assert_eq!(c[1], [false, false, false, false, false, false, false, false, false, true]);
    }

    #[test]
    fn each_prediction_takes_its_best_label() {
        // P0 lies between both labels (IoU 0.739 with L0, 0.905 with L1) and must keep L1; P1 is L0
        // itself. Had P0 kept L0, the label step would give L0 to P0 (lower index) and P1 would lose.
        let g = [gt([0., 0., 10., 10.], 0), gt([2., 0., 12., 10.], 0)];
        let p = [det([1.5, 0., 11.5, 10.], 0.9, 0), det([0., 0., 10., 10.], 0.8, 0)];
        let c = match_predictions(&p, &g);
        assert_eq!(c, vec![row(9), row(10)]);
    }

    #[test]
    fn two_predictions_two_labels() {
        let g = [gt([0., 0., 10., 10.], 0), gt([100., 100., 110., 110.], 0)];
        let p =
            [det([100., 100., 110., 110.], 0.9, 0), det([0., 0., 10., 10.], 0.8, 0), det([0., 0., 10., 10.], 0.7, 0)];
        let c = match_predictions(&p, &g);
        assert_eq!(c, vec![row(10), row(10), row(0)]);
    }

    #[test]
    fn select_with_resort_prefers_highest_iou_per_label() {
        let pairs = vec![Pair { label: 0, det: 0, iou: 0.6 }, Pair { label: 0, det: 1, iou: 0.9 }];
        assert_eq!(select_matches(pairs.clone(), false), vec![pairs[0]]);
        assert_eq!(select_matches(pairs.clone(), true), vec![pairs[1]]);
    }
}
