//! COCO detection JSON (`instances_*.json`) → YOLO.
//!
//! Reads `images` (`id`, `file_name`, `width`, `height`), `annotations` (`image_id`,
//! `category_id`, `bbox` = `[x, y, w, h]` in pixels from the top-left corner, `iscrowd`) and
//! `categories` (`id`, `name`); other fields (segmentations, keypoints, ...) are ignored.
//! Category ids map to contiguous class ids in ascending category-id order (COCO's 1..90 with
//! gaps → 0..79), names kept. Crowd annotations are left out. Boxes are clipped to the image
//! before normalising (COCO has a few that overhang by a pixel); boxes that end up empty are
//! skipped and reported. Images without annotations get an empty label file (backgrounds).

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_json::Value;

use super::output::{Writer, check_names, safe_relative};
use super::{ConvertError, ConvertOptions, ConvertReport};
use crate::dataset::{LabelRow, Split};

/// One entry of `images`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CocoImage {
    /// `id` (an integer or a string), as text.
    pub id: String,
    /// `file_name`, relative to the image folder.
    pub file_name: String,
    /// `width` in pixels, when given and positive.
    pub width: Option<u32>,
    /// `height` in pixels, when given and positive.
    pub height: Option<u32>,
}

/// One entry of `annotations`.
#[derive(Debug, Clone, PartialEq)]
pub struct CocoAnnotation {
    /// `id` as text, when present (for messages).
    pub id: Option<String>,
    /// Position in `annotations`.
    pub index: usize,
    /// `image_id` as text.
    pub image_id: String,
    /// `category_id`.
    pub category_id: i64,
    /// `bbox`: `[x, y, w, h]` pixels, `(x, y)` the top-left corner.
    pub bbox: [f64; 4],
    /// `iscrowd`.
    pub iscrowd: bool,
}

impl CocoAnnotation {
    /// `annotation <id>` or `annotations[<index>]`, for messages.
    pub fn label(&self) -> String {
        match &self.id {
            Some(id) => format!("annotation {id}"),
            None => format!("annotations[{}]", self.index),
        }
    }
}

/// One entry of `categories`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CocoCategory {
    /// `id`.
    pub id: i64,
    /// `name`.
    pub name: String,
}

/// The parts of a COCO JSON that detection needs.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CocoDataset {
    /// `images`, in file order.
    pub images: Vec<CocoImage>,
    /// `annotations`, in file order (empty when the key is absent, as in test-set files).
    pub annotations: Vec<CocoAnnotation>,
    /// `categories`, in file order.
    pub categories: Vec<CocoCategory>,
}

/// The YOLO labels of a COCO dataset, before anything is written.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CocoLabels {
    /// Class names, in class-id order.
    pub names: Vec<String>,
    /// Per entry of [`CocoDataset::images`] that can be converted: its index and its rows.
    pub images: Vec<(usize, Vec<LabelRow>)>,
    /// `(item, reason)` of each annotation or image left out because something is wrong with it.
    pub skipped: Vec<(String, String)>,
    /// Annotations left out by design, counted by reason.
    pub ignored: BTreeMap<String, usize>,
    /// Non-fatal notes.
    pub warnings: Vec<String>,
}

#[derive(Deserialize)]
struct RawCoco {
    images: Option<Vec<RawImage>>,
    annotations: Option<Vec<RawAnnotation>>,
    categories: Option<Vec<RawCategory>>,
}

#[derive(Deserialize)]
struct RawImage {
    id: Option<Value>,
    file_name: Option<Value>,
    width: Option<Value>,
    height: Option<Value>,
}

#[derive(Deserialize)]
struct RawAnnotation {
    id: Option<Value>,
    image_id: Option<Value>,
    category_id: Option<Value>,
    bbox: Option<Value>,
    iscrowd: Option<Value>,
}

#[derive(Deserialize)]
struct RawCategory {
    id: Option<Value>,
    name: Option<Value>,
}

