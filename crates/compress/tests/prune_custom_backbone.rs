//! The surgery proof of `prune_surgery.rs` for a detector on a user's own backbone: a backbone built
//! from the model crate's blocks (Conv, residual C3s, a concatenation, an explicit residual add,
//! SPPF) describes its channels through `PrunableBackbone`; pruning random units of every group
//! gives a detector whose output equals the original one's once the removed channels are masked
//! where they are consumed. Also: the generic path on a `YoloModel` agrees with the architecture
//! path.

use burn::prelude::*;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use yolo_compress_compress::prune::surgery::model_tensors;
use yolo_compress_compress::prune::{
    ChannelDeps, ChannelGraph, Channels, DetectorGraph, PlanGraph, PrunableBackbone, PruneGraph, PrunePlan, Role, key,
    mask_detector, prune_detector, prune_model, under,
};
use yolo_compress_model::blocks::{C3, C3Config, Conv, ConvConfig, Sppf, SppfConfig};
use yolo_compress_model::neck::{NeckConfig, yolov5_pan_neck};
use yolo_compress_model::state::{NamedTensors, Slot, TensorVisitor, join};
use yolo_compress_model::{Architecture, Backbone, Detector, FeatureSpec, WeightsError};

/// P3 = cat(c3b(x3), side(x3)) at /8, P4 = y + mix4(y) with y = down4(P3) at /16, P5 = SPPF at /32.
#[derive(Module, Debug)]
struct TestBackbone {
    stem: Conv,
    down2: Conv,
    c3a: C3,
    down3: Conv,
    c3b: C3,
    side: Conv,
    down4: Conv,
    mix4: Conv,
    down5: Conv,
    sppf: Sppf,
}

impl TestBackbone {
    fn new(c: usize, device: &Device) -> Self {
        let conv = |c1, c2, k, s| ConvConfig::new(c1, c2).with_k(k).with_s(s).init(device);
        TestBackbone {
            stem: conv(3, c, 3, 2),
            down2: conv(c, 2 * c, 3, 2),
            c3a: C3Config::new(2 * c, 2 * c).init(device),
            down3: conv(2 * c, 4 * c, 3, 2),
            c3b: C3Config::new(4 * c, 4 * c).with_n(2).init(device),
            side: conv(4 * c, 2 * c, 1, 1),
            down4: conv(6 * c, 8 * c, 3, 2),
            mix4: conv(8 * c, 8 * c, 3, 1),
            down5: conv(8 * c, 16 * c, 3, 2),
            sppf: SppfConfig::new(16 * c, 16 * c).init(device),
        }
    }

    fn names() -> [&'static str; 10] {
        ["stem", "down2", "c3a", "down3", "c3b", "side", "down4", "mix4", "down5", "sppf"]
    }
}

impl NamedTensors for TestBackbone {
    fn visit_tensors(&mut self, prefix: &str, v: &mut dyn TensorVisitor) -> Result<(), WeightsError> {
        let [stem, down2, c3a, down3, c3b, side, down4, mix4, down5, sppf] = Self::names().map(|n| join(prefix, n));
        self.stem.visit_tensors(&stem, v)?;
        self.down2.visit_tensors(&down2, v)?;
        self.c3a.visit_tensors(&c3a, v)?;
        self.down3.visit_tensors(&down3, v)?;
        self.c3b.visit_tensors(&c3b, v)?;
        self.side.visit_tensors(&side, v)?;
        self.down4.visit_tensors(&down4, v)?;
        self.mix4.visit_tensors(&mix4, v)?;
        self.down5.visit_tensors(&down5, v)?;
        self.sppf.visit_tensors(&sppf, v)
    }
}

impl Backbone for TestBackbone {
    fn features(&self) -> Vec<FeatureSpec> {
        vec![
            FeatureSpec { channels: self.c3b.out_channels() + self.side.out_channels(), stride: 8 },
            FeatureSpec { channels: self.mix4.out_channels(), stride: 16 },
            FeatureSpec { channels: self.sppf.cv2.out_channels(), stride: 32 },
        ]
    }

