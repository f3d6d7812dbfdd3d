//! End-to-end detection against ultralytics' own `detect.py` pipeline (yolov5 7.0.14) on two
//! synthetic scenes with the random-weight yolov5n: pre-processing checksums, then detections in
//! original-image pixels. Fixture: `tests/fixtures/detect_yolov5n_random.json`
//! (made by `benches/peers/make_detect_fixture.py`).

use std::path::{Path, PathBuf};

use yolo_compress::data::load_rgb;
use yolo_compress::prelude::*;

fn here(p: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(p)
}

fn weights() -> PathBuf {
    here("../model/tests/fixtures/yolov5n_random.pt")
}

fn reference() -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(here("tests/fixtures/detect_yolov5n_random.json")).unwrap()).unwrap()
}

fn predictor(r: &serde_json::Value) -> Predictor {
    let device = Device::flex();
    let loaded = load_model(Some("yolov5n.yaml"), Some(&weights()), &ClassOverride::default(), &device).unwrap();
    let mut cfg = PredictConfig { imgsz: r["imgsz"].as_u64().unwrap() as usize, ..PredictConfig::default() };
    cfg.nms =
        cfg.nms.with_conf_thres(r["conf"].as_f64().unwrap() as f32).with_iou_thres(r["iou"].as_f64().unwrap() as f32);
    Predictor::new(loaded.model, &device, cfg)
}

/// Our letterbox vs ultralytics' (`cv2.resize` INTER_LINEAR + grey border): byte-identical input.
#[test]
fn letterbox_reproduces_ultralytics_input_exactly() {
    let r = reference();
    let p = predictor(&r);
    for name in ["scene_a.png", "scene_b.png"] {
        let pre = &r["preprocess"][name];
        let img = load_rgb(here(&format!("tests/fixtures/{name}"))).unwrap();
        let (chw, info) = p.preprocess(&img).unwrap();
        let shape = &r["letterboxed_shapes"][name];
        assert_eq!(
            (info.shape.0 as u64, info.shape.1 as u64),
            (shape[0].as_u64().unwrap(), shape[1].as_u64().unwrap())
        );
        let plane = chw.len() / 3;
        let png = load_rgb(here(&format!("tests/fixtures/{}", pre["letterboxed_png"].as_str().unwrap()))).unwrap();
        let theirs = png.into_raw();
        let ours: Vec<u8> = (0..plane)
            .flat_map(|i| (0..3).map(move |c| (c, i)))
            .map(|(c, i)| (chw[c * plane + i] * 255.0).round() as u8)
            .collect();
        let max = ours.iter().zip(&theirs).map(|(a, b)| a.abs_diff(*b)).max().unwrap();
        let differ = ours.iter().zip(&theirs).filter(|(a, b)| a != b).count();
        eprintln!("{name}: {differ} of {} values differ, max {max}", ours.len());
        assert_eq!(differ, 0, "{name}: letterboxed pixels differ by up to {max}");
        // The grey border sits exactly where ultralytics puts it.
        let b = &pre["border_top_bottom_left_right"];
        let side = |k: usize| b[k].as_u64().unwrap() as usize;
        let (h, w) = (info.shape.0 as usize, info.shape.1 as usize);
        let grey =
            |y: usize, x: usize| (0..3).all(|c| theirs[(y * w + x) * 3 + c] == 114 && ours[(y * w + x) * 3 + c] == 114);
        for y in 0..h {
            for x in 0..w {
                let border = y < side(0) || y >= h - side(1) || x < side(2) || x >= w - side(3);
                if border {
                    assert!(grey(y, x), "{name}: ({y}, {x}) should be padding");
                }
            }
        }
    }
}

#[test]
fn detections_match_ultralytics_detect_py() {
    let r = reference();
    let p = predictor(&r);
    let images: Vec<(String, image::RgbImage)> = ["scene_a.png", "scene_b.png"]
        .iter()
        .map(|n| (n.to_string(), load_rgb(here(&format!("tests/fixtures/{n}"))).unwrap()))
        .collect();
    // The whole pipeline from the original images: letterbox, model, NMS, boxes back to pixels.
    let (ours, _) = p.predict(&images).unwrap();
    for ((name, _), dets) in images.iter().zip(&ours) {
        let want = r["images"][name].as_array().unwrap();
        assert_eq!(dets.len(), want.len(), "{name}: detection count");
        for (d, w) in dets.iter().zip(want) {
            assert_eq!(d.class_id as u64, w["class_id"].as_u64().unwrap(), "{name}");
            assert_eq!(d.image, *name);
            assert!(
                (d.score as f64 - w["score"].as_f64().unwrap()).abs() < 1e-4,
                "{name}: score {} vs {}",
                d.score,
                w["score"]
            );
            for k in 0..4 {
                let wk = w["bbox_xyxy"][k].as_f64().unwrap();
                assert!(
                    (d.bbox_xyxy[k] as f64 - wk).abs() < 1e-2,
                    "{name}: box {:?} vs {}",
                    d.bbox_xyxy,
                    w["bbox_xyxy"]
                );
            }
        }
    }
}
