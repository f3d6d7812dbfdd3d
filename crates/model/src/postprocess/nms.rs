//! Confidence filtering and class-aware greedy non-maximum suppression (NMS).
//!
//! [`non_max_suppression`] reproduces ultralytics YOLOv5 v7.0 `utils.general.non_max_suppression`
//! for one image, step by step and in `f32` like PyTorch:
//!
//! 1. keep rows whose objectness `obj > conf_thres` (strictly greater);
//! 2. class confidences become `conf = cls * obj`; the box `xywh` becomes `xyxy`
//!    (`x1 = xc - w / 2`, `x2 = xc + w / 2`, same for `y`);
//! 3. with `multi_label` (and more than one class) every `(box, class)` pair with
//!    `conf > conf_thres` becomes a candidate, ordered by box then class (the order of
//!    `torch.nonzero`); otherwise each box keeps its best class (first index on ties) if its
//!    `conf > conf_thres`;
//! 4. an optional class filter drops every candidate whose class is not listed;
//! 5. candidates are sorted by confidence, descending, with a stable sort, and at most `max_nms`
//!    are kept;
//! 6. boxes are offset by `class_id * max_wh` on both axes (no offset when `agnostic`), so that
//!    boxes of different classes never overlap, and a greedy NMS identical to
//!    `torchvision.ops.nms` (CPU kernel) runs on them: a candidate is suppressed when its IoU with an
//!    already kept box is **strictly greater** than `iou_thres`;
//! 7. the kept candidates, in keep order (descending confidence), are cut to `max_det`.
//!
//! The IoU inside NMS is computed on the offset boxes exactly as torchvision does it
//! (`inter / (area_i + area_j - inter)`, no epsilon, in `f32`), so the keep/suppress decisions
//! match the reference bit for bit.

use serde::{Deserialize, Serialize};

/// Number of leading values in a YOLOv5 output row before the class scores:
/// `xc, yc, w, h, obj`.
const ROW_HEADER: usize = 5;

/// One detected object after NMS.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Detection {
    /// Box corners `[x1, y1, x2, y2]` in the pixels of the network input (letterboxed image).
    pub xyxy: [f32; 4],
    /// Confidence `obj * cls` in `0..=1`.
    pub score: f32,
    /// Class index in `0..nc`.
    pub class_id: usize,
}

/// Settings of [`non_max_suppression`]; the defaults are those of ultralytics `detect.py`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NmsConfig {
    /// Confidence threshold in `0..=1` (default 0.25). Both `obj` and `obj * cls` must be strictly
    /// greater than it.
    pub conf_thres: f32,
    /// IoU threshold in `0..=1` (default 0.45). A box is suppressed when its IoU with a kept box of
    /// the same class is strictly greater than it.
    pub iou_thres: f32,
    /// Keep only these class indices (default `None`: all classes).
    pub classes: Option<Vec<usize>>,
    /// Class-agnostic NMS: boxes of different classes suppress each other (default `false`).
    pub agnostic: bool,
    /// One candidate per `(box, class)` pair above the threshold instead of one per box
    /// (default `false`; `val.py` uses `true`). Ignored when there is only one class.
    pub multi_label: bool,
    /// Maximum number of detections returned per image (default 300; `detect.py` uses 1000).
    pub max_det: usize,
    /// Maximum number of candidates, highest confidence first, that enter NMS (default 30000).
    pub max_nms: usize,
    /// Offset in pixels per class index that separates classes in class-aware NMS (default 7680,
    /// larger than any image side).
    pub max_wh: f32,
}

impl Default for NmsConfig {
    fn default() -> Self {
        Self {
            conf_thres: 0.25,
            iou_thres: 0.45,
            classes: None,
            agnostic: false,
            multi_label: false,
            max_det: 300,
            max_nms: 30_000,
            max_wh: 7680.0,
        }
    }
}

impl NmsConfig {
    /// Sets the confidence threshold (`0..=1`).
    pub fn with_conf_thres(mut self, conf_thres: f32) -> Self {
        self.conf_thres = conf_thres;
        self
    }

    /// Sets the IoU threshold (`0..=1`).
    pub fn with_iou_thres(mut self, iou_thres: f32) -> Self {
        self.iou_thres = iou_thres;
        self
    }

