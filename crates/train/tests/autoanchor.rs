//! AutoAnchor against reference numbers and on synthetic label sets.
//!
//! The figures in `anchor_fit_matches_numpy_reference` come from
//! `benches/peers/autoanchor_reference.py` (a NumPy re-computation of the metric in ultralytics
//! YOLOv5's `utils/autoanchor.py`, cross-checked there against the same expression in torch).

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use yolo_compress_train::autoanchor::{
    AnchorFit, DEFAULT_ANCHORS_PX, ImageLabels, SmallLabels, anchor_fit, anchor_fitness, check_anchor_order,
    check_anchors, kmean_anchors, label_wh, small_labels,
};

/// `BOXES` of the reference script (pixels).
const BOXES: [[f32; 2]; 30] = [
    [40.0, 52.0],
    [39.0, 51.0],
    [2.5, 3.0],
    [1.0, 40.0],
    [5.0, 7.0],
    [8.0, 8.0],
    [12.5, 30.25],
    [20.0, 18.0],
    [33.0, 23.0],
    [64.0, 32.0],
    [90.0, 60.0],
    [120.0, 240.0],
    [250.0, 200.0],
    [600.0, 500.0],
    [640.0, 10.0],
    [15.0, 300.0],
    [47.75, 61.5],
    [1500.0, 1300.0],
    [3.0, 3.0],
    [100.0, 100.0],
    [180.0, 45.0],
    [0.5, 0.5],
    [7.0, 90.0],
    [55.0, 55.0],
    [400.0, 120.0],
    [28.0, 14.0],
    [9.5, 3.25],
    [160.0, 480.0],
    [300.0, 620.0],
    [72.0, 110.0],
];

/// `SMALL` of the reference script.
const SMALL: [[f32; 2]; 3] = [[4.0, 5.0], [8.0, 6.0], [12.0, 14.0]];

/// Cluster centres (pixels) of the synthetic data, ascending by area like kmean_anchors' output.
const CENTRES: [[f32; 2]; 9] = [
    [8.0, 10.0],
    [20.0, 40.0],
    [45.0, 25.0],
    [40.0, 90.0],
    [90.0, 60.0],
    [80.0, 170.0],
    [160.0, 120.0],
    [220.0, 300.0],
    [450.0, 380.0],
];

/// `per_cluster` label sizes around each centre, each axis multiplied by a uniform factor in
/// [0.85, 1.15).
fn clustered(per_cluster: usize, seed: u64) -> Vec<[f32; 2]> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut wh = Vec::new();
    for c in CENTRES {
        for _ in 0..per_cluster {
            wh.push([c[0] * rng.random_range(0.85..1.15f32), c[1] * rng.random_range(0.85..1.15f32)]);
        }
    }
    wh
}

fn assert_fit(got: AnchorFit, bpr_count: usize, aat_count: usize, n: usize) {
    let n = n as f64;
    assert!((got.bpr - bpr_count as f64 / n).abs() < 1e-12, "bpr {} vs {bpr_count}/{n}", got.bpr);
    assert!((got.aat - aat_count as f64 / n).abs() < 1e-12, "aat {} vs {aat_count}/{n}", got.aat);
}

#[test]
fn anchor_fit_matches_numpy_reference() {
    // coco thr=4.0: bpr 23/30, aat 93/30, fitness 0.490308441 (box [9.5, 3.25] sits exactly on 1/4
    // against 10x13 and must not count).
    assert_fit(anchor_fit(&BOXES, &DEFAULT_ANCHORS_PX, 4.0), 23, 93, 30);
    assert!((anchor_fitness(&BOXES, &DEFAULT_ANCHORS_PX, 4.0) - 0.490308441).abs() < 1e-6);
    // coco thr=3.0: bpr 21/30, aat 70/30, fitness 0.470722753.
    assert_fit(anchor_fit(&BOXES, &DEFAULT_ANCHORS_PX, 3.0), 21, 70, 30);
    assert!((anchor_fitness(&BOXES, &DEFAULT_ANCHORS_PX, 3.0) - 0.470722753).abs() < 1e-6);
    // small thr=4.0: bpr 11/30, aat 20/30, fitness 0.186823693.
    assert_fit(anchor_fit(&BOXES, &SMALL, 4.0), 11, 20, 30);
    assert!((anchor_fitness(&BOXES, &SMALL, 4.0) - 0.186823693).abs() < 1e-6);
    // No labels: nothing to recall.
    assert_eq!(anchor_fit(&[], &DEFAULT_ANCHORS_PX, 4.0), AnchorFit { bpr: 0.0, aat: 0.0 });
}

