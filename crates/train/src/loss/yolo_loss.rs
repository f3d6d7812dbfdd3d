//! The YOLOv5 loss: ultralytics/yolov5 v7.0 `utils/loss.py::ComputeLoss.__call__`, with the gains
//! scaled as `train.py` scales them.
//!
//! Input per level `i`: the raw Detect output `[B, na, ny, nx, 5 + nc]` (logits `tx, ty, tw, th,
//! tobj, cls…`), and the batch's targets `[nt]` rows `(image, class, xc, yc, w, h)` normalised.
//! For the matches of [`build_targets`] (gathered on the device from the `[B·na·ny·nx, 5 + nc]`
//! view of the level):
//!
//! - box: `pxy = 2σ(txy) − 0.5`, `pwh = (2σ(twh))²·anchor`, `lbox += mean(1 − CIoU(pbox, tbox))`;
//! - objectness: target `tobj[b, a, gj, gi] = clamp(IoU, 0)` (detached; `(1 − gr) + gr·IoU` when
//!   `gr < 1`), written on the host in match order so that the last duplicate wins, as PyTorch's
//!   CPU index assignment does; `lobj += BCE(tobj_logits, tobj)·balance[i]` over all cells;
//! - class (only when `nc > 1`): `lcls += BCE(cls_logits, onehot)` with `cp = 1 − ε/2` on the
//!   target class and `cn = ε/2` elsewhere (label smoothing ε).
//!
//! Then `lbox·box_gain`, `lobj·obj_gain`, `lcls·cls_gain`, and the returned loss is
//! `(lbox + lobj + lcls)·B`, shape `[1]`.

use burn::prelude::*;
use burn::tensor::activation::sigmoid;
use serde::{Deserialize, Serialize};

use super::bce::bce_or_focal;
use super::iou::{IouKind, bbox_iou};
use super::targets::{LevelTargets, build_targets};

/// Gains and constants of the loss, already scaled the way `train.py` scales them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct YoloLossConfig {
    /// Box (CIoU) loss gain (`hyp.box · 3/nl`).
    pub box_gain: f64,
    /// Objectness loss gain (`hyp.obj · (imgsz/640)² · 3/nl`).
    pub obj_gain: f64,
    /// Class loss gain (`hyp.cls · nc/80 · 3/nl`).
    pub cls_gain: f64,
    /// Class BCE positive weight.
    pub cls_pw: f64,
    /// Objectness BCE positive weight.
    pub obj_pw: f64,
    /// Anchor-multiple threshold of the target assignment (4.0).
    pub anchor_t: f64,
    /// Focal-loss gamma; 0 = plain BCE.
    pub fl_gamma: f64,
    /// Class label smoothing ε (`cp = 1 − ε/2`, `cn = ε/2`).
    pub label_smoothing: f64,
    /// Objectness weight per level (`[4.0, 1.0, 0.4]` for P3–P5).
    pub balance: Vec<f64>,
    /// IoU ratio of the objectness target (1.0: the target is the IoU itself).
    pub gr: f64,
}

impl YoloLossConfig {
    /// ultralytics' per-level objectness balance: `[4.0, 1.0, 0.4]` for 3 levels, otherwise the
    /// first `nl` of `[4.0, 1.0, 0.25, 0.06, 0.02]` (P3–P7). Levels beyond the fifth, which
    /// ultralytics does not support, reuse 0.02.
    pub fn default_balance(nl: usize) -> Vec<f64> {
        let table: &[f64] = if nl == 3 { &[4.0, 1.0, 0.4] } else { &[4.0, 1.0, 0.25, 0.06, 0.02] };
        (0..nl).map(|i| table.get(i).copied().unwrap_or(0.02)).collect()
    }

    /// The config `train.py` prepares: `box·3/nl`, `cls·nc/80·3/nl`, `obj·(imgsz/640)²·3/nl`
    /// (same operation order, in f64), [`YoloLossConfig::default_balance`], `gr = 1`.
    pub fn from_hyp(
        hyp: &yolo_compress_data::augment::Hyp,
        nc: usize,
        nl: usize,
        imgsz: usize,
        label_smoothing: f64,
    ) -> Self {
        let nl_f = nl as f64;
        YoloLossConfig {
            box_gain: hyp.box_gain * (3.0 / nl_f),
            obj_gain: hyp.obj * ((imgsz as f64 / 640.0).powi(2) * 3.0 / nl_f),
            cls_gain: hyp.cls * (nc as f64 / 80.0 * 3.0 / nl_f),
            cls_pw: hyp.cls_pw,
            obj_pw: hyp.obj_pw,
            anchor_t: hyp.anchor_t,
            fl_gamma: hyp.fl_gamma,
            label_smoothing,
            balance: Self::default_balance(nl),
            gr: 1.0,
        }
    }
}