    /// Keeps only the given class indices (`None`: all classes).
    pub fn with_classes(mut self, classes: Option<Vec<usize>>) -> Self {
        self.classes = classes;
        self
    }

    /// Enables or disables class-agnostic NMS.
    pub fn with_agnostic(mut self, agnostic: bool) -> Self {
        self.agnostic = agnostic;
        self
    }

    /// Enables or disables one candidate per `(box, class)` pair.
    pub fn with_multi_label(mut self, multi_label: bool) -> Self {
        self.multi_label = multi_label;
        self
    }

    /// Sets the maximum number of detections per image.
    pub fn with_max_det(mut self, max_det: usize) -> Self {
        self.max_det = max_det;
        self
    }

    /// Sets the maximum number of candidates that enter NMS.
    pub fn with_max_nms(mut self, max_nms: usize) -> Self {
        self.max_nms = max_nms;
        self
    }

    /// Sets the per-class box offset in pixels used by class-aware NMS.
    pub fn with_max_wh(mut self, max_wh: f32) -> Self {
        self.max_wh = max_wh;
        self
    }

    /// Checks that both thresholds lie in `0..=1` and `max_wh` is finite and non-negative.
    pub fn validate(&self) -> Result<(), NmsError> {
        for (name, value) in [("conf_thres", self.conf_thres), ("iou_thres", self.iou_thres)] {
            if !(0.0..=1.0).contains(&value) {
                return Err(NmsError::InvalidThreshold { name, value });
            }
        }
        if !(self.max_wh.is_finite() && self.max_wh >= 0.0) {
            return Err(NmsError::InvalidMaxWh { value: self.max_wh });
        }
        Ok(())
    }
}

/// Errors of [`non_max_suppression`] on malformed input or settings.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum NmsError {
    /// A row must hold at least `xc, yc, w, h, obj` and one class score.
    #[error("NMS needs at least 6 values per row (xc, yc, w, h, obj, cls...), got {num_outputs}")]
    TooFewOutputs {
        /// The row length that was given.
        num_outputs: usize,
    },
    /// The slice length does not match `batch * num_boxes * num_outputs`.
    #[error("NMS input has {len} values but shape [{batch}, {num_boxes}, {num_outputs}] needs {expected}")]
    ShapeMismatch {
        /// Length of the prediction slice.
        len: usize,
        /// Number of images in the batch.
        batch: usize,
        /// Boxes per image.
        num_boxes: usize,
        /// Values per box.
        num_outputs: usize,
        /// `batch * num_boxes * num_outputs`, or `usize::MAX` when that overflows.
        expected: usize,
    },
    /// A threshold outside `0..=1` (or NaN).
    #[error("NMS {name} must be in 0..=1, got {value}")]
    InvalidThreshold {
        /// `"conf_thres"` or `"iou_thres"`.
        name: &'static str,
        /// The offending value.
        value: f32,
    },
    /// A negative or non-finite class offset.
    #[error("NMS max_wh must be finite and >= 0, got {value}")]
    InvalidMaxWh {
        /// The offending value.
        value: f32,
    },
}

/// Runs confidence filtering and NMS on the decoded output of ONE image.
///
/// `pred` is row-major `[num_boxes, num_outputs]`, each row `(xc, yc, w, h, obj, cls_0 ..
/// cls_{nc-1})` with the box in pixels and `obj`/`cls` as probabilities (`num_outputs = nc + 5`).
/// Returns the kept detections in keep order (descending confidence), at most `cfg.max_det`.
/// See the [module documentation](self) for the exact semantics.
pub fn non_max_suppression(
    pred: &[f32],
    num_boxes: usize,
    num_outputs: usize,
    cfg: &NmsConfig,
) -> Result<Vec<Detection>, NmsError> {
    check_input(pred.len(), 1, num_boxes, num_outputs, cfg)?;
    Ok(nms_one_image(pred, num_outputs, cfg))
}