#[test]
fn label_wh_letterboxes_and_scales_per_image() {
    let a = ImageLabels { width: 1280, height: 640, boxes_wh: vec![[0.5, 0.5], [0.1, 0.2]] };
    let empty = ImageLabels { width: 500, height: 500, boxes_wh: vec![] };
    let c = ImageLabels { width: 300, height: 600, boxes_wh: vec![[1.0, 1.0]] };
    let b = ImageLabels { width: 480, height: 640, boxes_wh: vec![[0.25, 0.125]] };

    let wh = label_wh(&[a.clone(), empty.clone(), b.clone()], 640, &mut ChaCha8Rng::seed_from_u64(7));
    assert_eq!(wh.len(), 3);
    // 1280x640 at 640 → 640x320; one scale s in [0.9, 1.1) for the whole image.
    let s = wh[0][0] / 320.0;
    assert!((0.9..1.1).contains(&s), "{s}");
    assert!((wh[0][1] - 160.0 * s).abs() < 1e-3);
    assert!((wh[1][0] - 64.0 * s).abs() < 1e-3 && (wh[1][1] - 64.0 * s).abs() < 1e-3);
    // 480x640 → 480x640.
    let s2 = wh[2][0] / 120.0;
    assert!((0.9..1.1).contains(&s2) && (wh[2][1] - 80.0 * s2).abs() < 1e-3, "{s2}");
    assert_ne!(s, s2);

    // An image without boxes still draws its scale: b's scale is the same whatever stands second.
    let wh2 = label_wh(&[a, c, b], 640, &mut ChaCha8Rng::seed_from_u64(7));
    assert_eq!(wh2[3], wh[2]);
    // Same seed → same sizes; tiny boxes are kept.
    let tiny = ImageLabels { width: 640, height: 640, boxes_wh: vec![[0.001, 0.001]] };
    let t = label_wh(&[tiny], 640, &mut ChaCha8Rng::seed_from_u64(1));
    assert_eq!(t.len(), 1);
    assert!(t[0][0] < 1.0);
    assert!(label_wh(&[empty], 640, &mut ChaCha8Rng::seed_from_u64(1)).is_empty());
}

#[test]
fn small_labels_counts_like_ultralytics() {
    let wh = [[2.5, 10.0], [1.0, 1.0], [1.9, 3.0], [1.0, 40.0], [5.0, 5.0]];
    assert_eq!(small_labels(&wh), SmallLabels { total: 5, below_3px: 4, dropped: 1 });
}

#[test]
fn kmean_anchors_is_deterministic() {
    // Unclustered sizes: k-means has many local optima and evolution keeps finding improvements, so
    // the seed shows in the result.
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let wh: Vec<[f32; 2]> =
        (0..400).map(|_| [rng.random_range(4.0..300.0f32), rng.random_range(4.0..300.0f32)]).collect();
    let a = kmean_anchors(&wh, 9, 640, 4.0, 50, 42);
    let b = kmean_anchors(&wh, 9, 640, 4.0, 50, 42);
    let c = kmean_anchors(&wh, 9, 640, 4.0, 50, 43);
    assert_eq!(a, b);
    assert_ne!(a, c);
    assert_eq!(a.len(), 9);
    assert!(a.windows(2).all(|w| w[0][0] * w[0][1] <= w[1][0] * w[1][1]), "not sorted by area: {a:?}");
    // Clustered sizes: same seed, same anchors, too.
    let wh = clustered(40, 1);
    assert_eq!(kmean_anchors(&wh, 9, 640, 4.0, 50, 7), kmean_anchors(&wh, 9, 640, 4.0, 50, 7));
}

#[test]
fn kmeans_recovers_synthetic_clusters() {
    let wh = clustered(150, 2);
    let k = kmean_anchors(&wh, 9, 640, 4.0, 200, 0);
    for (a, c) in k.iter().zip(CENTRES) {
        for ax in 0..2 {
            let rel = (a[ax] / c[ax] - 1.0).abs();
            assert!(rel < 0.08, "anchor {a:?} vs centre {c:?} (all: {k:?})");
        }
    }
    let new = anchor_fit(&wh, &k, 4.0);
    let coco = anchor_fit(&wh, &DEFAULT_ANCHORS_PX, 4.0);
    assert!(new.bpr >= coco.bpr, "{new:?} vs {coco:?}");
    let (fit_new, fit_coco) = (anchor_fitness(&wh, &k, 4.0), anchor_fitness(&wh, &DEFAULT_ANCHORS_PX, 4.0));
    assert!(fit_new > fit_coco + 0.1, "fitness {fit_new} vs coco {fit_coco}");
    println!("anchors {k:?}\nbpr {} (coco {}), fitness {fit_new:.4} (coco {fit_coco:.4})", new.bpr, coco.bpr);
}

