//! Detection metrics of ultralytics YOLOv5 v7.0 (`val.py` and `utils/metrics.py`), in plain Rust.
//!
//! - [`match_predictions`] is `val.py`'s `process_batch`: the true-positive matrix of one image at the
//!   ten IoU thresholds [`IOU_THRESHOLDS`] (0.50:0.05:0.95);
//! - [`MetricsAccumulator`] collects those matrices over a validation run and [`MetricsAccumulator::finish`]
//!   runs `ap_per_class` ([`ap_per_class`]): per-class AP at every threshold, the P/R/F1-confidence
//!   curves, and P and R read at the confidence of maximum smoothed mean F1;
//! - [`compute_ap`] is ultralytics' AP integration (precision envelope with sentinels, 101-point
//!   trapezoid); [`compute_ap_coco`] is pycocotools' 101-point rule on the same curves;
//! - [`ConfusionMatrix`] is ultralytics' confusion matrix (conf 0.25, IoU 0.45) with a background
//!   row and column.
//!
//! # Fidelity
//!
//! The computation follows the reference step by step, with IoUs in `f32` (like PyTorch) and the
//! curves in `f64` (like NumPy); on the reference fixture the results agree to ~1e-16. The remaining
//! sources of difference are documented where they occur:
//!
//! - NumPy's default `argsort` is not stable, so **ties** (equal confidences in `ap_per_class`,
//!   equal IoUs in `process_batch`) are ordered there by an implementation detail that can change
//!   with the array size and the CPU; here the confidence sort is stable (earlier prediction first)
//!   and IoU ties are ordered as a stable ascending sort followed by a reversal would order them
//!   (which is what NumPy does for the small arrays of one image);
//! - sums are taken left to right, where NumPy sometimes uses pairwise or BLAS summation (differences
//!   of a few ulps).

mod ap;
mod confusion;
mod matching;

pub use ap::{ApMethod, ApPerClass, ap_per_class, compute_ap, compute_ap_coco, linspace, np_interp, smooth};
pub use confusion::ConfusionMatrix;
pub use matching::{box_iou, match_predictions};
pub use yolo_compress_model::postprocess::Detection;

use serde::{Deserialize, Serialize};

/// Number of IoU thresholds of the mAP@0.5:0.95 protocol.
pub const NUM_IOU_THRESHOLDS: usize = 10;

/// The IoU thresholds 0.50, 0.55, …, 0.95.
///
/// ultralytics builds them with `torch.linspace(0.5, 0.95, 10)` in `float32` and compares them with
/// `float32` IoUs, so these are the `f32` values (e.g. `0.55_f32` = 0.550000011920929) widened to
/// `f64`; comparing an `f32` IoU widened to `f64` with them gives exactly PyTorch's `f32` comparison.
pub const IOU_THRESHOLDS: [f64; NUM_IOU_THRESHOLDS] = [
    0.5_f32 as f64,
    0.55_f32 as f64,
    0.6_f32 as f64,
    0.65_f32 as f64,
    0.7_f32 as f64,
    0.75_f32 as f64,
    0.8_f32 as f64,
    0.85_f32 as f64,
    0.9_f32 as f64,
    0.95_f32 as f64,
];

/// A ground-truth box in pixels.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct GroundTruth {
    /// Box corners `[x1, y1, x2, y2]` in pixels, in the same space as the predictions.
    pub xyxy: [f32; 4],
    /// Class index.
    pub class_id: usize,
}

impl GroundTruth {
    /// A ground-truth box of class `class_id` with corners `xyxy`.
    pub fn new(xyxy: [f32; 4], class_id: usize) -> Self {
        Self { xyxy, class_id }
    }
}

/// Metrics of one class, one row of ultralytics' per-class table.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ClassMetrics {
    /// Class index.
    pub class_id: usize,
    /// Number of images whose labels contain the class.
    pub images: usize,
    /// Number of ground-truth boxes of the class.
    pub instances: usize,
    /// Precision at the confidence of maximum smoothed mean F1 (IoU 0.5).
    pub precision: f64,
    /// Recall at the confidence of maximum smoothed mean F1 (IoU 0.5).
    pub recall: f64,
    /// F1 at the confidence of maximum smoothed mean F1 (IoU 0.5).
    pub f1: f64,
    /// AP at IoU 0.5.
    pub ap50: f64,
    /// AP averaged over the ten IoU thresholds 0.50:0.05:0.95.
    pub ap50_95: f64,
    /// AP at each of the [`IOU_THRESHOLDS`].
    pub ap: [f64; NUM_IOU_THRESHOLDS],
    /// True positives at that confidence, `round(recall * instances)` (ap_per_class' `tp`).
    pub tp: f64,
    /// False positives at that confidence, `round(tp / precision - tp)` (ap_per_class' `fp`).
    pub fp: f64,
}