    fn forward(&self, x: Tensor<4>) -> Vec<Tensor<4>> {
        let x = self.c3a.forward(self.down2.forward(self.stem.forward(x)));
        let x3 = self.down3.forward(x);
        let p3 = Tensor::cat(vec![self.c3b.forward(x3.clone()), self.side.forward(x3)], 1);
        let y = self.down4.forward(p3.clone());
        let p4 = y.clone() + self.mix4.forward(y);
        let p5 = self.sppf.forward(self.down5.forward(p4.clone()));
        vec![p3, p4, p5]
    }

    fn macs(&self, _height: usize, _width: usize) -> f64 {
        0.0
    }
}

impl PrunableBackbone for TestBackbone {
    fn channels(&self, g: &mut ChannelGraph, prefix: &str, image: &Channels) -> Vec<Channels> {
        let [stem, down2, c3a, down3, c3b, side, down4, mix4, down5, sppf] = Self::names().map(|n| key(prefix, n));
        let x = self.stem.channels(g, &stem, std::slice::from_ref(image));
        let x = self.down2.channels(g, &down2, &[x]);
        let x = self.c3a.channels(g, &c3a, &[x]);
        let x3 = self.down3.channels(g, &down3, &[x]);
        let a = self.c3b.channels(g, &c3b, std::slice::from_ref(&x3));
        let p3 = Channels::concat([&a, &self.side.channels(g, &side, &[x3])]);
        let y = self.down4.channels(g, &down4, std::slice::from_ref(&p3));
        let m = self.mix4.channels(g, &mix4, std::slice::from_ref(&y));
        g.tie(&y, &m, "P4 residual");
        let x5 = self.down5.channels(g, &down5, std::slice::from_ref(&y));
        let p5 = self.sppf.channels(g, &sppf, &[x5]);
        vec![p3, y, p5]
    }

    fn resized(&self, width: &dyn Fn(&str) -> usize, _device: &Device) -> Self {
        let [stem, down2, c3a, down3, c3b, side, down4, mix4, down5, sppf] = Self::names().map(|n| under(width, n));
        let stem = self.stem.resized(&[3], &stem);
        let down2 = self.down2.resized(&[stem.out_channels()], &down2);
        let c3a = self.c3a.resized(&[down2.out_channels()], &c3a);
        let down3 = self.down3.resized(&[c3a.out_channels()], &down3);
        let c3b = self.c3b.resized(&[down3.out_channels()], &c3b);
        let side = self.side.resized(&[down3.out_channels()], &side);
        let down4 = self.down4.resized(&[c3b.out_channels() + side.out_channels()], &down4);
        let mix4 = self.mix4.resized(&[down4.out_channels()], &mix4);
        let down5 = self.down5.resized(&[down4.out_channels()], &down5);
        let sppf = self.sppf.resized(&[down5.out_channels()], &sppf);
        TestBackbone { stem, down2, c3a, down3, c3b, side, down4, mix4, down5, sppf }
    }
}

fn detector(device: &Device) -> Detector<TestBackbone> {
    let backbone = TestBackbone::new(8, device);
    let neck = yolov5_pan_neck(&backbone.features(), &NeckConfig::yolov5(2, 0.33, 0.25)).unwrap();
    Detector::new(backbone, &neck, vec!["a".into(), "b".into()], device).unwrap()
}

