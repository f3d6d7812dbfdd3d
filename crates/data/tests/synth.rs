//! The synthetic dataset generator: exact labels on pixels, determinism across runs and thread
//! counts, the files and `data.yaml` it writes, class balance and object counts.

use std::collections::BTreeMap;
use std::path::Path;

use image::{Rgb, RgbImage};
use yolo_compress_data::synth::{
    FillStyle, ImageFormat, MAX_CLASSES, Paint, ShapeKind, ShapeSpec, Split, SynthConfig, SynthError, SynthSource,
    WriteOptions, class_names, draw_shape, generate_sample, generate_scene, write_dataset, write_dataset_with,
};
use yolo_compress_data::{SampleSource, load_rgb};

/// Bounding box `[x1, y1, x2, y2]` (pixel edges) of the pixels that differ from `bg`.
fn changed_box(img: &RgbImage, bg: Rgb<u8>) -> Option<[f32; 4]> {
    let mut b: Option<[u32; 4]> = None;
    for (x, y, p) in img.enumerate_pixels() {
        if *p != bg {
            let e = b.get_or_insert([x, y, x, y]);
            *e = [e[0].min(x), e[1].min(y), e[2].max(x), e[3].max(y)];
        }
    }
    b.map(|[x1, y1, x2, y2]| [x1 as f32, y1 as f32, (x2 + 1) as f32, (y2 + 1) as f32])
}

/// A small deterministic stream of numbers in [0, 1) for sub-pixel offsets.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> f32 {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (self.0 >> 40) as f32 / (1u64 << 24) as f32
    }
}

/// For one object on a flat background, the label box equals the box of the pixels the object
/// changed, within one pixel on every side: every kind, several sizes (8 px up), rotations,
/// aspects and shape details, at sub-pixel positions, inside and across the image border.
#[test]
fn labels_equal_the_painted_pixels_within_one_pixel() {
    let bg = Rgb([30, 60, 90]);
    let paint = Paint::solid([230, 210, 40]);
    let mut rng = Lcg(7);
    let mut checked = 0;
    let (mut worst, mut sum) = (0f32, 0f32);
    for kind in ShapeKind::ALL {
        let (lo, hi) = kind.aspect_range();
        for size in [8.0, 11.0, 17.0, 30.0, 57.0] {
            for step in 0..12 {
                for aspect in [lo, (lo * hi).sqrt(), hi] {
                    for detail in [0.0, 0.5, 1.0] {
                        // Inside, and (every third case) hanging over the left/top border.
                        let border = step % 3 == 0;
                        let center = if border {
                            [3.0 + rng.next() * 4.0, 40.0 + rng.next()]
                        } else {
                            [48.0 + rng.next(), 48.0 + rng.next()]
                        };
                        let angle = step as f32 * 0.53 + rng.next() * 0.1;
                        let spec = ShapeSpec { kind, center, size, aspect, angle, detail };
                        let mut img = RgbImage::from_pixel(96, 96, bg);
                        let full = draw_shape(&mut img, &spec, &paint);
                        assert_eq!(full, spec.geometry().bbox());
                        let label = spec.geometry().clipped_bbox([0.0, 0.0, 96.0, 96.0]).unwrap();
                        let px = changed_box(&img, bg).unwrap_or_else(|| panic!("{spec:?} drew nothing"));
                        for k in 0..4 {
                            let d = (px[k] - label[k]).abs();
                            worst = worst.max(d);
                            sum += d;
                            assert!(d <= 1.0 + 1e-4, "{spec:?}: label {label:?} vs pixels {px:?}");
                        }
                        checked += 1;
                    }
                }
            }
        }
    }
    assert_eq!(checked, 10 * 5 * 12 * 3 * 3);
    let mean = sum / (4 * checked) as f32;
    println!("{checked} shapes, side difference: worst {worst:.3} px, mean {mean:.3} px");
    // Anti-aliasing spreads the edge over one pixel: on average a side is off by about half.
    assert!(mean < 0.6, "mean side difference {mean} px");
}

/// The patterned styles paint inside the same outline: the box of changed pixels is the same
/// as with a solid fill (both colours differ from the background).
#[test]
fn fill_styles_do_not_change_the_extent() {
    let bg = Rgb([0, 0, 0]);
    for style in FillStyle::ALL {
        let paint = Paint { style, color: [200, 40, 40], color2: [40, 200, 220], period: 5.0, shade: 0.2, alpha: 1.0 };
        for kind in ShapeKind::ALL {
            let spec = ShapeSpec { kind, center: [40.3, 39.6], size: 50.0, aspect: 1.0, angle: 0.9, detail: 0.3 };
            let mut solid = RgbImage::from_pixel(80, 80, bg);
            draw_shape(&mut solid, &spec, &Paint::solid([200, 40, 40]));
            let mut styled = RgbImage::from_pixel(80, 80, bg);
            draw_shape(&mut styled, &spec, &paint);
            assert_eq!(changed_box(&solid, bg), changed_box(&styled, bg), "{kind:?} {style:?}");
        }
    }
}

