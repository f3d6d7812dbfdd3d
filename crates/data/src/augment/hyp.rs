//! Training hyperparameters under ultralytics' names, with `hyp.scratch-low.yaml` as the default.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Ultralytics YOLOv5 hyperparameters: augmentation, loss gains and optimiser settings, under the
/// key names of ultralytics' `data/hyps/hyp.*.yaml` files.
///
/// [`Default`] is `hyp.scratch-low.yaml`. [`Hyp::from_yaml_str`] / [`Hyp::from_yaml_file`] read an
/// ultralytics hyp file: keys that are missing keep their default, unknown keys are an error that
/// names the key (a misspelt `fliplr` must not silently train with the default).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Hyp {
    /// Initial learning rate (default 0.01).
    pub lr0: f64,
    /// Final learning rate as a fraction of `lr0` (default 0.01).
    pub lrf: f64,
    /// SGD momentum / Adam beta1 (default 0.937).
    pub momentum: f64,
    /// Optimiser weight decay (default 5e-4).
    pub weight_decay: f64,
    /// Warmup epochs, fractions allowed (default 3.0).
    pub warmup_epochs: f64,
    /// Warmup initial momentum (default 0.8).
    pub warmup_momentum: f64,
    /// Warmup initial bias learning rate (default 0.1).
    pub warmup_bias_lr: f64,
    /// Box loss gain (default 0.05).
    #[serde(rename = "box")]
    pub box_gain: f64,
    /// Class loss gain (default 0.5).
    pub cls: f64,
    /// Class BCE positive weight (default 1.0).
    pub cls_pw: f64,
    /// Objectness loss gain (default 1.0).
    pub obj: f64,
    /// Objectness BCE positive weight (default 1.0).
    pub obj_pw: f64,
    /// IoU training threshold (default 0.2).
    pub iou_t: f64,
    /// Anchor-multiple threshold (default 4.0).
    pub anchor_t: f64,
    /// Anchors per output layer (0 to ignore); absent from `hyp.scratch-low.yaml` (default `None`),
    /// present in evolved hyp files.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub anchors: Option<f64>,
    /// Focal loss gamma, 0 = plain BCE (default 0.0).
    pub fl_gamma: f64,
    /// Hue gain, fraction (default 0.015).
    pub hsv_h: f64,
    /// Saturation gain, fraction (default 0.7).
    pub hsv_s: f64,
    /// Value gain, fraction (default 0.4).
    pub hsv_v: f64,
    /// Rotation range, ± degrees (default 0.0).
    pub degrees: f64,
    /// Translation range, ± fraction of the image size (default 0.1).
    pub translate: f64,
    /// Scale range, ± gain (default 0.5).
    pub scale: f64,
    /// Shear range, ± degrees (default 0.0).
    pub shear: f64,
    /// Perspective range, ± fraction, 0 to 0.001 (default 0.0).
    pub perspective: f64,
    /// Up-down flip probability (default 0.0).
    pub flipud: f64,
    /// Left-right flip probability (default 0.5).
    pub fliplr: f64,
    /// Mosaic probability (default 1.0).
    pub mosaic: f64,
    /// Mixup probability (default 0.0).
    pub mixup: f64,
    /// Segment copy-paste probability (default 0.0). Needs segments, which box labels do not have:
    /// accepted for compatibility and not applied (ultralytics also skips it without segments).
    pub copy_paste: f64,
    /// The Albumentations transform list of newer hyp files: accepted and kept, not applied
    /// (ultralytics applies it only when the Python package is installed).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub albumentations: Option<serde_norway::Value>,
}

impl Default for Hyp {
    fn default() -> Self {
        Self {
            lr0: 0.01,
            lrf: 0.01,
            momentum: 0.937,
            weight_decay: 0.0005,
            warmup_epochs: 3.0,
            warmup_momentum: 0.8,
            warmup_bias_lr: 0.1,
            box_gain: 0.05,
            cls: 0.5,
            cls_pw: 1.0,
            obj: 1.0,
            obj_pw: 1.0,
            iou_t: 0.2,
            anchor_t: 4.0,
            anchors: None,
            fl_gamma: 0.0,
            hsv_h: 0.015,
            hsv_s: 0.7,
            hsv_v: 0.4,
            degrees: 0.0,
            translate: 0.1,
            scale: 0.5,
            shear: 0.0,
            perspective: 0.0,
            flipud: 0.0,
            fliplr: 0.5,
            mosaic: 1.0,
            mixup: 0.0,
            copy_paste: 0.0,
            albumentations: None,
        }
    }
}