impl CocoDataset {
    /// Parses COCO JSON text; `origin` names it in errors. Fails on malformed JSON (with line
    /// and column), a missing `images` or `categories`, and entries with missing or mistyped
    /// fields or duplicate ids (naming the entry and its id).
    pub fn parse(text: &str, origin: &Path) -> Result<Self, ConvertError> {
        let raw: RawCoco = serde_json::from_str(text).map_err(|e| ConvertError::Syntax {
            path: origin.to_path_buf(),
            message: format!("invalid COCO JSON: {e}"),
        })?;
        let invalid = |at: String, reason: String| ConvertError::Invalid { path: origin.to_path_buf(), at, reason };
        let missing = |key: &str| invalid(key.to_string(), "missing (not a COCO detection file?)".into());

        let mut images = Vec::new();
        let mut image_ids = HashMap::new();
        for (i, r) in raw.images.ok_or_else(|| missing("images"))?.into_iter().enumerate() {
            let at = |id: Option<&str>| match id {
                Some(id) => format!("images[{i}] (id {id})"),
                None => format!("images[{i}]"),
            };
            let id =
                r.id.as_ref().and_then(id_text).ok_or_else(|| invalid(at(None), "no integer or string `id`".into()))?;
            let file_name = r
                .file_name
                .as_ref()
                .and_then(Value::as_str)
                .map(str::to_string)
                .ok_or_else(|| invalid(at(Some(&id)), "no string `file_name`".into()))?;
            let width = size(r.width.as_ref()).map_err(|e| invalid(at(Some(&id)), format!("`width` {e}")))?;
            let height = size(r.height.as_ref()).map_err(|e| invalid(at(Some(&id)), format!("`height` {e}")))?;
            if image_ids.insert(id.clone(), i).is_some() {
                return Err(invalid(at(Some(&id)), "duplicate image id".into()));
            }
            images.push(CocoImage { id, file_name, width, height });
        }

        let mut categories = Vec::new();
        for (i, r) in raw.categories.ok_or_else(|| missing("categories"))?.into_iter().enumerate() {
            let id =
                r.id.as_ref()
                    .and_then(Value::as_i64)
                    .ok_or_else(|| invalid(format!("categories[{i}]"), "no integer `id`".into()))?;
            let at = format!("categories[{i}] (id {id})");
            let name = r
                .name
                .as_ref()
                .and_then(Value::as_str)
                .map(str::to_string)
                .ok_or_else(|| invalid(at.clone(), "no string `name`".into()))?;
            if categories.iter().any(|c: &CocoCategory| c.id == id) {
                return Err(invalid(at, "duplicate category id".into()));
            }
            categories.push(CocoCategory { id, name });
        }

        let mut annotations = Vec::new();
        for (index, r) in raw.annotations.unwrap_or_default().into_iter().enumerate() {
            let id = r.id.as_ref().and_then(id_text);
            let at = match &id {
                Some(id) => format!("annotations[{index}] (id {id})"),
                None => format!("annotations[{index}]"),
            };
            let image_id = r
                .image_id
                .as_ref()
                .and_then(id_text)
                .ok_or_else(|| invalid(at.clone(), "no integer or string `image_id`".into()))?;
            let category_id = r
                .category_id
                .as_ref()
                .and_then(Value::as_i64)
                .ok_or_else(|| invalid(at.clone(), "no integer `category_id`".into()))?;
            let bbox = r
                .bbox
                .as_ref()
                .and_then(Value::as_array)
                .filter(|b| b.len() == 4)
                .and_then(|b| {
                    let v: Vec<f64> = b.iter().filter_map(Value::as_f64).filter(|x| x.is_finite()).collect();
                    <[f64; 4]>::try_from(v).ok()
                })
                .ok_or_else(|| invalid(at.clone(), "`bbox` is not an array of 4 finite numbers [x, y, w, h]".into()))?;
            let iscrowd = match &r.iscrowd {
                None | Some(Value::Null) => false,
                Some(Value::Bool(b)) => *b,
                Some(v) => {
                    v.as_i64().map(|c| c != 0).ok_or_else(|| invalid(at.clone(), "`iscrowd` is not 0 or 1".into()))?
                }
            };
            annotations.push(CocoAnnotation { id, index, image_id, category_id, bbox, iscrowd });
        }
        Ok(CocoDataset { images, annotations, categories })
    }

