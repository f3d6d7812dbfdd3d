//! The batch loader: shapes, targets that match pixels, determinism across worker counts, bounded
//! prefetch, partial batches, rectangular batches and corrupt samples.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use burn::tensor::Device;
use image::{Rgb, RgbImage};
use yolo_compress_data::augment::Hyp;
use yolo_compress_data::loader::{Batch, Loader, LoaderConfig, LoaderError};
use yolo_compress_data::{DataError, LabeledBox, Sample, SampleSource, VecSource};

const GREY: [u8; 3] = [100, 100, 100];
const PALETTE: [[u8; 3]; 4] = [[240, 30, 30], [30, 220, 40], [40, 60, 240], [230, 220, 30]];

fn device() -> Device {
    Device::flex()
}

/// `n` grey images of varied sizes (64 to 128 px, some portrait), each with one or two filled
/// rectangles whose colour is their class.
fn dataset(n: usize) -> VecSource {
    let samples = (0..n)
        .map(|i| {
            let (w, h) = (64 + (i as u32 * 37) % 65, 64 + (i as u32 * 53) % 65);
            let mut image = RgbImage::from_pixel(w, h, Rgb(GREY));
            let mut boxes = Vec::new();
            let rects = [
                (i % 4, [w / 8, h / 6, w / 8 + w / 3, h / 6 + h / 3]),
                ((i + 1) % 4, [w / 2 + 2, h / 2 + 2, w - 4, h - 6]),
            ];
            for &(c, [x1, y1, x2, y2]) in &rects[..1 + i % 2] {
                for y in y1..y2 {
                    for x in x1..x2 {
                        image.put_pixel(x, y, Rgb(PALETTE[c]));
                    }
                }
                boxes.push(LabeledBox { class_id: c, xyxy: [x1, y1, x2, y2].map(|v| v as f32) });
            }
            Sample { image, boxes }
        })
        .collect();
    VecSource(samples)
}

fn images(b: &Batch) -> Vec<f32> {
    b.images.clone().into_data().try_to_vec::<f32>().unwrap()
}

fn train_cfg(imgsz: u32, batch: usize, workers: usize) -> LoaderConfig {
    LoaderConfig { workers, seed: 7, ..LoaderConfig::train(imgsz, batch) }
}

#[test]
fn shapes_and_value_ranges() {
    let source = Arc::new(dataset(10));
    let loader = Loader::new(source, train_cfg(64, 4, 2), &device()).unwrap();
    assert_eq!(loader.len(), 3);
    let batches: Vec<Batch> = loader.epoch(0).map(Result::unwrap).collect();
    assert_eq!(batches.iter().map(Batch::len).collect::<Vec<_>>(), vec![4, 4, 2]);
    for b in &batches {
        assert_eq!(b.images.dims(), [b.len(), 3, 64, 64]);
        let [n, six] = b.targets.dims();
        assert_eq!((n, six), (b.target_rows.len(), 6));
        let px = images(b);
        assert!(px.iter().all(|v| (0.0..=1.0).contains(v)));
        let t = b.targets.clone().into_data().try_to_vec::<f32>().unwrap();
        assert_eq!(t, b.target_rows.iter().flatten().copied().collect::<Vec<_>>());
        for r in &b.target_rows {
            assert!(r[0] >= 0.0 && (r[0] as usize) < b.len() && r[0].fract() == 0.0, "{r:?}");
            assert!((0.0..4.0).contains(&r[1]) && r[1].fract() == 0.0, "{r:?}");
            assert!(r[2..].iter().all(|v| (0.0..=1.0).contains(v)), "{r:?}");
        }
        assert!(b.samples.iter().all(|m| m.shape == (64, 64)));
        assert!(b.warnings.is_empty());
    }
}

/// Pixel `(x, y)` of image `i` of a `[B, 3, H, W]` batch as bytes.
fn pixel(px: &[f32], i: usize, h: usize, w: usize, x: usize, y: usize) -> [u8; 3] {
    let plane = h * w;
    std::array::from_fn(|c| (px[(i * 3 + c) * plane + y * w + x] * 255.0).round() as u8)
}

