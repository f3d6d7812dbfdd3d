//! The detection metrics against the reference fixture `tests/fixtures/metrics_fixture.json`
//! (ultralytics YOLOv5 7.0 `process_batch` + `ap_per_class`, and pycocotools, on 8 synthetic images).

use serde_json::Value;
use yolo_compress_model::postprocess::Detection;
use yolo_compress_train::metrics::{
    ApMethod, DetectionMetrics, GroundTruth, IOU_THRESHOLDS, MetricsAccumulator, NUM_IOU_THRESHOLDS, match_predictions,
};

const TOL: f64 = 1e-6;

struct Fixture {
    json: Value,
    gts: Vec<Vec<GroundTruth>>,
    preds: Vec<Vec<Detection>>,
}

fn xyxy(v: &Value) -> [f32; 4] {
    let a = v.as_array().expect("xyxy is an array");
    std::array::from_fn(|i| a[i].as_f64().expect("xyxy holds numbers") as f32)
}

fn load() -> Fixture {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/metrics_fixture.json");
    let text = std::fs::read_to_string(path).expect("read metrics_fixture.json");
    let json: Value = serde_json::from_str(&text).expect("parse metrics_fixture.json");
    let n = json["n_images"].as_u64().expect("n_images") as usize;
    let mut gts = vec![Vec::new(); n];
    let mut preds = vec![Vec::new(); n];
    for g in json["gt"].as_array().expect("gt") {
        let img = g["image_id"].as_u64().expect("image_id") as usize;
        gts[img].push(GroundTruth { xyxy: xyxy(&g["xyxy"]), class_id: g["cls"].as_u64().expect("cls") as usize });
    }
    for p in json["predictions"].as_array().expect("predictions") {
        let img = p["image_id"].as_u64().expect("image_id") as usize;
        preds[img].push(Detection {
            xyxy: xyxy(&p["xyxy"]),
            // The reference stacked the scores into a float32 tensor.
            score: p["score"].as_f64().expect("score") as f32,
            class_id: p["cls"].as_u64().expect("cls") as usize,
        });
    }
    Fixture { json, gts, preds }
}

fn accumulate(fx: &Fixture) -> MetricsAccumulator {
    let mut acc = MetricsAccumulator::new(6);
    for (p, g) in fx.preds.iter().zip(&fx.gts) {
        acc.add_image(p, g);
    }
    acc
}

fn f(v: &Value) -> f64 {
    v.as_f64().expect("a number")
}

/// Largest absolute difference seen, for the report printed by each test.
#[derive(Default)]
struct MaxDiff(f64, String);

impl MaxDiff {
    fn check(&mut self, what: &str, ours: f64, reference: f64) {
        let d = (ours - reference).abs();
        assert!(d <= TOL, "{what}: ours {ours}, reference {reference} (diff {d:e})");
        if d >= self.0 {
            *self = MaxDiff(d, what.to_string());
        }
    }
}

#[test]
fn iou_thresholds_match_torch_linspace() {
    let fx = load();
    let iouv: Vec<f64> = fx.json["ultralytics"]["iouv"].as_array().expect("iouv").iter().map(f).collect();
    assert_eq!(iouv, IOU_THRESHOLDS.to_vec());
}

#[test]
fn per_image_correct_matches_process_batch_exactly() {
    let fx = load();
    let reference = fx.json["ultralytics"]["per_image_correct"].as_object().expect("per_image_correct");
    let mut checked = 0;
    for (img, (p, g)) in fx.preds.iter().zip(&fx.gts).enumerate() {
        let ours = match_predictions(p, g);
        assert_eq!(ours.len(), p.len());
        let Some(rows) = reference.get(&img.to_string()) else {
            assert!(p.is_empty(), "image {img} has predictions but no reference rows");
            continue;
        };
        let rows = rows.as_array().expect("rows");
        assert_eq!(rows.len(), ours.len(), "image {img}: number of predictions");
        for (k, (r, o)) in rows.iter().zip(&ours).enumerate() {
            let r: Vec<bool> = r.as_array().expect("row").iter().map(|v| v.as_u64() == Some(1)).collect();
            assert_eq!(r.len(), NUM_IOU_THRESHOLDS);
            assert_eq!(&r[..], &o[..], "image {img}, prediction {k}");
        }
        checked += rows.len();
    }
    assert_eq!(checked, 31, "every prediction row was compared");
}