/// The YOLOv5 loss for a head with fixed anchors and class count. See the module docs.
#[derive(Debug, Clone)]
pub struct YoloLoss {
    config: YoloLossConfig,
    /// Anchors per level in grid units, `[nl][na]` of `(w, h)`.
    anchors: Vec<Vec<[f32; 2]>>,
    nc: usize,
    na: usize,
}

/// Result of [`YoloLoss::forward`].
#[derive(Debug, Clone)]
pub struct LossOutput {
    /// `(lbox + lobj + lcls)·batch_size`, shape `[1]`, differentiable.
    pub total: Tensor<1>,
    /// `[lbox, lobj, lcls]` after the gains and before `·batch_size` (host copies).
    pub items: [f32; 3],
}

impl YoloLoss {
    /// The loss for `detect`'s anchors (grid units), class count and anchors per level.
    ///
    /// # Panics
    /// If `config.balance` has fewer entries than `detect` has levels.
    pub fn new(config: YoloLossConfig, detect: &yolo_compress_model::Detect) -> Self {
        let na = detect.na;
        let anchors = detect
            .anchors
            .chunks_exact(2 * na.max(1))
            .map(|lvl| lvl.chunks_exact(2).map(|a| [a[0], a[1]]).collect())
            .collect();
        Self::from_anchors(config, detect.nc, anchors)
    }

    /// The loss for `anchors[level]` (grid units, the same count on every level) and `nc` classes.
    ///
    /// # Panics
    /// If the levels have different anchor counts, or `config.balance` has fewer entries than
    /// there are levels.
    pub fn from_anchors(config: YoloLossConfig, nc: usize, anchors: Vec<Vec<[f32; 2]>>) -> Self {
        let na = anchors.first().map_or(0, Vec::len);
        assert!(anchors.iter().all(|a| a.len() == na), "YoloLoss: every level needs the same number of anchors");
        assert!(
            config.balance.len() >= anchors.len(),
            "YoloLoss: balance has {} entries for {} levels",
            config.balance.len(),
            anchors.len()
        );
        YoloLoss { config, anchors, nc, na }
    }

    /// The configuration.
    pub fn config(&self) -> &YoloLossConfig {
        &self.config
    }

    /// Anchors per level in grid units.
    pub fn anchors(&self) -> &[Vec<[f32; 2]>] {
        &self.anchors
    }

    /// Number of classes.
    pub fn nc(&self) -> usize {
        self.nc
    }

    /// Anchors per level.
    pub fn na(&self) -> usize {
        self.na
    }

    /// Number of levels.
    pub fn nl(&self) -> usize {
        self.anchors.len()
    }

    /// [`build_targets`] with this loss's anchors and threshold, for grids `(ny, nx)` per level.
    pub fn build_targets(&self, targets: &[[f32; 6]], grids: &[(usize, usize)]) -> Vec<LevelTargets> {
        build_targets(targets, &self.anchors, grids, self.config.anchor_t as f32)
    }

