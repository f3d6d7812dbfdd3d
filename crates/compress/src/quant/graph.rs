//! The deployed graph of a YOLOv5 model: its blocks lowered to the operations an int8 inference
//! engine runs (convolutions with folded BN, adds, concats, pools, upsampling), and the placement
//! of activation quantizers on that graph.
//!
//! Value `0` is the image; operation `i` produces value `i + 1`.
//!
//! Placement (what TensorRT / TFLite int8 engines require, and NVIDIA's YOLOv5 QAT recipe does):
//! - every input and output of a quantized conv is an int8 tensor;
//! - all inputs of a concat and its output share one scale (the concat is a copy);
//! - both inputs of a residual add share one scale;
//! - max-pooling, upsampling and space-to-depth pass their input's scale through.
//!
//! Values tied by these rules form a group with one quantizer; a group is quantized as soon as one
//! member must be. Convs that stay in float (Detect's output convs by default, excluded layers) read
//! and write float tensors unless a tie makes them int8.

use serde::{Deserialize, Serialize};
use yolo_compress_model::YoloModel;
use yolo_compress_model::blocks::{Bottleneck, C3Inner, Conv, GhostBottleneck, GhostConv, GhostNetBottleneck};
use yolo_compress_model::layer::Layer;

use super::qconv::{Act, QConv};
use crate::error::QuantError;

/// Index of a value (tensor) of the graph.
pub type ValueId = usize;

/// One operation; operation `i` produces value `i + 1`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Op {
    /// `convs[conv]` applied to `input`.
    Conv {
        /// Index into the conv list.
        conv: usize,
        /// Input value.
        input: ValueId,
    },
    /// Element-wise sum (residual connection).
    Add {
        /// The two summands.
        inputs: [ValueId; 2],
    },
    /// Element-wise product with a broadcast `[B, C, 1, 1]` gate (squeeze-excite).
    Mul {
        /// The feature map and the gate.
        inputs: [ValueId; 2],
    },
    /// Channel concatenation.
    Concat {
        /// Parts in order.
        inputs: Vec<ValueId>,
    },
    /// Max pooling, stride 1, padding `k / 2`.
    MaxPool {
        /// Kernel.
        k: usize,
        /// Input.
        input: ValueId,
    },
    /// Nearest upsampling.
    Upsample {
        /// Factor.
        scale: usize,
        /// Input.
        input: ValueId,
    },
    /// Focus' space-to-depth.
    SpaceToDepth {
        /// Input.
        input: ValueId,
    },
    /// Global average pooling to `[B, C, 1, 1]`.
    GlobalMean {
        /// Input.
        input: ValueId,
    },
}

impl Op {
    /// The values the operation reads.
    pub fn inputs(&self) -> Vec<ValueId> {
        match self {
            Op::Conv { input, .. }
            | Op::MaxPool { input, .. }
            | Op::Upsample { input, .. }
            | Op::SpaceToDepth { input }
            | Op::GlobalMean { input } => vec![*input],
            Op::Add { inputs } | Op::Mul { inputs } => inputs.to_vec(),
            Op::Concat { inputs } => inputs.clone(),
        }
    }
}

/// The operations of a model and where its outputs are.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct QGraph {
    /// Operations in execution order.
    pub ops: Vec<Op>,
    /// Values of Detect's output convs, one per level (`[B, na·(nc+5), ny, nx]`).
    pub outputs: Vec<ValueId>,
    /// The value produced by each model layer (`model.i`), Detect excluded.
    pub layer_values: Vec<ValueId>,
}

impl QGraph {
    /// Number of values (image included).
    pub fn num_values(&self) -> usize {
        self.ops.len() + 1
    }

    /// Last operation index reading each value (`None` for unread values); outputs count as read
    /// at the end.
    pub fn last_use(&self) -> Vec<Option<usize>> {
        let mut last = vec![None; self.num_values()];
        for (i, op) in self.ops.iter().enumerate() {
            for v in op.inputs() {
                last[v] = Some(i);
            }
        }
        for &v in &self.outputs {
            last[v] = Some(usize::MAX);
        }
        last
    }
}

/// A model lowered to its deployed graph.
pub struct Lowered {
    /// The graph.
    pub graph: QGraph,
    /// Its convolutions (BN not yet folded, weights not quantized).
    pub convs: Vec<QConv>,
}

