//! The YOLOv5 PAN neck (top-down FPN path, then bottom-up path; Liu et al., "Path Aggregation
//! Network", CVPR 2018) and Detect head as explicit [`LayerSpec`]s, for plugging any [`Backbone`]
//! that yields P3/8, P4/16 and P5/32 features into [`Detector::new`].
//!
//! Numbering follows [`Detector::new`]: features are layers 0, 1, 2; the neck starts at 3.
//!
//! [`Backbone`]: crate::model::Backbone
//! [`Detector::new`]: crate::model::Detector::new

use crate::arch::{BlockSpec, LayerSpec, make_divisible, round_half_even};
use crate::error::ArchError;
use crate::model::FeatureSpec;

/// Scaling and classes of a YOLOv5 neck + head.
#[derive(Debug, Clone, PartialEq)]
pub struct NeckConfig {
    /// Number of classes.
    pub nc: usize,
    /// Depth multiple (repeats of the C3 blocks: 3 × depth).
    pub depth: f64,
    /// Width multiple (channels: 256/512/1024 × width, rounded up to multiples of 8).
    pub width: f64,
    /// Anchors per level in pixels (P3, P4, P5).
    pub anchors: Vec<Vec<[f32; 2]>>,
}

impl NeckConfig {
    /// YOLOv5's default anchors with the given scaling.
    pub fn yolov5(nc: usize, depth: f64, width: f64) -> Self {
        let anchors = vec![
            vec![[10.0, 13.0], [16.0, 30.0], [33.0, 23.0]],
            vec![[30.0, 61.0], [62.0, 45.0], [59.0, 119.0]],
            vec![[116.0, 90.0], [156.0, 198.0], [373.0, 326.0]],
        ];
        NeckConfig { nc, depth, width, anchors }
    }
}