#[test]
fn targets_land_on_their_painted_pixels() {
    // Colour-preserving augmentation (no HSV): scale, translation, mosaic, flips both ways. (No
    // rotation: a rotated box cut by the border bounds its pixels without its centre being on them,
    // see tests/augment_geometry.rs.)
    let hyp = Hyp { hsv_h: 0.0, hsv_s: 0.0, hsv_v: 0.0, flipud: 0.5, ..Hyp::default() };
    for (mosaic, rect) in [(1.0, false), (0.0, false), (0.0, true)] {
        let cfg = LoaderConfig { hyp: Hyp { mosaic, ..hyp.clone() }, rect, ..train_cfg(96, 4, 2) };
        let loader = Loader::new(Arc::new(dataset(12)), cfg, &device()).unwrap();
        let mut checked = 0;
        for epoch in 0..2 {
            for b in loader.epoch(epoch) {
                let b = b.unwrap();
                let (h, w) = b.image_shape();
                let px = images(&b);
                for r in &b.target_rows {
                    let (bw, bh) = (r[4] * w as f32, r[5] * h as f32);
                    if bw < 6.0 || bh < 6.0 {
                        continue;
                    }
                    let (cx, cy) = ((r[2] * w as f32) as usize, (r[3] * h as f32) as usize);
                    let got = pixel(&px, r[0] as usize, h, w, cx, cy);
                    let want = PALETTE[r[1] as usize];
                    let close = got.iter().zip(want).all(|(&a, b)| a.abs_diff(b) <= 40);
                    assert!(close, "mosaic={mosaic} rect={rect}: centre of {r:?} is {got:?}, class colour {want:?}");
                    checked += 1;
                }
            }
        }
        assert!(checked > 20, "mosaic={mosaic} rect={rect}: only {checked} targets checked");
    }
}

/// Pixels, target rows and source indices of one batch.
type BatchData = (Vec<f32>, Vec<[f32; 6]>, Vec<usize>);

/// All images and targets of an epoch.
fn run(loader: &Loader, epoch: u64) -> Vec<BatchData> {
    loader
        .epoch(epoch)
        .map(|b| {
            let b = b.unwrap();
            (images(&b), b.target_rows.clone(), b.samples.iter().map(|m| m.index).collect())
        })
        .collect()
}

#[test]
fn same_seed_same_batches_whatever_the_worker_count() {
    let source: Arc<dyn SampleSource> = Arc::new(dataset(11));
    let hyp = Hyp { mixup: 0.5, degrees: 5.0, ..Hyp::default() };
    let cfg = |workers, seed| LoaderConfig { hyp: hyp.clone(), seed, ..train_cfg(64, 4, workers) };
    let one = run(&Loader::new(source.clone(), cfg(1, 7), &device()).unwrap(), 3);
    let three = run(&Loader::new(source.clone(), cfg(3, 7), &device()).unwrap(), 3);
    let inline = run(&Loader::new(source.clone(), cfg(0, 7), &device()).unwrap(), 3);
    assert!(one == three, "1 and 3 workers differ");
    assert!(one == inline, "1 worker and the calling thread differ");
    let other_seed = run(&Loader::new(source.clone(), cfg(3, 8), &device()).unwrap(), 3);
    assert!(one != other_seed, "different seeds gave identical batches");
    let other_epoch = run(&Loader::new(source, cfg(3, 7), &device()).unwrap(), 4);
    let order = |r: &[BatchData]| r.iter().flat_map(|b| b.2.clone()).collect::<Vec<_>>();
    assert_ne!(order(&one), order(&other_epoch), "the epoch does not change the order");
}

#[test]
fn epoch_order_is_a_permutation_that_changes() {
    let loader = Loader::new(Arc::new(dataset(20)), train_cfg(64, 4, 0), &device()).unwrap();
    let (a, b) = (loader.order(0), loader.order(1));
    assert_ne!(a, b);
    let mut sorted = a.clone();
    sorted.sort_unstable();
    assert_eq!(sorted, (0..20).collect::<Vec<_>>());
    assert_eq!(loader.order(0), a, "the order is a function of (seed, epoch)");
    let plain = Loader::new(Arc::new(dataset(5)), LoaderConfig { shuffle: false, ..train_cfg(64, 2, 0) }, &device());
    assert_eq!(plain.unwrap().order(9), vec![0, 1, 2, 3, 4]);
}

/// A source that counts decodes (and can fail some indices).
struct Counting {
    inner: VecSource,
    gets: AtomicUsize,
    bad: HashSet<usize>,
}

