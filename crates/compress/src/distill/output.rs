//! Output distillation loss for YOLOv5 heads: the student's raw Detect outputs are pulled towards
//! the teacher's, each cell weighted by the teacher's objectness (Mehta & Ozturk, "Object
//! detection at 200 Frames Per Second", ECCV workshops 2018), so that the many background cells
//! do not drown the few that hold objects.
//!
//! Inputs per level `i`: student logits `s` and teacher logits `t`, both `[B, na, ny, nx, 5 + nc]`
//! (`tx, ty, tw, th, tobj, cls…`). The teacher is a constant (no gradient flows into it). With
//! `w = σ(t_obj)` per cell, `W_i = Σ w`, the binary KL divergence `KL(t ‖ s) = p·log(p/q) + (1 −
//! p)·log((1 − p)/(1 − q))` with `p = σ(t)`, `q = σ(s)`, and the decoded box `d(x) = (2σ(x_xy) −
//! 0.5, (2σ(x_wh))²)` (cell offsets and sizes in anchor units, as the YOLOv5 loss decodes them):
//!
//! - objectness: `obj_i = mean over cells of KL(t_obj ‖ s_obj)`, all cells, weighted per level by
//!   the detection loss's `balance[i]`;
//! - box: `box_i = Σ w · mean_k (d_k(s) − d_k(t))² / W_i`;
//! - class (only when `nc > 1`): `cls_i = Σ w · mean_c KL(t_c ‖ s_c) / W_i`.
//!
//! The loss is `weight · B · (box_gain · Σ box_i + obj_gain · Σ balance_i · obj_i + cls_gain · Σ
//! cls_i)`, shape `[1]`, with the gains of the detection loss ([`YoloLossConfig`]), so `weight = 1`
//! gives the two losses the same scale whatever the image size and class count. Every term is 0
//! when the student's outputs equal the teacher's.

use burn::prelude::*;
use burn::tensor::activation::sigmoid;
use serde::{Deserialize, Serialize};
use yolo_compress_model::YoloModel;
use yolo_compress_model::head::RawOutputs;
use yolo_compress_train::loss::{YoloLossConfig, bce_with_logits_elementwise};
use yolo_compress_train::trainer::TrainConfig;

use crate::error::DistillError;

/// Floor of the objectness weight sum `W_i` (a level whose teacher sees no object anywhere).
const WEIGHT_EPS: f64 = 1e-9;

/// Settings of the output distillation loss.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutputDistillConfig {
    /// Weight of the whole distillation loss relative to the detection loss.
    pub weight: f64,
    /// Box term gain (the detection loss's `box_gain`).
    pub box_gain: f64,
    /// Objectness term gain (the detection loss's `obj_gain`).
    pub obj_gain: f64,
    /// Class term gain (the detection loss's `cls_gain`).
    pub cls_gain: f64,
    /// Objectness weight per level (the detection loss's `balance`).
    pub balance: Vec<f64>,
}

impl OutputDistillConfig {
    /// The gains and level balance of the run's detection loss, and `weight`.
    pub fn from_loss(loss: &YoloLossConfig, weight: f64) -> Self {
        Self {
            weight,
            box_gain: loss.box_gain,
            obj_gain: loss.obj_gain,
            cls_gain: loss.cls_gain,
            balance: loss.balance.clone(),
        }
    }

    /// The config for a training run: the gains and balance of the detection loss the trainer
    /// builds for `run` and `student` (same `from_hyp` call), weighted by `run.distill`.
    pub fn for_run(run: &TrainConfig, student: &YoloModel) -> Self {
        let (nc, nl) = (student.nc(), student.detect.strides.len());
        let loss = YoloLossConfig::from_hyp(&run.hyp, nc, nl, run.imgsz as usize, run.label_smoothing);
        Self::from_loss(&loss, run.distill)
    }

    /// Builds the loss.
    pub fn init(&self) -> OutputDistill {
        OutputDistill { cfg: self.clone() }
    }
}

/// The output distillation loss (see the module docs).
#[derive(Debug, Clone)]
pub struct OutputDistill {
    cfg: OutputDistillConfig,
}

impl OutputDistill {
    /// The settings.
    pub fn config(&self) -> &OutputDistillConfig {
        &self.cfg
    }

