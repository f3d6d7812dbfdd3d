//! Synthetic shape datasets: a deterministic, download-free YOLO dataset generator.
