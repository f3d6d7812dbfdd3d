//! Importance criteria against naive re-computations from the raw tensors, and selection against
//! its contract (FLOPs target met, rounding, ranking).

use std::collections::HashMap;

use burn::prelude::*;
use yolo_compress_compress::prune::importance::Tensors;
use yolo_compress_compress::prune::select::flops_fraction;
use yolo_compress_compress::prune::surgery::model_tensors;
use yolo_compress_compress::prune::{
    Criterion, FlopsTarget, PruneGraph, Scope, TaylorAccumulator, plan_for_flops, plan_from_ratios, unit_scores,
};
use yolo_compress_model::Architecture;

fn setup() -> (PruneGraph, Tensors, Device) {
    let device = Device::flex();
    device.seed(11);
    let arch = Architecture::from_name_or_path("yolov5n.yaml").unwrap();
    let model = arch.build(&device).unwrap();
    let pg = PruneGraph::new(&arch, &[]).unwrap();
    (pg, model_tensors(&model).unwrap(), device)
}

/// Rows (dim 0) of a tensor.
fn rows(t: &Tensors, key: &str) -> Vec<Vec<f32>> {
    let (shape, v) = &t[key];
    let inner: usize = shape[1..].iter().product();
    v.chunks(inner).map(|c| c.to_vec()).collect()
}

/// The group whose first space is `label`, and the unit of each of its channels in that space.
fn units_of(pg: &PruneGraph, label: &str) -> Vec<usize> {
    let s = pg.graph.spaces().iter().position(|s| s.label == label).unwrap();
    let sp = &pg.graph.spaces()[s];
    (sp.first..sp.first + sp.width).map(|x| pg.groups.unit[x]).collect()
}

#[test]
fn l1_l2_bn_sum_over_every_member_of_a_residual_group() {
    let (pg, t, dev) = setup();
    let l1 = unit_scores(&pg, &t, Criterion::L1, None, &dev).unwrap();
    let l2 = unit_scores(&pg, &t, Criterion::L2, None, &dev).unwrap();
    let bn = unit_scores(&pg, &t, Criterion::Bn, None, &dev).unwrap();
    // Layer 2 is C3 with one residual bottleneck: cv1's outputs and m.0.cv2's outputs are one group.
    let units = units_of(&pg, "model.2.cv1");
    let a = rows(&t, "model.2.cv1.conv.weight");
    let b = rows(&t, "model.2.m.0.cv2.conv.weight");
    let ga = &t["model.2.cv1.bn.weight"].1;
    let gb = &t["model.2.m.0.cv2.bn.weight"].1;
    for (j, &u) in units.iter().enumerate() {
        let e1: f64 = a[j].iter().chain(&b[j]).map(|v| v.abs() as f64).sum();
        let e2: f64 = a[j].iter().chain(&b[j]).map(|v| (*v as f64).powi(2)).sum::<f64>().sqrt();
        let eb = (ga[j].abs() + gb[j].abs()) as f64 / 2.0;
        assert!((l1[u] - e1).abs() < 1e-9 * e1.max(1.0), "L1 unit {j}: {} vs {e1}", l1[u]);
        assert!((l2[u] - e2).abs() < 1e-9 * e2.max(1.0), "L2 unit {j}");
        assert!((bn[u] - eb).abs() < 1e-9, "BN unit {j}");
    }
    // A plain conv group (layer 0) is just its own filters.
    let units = units_of(&pg, "model.0");
    for (j, r) in rows(&t, "model.0.conv.weight").iter().enumerate() {
        let e1: f64 = r.iter().map(|v| v.abs() as f64).sum();
        assert!((l1[units[j]] - e1).abs() < 1e-9 * e1.max(1.0));
    }
}

#[test]
fn fpgm_is_the_sum_of_distances_to_the_other_filters() {
    let (pg, t, dev) = setup();
    let s = unit_scores(&pg, &t, Criterion::Fpgm, None, &dev).unwrap();
    for (label, keys) in [
        ("model.0", vec!["model.0.conv.weight"]),
        ("model.2.cv1", vec!["model.2.cv1.conv.weight", "model.2.m.0.cv2.conv.weight"]),
    ] {
        let units = units_of(&pg, label);
        let vecs: Vec<Vec<f64>> = (0..units.len())
            .map(|j| keys.iter().flat_map(|k| rows(&t, k)[j].clone()).map(|v| v as f64).collect())
            .collect();
        for j in 0..units.len() {
            let e: f64 = (0..units.len())
                .map(|k| vecs[j].iter().zip(&vecs[k]).map(|(a, b)| (a - b).powi(2)).sum::<f64>().sqrt())
                .sum();
            let got = s[units[j]];
            assert!((got - e).abs() < 2e-3 * e, "{label} unit {j}: {got} vs {e}");
        }
    }
}