impl SampleSource for Counting {
    fn len(&self) -> usize {
        self.inner.len()
    }
    fn get(&self, index: usize) -> Result<Sample, DataError> {
        self.gets.fetch_add(1, Ordering::SeqCst);
        if self.bad.contains(&index) {
            return Err(DataError::EmptyImage { width: 0, height: 0 });
        }
        self.inner.get(index)
    }
    fn shape(&self, index: usize) -> Option<(u32, u32)> {
        self.inner.shape(index)
    }
    fn name(&self, index: usize) -> String {
        format!("img{index}.png")
    }
}

#[test]
fn a_slow_consumer_bounds_the_producer() {
    let source = Arc::new(Counting { inner: dataset(40), gets: AtomicUsize::new(0), bad: HashSet::new() });
    // No augmentation: exactly one decode per sample.
    let cfg = LoaderConfig { augment: false, prefetch: 2, ..train_cfg(64, 4, 3) };
    let loader = Loader::new(source.clone(), cfg, &device()).unwrap();
    let gets = || source.gets.load(Ordering::SeqCst);
    // Waits until the workers have decoded `n` samples (they may be slow on a loaded machine), then
    // gives them time to overshoot, which they must not.
    let settle = |n: usize| {
        let t = Instant::now();
        while gets() < n && t.elapsed() < Duration::from_secs(10) {
            std::thread::sleep(Duration::from_millis(5));
        }
        std::thread::sleep(Duration::from_millis(150));
        gets()
    };
    let mut epoch = loader.epoch(0);
    assert_eq!(settle(8), 8, "before any batch is taken: 2 batches of 4");
    for taken in 1..=4 {
        epoch.next().unwrap().unwrap();
        assert_eq!(settle((taken + 2) * 4), (taken + 2) * 4, "after {taken} batches");
    }
    drop(epoch);
    // Dropping the epoch stops the workers.
    let after = source.gets.load(Ordering::SeqCst);
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(source.gets.load(Ordering::SeqCst), after);
}

#[test]
fn drop_last_and_the_last_partial_batch() {
    let source: Arc<dyn SampleSource> = Arc::new(dataset(10));
    let keep = Loader::new(source.clone(), train_cfg(64, 4, 2), &device()).unwrap();
    assert_eq!((keep.len(), keep.num_samples()), (3, 10));
    let sizes: Vec<usize> = keep.epoch(0).map(|b| b.unwrap().len()).collect();
    assert_eq!(sizes, vec![4, 4, 2]);
    let drop = Loader::new(source.clone(), LoaderConfig { drop_last: true, ..train_cfg(64, 4, 2) }, &device()).unwrap();
    assert_eq!((drop.len(), drop.num_samples()), (2, 8));
    let sizes: Vec<usize> = drop.epoch(0).map(|b| b.unwrap().len()).collect();
    assert_eq!(sizes, vec![4, 4]);
    let none = Loader::new(source, LoaderConfig { drop_last: true, ..train_cfg(64, 16, 2) }, &device()).unwrap();
    assert!(none.is_empty());
    assert_eq!(none.epoch(0).count(), 0);
}

#[test]
fn rect_batches_have_stride_multiple_shapes_and_map_back() {
    let source = Arc::new(dataset(9));
    let cfg = LoaderConfig { workers: 2, ..LoaderConfig::val(128, 4) };
    let loader = Loader::new(source.clone(), cfg, &device()).unwrap();
    let mut shapes = HashSet::new();
    let mut seen = Vec::new();
    for b in loader.epoch(0) {
        let b = b.unwrap();
        let (h, w) = b.image_shape();
        assert!(h % 32 == 0 && w % 32 == 0, "{h}x{w}");
        assert!(h <= 160 && w <= 160, "{h}x{w}");
        assert_eq!(loader.batch_shape(b.index), (h as u32, w as u32));
        shapes.insert((h, w));
        for (i, m) in b.samples.iter().enumerate() {
            assert!(!m.mosaic);
            let info = m.letterbox.expect("letterbox info in val");
            let original = source.get(m.index).unwrap();
            assert_eq!(m.original_shape, (original.image.height(), original.image.width()));
            // Each target maps back onto the original box: exactly with per-axis gains, and within
            // 2 px with ultralytics' single gain `h / h0` (`scale_boxes` in val.py), which is off by
            // up to x / h0 px on the axis that `ceil` rounded (small images here, so up to ~2 px).
            let rows: Vec<&[f32; 6]> = b.target_rows.iter().filter(|r| r[0] as usize == i).collect();
            assert_eq!(rows.len(), original.boxes.len());
            for (r, want) in rows.iter().zip(&original.boxes) {
                let (xc, yc, bw, bh) = (r[2] * w as f32, r[3] * h as f32, r[4] * w as f32, r[5] * h as f32);
                let xyxy = [xc - bw / 2.0, yc - bh / 2.0, xc + bw / 2.0, yc + bh / 2.0];
                let exact = m.to_original(xyxy);
                let ultralytics = info.unletterbox_box(xyxy);
                for k in 0..4 {
                    assert!((exact[k] - want.xyxy[k]).abs() <= 0.01, "{exact:?} vs {:?}", want.xyxy);
                    assert!((ultralytics[k] - want.xyxy[k]).abs() <= 2.0, "{ultralytics:?} vs {:?}", want.xyxy);
                }
            }
            seen.push(m.index);
        }
    }
    assert!(shapes.len() > 1, "aspect-sorted batches get different shapes: {shapes:?}");
    seen.sort_unstable();
    assert_eq!(seen, (0..9).collect::<Vec<_>>(), "every image exactly once");
}

