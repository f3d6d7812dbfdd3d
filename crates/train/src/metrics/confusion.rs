//! ultralytics' detection confusion matrix (`utils/metrics.py: ConfusionMatrix`).

use serde::{Deserialize, Serialize};

use super::matching::{Pair, iou_matrix, select_matches};
use super::{Detection, GroundTruth};

/// ultralytics' confusion matrix: `(nc + 1) x (nc + 1)` counts indexed `[predicted][true]`, the last
/// row and column being "background".
///
/// Per image ([`process_batch`](Self::process_batch)): predictions with `score > conf` are kept;
/// pairs `(label, prediction)` with `IoU > iou_thres` of **any** classes are sorted by IoU, made
/// unique per prediction, sorted again and made unique per label. A matched label counts at
/// `[pred class][true class]`, an unmatched label at `[background][true class]`, and an unmatched
/// prediction at `[pred class][background]` — but, as in YOLOv5 v7.0, only when the image has at
/// least one match: in an image where nothing overlaps, the false positives are not counted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConfusionMatrix {
    /// Number of classes (the matrix has one more row and column, for background).
    pub nc: usize,
    /// Counts, `matrix[predicted][true]`.
    pub matrix: Vec<Vec<f64>>,
    /// Confidence threshold (strictly greater is kept); 0.25 by default.
    pub conf: f32,
    /// IoU threshold (strictly greater matches); 0.45 by default.
    pub iou_thres: f32,
}

impl ConfusionMatrix {
    /// An empty matrix for `nc` classes with ultralytics' thresholds (conf 0.25, IoU 0.45).
    pub fn new(nc: usize) -> Self {
        Self::with_thresholds(nc, 0.25, 0.45)
    }

    /// An empty matrix for `nc` classes with the given confidence and IoU thresholds.
    pub fn with_thresholds(nc: usize, conf: f32, iou_thres: f32) -> Self {
        Self { nc, matrix: vec![vec![0.0; nc + 1]; nc + 1], conf, iou_thres }
    }

    /// Adds one image's predictions and labels (`val.py` calls it only for images with labels; an
    /// image without labels changes nothing here either).
    ///
    /// # Panics
    ///
    /// If a class id is `>= nc`.
    pub fn process_batch(&mut self, preds: &[Detection], gts: &[GroundTruth]) {
        let bg = self.nc;
        let dets: Vec<Detection> = preds.iter().copied().filter(|d| d.score > self.conf).collect();
        let iou = iou_matrix(&dets, gts);
        let mut pairs = Vec::new();
        for (li, row) in iou.iter().enumerate() {
            for (di, &v) in row.iter().enumerate() {
                if v > self.iou_thres {
                    pairs.push(Pair { label: li, det: di, iou: v });
                }
            }
        }
        let matches = select_matches(pairs, true);
        let any = !matches.is_empty();
        for (li, g) in gts.iter().enumerate() {
            match matches.iter().find(|m| m.label == li) {
                Some(m) => self.matrix[dets[m.det].class_id][g.class_id] += 1.0,
                None => self.matrix[bg][g.class_id] += 1.0,
            }
        }
        if any {
            for (di, d) in dets.iter().enumerate() {
                if !matches.iter().any(|m| m.det == di) {
                    self.matrix[d.class_id][bg] += 1.0;
                }
            }
        }
    }

    /// Per class (background excluded): true positives (the diagonal) and false positives (the rest
    /// of the class's prediction row, background column included).
    pub fn tp_fp(&self) -> (Vec<f64>, Vec<f64>) {
        let tp: Vec<f64> = (0..self.nc).map(|i| self.matrix[i][i]).collect();
        let fp: Vec<f64> = (0..self.nc).map(|i| self.matrix[i].iter().sum::<f64>() - tp[i]).collect();
        (tp, fp)
    }

    /// The matrix with each column divided by its sum (+1e-9), as ultralytics plots it.
    pub fn normalized(&self) -> Vec<Vec<f64>> {
        let n = self.nc + 1;
        let col: Vec<f64> = (0..n).map(|j| self.matrix.iter().map(|r| r[j]).sum::<f64>() + 1e-9).collect();
        self.matrix.iter().map(|r| r.iter().zip(&col).map(|(v, c)| v / c).collect()).collect()
    }
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

    #[test]
    fn hand_case_counts() {
        let mut cm = ConfusionMatrix::new(2);
        let gts = [gt([0., 0., 10., 10.], 0), gt([20., 20., 30., 30.], 1), gt([50., 50., 60., 60.], 1)];
        let preds = [
            det([0., 0., 10., 10.], 0.9, 0),   // correct class 0
            det([20., 20., 30., 31.], 0.8, 0), // class confusion: true 1 predicted 0
            det([0., 0., 10., 9.], 0.7, 0),    // duplicate of the first: background FP
            det([80., 80., 90., 90.], 0.6, 1), // no overlap: background FP
            det([50., 50., 60., 60.], 0.2, 1), // below conf: ignored, so label 2 is missed
        ];
        cm.process_batch(&preds, &gts);
        let expected = vec![vec![1.0, 1.0, 1.0], vec![0.0, 0.0, 1.0], vec![0.0, 1.0, 0.0]];
        assert_eq!(cm.matrix, expected);
        let (tp, fp) = cm.tp_fp();
        assert_eq!(tp, vec![1.0, 0.0]);
        assert_eq!(fp, vec![2.0, 1.0]);
    }

    #[test]
    fn label_goes_to_highest_iou_prediction() {
        let mut cm = ConfusionMatrix::new(2);
        // The lower-confidence prediction (class 1) overlaps better and wins the label.
        let preds = [det([0., 0., 10., 8.], 0.9, 0), det([0., 0., 10., 10.], 0.5, 1)];
        cm.process_batch(&preds, &[gt([0., 0., 10., 10.], 1)]);
        assert_eq!(cm.matrix, vec![vec![0.0, 0.0, 1.0], vec![0.0, 1.0, 0.0], vec![0.0, 0.0, 0.0]]);
    }

    #[test]
    fn no_overlap_counts_no_false_positive() {
        // YOLOv5 v7.0: without any match in the image, unmatched predictions are not counted.
        let mut cm = ConfusionMatrix::new(1);
        cm.process_batch(&[det([50., 50., 60., 60.], 0.9, 0)], &[gt([0., 0., 10., 10.], 0)]);
        assert_eq!(cm.matrix, vec![vec![0.0, 0.0], vec![1.0, 0.0]]);
        // No predictions at all: every label is a missed (background) one.
        cm.process_batch(&[], &[gt([0., 0., 10., 10.], 0), gt([20., 0., 30., 10.], 0)]);
        assert_eq!(cm.matrix, vec![vec![0.0, 0.0], vec![3.0, 0.0]]);
        let n = cm.normalized();
        assert!((n[1][0] - 1.0).abs() < 1e-9 && n[0][1] == 0.0);
    }
}
