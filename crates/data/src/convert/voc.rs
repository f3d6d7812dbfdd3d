//! Pascal VOC XML → YOLO.
//!
//! A VOC root has `Annotations/<id>.xml` (one per image), `JPEGImages/` and optionally
//! `ImageSets/Main/{train,val,test}.txt` (one id a line). Each `<object>` gives a `<name>`, an
//! optional `<difficult>` and a `<bndbox>` with `xmin`, `ymin`, `xmax`, `ymax`.
//!
//! **Coordinates.** VOC boxes are 1-based, inclusive pixel indices: `xmin = 1, xmax = W` covers
//! the whole width. They become the continuous box `[xmin − 1, ymin − 1, xmax, ymax]` in 0-based
//! pixels (as Detectron2 and MMDetection read VOC), clipped to the image. Ultralytics' VOC.yaml
//! instead subtracts 1 from the centre and uses `xmax − xmin` as the width, giving boxes half a
//! pixel further up-left and one pixel smaller.
//!
//! The image size is read from the image file's header (the `<size>` element is often missing
//! or wrong; a disagreement is a warning).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use super::output::{Writer, check_names};
use super::{ConvertError, ConvertOptions, ConvertReport};
use crate::dataset::{LabelRow, Split};

/// One `<object>` of a VOC annotation.
#[derive(Debug, Clone, PartialEq)]
pub struct VocObject {
    /// `<name>`, trimmed.
    pub name: String,
    /// `<difficult>` is 1 (or `true`).
    pub difficult: bool,
    /// `<bndbox>` as written: `[xmin, ymin, xmax, ymax]`, 1-based inclusive pixel indices.
    pub bndbox: [f64; 4],
    /// Line of the `<object>` element in the XML (1-based).
    pub line: u32,
}

impl VocObject {
    /// The normalised YOLO `(xc, yc, w, h)` on a `width × height` image (see the module's note
    /// on coordinates), or why the box is unusable (empty after clipping).
    pub fn to_yolo(&self, width: u32, height: u32) -> Result<[f32; 4], String> {
        let (fw, fh) = (f64::from(width), f64::from(height));
        let [xmin, ymin, xmax, ymax] = self.bndbox;
        let (x1, y1) = ((xmin - 1.0).clamp(0.0, fw), (ymin - 1.0).clamp(0.0, fh));
        let (x2, y2) = (xmax.clamp(0.0, fw), ymax.clamp(0.0, fh));
        if x2 <= x1 || y2 <= y1 || fw <= 0.0 || fh <= 0.0 {
            return Err(format!(
                "box xmin {xmin} ymin {ymin} xmax {xmax} ymax {ymax} is empty on the {width}x{height} image"
            ));
        }
        let b = [(x1 + x2) / 2.0 / fw, (y1 + y2) / 2.0 / fh, (x2 - x1) / fw, (y2 - y1) / fh].map(|v| v as f32);
        if b[2] <= 0.0 || b[3] <= 0.0 {
            return Err(format!("box xmin {xmin} ymin {ymin} xmax {xmax} ymax {ymax} is too small to represent"));
        }
        Ok(b)
    }
}

/// A parsed VOC annotation file.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct VocAnnotation {
    /// `<filename>`, when present.
    pub filename: Option<String>,
    /// `<size>` `(width, height)`, when present and positive.
    pub size: Option<(u32, u32)>,
    /// The `<object>`s, in file order.
    pub objects: Vec<VocObject>,
}

