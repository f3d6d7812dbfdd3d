//! Generation speed of the synthetic dataset writer (not a test: `#[ignore]`d). Run with
//!
//! ```text
//! cargo test -p yolo-compress-data --test synth_bench -- --ignored --nocapture
//! ```
//!
//! (add `--release` for optimised numbers). `SYNTH_BENCH_IMAGES` sets the image count (default
//! 2000 at 256 px, a quarter of it at 640 px), `SYNTH_PREVIEW_DIR` keeps a few annotated samples
//! there for a look.

use yolo_compress_data::synth::{Split, SynthConfig, WriteOptions, generate_scene, write_dataset_with};
use yolo_compress_data::{Annotation, draw_detections};

#[test]
#[ignore = "benchmark"]
fn synth_generation_speed() {
    let n: usize = std::env::var("SYNTH_BENCH_IMAGES").ok().and_then(|v| v.parse().ok()).unwrap_or(2000);
    for (imgsz, images) in [(256u32, n), (640, n / 4)] {
        for threads in [1, 0] {
            let dir = tempfile::tempdir().unwrap();
            let cfg = SynthConfig { images, val: 0, imgsz, ..SynthConfig::default() };
            let opts = WriteOptions { threads, ..WriteOptions::default() };
            let s = write_dataset_with(&cfg, dir.path(), &opts, &|_, _| {}).unwrap();
            let bytes: u64 = std::fs::read_dir(dir.path().join("images/train"))
                .unwrap()
                .map(|e| e.unwrap().metadata().unwrap().len())
                .sum();
            println!(
                "imgsz {imgsz}, threads {}: {images} images in {:.2} s = {:.0} images/s, {:.1} objects/image, {:.0} KiB/image",
                if threads == 0 { "all".to_string() } else { threads.to_string() },
                s.seconds,
                s.images_per_second,
                s.train_instances as f64 / images as f64,
                bytes as f64 / images as f64 / 1024.0
            );
        }
        // Generation alone (no encoding or disk), one thread.
        let cfg = SynthConfig { imgsz, ..SynthConfig::default() };
        let t = std::time::Instant::now();
        let k = 200;
        for i in 0..k {
            std::hint::black_box(generate_scene(&cfg, Split::Train, i));
        }
        println!(
            "imgsz {imgsz}: generation only, 1 thread: {:.2} ms/image",
            t.elapsed().as_secs_f64() * 1e3 / k as f64
        );
    }
    if let Ok(dir) = std::env::var("SYNTH_PREVIEW_DIR") {
        std::fs::create_dir_all(&dir).unwrap();
        for (imgsz, classes, i) in [(256, 8, 0), (256, 8, 1), (640, 8, 2), (256, 40, 3), (128, 10, 4)] {
            let cfg = SynthConfig { imgsz, classes, ..SynthConfig::default() };
            let scene = generate_scene(&cfg, Split::Train, i);
            scene.image.save(format!("{dir}/synth_{imgsz}_{classes}_{i}.png")).unwrap();
            let names = cfg.names();
            let dets: Vec<Annotation> = scene
                .objects
                .iter()
                .map(|o| Annotation { xyxy: o.bbox, label: &names[o.class_id], score: o.visible, class_id: o.class_id })
                .collect();
            let mut boxed = scene.image.clone();
            draw_detections(&mut boxed, &dets);
            boxed.save(format!("{dir}/synth_{imgsz}_{classes}_{i}_boxes.png")).unwrap();
        }
    }
}
