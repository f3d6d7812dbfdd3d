//! [`QuantModel`]: a YOLOv5 detector executed as its deployed graph with simulated int8 arithmetic.
//!
//! Weights of quantized convs are fake-quantized per output channel (BN folded first); every value
//! the [placement](super::graph::place) marks carries a per-tensor activation quantizer. The result
//! is numerically what an int8 engine computes (up to float rounding in the accumulation), while
//! running on any Burn device in f32. Shapes: `[B, 3, H, W]` → raw `[B, na, ny, nx, nc+5]` per level.

use burn::module::{Param, RunningState};
use burn::prelude::*;
use yolo_compress_model::arch::Architecture;
use yolo_compress_model::blocks::focus::space_to_depth;
use yolo_compress_model::blocks::pool::max_pool_same;
use yolo_compress_model::blocks::upsample_nearest;
use yolo_compress_model::head::{Detect, RawOutputs};
use yolo_compress_model::{DetectionModel, DetectorOutput, YoloModel};

use super::fake::{QParams, fake_quant, range_qparams};
use super::graph::{Op, Placement, QGraph, ValueId, lower, place};
use super::observer::Grid;
use super::qconv::QConv;
use crate::error::QuantError;

/// A callback receiving every value of a float pass (calibration).
pub type Tap<'a> = &'a mut dyn FnMut(ValueId, &Tensor<4>);

/// One activation quantizer: a per-tensor clip range `[lo, hi]`.
#[derive(Module, Debug)]
pub struct ActQuant {
    /// Calibrated (PTQ) or observed (QAT, EMA of batch min/max) range `[lo, hi]`.
    pub range: RunningState<Tensor<1>>,
    /// Learnable range for QAT with learnable scales (it then replaces `range`).
    pub learned: Option<Param<Tensor<1>>>,
}

impl ActQuant {
    /// A quantizer for the range `[lo, hi]`.
    pub fn new(lo: f32, hi: f32, device: &Device) -> Self {
        ActQuant { range: RunningState::new(Tensor::from_floats([lo, hi], device)), learned: None }
    }

    /// The range in use, `[2]`.
    pub fn current(&self) -> Tensor<1> {
        match &self.learned {
            Some(p) => p.val(),
            // Burn applies a running-state update lazily; sync so a QAT batch sees its own update.
            None => self.range.value_sync(),
        }
    }

    /// The range in use on the host.
    pub fn host_range(&self) -> (f32, f32) {
        let v = self.current().into_data().convert::<f32>().try_to_vec::<f32>().unwrap_or_default();
        (v.first().copied().unwrap_or(0.0), v.get(1).copied().unwrap_or(0.0))
    }

    /// EMA update with the envelope of this forward pass's members seen so far:
    /// `new = (1 − m)·start + m·[min, max]`, `start` being the range before the pass (`obs`).
    fn observe(&self, x: &Tensor<4>, momentum: f64, obs: &mut Option<(Tensor<1>, Tensor<1>)>) {
        let (lo, hi) = (x.clone().min().reshape([1]).detach(), x.clone().max().reshape([1]).detach());
        let (start, env) = match obs.take() {
            None => (self.range.value_sync().detach(), Tensor::cat(vec![lo, hi], 0)),
            Some((start, env)) => {
                let env =
                    Tensor::cat(vec![env.clone().narrow(0, 0, 1).min_pair(lo), env.narrow(0, 1, 1).max_pair(hi)], 0);
                (start, env)
            }
        };
        self.range.update(start.clone() * (1.0 - momentum) + env.clone() * momentum);
        *obs = Some((start, env));
    }
}