/// Why a hyp file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum HypError {
    /// The file could not be read.
    #[error("cannot read hyp file {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The YAML is malformed, has an unknown key or a value of the wrong type (the message names
    /// the key).
    #[error("invalid hyp file {}: {message}", path.as_deref().map_or("<string>".into(), |p| p.display().to_string()))]
    Parse {
        /// The file, when read from one.
        path: Option<PathBuf>,
        /// The parser's message, e.g. ``unknown field `flip_lr`, expected one of ...``.
        message: String,
    },
    /// A value outside its valid range.
    #[error("hyp `{key}` = {value} is out of range: {expected}")]
    OutOfRange {
        /// The key at fault.
        key: &'static str,
        /// Its value.
        value: f64,
        /// What it must be.
        expected: &'static str,
    },
}

impl Hyp {
    /// Parses an ultralytics hyp YAML document; missing keys keep their `hyp.scratch-low` default,
    /// unknown keys are an error naming the key. An empty document is the default.
    pub fn from_yaml_str(text: &str) -> Result<Self, HypError> {
        Self::parse(text, None)
    }

    /// Reads an ultralytics hyp YAML file (see [`Hyp::from_yaml_str`]).
    pub fn from_yaml_file(path: impl AsRef<Path>) -> Result<Self, HypError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| HypError::Read { path: path.into(), source })?;
        Self::parse(&text, Some(path))
    }

    fn parse(text: &str, path: Option<&Path>) -> Result<Self, HypError> {
        let perr = |message: String| HypError::Parse { path: path.map(Path::to_path_buf), message };
        // A document of only comments is `null`: all defaults.
        let value: serde_norway::Value = serde_norway::from_str(text).map_err(|e| perr(e.to_string()))?;
        if value.is_null() {
            return Ok(Self::default());
        }
        // Parse the text again (not the value) so that errors carry the key and line.
        let hyp: Hyp = serde_norway::from_str(text).map_err(|e| perr(e.to_string()))?;
        hyp.validate()?;
        Ok(hyp)
    }

    /// Checks the augmentation settings: probabilities in `[0, 1]`, ranges non-negative and finite,
    /// `scale` below 1 (a zero or negative scale would collapse the image). Every key is checked to
    /// be finite.
    pub fn validate(&self) -> Result<(), HypError> {
        let finite = [
            ("lr0", self.lr0),
            ("lrf", self.lrf),
            ("momentum", self.momentum),
            ("weight_decay", self.weight_decay),
            ("warmup_epochs", self.warmup_epochs),
            ("warmup_momentum", self.warmup_momentum),
            ("warmup_bias_lr", self.warmup_bias_lr),
            ("box", self.box_gain),
            ("cls", self.cls),
            ("cls_pw", self.cls_pw),
            ("obj", self.obj),
            ("obj_pw", self.obj_pw),
            ("iou_t", self.iou_t),
            ("anchor_t", self.anchor_t),
            ("fl_gamma", self.fl_gamma),
        ];
        for (key, value) in finite {
            if !value.is_finite() {
                return Err(HypError::OutOfRange { key, value, expected: "a finite number" });
            }
        }
        let probabilities = [
            ("flipud", self.flipud),
            ("fliplr", self.fliplr),
            ("mosaic", self.mosaic),
            ("mixup", self.mixup),
            ("copy_paste", self.copy_paste),
        ];
        for (key, value) in probabilities {
            if !(0.0..=1.0).contains(&value) {
                return Err(HypError::OutOfRange { key, value, expected: "a probability in [0, 1]" });
            }
        }
        let ranges = [
            ("hsv_h", self.hsv_h),
            ("hsv_s", self.hsv_s),
            ("hsv_v", self.hsv_v),
            ("degrees", self.degrees),
            ("translate", self.translate),
            ("shear", self.shear),
            ("perspective", self.perspective),
        ];
        for (key, value) in ranges {
            if !(value.is_finite() && value >= 0.0) {
                return Err(HypError::OutOfRange { key, value, expected: "a finite value >= 0" });
            }
        }
        if !(self.scale.is_finite() && (0.0..1.0).contains(&self.scale)) {
            return Err(HypError::OutOfRange { key: "scale", value: self.scale, expected: "a value in [0, 1)" });
        }
        Ok(())
    }

    /// These settings with every augmentation off (what validation uses): no HSV, geometry, flips,
    /// mosaic or mixup; loss and optimiser keys unchanged.
    pub fn without_augmentation(&self) -> Self {
        Self {
            hsv_h: 0.0,
            hsv_s: 0.0,
            hsv_v: 0.0,
            degrees: 0.0,
            translate: 0.0,
            scale: 0.0,
            shear: 0.0,
            perspective: 0.0,
            flipud: 0.0,
            fliplr: 0.0,
            mosaic: 0.0,
            mixup: 0.0,
            copy_paste: 0.0,
            ..self.clone()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scratch_low_file_round_trips_to_the_default() {
        // The keys and values of ultralytics' hyp.scratch-low.yaml (comments trimmed).
        let text = "lr0: 0.01\nlrf: 0.01\nmomentum: 0.937\nweight_decay: 0.0005\nwarmup_epochs: 3.0\n\
                    warmup_momentum: 0.8\nwarmup_bias_lr: 0.1\nbox: 0.05\ncls: 0.5\ncls_pw: 1.0\nobj: 1.0\n\
                    obj_pw: 1.0\niou_t: 0.20\nanchor_t: 4.0\n# anchors: 3\nfl_gamma: 0.0\nhsv_h: 0.015\n\
                    hsv_s: 0.7\nhsv_v: 0.4\ndegrees: 0.0\ntranslate: 0.1\nscale: 0.5\nshear: 0.0\n\
                    perspective: 0.0\nflipud: 0.0\nfliplr: 0.5\nmosaic: 1.0\nmixup: 0.0\ncopy_paste: 0.0\n";
        assert_eq!(Hyp::from_yaml_str(text).unwrap(), Hyp::default());
        let yaml = serde_norway::to_string(&Hyp::default()).unwrap();
        assert!(yaml.contains("box: 0.05"), "{yaml}");
        assert_eq!(Hyp::from_yaml_str(&yaml).unwrap(), Hyp::default());
    }

    #[test]
    fn missing_keys_default_and_integers_are_accepted() {
        let hyp = Hyp::from_yaml_str("degrees: 10\nmixup: 0.1\nanchors: 3\n").unwrap();
        assert_eq!(hyp.degrees, 10.0);
        assert_eq!(hyp.mixup, 0.1);
        assert_eq!(hyp.anchors, Some(3.0));
        assert_eq!(hyp.fliplr, 0.5);
        assert_eq!(Hyp::from_yaml_str("# nothing\n").unwrap(), Hyp::default());
        let with_albu = Hyp::from_yaml_str("albumentations:\n  - name: Blur\n    p: 0.01\n").unwrap();
        assert!(with_albu.albumentations.is_some());
    }

    #[test]
    fn unknown_keys_and_bad_values_are_named() {
        let err = Hyp::from_yaml_str("flip_lr: 0.5\n").unwrap_err().to_string();
        assert!(err.contains("flip_lr"), "{err}");
        let err = Hyp::from_yaml_str("fliplr: yes please\n").unwrap_err().to_string();
        assert!(err.contains("fliplr"), "{err}");
        let err = Hyp::from_yaml_str("mosaic: 1.5\n").unwrap_err().to_string();
        assert!(err.contains("mosaic"), "{err}");
        let err = Hyp::from_yaml_str("scale: 1.0\n").unwrap_err().to_string();
        assert!(err.contains("scale"), "{err}");
        let err = Hyp::from_yaml_file("/nonexistent/hyp.yaml").unwrap_err().to_string();
        assert!(err.contains("/nonexistent/hyp.yaml"), "{err}");
    }

    #[test]
    fn without_augmentation_keeps_loss_keys() {
        let hyp = Hyp { cls: 0.3, ..Hyp::default() }.without_augmentation();
        assert_eq!((hyp.cls, hyp.mosaic, hyp.fliplr, hyp.scale, hyp.hsv_v), (0.3, 0.0, 0.0, 0.0, 0.0));
    }
}