struct Builder {
    ops: Vec<Op>,
    convs: Vec<QConv>,
}

impl Builder {
    fn push(&mut self, op: Op) -> ValueId {
        self.ops.push(op);
        self.ops.len()
    }

    fn conv(&mut self, c: &Conv, name: String, input: ValueId) -> ValueId {
        let act = if c.act { Act::Silu } else { Act::Identity };
        self.raw(QConv::new(c.conv.clone(), c.bn.clone(), act, name), input)
    }

    fn raw(&mut self, q: QConv, input: ValueId) -> ValueId {
        self.convs.push(q);
        let conv = self.convs.len() - 1;
        self.push(Op::Conv { conv, input })
    }

    fn bottleneck(&mut self, b: &Bottleneck, p: &str, x: ValueId) -> ValueId {
        let y = self.conv(&b.cv1, format!("{p}.cv1"), x);
        let y = self.conv(&b.cv2, format!("{p}.cv2"), y);
        if b.add { self.push(Op::Add { inputs: [x, y] }) } else { y }
    }

    fn ghost_conv(&mut self, g: &GhostConv, p1: String, p2: String, x: ValueId) -> ValueId {
        let y = self.conv(&g.cv1, p1, x);
        let z = self.conv(&g.cv2, p2, y);
        self.push(Op::Concat { inputs: vec![y, z] })
    }

    fn shortcut(&mut self, sc: &Option<(Conv, Conv)>, p: &str, x: ValueId) -> ValueId {
        match sc {
            Some((dw, pw)) => {
                let s = self.conv(dw, format!("{p}.shortcut.0"), x);
                self.conv(pw, format!("{p}.shortcut.1"), s)
            }
            None => x,
        }
    }

    fn ghost_bottleneck(&mut self, b: &GhostBottleneck, p: &str, x: ValueId) -> ValueId {
        let mut y = self.ghost_conv(&b.ghost1, format!("{p}.conv.0.cv1"), format!("{p}.conv.0.cv2"), x);
        if let Some(dw) = &b.dw {
            y = self.conv(dw, format!("{p}.conv.1"), y);
        }
        let y = self.ghost_conv(&b.ghost2, format!("{p}.conv.2.cv1"), format!("{p}.conv.2.cv2"), y);
        let s = self.shortcut(&b.shortcut, p, x);
        self.push(Op::Add { inputs: [y, s] })
    }

    fn ghostnet_bottleneck(&mut self, b: &GhostNetBottleneck, p: &str, x: ValueId) -> ValueId {
        let g1 = &b.ghost1.ghost;
        let mut y = self.ghost_conv(g1, format!("{p}.conv.0.primary_conv"), format!("{p}.conv.0.cheap_operation"), x);
        if let Some(dw) = &b.dw {
            y = self.conv(dw, format!("{p}.conv.1"), y);
        }
        if let Some(se) = &b.se {
            let m = self.push(Op::GlobalMean { input: y });
            let r = QConv::new(se.conv_reduce.clone(), None, Act::Relu, format!("{p}.conv.2.conv_reduce"));
            let r = self.raw(r, m);
            let e = QConv::new(se.conv_expand.clone(), None, Act::Sigmoid, format!("{p}.conv.2.conv_expand"));
            let gate = self.raw(e, r);
            y = self.push(Op::Mul { inputs: [y, gate] });
        }
        let g2 = &b.ghost2.ghost;
        let y = self.ghost_conv(g2, format!("{p}.conv.3.primary_conv"), format!("{p}.conv.3.cheap_operation"), y);
        let s = self.shortcut(&b.shortcut, p, x);
        self.push(Op::Add { inputs: [y, s] })
    }