impl VocAnnotation {
    /// Parses VOC XML text; `origin` names it in errors. Fails on malformed XML (with the
    /// position), a root that is not `<annotation>`, and an `<object>` without a `<name>` or
    /// with a `<bndbox>` value missing or not a number (naming the element and its line). DTDs
    /// are refused.
    pub fn parse(text: &str, origin: &Path) -> Result<Self, ConvertError> {
        let opts = roxmltree::ParsingOptions { allow_dtd: false, nodes_limit: 1_000_000, ..Default::default() };
        let doc = roxmltree::Document::parse_with_options(text, opts).map_err(|e| ConvertError::Syntax {
            path: origin.to_path_buf(),
            message: format!("invalid VOC XML: {e}"),
        })?;
        let invalid = |node: roxmltree::Node, reason: String| ConvertError::Invalid {
            path: origin.to_path_buf(),
            at: format!("<{}> at line {}", node.tag_name().name(), doc.text_pos_at(node.range().start).row),
            reason,
        };
        let root = doc.root_element();
        if root.tag_name().name() != "annotation" {
            return Err(invalid(root, "the root element is not <annotation>".into()));
        }
        let text_of = |node: roxmltree::Node| node.text().unwrap_or("").trim().to_string();

        let filename = child(root, "filename").map(text_of).filter(|s| !s.is_empty());
        let size = child(root, "size").and_then(|s| {
            let dim = |name| child(s, name).map(text_of).and_then(|t| t.parse::<f64>().ok());
            match (dim("width"), dim("height")) {
                (Some(w), Some(h)) if w >= 1.0 && h >= 1.0 && w <= f64::from(u32::MAX) && h <= f64::from(u32::MAX) => {
                    Some((w as u32, h as u32))
                }
                _ => None,
            }
        });

        let mut objects = Vec::new();
        for obj in root.children().filter(|c| c.is_element() && c.tag_name().name() == "object") {
            let name = child(obj, "name").map(text_of).unwrap_or_default();
            if name.is_empty() {
                return Err(invalid(obj, "no <name>".into()));
            }
            let difficult = match child(obj, "difficult").map(text_of).as_deref() {
                None | Some("" | "0" | "false") => false,
                Some("1" | "true") => true,
                Some(other) => {
                    return Err(invalid(child(obj, "difficult").unwrap_or(obj), format!("{other:?} is not 0 or 1")));
                }
            };
            let bndbox =
                child(obj, "bndbox").ok_or_else(|| invalid(obj, format!("object `{name}` has no <bndbox>")))?;
            let mut b = [0.0; 4];
            for (slot, key) in b.iter_mut().zip(["xmin", "ymin", "xmax", "ymax"]) {
                let node = child(bndbox, key).ok_or_else(|| invalid(bndbox, format!("no <{key}>")))?;
                let t = text_of(node);
                *slot = t
                    .parse::<f64>()
                    .ok()
                    .filter(|v| v.is_finite())
                    .ok_or_else(|| invalid(node, format!("{t:?} is not a number")))?;
            }
            let line = doc.text_pos_at(obj.range().start).row;
            objects.push(VocObject { name, difficult, bndbox: b, line });
        }
        Ok(VocAnnotation { filename, size, objects })
    }
}

/// The first child element of `node` named `name`.
fn child<'a, 'input>(node: roxmltree::Node<'a, 'input>, name: &str) -> Option<roxmltree::Node<'a, 'input>> {
    node.children().find(|c| c.is_element() && c.tag_name().name() == name)
}