    /// The class names: the category names in ascending category-id order.
    pub fn names(&self) -> Vec<String> {
        let mut cats: Vec<&CocoCategory> = self.categories.iter().collect();
        cats.sort_by_key(|c| c.id);
        cats.into_iter().map(|c| c.name.clone()).collect()
    }

    /// Converts the annotations to YOLO rows. `names` picks and orders the classes by category
    /// name (default: [`CocoDataset::names`]). `size_of` gives the `(width, height)` of an image
    /// whose JSON entry lacks it (read from the file's header by [`convert_coco`]); it is called
    /// only for images that have boxes.
    pub fn to_yolo(
        &self,
        names: Option<&[String]>,
        mut size_of: impl FnMut(&CocoImage) -> Result<(u32, u32), String>,
    ) -> CocoLabels {
        let mut out =
            CocoLabels { names: names.map_or_else(|| self.names(), <[String]>::to_vec), ..CocoLabels::default() };
        // Category id → class id (None: a category left out by `names`).
        let class_of: HashMap<i64, Option<usize>> = match names {
            None => {
                let mut ids: Vec<i64> = self.categories.iter().map(|c| c.id).collect();
                ids.sort_unstable();
                ids.into_iter().enumerate().map(|(class, id)| (id, Some(class))).collect()
            }
            Some(names) => {
                for n in names {
                    if !self.categories.iter().any(|c| &c.name == n) {
                        out.warnings.push(format!("class `{n}` of --names is not a category of this file"));
                    }
                }
                self.categories.iter().map(|c| (c.id, names.iter().position(|n| *n == c.name))).collect()
            }
        };
        let image_index: HashMap<&str, usize> =
            self.images.iter().enumerate().map(|(i, im)| (im.id.as_str(), i)).collect();

        let mut boxes: Vec<Vec<(usize, [f64; 4], &CocoAnnotation)>> = vec![Vec::new(); self.images.len()];
        for a in &self.annotations {
            if a.iscrowd {
                *out.ignored.entry("iscrowd".into()).or_default() += 1;
                continue;
            }
            let Some(&im) = image_index.get(a.image_id.as_str()) else {
                out.skipped.push((a.label(), format!("image_id {} is not in `images`", a.image_id)));
                continue;
            };
            let class = match class_of.get(&a.category_id) {
                None => {
                    out.skipped.push((a.label(), format!("category_id {} is not in `categories`", a.category_id)));
                    continue;
                }
                Some(None) => {
                    *out.ignored.entry("not in --names".into()).or_default() += 1;
                    continue;
                }
                Some(Some(c)) => *c,
            };
            let [_, _, w, h] = a.bbox;
            if w <= 0.0 || h <= 0.0 {
                out.skipped.push((a.label(), format!("non-positive box size {w}x{h}")));
                continue;
            }
            boxes[im].push((class, a.bbox, a));
        }

        for (i, (image, anns)) in self.images.iter().zip(boxes).enumerate() {
            let (width, height) = if anns.is_empty() {
                (1, 1)
            } else {
                match (image.width, image.height) {
                    (Some(w), Some(h)) => (w, h),
                    _ => match size_of(image) {
                        Ok(s) if s.0 > 0 && s.1 > 0 => s,
                        Ok(s) => {
                            out.skipped.push((image_label(image), format!("image is {}x{} px", s.0, s.1)));
                            continue;
                        }
                        Err(e) => {
                            out.skipped.push((image_label(image), format!("no width/height and {e}")));
                            continue;
                        }
                    },
                }
            };
            let mut rows = Vec::with_capacity(anns.len());
            for (class, [x, y, w, h], a) in anns {
                let (fw, fh) = (f64::from(width), f64::from(height));
                let (x1, y1) = (x.clamp(0.0, fw), y.clamp(0.0, fh));
                let (x2, y2) = ((x + w).clamp(0.0, fw), (y + h).clamp(0.0, fh));
                if x2 <= x1 || y2 <= y1 {
                    out.skipped
                        .push((a.label(), format!("box [{x}, {y}, {w}, {h}] lies outside the {width}x{height} image")));
                    continue;
                }
                let xywhn =
                    [(x1 + x2) / 2.0 / fw, (y1 + y2) / 2.0 / fh, (x2 - x1) / fw, (y2 - y1) / fh].map(|v| v as f32);
                if xywhn[2] <= 0.0 || xywhn[3] <= 0.0 {
                    out.skipped.push((a.label(), format!("box [{x}, {y}, {w}, {h}] is too small to represent")));
                    continue;
                }
                rows.push(LabelRow { class_id: class, xywhn });
            }
            out.images.push((i, rows));
        }
        out
    }
}

