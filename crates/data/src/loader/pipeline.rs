//! Building one sample of an epoch: ultralytics' `LoadImagesAndLabels.__getitem__`, seeded by
//! `(seed, epoch, position)`, with corrupt samples replaced.

use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use super::config::{LoaderConfig, LoaderError};
use crate::augment::{
    PerspectiveParams, augment_hsv, letterbox_sample, mixup_with_ratio, mosaic, random_flips, random_perspective,
    resize_to_imgsz, sample_beta,
};
use crate::letterbox::LetterboxInfo;
use crate::sample::{LabeledBox, Sample, SampleSource};

/// Domain tags that keep the generators of different uses apart.
const TAG_SAMPLE: u64 = 0x5341_4d50_4c45_0001;
const TAG_ORDER: u64 = 0x4f52_4445_5200_0002;

/// A ChaCha8 generator keyed by four 64-bit words (no hashing: ChaCha is a keyed PRF, so distinct
/// keys give independent streams).
fn keyed_rng(words: [u64; 4]) -> ChaCha8Rng {
    let mut key = [0u8; 32];
    for (chunk, w) in key.chunks_exact_mut(8).zip(words) {
        chunk.copy_from_slice(&w.to_le_bytes());
    }
    ChaCha8Rng::from_seed(key)
}

/// The generator of every random draw for the sample at `position` of `epoch` (mosaic partners,
/// geometry, colour, flips, mixup), so the result does not depend on which thread builds it.
pub fn sample_rng(seed: u64, epoch: u64, position: usize) -> ChaCha8Rng {
    keyed_rng([seed, epoch, position as u64, TAG_SAMPLE])
}

/// The generator of the shuffled order of `epoch`.
pub fn order_rng(seed: u64, epoch: u64) -> ChaCha8Rng {
    keyed_rng([seed, epoch, 0, TAG_ORDER])
}

/// Host-side facts about one image of a batch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SampleMeta {
    /// Index in the source of the image (after replacement of a corrupt sample; for a mosaic, the
    /// sample the mosaic was built for).
    pub index: usize,
    /// The source's name of that sample (usually the file path).
    pub name: String,
    /// Original `(height, width)` in pixels.
    pub original_shape: (u32, u32),
    /// `(height, width)` after ultralytics' `load_image` resize (long side to `imgsz`), before
    /// letterboxing; for a mosaic, that of the sample's own tile.
    pub resized_shape: (u32, u32),
    /// `(height, width)` of the image in the batch.
    pub shape: (u32, u32),
    /// How the original maps onto the batch image, as ultralytics' `shapes` for `scale_boxes`:
    /// the resize and letterbox gains combined into one `ratio` (ultralytics uses the height gain
    /// `h / h0` for both axes), the letterbox `pad`, the original shape.
    /// [`LetterboxInfo::unletterbox_box`] then maps predictions back exactly as `val.py` does;
    /// [`SampleMeta::to_original`] maps them with per-axis gains instead. `None` for mosaics,
    /// whose pixels come from four images.
    pub letterbox: Option<LetterboxInfo>,
    /// Whether the image is a mosaic.
    pub mosaic: bool,
}

impl SampleMeta {
    /// Maps a box `[x1, y1, x2, y2]` in batch-image pixels back to the original image with the
    /// exact per-axis gains (`ceil` in the resize makes the two axes differ slightly), clipped to
    /// the original. Mosaics (no single original) map to the box unchanged.
    pub fn to_original(&self, xyxy: [f32; 4]) -> [f32; 4] {
        let Some(info) = self.letterbox else { return xyxy };
        let (h0, w0) = (f64::from(self.original_shape.0), f64::from(self.original_shape.1));
        // `info.ratio` = letterbox gain * h / h0; undo the height gain to get the letterbox gain.
        let lb = f64::from(info.ratio) * h0 / f64::from(self.resized_shape.0);
        let gx = lb * f64::from(self.resized_shape.1) / w0;
        let gy = lb * f64::from(self.resized_shape.0) / h0;
        let (px, py) = (f64::from(info.pad.0), f64::from(info.pad.1));
        let x = |v: f32| ((f64::from(v) - px) / gx).clamp(0.0, w0) as f32;
        let y = |v: f32| ((f64::from(v) - py) / gy).clamp(0.0, h0) as f32;
        [x(xyxy[0]), y(xyxy[1]), x(xyxy[2]), y(xyxy[3])]
    }
}