fn check_against_ultralytics(m: &DetectionMetrics, u: &Value) -> MaxDiff {
    let mut md = MaxDiff::default();
    md.check("P", m.precision, f(&u["P"]));
    md.check("R", m.recall, f(&u["R"]));
    md.check("mAP50", m.map50, f(&u["mAP50"]));
    md.check("mAP50-95", m.map50_95, f(&u["mAP50_95"]));
    let per_class = u["per_class"].as_object().expect("per_class");
    assert_eq!(m.per_class.len(), per_class.len(), "number of classes");
    for c in &m.per_class {
        let r = &per_class[&c.class_id.to_string()];
        let id = c.class_id;
        md.check(&format!("class {id} P"), c.precision, f(&r["P"]));
        md.check(&format!("class {id} R"), c.recall, f(&r["R"]));
        md.check(&format!("class {id} F1"), c.f1, f(&r["F1"]));
        md.check(&format!("class {id} AP50"), c.ap50, f(&r["AP50"]));
        md.check(&format!("class {id} AP50-95"), c.ap50_95, f(&r["AP50_95"]));
        md.check(&format!("class {id} tp"), c.tp, f(&r["tp"]));
        md.check(&format!("class {id} fp"), c.fp, f(&r["fp"]));
        let ap: Vec<f64> = r["AP_per_iou"].as_array().expect("AP_per_iou").iter().map(f).collect();
        assert_eq!(ap.len(), NUM_IOU_THRESHOLDS);
        for (t, (&o, &e)) in c.ap.iter().zip(&ap).enumerate() {
            md.check(&format!("class {id} AP@{}", IOU_THRESHOLDS[t]), o, e);
        }
    }
    md
}

#[test]
fn finish_matches_ap_per_class() {
    let fx = load();
    let acc = accumulate(&fx);
    let m = acc.finish();
    assert_eq!(m.images, 8);
    assert_eq!(m.instances, 20);
    assert_eq!(m.per_class.iter().map(|c| c.class_id).collect::<Vec<_>>(), vec![0, 2, 5]);
    let total: usize = m.per_class.iter().map(|c| c.instances).sum();
    assert_eq!(total, 20);
    // Images whose labels contain each class, counted from the fixture itself.
    for c in &m.per_class {
        let images = fx.gts.iter().filter(|g| g.iter().any(|b| b.class_id == c.class_id)).count();
        assert_eq!(c.images, images, "class {}", c.class_id);
    }
    let md = check_against_ultralytics(&m, &fx.json["ultralytics"]);
    println!("ultralytics: max |diff| {:e} ({})", md.0, md.1);
    assert!((m.fitness() - (0.1 * m.map50 + 0.9 * m.map50_95)).abs() < 1e-15);
    // The curves are complete.
    assert_eq!(m.curves.px.len(), 1000);
    for curve in [&m.curves.precision, &m.curves.recall, &m.curves.f1, &m.curves.pr] {
        assert_eq!(curve.len(), 3);
        assert!(curve.iter().all(|c| c.len() == 1000));
    }
    let b = m.curves.best_index;
    for (k, c) in m.per_class.iter().enumerate() {
        assert_eq!(m.curves.precision[k][b], c.precision);
        assert_eq!(m.curves.recall[k][b], c.recall);
    }
}

#[test]
fn merged_accumulators_give_the_same_metrics() {
    let fx = load();
    let whole = accumulate(&fx).finish();
    let mut a = MetricsAccumulator::new(6);
    let mut b = MetricsAccumulator::new(6);
    for (i, (p, g)) in fx.preds.iter().zip(&fx.gts).enumerate() {
        if i < 4 { a.add_image(p, g) } else { b.add_image(p, g) }
    }
    a.merge(&b);
    assert_eq!(a.finish(), whole);
}

#[test]
fn coco_rule_on_the_same_tp_data_reproduces_pycocotools() {
    let fx = load();
    let m = accumulate(&fx).finish_with(ApMethod::Coco101);
    let pyc = &fx.json["pycocotools"];
    let mut md = MaxDiff::default();
    md.check("COCO mAP50", m.map50, f(&pyc["mAP50"]));
    md.check("COCO mAP50-95", m.map50_95, f(&pyc["mAP50_95"]));
    let per_class = pyc["per_class"].as_object().expect("per_class");
    for c in &m.per_class {
        let r = &per_class[&c.class_id.to_string()];
        md.check(&format!("COCO class {} AP50", c.class_id), c.ap50, f(&r["AP50"]));
        md.check(&format!("COCO class {} AP50-95", c.class_id), c.ap50_95, f(&r["AP50_95"]));
    }
    println!("pycocotools: max |diff| {:e} ({})", md.0, md.1);
    // P and R do not depend on the AP rule.
    let u = accumulate(&fx).finish();
    assert_eq!((m.precision, m.recall), (u.precision, u.recall));
    // And the gap is the documented one (ultralytics higher by ~0.079 / ~0.067).
    assert!((u.map50 - m.map50 - 0.0790).abs() < 1e-3);
    assert!((u.map50_95 - m.map50_95 - 0.0667).abs() < 1e-3);
}
