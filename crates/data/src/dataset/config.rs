//! The ultralytics data YAML: dataset root, splits and class names.
//!
//! ```yaml
//! path: ../datasets/coco128   # dataset root; relative to this file's folder (absent: this folder)
//! train: images/train2017     # a directory (searched recursively), a .txt list of images, or a list of either
//! val: [images/val, extra.txt]
//! test:                       # optional
//! names: [person, bicycle]    # or a map {0: person, 1: bicycle}; `nc` may be given too and must agree
//! ```
//!
//! Split paths that are relative resolve against `path`. In a `.txt` list, a line that starts
//! with `./` is relative to the list's own folder (as ultralytics reads COCO's `train2017.txt`),
//! any other relative line to `path`.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Component, Path, PathBuf};
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use serde_norway::Value;

use super::DatasetError;

/// The most classes a data YAML may declare (the model crate's bound).
pub const MAX_CLASSES: usize = 100_000;

/// How deep a split directory is searched for images.
const MAX_DIR_DEPTH: usize = 32;

/// One of the three splits of a data YAML.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Split {
    /// `train`.
    Train,
    /// `val`.
    Val,
    /// `test`.
    Test,
}

impl Split {
    /// The three splits, in YAML order.
    pub const ALL: [Split; 3] = [Split::Train, Split::Val, Split::Test];

    /// The YAML key: `train`, `val` or `test`.
    pub fn as_str(self) -> &'static str {
        match self {
            Split::Train => "train",
            Split::Val => "val",
            Split::Test => "test",
        }
    }
}

impl fmt::Display for Split {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Split {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "train" => Ok(Split::Train),
            "val" => Ok(Split::Val),
            "test" => Ok(Split::Test),
            _ => Err(format!("unknown split `{s}` (expected train, val or test)")),
        }
    }
}

/// A parsed data YAML with every path resolved.
#[derive(Debug, Clone, PartialEq)]
pub struct DataConfig {
    /// The YAML file it came from (used in error messages).
    pub yaml: PathBuf,
    /// The dataset root (`path`, resolved).
    pub root: PathBuf,
    /// `train`: directories, list files or images (resolved); `None` when absent.
    pub train: Option<Vec<PathBuf>>,
    /// `val`, as `train`.
    pub val: Option<Vec<PathBuf>>,
    /// `test`, as `train`.
    pub test: Option<Vec<PathBuf>>,
    /// Class names, `nc` of them (`class0`, `class1`, ... when the YAML gives only `nc`).
    pub names: Vec<String>,
}

impl DataConfig {
    /// Reads and parses a data YAML file.
    pub fn load(yaml: impl AsRef<Path>) -> Result<Self, DatasetError> {
        let yaml = yaml.as_ref();
        let text =
            std::fs::read_to_string(yaml).map_err(|source| DatasetError::Read { path: yaml.to_path_buf(), source })?;
        Self::parse(&text, yaml)
    }