/// One finished sample: the image and its boxes in pixels of it, clipped to the image.
#[derive(Debug, Clone)]
pub struct Prepared {
    /// The augmented (or letterboxed) image and boxes.
    pub sample: Sample,
    /// Where it came from.
    pub meta: SampleMeta,
    /// Replaced corrupt samples, one message each.
    pub warnings: Vec<String>,
}

impl Prepared {
    /// Labels as ultralytics rows `(class, xc, yc, w, h)` normalised to the image size.
    pub fn label_rows(&self) -> Vec<[f32; 5]> {
        let (w, h) = self.sample.image.dimensions();
        self.sample
            .boxes
            .iter()
            .map(|b| {
                let [xc, yc, bw, bh] = b.to_yolo(w, h);
                [b.class_id as f32, xc, yc, bw, bh]
            })
            .collect()
    }
}

/// A mosaic and the facts about the sample it was built for.
struct Mosaic {
    sample: Sample,
    index: usize,
    original_shape: (u32, u32),
    resized_shape: (u32, u32),
}

/// Everything needed to build samples of one epoch.
pub(crate) struct Pipeline<'a> {
    pub source: &'a dyn SampleSource,
    pub cfg: &'a LoaderConfig,
}

impl Pipeline<'_> {
    /// Decodes sample `index`, replacing it by the next index (cyclically) while it fails or is
    /// empty. Returns the index used.
    fn load(&self, index: usize, warnings: &mut Vec<String>) -> Result<(usize, Sample), LoaderError> {
        let n = self.source.len();
        let mut failures: Vec<(usize, String)> = Vec::new();
        for attempt in 0..n {
            let i = (index + attempt) % n;
            match self.source.get(i) {
                Ok(s) if s.image.width() > 0 && s.image.height() > 0 => {
                    for (bad, reason) in failures {
                        warnings.push(format!(
                            "{}: {reason}; replaced by {}",
                            self.source.name(bad),
                            self.source.name(i)
                        ));
                    }
                    return Ok((i, s));
                }
                Ok(s) => failures.push((i, format!("empty image ({}x{} px)", s.image.width(), s.image.height()))),
                Err(e) => failures.push((i, e.to_string())),
            }
        }
        let last = failures.last().map(|(i, r)| format!("{}: {r}", self.source.name(*i))).unwrap_or_default();
        Err(LoaderError::NoUsableSamples { count: n, last })
    }

    /// [`load`](Self::load) then ultralytics' `load_image` resize (long side to `imgsz`).
    fn load_resized(
        &self,
        index: usize,
        warnings: &mut Vec<String>,
    ) -> Result<(usize, Sample, (u32, u32)), LoaderError> {
        let (i, sample) = self.load(index, warnings)?;
        let (resized, hw0) = resize_to_imgsz(&sample, self.cfg.imgsz)?;
        Ok((i, resized, hw0))
    }

    /// One mosaic for `index` with three partners drawn uniformly from the source, the four shuffled.
    fn load_mosaic(
        &self,
        index: usize,
        rng: &mut ChaCha8Rng,
        warnings: &mut Vec<String>,
    ) -> Result<Mosaic, LoaderError> {
        let n = self.source.len();
        let mut indices = [index, rng.random_range(0..n), rng.random_range(0..n), rng.random_range(0..n)];
        indices.shuffle(rng);
        let mut main = (index, (0, 0), (0, 0));
        let mut tiles: Vec<Sample> = Vec::with_capacity(4);
        for &i in &indices {
            let (used, tile, hw0) = self.load_resized(i, warnings)?;
            if i == index {
                main = (used, hw0, (tile.image.height(), tile.image.width()));
            }
            tiles.push(tile);
        }
        let tiles: [Sample; 4] = tiles.try_into().unwrap_or_else(|_| unreachable!("four tiles"));
        let params = PerspectiveParams::from_hyp(&self.cfg.hyp);
        Ok(Mosaic {
            sample: mosaic(&tiles, self.cfg.imgsz, &params, rng),
            index: main.0,
            original_shape: main.1,
            resized_shape: main.2,
        })
    }

    /// Builds the sample at `position` of an epoch whose order maps it to source `index`;
    /// `shape` is the letterbox shape `(height, width)` (the batch shape in rect mode).
    pub fn prepare(&self, index: usize, shape: (u32, u32), rng: &mut ChaCha8Rng) -> Result<Prepared, LoaderError> {
        let cfg = self.cfg;
        let hyp = &cfg.hyp;
        let mut warnings = Vec::new();
        let use_mosaic = cfg.augment && !cfg.rect && rng.random::<f64>() < hyp.mosaic;
        let (mut sample, meta) = if use_mosaic {
            let Mosaic { sample: mut img, index: used, original_shape: hw0, resized_shape } =
                self.load_mosaic(index, rng, &mut warnings)?;
            if rng.random::<f64>() < hyp.mixup {
                let other = rng.random_range(0..self.source.len());
                let img2 = self.load_mosaic(other, rng, &mut warnings)?.sample;
                let r = sample_beta(32.0, 32.0, rng);
                // Both mosaics are imgsz x imgsz, so the sizes always match.
                if let Ok(mixed) = mixup_with_ratio(&img, &img2, r) {
                    img = mixed;
                }
            }
            let shape = (img.image.height(), img.image.width());
            let meta = SampleMeta {
                index: used,
                name: self.source.name(used),
                original_shape: hw0,
                resized_shape,
                shape,
                letterbox: None,
                mosaic: true,
            };
            (img, meta)
        } else {
            let (used, resized, hw0) = self.load_resized(index, &mut warnings)?;
            let (mut boxed, info) = letterbox_sample(&resized, shape, cfg.augment)?;
            // Ultralytics maps predictions back with gain h / h0 (the load_image resize) and the
            // letterbox padding; the letterbox gain is 1 unless the shape is smaller than the image.
            let resize_gain = f64::from(resized.image.height()) / f64::from(hw0.0);
            let letterbox =
                LetterboxInfo { ratio: (f64::from(info.ratio) * resize_gain) as f32, original: hw0, ..info };
            if cfg.augment {
                let params = PerspectiveParams::from_hyp(hyp);
                boxed = random_perspective(&boxed, &params, (0, 0), rng).0;
            }
            let shape = (boxed.image.height(), boxed.image.width());
            let meta = SampleMeta {
                index: used,
                name: self.source.name(used),
                original_shape: hw0,
                resized_shape: (resized.image.height(), resized.image.width()),
                shape,
                letterbox: Some(letterbox),
                mosaic: false,
            };
            (boxed, meta)
        };
        clip_boxes(&mut sample);
        if cfg.augment {
            augment_hsv(&mut sample.image, [hyp.hsv_h, hyp.hsv_s, hyp.hsv_v], rng);
            sample = random_flips(sample, hyp.flipud, hyp.fliplr, rng).0;
        }
        Ok(Prepared { sample, meta, warnings })
    }
}

/// Ultralytics' `xyxy2xywhn(..., clip=True, eps=1e-3)` clipping: x into `[0, w - 0.001]`, y into
/// `[0, h - 0.001]`.
fn clip_boxes(sample: &mut Sample) {
    let (w, h) = sample.image.dimensions();
    let (xmax, ymax) = (f64::from(w) - 1e-3, f64::from(h) - 1e-3);
    for b in &mut sample.boxes {
        let [x1, y1, x2, y2] = b.xyxy.map(f64::from);
        let cx = |v: f64| v.clamp(0.0, xmax) as f32;
        let cy = |v: f64| v.clamp(0.0, ymax) as f32;
        *b = LabeledBox { class_id: b.class_id, xyxy: [cx(x1), cy(y1), cx(x2), cy(y2)] };
    }
}