#[test]
fn taylor_squares_the_per_batch_sum_of_weight_times_gradient() {
    let (pg, t, dev) = setup();
    // Fake gradients: g = 2w for batch 1 and g = −w for batch 2, so Σ(g·w) is 2S and −S with
    // S = Σ w² over the unit's filters, BN γ and β; the score is ((2S)² + S²) / 2.
    let scaled = |f: f32| -> Tensors {
        t.iter().map(|(k, (s, v))| (k.clone(), (s.clone(), v.iter().map(|x| x * f).collect()))).collect()
    };
    let mut acc = TaylorAccumulator::default();
    acc.add_batch(&pg, &t, &scaled(2.0)).unwrap();
    acc.add_batch(&pg, &t, &scaled(-1.0)).unwrap();
    let s = unit_scores(&pg, &t, Criterion::Taylor, Some(&acc), &dev).unwrap();
    let units = units_of(&pg, "model.2.cv1");
    for (j, &u) in units.iter().enumerate() {
        let mut sq = 0.0f64;
        for k in ["model.2.cv1.conv.weight", "model.2.m.0.cv2.conv.weight"] {
            sq += rows(&t, k)[j].iter().map(|v| (*v as f64).powi(2)).sum::<f64>();
        }
        for k in
            ["model.2.cv1.bn.weight", "model.2.cv1.bn.bias", "model.2.m.0.cv2.bn.weight", "model.2.m.0.cv2.bn.bias"]
        {
            sq += (t[k].1[j] as f64).powi(2);
        }
        let e = (4.0 * sq * sq + sq * sq) / 2.0;
        assert!((s[u] - e).abs() < 1e-6 * e, "unit {j}: {} vs {e}", s[u]);
    }
    assert!(unit_scores(&pg, &t, Criterion::Taylor, None, &dev).is_err(), "Taylor without gradients is an error");
}

#[test]
fn selection_keeps_the_best_units_and_meets_the_flops_target() {
    let (pg, t, dev) = setup();
    let l1 = unit_scores(&pg, &t, Criterion::L1, None, &dev).unwrap();
    // Per-group ratio 0.5: the kept units are exactly the top half by score.
    let ratios = vec![0.5; pg.groups.groups.len()];
    let plan = plan_from_ratios(&pg, &l1, &ratios, 8);
    for g in pg.groups.prunable() {
        let kept: Vec<usize> = g.units.iter().copied().filter(|&u| plan.keep[u]).collect();
        let n = g.units.len();
        let expect = if n <= 8 { n } else { ((n as f64 * 0.5 / 8.0).round() as usize * 8).max(8) };
        assert_eq!(kept.len(), expect, "{}", g.label);
        let worst_kept = kept.iter().map(|&u| l1[u]).fold(f64::INFINITY, f64::min);
        let best_removed = g.units.iter().filter(|&&u| !plan.keep[u]).map(|&u| l1[u]).fold(f64::NEG_INFINITY, f64::max);
        assert!(worst_kept >= best_removed, "{}: a better unit was removed", g.label);
    }
    // FLOPs targets, uniform and global, at several fractions.
    for scope in [Scope::Uniform, Scope::Global, Scope::Raw] {
        for target in [0.3, 0.5, 0.75] {
            let ft = FlopsTarget { fraction: target, scope, round_to: 8, imgsz: 320, layer_ratios: HashMap::new() };
            let (plan, f) = plan_for_flops(&pg, &l1, &ft).unwrap();
            assert!(f <= target + 1e-12, "{scope:?} {target}: kept {f}");
            assert!(f > target - 0.12, "{scope:?} {target}: overshoot to {f}");
            assert!((flops_fraction(&pg, &plan, 320) - f).abs() < 1e-12);
        }
    }
    // Layers held at a fixed ratio are left out of the search.
    let mut layer_ratios = HashMap::new();
    layer_ratios.insert(0usize, 0.0);
    let ft = FlopsTarget { fraction: 0.5, scope: Scope::Uniform, round_to: 8, imgsz: 320, layer_ratios };
    let (plan, _) = plan_for_flops(&pg, &l1, &ft).unwrap();
    assert!(units_of(&pg, "model.0").iter().all(|&u| plan.keep[u]));
    // Unreachable targets are a clear error.
    let ft =
        FlopsTarget { fraction: 0.001, scope: Scope::Uniform, round_to: 8, imgsz: 320, layer_ratios: HashMap::new() };
    let err = plan_for_flops(&pg, &l1, &ft).unwrap_err().to_string();
    assert!(err.contains("cannot be reached"), "{err}");
}

#[test]
fn never_pruned_layers_and_fixed_channels() {
    let arch = Architecture::from_name_or_path("yolov5n.yaml").unwrap();
    let pg = PruneGraph::new(&arch, &[2]).unwrap();
    let units = units_of(&pg, "model.2.cv1");
    assert!(units.iter().all(|&u| pg.groups.unit_fixed[u]), "layer 2 was asked never to be pruned");
    // A plan that removes a fixed unit is refused.
    let mut plan = pg.keep_all();
    plan.keep[units[0]] = false;
    assert!(pg.check(&plan).unwrap_err().to_string().contains("fixed"));
    // The image channels are always fixed; Detect creates no space.
    let img = pg.graph.spaces().iter().position(|s| s.label == "image").unwrap();
    let sp = &pg.graph.spaces()[img];
    assert!((sp.first..sp.first + sp.width).all(|x| pg.groups.unit_fixed[pg.groups.unit[x]]));
    assert!(pg.graph.spaces().iter().all(|s| !s.label.starts_with("model.24")));
}
