//! IoU and its box-regression variants for paired boxes, as ultralytics/yolov5 v7.0
//! `utils/metrics.py::bbox_iou` with `xywh=True` and `eps = 1e-7`.
//!
//! Shapes: `box1`, `box2` `[n, 4]` as `(xc, yc, w, h)`, row `k` of one paired with row `k` of the
//! other; the result is `[n]`.
//!
//! - IoU = `inter / (w1·h1 + w2·h2 − inter + eps)`;
//! - GIoU (Rezatofighi et al. 2019) = `IoU − (C − union) / C`, `C = cw·ch + eps` the enclosing area;
//! - DIoU (Zheng et al. 2020) = `IoU − ρ² / c²`, `ρ²` the squared centre distance and
//!   `c² = cw² + ch² + eps` the enclosing diagonal squared;
//! - CIoU = `IoU − (ρ²/c² + α·v)`, `v = 4/π²·(atan(w2/h2) − atan(w1/h1))²`,
//!   `α = v / (v − IoU + 1 + eps)` computed without gradient (ultralytics' `torch.no_grad()`).
//!
//! The operations follow ultralytics' order so that f32 results round the same way.

use burn::prelude::*;

/// The `eps` ultralytics' `bbox_iou` adds to union, enclosing area and diagonal.
pub const IOU_EPS: f64 = 1e-7;

/// Which overlap measure [`bbox_iou`] returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum IouKind {
    /// Plain intersection over union.
    Iou,
    /// Generalised IoU.
    GIoU,
    /// Distance IoU.
    DIoU,
    /// Complete IoU (YOLOv5's box loss).
    #[default]
    CIoU,
}

/// Column `k` of an `[n, 4]` tensor, as `[n]`.
fn column(boxes: &Tensor<2>, k: usize) -> Tensor<1> {
    let n = boxes.dims()[0];
    boxes.clone().narrow(1, k, 1).reshape([n])
}