/// Runs [`non_max_suppression`] on every image of a batch.
///
/// `pred` is row-major `[batch, num_boxes, num_outputs]`; the result has one `Vec` per image, in
/// batch order.
pub fn non_max_suppression_batch(
    pred: &[f32],
    batch: usize,
    num_boxes: usize,
    num_outputs: usize,
    cfg: &NmsConfig,
) -> Result<Vec<Vec<Detection>>, NmsError> {
    check_input(pred.len(), batch, num_boxes, num_outputs, cfg)?;
    if batch == 0 {
        return Ok(Vec::new());
    }
    let per_image = num_boxes * num_outputs;
    if per_image == 0 {
        return Ok(vec![Vec::new(); batch]);
    }
    Ok(pred.chunks_exact(per_image).map(|image| nms_one_image(image, num_outputs, cfg)).collect())
}

/// Intersection over union of two boxes `[x1, y1, x2, y2]` (same units, e.g. pixels).
///
/// Computed in `f32` exactly as the NMS kernel does (`inter / (area_a + area_b - inter)`, no
/// epsilon). Returns `0.0` when the union is not positive (degenerate boxes).
pub fn box_iou(a: &[f32; 4], b: &[f32; 4]) -> f32 {
    iou_with_areas(a, area(a), b, area(b))
}

/// Pairwise IoU of two box lists (`[x1, y1, x2, y2]` each), as row-major `[a.len(), b.len()]`.
///
/// Entry `i * b.len() + j` is [`box_iou`]`(&a[i], &b[j])`.
pub fn box_iou_matrix(a: &[[f32; 4]], b: &[[f32; 4]]) -> Vec<f32> {
    let areas_b: Vec<f32> = b.iter().map(area).collect();
    let mut out = Vec::with_capacity(a.len() * b.len());
    for box_a in a {
        let area_a = area(box_a);
        out.extend(b.iter().zip(&areas_b).map(|(box_b, &area_b)| iou_with_areas(box_a, area_a, box_b, area_b)));
    }
    out
}

/// Validates the settings and that `len == batch * num_boxes * num_outputs`.
fn check_input(
    len: usize,
    batch: usize,
    num_boxes: usize,
    num_outputs: usize,
    cfg: &NmsConfig,
) -> Result<(), NmsError> {
    cfg.validate()?;
    if num_outputs < ROW_HEADER + 1 {
        return Err(NmsError::TooFewOutputs { num_outputs });
    }
    let expected = batch.checked_mul(num_boxes).and_then(|n| n.checked_mul(num_outputs));
    if expected != Some(len) {
        return Err(NmsError::ShapeMismatch {
            len,
            batch,
            num_boxes,
            num_outputs,
            expected: expected.unwrap_or(usize::MAX),
        });
    }
    Ok(())
}

/// Box area `(x2 - x1) * (y2 - y1)` in `f32`, as torchvision computes it.
fn area(b: &[f32; 4]) -> f32 {
    (b[2] - b[0]) * (b[3] - b[1])
}

/// IoU with precomputed areas, the arithmetic of torchvision's CPU `nms` kernel.
fn iou_with_areas(a: &[f32; 4], area_a: f32, b: &[f32; 4], area_b: f32) -> f32 {
    let w = (a[2].min(b[2]) - a[0].max(b[0])).max(0.0);
    let h = (a[3].min(b[3]) - a[1].max(b[1])).max(0.0);
    let inter = w * h;
    let union = area_a + area_b - inter;
    if union > 0.0 { inter / union } else { 0.0 }
}

/// `(xc, yc, w, h)` to `[x1, y1, x2, y2]`, in the operation order of ultralytics `xywh2xyxy`.
fn xywh_to_xyxy(row: &[f32]) -> [f32; 4] {
    let (xc, yc, w, h) = (row[0], row[1], row[2], row[3]);
    [xc - w / 2.0, yc - h / 2.0, xc + w / 2.0, yc + h / 2.0]
}

/// Index and value of the largest element, first index on ties; a NaN wins and stops the scan,
/// like `torch.max(dim)` on CPU.
fn argmax_first(values: impl Iterator<Item = f32>) -> Option<(usize, f32)> {
    let mut best: Option<(usize, f32)> = None;
    for (i, v) in values.enumerate() {
        if v.is_nan() {
            return Some((i, v));
        }
        match best {
            Some((_, b)) if v <= b => {}
            _ => best = Some((i, v)),
        }
    }
    best
}