/// Random BN statistics and affine parameters (BN must not be the identity for the proof to bite).
fn random_bn<B: Backbone>(model: &mut Detector<B>, seed: u64, device: &Device) {
    struct Bn<'a>(ChaCha8Rng, &'a Device);
    impl TensorVisitor for Bn<'_> {
        fn visit(&mut self, key: &str, mut slot: Slot<'_>) -> Result<(), WeightsError> {
            if key.contains(".bn.") && matches!(slot, Slot::Param1(_) | Slot::Running(_)) {
                let positive = key.ends_with("running_var") || key.ends_with("bn.weight");
                let (lo, hi) = if positive { (0.5, 1.5) } else { (-0.3, 0.3) };
                let n = slot.shape()[0];
                let v = (0..n).map(|_| self.0.random_range(lo..hi)).collect();
                slot.set(v, self.1);
            }
            Ok(())
        }
    }
    model.visit_tensors("model", &mut Bn(ChaCha8Rng::seed_from_u64(seed), device)).unwrap();
}

/// Every prunable group keeps its first unit and each other one with a probability drawn per group.
fn draw_plan(graph: &impl PlanGraph, seed: u64) -> PrunePlan {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let groups = graph.unit_groups();
    let mut plan = graph.keep_all();
    for group in groups.prunable() {
        let keep_p: f64 = rng.random_range(0.1..1.0);
        for &u in group.units.iter().skip(1).filter(|&&u| !groups.unit_fixed[u]) {
            plan.keep[u] = rng.random_bool(keep_p);
        }
    }
    plan
}

fn raw<B: Backbone>(model: &Detector<B>, x: Tensor<4>) -> Vec<f32> {
    model.forward(x).raw.into_iter().flat_map(|t| t.into_data().convert::<f32>().try_to_vec::<f32>().unwrap()).collect()
}

/// Largest `|a − b| / (1 + |b|)`.
fn max_rel(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter().zip(b).map(|(u, v)| (u - v).abs() / (1.0 + v.abs())).fold(0.0, f32::max)
}

#[test]
fn custom_backbone_surgery_equals_masking() {
    let device = Device::flex();
    device.seed(11);
    let mut model = detector(&device);
    random_bn(&mut model, 11, &device);
    let dg = DetectorGraph::new(&model, &[]).unwrap();

    // The couplings inside the backbone: C3 residual chains, the explicit P4 add, the concat.
    let group_of = |label: &str| {
        let s = dg.labelled(label).unwrap_or_else(|| panic!("no space {label}"));
        dg.groups.space_group[s]
    };
    assert_eq!(group_of("model.c3a.cv1"), group_of("model.c3a.m.0.cv2"), "C3 residual");
    assert_eq!(group_of("model.c3b.m.0.cv2"), group_of("model.c3b.m.1.cv2"), "C3 residual chain");
    assert_eq!(group_of("model.down4"), group_of("model.mix4"), "P4 residual add");
    let down4_input = dg.graph.uses().iter().find(|u| u.key == "model.down4.conv.weight" && u.dim == 1).unwrap();
    let concat: Vec<usize> = ["model.c3b.cv3", "model.side"].map(|l| dg.labelled(l).unwrap()).to_vec();
    assert_eq!(down4_input.channels.0, concat, "down4 reads the concatenation, in order");
    let prunable = dg.groups.prunable().count();
    assert!(prunable >= 15, "only {prunable} prunable groups");

    // Every tensor is described, except Detect's anchors and output biases (never pruned).
    let detect = format!("model.{}.", dg.offset + dg.neck.len() - 1);
    let described: std::collections::HashSet<&str> = dg.graph.uses().iter().map(|u| u.key.as_str()).collect();
    for k in model_tensors(&model).unwrap().keys() {
        let fixed = k.starts_with(&detect) && (k.ends_with(".anchors") || k.ends_with(".bias"));
        assert!(described.contains(k.as_str()) || fixed, "{k} is not in the graph");
    }

    let plan = draw_plan(&dg, 11);
    let removed = plan.keep.iter().filter(|k| !**k).count();
    let pruned = prune_detector(&model, &dg, &plan, &device).unwrap();
    let masked = mask_detector(model.clone(), &dg, &plan, &[Role::Input], &device).unwrap();
    assert!(pruned.num_params() < model.num_params(), "pruning must remove parameters");
    assert_eq!(pruned.neck_specs, dg.resized_neck(&plan));
    assert_eq!(pruned.backbone.features()[0].channels, dg.width(&dg.features[0], &plan));

    let x = Tensor::<4>::random([2, 3, 64, 64], burn::tensor::Distribution::Uniform(0.0, 1.0), &device);
    let (a, b, full) = (raw(&pruned, x.clone()), raw(&masked, x.clone()), raw(&model, x));
    let err = max_rel(&a, &b);
    let masking = max_rel(&b, &full);
    assert!(err < 2e-4, "pruned vs masked differ by {err}");
    assert!(masking > 1e-3, "masking changed nothing ({masking}); the test would prove nothing");
    eprintln!(
        "custom backbone: {} groups ({prunable} prunable), {removed}/{} units removed, params {} → {}, max rel err \
         {err:.2e}",
        dg.groups.groups.len(),
        plan.keep.len(),
        model.num_params(),
        pruned.num_params()
    );

    // The pruned detector is prunable again (its description still fits its tensors).
    let again = DetectorGraph::new(&pruned, &[]).unwrap();
    let twice = prune_detector(&pruned, &again, &again.keep_all(), &device).unwrap();
    assert_eq!(raw(&twice, Tensor::ones([1, 3, 32, 32], &device)), raw(&pruned, Tensor::ones([1, 3, 32, 32], &device)));
}