/// A YOLOv5 detector as a deployed graph with fake-quantized convs and activations.
#[derive(Module, Debug)]
pub struct QuantModel {
    /// The convolutions, in graph order.
    pub convs: Vec<QConv>,
    /// One activation quantizer per placement group.
    pub acts: Vec<ActQuant>,
    /// Detect's decode (anchors, strides; its convs live in `convs`).
    pub head: Detect,
    /// The deployed graph.
    #[module(skip)]
    pub graph: QGraph,
    /// Where the activation quantizers sit.
    #[module(skip)]
    pub placement: Placement,
    /// Grid of the activation quantizers.
    #[module(skip)]
    pub act_grid: Grid,
    /// QAT: momentum of the EMA observers updated by training forward passes (`None` = frozen).
    #[module(skip)]
    pub observer_momentum: Option<f64>,
    /// Calibrated range of every value (for re-placing quantizers without recalibrating).
    #[module(skip)]
    pub value_ranges: Vec<Option<(f32, f32)>>,
    /// The float model's resolved architecture.
    #[module(skip)]
    pub arch: Architecture,
    /// Class names.
    #[module(skip)]
    pub names: Vec<String>,
}

impl QuantModel {
    /// The float model as a deployed graph: nothing quantized yet, BN not folded. Needs a model
    /// built from an [`Architecture`].
    pub fn from_model(model: &YoloModel) -> Result<Self, QuantError> {
        let arch = model.arch.clone().ok_or(QuantError::NoArchitecture)?;
        let lowered = lower(model)?;
        let n = lowered.graph.num_values();
        let d = &model.detect;
        let head = Detect { m: Vec::new(), nc: d.nc, na: d.na, anchors: d.anchors.clone(), strides: d.strides.clone() };
        let placement = place(&lowered.graph, &vec![false; lowered.convs.len()]);
        Ok(QuantModel {
            convs: lowered.convs,
            acts: Vec::new(),
            head,
            graph: lowered.graph,
            placement,
            act_grid: Grid { symmetric: false, bits: 8 },
            observer_momentum: None,
            value_ranges: vec![None; n],
            arch,
            names: model.names.clone(),
        })
    }

    /// Names of the convs (`model.2.m.0.cv1`, …), in graph order.
    pub fn conv_names(&self) -> Vec<String> {
        self.convs.iter().map(|c| c.name.clone()).collect()
    }

    /// Which convs are quantized.
    pub fn quantized(&self) -> Vec<bool> {
        self.convs.iter().map(|c| c.quantized).collect()
    }

    /// Sets the calibrated range of every value (see [`super::calibrate()`]).
    pub fn with_value_ranges(mut self, ranges: Vec<Option<(f32, f32)>>, grid: Grid) -> Self {
        self.value_ranges = ranges;
        self.act_grid = grid;
        self
    }

    /// Quantizes exactly the convs flagged in `quantized` (weights, and by the placement rules their
    /// inputs and outputs); each activation quantizer covers the envelope of its members' calibrated
    /// ranges. Errors when a quantized value was never calibrated.
    pub fn with_quantized(mut self, quantized: &[bool]) -> Result<Self, QuantError> {
        if quantized.len() != self.convs.len() {
            return Err(QuantError::Graph(format!(
                "{} quantization flags for {} convs",
                quantized.len(),
                self.convs.len()
            )));
        }
        let placement = place(&self.graph, quantized);
        let device = self.head.devices().first().cloned().unwrap_or_else(|| self.device());
        let mut acts = Vec::with_capacity(placement.num_groups());
        for members in &placement.members {
            let mut range: Option<(f32, f32)> = None;
            for &v in members {
                if let Some((lo, hi)) = self.value_ranges.get(v).copied().flatten() {
                    range = Some(range.map_or((lo, hi), |(a, b)| (a.min(lo), b.max(hi))));
                }
            }
            let (lo, hi) = range.ok_or_else(|| {
                QuantError::Graph(format!("value {} has no calibrated range: calibrate before quantizing", members[0]))
            })?;
            acts.push(ActQuant::new(lo, hi, &device));
        }
        for (c, &q) in self.convs.iter_mut().zip(quantized) {
            c.quantized = q;
        }
        self.acts = acts;
        self.placement = placement;
        Ok(self)
    }

    fn device(&self) -> Device {
        self.convs.first().map(|c| c.conv.weight.device()).unwrap_or_default()
    }