/// Steps 1–7 of the module documentation for one image; input already validated.
fn nms_one_image(pred: &[f32], num_outputs: usize, cfg: &NmsConfig) -> Vec<Detection> {
    let conf_thres = cfg.conf_thres;
    let nc = num_outputs - ROW_HEADER;
    let multi_label = cfg.multi_label && nc > 1;

    // 1–3: candidates in box-then-class order.
    let mut cands: Vec<Detection> = Vec::new();
    for row in pred.chunks_exact(num_outputs) {
        let obj = row[4];
        // NaN objectness never passes, as in `obj > conf_thres`.
        if obj.is_nan() || obj <= conf_thres {
            continue;
        }
        let xyxy = xywh_to_xyxy(row);
        let scores = row[ROW_HEADER..].iter().map(|&cls| cls * obj);
        if multi_label {
            cands.extend(
                scores.enumerate().filter(|&(_, conf)| conf > conf_thres).map(|(class_id, score)| Detection {
                    xyxy,
                    score,
                    class_id,
                }),
            );
        } else if let Some((class_id, score)) = argmax_first(scores)
            && score > conf_thres
        {
            cands.push(Detection { xyxy, score, class_id });
        }
    }

    // 4: class filter.
    if let Some(classes) = &cfg.classes {
        cands.retain(|d| classes.contains(&d.class_id));
    }
    if cands.is_empty() {
        return cands;
    }

    // 5: stable sort by confidence, descending (scores are never NaN here), then cap.
    cands.sort_by(|a, b| b.score.total_cmp(&a.score));
    cands.truncate(cfg.max_nms);

    // 6: greedy NMS on class-offset boxes, torchvision arithmetic.
    let offset_boxes: Vec<[f32; 4]> = cands
        .iter()
        .map(|d| {
            let c = if cfg.agnostic { 0.0 } else { d.class_id as f32 * cfg.max_wh };
            d.xyxy.map(|v| v + c)
        })
        .collect();
    let areas: Vec<f32> = offset_boxes.iter().map(area).collect();
    let mut suppressed = vec![false; cands.len()];
    let mut keep = Vec::new();
    for i in 0..cands.len() {
        // 7: keep order is final order, so stop once max_det boxes are kept.
        if keep.len() >= cfg.max_det {
            break;
        }
        if suppressed[i] {
            continue;
        }
        keep.push(cands[i]);
        for j in i + 1..cands.len() {
            if !suppressed[j] && iou_with_areas(&offset_boxes[i], areas[i], &offset_boxes[j], areas[j]) > cfg.iou_thres
            {
                suppressed[j] = true;
            }
        }
    }
    keep
}

#[cfg(test)]
mod tests {
    use super::*;

    const NC: usize = 3;
    const NO: usize = NC + ROW_HEADER;

    /// One output row with box `(xc, yc, w, h)`, objectness and class scores.
    fn row(xywh: [f32; 4], obj: f32, cls: [f32; NC]) -> Vec<f32> {
        let mut r = xywh.to_vec();
        r.push(obj);
        r.extend(cls);
        r
    }

    fn run(rows: &[Vec<f32>], cfg: &NmsConfig) -> Vec<Detection> {
        let flat: Vec<f32> = rows.concat();
        non_max_suppression(&flat, rows.len(), NO, cfg).unwrap()
    }

    #[test]
    fn overlapping_same_class_keeps_the_best() {
        let rows =
            [row([50.0, 50.0, 40.0, 40.0], 0.9, [0.0, 0.8, 0.0]), row([52.0, 50.0, 40.0, 40.0], 0.9, [0.0, 0.9, 0.0])];
        let dets = run(&rows, &NmsConfig::default());
        assert_eq!(dets.len(), 1);
        assert_eq!(dets[0].class_id, 1);
        assert_eq!(dets[0].xyxy, [32.0, 30.0, 72.0, 70.0]);
        assert!((dets[0].score - 0.81).abs() < 1e-6);
    }

    #[test]
    fn different_classes_survive_unless_agnostic() {
        let rows =
            [row([50.0, 50.0, 40.0, 40.0], 0.9, [0.8, 0.0, 0.0]), row([52.0, 50.0, 40.0, 40.0], 0.9, [0.0, 0.0, 0.9])];
        let dets = run(&rows, &NmsConfig::default());
        assert_eq!(dets.iter().map(|d| d.class_id).collect::<Vec<_>>(), vec![2, 0]);
        let dets = run(&rows, &NmsConfig::default().with_agnostic(true));
        assert_eq!(dets.len(), 1);
        assert_eq!(dets[0].class_id, 2);
    }