fn tiny(images: usize, val: usize) -> SynthConfig {
    SynthConfig { images, val, imgsz: 64, classes: 8, seed: 3, ..SynthConfig::default() }
}

/// Every file under `dir` (relative path → bytes).
fn read_tree(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                let rel = p.strip_prefix(dir).unwrap().to_string_lossy().into_owned();
                out.insert(rel, std::fs::read(&p).unwrap());
            }
        }
    }
    out
}

/// `data.yaml` without its `path:` line (which names the directory).
fn without_path(yaml: &[u8]) -> String {
    String::from_utf8(yaml.to_vec()).unwrap().lines().filter(|l| !l.starts_with("path:")).collect::<Vec<_>>().join("\n")
}

#[test]
fn same_settings_give_identical_files_whatever_the_thread_count() {
    let cfg = tiny(14, 5);
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let one = WriteOptions { threads: 1, ..WriteOptions::default() };
    let three = WriteOptions { threads: 3, ..WriteOptions::default() };
    let sa = write_dataset_with(&cfg, a.path(), &one, &|_, _| {}).unwrap();
    let sb = write_dataset_with(&cfg, b.path(), &three, &|_, _| {}).unwrap();
    let (ta, tb) = (read_tree(a.path()), read_tree(b.path()));
    assert_eq!(ta.len(), 2 * (14 + 5) + 1, "{:?}", ta.keys().collect::<Vec<_>>());
    assert_eq!(ta.keys().collect::<Vec<_>>(), tb.keys().collect::<Vec<_>>());
    for (name, bytes) in &ta {
        if name == "data.yaml" {
            assert_eq!(without_path(bytes), without_path(&tb[name]));
        } else {
            assert!(bytes == &tb[name], "{name} differs between 1 and 3 threads");
        }
    }
    assert_eq!(
        (sa.train_instances, sa.val_instances, &sa.instances_per_class),
        (sb.train_instances, sb.val_instances, &sb.instances_per_class)
    );

    // Regenerating in place gives the very same bytes, data.yaml included.
    write_dataset_with(&cfg, a.path(), &WriteOptions { overwrite: true, ..three }, &|_, _| {}).unwrap();
    assert_eq!(read_tree(a.path()), ta);

    // Images do not depend on how many there are; another seed changes them.
    assert_eq!(generate_sample(&tiny(3, 0), Split::Train, 2), generate_sample(&cfg, Split::Train, 2));
    assert_ne!(
        generate_sample(&SynthConfig { seed: 4, ..cfg.clone() }, Split::Train, 2),
        generate_sample(&cfg, Split::Train, 2)
    );
    assert_ne!(generate_sample(&cfg, Split::Val, 2), generate_sample(&cfg, Split::Train, 2));
}

/// Parses a label file, checking each row's format.
fn label_rows(path: &Path, nc: usize) -> Vec<(usize, [f64; 4])> {
    let text = std::fs::read_to_string(path).unwrap();
    text.lines()
        .map(|line| {
            let f: Vec<&str> = line.split(' ').collect();
            assert_eq!(f.len(), 5, "{}: {line:?}", path.display());
            let cls: usize = f[0].parse().unwrap();
            assert!(cls < nc, "{}: class {cls}", path.display());
            let v: Vec<f64> = f[1..]
                .iter()
                .map(|s| {
                    assert_eq!(s.split('.').nth(1).map(str::len), Some(6), "{s}: six decimals");
                    s.parse().unwrap()
                })
                .collect();
            let [xc, yc, w, h] = [v[0], v[1], v[2], v[3]];
            assert!(v.iter().all(|x| (0.0..=1.0).contains(x)), "{}: {line}", path.display());
            assert!(w > 0.0 && h > 0.0, "{}: {line}", path.display());
            assert!(xc - w / 2.0 >= -1e-6 && xc + w / 2.0 <= 1.0 + 1e-6, "{}: {line}", path.display());
            assert!(yc - h / 2.0 >= -1e-6 && yc + h / 2.0 <= 1.0 + 1e-6, "{}: {line}", path.display());
            (cls, [xc, yc, w, h])
        })
        .collect()
}

