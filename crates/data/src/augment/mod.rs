//! Box-aware, seeded augmentation with ultralytics hyperparameter names and defaults.
