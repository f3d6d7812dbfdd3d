//! Data YAML variants on disk: splits as directories, `.txt` lists or lists of either; `path`
//! relative to the YAML; names as a list or a map; errors naming the YAML and the key.

use std::path::{Path, PathBuf};

use yolo_compress_data::SampleSource;
use yolo_compress_data::dataset::{DataConfig, DatasetError, Split, VerifyOptions, YoloDataset};

fn touch_png(path: &Path) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    image::RgbImage::from_pixel(4, 4, image::Rgb([1, 2, 3])).save(path).unwrap();
}

fn write(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

fn names(files: &[PathBuf], root: &Path) -> Vec<String> {
    files.iter().map(|f| f.strip_prefix(root).unwrap().display().to_string()).collect()
}

/// `ds/` with images in `images/{a,b}` (b nested), list files, and a YAML in `cfg/`.
fn layout() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let ds = dir.path().join("ds");
    for f in ["images/a/1.png", "images/a/2.png", "images/b/deep/3.png", "images/b/4.png", "other/5.png"] {
        touch_png(&ds.join(f));
    }
    write(&ds.join("images/a/notes.txt"), "not an image");
    write(&ds.join("labels/a/1.txt"), "0 0.5 0.5 0.5 0.5\n");
    write(&ds.join("labels/b/deep/3.txt"), "1 0.5 0.5 0.5 0.5\n");
    // A list: `./` lines are relative to the list's folder, others to `path`.
    write(&ds.join("lists/val.txt"), "./../other/5.png\nimages/a/1.png\n\nimages/a/notes.txt\n");
    (dir, ds)
}

#[test]
fn directory_splits_are_searched_recursively_and_sorted() {
    let (dir, _ds) = layout();
    let yaml = dir.path().join("cfg/data.yaml");
    write(&yaml, "path: ../ds\ntrain: images/b\nval: [images/a, lists/val.txt]\nnames: {0: cat, 1: dog}\n");
    let c = DataConfig::load(&yaml).unwrap();
    assert_eq!(c.root, dir.path().join("cfg/../ds"));
    assert_eq!(c.names, ["cat", "dog"]);
    assert_eq!(c.splits(), [Split::Train, Split::Val]);
    let root = &c.root;
    assert_eq!(names(&c.images(Split::Train).unwrap(), root), ["images/b/4.png", "images/b/deep/3.png"]);
    let val = c.images(Split::Val).unwrap();
    // Sorted, duplicates (1.png listed twice) dropped, non-images ignored.
    let lists = root.join("lists");
    let expected = [root.join("images/a/1.png"), root.join("images/a/2.png"), lists.join("../other/5.png")];
    let mut expected = expected.to_vec();
    expected.sort();
    assert_eq!(val, expected);
    let train = YoloDataset::open_with(&yaml, Split::Train, &VerifyOptions::default()).unwrap();
    assert_eq!((train.len(), train.report().labels, train.report().missing_labels), (2, 1, 1));
    assert!(dir.path().join("ds/labels/b.cache").is_file());
}

#[test]
fn path_defaults_to_the_yaml_folder_and_absolute_paths_stay() {
    let (dir, ds) = layout();
    let yaml = ds.join("data.yaml");
    let abs = ds.join("images/a").display().to_string();
    write(&yaml, &format!("train: {abs}\nval: images/b/4.png\nnc: 2\n"));
    let c = DataConfig::load(&yaml).unwrap();
    assert_eq!(c.root, ds);
    assert_eq!(c.names, ["class0", "class1"]);
    assert_eq!(names(&c.images(Split::Train).unwrap(), &ds), ["images/a/1.png", "images/a/2.png"]);
    assert_eq!(names(&c.images(Split::Val).unwrap(), &ds), ["images/b/4.png"]);
    drop(dir);
}

#[test]
fn missing_or_unusable_splits_name_the_yaml_and_key() {
    let (dir, ds) = layout();
    let yaml = ds.join("d.yaml");
    write(&yaml, "train: [images/a, images/nope]\nval: lists/nope.txt\ntest: images/a/readme.md\nnames: [a, b]\n");
    write(&ds.join("images/a/readme.md"), "# not a list");
    let c = DataConfig::load(&yaml).unwrap();
    for (split, key, what) in [(Split::Train, "`train`", "images/nope"), (Split::Val, "`val`", "nope.txt")] {
        let e = c.images(split).unwrap_err();
        assert!(matches!(e, DatasetError::SplitNotFound { .. }), "{e}");
        let msg = e.to_string();
        assert!(msg.contains("d.yaml") && msg.contains(key) && msg.contains(what), "{msg}");
    }
    let e = c.images(Split::Test).unwrap_err();
    assert!(e.to_string().contains("`test`") && e.to_string().contains("neither"), "{e}");

    let e = DataConfig::load(ds.join("absent.yaml")).unwrap_err();
    assert!(matches!(e, DatasetError::Read { .. }) && e.to_string().contains("absent.yaml"), "{e}");
    write(&yaml, "train: images/a\nnames: [a, b\n");
    let e = DataConfig::load(&yaml).unwrap_err();
    assert!(matches!(e, DatasetError::Yaml { .. }) && e.to_string().contains("d.yaml"), "{e}");
    drop(dir);
}

#[test]
fn an_empty_split_is_an_error_not_a_panic() {
    let (dir, ds) = layout();
    std::fs::create_dir_all(ds.join("images/empty")).unwrap();
    let yaml = ds.join("d.yaml");
    write(&yaml, "train: images/empty\nval: []\nnames: [a]\n");
    for split in [Split::Train, Split::Val] {
        let e = YoloDataset::open(&yaml, split).unwrap_err();
        assert!(matches!(e, DatasetError::NoUsableImages { found: 0, .. }), "{e}");
    }
    drop(dir);
}
