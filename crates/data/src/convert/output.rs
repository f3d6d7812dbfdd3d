//! Writing a YOLO dataset: images placed under `images/<split>/`, label files, `data.yaml`.

use std::collections::HashMap;
use std::path::{Component, Path, PathBuf};

use serde::Serialize;
use serde_norway::Value;

use super::{ConvertError, ConvertOptions, ConvertReport, LinkMode, Skipped};
use crate::dataset::{LabelRow, Split, label_path};

/// Collects a conversion's output and its report.
pub(crate) struct Writer<'a> {
    out: PathBuf,
    opts: &'a ConvertOptions,
    /// Output label file → the source image that wrote it (collisions are skipped).
    written: HashMap<PathBuf, PathBuf>,
    pub report: ConvertReport,
}

impl<'a> Writer<'a> {
    pub fn new(out: &Path, names: Vec<String>, opts: &'a ConvertOptions) -> Self {
        Writer {
            out: out.to_path_buf(),
            opts,
            written: HashMap::new(),
            report: ConvertReport { names, ..ConvertReport::default() },
        }
    }

    pub fn skip(&mut self, file: &Path, item: impl Into<String>, reason: impl Into<String>) {
        self.report.skipped.push(Skipped {
            file: file.display().to_string(),
            item: item.into(),
            reason: reason.into(),
        });
    }

    pub fn ignore(&mut self, why: &str, count: usize) {
        if count > 0 {
            *self.report.ignored.entry(why.to_string()).or_default() += count;
        }
    }

    /// Places `src` at `images/<split>/<rel>` and writes its labels. A missing source, or an
    /// output that another image of this run already wrote, is skipped and reported (as
    /// `item` of `file`).
    pub fn add(
        &mut self,
        split: Split,
        src: &Path,
        rel: &Path,
        rows: &[LabelRow],
        file: &Path,
        item: &str,
    ) -> Result<(), ConvertError> {
        if !src.is_file() {
            self.skip(file, item, format!("image file {} not found", src.display()));
            return Ok(());
        }
        let dest = self.out.join("images").join(split.as_str()).join(rel);
        let label = label_path(&dest);
        if let Some(first) = self.written.get(&label) {
            let reason = format!("writes the same label file {} as {}", label.display(), first.display());
            self.skip(file, item, reason);
            return Ok(());
        }
        self.written.insert(label.clone(), src.to_path_buf());
        if let Some(w) =
            place(src, &dest, self.opts.link).map_err(|source| ConvertError::Write { path: dest.clone(), source })?
        {
            self.report.warnings.push(w);
        }
        let mut text = String::new();
        for r in rows {
            text.push_str(&r.to_line());
            text.push('\n');
        }
        if let Some(dir) = label.parent() {
            std::fs::create_dir_all(dir).map_err(|source| ConvertError::Write { path: dir.to_path_buf(), source })?;
        }
        std::fs::write(&label, text).map_err(|source| ConvertError::Write { path: label.clone(), source })?;
        let s = self.report.splits.entry(split.to_string()).or_default();
        s.images += 1;
        s.instances += rows.len();
        s.empty += usize::from(rows.is_empty());
        Ok(())
    }

    /// Writes (or extends) `data.yaml` and returns the report; with nothing converted, writes
    /// nothing.
    pub fn finish(mut self) -> Result<ConvertReport, ConvertError> {
        let yaml_path = self.out.join("data.yaml");
        if self.report.splits.is_empty() {
            self.report.warnings.push(format!("no image converted; {} not written", yaml_path.display()));
            return Ok(self.report);
        }
        std::fs::create_dir_all(&self.out).map_err(|source| ConvertError::Write { path: self.out.clone(), source })?;
        let mut entries: [Option<String>; 3] = [None, None, None];
        if yaml_path.exists() {
            let existing = read_existing(&yaml_path)?;
            if existing.names != self.report.names {
                return Err(ConvertError::Existing {
                    path: yaml_path,
                    reason: format!(
                        "has class names {:?}, this conversion {:?}; pass the same --names, or use another --out",
                        existing.names, self.report.names
                    ),
                });
            }
            entries = existing.splits;
        }
        for (slot, split) in entries.iter_mut().zip(Split::ALL) {
            if self.report.splits.contains_key(split.as_str()) {
                *slot = Some(format!("images/{split}"));
            }
        }
        let [train, mut val, test] = entries;
        if val.is_none() {
            val = train.clone();
            self.report.warnings.push(format!(
                "{}: no val split yet; `val` points to the train images (convert a val split into the same --out to \
                 replace it)",
                yaml_path.display()
            ));
        }
        let root = std::fs::canonicalize(&self.out).unwrap_or_else(|_| self.out.clone());
        let doc = DataYaml {
            path: root.display().to_string(),
            train,
            val,
            test,
            nc: self.report.names.len(),
            names: self.report.names.clone(),
        };
        let body = serde_norway::to_string(&doc)
            .map_err(|e| ConvertError::Write { path: yaml_path.clone(), source: std::io::Error::other(e) })?;
        let text = format!("# YOLO dataset written by `ycomp data convert` (yolo-compress)\n{body}");
        std::fs::write(&yaml_path, text).map_err(|source| ConvertError::Write { path: yaml_path.clone(), source })?;
        self.report.data_yaml = yaml_path;
        Ok(self.report)
    }
}