#[test]
fn check_anchors_keeps_fitting_defaults() {
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    let wh: Vec<[f32; 2]> = (0..900)
        .map(|i| {
            let a = DEFAULT_ANCHORS_PX[i % 9];
            [a[0] * rng.random_range(0.8..1.25f32), a[1] * rng.random_range(0.8..1.25f32)]
        })
        .collect();
    let check = check_anchors(&wh, &DEFAULT_ANCHORS_PX, 3, 640, 4.0, 0);
    assert_eq!(check.bpr_before, 1.0);
    assert!(check.aat_before >= 1.0);
    assert_eq!(check.new_anchors, None);
    assert_eq!(check.bpr_after, None);
}

#[test]
fn check_anchors_evolves_for_tiny_boxes() {
    let mut rng = ChaCha8Rng::seed_from_u64(6);
    let wh: Vec<[f32; 2]> = (0..300).map(|_| [rng.random_range(3.0..8.0f32), rng.random_range(3.0..8.0f32)]).collect();
    let check = check_anchors(&wh, &DEFAULT_ANCHORS_PX, 3, 640, 4.0, 0);
    assert!(check.bpr_before <= 0.98, "{check:?}");
    let new = check.new_anchors.clone().expect("tiny boxes need new anchors");
    let after = check.bpr_after.unwrap();
    assert!(after > check.bpr_before && after == anchor_fit(&wh, &new, 4.0).bpr, "{check:?}");
    assert_eq!(after, 1.0);
    assert_eq!(new.len(), 9);
    assert!(new.iter().all(|a| a[0] >= 2.0 && a[1] >= 2.0 && a[0] < 40.0 && a[1] < 40.0), "{new:?}");
    let levels = check.new_anchors_per_level().unwrap();
    assert_eq!(levels.len(), 3);
    assert!(levels.iter().all(|l| l.len() == 3));
    println!("{}\nbefore {:.4} after {after:.4}: {new:?}", check.summary(), check.bpr_before);
}

#[test]
fn check_anchors_rejects_evolution_that_does_not_help() {
    // One anchor cannot cover sizes 100x apart: BPR 0.5 is the best any single anchor can do.
    let wh: Vec<[f32; 2]> = (0..100).map(|i| if i % 2 == 0 { [10.0, 10.0] } else { [1000.0, 1000.0] }).collect();
    let check = check_anchors(&wh, &[[10.0, 10.0]], 1, 640, 4.0, 0);
    assert_eq!(check.bpr_before, 0.5);
    assert!(check.bpr_after.unwrap() <= 0.5);
    assert_eq!(check.new_anchors, None);
}

#[test]
fn check_anchor_order_reverses_reversed_levels() {
    let levels = |a: &[[f32; 2]]| a.chunks(3).map(<[_]>::to_vec).collect::<Vec<_>>();
    let good = levels(&DEFAULT_ANCHORS_PX);
    let mut reversed: Vec<_> = good.iter().rev().cloned().collect();
    assert!(check_anchor_order(&mut reversed, &[8.0, 16.0, 32.0]));
    assert_eq!(reversed, good);
    assert!(!check_anchor_order(&mut reversed, &[8.0, 16.0, 32.0]));
    assert_eq!(reversed, good);
    // Strides listed large-first: areas must shrink along the list, so ascending areas get reversed.
    let mut asc = good.clone();
    assert!(check_anchor_order(&mut asc, &[32.0, 16.0, 8.0]));
    assert_eq!(asc[0], good[2]);
    // In grid units (anchors / stride), too.
    let grid: Vec<Vec<[f32; 2]>> = good
        .iter()
        .zip([8.0f32, 16.0, 32.0])
        .map(|(l, s)| l.iter().map(|a| [a[0] / s, a[1] / s]).collect())
        .rev()
        .collect();
    let mut g = grid.clone();
    assert!(check_anchor_order(&mut g, &[8.0, 16.0, 32.0]));
    assert_eq!(g[0], grid[2]);
    // One level: nothing to order.
    let mut one = vec![good[0].clone()];
    assert!(!check_anchor_order(&mut one, &[8.0]));
}
