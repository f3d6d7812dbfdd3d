//! The correctness proof of the channel surgery: for every built-in model, pruning random units of
//! every group gives a model whose output equals the original model's output once, in the
//! original, the removed channels are masked where they are consumed (their input-weight slices
//! in every consuming conv set to zero). Concat offsets, residual groups, Ghost halves,
//! squeeze-excite gates and the Detect inputs are all on this path.

mod common;

use burn::prelude::*;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use yolo_compress_compress::prune::{PruneGraph, PrunePlan, Role, mask_model, prune_model};
use yolo_compress_model::{Architecture, YoloModel};

use common::randomize_bn;

fn raw_outputs(model: &YoloModel, x: Tensor<4>) -> Vec<Vec<f32>> {
    model.forward(x).raw.into_iter().map(|t| t.into_data().convert::<f32>().try_to_vec::<f32>().unwrap()).collect()
}

/// A random plan: every prunable group loses a random fraction (0..90 %) of its units, its first
/// unit always kept.
fn random_plan(pg: &PruneGraph, rng: &mut ChaCha8Rng) -> PrunePlan {
    let mut plan = pg.keep_all();
    for g in pg.groups.prunable() {
        let ratio: f64 = rng.random_range(0.0..0.9);
        for (i, &u) in g.units.iter().enumerate() {
            if i > 0 && !pg.groups.unit_fixed[u] && rng.random_bool(ratio) {
                plan.keep[u] = false;
            }
        }
    }
    plan
}

fn check_model(name: &str, seed: u64) {
    let device = Device::flex();
    device.seed(seed);
    let arch = Architecture::from_name_or_path(name).unwrap().with_classes(vec!["a".into(), "b".into()]);
    let mut model = arch.build(&device).unwrap();
    randomize_bn(&mut model, seed, &device);
    let pg = PruneGraph::new(&arch, &[]).unwrap();
    let prunable = pg.groups.prunable().count();
    assert!(prunable >= 10, "{name}: only {prunable} prunable groups");
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let plan = random_plan(&pg, &mut rng);
    let removed = plan.keep.iter().filter(|k| !**k).count();
    assert!(removed > 0);

    let pruned = prune_model(&model, &pg, &plan, &device).unwrap();
    let masked = mask_model(model.clone(), &pg, &plan, &[Role::Input], &device).unwrap();
    assert!(pruned.num_params() < model.num_params(), "{name}: pruning must remove parameters");
    assert_eq!(pruned.arch.as_ref().unwrap(), &pg.resized_arch(&plan));

    let x = Tensor::<4>::random([2, 3, 64, 64], burn::tensor::Distribution::Uniform(0.0, 1.0), &device);
    let a = raw_outputs(&pruned, x.clone());
    let b = raw_outputs(&masked, x.clone());
    let full = raw_outputs(&model, x);
    let mut max_err = 0.0f32;
    let mut max_diff_full = 0.0f32;
    for ((pa, pb), pf) in a.iter().zip(&b).zip(&full) {
        assert_eq!(pa.len(), pb.len());
        for ((&u, &v), &w) in pa.iter().zip(pb).zip(pf) {
            max_err = max_err.max((u - v).abs() / (1.0 + v.abs()));
            max_diff_full = max_diff_full.max((v - w).abs());
        }
    }
    assert!(max_err < 2e-4, "{name}: pruned vs masked differ by {max_err}");
    assert!(max_diff_full > 1e-3, "{name}: masking changed nothing ({max_diff_full}); the test would prove nothing");
    eprintln!(
        "{name}: {} groups ({prunable} prunable), {removed}/{} units removed, params {} → {}, max rel err {max_err:.2e}",
        pg.groups.groups.len(),
        plan.keep.len(),
        model.num_params(),
        pruned.num_params()
    );
}

#[test]
fn surgery_equals_masking_yolov5n() {
    check_model("yolov5n.yaml", 1);
}

#[test]
fn surgery_equals_masking_yolov5s() {
    check_model("yolov5s.yaml", 2);
}

#[test]
fn surgery_equals_masking_yolov5m() {
    check_model("yolov5m.yaml", 3);
}

#[test]
fn surgery_equals_masking_yolov5l() {
    check_model("yolov5l.yaml", 4);
}

#[test]
fn surgery_equals_masking_yolov5x() {
    check_model("yolov5x.yaml", 5);
}

#[test]
fn surgery_equals_masking_yolov5s_ghost() {
    check_model("yolov5s-ghost.yaml", 6);
}

#[test]
fn surgery_equals_masking_yolov5_ghostnet() {
    check_model("yolov5-ghostnet.yaml", 7);
}

/// A pruned model saved as a native checkpoint reloads with no YAML and gives the same outputs.
#[test]
fn pruned_checkpoint_reloads_exactly() {
    let device = Device::flex();
    device.seed(9);
    let arch = Architecture::from_name_or_path("yolov5s-ghost.yaml").unwrap().with_classes(vec!["x".into()]);
    let mut model = arch.build(&device).unwrap();
    randomize_bn(&mut model, 9, &device);
    let pg = PruneGraph::new(&arch, &[]).unwrap();
    let plan = random_plan(&pg, &mut ChaCha8Rng::seed_from_u64(9));
    let pruned = prune_model(&model, &pg, &plan, &device).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("p.safetensors");
    yolo_compress_model::weights::save_checkpoint(&pruned, &path, &Default::default()).unwrap();
    let (back, ck) = yolo_compress_model::weights::load_checkpoint(&path, &device).unwrap();
    assert_eq!(ck.arch, pg.resized_arch(&plan));
    let x = Tensor::<4>::random([1, 3, 64, 96], burn::tensor::Distribution::Uniform(0.0, 1.0), &device);
    assert_eq!(raw_outputs(&pruned, x.clone()), raw_outputs(&back, x));
}

/// Every tensor of every built-in model is described by the graph, except the ones pruning never
/// touches (Detect's anchors and output biases).
#[test]
fn the_graph_covers_every_tensor() {
    for name in ["yolov5n.yaml", "yolov5s-ghost.yaml", "yolov5-ghostnet.yaml"] {
        let arch = Architecture::from_name_or_path(name).unwrap();
        let model = arch.build(&Device::flex()).unwrap();
        let pg = PruneGraph::new(&arch, &[]).unwrap();
        let keys = yolo_compress_compress::prune::surgery::model_tensors(&model).unwrap();
        let described: std::collections::HashSet<&str> = pg.graph.uses().iter().map(|u| u.key.as_str()).collect();
        let detect = format!("model.{}.m.", arch.layers.len() - 1);
        for k in keys.keys() {
            let detect_fixed = k.ends_with(".anchors") || (k.starts_with(&detect) && k.ends_with(".bias"));
            assert!(described.contains(k.as_str()) || detect_fixed, "{name}: {k} is not in the graph");
        }
    }
}