    /// Parses data YAML text; `yaml` is where it came from (relative paths resolve against its
    /// folder). Touches no file: whether the splits exist is checked by [`DataConfig::images`].
    pub fn parse(text: &str, yaml: impl AsRef<Path>) -> Result<Self, DatasetError> {
        let yaml = yaml.as_ref().to_path_buf();
        let yerr = |message: String| DatasetError::Yaml { path: yaml.clone(), message };
        let kerr = |key: &str, reason: String| DatasetError::Key { path: yaml.clone(), key: key.to_string(), reason };
        let doc: Value = serde_norway::from_str(text).map_err(|e| yerr(e.to_string()))?;
        let map = match &doc {
            Value::Mapping(m) => m,
            Value::Null => return Err(yerr("the document is empty".into())),
            other => return Err(yerr(format!("the top level is {}, not a mapping", kind(other)))),
        };
        let get = |k: &str| map.get(k).filter(|v| !v.is_null());

        let folder = yaml.parent().map(Path::to_path_buf).unwrap_or_default();
        let root = match get("path") {
            None => folder.clone(),
            Some(v) => {
                let p = scalar_string(v).ok_or_else(|| kerr("path", format!("expected a path, got {}", kind(v))))?;
                if p.is_empty() { folder.clone() } else { folder.join(p) }
            }
        };
        let root = normalize(&root);

        let mut splits = [None, None, None];
        for (slot, split) in splits.iter_mut().zip(Split::ALL) {
            let key = split.as_str();
            if let Some(v) = get(key) {
                let entries = match v {
                    Value::Sequence(items) => items
                        .iter()
                        .enumerate()
                        .map(|(i, x)| {
                            scalar_string(x)
                                .ok_or_else(|| kerr(&format!("{key}.{i}"), format!("expected a path, got {}", kind(x))))
                        })
                        .collect::<Result<Vec<_>, _>>()?,
                    other => vec![scalar_string(other).ok_or_else(|| {
                        kerr(key, format!("expected a path or a list of paths, got {}", kind(other)))
                    })?],
                };
                *slot = Some(entries.iter().map(|e| normalize(&root.join(e))).collect());
            }
        }
        let [train, val, test] = splits;

        let names = match get("names") {
            None => None,
            Some(v) => Some(parse_names(v).map_err(|(key, reason)| kerr(&key, reason))?),
        };
        let nc = match get("nc") {
            None => None,
            Some(v) => {
                let n =
                    v.as_u64().ok_or_else(|| kerr("nc", format!("expected a positive integer, got {}", show(v))))?;
                if n == 0 || n > MAX_CLASSES as u64 {
                    return Err(kerr("nc", format!("{n} is not in 1..={MAX_CLASSES}")));
                }
                Some(n as usize)
            }
        };
        let names = match (names, nc) {
            (Some(names), Some(nc)) if names.len() != nc => {
                return Err(kerr("nc", format!("nc is {nc} but `names` has {} entries", names.len())));
            }
            (Some(names), _) if names.is_empty() => return Err(kerr("names", "no class names".into())),
            (Some(names), _) => names,
            (None, Some(nc)) => (0..nc).map(|i| format!("class{i}")).collect(),
            (None, None) => return Err(kerr("names", "missing (and no `nc` either)".into())),
        };
        Ok(DataConfig { yaml, root, train, val, test, names })
    }

    /// Number of classes.
    pub fn nc(&self) -> usize {
        self.names.len()
    }

    /// The resolved entries of `split`, `None` when the YAML has no such key.
    pub fn split(&self, split: Split) -> Option<&[PathBuf]> {
        match split {
            Split::Train => self.train.as_deref(),
            Split::Val => self.val.as_deref(),
            Split::Test => self.test.as_deref(),
        }
    }

    /// The splits the YAML defines, in order train, val, test.
    pub fn splits(&self) -> Vec<Split> {
        Split::ALL.into_iter().filter(|s| self.split(*s).is_some()).collect()
    }

    /// Lists the image files of `split`: directories are searched recursively, `.txt` lists are
    /// read, files with an image extension are taken as they are. The result is sorted and free
    /// of duplicates. Listed files are not opened (verification does that).
    pub fn images(&self, split: Split) -> Result<Vec<PathBuf>, DatasetError> {
        let entries = self.split(split).ok_or_else(|| DatasetError::MissingSplit {
            path: self.yaml.clone(),
            split: split.to_string(),
            present: self.splits().iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", "),
        })?;
        let key = split.as_str();
        let mut files = Vec::new();
        for entry in entries {
            if entry.is_dir() {
                walk_images(entry, 0, &mut files)?;
            } else if entry.is_file() {
                let ext = entry.extension().and_then(|e| e.to_str()).unwrap_or("");
                if ext.eq_ignore_ascii_case("txt") {
                    read_list(entry, &self.root, &mut files)?;
                } else if crate::image_io::is_image_file(entry) {
                    files.push(entry.clone());
                } else {
                    return Err(DatasetError::Key {
                        path: self.yaml.clone(),
                        key: key.to_string(),
                        reason: format!(
                            "{} is neither a directory, a .txt list nor an image ({})",
                            entry.display(),
                            crate::IMAGE_EXTENSIONS.join(", ")
                        ),
                    });
                }
            } else {
                return Err(DatasetError::SplitNotFound {
                    path: self.yaml.clone(),
                    key: key.to_string(),
                    target: entry.clone(),
                });
            }
        }
        files.sort();
        files.dedup();
        Ok(files)
    }
}

