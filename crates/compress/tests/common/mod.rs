//! Helpers shared by the compression crate's integration tests.

use burn::prelude::*;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use yolo_compress_model::state::{NamedTensors, Slot, TensorVisitor};
use yolo_compress_model::{WeightsError, YoloModel};

/// Random BN statistics and affine parameters, so that BN is not the identity.
pub fn randomize_bn(model: &mut YoloModel, seed: u64, device: &Device) {
    struct V<'a>(ChaCha8Rng, &'a Device);
    impl TensorVisitor for V<'_> {
        fn visit(&mut self, key: &str, mut slot: Slot<'_>) -> Result<(), WeightsError> {
            let n: usize = slot.shape().iter().product();
            let range = match (&slot, key.rsplit('.').next()) {
                (Slot::Running(_), Some("running_var")) | (Slot::Param1(_), Some("weight")) => 0.5..1.5,
                (Slot::Running(_), _) | (Slot::Param1(_), _) => -0.3..0.3,
                _ => return Ok(()),
            };
            let v = (0..n).map(|_| self.0.random_range(range.clone())).collect();
            slot.set(v, self.1);
            Ok(())
        }
    }
    model.visit_tensors("model", &mut V(ChaCha8Rng::seed_from_u64(seed), device)).unwrap();
}
