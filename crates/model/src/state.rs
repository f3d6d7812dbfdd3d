//! Named tensors: one walk over a model that yields every weight under its ultralytics
//! state-dict key (`model.2.m.0.cv1.conv.weight`, `model.24.anchors`, …).
//!
//! The same walk serves loading PyTorch weights, saving and loading native checkpoints and
//! counting parameters, so the key layout lives in exactly one place: each block's
//! [`NamedTensors::visit_tensors`].

use burn::module::{Param, RunningState};
use burn::prelude::*;

use crate::error::WeightsError;

/// A mutable reference to one named tensor of a model.
pub enum Slot<'a> {
    /// A trainable rank-1 parameter (bias, BN weight/bias).
    Param1(&'a mut Param<Tensor<1>>),
    /// A trainable rank-4 parameter (conv weight `[c_out, c_in / groups, kh, kw]`).
    Param4(&'a mut Param<Tensor<4>>),
    /// A running statistic (BN running mean/var): saved, not trained, not counted as a parameter.
    Running(&'a mut RunningState<Tensor<1>>),
    /// A host-side buffer with its shape (Detect anchors in grid units, `[nl, na, 2]`).
    Host(&'a mut Vec<f32>, Vec<usize>),
}

impl Slot<'_> {
    /// Shape of the tensor behind the slot.
    pub fn shape(&self) -> Vec<usize> {
        match self {
            Slot::Param1(p) => p.val().dims().to_vec(),
            Slot::Param4(p) => p.val().dims().to_vec(),
            Slot::Running(r) => r.value().dims().to_vec(),
            Slot::Host(_, s) => s.clone(),
        }
    }

    /// Whether the slot is a trainable parameter (counted by `info`).
    pub fn is_param(&self) -> bool {
        matches!(self, Slot::Param1(_) | Slot::Param4(_))
    }

    /// The values as a flat `f32` vector (row-major).
    pub fn to_vec(&self) -> Vec<f32> {
        let data = match self {
            Slot::Param1(p) => p.val().into_data(),
            Slot::Param4(p) => p.val().into_data(),
            Slot::Running(r) => r.value().into_data(),
            Slot::Host(v, _) => return v.to_vec(),
        };
        data.convert::<f32>().try_to_vec::<f32>().expect("float tensor converts to f32")
    }

    /// Replaces the values (row-major, same shape as [`Slot::shape`]) on `device`. Parameters keep
    /// their id and stay trainable (as freshly initialised ones are), so loaded weights can be
    /// fine-tuned.
    pub fn set(&mut self, values: Vec<f32>, device: &Device) {
        let shape = self.shape();
        match self {
            Slot::Param1(p) => {
                let t = Tensor::<1>::from_data(TensorData::new(values, shape), device);
                **p = trainable(p.id, t);
            }
            Slot::Param4(p) => {
                let t = Tensor::<4>::from_data(TensorData::new(values, shape), device);
                **p = trainable(p.id, t);
            }
            Slot::Running(r) => {
                let t = Tensor::<1>::from_data(TensorData::new(values, shape), device);
                **r = RunningState::new(t);
            }
            Slot::Host(v, _) => **v = values,
        }
    }
}

/// A trainable parameter with the given id (`Param::initialized` alone would record "no gradient"
/// for a tensor made on a plain device, and the model would not train after `fork` + `train`).
fn trainable<const D: usize>(id: burn::module::ParamId, t: Tensor<D>) -> Param<Tensor<D>> {
    let mut p = Param::from_tensor(t);
    p.id = id;
    p
}

/// Receives each named tensor of a walk.
pub trait TensorVisitor {
    /// Called once per tensor with its full state-dict key.
    fn visit(&mut self, key: &str, slot: Slot<'_>) -> Result<(), WeightsError>;
}

/// A module whose tensors can be walked under their state-dict keys.
pub trait NamedTensors {
    /// Visits every tensor, prefixing keys with `prefix` (no trailing dot).
    fn visit_tensors(&mut self, prefix: &str, v: &mut dyn TensorVisitor) -> Result<(), WeightsError>;
}

/// Joins a key prefix and a name with a dot.
pub fn join(prefix: &str, name: &str) -> String {
    if prefix.is_empty() { name.to_string() } else { format!("{prefix}.{name}") }
}

/// Counts trainable parameters through a tensor walk.
#[derive(Default)]
pub struct ParamCounter {
    /// Number of scalar parameters seen.
    pub params: usize,
}

impl TensorVisitor for ParamCounter {
    fn visit(&mut self, _key: &str, slot: Slot<'_>) -> Result<(), WeightsError> {
        if slot.is_param() {
            self.params += slot.shape().iter().product::<usize>();
        }
        Ok(())
    }
}

/// Collects `(key, shape, values)` of every tensor of a walk.
#[derive(Default)]
pub struct Collector {
    /// The tensors in walk order.
    pub tensors: Vec<(String, Vec<usize>, Vec<f32>)>,
}

impl TensorVisitor for Collector {
    fn visit(&mut self, key: &str, slot: Slot<'_>) -> Result<(), WeightsError> {
        self.tensors.push((key.to_string(), slot.shape(), slot.to_vec()));
        Ok(())
    }
}