/// `names` as a list or as a map `{0: a, 1: b}` with indices `0..n` (any order, no gaps).
/// Errors are `(key, reason)`.
fn parse_names(v: &Value) -> Result<Vec<String>, (String, String)> {
    match v {
        Value::Sequence(items) => {
            if items.len() > MAX_CLASSES {
                return Err(("names".into(), format!("{} names, more than {MAX_CLASSES}", items.len())));
            }
            items
                .iter()
                .enumerate()
                .map(|(i, x)| {
                    scalar_string(x).ok_or_else(|| (format!("names.{i}"), format!("expected a name, got {}", kind(x))))
                })
                .collect()
        }
        Value::Mapping(m) => {
            let mut by_index = BTreeMap::new();
            for (k, x) in m {
                let index = match k {
                    Value::Number(n) => n.as_u64(),
                    Value::String(s) => s.trim().parse::<u64>().ok(),
                    _ => None,
                }
                .ok_or_else(|| ("names".to_string(), format!("key {} is not a class index", show(k))))?;
                let name = scalar_string(x)
                    .ok_or_else(|| (format!("names.{index}"), format!("expected a name, got {}", kind(x))))?;
                if by_index.insert(index, name).is_some() {
                    return Err(("names".into(), format!("class index {index} appears twice")));
                }
            }
            if by_index.len() > MAX_CLASSES {
                return Err(("names".into(), format!("{} names, more than {MAX_CLASSES}", by_index.len())));
            }
            if let Some(gap) = (0..by_index.len() as u64).find(|i| !by_index.contains_key(i)) {
                return Err((
                    "names".into(),
                    format!("class indices must be 0..{} without gaps; {gap} is missing", by_index.len()),
                ));
            }
            Ok(by_index.into_values().collect())
        }
        other => Err(("names".into(), format!("expected a list or a map of names, got {}", kind(other)))),
    }
}

/// A scalar as text (strings, numbers, booleans); `None` for null, lists, maps and tags.
fn scalar_string(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// What kind of YAML value `v` is, for messages.
fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "nothing",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Sequence(_) => "a list",
        Value::Mapping(_) => "a mapping",
        Value::Tagged(_) => "a tagged value",
    }
}

/// A short rendering of a scalar (or its kind), for messages.
fn show(v: &Value) -> String {
    match v {
        Value::String(s) => format!("{s:?}"),
        Value::Number(_) | Value::Bool(_) => scalar_string(v).unwrap_or_default(),
        other => kind(other).to_string(),
    }
}

/// Drops `.` components (`a/./b` → `a/b`); `..` is kept, as symbolic links make it meaningful.
fn normalize(p: &Path) -> PathBuf {
    let mut out: PathBuf = p.components().filter(|c| !matches!(c, Component::CurDir)).collect();
    if out.as_os_str().is_empty() {
        out.push(".");
    }
    out
}