    #[test]
    fn iou_exactly_at_threshold_is_kept() {
        // [0,0,10,10] and [0,0,10,5]: inter 50, union 100, IoU exactly 0.5.
        let rows =
            [row([5.0, 5.0, 10.0, 10.0], 0.9, [0.9, 0.0, 0.0]), row([5.0, 2.5, 10.0, 5.0], 0.9, [0.8, 0.0, 0.0])];
        assert_eq!(box_iou(&[0.0, 0.0, 10.0, 10.0], &[0.0, 0.0, 10.0, 5.0]), 0.5);
        assert_eq!(run(&rows, &NmsConfig::default().with_iou_thres(0.5)).len(), 2);
        assert_eq!(run(&rows, &NmsConfig::default().with_iou_thres(0.49)).len(), 1);
    }

    #[test]
    fn max_det_truncates_in_confidence_order() {
        let rows: Vec<Vec<f32>> = (0..5)
            .map(|k| {
                let x = 100.0 * k as f32 + 20.0;
                row([x, 20.0, 10.0, 10.0], 0.5 + 0.1 * k as f32, [1.0, 0.0, 0.0])
            })
            .collect();
        let dets = run(&rows, &NmsConfig::default().with_max_det(3));
        assert_eq!(dets.len(), 3);
        let xs: Vec<f32> = dets.iter().map(|d| d.xyxy[0]).collect();
        assert_eq!(xs, vec![415.0, 315.0, 215.0]);
        assert!(run(&rows, &NmsConfig::default().with_max_det(0)).is_empty());
    }

    #[test]
    fn objectness_filter_is_strict_and_comes_first() {
        let rows = [
            // obj == conf_thres: dropped although cls is 1.
            row([50.0, 50.0, 10.0, 10.0], 0.25, [1.0, 0.0, 0.0]),
            // obj passes but obj*cls = 0.24 does not.
            row([150.0, 50.0, 10.0, 10.0], 0.8, [0.3, 0.0, 0.0]),
            // passes.
            row([250.0, 50.0, 10.0, 10.0], 0.8, [0.5, 0.0, 0.0]),
        ];
        let dets = run(&rows, &NmsConfig::default());
        assert_eq!(dets.len(), 1);
        assert_eq!(dets[0].xyxy[0], 245.0);
    }

    #[test]
    fn multi_label_rows_and_class_filter() {
        let rows = [row([50.0, 50.0, 10.0, 10.0], 1.0, [0.6, 0.0, 0.7])];
        let cfg = NmsConfig::default().with_multi_label(true);
        let dets = run(&rows, &cfg);
        // Same box, two classes: never suppress each other (class offsets).
        assert_eq!(dets.iter().map(|d| (d.class_id, d.score)).collect::<Vec<_>>(), vec![(2, 0.7), (0, 0.6)]);
        let dets = run(&rows, &cfg.clone().with_classes(Some(vec![0, 1])));
        assert_eq!(dets.len(), 1);
        assert_eq!(dets[0].class_id, 0);
        // Without multi_label only the best class is kept.
        let dets = run(&rows, &NmsConfig::default());
        assert_eq!(dets.len(), 1);
        assert_eq!(dets[0].class_id, 2);
    }

    #[test]
    fn best_class_ties_pick_the_first_index() {
        let rows = [row([50.0, 50.0, 10.0, 10.0], 0.9, [0.0, 0.7, 0.7])];
        assert_eq!(run(&rows, &NmsConfig::default())[0].class_id, 1);
    }

    #[test]
    fn bad_input_is_an_error() {
        let cfg = NmsConfig::default();
        assert!(matches!(
            non_max_suppression(&[0.0; 10], 2, 6, &cfg),
            Err(NmsError::ShapeMismatch { expected: 12, .. })
        ));
        assert!(matches!(non_max_suppression(&[0.0; 10], 2, 5, &cfg), Err(NmsError::TooFewOutputs { num_outputs: 5 })));
        assert!(matches!(
            non_max_suppression(&[], 0, 6, &cfg.clone().with_conf_thres(1.5)),
            Err(NmsError::InvalidThreshold { name: "conf_thres", .. })
        ));
        assert!(matches!(non_max_suppression_batch(&[], usize::MAX, 2, 6, &cfg), Err(NmsError::ShapeMismatch { .. })));
        assert_eq!(non_max_suppression(&[], 0, 6, &cfg), Ok(Vec::new()));
    }