    /// Folds every BN into its conv with the running statistics (what PTQ and int8 export use).
    pub fn fold_bn(mut self) -> Self {
        self.convs = self.convs.into_iter().map(QConv::fold).collect();
        self
    }

    /// QAT: freezes (`true`) or releases BN statistics (see [`QConv`]).
    pub fn with_bn_frozen(mut self, frozen: bool) -> Self {
        for c in &mut self.convs {
            c.bn_frozen = frozen;
        }
        self
    }

    /// QAT: EMA observers with this momentum update the activation ranges during training forward
    /// passes; `None` freezes them.
    pub fn with_observers(mut self, momentum: Option<f64>) -> Self {
        self.observer_momentum = momentum;
        self
    }

    /// QAT: makes every activation range a trainable parameter initialised from its current value.
    pub fn with_learnable_ranges(mut self) -> Self {
        for a in &mut self.acts {
            if a.learned.is_none() {
                a.learned = Some(Param::from_tensor(a.range.value()));
            }
        }
        self
    }

    /// Host-side parameters of every activation quantizer.
    pub fn act_qparams(&self) -> Vec<QParams> {
        self.acts
            .iter()
            .map(|a| {
                let (lo, hi) = a.host_range();
                QParams::from_range(lo, hi, self.act_grid)
            })
            .collect()
    }

    /// Raw outputs with simulated int8 arithmetic.
    pub fn forward_raw(&self, x: Tensor<4>) -> RawOutputs {
        self.run(x, None)
    }

    /// Runs the graph in float (no quantization at all), handing every value to `tap` (calibration).
    pub fn forward_tap(&self, x: Tensor<4>, tap: Tap<'_>) -> RawOutputs {
        self.run(x, Some(tap))
    }

    /// Which values the forward pass fake-quantizes: those with a quantizer, except the outputs of
    /// pass-through ops (concat, max-pool, upsample, space-to-depth) whose inputs all belong to the
    /// output's own group — already on its grid, so requantizing would change nothing.
    pub fn requantized(&self) -> Vec<bool> {
        let group = &self.placement.group;
        let mut out: Vec<bool> =
            (0..self.graph.num_values()).map(|v| group.get(v).copied().flatten().is_some()).collect();
        for (i, op) in self.graph.ops.iter().enumerate() {
            let pass_through =
                matches!(op, Op::Concat { .. } | Op::MaxPool { .. } | Op::Upsample { .. } | Op::SpaceToDepth { .. })
                    && op.inputs().iter().all(|&v| group.get(v) == group.get(i + 1));
            if pass_through {
                out[i + 1] = false;
            }
        }
        out
    }

    fn quantize_value(&self, v: ValueId, t: Tensor<4>, obs: &mut [Option<(Tensor<1>, Tensor<1>)>]) -> Tensor<4> {
        let Some(g) = self.placement.group.get(v).copied().flatten() else { return t };
        let a = &self.acts[g];
        if let Some(m) = self.observer_momentum
            && a.learned.is_none()
            && t.device().is_autodiff()
        {
            a.observe(&t, m, &mut obs[g]);
        }
        let (s, z) = range_qparams(a.current(), self.act_grid);
        fake_quant(t, s, z, self.act_grid)
    }

