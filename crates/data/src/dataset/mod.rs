//! Datasets on disk: ultralytics data YAML, YOLO labels, verification and its cache.