#[test]
fn writes_an_ultralytics_dataset_that_matches_the_in_memory_samples() {
    let cfg = SynthConfig { classes: 13, ..tiny(6, 3) };
    let dir = tempfile::tempdir().unwrap();
    let summary = write_dataset(&cfg, dir.path()).unwrap();
    let out = std::fs::canonicalize(dir.path()).unwrap();
    assert_eq!(summary.out, out);
    assert_eq!(summary.data_yaml, out.join("data.yaml"));
    assert_eq!((summary.train_images, summary.val_images), (6, 3));

    let yaml: serde_norway::Value =
        serde_norway::from_str(&std::fs::read_to_string(out.join("data.yaml")).unwrap()).unwrap();
    assert_eq!(yaml["path"].as_str(), Some(out.to_str().unwrap()));
    assert_eq!(yaml["train"].as_str(), Some("images/train"));
    assert_eq!(yaml["val"].as_str(), Some("images/val"));
    assert_eq!(yaml["nc"].as_u64(), Some(13));
    let names: Vec<String> = serde_norway::from_value(yaml["names"].clone()).unwrap();
    assert_eq!(names, class_names(13));
    assert_eq!(names[10], "striped_circle");

    let mut instances = 0;
    let mut per_class = vec![0; 13];
    for split in [Split::Train, Split::Val] {
        for i in 0..cfg.len(split) {
            let img_path = out.join(format!("images/{split}/{i:06}.png"));
            let rows = label_rows(&out.join(format!("labels/{split}/{i:06}.txt")), 13);
            let sample = generate_sample(&cfg, split, i);
            assert_eq!(load_rgb(&img_path).unwrap(), sample.image, "{}", img_path.display());
            assert_eq!(rows.len(), sample.boxes.len());
            for ((cls, row), b) in rows.iter().zip(&sample.boxes) {
                assert_eq!(*cls, b.class_id);
                let want = b.to_yolo(64, 64);
                for k in 0..4 {
                    assert!((row[k] - f64::from(want[k])).abs() < 2e-6, "{row:?} vs {want:?}");
                }
                per_class[*cls] += 1;
            }
            instances += rows.len();
        }
    }
    assert_eq!(summary.train_instances + summary.val_instances, instances);
    assert_eq!(summary.instances_per_class, per_class);
}

#[test]
fn in_memory_source_generates_on_demand() {
    let cfg = tiny(5, 2);
    let src = SynthSource::new(cfg.clone(), Split::Val).unwrap();
    assert_eq!(src.len(), 2);
    assert_eq!(src.shape(1), Some((64, 64)));
    assert_eq!(src.get(1).unwrap(), generate_sample(&cfg, Split::Val, 1));
    assert_eq!(src.name(1), "synth/val/000001");
    assert!(matches!(
        SynthSource::new(SynthConfig { classes: 0, ..cfg }, Split::Train),
        Err(SynthError::InvalidConfig { field: "classes", .. })
    ));
}

#[test]
fn classes_are_balanced_and_object_counts_stay_in_range() {
    for (classes, min_objects, max_objects) in [(8, 2, 9), (20, 1, 12)] {
        let cfg = SynthConfig { imgsz: 128, classes, min_objects, max_objects, seed: 11, ..SynthConfig::default() };
        let n = 400;
        let mut per_class = vec![0usize; classes];
        let mut counts = Vec::new();
        for i in 0..n {
            let scene = generate_scene(&cfg, Split::Train, i);
            counts.push(scene.objects.len());
            for o in &scene.objects {
                per_class[o.class_id] += 1;
                assert!(o.visible >= 0.3 - 1e-6 && o.inside >= 0.4 - 1e-6, "{o:?}");
            }
        }
        let total: usize = per_class.iter().sum();
        let mean = total as f64 / classes as f64;
        for (c, &k) in per_class.iter().enumerate() {
            // Binomial spread is about ±sqrt(mean) ≈ ±5 % here; allow ±30 % for the geometry's
            // small influence on which objects fit.
            assert!((k as f64 - mean).abs() < 0.3 * mean, "class {c}: {k} of {total} ({per_class:?})");
        }
        assert!(counts.iter().all(|&k| k <= max_objects), "{counts:?}");
        let in_range = counts.iter().filter(|&&k| k >= min_objects).count();
        assert!(in_range as f64 >= 0.9 * n as f64, "{in_range} of {n} images reach {min_objects} objects");
        let avg = counts.iter().sum::<usize>() as f64 / n as f64;
        let drawn = (min_objects + max_objects) as f64 / 2.0;
        assert!(avg >= 0.8 * drawn && avg <= drawn + 0.5, "mean {avg} objects for {drawn} drawn");
        println!("classes {classes}: {per_class:?}, mean {avg:.2} objects/image ({drawn} drawn)");
    }
}