/// Appends the image files under `dir` (recursively, to [`MAX_DIR_DEPTH`]).
fn walk_images(dir: &Path, depth: usize, files: &mut Vec<PathBuf>) -> Result<(), DatasetError> {
    let io_err = |source| DatasetError::ReadDir { path: dir.to_path_buf(), source };
    for entry in std::fs::read_dir(dir).map_err(io_err)? {
        let path = entry.map_err(io_err)?.path();
        if path.is_dir() {
            if depth < MAX_DIR_DEPTH {
                walk_images(&path, depth + 1, files)?;
            }
        } else if crate::image_io::is_image_file(&path) {
            files.push(path);
        }
    }
    Ok(())
}

/// Appends the images listed in a `.txt` file (one path a line; non-image lines are ignored, as
/// ultralytics does).
fn read_list(list: &Path, root: &Path, files: &mut Vec<PathBuf>) -> Result<(), DatasetError> {
    let text =
        std::fs::read_to_string(list).map_err(|source| DatasetError::Read { path: list.to_path_buf(), source })?;
    let folder = list.parent().unwrap_or(Path::new(""));
    for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
        let p = if let Some(rest) = line.strip_prefix("./") {
            folder.join(rest)
        } else if Path::new(line).is_absolute() {
            PathBuf::from(line)
        } else {
            root.join(line)
        };
        if crate::image_io::is_image_file(&p) {
            files.push(normalize(&p));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<DataConfig, DatasetError> {
        DataConfig::parse(text, "/d/data.yaml")
    }

    #[test]
    fn names_as_list_or_map() {
        let a = parse("train: images/train\nnames: [cat, dog]").unwrap();
        let b = parse("train: images/train\nnames: {1: dog, 0: cat}\nnc: 2").unwrap();
        assert_eq!(a.names, ["cat", "dog"]);
        assert_eq!(b.names, a.names);
        assert_eq!(parse("nc: 3").unwrap().names, ["class0", "class1", "class2"]);
        assert_eq!(parse("names: {'0': 1, '1': true}").unwrap().names, ["1", "true"]);
    }

    #[test]
    fn relative_paths_resolve_against_the_yaml_folder() {
        let c = parse("path: ../ds\ntrain: images/train\nval: [a.txt, /abs/val]\nnames: [x]").unwrap();
        assert_eq!(c.root, Path::new("/d/../ds"));
        assert_eq!(c.train.unwrap(), [PathBuf::from("/d/../ds/images/train")]);
        assert_eq!(c.val.unwrap(), [PathBuf::from("/d/../ds/a.txt"), PathBuf::from("/abs/val")]);
        assert!(c.test.is_none());
        let c = parse("path: /data/coco\ntrain: ./images\nnames: [x]").unwrap();
        assert_eq!(c.train.unwrap(), [PathBuf::from("/data/coco/images")]);
        let c = parse("train: images\ntest: null\nnames: [x]").unwrap();
        assert_eq!(c.root, Path::new("/d"));
        assert!(c.test.is_none());
    }

    #[test]
    fn errors_name_the_key() {
        let cases = [
            ("names: [a, b]\nnc: 3", "`nc`"),
            ("nc: 0", "`nc`"),
            ("nc: -2", "`nc`"),
            ("nc: 1000000", "`nc`"),
            ("names: {0: a, 2: b}", "`names`"),
            ("names: {x: a}", "`names`"),
            ("names: [a, [b]]", "`names.1`"),
            ("names: 5", "`names`"),
            ("train: {a: b}\nnames: [a]", "`train`"),
            ("train: [a, {b: c}]\nnames: [a]", "`train.1`"),
            ("path: [a]\nnames: [a]", "`path`"),
            ("train: a", "`names`"),
        ];
        for (text, key) in cases {
            let e = parse(text).unwrap_err();
            assert!(matches!(e, DatasetError::Key { .. }), "{text}: {e}");
            let msg = e.to_string();
            assert!(msg.contains(key) && msg.contains("/d/data.yaml"), "{text}: {msg}");
        }
        for text in ["", "[a, b]", "a: [", "just text"] {
            assert!(matches!(parse(text), Err(DatasetError::Yaml { .. })), "{text}");
        }
    }
}