    /// The loss of raw head outputs `raw[level]` `[B, na, ny, nx, 5 + nc]` against `targets` rows
    /// `(image, class, xc, yc, w, h)` (normalised). See the module docs.
    ///
    /// # Panics
    /// If `raw` does not have one tensor per level of shape `[B, na, ny, nx, 5 + nc]`, or a target
    /// names an image outside the batch or (with `nc > 1`) a class outside `0..nc`.
    pub fn forward(&self, raw: &[Tensor<5>], targets: &[[f32; 6]]) -> LossOutput {
        assert_eq!(raw.len(), self.nl(), "YoloLoss: expected {} levels, got {}", self.nl(), raw.len());
        let device = raw[0].device();
        let bs = raw[0].dims()[0];
        let no = self.nc + 5;
        for r in raw {
            let [b, na, _, _, o] = r.dims();
            assert!(
                b == bs && na == self.na && o == no,
                "YoloLoss: raw level {:?} is not [{bs}, {}, ny, nx, {no}]",
                r.dims(),
                self.na
            );
        }
        let grids: Vec<(usize, usize)> = raw.iter().map(|r| (r.dims()[2], r.dims()[3])).collect();
        let levels = self.build_targets(targets, &grids);
        let cfg = &self.config;

        // Pass 1, on the device: matched predictions, CIoU and the box loss.
        let mut lbox: Option<Tensor<1>> = None;
        let mut matched: Vec<Option<(Vec<usize>, Tensor<2>)>> = Vec::with_capacity(raw.len());
        let mut ious: Vec<Tensor<1>> = Vec::new();
        for (r, lt) in raw.iter().zip(&levels) {
            let n = lt.len();
            if n == 0 {
                matched.push(None);
                continue;
            }
            let [_, na, ny, nx, _] = r.dims();
            let flat_idx: Vec<usize> = lt
                .indices
                .iter()
                .map(|&[b, a, gj, gi]| {
                    assert!(b < bs, "YoloLoss: target image index {b} outside the batch of {bs}");
                    ((b * na + a) * ny + gj) * nx + gi
                })
                .collect();
            let idx = Tensor::<1, Int>::from_data(
                TensorData::new(flat_idx.iter().map(|&i| i as i64).collect::<Vec<_>>(), [n]),
                &device,
            );
            let rows = r.clone().reshape([bs * na * ny * nx, no]).select(0, idx);
            let pxy = sigmoid(rows.clone().narrow(1, 0, 2)).mul_scalar(2.0).sub_scalar(0.5);
            let anchors = host_2d(lt.anchors.iter().flatten().copied().collect(), n, 2, &device);
            let pwh = sigmoid(rows.clone().narrow(1, 2, 2)).mul_scalar(2.0).square().mul(anchors);
            let pbox = Tensor::cat(vec![pxy, pwh], 1);
            let tbox = host_2d(lt.tbox.iter().flatten().copied().collect(), n, 4, &device);
            let iou = bbox_iou(pbox, tbox, IouKind::CIoU);
            let term = iou.clone().neg().add_scalar(1.0).mean();
            lbox = Some(match lbox {
                None => term,
                Some(acc) => acc.add(term),
            });
            ious.push(iou.detach());
            matched.push(Some((flat_idx, rows)));
        }
        // One device → host transfer for every level's IoU.
        let iou_host: Vec<f32> = if ious.is_empty() {
            Vec::new()
        } else {
            Tensor::cat(ious, 0).into_data().convert::<f32>().try_to_vec::<f32>().expect("IoU tensor reads as f32")
        };

        // Pass 2: objectness targets on the host, objectness and class BCE on the device.
        let (cp, cn) = (1.0 - 0.5 * cfg.label_smoothing, 0.5 * cfg.label_smoothing);
        let gr = cfg.gr as f32;
        let mut lobj: Option<Tensor<1>> = None;
        let mut lcls: Option<Tensor<1>> = None;
        let mut iou_offset = 0;
        for (i, ((r, lt), m)) in raw.iter().zip(&levels).zip(matched).enumerate() {
            let [_, na, ny, nx, _] = r.dims();
            let cells = bs * na * ny * nx;
            let mut tobj = vec![0.0f32; cells];
            if let Some((flat_idx, rows)) = m {
                let n = flat_idx.len();
                let level_iou = &iou_host[iou_offset..iou_offset + n];
                iou_offset += n;
                for (&cell, &v) in flat_idx.iter().zip(level_iou) {
                    let v = v.max(0.0);
                    // Index assignment in match order: the last duplicate wins.
                    tobj[cell] = if gr < 1.0 { (1.0 - cfg.gr) as f32 + gr * v } else { v };
                }
                if self.nc > 1 {
                    let mut t = vec![cn as f32; n * self.nc];
                    for (k, &c) in lt.tcls.iter().enumerate() {
                        assert!(c < self.nc, "YoloLoss: target class {c} outside 0..{}", self.nc);
                        t[k * self.nc + c] = cp as f32;
                    }
                    let pcls = rows.narrow(1, 5, self.nc);
                    let term = bce_or_focal(pcls, host_2d(t, n, self.nc, &device), cfg.cls_pw, cfg.fl_gamma);
                    lcls = Some(match lcls {
                        None => term,
                        Some(acc) => acc.add(term),
                    });
                }
            }
            let pobj = r.clone().reshape([cells, no]).narrow(1, 4, 1).reshape([cells]);
            let tobj = Tensor::<1>::from_data(TensorData::new(tobj, [cells]), &device);
            let term = bce_or_focal(pobj, tobj, cfg.obj_pw, cfg.fl_gamma).mul_scalar(cfg.balance[i] as f32);
            lobj = Some(match lobj {
                None => term,
                Some(acc) => acc.add(term),
            });
        }

        let zero = || Tensor::<1>::zeros([1], &device);
        let lbox = lbox.unwrap_or_else(zero).mul_scalar(cfg.box_gain as f32);
        let lobj = lobj.unwrap_or_else(zero).mul_scalar(cfg.obj_gain as f32);
        let lcls = lcls.unwrap_or_else(zero).mul_scalar(cfg.cls_gain as f32);
        let items_t = Tensor::cat(vec![lbox.clone(), lobj.clone(), lcls.clone()], 0).detach();
        let items_v = items_t.into_data().convert::<f32>().try_to_vec::<f32>().expect("loss items read as f32");
        let total = lbox.add(lobj).add(lcls).mul_scalar(bs as f32);
        LossOutput { total, items: [items_v[0], items_v[1], items_v[2]] }
    }
}

