//! Model configs embedded in the crate, so `--model yolov5s.yaml` needs no file on disk.

/// `(file name, YAML text)` of every built-in config.
pub const BUILTIN_CONFIGS: [(&str, &str); 7] = [
    ("yolov5n.yaml", include_str!("configs/yolov5n.yaml")),
    ("yolov5s.yaml", include_str!("configs/yolov5s.yaml")),
    ("yolov5m.yaml", include_str!("configs/yolov5m.yaml")),
    ("yolov5l.yaml", include_str!("configs/yolov5l.yaml")),
    ("yolov5x.yaml", include_str!("configs/yolov5x.yaml")),
    ("yolov5s-ghost.yaml", include_str!("configs/yolov5s-ghost.yaml")),
    ("yolov5-ghostnet.yaml", include_str!("configs/yolov5-ghostnet.yaml")),
];

/// The YAML text of a built-in config, by file name (`yolov5s.yaml`) or stem (`yolov5s`).
pub fn builtin_yaml(name: &str) -> Option<&'static str> {
    let stem = name.trim_end_matches(".yaml").trim_end_matches(".yml");
    BUILTIN_CONFIGS.iter().find(|(n, _)| n.trim_end_matches(".yaml") == stem).map(|(_, t)| *t)
}