    /// The unscaled terms `[Σ box_i, Σ balance_i · obj_i, Σ cls_i]`, each `[1]` (no gains, no
    /// weight, no batch factor).
    pub fn components(&self, student: &RawOutputs, teacher: &RawOutputs) -> Result<[Tensor<1>; 3], DistillError> {
        check_shapes(student, teacher, self.cfg.balance.len())?;
        let mut sums: Option<[Tensor<1>; 3]> = None;
        for (i, (s, t)) in student.iter().zip(teacher).enumerate() {
            let [b, o, c] = level_terms(s.clone(), t.clone());
            let terms = [b, o.mul_scalar(self.cfg.balance[i]), c];
            sums = Some(match sums {
                None => terms,
                Some([sb, so, sc]) => {
                    let [b, o, c] = terms;
                    [sb.add(b), so.add(o), sc.add(c)]
                }
            });
        }
        sums.ok_or(DistillError::Shape("no output levels".into()))
    }

    /// The loss, `[1]` on the student's device: `weight · B · Σ gain · term`.
    pub fn forward(&self, student: &RawOutputs, teacher: &RawOutputs) -> Result<Tensor<1>, DistillError> {
        let batch = student.first().map_or(0, |s| s.dims()[0]) as f64;
        let [b, o, c] = self.components(student, teacher)?;
        let cfg = &self.cfg;
        let sum = b.mul_scalar(cfg.box_gain).add(o.mul_scalar(cfg.obj_gain)).add(c.mul_scalar(cfg.cls_gain));
        Ok(sum.mul_scalar(cfg.weight * batch))
    }
}

/// Same number of levels as the balance, and equal shapes level by level.
fn check_shapes(student: &RawOutputs, teacher: &RawOutputs, levels: usize) -> Result<(), DistillError> {
    if student.len() != teacher.len() || student.len() != levels {
        return Err(DistillError::Shape(format!(
            "{} student levels, {} teacher levels, {} balance weights",
            student.len(),
            teacher.len(),
            levels
        )));
    }
    for (i, (s, t)) in student.iter().zip(teacher).enumerate() {
        let (sd, td) = (s.dims(), t.dims());
        if sd != td || sd[4] < 5 {
            return Err(DistillError::Shape(format!("level {i}: student output {sd:?}, teacher output {td:?}")));
        }
    }
    Ok(())
}

/// Binary KL divergence `KL(σ(t) ‖ σ(s))` element-wise: `BCE(s, p) − BCE(t, p)` with `p = σ(t)`
/// (the teacher's entropy is a constant; subtracting it makes the term 0 at `s = t`).
fn binary_kl<const D: usize>(s: Tensor<D>, t: Tensor<D>) -> Tensor<D> {
    let p = sigmoid(t.clone());
    let entropy = bce_with_logits_elementwise(t, p.clone(), 1.0);
    bce_with_logits_elementwise(s, p, 1.0).sub(entropy)
}

/// Decoded box `[n, 4]`: `2σ − 0.5` for xy, `(2σ)²` for wh.
fn decode_box(x: Tensor<2>) -> Tensor<2> {
    let sg = sigmoid(x).mul_scalar(2.0);
    let xy = sg.clone().narrow(1, 0, 2).sub_scalar(0.5);
    let wh = sg.narrow(1, 2, 2).powi_scalar(2);
    Tensor::cat(vec![xy, wh], 1)
}