/// The curves ultralytics plots (`P_curve.png`, `R_curve.png`, `F1_curve.png`, `PR_curve.png`).
///
/// Every per-class vector is in the order of [`DetectionMetrics::per_class`] and has the length of
/// [`px`](Self::px).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PrCurves {
    /// The 1000-point grid `linspace(0, 1, 1000)`: confidence for `precision`, `recall` and `f1`,
    /// recall for `pr`.
    pub px: Vec<f64>,
    /// Per class, precision (IoU 0.5) against confidence on `px` (1 above the class's highest
    /// confidence; all zeros for a class without predictions).
    pub precision: Vec<Vec<f64>>,
    /// Per class, recall (IoU 0.5) against confidence on `px` (0 above the class's highest
    /// confidence; all zeros for a class without predictions).
    pub recall: Vec<Vec<f64>>,
    /// Per class, F1 against confidence on `px`.
    pub f1: Vec<Vec<f64>>,
    /// Per class, the precision envelope at IoU 0.5 against recall on `px` (the PR curve). All zeros
    /// for a class without predictions; ultralytics leaves such classes out of its PR plot
    /// (including the "all classes" mean curve).
    pub pr: Vec<Vec<f64>>,
    /// Index into `px` of the maximum of the smoothed mean F1, where P, R and F1 are read.
    pub best_index: usize,
}

/// The result of a validation run, as `val.py` prints it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DetectionMetrics {
    /// Mean over classes of the per-class precision.
    pub precision: f64,
    /// Mean over classes of the per-class recall.
    pub recall: f64,
    /// Mean over classes of AP at IoU 0.5.
    pub map50: f64,
    /// Mean over classes of AP at IoU 0.50:0.05:0.95.
    pub map50_95: f64,
    /// Number of images seen.
    pub images: usize,
    /// Number of ground-truth boxes.
    pub instances: usize,
    /// One entry per class present in the labels, in ascending class order (ap_per_class'
    /// `unique_classes`, which YOLOv5 v7.0 takes from the labels only: a class that is only
    /// predicted has no row and does not enter the means).
    pub per_class: Vec<ClassMetrics>,
    /// The curves behind the numbers.
    pub curves: PrCurves,
}

impl DetectionMetrics {
    /// ultralytics' fitness: `0.1 * mAP50 + 0.9 * mAP50-95` (P and R have weight 0).
    pub fn fitness(&self) -> f64 {
        0.1 * self.map50 + 0.9 * self.map50_95
    }

    /// The four headline numbers `[P, R, mAP50, mAP50-95]`.
    pub fn mean_results(&self) -> [f64; 4] {
        [self.precision, self.recall, self.map50, self.map50_95]
    }
}

/// Accumulates per-image results over a validation run, like `val.py`'s `stats` list: the
/// true-positive matrix, confidence and class of every prediction, the class of every label, and the
/// number of images containing each class.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct MetricsAccumulator {
    nc: usize,
    images: usize,
    correct: Vec<[bool; NUM_IOU_THRESHOLDS]>,
    conf: Vec<f32>,
    pred_cls: Vec<usize>,
    target_cls: Vec<usize>,
    images_per_class: Vec<usize>,
}

impl MetricsAccumulator {
    /// An empty accumulator for a dataset of `nc` classes (class ids beyond `nc` are still accepted).
    pub fn new(nc: usize) -> Self {
        Self { nc, images_per_class: vec![0; nc], ..Self::default() }
    }

    /// Number of classes given to [`new`](Self::new).
    pub fn nc(&self) -> usize {
        self.nc
    }

    /// Adds one image: its predictions (in NMS order, i.e. descending confidence, as `val.py` gets
    /// them) and its ground truth, both in the same pixel space.
    ///
    /// Predictions of an image without labels are all false positives; an image with neither still
    /// counts as seen.
    pub fn add_image(&mut self, preds: &[Detection], gts: &[GroundTruth]) {
        let correct =
            if gts.is_empty() { vec![[false; NUM_IOU_THRESHOLDS]; preds.len()] } else { match_predictions(preds, gts) };
        self.add_image_with_correct(preds, &correct, gts);
    }