/// A host `[rows, cols]` f32 buffer as a tensor on `device`.
fn host_2d(values: Vec<f32>, rows: usize, cols: usize, device: &Device) -> Tensor<2> {
    Tensor::from_data(TensorData::new(values, [rows, cols]), device)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> YoloLossConfig {
        YoloLossConfig {
            box_gain: 0.05,
            obj_gain: 1.0,
            cls_gain: 0.5,
            cls_pw: 1.0,
            obj_pw: 1.0,
            anchor_t: 4.0,
            fl_gamma: 0.0,
            label_smoothing: 0.0,
            balance: vec![4.0, 1.0],
            gr: 1.0,
        }
    }

    fn anchors() -> Vec<Vec<[f32; 2]>> {
        vec![vec![[1.0, 1.5], [2.0, 1.0]], vec![[1.5, 2.0], [3.0, 3.0]]]
    }

    /// Deterministic pseudo-random raw outputs for levels 8×8 and 4×4, `nc` classes.
    fn raw(nc: usize, device: &Device) -> Vec<Tensor<5>> {
        let mut state = 12345u64;
        [(8, 8), (4, 4)]
            .iter()
            .map(|&(ny, nx)| {
                let len = 2 * 2 * ny * nx * (5 + nc);
                let v: Vec<f32> = (0..len)
                    .map(|_| {
                        state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                        ((state >> 33) as f32 / (1u64 << 31) as f32) * 4.0 - 3.0
                    })
                    .collect();
                Tensor::from_data(TensorData::new(v, [2, 2, ny, nx, 5 + nc]), device)
            })
            .collect()
    }

    const TARGETS: [[f32; 6]; 3] =
        [[0.0, 1.0, 0.4, 0.55, 0.2, 0.3], [1.0, 0.0, 0.7, 0.2, 0.35, 0.25], [1.0, 2.0, 0.1, 0.9, 0.15, 0.1]];

    #[test]
    fn from_hyp_scales_like_train_py() {
        let hyp = yolo_compress_data::augment::Hyp::default();
        let c = YoloLossConfig::from_hyp(&hyp, 80, 3, 160, 0.0);
        assert_eq!((c.box_gain, c.cls_gain, c.obj_gain), (hyp.box_gain, hyp.cls, hyp.obj * 0.0625));
        assert_eq!(c.balance, vec![4.0, 1.0, 0.4]);
        assert_eq!(c.gr, 1.0);
        let c = YoloLossConfig::from_hyp(&hyp, 20, 4, 1280, 0.1);
        assert!((c.box_gain - hyp.box_gain * 0.75).abs() < 1e-12);
        assert!((c.cls_gain - hyp.cls * 20.0 / 80.0 * 0.75).abs() < 1e-12);
        assert!((c.obj_gain - hyp.obj * 4.0 * 0.75).abs() < 1e-12);
        assert_eq!(c.balance, vec![4.0, 1.0, 0.25, 0.06]);
        assert_eq!(c.label_smoothing, 0.1);
        assert_eq!(YoloLossConfig::default_balance(1), vec![4.0]);
        assert_eq!(YoloLossConfig::default_balance(6), vec![4.0, 1.0, 0.25, 0.06, 0.02, 0.02]);
    }

    #[test]
    fn empty_targets_give_objectness_only() {
        let device = Device::flex();
        let loss = YoloLoss::from_anchors(config(), 3, anchors());
        let out = loss.forward(&raw(3, &device), &[]);
        assert_eq!(out.items[0], 0.0);
        assert_eq!(out.items[2], 0.0);
        assert!(out.items[1].is_finite() && out.items[1] > 0.0);
        let total = out.total.into_data().convert::<f32>().try_to_vec::<f32>().unwrap()[0];
        assert!((total - 2.0 * out.items[1]).abs() < 1e-6 * total);
    }

    #[test]
    fn single_class_has_no_class_loss() {
        let device = Device::flex();
        let loss = YoloLoss::from_anchors(config(), 1, anchors());
        let t: Vec<[f32; 6]> = TARGETS.iter().map(|t| [t[0], 0.0, t[2], t[3], t[4], t[5]]).collect();
        let out = loss.forward(&raw(1, &device), &t);
        assert!(out.items[0] > 0.0 && out.items[1] > 0.0);
        assert_eq!(out.items[2], 0.0);
    }

    /// The whole loss recomputed on the host in f64 from the same targets.
    fn host_loss(
        raw: &[Vec<f32>],
        dims: &[[usize; 5]],
        levels: &[LevelTargets],
        cfg: &YoloLossConfig,
        nc: usize,
    ) -> [f64; 3] {
        let sig = |x: f64| 1.0 / (1.0 + (-x).exp());
        let bce = |x: f64, t: f64| x.max(0.0) - x * t + (-x.abs()).exp().ln_1p();
        let (mut lbox, mut lobj, mut lcls) = (0.0, 0.0, 0.0);
        for (i, ((r, d), lt)) in raw.iter().zip(dims).zip(levels).enumerate() {
            let [_, na, ny, nx, no] = *d;
            let mut tobj = vec![0.0f64; r.len() / no];
            if !lt.is_empty() {
                let mut sum_box = 0.0;
                let mut sum_cls = 0.0;
                for (k, &[b, a, gj, gi]) in lt.indices.iter().enumerate() {
                    let cell = ((b * na + a) * ny + gj) * nx + gi;
                    let p: Vec<f64> = r[cell * no..(cell + 1) * no].iter().map(|&v| v as f64).collect();
                    let px = sig(p[0]) * 2.0 - 0.5;
                    let py = sig(p[1]) * 2.0 - 0.5;
                    let pw = (sig(p[2]) * 2.0).powi(2) * lt.anchors[k][0] as f64;
                    let ph = (sig(p[3]) * 2.0).powi(2) * lt.anchors[k][1] as f64;
                    let t = lt.tbox[k].map(f64::from);
                    let (ax1, ax2, ay1, ay2) = (px - pw / 2.0, px + pw / 2.0, py - ph / 2.0, py + ph / 2.0);
                    let (bx1, bx2, by1, by2) =
                        (t[0] - t[2] / 2.0, t[0] + t[2] / 2.0, t[1] - t[3] / 2.0, t[1] + t[3] / 2.0);
                    let inter = (ax2.min(bx2) - ax1.max(bx1)).max(0.0) * (ay2.min(by2) - ay1.max(by1)).max(0.0);
                    let union = pw * ph + t[2] * t[3] - inter + 1e-7;
                    let iou = inter / union;
                    let cw = ax2.max(bx2) - ax1.min(bx1);
                    let ch = ay2.max(by2) - ay1.min(by1);
                    let c2 = cw * cw + ch * ch + 1e-7;
                    let rho2 = ((bx1 + bx2 - ax1 - ax2).powi(2) + (by1 + by2 - ay1 - ay2).powi(2)) / 4.0;
                    let v = 4.0 / std::f64::consts::PI.powi(2) * ((t[2] / t[3]).atan() - (pw / ph).atan()).powi(2);
                    let ciou = iou - (rho2 / c2 + v * v / (v - iou + 1.0 + 1e-7));
                    sum_box += 1.0 - ciou;
                    tobj[cell] = ciou.max(0.0);
                    if nc > 1 {
                        for (c, &x) in p[5..].iter().enumerate() {
                            sum_cls += bce(x, if c == lt.tcls[k] { 1.0 } else { 0.0 });
                        }
                    }
                }
                lbox += sum_box / lt.len() as f64;
                if nc > 1 {
                    lcls += sum_cls / (lt.len() * nc) as f64;
                }
            }
            let s: f64 = tobj.iter().enumerate().map(|(c, &t)| bce(r[c * no + 4] as f64, t)).sum();
            lobj += s / tobj.len() as f64 * cfg.balance[i];
        }
        [lbox * cfg.box_gain, lobj * cfg.obj_gain, lcls * cfg.cls_gain]
    }

    #[test]
    fn matches_host_reference() {
        let device = Device::flex();
        let nc = 3;
        let loss = YoloLoss::from_anchors(config(), nc, anchors());
        let raw = raw(nc, &device);
        let out = loss.forward(&raw, &TARGETS);
        let dims: Vec<[usize; 5]> = raw.iter().map(|r| r.dims()).collect();
        let host: Vec<Vec<f32>> =
            raw.iter().map(|r| r.clone().into_data().convert::<f32>().try_to_vec::<f32>().unwrap()).collect();
        let levels = loss.build_targets(&TARGETS, &[(8, 8), (4, 4)]);
        assert!(levels.iter().all(|l| !l.is_empty()));
        let want = host_loss(&host, &dims, &levels, loss.config(), nc);
        for (k, (got, want)) in out.items.iter().zip(want).enumerate() {
            assert!((*got as f64 - want).abs() < 1e-5 * want, "item {k}: {got} vs {want}");
        }
    }

    #[test]
    fn duplicate_cells_take_the_last_iou() {
        // Two identical targets on one cell with different boxes: the objectness target of that
        // cell is the IoU of the second match (last write), not a sum.
        let device = Device::flex();
        let nc = 2;
        let mut cfg = config();
        cfg.balance = vec![1.0];
        let loss = YoloLoss::from_anchors(cfg.clone(), nc, vec![vec![[1.0, 1.0]]]);
        // Centre (1.5, 1.5) on 4×4 (no neighbours), where zero logits predict a 1×1 box: IoU 1 with
        // the first target, 0.25 with the second (2×2, same centre).
        let t = [[0.0, 0.0, 1.5 / 4.0, 1.5 / 4.0, 0.25, 0.25], [0.0, 1.0, 1.5 / 4.0, 1.5 / 4.0, 0.5, 0.5]];
        // Box and class logits 0, objectness logits 1.
        let host: Vec<f32> = (0..16 * (5 + nc)).map(|k| if k % (5 + nc) == 4 { 1.0 } else { 0.0 }).collect();
        let raw = vec![Tensor::<5>::from_data(TensorData::new(host.clone(), [1, 1, 4, 4, 5 + nc]), &device)];
        let out = loss.forward(&raw, &t);
        let levels = loss.build_targets(&t, &[(4, 4)]);
        assert_eq!(levels[0].indices, vec![[0, 0, 1, 1], [0, 0, 1, 1]]);
        let host = vec![host];
        let want = host_loss(&host, &[[1, 1, 4, 4, 5 + nc]], &levels, &cfg, nc);
        assert!((out.items[1] as f64 - want[1]).abs() < 1e-6 * want[1], "{} vs {}", out.items[1], want[1]);
        // By hand: BCE(1, t) = 1 − t + ln(1 + e^−1), t = 0.25 on that cell and 0 on the 15 others.
        let by_hand = (16.0 * (1.0 + (-1.0f64).exp().ln_1p()) - 0.25) / 16.0;
        assert!((out.items[1] as f64 - by_hand).abs() < 1e-6, "{} vs {by_hand}", out.items[1]);
    }

    #[test]
    fn gradients_flow_to_raw_outputs() {
        let device = Device::flex().autodiff();
        let loss = YoloLoss::from_anchors(config(), 3, anchors());
        let raw: Vec<Tensor<5>> = raw(3, &device).into_iter().map(Tensor::require_grad).collect();
        let grads = loss.forward(&raw, &TARGETS).total.backward();
        for r in &raw {
            let g = r.grad(&grads).expect("gradient");
            let v = g.into_data().convert::<f32>().try_to_vec::<f32>().unwrap();
            assert!(v.iter().all(|x| x.is_finite()) && v.iter().any(|&x| x != 0.0));
        }
    }
}