    fn layer(&mut self, layer: &Layer, p: &str, xs: &[ValueId]) -> ValueId {
        let x = xs[0];
        match layer {
            Layer::Conv(c) => self.conv(c, p.to_string(), x),
            Layer::Focus(f) => {
                let s = self.push(Op::SpaceToDepth { input: x });
                self.conv(&f.conv, format!("{p}.conv"), s)
            }
            Layer::Bottleneck(b) => self.bottleneck(b, p, x),
            Layer::C3(c) => {
                let mut y = self.conv(&c.cv1, format!("{p}.cv1"), x);
                for (j, inner) in c.m.iter().enumerate() {
                    let q = format!("{p}.m.{j}");
                    y = match inner {
                        C3Inner::Plain(b) => self.bottleneck(b, &q, y),
                        C3Inner::Ghost(b) => self.ghost_bottleneck(b, &q, y),
                    };
                }
                let z = self.conv(&c.cv2, format!("{p}.cv2"), x);
                let cat = self.push(Op::Concat { inputs: vec![y, z] });
                self.conv(&c.cv3, format!("{p}.cv3"), cat)
            }
            Layer::Spp(s) => {
                let y = self.conv(&s.cv1, format!("{p}.cv1"), x);
                let mut parts = vec![y];
                for &k in &s.k {
                    parts.push(self.push(Op::MaxPool { k, input: y }));
                }
                let cat = self.push(Op::Concat { inputs: parts });
                self.conv(&s.cv2, format!("{p}.cv2"), cat)
            }
            Layer::Sppf(s) => {
                let y = self.conv(&s.cv1, format!("{p}.cv1"), x);
                let mut parts = vec![y];
                for _ in 0..3 {
                    let last = *parts.last().expect("non-empty");
                    parts.push(self.push(Op::MaxPool { k: s.k, input: last }));
                }
                let cat = self.push(Op::Concat { inputs: parts });
                self.conv(&s.cv2, format!("{p}.cv2"), cat)
            }
            Layer::GhostConv(g) => self.ghost_conv(g, format!("{p}.cv1"), format!("{p}.cv2"), x),
            Layer::GhostBottleneck(b) => self.ghost_bottleneck(b, p, x),
            Layer::GhostNetBottleneck(b) => self.ghostnet_bottleneck(b, p, x),
            Layer::Upsample(s) => self.push(Op::Upsample { scale: *s, input: x }),
            Layer::Concat(_) => self.push(Op::Concat { inputs: xs.to_vec() }),
        }
    }
}

/// Lowers an architecture-built model (fused or not) to its deployed graph.
pub fn lower(model: &YoloModel) -> Result<Lowered, QuantError> {
    let mut b = Builder { ops: Vec::new(), convs: Vec::new() };
    let bb = &model.backbone.graph;
    let n_abs = model.shapes.len().max(bb.layers.len());
    let mut table: Vec<Option<ValueId>> = vec![None; n_abs.max(bb.offset + bb.layers.len())];
    let mut layer_values = Vec::new();
    let run = |graph: &yolo_compress_model::model::Graph,
               table: &mut Vec<Option<ValueId>>,
               b: &mut Builder,
               layer_values: &mut Vec<ValueId>|
     -> Result<(), QuantError> {
        for (j, layer) in graph.layers.iter().enumerate() {
            let i = graph.offset + j;
            let xs =
                graph.sources[j]
                    .iter()
                    .map(|s| match s {
                        None => Ok(0),
                        Some(s) => table.get(*s).copied().flatten().ok_or_else(|| {
                            QuantError::Graph(format!("layer {i} reads layer {s}, which has no output"))
                        }),
                    })
                    .collect::<Result<Vec<_>, _>>()?;
            let v = b.layer(layer, &format!("model.{i}"), &xs);
            if table.len() <= i {
                table.resize(i + 1, None);
            }
            table[i] = Some(v);
            layer_values.push(v);
        }
        Ok(())
    };
    run(bb, &mut table, &mut b, &mut layer_values)?;
    // The backbone's taps are addressed by the detector's own numbering.
    let tapped: Vec<Option<ValueId>> = model.backbone.taps.iter().map(|&t| table.get(t).copied().flatten()).collect();
    for (&abs, v) in model.taps.iter().zip(tapped) {
        if table.len() <= abs {
            table.resize(abs + 1, None);
        }
        table[abs] = v;
    }
    run(&model.neck, &mut table, &mut b, &mut layer_values)?;
    let det_index = model.neck.offset + model.neck.layers.len();
    let mut outputs = Vec::new();
    for (i, (&src, conv)) in model.detect_from.iter().zip(&model.detect.m).enumerate() {
        let x = table
            .get(src)
            .copied()
            .flatten()
            .ok_or_else(|| QuantError::Graph(format!("Detect reads layer {src}, which has no output")))?;
        let q = QConv::new(conv.clone(), None, Act::Identity, format!("model.{det_index}.m.{i}"));
        outputs.push(b.raw(q, x));
    }
    Ok(Lowered { graph: QGraph { ops: b.ops, outputs, layer_values }, convs: b.convs })
}

