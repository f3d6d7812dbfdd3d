//! Loader throughput: images per second for 640 px training batches of 16 (mosaic, ultralytics'
//! `hyp.scratch-low` augmentation), tensors created on the default CPU backend (`flex`).
//!
//! `cargo bench --bench loader` (registered in a package that depends on `yolo-compress-data`,
//! `burn` with `flex`, `image`, `criterion` and `tempfile`, such as the `yolo-compress` facade). Set `YCOMP_BENCH_WORKERS`
//! to change the 2 worker threads. Variants:
//!
//! - `mosaic_memory`: 32 pre-generated noise images of varied sizes (240 to 1280 px, a few boxes
//!   each) in memory, no decoding: the augmentation pipeline alone;
//! - `letterbox_memory`: the same with mosaic off (resize + letterbox + random affine + HSV + flip);
//! - `mosaic_png`: the same images decoded from PNG files in a temporary directory (4 decodes per
//!   mosaic).
//!
//! Criterion's throughput is in images per second. Results: `docs/benchmarks.md`.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use burn::tensor::Device;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use image::RgbImage;
use yolo_compress_data::augment::Hyp;
use yolo_compress_data::loader::{Loader, LoaderConfig};
use yolo_compress_data::{DataError, LabeledBox, Sample, SampleSource, VecSource, load_rgb};

const BATCH: usize = 16;
const IMGSZ: u32 = 640;

/// SplitMix64: a few lines of deterministic noise, no RNG crate needed.
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `lo..hi`.
    fn range(&mut self, lo: u32, hi: u32) -> u32 {
        lo + (self.next() % u64::from(hi - lo)) as u32
    }
}

/// 32 noise images, sizes from 240 to 1280 px, 1 to 6 boxes each.
fn noise_samples() -> Vec<Sample> {
    let mut rng = SplitMix(0);
    (0..32)
        .map(|_| {
            let (w, h) = (rng.range(240, 1281), rng.range(240, 1281));
            let bytes = (0..w * h * 3).map(|_| rng.next() as u8).collect();
            let image = RgbImage::from_raw(w, h, bytes).expect("buffer size");
            let boxes = (0..rng.range(1, 7))
                .map(|_| {
                    let (bw, bh) = (rng.range(16, w / 2), rng.range(16, h / 2));
                    let (x, y) = (rng.range(0, w - bw) as f32, rng.range(0, h - bh) as f32);
                    LabeledBox { class_id: rng.range(0, 80) as usize, xyxy: [x, y, x + bw as f32, y + bh as f32] }
                })
                .collect();
            Sample { image, boxes }
        })
        .collect()
}

/// A source `repeat` times as long as `inner`, so an epoch lasts as long as criterion needs.
struct Repeat<S>(S, usize);

impl<S: SampleSource> SampleSource for Repeat<S> {
    fn len(&self) -> usize {
        self.0.len() * self.1
    }
    fn get(&self, index: usize) -> Result<Sample, DataError> {
        self.0.get(index % self.0.len())
    }
    fn shape(&self, index: usize) -> Option<(u32, u32)> {
        self.0.shape(index % self.0.len())
    }
}

/// Images decoded from PNG files on every `get`.
struct PngSource(Vec<(PathBuf, Vec<LabeledBox>)>);

impl SampleSource for PngSource {
    fn len(&self) -> usize {
        self.0.len()
    }
    fn get(&self, index: usize) -> Result<Sample, DataError> {
        let (path, boxes) = &self.0[index];
        Ok(Sample { image: load_rgb(path)?, boxes: boxes.clone() })
    }
}

/// Times `iters` batches from fresh epochs of `loader` (thread start-up included, about a
/// millisecond).
fn time_batches(loader: &Loader, iters: u64) -> Duration {
    let t = Instant::now();
    let mut left = iters;
    let mut epoch = 0;
    while left > 0 {
        for batch in loader.epoch(epoch).take(left as usize) {
            let batch = batch.expect("batch");
            assert_eq!(batch.images.dims(), [BATCH, 3, IMGSZ as usize, IMGSZ as usize]);
            left -= 1;
        }
        epoch += 1;
    }
    t.elapsed()
}

fn loader_throughput(c: &mut Criterion) {
    let device = Device::flex();
    let workers: usize = std::env::var("YCOMP_BENCH_WORKERS").ok().and_then(|s| s.parse().ok()).unwrap_or(2);
    let samples = noise_samples();
    let cfg = |hyp: Hyp| LoaderConfig { workers, hyp, ..LoaderConfig::train(IMGSZ, BATCH) };

    let mut group = c.benchmark_group(format!("loader_{IMGSZ}_b{BATCH}_w{workers}"));
    group.sample_size(10).warm_up_time(Duration::from_secs(2)).measurement_time(Duration::from_secs(30));
    group.throughput(Throughput::Elements(BATCH as u64));

    let memory = Arc::new(Repeat(VecSource(samples.clone()), 64));
    let mosaic = Loader::new(memory.clone(), cfg(Hyp::default()), &device).expect("loader");
    group.bench_function("mosaic_memory", |b| b.iter_custom(|iters| time_batches(&mosaic, iters)));
    let letterbox = Loader::new(memory, cfg(Hyp { mosaic: 0.0, ..Hyp::default() }), &device).expect("loader");
    group.bench_function("letterbox_memory", |b| b.iter_custom(|iters| time_batches(&letterbox, iters)));

    let dir = tempfile::tempdir().expect("temporary directory");
    let files = samples
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let path = dir.path().join(format!("{i:02}.png"));
            s.image.save(&path).expect("writing a PNG");
            (path, s.boxes.clone())
        })
        .collect();
    let png = Loader::new(Arc::new(Repeat(PngSource(files), 64)), cfg(Hyp::default()), &device).expect("loader");
    group.bench_function("mosaic_png", |b| b.iter_custom(|iters| time_batches(&png, iters)));
    group.finish();
}

criterion_group!(benches, loader_throughput);
criterion_main!(benches);