    /// Adds one image whose true-positive matrix was already computed (one row per prediction).
    ///
    /// # Panics
    ///
    /// If `correct` and `preds` differ in length.
    pub fn add_image_with_correct(
        &mut self,
        preds: &[Detection],
        correct: &[[bool; NUM_IOU_THRESHOLDS]],
        gts: &[GroundTruth],
    ) {
        assert_eq!(preds.len(), correct.len(), "one row of `correct` per prediction");
        self.images += 1;
        self.correct.extend_from_slice(correct);
        self.conf.extend(preds.iter().map(|d| d.score));
        self.pred_cls.extend(preds.iter().map(|d| d.class_id));
        self.target_cls.extend(gts.iter().map(|g| g.class_id));
        let mut seen: Vec<usize> = gts.iter().map(|g| g.class_id).collect();
        seen.sort_unstable();
        seen.dedup();
        for c in seen {
            if c >= self.images_per_class.len() {
                self.images_per_class.resize(c + 1, 0);
            }
            self.images_per_class[c] += 1;
        }
    }

    /// Appends the images of another accumulator (e.g. one filled by another thread).
    pub fn merge(&mut self, other: &Self) {
        self.nc = self.nc.max(other.nc);
        self.images += other.images;
        self.correct.extend_from_slice(&other.correct);
        self.conf.extend_from_slice(&other.conf);
        self.pred_cls.extend_from_slice(&other.pred_cls);
        self.target_cls.extend_from_slice(&other.target_cls);
        if other.images_per_class.len() > self.images_per_class.len() {
            self.images_per_class.resize(other.images_per_class.len(), 0);
        }
        for (a, b) in self.images_per_class.iter_mut().zip(&other.images_per_class) {
            *a += b;
        }
    }

    /// Number of images added so far.
    pub fn images(&self) -> usize {
        self.images
    }

    /// Number of ground-truth boxes added so far.
    pub fn instances(&self) -> usize {
        self.target_cls.len()
    }

    /// Number of ground-truth boxes per class, `bincount(target_cls, minlength=nc)`.
    pub fn instances_per_class(&self) -> Vec<usize> {
        let len = self.target_cls.iter().map(|&c| c + 1).max().unwrap_or(0).max(self.nc);
        let mut nt = vec![0; len];
        for &c in &self.target_cls {
            nt[c] += 1;
        }
        nt
    }

    /// The accumulated true-positive matrix, one row per prediction in insertion order.
    pub fn correct(&self) -> &[[bool; NUM_IOU_THRESHOLDS]] {
        &self.correct
    }

    /// The accumulated prediction confidences, in insertion order.
    pub fn confidences(&self) -> &[f32] {
        &self.conf
    }

    /// The accumulated predicted classes, in insertion order.
    pub fn pred_classes(&self) -> &[usize] {
        &self.pred_cls
    }

    /// The accumulated label classes, in insertion order.
    pub fn target_classes(&self) -> &[usize] {
        &self.target_cls
    }

    /// The metrics of the run, with ultralytics' AP ([`ApMethod::Ultralytics`]).
    pub fn finish(&self) -> DetectionMetrics {
        self.finish_with(ApMethod::Ultralytics)
    }