    #[test]
    fn batch_runs_each_image() {
        let a = row([50.0, 50.0, 10.0, 10.0], 0.9, [0.9, 0.0, 0.0]);
        let b = row([50.0, 50.0, 10.0, 10.0], 0.1, [0.9, 0.0, 0.0]);
        let flat = [a.clone(), b.clone(), b, a].concat();
        let out = non_max_suppression_batch(&flat, 2, 2, NO, &NmsConfig::default()).unwrap();
        assert_eq!(out.len(), 2);
        assert_eq!(out[0].len(), 1);
        assert_eq!(out[1].len(), 1);
        assert_eq!(out[0], out[1]);
    }

    #[test]
    fn iou_helpers() {
        let a = [0.0, 0.0, 10.0, 10.0];
        let b = [5.0, 0.0, 15.0, 10.0];
        let far = [20.0, 20.0, 30.0, 30.0];
        assert!((box_iou(&a, &b) - 1.0 / 3.0).abs() < 1e-7);
        assert_eq!(box_iou(&a, &far), 0.0);
        assert_eq!(box_iou(&a, &a), 1.0);
        assert_eq!(box_iou(&[1.0, 1.0, 1.0, 1.0], &[1.0, 1.0, 1.0, 1.0]), 0.0);
        let m = box_iou_matrix(&[a, far], &[b, a, far]);
        assert_eq!(m.len(), 6);
        assert_eq!(m[1], 1.0);
        assert_eq!(m[3], 0.0);
        assert_eq!(m[5], 1.0);
        assert_eq!(m[0], box_iou(&a, &b));
    }

    /// Reads an f32 tensor from the NMS fixture: (shape, values).
    fn fixture_tensor(st: &safetensors::SafeTensors<'_>, name: &str) -> (Vec<usize>, Vec<f32>) {
        let view = st.tensor(name).unwrap();
        assert_eq!(view.dtype(), safetensors::Dtype::F32, "{name}");
        let values = view.data().chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect();
        (view.shape().to_vec(), values)
    }

    #[test]
    fn matches_ultralytics_fixture() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/nms_fixture.safetensors");
        let bytes = std::fs::read(path).unwrap();
        let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
        let (shape, pred) = fixture_tensor(&st, "prediction");
        assert_eq!(shape, vec![1, 200, 85]);

        let cases = [
            ("out_conf0.25_iou0.45", NmsConfig::default(), 13),
            (
                "out_conf0.001_iou0.6_multilabel_maxdet300",
                NmsConfig::default()
                    .with_conf_thres(0.001)
                    .with_iou_thres(0.6)
                    .with_multi_label(true)
                    .with_max_det(300),
                300,
            ),
            ("out_conf0.25_iou0.45_agnostic", NmsConfig::default().with_agnostic(true), 10),
        ];
        for (name, cfg, rows) in cases {
            let (shape, want) = fixture_tensor(&st, name);
            assert_eq!(shape, vec![rows, 6], "{name}");
            let got = non_max_suppression(&pred, 200, 85, &cfg).unwrap();
            assert_eq!(got.len(), rows, "{name}");
            for (k, (d, w)) in got.iter().zip(want.chunks_exact(6)).enumerate() {
                assert_eq!(d.class_id as f32, w[5], "{name} row {k} class");
                assert!((d.score - w[4]).abs() <= 1e-4, "{name} row {k} conf");
                for c in 0..4 {
                    assert!((d.xyxy[c] - w[c]).abs() <= 1e-4, "{name} row {k} box {:?} vs {:?}", d.xyxy, &w[..4]);
                }
            }
        }

        // Without the max_det cap the val.py settings leave 4,664 boxes.
        let all = non_max_suppression(
            &pred,
            200,
            85,
            &NmsConfig::default()
                .with_conf_thres(0.001)
                .with_iou_thres(0.6)
                .with_multi_label(true)
                .with_max_det(100_000),
        )
        .unwrap();
        assert_eq!(all.len(), 4664);
    }
}