    fn run(&self, x: Tensor<4>, mut tap: Option<Tap<'_>>) -> RawOutputs {
        let last = self.graph.last_use();
        let requant = self.requantized();
        // Per group: the range before this pass and the envelope of its members so far (QAT observers).
        let mut obs: Vec<Option<(Tensor<1>, Tensor<1>)>> = vec![None; self.acts.len()];
        let mut table: Vec<Option<Tensor<4>>> = vec![None; self.graph.num_values()];
        let mut emit = |v: ValueId, t: Tensor<4>, table: &mut Vec<Option<Tensor<4>>>| {
            let t = match tap.as_mut() {
                Some(f) => {
                    f(v, &t);
                    t
                }
                None if requant[v] => self.quantize_value(v, t, &mut obs),
                None => t,
            };
            table[v] = Some(t);
        };
        emit(0, x, &mut table);
        for (i, op) in self.graph.ops.iter().enumerate() {
            let get = |v: ValueId| table[v].clone().expect("values are produced before they are read");
            let y = match op {
                Op::Conv { conv, input } => self.convs[*conv].forward(get(*input)),
                Op::Add { inputs } => get(inputs[0]) + get(inputs[1]),
                Op::Mul { inputs } => get(inputs[0]) * get(inputs[1]),
                Op::Concat { inputs } => Tensor::cat(inputs.iter().map(|&v| get(v)).collect(), 1),
                Op::MaxPool { k, input } => max_pool_same(get(*input), *k),
                Op::Upsample { scale, input } => upsample_nearest(get(*input), *scale),
                Op::SpaceToDepth { input } => space_to_depth(get(*input)),
                Op::GlobalMean { input } => get(*input).mean_dims(&[2, 3]),
            };
            for v in op.inputs() {
                if last[v] == Some(i) {
                    table[v] = None;
                }
            }
            emit(i + 1, y, &mut table);
        }
        self.graph
            .outputs
            .iter()
            .map(|&v| self.head.to_raw(table[v].clone().expect("Detect outputs are computed")))
            .collect()
    }
}

impl DetectionModel for QuantModel {
    fn forward(&self, x: Tensor<4>) -> DetectorOutput {
        let raw = self.forward_raw(x);
        DetectorOutput { decoded: self.head.decode(&raw), raw }
    }

    fn nc(&self) -> usize {
        self.head.nc
    }

    fn names(&self) -> &[String] {
        &self.names
    }

    fn max_stride(&self) -> usize {
        self.head.max_stride()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use yolo_compress_model::Architecture;

    #[test]
    fn ema_observer_tracks_the_envelope_of_a_group_within_a_pass() {
        let device = Device::flex();
        let a = ActQuant::new(0.0, 1.0, &device);
        let t = |v: [f32; 2]| Tensor::<1>::from_floats(v, &device).reshape([1, 1, 1, 2]);
        let mut obs = None;
        // First member of the pass: (1 − m)·start + m·[min, max].
        a.observe(&t([-1.0, 2.0]), 0.5, &mut obs);
        assert_eq!(a.host_range(), (-0.5, 1.5));
        // Second member: the same start, blended with the envelope of both members (not with the
        // first member's update, which would give (−0.25, 4.75)).
        a.observe(&t([0.0, 8.0]), 0.5, &mut obs);
        assert_eq!(a.host_range(), (-0.5, 4.5));
        // A new pass starts from the committed range.
        let mut obs = None;
        a.observe(&t([0.0, 0.5]), 0.5, &mut obs);
        assert_eq!(a.host_range(), (-0.25, 2.5));
    }

    #[test]
    fn float_graph_equals_the_model_for_every_builtin() {
        let device = Device::flex();
        for name in ["yolov5n.yaml", "yolov5s-ghost.yaml", "yolov5-ghostnet.yaml"] {
            let arch = Architecture::from_name_or_path(name).unwrap().with_classes(vec!["a".into(), "b".into()]);
            let model = arch.build(&device).unwrap();
            let x = Tensor::<4>::random([1, 3, 64, 64], burn::tensor::Distribution::Uniform(0.0, 1.0), &device);
            let want = model.forward(x.clone()).decoded.into_data().try_to_vec::<f32>().unwrap();
            let q = QuantModel::from_model(&model).unwrap();
            let got = DetectionModel::forward(&q, x.clone()).decoded.into_data().try_to_vec::<f32>().unwrap();
            let folded = DetectionModel::forward(&q.fold_bn(), x).decoded.into_data().try_to_vec::<f32>().unwrap();
            assert_eq!(want.len(), got.len());
            for ((a, b), f) in want.iter().zip(&got).zip(&folded) {
                let tol = 1e-4 * (1.0 + a.abs());
                assert!((a - b).abs() < tol && (a - f).abs() < tol, "{name}: {a} {b} {f}");
            }
        }
    }
}