/// Which values carry an activation quantizer, and which quantizer.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Placement {
    /// Whether each conv's weights (and hence its input and output) are int8.
    pub quantized: Vec<bool>,
    /// Quantizer group of each value (`None` = float).
    pub group: Vec<Option<usize>>,
    /// Members of each group.
    pub members: Vec<Vec<ValueId>>,
}

impl Placement {
    /// Number of activation quantizers.
    pub fn num_groups(&self) -> usize {
        self.members.len()
    }
}

fn find(parent: &mut [usize], mut v: usize) -> usize {
    while parent[v] != v {
        parent[v] = parent[parent[v]];
        v = parent[v];
    }
    v
}

fn union(parent: &mut [usize], a: usize, b: usize) {
    let (ra, rb) = (find(parent, a), find(parent, b));
    if ra != rb {
        parent[ra.max(rb)] = ra.min(rb);
    }
}

/// Places activation quantizers for the given quantized convs (see the module docs).
pub fn place(graph: &QGraph, quantized: &[bool]) -> Placement {
    let n = graph.num_values();
    let mut parent: Vec<usize> = (0..n).collect();
    let mut needs = vec![false; n];
    for (i, op) in graph.ops.iter().enumerate() {
        let out = i + 1;
        match op {
            Op::Conv { conv, input } => {
                if quantized.get(*conv).copied().unwrap_or(false) {
                    needs[*input] = true;
                    needs[out] = true;
                }
            }
            Op::Add { inputs } => union(&mut parent, inputs[0], inputs[1]),
            Op::Concat { inputs } => {
                for &v in inputs {
                    union(&mut parent, v, out);
                }
            }
            Op::MaxPool { input, .. } | Op::Upsample { input, .. } | Op::SpaceToDepth { input } => {
                union(&mut parent, *input, out)
            }
            Op::Mul { .. } | Op::GlobalMean { .. } => {}
        }
    }
    let mut root_needs = vec![false; n];
    for (v, &need) in needs.iter().enumerate() {
        if need {
            let r = find(&mut parent, v);
            root_needs[r] = true;
        }
    }
    let mut group_of_root = vec![None; n];
    let mut members: Vec<Vec<ValueId>> = Vec::new();
    let mut group = vec![None; n];
    for (v, slot) in group.iter_mut().enumerate() {
        let r = find(&mut parent, v);
        if !root_needs[r] {
            continue;
        }
        let g = *group_of_root[r].get_or_insert_with(|| {
            members.push(Vec::new());
            members.len() - 1
        });
        members[g].push(v);
        *slot = Some(g);
    }
    Placement { quantized: quantized.to_vec(), group, members }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conv_op(conv: usize, input: ValueId) -> Op {
        Op::Conv { conv, input }
    }

    #[test]
    fn concat_and_add_share_one_quantizer() {
        // 0 image → c0 (v1) → c1 (v2) → add(v1, v2) (v3) → c2 (v4); cat(v3, v4) (v5) → c3 (v6)
        let graph = QGraph {
            ops: vec![
                conv_op(0, 0),
                conv_op(1, 1),
                Op::Add { inputs: [1, 2] },
                conv_op(2, 3),
                Op::Concat { inputs: vec![3, 4] },
                conv_op(3, 5),
            ],
            outputs: vec![6],
            layer_values: vec![],
        };
        let p = place(&graph, &[true, true, true, false]);
        // The add's inputs are tied together; the add output, the concat inputs and output are tied.
        assert_eq!(p.group[1], p.group[2]);
        assert_eq!(p.group[3], p.group[4]);
        assert_eq!(p.group[3], p.group[5]);
        assert_ne!(p.group[1], p.group[3]);
        assert!(p.group[0].is_some(), "the first conv's input (image) is int8");
        assert!(p.group[6].is_none(), "the float conv's output stays float");
        assert_eq!(p.num_groups(), 3);
        // Only the last conv quantized: its input group (the concat) and its output.
        let p = place(&graph, &[false, false, false, true]);
        assert!(p.group[0].is_none() && p.group[1].is_none() && p.group[2].is_none());
        assert!(p.group[3].is_some() && p.group[4] == p.group[3] && p.group[5] == p.group[3]);
        assert!(p.group[6].is_some());
    }
}