/// Converts a VOC root into a YOLO dataset under `out` (see the [module](self) and
/// [`ConvertOptions`]).
pub fn convert_voc(root: &Path, out: &Path, opts: &ConvertOptions) -> Result<ConvertReport, ConvertError> {
    if let Some(names) = &opts.names {
        check_names(names)?;
    }
    let ann_dir = root.join("Annotations");
    let img_dir = root.join("JPEGImages");
    for dir in [&ann_dir, &img_dir] {
        if !dir.is_dir() {
            return Err(ConvertError::Read {
                path: dir.clone(),
                source: std::io::Error::new(std::io::ErrorKind::NotFound, "not a folder (is --src a VOC root?)"),
            });
        }
    }

    // Which ids go to which split.
    let list = |split: Split| root.join("ImageSets").join("Main").join(format!("{split}.txt"));
    let mut plan: Vec<(Split, Vec<String>)> = Vec::new();
    let chosen: Vec<Split> = match opts.split {
        Some(s) => vec![s],
        None => Split::ALL.into_iter().filter(|s| list(*s).is_file()).collect(),
    };
    for split in &chosen {
        if list(*split).is_file() {
            plan.push((*split, read_ids(&list(*split))?));
        }
    }
    if plan.is_empty() {
        plan.push((chosen.first().copied().unwrap_or(Split::Train), all_ids(&ann_dir)?));
    }

    // Parse every annotation once.
    let mut parsed: BTreeMap<String, Result<VocAnnotation, String>> = BTreeMap::new();
    for id in plan.iter().flat_map(|(_, ids)| ids) {
        if parsed.contains_key(id) {
            continue;
        }
        let entry = if id.contains(['/', '\\']) || id == ".." || id == "." {
            Err(format!("id {id:?} is not a plain file name"))
        } else {
            let xml = ann_dir.join(format!("{id}.xml"));
            match std::fs::read_to_string(&xml) {
                Ok(text) => Ok(VocAnnotation::parse(&text, &xml)?),
                Err(e) => Err(format!("cannot read {}: {e}", xml.display())),
            }
        };
        parsed.insert(id.clone(), entry);
    }

    let names = match &opts.names {
        Some(n) => n.clone(),
        None => {
            let found: BTreeSet<&str> =
                parsed.values().flatten().flat_map(|a| a.objects.iter().map(|o| o.name.as_str())).collect();
            found.into_iter().map(str::to_string).collect()
        }
    };
    let mut w = Writer::new(out, names.clone(), opts);
    for (split, ids) in &plan {
        for id in ids {
            let xml = ann_dir.join(format!("{id}.xml"));
            let ann = match &parsed[id] {
                Ok(a) => a,
                Err(reason) => {
                    w.skip(&xml, format!("image {id}"), reason.clone());
                    continue;
                }
            };
            let Some(src) = find_image(&img_dir, id, ann.filename.as_deref()) else {
                w.skip(&xml, format!("image {id}"), format!("no image for it in {}", img_dir.display()));
                continue;
            };
            let (width, height) = match image::image_dimensions(&src) {
                Ok(s) if s.0 > 0 && s.1 > 0 => s,
                Ok(s) => {
                    w.skip(&xml, format!("image {id}"), format!("{} is {}x{} px", src.display(), s.0, s.1));
                    continue;
                }
                Err(e) => {
                    w.skip(&xml, format!("image {id}"), format!("cannot read the size of {}: {e}", src.display()));
                    continue;
                }
            };
            if let Some(size) = ann.size.filter(|s| *s != (width, height)) {
                w.report.warnings.push(format!(
                    "{}: <size> says {}x{}, the image is {width}x{height}; using the image's",
                    xml.display(),
                    size.0,
                    size.1
                ));
            }
            let mut rows = Vec::new();
            for (k, o) in ann.objects.iter().enumerate() {
                if o.difficult && !opts.keep_difficult {
                    w.ignore("difficult", 1);
                    continue;
                }
                let Some(class_id) = names.iter().position(|n| *n == o.name) else {
                    w.ignore("not in --names", 1);
                    continue;
                };
                match o.to_yolo(width, height) {
                    Ok(xywhn) => rows.push(LabelRow { class_id, xywhn }),
                    Err(reason) => w.skip(&xml, format!("object {k} (line {})", o.line), reason),
                }
            }
            let rel = PathBuf::from(src.file_name().unwrap_or_default());
            w.add(*split, &src, &rel, &rows, &xml, &format!("image {id}"))?;
        }
    }
    w.finish()
}

/// The ids of an `ImageSets/Main/<split>.txt` (first field of each line).
fn read_ids(list: &Path) -> Result<Vec<String>, ConvertError> {
    let text =
        std::fs::read_to_string(list).map_err(|source| ConvertError::Read { path: list.to_path_buf(), source })?;
    Ok(text.lines().filter_map(|l| l.split_whitespace().next()).map(str::to_string).collect())
}

/// The stems of every `.xml` in `Annotations/`, sorted.
fn all_ids(ann_dir: &Path) -> Result<Vec<String>, ConvertError> {
    let err = |source| ConvertError::Read { path: ann_dir.to_path_buf(), source };
    let mut ids = Vec::new();
    for entry in std::fs::read_dir(ann_dir).map_err(err)? {
        let path = entry.map_err(err)?.path();
        if path.extension().is_some_and(|e| e.eq_ignore_ascii_case("xml"))
            && let Some(stem) = path.file_stem().and_then(|s| s.to_str())
        {
            ids.push(stem.to_string());
        }
    }
    ids.sort();
    Ok(ids)
}

/// The image of `id`: `<filename>` when it is a plain name present in `JPEGImages/`, else
/// `<id>.<ext>` for each image extension.
fn find_image(img_dir: &Path, id: &str, filename: Option<&str>) -> Option<PathBuf> {
    let plain = |n: &&str| !n.contains(['/', '\\']) && *n != ".." && *n != ".";
    if let Some(p) = filename.filter(plain).map(|n| img_dir.join(n)).filter(|p| p.is_file()) {
        return Some(p);
    }
    crate::IMAGE_EXTENSIONS
        .iter()
        .flat_map(|e| [e.to_string(), e.to_uppercase()])
        .map(|e| img_dir.join(format!("{id}.{e}")))
        .find(|p| p.is_file())
}