/// `image <id> (<file_name>)`, for messages.
fn image_label(image: &CocoImage) -> String {
    format!("image {} ({})", image.id, image.file_name)
}

/// An id: an integer, or a string.
fn id_text(v: &Value) -> Option<String> {
    match v {
        Value::Number(n) if n.is_i64() || n.is_u64() => Some(n.to_string()),
        Value::String(s) => Some(s.clone()),
        _ => None,
    }
}

/// `width`/`height`: absent, null or 0 → `None`; a positive integer (or integral float);
/// anything else an error.
fn size(v: Option<&Value>) -> Result<Option<u32>, String> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(v) => {
            // Integers, or floats with an integral value (some tools write `640.0`).
            let n = v
                .as_u64()
                .or_else(|| v.as_f64().filter(|f| *f >= 0.0 && f.fract() == 0.0 && *f < 1e15).map(|f| f as u64));
            match n {
                Some(0) => Ok(None),
                Some(n) => u32::try_from(n).map(Some).map_err(|_| format!("{n} is too large")),
                None => Err(format!("{v} is not a non-negative integer")),
            }
        }
    }
}

/// Converts a COCO JSON into a YOLO dataset under `out` (see the [module](self) and
/// [`ConvertOptions`]). Images are looked up as `file_name` under `opts.images` (default: the
/// JSON's folder).
pub fn convert_coco(json: &Path, out: &Path, opts: &ConvertOptions) -> Result<ConvertReport, ConvertError> {
    if let Some(names) = &opts.names {
        check_names(names)?;
    }
    let text =
        std::fs::read_to_string(json).map_err(|source| ConvertError::Read { path: json.to_path_buf(), source })?;
    let coco = CocoDataset::parse(&text, json)?;
    let folder = match &opts.images {
        Some(dir) => dir.clone(),
        None => json.parent().map(Path::to_path_buf).unwrap_or_default(),
    };
    let source = |image: &CocoImage| -> Result<(PathBuf, PathBuf), String> {
        let rel = safe_relative(&image.file_name)
            .ok_or_else(|| format!("file_name {:?} is not a relative path inside the image folder", image.file_name))?;
        Ok((folder.join(&rel), rel))
    };
    let labels = coco.to_yolo(opts.names.as_deref(), |image| {
        let (src, _) = source(image)?;
        image::ImageReader::open(&src)
            .and_then(image::ImageReader::with_guessed_format)
            .map_err(image::ImageError::from)
            .and_then(image::ImageReader::into_dimensions)
            .map_err(|e| format!("cannot read the size of {}: {e}", src.display()))
    });

    let split = opts.split.unwrap_or(Split::Train);
    let mut w = Writer::new(out, labels.names, opts);
    for (item, reason) in labels.skipped {
        w.skip(json, item, reason);
    }
    for (why, n) in labels.ignored {
        w.ignore(&why, n);
    }
    w.report.warnings.extend(labels.warnings);
    for (i, rows) in labels.images {
        let image = &coco.images[i];
        match source(image) {
            Ok((src, rel)) => w.add(split, &src, &rel, &rows, json, &image_label(image))?,
            Err(reason) => w.skip(json, image_label(image), reason),
        }
    }
    w.finish()
}