/// Overlap of paired `xywh` boxes `box1[k]`, `box2[k]` (`[n, 4]` each) → `[n]`; see the module
/// docs for the formulas.
///
/// # Panics
/// If the shapes differ or the last dimension is not 4.
pub fn bbox_iou(box1: Tensor<2>, box2: Tensor<2>, kind: IouKind) -> Tensor<1> {
    assert_eq!(box1.dims(), box2.dims(), "bbox_iou: paired boxes must have the same shape");
    assert_eq!(box1.dims()[1], 4, "bbox_iou: boxes are [n, 4] xywh");
    let (x1, y1, w1, h1) = (column(&box1, 0), column(&box1, 1), column(&box1, 2), column(&box1, 3));
    let (x2, y2, w2, h2) = (column(&box2, 0), column(&box2, 1), column(&box2, 2), column(&box2, 3));
    let (w1_, h1_) = (w1.clone().div_scalar(2.0), h1.clone().div_scalar(2.0));
    let (w2_, h2_) = (w2.clone().div_scalar(2.0), h2.clone().div_scalar(2.0));
    let b1_x1 = x1.clone().sub(w1_.clone());
    let b1_x2 = x1.add(w1_);
    let b1_y1 = y1.clone().sub(h1_.clone());
    let b1_y2 = y1.add(h1_);
    let b2_x1 = x2.clone().sub(w2_.clone());
    let b2_x2 = x2.add(w2_);
    let b2_y1 = y2.clone().sub(h2_.clone());
    let b2_y2 = y2.add(h2_);

    let inter_w = b1_x2.clone().min_pair(b2_x2.clone()).sub(b1_x1.clone().max_pair(b2_x1.clone())).clamp_min(0.0);
    let inter_h = b1_y2.clone().min_pair(b2_y2.clone()).sub(b1_y1.clone().max_pair(b2_y1.clone())).clamp_min(0.0);
    let inter = inter_w.mul(inter_h);
    let union = w1.clone().mul(h1.clone()).add(w2.clone().mul(h2.clone())).sub(inter.clone()).add_scalar(IOU_EPS);
    let iou = inter.div(union.clone());
    if kind == IouKind::Iou {
        return iou;
    }

    let cw = b1_x2.clone().max_pair(b2_x2.clone()).sub(b1_x1.clone().min_pair(b2_x1.clone()));
    let ch = b1_y2.clone().max_pair(b2_y2.clone()).sub(b1_y1.clone().min_pair(b2_y1.clone()));
    if kind == IouKind::GIoU {
        let c_area = cw.mul(ch).add_scalar(IOU_EPS);
        return iou.sub(c_area.clone().sub(union).div(c_area));
    }

    let c2 = cw.square().add(ch.square()).add_scalar(IOU_EPS);
    let dx = b2_x1.add(b2_x2).sub(b1_x1).sub(b1_x2);
    let dy = b2_y1.add(b2_y2).sub(b1_y1).sub(b1_y2);
    let rho2 = dx.square().add(dy.square()).div_scalar(4.0);
    if kind == IouKind::DIoU {
        return iou.sub(rho2.div(c2));
    }

    let v = w2
        .div(h2)
        .atan()
        .sub(w1.div(h1).atan())
        .square()
        .mul_scalar(4.0 / (std::f64::consts::PI * std::f64::consts::PI));
    let alpha = v.clone().div(v.clone().sub(iou.clone()).add_scalar(1.0 + IOU_EPS)).detach();
    iou.sub(rho2.div(c2).add(v.mul(alpha)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values<const D: usize>(t: Tensor<D>) -> Vec<f32> {
        t.into_data().convert::<f32>().try_to_vec::<f32>().unwrap()
    }

    fn boxes(rows: &[[f32; 4]], device: &Device) -> Tensor<2> {
        let flat: Vec<f32> = rows.iter().flatten().copied().collect();
        Tensor::from_data(TensorData::new(flat, [rows.len(), 4]), device)
    }

    /// f64 transcription of the formulas, for comparison.
    fn reference(a: [f32; 4], b: [f32; 4], kind: IouKind) -> f64 {
        reference64(a.map(f64::from), b.map(f64::from), kind)
    }

    fn reference64(a: [f64; 4], b: [f64; 4], kind: IouKind) -> f64 {
        let [x1, y1, w1, h1] = a;
        let [x2, y2, w2, h2] = b;
        let eps = IOU_EPS;
        let (ax1, ax2, ay1, ay2) = (x1 - w1 / 2.0, x1 + w1 / 2.0, y1 - h1 / 2.0, y1 + h1 / 2.0);
        let (bx1, bx2, by1, by2) = (x2 - w2 / 2.0, x2 + w2 / 2.0, y2 - h2 / 2.0, y2 + h2 / 2.0);
        let inter = (ax2.min(bx2) - ax1.max(bx1)).max(0.0) * (ay2.min(by2) - ay1.max(by1)).max(0.0);
        let union = w1 * h1 + w2 * h2 - inter + eps;
        let iou = inter / union;
        let cw = ax2.max(bx2) - ax1.min(bx1);
        let ch = ay2.max(by2) - ay1.min(by1);
        let c2 = cw * cw + ch * ch + eps;
        let rho2 = ((bx1 + bx2 - ax1 - ax2).powi(2) + (by1 + by2 - ay1 - ay2).powi(2)) / 4.0;
        match kind {
            IouKind::Iou => iou,
            IouKind::GIoU => {
                let c = cw * ch + eps;
                iou - (c - union) / c
            }
            IouKind::DIoU => iou - rho2 / c2,
            IouKind::CIoU => {
                let v = 4.0 / std::f64::consts::PI.powi(2) * ((w2 / h2).atan() - (w1 / h1).atan()).powi(2);
                let alpha = v / (v - iou + (1.0 + eps));
                iou - (rho2 / c2 + v * alpha)
            }
        }
    }

    const A: [[f32; 4]; 6] = [
        [0.0, 0.0, 2.0, 2.0],
        [0.0, 0.0, 2.0, 2.0],
        [0.0, 0.0, 2.0, 2.0],
        [10.3, 4.1, 3.2, 1.7],
        [1.0, 1.0, 0.5, 3.0],
        [5.0, 5.0, 1.0, 1.0],
    ];
    const B: [[f32; 4]; 6] = [
        [0.0, 0.0, 2.0, 2.0],
        [4.0, 0.0, 2.0, 2.0],
        [0.0, 0.0, 2.0, 4.0],
        [9.7, 4.6, 2.1, 2.9],
        [1.2, 0.7, 4.0, 0.6],
        [5.25, 4.5, 8.0, 6.0],
    ];

    #[test]
    fn hand_computed_cases() {
        let device = Device::flex();
        let ciou = values(bbox_iou(boxes(&A, &device), boxes(&B, &device), IouKind::CIoU));
        // Identical boxes: IoU = 4 / (4 + eps), no distance, no aspect term.
        assert!((ciou[0] - 1.0).abs() < 1e-6, "{}", ciou[0]);
        // Side by side, 2 apart: IoU 0, ρ² = 16, c² = 6² + 2² = 40, same aspect → −0.4.
        assert!((ciou[1] + 0.4).abs() < 1e-6, "{}", ciou[1]);
        // Same centre, 2×2 inside 2×4: IoU = 0.5, v = 4/π²·(atan ½ − atan 1)², α = v / (v + 0.5).
        let v = 4.0 / std::f64::consts::PI.powi(2) * (0.5f64.atan() - 1.0f64.atan()).powi(2);
        let want = 0.5 - v * v / (v + 0.5 + 1e-7);
        assert!((ciou[2] as f64 - want).abs() < 1e-6, "{} vs {want}", ciou[2]);
        assert!((want - 0.496_752).abs() < 1e-6);
        let giou = values(bbox_iou(boxes(&A[1..2], &device), boxes(&B[1..2], &device), IouKind::GIoU));
        // Enclosing 6×2 = 12, union 8 → −4/12.
        assert!((giou[0] + 1.0 / 3.0).abs() < 1e-6, "{}", giou[0]);
        let diou = values(bbox_iou(boxes(&A[2..3], &device), boxes(&B[2..3], &device), IouKind::DIoU));
        assert!((diou[0] - 0.5).abs() < 1e-6, "{}", diou[0]);
    }

    #[test]
    fn all_kinds_match_reference() {
        let device = Device::flex();
        for kind in [IouKind::Iou, IouKind::GIoU, IouKind::DIoU, IouKind::CIoU] {
            let got = values(bbox_iou(boxes(&A, &device), boxes(&B, &device), kind));
            assert_eq!(got.len(), A.len());
            for (k, ((a, b), g)) in A.iter().zip(&B).zip(&got).enumerate() {
                let want = reference(*a, *b, kind);
                assert!((*g as f64 - want).abs() < 2e-6, "{kind:?} row {k}: {g} vs {want}");
            }
        }
    }

    #[test]
    fn atan_is_accurate() {
        let device = Device::flex();
        let xs: Vec<f32> = vec![-1e6, -50.0, -3.0, -1.0, -0.3, 0.0, 1e-4, 0.5, 1.0, 2.0, 7.5, 1e4];
        let got = values(Tensor::<1>::from_data(TensorData::new(xs.clone(), [xs.len()]), &device).atan());
        for (g, x) in got.iter().zip(&xs) {
            assert!((*g as f64 - (*x as f64).atan()).abs() < 1e-6, "atan({x}) = {g}");
        }
    }

    #[test]
    fn ciou_gradient_treats_alpha_as_constant() {
        // d CIoU / d w1 with α held fixed, by central differences of the f64 formula with α frozen.
        let device = Device::flex().autodiff();
        let (a, b) = (A[4], B[4]);
        let x = boxes(&[a], &device).require_grad();
        let grads = bbox_iou(x.clone(), boxes(&[b], &device), IouKind::CIoU).sum().backward();
        let g = values(x.grad(&grads).unwrap());
        let alpha = {
            let iou = reference(a, b, IouKind::Iou);
            let [_, _, w1, h1] = a.map(f64::from);
            let [_, _, w2, h2] = b.map(f64::from);
            let v = 4.0 / std::f64::consts::PI.powi(2) * ((w2 / h2).atan() - (w1 / h1).atan()).powi(2);
            v / (v - iou + 1.0 + IOU_EPS)
        };
        let frozen = |p: [f64; 4]| {
            let [_, _, w1, h1] = p;
            let [_, _, w2, h2] = b.map(f64::from);
            let v = 4.0 / std::f64::consts::PI.powi(2) * ((w2 / h2).atan() - (w1 / h1).atan()).powi(2);
            // DIoU part from the reference plus the frozen-α aspect term.
            reference64(p, b.map(f64::from), IouKind::DIoU) - alpha * v
        };
        for (k, got) in g.iter().enumerate() {
            let h = 1e-3;
            let base = a.map(f64::from);
            let (mut p, mut m) = (base, base);
            p[k] += h;
            m[k] -= h;
            let want = (frozen(p) - frozen(m)) / (2.0 * h);
            assert!((*got as f64 - want).abs() < 1e-5, "coordinate {k}: {got} vs {want}");
        }
    }
}