/// A fused detector or another detector's graph is refused.
#[test]
fn custom_backbone_mismatches_are_errors() {
    let device = Device::flex();
    let model = detector(&device);
    let dg = DetectorGraph::new(&model, &[]).unwrap();
    let plan = dg.keep_all();
    let fused = model.clone().fuse();
    let err = prune_detector(&fused, &dg, &plan, &device).unwrap_err().to_string();
    assert!(err.contains("fused"), "{err}");
    let mut other = model.clone();
    other.neck_specs.pop();
    assert!(prune_detector(&other, &dg, &plan, &device).is_err());
}

/// On a `YoloModel`, the generic path (its `GraphBackbone` as a `PrunableBackbone`) gives the graph
/// and the pruned model of the architecture path.
#[test]
fn yolo_model_generic_path_equals_architecture_path() {
    let device = Device::flex();
    device.seed(12);
    let arch = Architecture::from_name_or_path("yolov5n.yaml").unwrap().with_classes(vec!["a".into()]);
    let mut model = arch.build(&device).unwrap();
    random_bn(&mut model, 12, &device);
    let pg = PruneGraph::new(&arch, &[3]).unwrap();
    let dg = DetectorGraph::new(&model, &[3]).unwrap();
    assert_eq!(dg.graph.uses(), pg.graph.uses());
    assert_eq!(dg.groups.groups, pg.groups.groups);
    assert_eq!(dg.groups.unit_fixed, pg.groups.unit_fixed);

    let plan = draw_plan(&pg, 12);
    let by_arch = prune_model(&model, &pg, &plan, &device).unwrap();
    let generic = prune_detector(&model, &dg, &plan, &device).unwrap();
    let resized = pg.resized_arch(&plan);
    let nb = arch.backbone_len;
    assert_eq!(generic.backbone.specs, resized.layers[..nb]);
    assert_eq!(generic.neck_specs, resized.layers[nb..]);
    let shapes = |m: &yolo_compress_model::YoloModel| {
        let mut t: Vec<(String, Vec<usize>)> =
            model_tensors(m).unwrap().into_iter().map(|(k, (s, _))| (k, s)).collect();
        t.sort();
        t
    };
    assert_eq!(shapes(&generic), shapes(&by_arch));
    let x = Tensor::<4>::random([1, 3, 64, 64], burn::tensor::Distribution::Uniform(0.0, 1.0), &device);
    assert_eq!(raw(&generic, x.clone()), raw(&by_arch, x));
}