#[derive(Serialize)]
struct DataYaml {
    path: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    train: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    val: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    test: Option<String>,
    nc: usize,
    names: Vec<String>,
}

struct Existing {
    names: Vec<String>,
    splits: [Option<String>; 3],
}

/// The names and split entries of an existing `data.yaml` (split entries kept as written).
fn read_existing(path: &Path) -> Result<Existing, ConvertError> {
    let bad = |reason: String| ConvertError::Existing { path: path.to_path_buf(), reason };
    let text =
        std::fs::read_to_string(path).map_err(|source| ConvertError::Read { path: path.to_path_buf(), source })?;
    let config = crate::dataset::DataConfig::parse(&text, path)
        .map_err(|e| bad(format!("exists and is not a data YAML this conversion can extend ({e}); remove it")))?;
    let doc: Value = serde_norway::from_str(&text).map_err(|e| bad(e.to_string()))?;
    let splits = Split::ALL.map(|s| doc.get(s.as_str()).and_then(Value::as_str).map(str::to_string));
    Ok(Existing { names: config.names, splits })
}

/// Puts `src` at `dest` (replacing what is there, unless it already is `src`). Returns a
/// warning when a hard link fell back to a copy.
fn place(src: &Path, dest: &Path, link: LinkMode) -> std::io::Result<Option<String>> {
    if dest.symlink_metadata().is_ok() {
        if same_file(src, dest) {
            return Ok(None);
        }
        std::fs::remove_file(dest)?;
    }
    if let Some(dir) = dest.parent() {
        std::fs::create_dir_all(dir)?;
    }
    match link {
        LinkMode::Copy => std::fs::copy(src, dest).map(|_| None),
        LinkMode::Hardlink => match std::fs::hard_link(src, dest) {
            Ok(()) => Ok(None),
            Err(e) => std::fs::copy(src, dest)
                .map(|_| Some(format!("cannot hard-link {} ({e}); copied instead", src.display()))),
        },
        LinkMode::Symlink => symlink(&std::fs::canonicalize(src)?, dest).map(|()| None),
    }
}

fn same_file(a: &Path, b: &Path) -> bool {
    matches!((std::fs::canonicalize(a), std::fs::canonicalize(b)), (Ok(x), Ok(y)) if x == y)
}

#[cfg(unix)]
fn symlink(target: &Path, link: &Path) -> std::io::Result<()> {
    std::os::unix::fs::symlink(target, link)
}

#[cfg(windows)]
fn symlink(target: &Path, link: &Path) -> std::io::Result<()> {
    std::os::windows::fs::symlink_file(target, link)
}

#[cfg(not(any(unix, windows)))]
fn symlink(_target: &Path, _link: &Path) -> std::io::Result<()> {
    Err(std::io::Error::new(std::io::ErrorKind::Unsupported, "symbolic links are not supported here"))
}

/// A relative path made only of plain names (no `..`, root or prefix), so that joining it
/// under the output folder stays inside it; `None` otherwise.
pub(crate) fn safe_relative(p: &str) -> Option<PathBuf> {
    let path = Path::new(p);
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::Normal(n) => out.push(n),
            Component::CurDir => {}
            _ => return None,
        }
    }
    (!out.as_os_str().is_empty()).then_some(out)
}

/// Checks `--names`: non-empty, no blank or duplicate name.
pub(crate) fn check_names(names: &[String]) -> Result<(), ConvertError> {
    if names.is_empty() {
        return Err(ConvertError::Options("--names is empty".into()));
    }
    for (i, n) in names.iter().enumerate() {
        if n.trim().is_empty() {
            return Err(ConvertError::Options(format!("--names: name {i} is blank")));
        }
        if names[..i].contains(n) {
            return Err(ConvertError::Options(format!("--names: `{n}` appears twice")));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_paths_stay_inside() {
        assert_eq!(safe_relative("a/b.jpg"), Some(PathBuf::from("a/b.jpg")));
        assert_eq!(safe_relative("./b.jpg"), Some(PathBuf::from("b.jpg")));
        for bad in ["../b.jpg", "/etc/passwd", "a/../../b", "", "."] {
            assert_eq!(safe_relative(bad), None, "{bad}");
        }
    }
}