#[test]
fn refuses_to_overwrite_unless_asked_and_never_deletes_foreign_files() {
    let dir = tempfile::tempdir().unwrap();
    write_dataset(&tiny(5, 2), dir.path()).unwrap();
    let err = write_dataset(&tiny(3, 1), dir.path()).unwrap_err();
    assert!(matches!(&err, SynthError::OutputExists { path } if path.ends_with("data.yaml")), "{err}");
    assert!(err.to_string().contains("--overwrite"), "{err}");

    // Overwriting with fewer images leaves no stale files behind.
    let opts = WriteOptions { overwrite: true, ..WriteOptions::default() };
    write_dataset_with(&tiny(3, 1), dir.path(), &opts, &|_, _| {}).unwrap();
    let tree = read_tree(dir.path());
    assert_eq!(tree.len(), 2 * (3 + 1) + 1, "{:?}", tree.keys().collect::<Vec<_>>());

    // A file the writer did not make stops it before anything is removed.
    let foreign = dir.path().join("images/train/notes.md");
    std::fs::write(&foreign, "mine").unwrap();
    let err = write_dataset_with(&tiny(2, 1), dir.path(), &opts, &|_, _| {}).unwrap_err();
    assert!(matches!(&err, SynthError::OutputExists { path } if path == &foreign), "{err}");
    assert!(
        foreign.exists()
            && dir.path().join("data.yaml").exists()
            && dir.path().join("images/train/000002.png").exists()
    );
    std::fs::remove_file(&foreign).unwrap();

    // Nor does it replace a dataset it did not write.
    std::fs::write(dir.path().join("data.yaml"), "path: .\ntrain: images/train\nval: images/val\nnc: 1\n").unwrap();
    let err = write_dataset_with(&tiny(2, 1), dir.path(), &opts, &|_, _| {}).unwrap_err();
    assert!(matches!(&err, SynthError::NotSynthetic { .. }), "{err}");
    assert!(dir.path().join("images/train/000002.png").exists());
}

#[test]
fn zero_val_images_point_val_at_train_and_jpeg_works() {
    let dir = tempfile::tempdir().unwrap();
    let opts = WriteOptions { format: ImageFormat::Jpeg { quality: 90 }, ..WriteOptions::default() };
    let mut done = std::sync::atomic::AtomicUsize::new(0);
    write_dataset_with(&tiny(3, 0), dir.path(), &opts, &|k, n| {
        assert!(k <= n && n == 3);
        done.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    })
    .unwrap();
    assert_eq!(*done.get_mut(), 3);
    let yaml: serde_norway::Value =
        serde_norway::from_str(&std::fs::read_to_string(dir.path().join("data.yaml")).unwrap()).unwrap();
    assert_eq!(yaml["val"].as_str(), Some("images/train"));
    let img = load_rgb(dir.path().join("images/train/000002.jpg")).unwrap();
    assert_eq!(img.dimensions(), (64, 64));
}

#[test]
fn invalid_settings_name_the_setting() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        (SynthConfig { classes: MAX_CLASSES + 1, ..tiny(1, 0) }, "classes"),
        (SynthConfig { imgsz: 16, ..tiny(1, 0) }, "imgsz"),
        (SynthConfig { min_objects: 5, max_objects: 2, ..tiny(1, 0) }, "min_objects"),
        (SynthConfig { min_size: 50.0, max_size: 0.5, ..tiny(1, 0) }, "min_size"),
        (SynthConfig { max_size: f32::NAN, ..tiny(1, 0) }, "max_size"),
        (tiny(0, 1), "images"),
    ];
    for (cfg, field) in cases {
        let err = write_dataset(&cfg, dir.path().join(field)).unwrap_err();
        assert!(matches!(err, SynthError::InvalidConfig { field: f, .. } if f == field), "{field}: {err}");
        assert!(err.to_string().contains(field), "{err}");
        assert!(!dir.path().join(field).exists(), "{field}: nothing is written for an invalid config");
    }
    // The generators clamp instead of panicking.
    let s = generate_sample(&SynthConfig { classes: 0, imgsz: 3, ..tiny(1, 0) }, Split::Train, 0);
    assert_eq!(s.image.dimensions(), (32, 32));
}
