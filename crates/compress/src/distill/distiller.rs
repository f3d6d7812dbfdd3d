//! [`Distiller`]: the training hook of knowledge distillation. For every batch it runs the frozen
//! teacher (fused, eval mode, without autodiff) on the images the student saw and returns the
//! [`OutputDistill`] loss between their raw outputs, which the training loop adds to the detection
//! loss.

use burn::prelude::*;
use yolo_compress_model::YoloModel;
use yolo_compress_model::head::RawOutputs;
use yolo_compress_train::TrainError;
use yolo_compress_train::trainer::TrainHook;

use super::output::{OutputDistill, OutputDistillConfig};
use crate::error::DistillError;

/// Largest difference between teacher and student anchors (grid units) still taken as equal.
const ANCHOR_TOL: f32 = 1e-4;

/// Knowledge distillation from a frozen teacher while training (see [`crate::distill`]).
pub struct Distiller {
    teacher: YoloModel,
    loss: OutputDistill,
}

impl Distiller {
    /// The hook for `student` with `teacher`: the teacher is fused, switched to eval mode and kept
    /// on `device` without autodiff (the training device). Fails unless both heads have the same
    /// classes, strides, anchors per level and anchors, since the loss compares outputs cell by
    /// cell and box sizes in anchor units.
    pub fn new(
        teacher: YoloModel,
        student: &YoloModel,
        cfg: OutputDistillConfig,
        device: &Device,
    ) -> Result<Self, DistillError> {
        let (t, s) = (&teacher.detect, &student.detect);
        if teacher.nc() != student.nc() {
            return Err(DistillError::Head(format!("{} classes vs the student's {}", teacher.nc(), student.nc())));
        }
        if t.strides != s.strides || t.na != s.na {
            return Err(DistillError::Head(format!(
                "strides {:?} with {} anchors each vs the student's {:?} with {}",
                t.strides, t.na, s.strides, s.na
            )));
        }
        if t.anchors.len() != s.anchors.len()
            || t.anchors.iter().zip(&s.anchors).any(|(a, b)| (a - b).abs() > ANCHOR_TOL)
        {
            return Err(DistillError::Head(format!("anchors {:?} vs the student's {:?}", t.anchors, s.anchors)));
        }
        if cfg.balance.len() != t.strides.len() {
            return Err(DistillError::Head(format!(
                "{} levels but {} balance weights",
                t.strides.len(),
                cfg.balance.len()
            )));
        }
        let teacher = teacher.fork(&device.clone().inner()).valid().fuse();
        Ok(Self { teacher, loss: cfg.init() })
    }

    /// The teacher's raw outputs for `images` (any device; computed without autodiff).
    pub fn teacher_outputs(&self, images: &Tensor<4>) -> RawOutputs {
        self.teacher.forward_raw(images.clone().inner())
    }

    /// The distillation loss of `student_raw` (the student's raw outputs for `images`), `[1]` on
    /// the student's device.
    pub fn loss(&self, images: &Tensor<4>, student_raw: &RawOutputs) -> Result<Tensor<1>, DistillError> {
        let teacher: RawOutputs = self.teacher_outputs(images).into_iter().map(|t| t.autodiff().detach()).collect();
        self.loss.forward(student_raw, &teacher)
    }
}

impl TrainHook for Distiller {
    fn batch_loss(&mut self, images: &Tensor<4>, raw: &RawOutputs) -> Result<Option<Tensor<1>>, TrainError> {
        self.loss(images, raw).map(Some).map_err(|e| TrainError::Config(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use yolo_compress_model::Architecture;

    fn tiny(device: &Device) -> YoloModel {
        let names = vec!["a".into(), "b".into(), "c".into()];
        Architecture::from_name_or_path("yolov5n.yaml").unwrap().with_classes(names).build(device).unwrap()
    }

    fn cfg() -> OutputDistillConfig {
        OutputDistillConfig { weight: 1.0, box_gain: 0.05, obj_gain: 1.0, cls_gain: 0.5, balance: vec![4.0, 1.0, 0.4] }
    }

    /// A student whose outputs are the teacher's (the same weights, both in eval mode) gets a zero
    /// loss through the fused teacher, and a different student a positive one with gradients.
    #[test]
    fn zero_for_the_teacher_itself_and_positive_otherwise() {
        let device = Device::flex();
        device.seed(1);
        let teacher = tiny(&device);
        let x = Tensor::<4>::random([2, 3, 64, 64], burn::tensor::Distribution::Uniform(0.0, 1.0), &device);
        let same = teacher.clone().valid();
        let hook = Distiller::new(teacher.clone(), &same, cfg(), &device).unwrap();
        let v = hook.loss(&x, &same.forward_raw(x.clone())).unwrap();
        let v = v.into_data().convert::<f32>().try_to_vec::<f32>().unwrap()[0];
        assert!(v.abs() < 1e-4, "{v}");

        let ad = device.clone().autodiff();
        let student = tiny(&device).fork(&ad).train();
        let xa = x.to_device(&ad);
        let raw = student.forward_raw(xa.clone());
        let mut hook = Distiller::new(teacher, &student, cfg(), &device).unwrap();
        let loss = hook.batch_loss(&xa, &raw).unwrap().unwrap();
        let value = loss.clone().detach().into_data().convert::<f32>().try_to_vec::<f32>().unwrap()[0];
        assert!(value > 0.0 && value.is_finite(), "{value}");
        let grads = burn::optim::GradientsParams::from_grads(loss.backward(), &student);
        assert!(!grads.is_empty());
    }

    #[test]
    fn a_different_head_is_refused() {
        let device = Device::flex();
        let teacher = tiny(&device);
        let mut student = tiny(&device);
        student.detect.anchors[0] += 0.5;
        let e = Distiller::new(teacher.clone(), &student, cfg(), &device).err().unwrap().to_string();
        assert!(e.contains("anchors"), "{e}");
        let e = Distiller::new(teacher, &tiny(&device), OutputDistillConfig { balance: vec![1.0], ..cfg() }, &device)
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("3 levels but 1 balance"), "{e}");
    }
}