    /// The metrics of the run with the chosen AP integration rule; P, R, F1 and the curves do not
    /// depend on it.
    ///
    /// Like `val.py`, when no prediction is a true positive at any threshold, P, R and the mAPs are
    /// all 0 (`val.py` then prints no per-class rows; here the rows are kept, with zero metrics).
    pub fn finish_with(&self, method: ApMethod) -> DetectionMetrics {
        let res = ap_per_class(&self.correct, &self.conf, &self.pred_cls, &self.target_cls, method);
        let any_tp = self.correct.iter().any(|row| row.iter().any(|&b| b));
        let nk = res.classes.len();
        let mut per_class = Vec::with_capacity(nk);
        for (k, &c) in res.classes.iter().enumerate() {
            let images = self.images_per_class.get(c).copied().unwrap_or(0);
            let mut m = ClassMetrics { class_id: c, images, instances: res.nt[k], ..ClassMetrics::default() };
            if any_tp {
                m.precision = res.p[k];
                m.recall = res.r[k];
                m.f1 = res.f1[k];
                m.ap = res.ap[k];
                m.ap50 = res.ap[k][0];
                m.ap50_95 = ap::np_mean(&res.ap[k]);
                m.tp = res.tp[k];
                m.fp = res.fp[k];
            }
            per_class.push(m);
        }
        let mean = |f: fn(&ClassMetrics) -> f64| ap::np_mean(&per_class.iter().map(f).collect::<Vec<_>>());
        let (precision, recall, map50, map50_95) =
            (mean(|m| m.precision), mean(|m| m.recall), mean(|m| m.ap50), mean(|m| m.ap50_95));
        let curves = if any_tp {
            PrCurves {
                px: res.px,
                precision: res.p_curve,
                recall: res.r_curve,
                f1: res.f1_curve,
                pr: res.pr_curve,
                best_index: res.best_index,
            }
        } else {
            let zeros = vec![vec![0.0; res.px.len()]; nk];
            PrCurves {
                px: res.px,
                precision: zeros.clone(),
                recall: zeros.clone(),
                f1: zeros.clone(),
                pr: zeros,
                best_index: 0,
            }
        };
        DetectionMetrics {
            precision,
            recall,
            map50,
            map50_95,
            images: self.images,
            instances: self.target_cls.len(),
            per_class,
            curves,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn det(xyxy: [f32; 4], score: f32, class_id: usize) -> Detection {
        Detection { xyxy, score, class_id }
    }

    #[test]
    fn iou_thresholds_are_f32_linspace() {
        assert_eq!(IOU_THRESHOLDS[0], 0.5);
        assert_eq!(IOU_THRESHOLDS[1], 0.550000011920929);
        assert_eq!(IOU_THRESHOLDS[3], 0.6499999761581421);
        assert_eq!(IOU_THRESHOLDS[9], 0.949999988079071);
    }

    #[test]
    fn perfect_detections_give_0995() {
        let mut acc = MetricsAccumulator::new(2);
        let gts = [GroundTruth::new([0., 0., 10., 10.], 0), GroundTruth::new([20., 20., 40., 50.], 1)];
        let preds = [det([0., 0., 10., 10.], 0.9, 0), det([20., 20., 40., 50.], 0.8, 1)];
        acc.add_image(&preds, &gts);
        acc.add_image(&[], &[]);
        let m = acc.finish();
        assert_eq!(m.images, 2);
        assert_eq!(m.instances, 2);
        assert!((m.map50 - 0.995).abs() < 1e-12, "{}", m.map50);
        assert!((m.map50_95 - 0.995).abs() < 1e-12);
        assert!((m.precision - 1.0).abs() < 1e-12 && (m.recall - 1.0).abs() < 1e-12);
        assert!((m.fitness() - 0.995).abs() < 1e-12);
        let coco = acc.finish_with(ApMethod::Coco101);
        assert!((coco.map50 - 1.0).abs() < 1e-12 && (coco.map50_95 - 1.0).abs() < 1e-12);
        assert_eq!(m.per_class.len(), 2);
        assert_eq!(m.per_class[1].images, 1);
        assert_eq!(m.curves.px.len(), 1000);
        assert_eq!(m.curves.pr[0].len(), 1000);
    }

    #[test]
    fn no_true_positive_gives_zeros() {
        let mut acc = MetricsAccumulator::new(1);
        acc.add_image(&[det([100., 100., 110., 110.], 0.9, 0)], &[GroundTruth::new([0., 0., 10., 10.], 0)]);
        let m = acc.finish();
        assert_eq!(m.mean_results(), [0.0; 4]);
        assert_eq!(m.per_class.len(), 1);
        assert_eq!(m.per_class[0].instances, 1);
    }

    #[test]
    fn predicted_only_class_has_no_row_and_merge_adds_up() {
        let mut a = MetricsAccumulator::new(3);
        a.add_image(&[det([0., 0., 10., 10.], 0.9, 0)], &[GroundTruth::new([0., 0., 10., 10.], 0)]);
        let mut b = MetricsAccumulator::new(3);
        b.add_image(&[det([0., 0., 10., 10.], 0.5, 2)], &[]);
        a.merge(&b);
        assert_eq!(a.images(), 2);
        let m = a.finish();
        assert_eq!(m.per_class.iter().map(|c| c.class_id).collect::<Vec<_>>(), vec![0]);
        assert_eq!(a.instances_per_class(), vec![1, 0, 0]);
    }
}
