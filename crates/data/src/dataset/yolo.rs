//! A verified split of a YOLO dataset, as a [`SampleSource`].

use std::path::{Path, PathBuf};

use super::DatasetError;
use super::config::{DataConfig, Split};
use super::labels::LabelRow;
use super::verify::{SplitReport, VerifiedImage, VerifyOptions, verify_split};
use crate::error::DataError;
use crate::sample::{LabeledBox, Sample, SampleSource};

/// One split of an ultralytics-format dataset after verification: the usable images with their
/// labels and sizes, the class names, and the report of what was skipped.
///
/// ```no_run
/// use yolo_compress_data::SampleSource;
/// use yolo_compress_data::dataset::{Split, YoloDataset};
///
/// let val = YoloDataset::open("coco128.yaml", Split::Val)?;
/// println!("{} images, {} skipped", val.len(), val.report().corrupt.len());
/// let sample = val.get(0)?; // decoded, EXIF orientation applied, boxes in pixels
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct YoloDataset {
    config: DataConfig,
    split: Split,
    items: Vec<VerifiedImage>,
    report: SplitReport,
}

impl YoloDataset {
    /// Opens `split` of the dataset described by `data_yaml`, with the default
    /// [`VerifyOptions`] (cache on).
    pub fn open(data_yaml: impl AsRef<Path>, split: Split) -> Result<Self, DatasetError> {
        Self::open_with(data_yaml, split, &VerifyOptions::default())
    }

    /// Opens `split` of the dataset described by `data_yaml` with the given verification options.
    pub fn open_with(data_yaml: impl AsRef<Path>, split: Split, opts: &VerifyOptions) -> Result<Self, DatasetError> {
        Self::from_config(DataConfig::load(data_yaml)?, split, opts)
    }

    /// Lists and verifies `split` of an already parsed data YAML. Fails when the split is
    /// missing, a listed folder or list file does not exist, or no image is usable.
    pub fn from_config(config: DataConfig, split: Split, opts: &VerifyOptions) -> Result<Self, DatasetError> {
        let images = config.images(split)?;
        let verified = verify_split(&images, config.nc(), opts);
        if verified.items.is_empty() {
            let first = verified.report.corrupt.first().map(|c| format!("{}: {}", c.file, c.reason));
            return Err(DatasetError::NoUsableImages {
                path: config.yaml.clone(),
                split: split.to_string(),
                found: images.len(),
                corrupt: verified.report.corrupt.len(),
                first_reason: first,
            });
        }
        Ok(YoloDataset { config, split, items: verified.items, report: verified.report })
    }

    /// The parsed data YAML.
    pub fn config(&self) -> &DataConfig {
        &self.config
    }

    /// Which split this is.
    pub fn split(&self) -> Split {
        self.split
    }

    /// Class names (`nc` of them).
    pub fn names(&self) -> &[String] {
        &self.config.names
    }

    /// Number of classes.
    pub fn nc(&self) -> usize {
        self.config.nc()
    }

    /// What verification found (counts, skipped files, warnings).
    pub fn report(&self) -> &SplitReport {
        &self.report
    }

    /// The usable images, with labels and sizes, without decoding anything.
    pub fn items(&self) -> &[VerifiedImage] {
        &self.items
    }

    /// The image file of sample `index`.
    pub fn image_path(&self, index: usize) -> &PathBuf {
        &self.items[index].image
    }

    /// The normalised labels of sample `index`.
    pub fn labels(&self, index: usize) -> &[LabelRow] {
        &self.items[index].labels
    }

    /// The labels of sample `index` in pixels of its (oriented) image, without decoding it.
    pub fn boxes(&self, index: usize) -> Vec<LabeledBox> {
        let (h, w) = self.items[index].shape;
        self.items[index].labels.iter().map(|r| r.to_pixels(w, h)).collect()
    }
}

impl SampleSource for YoloDataset {
    fn len(&self) -> usize {
        self.items.len()
    }

    fn get(&self, index: usize) -> Result<Sample, DataError> {
        let item = &self.items[index];
        let image = crate::image_io::load_rgb(&item.image)?;
        let (w, h) = image.dimensions();
        let boxes = item.labels.iter().map(|r| r.to_pixels(w, h)).collect();
        Ok(Sample { image, boxes })
    }

    fn shape(&self, index: usize) -> Option<(u32, u32)> {
        Some(self.items[index].shape)
    }

    fn name(&self, index: usize) -> String {
        self.items[index].image.display().to_string()
    }
}