#[test]
fn corrupt_samples_are_replaced_and_reported() {
    let bad: HashSet<usize> = [2, 3, 7].into();
    let source = Arc::new(Counting { inner: dataset(12), gets: AtomicUsize::new(0), bad });
    let run = |workers| {
        let cfg = LoaderConfig { workers, ..train_cfg(64, 4, 0) };
        let loader = Loader::new(source.clone(), cfg, &device()).unwrap();
        let mut warnings = Vec::new();
        let mut data = Vec::new();
        for b in loader.epoch(0) {
            let b = b.unwrap();
            assert!(b.samples.iter().all(|m| ![2, 3, 7].contains(&m.index)));
            warnings.extend(b.warnings.clone());
            data.push((images(&b), b.target_rows.clone()));
        }
        (warnings, data)
    };
    let (warnings, one) = run(1);
    assert!(!warnings.is_empty());
    assert!(warnings.iter().any(|w| w.contains("img2.png") && w.contains("replaced by img4.png")), "{warnings:?}");
    let (_, two) = run(2);
    assert!(one == two, "replacement is deterministic");

    let all_bad = Arc::new(Counting { inner: dataset(3), gets: AtomicUsize::new(0), bad: [0, 1, 2].into() });
    let loader = Loader::new(all_bad, train_cfg(64, 2, 2), &device()).unwrap();
    let results: Vec<_> = loader.epoch(0).collect();
    assert_eq!(results.len(), 1, "one error, then the epoch ends");
    assert!(matches!(results[0], Err(LoaderError::NoUsableSamples { count: 3, .. })));
}

#[test]
fn settings_are_checked() {
    let source: Arc<dyn SampleSource> = Arc::new(dataset(2));
    let err = |cfg| Loader::new(source.clone(), cfg, &device()).unwrap_err().to_string();
    assert!(err(LoaderConfig { batch_size: 0, ..LoaderConfig::default() }).contains("batch_size"));
    assert!(err(LoaderConfig { prefetch: 0, ..LoaderConfig::default() }).contains("prefetch"));
    assert!(err(LoaderConfig { imgsz: 100, ..LoaderConfig::default() }).contains("use 128"));
    let bad_hyp = LoaderConfig { hyp: Hyp { fliplr: 2.0, ..Hyp::default() }, ..LoaderConfig::default() };
    assert!(err(bad_hyp).contains("fliplr"));
    let empty: Arc<dyn SampleSource> = Arc::new(VecSource(vec![]));
    assert!(matches!(Loader::new(empty, LoaderConfig::default(), &device()), Err(LoaderError::EmptySource)));
}

#[test]
fn prepare_matches_the_batches_and_dropping_early_is_clean() {
    let loader = Loader::new(Arc::new(dataset(8)), train_cfg(64, 4, 2), &device()).unwrap();
    let first = loader.epoch(2).next().unwrap().unwrap();
    let p = loader.prepare(2, 1).unwrap();
    let chw = yolo_compress_data::image_to_chw(&p.sample.image);
    assert_eq!(images(&first)[chw.len()..2 * chw.len()], chw[..]);
    assert_eq!(p.meta, first.samples[1]);
    // An epoch dropped after one batch stops its threads promptly.
    let t = Instant::now();
    for _ in 0..5 {
        let mut e = loader.epoch(0);
        e.next().unwrap().unwrap();
    }
    assert!(t.elapsed() < Duration::from_secs(20));
}