/// Builds the PAN neck + Detect rows for features `[P3, P4, P5]` (strides 8, 16, 32).
pub fn yolov5_pan_neck(features: &[FeatureSpec], cfg: &NeckConfig) -> Result<Vec<LayerSpec>, ArchError> {
    let strides: Vec<usize> = features.iter().map(|f| f.stride).collect();
    if strides != [8, 16, 32] {
        return Err(ArchError::Invalid(format!(
            "the YOLOv5 neck needs P3/8, P4/16, P5/32 features, got strides {strides:?}"
        )));
    }
    let c = |x: f64| make_divisible(x * cfg.width, 8);
    let n = round_half_even(3.0 * cfg.depth).max(1) as usize;
    let mut shapes: Vec<(usize, usize)> = features.iter().map(|f| (f.channels, f.stride)).collect();
    let mut rows: Vec<LayerSpec> = Vec::new();
    let mut push = |from: Vec<i64>, module: &str, block: BlockSpec, rows: &mut Vec<LayerSpec>| {
        let i = shapes.len();
        let src = |f: i64| if f < 0 { (i as i64 + f) as usize } else { f as usize };
        let (c_in, s_in) = shapes[src(from[0])];
        let (out, stride) = match &block {
            BlockSpec::Conv { c2, s, .. } => (*c2, s_in * s),
            BlockSpec::C3 { c2, .. } => (*c2, s_in),
            BlockSpec::Upsample { scale } => (c_in, s_in / scale),
            BlockSpec::Concat => (from.iter().map(|&f| shapes[src(f)].0).sum(), s_in),
            _ => (c_in, s_in),
        };
        shapes.push((out, stride));
        rows.push(LayerSpec { from, module: module.into(), block, out_channels: out, stride });
        (out, i)
    };
    let conv = |c1: usize, c2: usize, k: usize, s: usize| BlockSpec::Conv { c1, c2, k, s, p: None, g: 1, act: true };
    let c3 = |c1: usize, c2: usize| BlockSpec::C3 {
        c1,
        c2,
        hidden1: c2 / 2,
        hidden2: c2 / 2,
        inner: vec![c2 / 2; n],
        shortcut: false,
        g: 1,
        ghost: false,
    };
    let (p3, p4, p5) = (features[0].channels, features[1].channels, features[2].channels);
    let (a, i_a) = push(vec![2], "Conv", conv(p5, c(512.0), 1, 1), &mut rows);
    push(vec![-1], "nn.Upsample", BlockSpec::Upsample { scale: 2 }, &mut rows);
    let (cat1, _) = push(vec![-1, 1], "Concat", BlockSpec::Concat, &mut rows);
    let (b, _) = push(vec![-1], "C3", c3(cat1, c(512.0)), &mut rows);
    let (d, i_d) = push(vec![-1], "Conv", conv(b, c(256.0), 1, 1), &mut rows);
    push(vec![-1], "nn.Upsample", BlockSpec::Upsample { scale: 2 }, &mut rows);
    let (cat2, _) = push(vec![-1, 0], "Concat", BlockSpec::Concat, &mut rows);
    let (out3, i3) = push(vec![-1], "C3", c3(cat2, c(256.0)), &mut rows);
    let (e, _) = push(vec![-1], "Conv", conv(out3, c(256.0), 3, 2), &mut rows);
    let (cat3, _) = push(vec![-1, i_d as i64], "Concat", BlockSpec::Concat, &mut rows);
    let (out4, i4) = push(vec![-1], "C3", c3(cat3, c(512.0)), &mut rows);
    let (f, _) = push(vec![-1], "Conv", conv(out4, c(512.0), 3, 2), &mut rows);
    let (cat4, _) = push(vec![-1, i_a as i64], "Concat", BlockSpec::Concat, &mut rows);
    let (out5, i5) = push(vec![-1], "C3", c3(cat4, c(1024.0)), &mut rows);
    let _ = (a, d, e, f, p3, p4);
    let na = cfg.anchors.first().map_or(0, Vec::len);
    rows.push(LayerSpec {
        from: vec![i3 as i64, i4 as i64, i5 as i64],
        module: "Detect".into(),
        block: BlockSpec::Detect {
            nc: cfg.nc,
            anchors: cfg.anchors.clone(),
            strides: vec![8.0, 16.0, 32.0],
            ch: vec![out3, out4, out5],
        },
        out_channels: na * (cfg.nc + 5),
        stride: 0,
    });
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::arch::Architecture;

    /// The programmatic neck equals the head rows of the YAML config (up to the renumbering).
    #[test]
    fn matches_yolov5s_yaml_head() {
        let arch = Architecture::from_name_or_path("yolov5s.yaml").unwrap();
        let taps = [4usize, 6, 9];
        let feats: Vec<FeatureSpec> = taps
            .iter()
            .map(|&t| FeatureSpec { channels: arch.layers[t].out_channels, stride: arch.layers[t].stride })
            .collect();
        let rows = yolov5_pan_neck(&feats, &NeckConfig::yolov5(80, 0.33, 0.5)).unwrap();
        let yaml_head = &arch.layers[10..];
        assert_eq!(rows.len(), yaml_head.len());
        for (r, y) in rows.iter().zip(yaml_head) {
            assert_eq!((&r.block, r.out_channels, r.stride), (&y.block, y.out_channels, y.stride), "{}", y.module);
        }
        // Absolute sources: YAML layers 4, 6, 9 are features 0, 1, 2 and YAML layer 10 + j is 3 + j.
        let renumber = |f: usize| match f {
            4 => 0,
            6 => 1,
            9 => 2,
            f => f - 7,
        };
        for (j, (r, y)) in rows.iter().zip(yaml_head).enumerate() {
            let ours: Vec<usize> = r.from.iter().map(|&f| Architecture::source(3 + j, f)).collect();
            let theirs: Vec<usize> = y.from.iter().map(|&f| renumber(Architecture::source(10 + j, f))).collect();
            assert_eq!(ours, theirs, "{}", y.module);
        }
    }

    #[test]
    fn rejects_wrong_strides() {
        let f = [FeatureSpec { channels: 8, stride: 4 }; 3];
        assert!(yolov5_pan_neck(&f, &NeckConfig::yolov5(2, 0.33, 0.25)).is_err());
    }
}
