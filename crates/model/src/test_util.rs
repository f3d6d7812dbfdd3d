//! Helpers shared by the unit tests of this crate.

use burn::prelude::*;

use crate::error::WeightsError;
use crate::state::{NamedTensors, Slot, TensorVisitor};

/// The CPU test device.
pub fn device() -> Device {
    Device::flex()
}

/// A rank-4 tensor from values.
pub fn tensor4(values: Vec<f32>, shape: [usize; 4]) -> Tensor<4> {
    Tensor::from_data(TensorData::new(values, shape), &device())
}

/// A tensor's values.
pub fn to_vec<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.into_data().convert::<f32>().try_to_vec::<f32>().unwrap()
}

/// Asserts element-wise `|a − b| ≤ tol`.
pub fn assert_close(a: &[f32], b: &[f32], tol: f32) {
    assert_eq!(a.len(), b.len(), "lengths differ");
    for (i, (x, y)) in a.iter().zip(b).enumerate() {
        assert!((x - y).abs() <= tol, "element {i}: {x} vs {y} (tol {tol})");
    }
}

struct Setter<'a>(&'a [(&'a str, Vec<f32>)]);

impl TensorVisitor for Setter<'_> {
    fn visit(&mut self, key: &str, mut slot: Slot<'_>) -> Result<(), WeightsError> {
        if let Some((_, v)) = self.0.iter().find(|(k, _)| *k == key) {
            slot.set(v.clone(), &device());
        }
        Ok(())
    }
}

/// Sets tensors by state-dict key (relative to the module).
pub fn set_all<M: NamedTensors>(m: &mut M, values: &[(&str, Vec<f32>)]) {
    m.visit_tensors("", &mut Setter(values)).unwrap();
}
