//! Model summaries in ultralytics' terms: parameters, MACs/GFLOPs (thop convention) and layer count.

use serde::Serialize;

use crate::model::{Backbone, Detector};

/// A model summary.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ModelInfo {
    /// Trainable parameters (BN weights and biases included).
    pub params: usize,
    /// Multiply-accumulates for one `imgsz × imgsz` image.
    pub macs: f64,
    /// `2 · macs / 1e9`.
    pub gflops: f64,
    /// PyTorch module count as ultralytics prints it ("N layers").
    pub layers: usize,
    /// Image size the FLOPs refer to.
    pub imgsz: usize,
}

impl ModelInfo {
    /// Summarises `model` at `imgsz × imgsz`.
    pub fn of<B: Backbone>(model: &Detector<B>, imgsz: usize) -> Self {
        let macs = model.macs(imgsz, imgsz);
        ModelInfo {
            params: model.num_params(),
            macs,
            gflops: 2.0 * macs / 1e9,
            layers: model.torch_layer_count(),
            imgsz,
        }
    }
}

/// Trainable parameters per layer index (`model.{i}.…` keys), in layer order.
pub fn layer_params<B: Backbone>(model: &Detector<B>) -> Vec<usize> {
    use crate::error::WeightsError;
    use crate::state::{NamedTensors, Slot, TensorVisitor};

    struct PerLayer(Vec<usize>);
    impl TensorVisitor for PerLayer {
        fn visit(&mut self, key: &str, slot: Slot<'_>) -> Result<(), WeightsError> {
            let idx = key.split('.').nth(1).and_then(|s| s.parse::<usize>().ok());
            if let (Some(i), true) = (idx, slot.is_param()) {
                if self.0.len() <= i {
                    self.0.resize(i + 1, 0);
                }
                self.0[i] += slot.shape().iter().product::<usize>();
            }
            Ok(())
        }
    }
    let mut v = PerLayer(Vec::new());
    model.clone().visit_tensors("model", &mut v).expect("counting never fails");
    v.0
}