/// One level's `[box_i, obj_i, cls_i]` (obj without the balance).
fn level_terms(s: Tensor<5>, t: Tensor<5>) -> [Tensor<1>; 3] {
    let [b, na, ny, nx, no] = s.dims();
    let n = b * na * ny * nx;
    let s = s.reshape([n, no]);
    let t = t.detach().reshape([n, no]);
    let t_obj = t.clone().narrow(1, 4, 1);
    let w = sigmoid(t_obj.clone());
    let w_sum = w.clone().sum().clamp_min(WEIGHT_EPS);
    let obj = binary_kl(s.clone().narrow(1, 4, 1), t_obj).mean();
    let box_err = decode_box(s.clone().narrow(1, 0, 4)).sub(decode_box(t.clone().narrow(1, 0, 4))).powi_scalar(2);
    let bx = box_err.mean_dim(1).mul(w.clone()).sum().div(w_sum.clone());
    let cls = if no > 6 {
        binary_kl(s.narrow(1, 5, no - 5), t.narrow(1, 5, no - 5)).mean_dim(1).mul(w).sum().div(w_sum)
    } else {
        Tensor::zeros([1], &s.device())
    };
    [bx, obj, cls]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn device() -> Device {
        Device::flex()
    }

    fn cfg(balance: Vec<f64>) -> OutputDistillConfig {
        OutputDistillConfig { weight: 2.0, box_gain: 0.05, obj_gain: 0.7, cls_gain: 0.3, balance }
    }

    /// Deterministic pseudo-random logits in about [-4, 4].
    fn logits(shape: [usize; 5], seed: u64) -> (Vec<f32>, Tensor<5>) {
        let n: usize = shape.iter().product();
        let mut x = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        let v: Vec<f32> = (0..n)
            .map(|_| {
                x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                ((x >> 33) as f64 / (1u64 << 31) as f64 * 8.0 - 4.0) as f32
            })
            .collect();
        let t = Tensor::<1>::from_floats(v.as_slice(), &device()).reshape(shape);
        (v, t)
    }

    fn sig(x: f64) -> f64 {
        1.0 / (1.0 + (-x).exp())
    }

    fn kl(s: f64, t: f64) -> f64 {
        let (p, q) = (sig(t), sig(s));
        p * (p / q).ln() + (1.0 - p) * ((1.0 - p) / (1.0 - q)).ln()
    }

    fn dec(x: f64, k: usize) -> f64 {
        if k < 2 { 2.0 * sig(x) - 0.5 } else { (2.0 * sig(x)).powi(2) }
    }

    /// The module docs' formula, element by element in f64.
    fn naive(s: &[Vec<f32>], t: &[Vec<f32>], no: usize, c: &OutputDistillConfig, batch: usize) -> [f64; 4] {
        let (mut lb, mut lo, mut lc) = (0.0, 0.0, 0.0);
        for (i, (sv, tv)) in s.iter().zip(t).enumerate() {
            let cells = sv.len() / no;
            let (mut wsum, mut bsum, mut osum, mut csum) = (0.0, 0.0, 0.0, 0.0);
            for cell in 0..cells {
                let (sr, tr) = (&sv[cell * no..(cell + 1) * no], &tv[cell * no..(cell + 1) * no]);
                let w = sig(f64::from(tr[4]));
                wsum += w;
                osum += kl(f64::from(sr[4]), f64::from(tr[4]));
                let be: f64 = (0..4).map(|k| (dec(f64::from(sr[k]), k) - dec(f64::from(tr[k]), k)).powi(2)).sum();
                bsum += w * be / 4.0;
                if no > 6 {
                    let ce: f64 = (5..no).map(|k| kl(f64::from(sr[k]), f64::from(tr[k]))).sum();
                    csum += w * ce / (no - 5) as f64;
                }
            }
            lb += bsum / wsum;
            lo += c.balance[i] * osum / cells as f64;
            lc += csum / wsum;
        }
        let total = c.weight * batch as f64 * (c.box_gain * lb + c.obj_gain * lo + c.cls_gain * lc);
        [lb, lo, lc, total]
    }

    fn host(t: Tensor<1>) -> f64 {
        f64::from(t.into_data().convert::<f32>().try_to_vec::<f32>().unwrap()[0])
    }

    #[test]
    fn matches_the_naive_formula_on_two_levels() {
        let c = cfg(vec![4.0, 1.0]);
        let shapes = [[2, 3, 4, 4, 8], [2, 3, 2, 2, 8]];
        let (sv, st): (Vec<_>, Vec<_>) = shapes.iter().enumerate().map(|(i, &sh)| logits(sh, i as u64)).unzip();
        let (tv, tt): (Vec<_>, Vec<_>) = shapes.iter().enumerate().map(|(i, &sh)| logits(sh, 10 + i as u64)).unzip();
        let want = naive(&sv, &tv, 8, &c, 2);
        let loss = c.init();
        let got = loss.components(&st, &tt).unwrap().map(host);
        for k in 0..3 {
            assert!((got[k] - want[k]).abs() <= 1e-5 * want[k].abs().max(1.0), "term {k}: {} vs {}", got[k], want[k]);
        }
        let total = host(loss.forward(&st, &tt).unwrap());
        assert!((total - want[3]).abs() <= 1e-5 * want[3].abs(), "{total} vs {}", want[3]);
        assert!(want.iter().all(|v| *v > 0.0));
    }

    #[test]
    fn single_class_has_no_class_term() {
        let c = cfg(vec![1.0]);
        let (sv, s) = logits([1, 2, 3, 3, 6], 3);
        let (tv, t) = logits([1, 2, 3, 3, 6], 4);
        let want = naive(&[sv], &[tv], 6, &c, 1);
        let got = c.init().components(&vec![s], &vec![t]).unwrap().map(host);
        assert_eq!(got[2], 0.0);
        assert!((got[0] - want[0]).abs() < 1e-5 && (got[1] - want[1]).abs() < 1e-5);
    }

    #[test]
    fn zero_when_the_student_equals_the_teacher() {
        let c = cfg(vec![4.0, 1.0, 0.4]);
        let raw: RawOutputs = (0..3).map(|i| logits([2, 3, 4 >> i, 4 >> i, 9], i).1).collect();
        let total = host(c.init().forward(&raw, &raw.clone()).unwrap());
        assert!(total.abs() < 1e-6, "{total}");
    }

    /// The objectness gradient is the closed form `weight·B·obj_gain·balance·(σ(s) − σ(t))/cells`,
    /// and the teacher gets none.
    #[test]
    fn objectness_gradient_has_the_closed_form() {
        let c = cfg(vec![0.4]);
        let ad = device().autodiff();
        let (sv, s) = logits([2, 1, 2, 2, 7], 5);
        let (tv, t) = logits([2, 1, 2, 2, 7], 6);
        let s = s.to_device(&ad).autodiff().require_grad();
        let t = t.to_device(&ad).autodiff().require_grad();
        let loss = c.init().forward(&vec![s.clone()], &vec![t.clone()]).unwrap();
        let grads = loss.backward();
        let gs = s.grad(&grads).unwrap().into_data().convert::<f32>().try_to_vec::<f32>().unwrap();
        assert!(t.grad(&grads).is_none_or(|g| host(g.abs().sum()) == 0.0));
        let cells = 8;
        for cell in 0..cells {
            let k = cell * 7 + 4;
            let want =
                c.weight * 2.0 * c.obj_gain * 0.4 * (sig(f64::from(sv[k])) - sig(f64::from(tv[k]))) / cells as f64;
            assert!((f64::from(gs[k]) - want).abs() < 1e-6, "cell {cell}: {} vs {want}", gs[k]);
        }
    }

    /// A run's config takes the gains the trainer gives its detection loss and the run's weight.
    #[test]
    fn a_runs_config_uses_the_trainers_gains() {
        let names: Vec<String> = (0..4).map(|i| format!("c{i}")).collect();
        let student = yolo_compress_model::Architecture::from_name_or_path("yolov5n.yaml")
            .unwrap()
            .with_classes(names)
            .build(&device())
            .unwrap();
        let run = TrainConfig { imgsz: 320, distill: 2.5, ..TrainConfig::default() };
        let c = OutputDistillConfig::for_run(&run, &student);
        let loss = YoloLossConfig::from_hyp(&run.hyp, 4, 3, 320, 0.0);
        assert_eq!(c, OutputDistillConfig::from_loss(&loss, 2.5));
        assert!(
            (c.obj_gain - run.hyp.obj * 0.25).abs() < 1e-12 && (c.cls_gain - run.hyp.cls * 4.0 / 80.0).abs() < 1e-12
        );
    }

    #[test]
    fn mismatched_shapes_are_reported() {
        let c = cfg(vec![1.0]);
        let s = vec![logits([1, 3, 2, 2, 8], 0).1];
        let t = vec![logits([1, 3, 2, 2, 7], 1).1];
        let e = c.init().forward(&s, &t).unwrap_err().to_string();
        assert!(e.contains("level 0") && e.contains("[1, 3, 2, 2, 8]"), "{e}");
        let e = c.init().forward(&s, &vec![]).unwrap_err().to_string();
        assert!(e.contains("1 student levels, 0 teacher levels"), "{e}");
    }
}
