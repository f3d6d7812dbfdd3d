//! Ultralytics model YAML (`nc`, `depth_multiple`, `width_multiple`, `anchors`, `backbone`, `head`
//! rows of `[from, number, module, args]`) → [`Architecture`], scaling depth and width exactly as
//! YOLOv5's `parse_model`: repeats `max(round(n·depth), 1)` (Python's half-to-even rounding) when
//! `n > 1`, channels `ceil(c·width / 8)·8`.

use serde_norway::Value;

use super::{Architecture, BlockSpec, LayerSpec, default_names};
use crate::blocks::dwconv::gcd;
use crate::error::ArchError;

/// Python's `round()` (ties to even).
pub fn round_half_even(x: f64) -> i64 {
    x.round_ties_even() as i64
}

/// `ceil(x / divisor) · divisor`.
pub fn make_divisible(x: f64, divisor: usize) -> usize {
    ((x / divisor as f64).ceil() as usize) * divisor
}

struct Ctx<'a> {
    origin: &'a str,
    index: usize,
    module: String,
}

impl Ctx<'_> {
    fn err(&self, message: impl Into<String>) -> ArchError {
        ArchError::Layer {
            origin: self.origin.to_string(),
            index: self.index,
            module: self.module.clone(),
            message: message.into(),
        }
    }
}

fn as_f64(v: &Value) -> Option<f64> {
    v.as_f64().or_else(|| v.as_i64().map(|i| i as f64))
}

/// Parses and resolves an ultralytics model YAML. `origin` names it in errors and becomes the name.
pub fn parse_model_yaml(text: &str, origin: &str) -> Result<Architecture, ArchError> {
    let yerr = |m: String| ArchError::Yaml { origin: origin.to_string(), message: m };
    let doc: Value = serde_norway::from_str(text).map_err(|e| yerr(e.to_string()))?;
    let map = doc.as_mapping().ok_or_else(|| yerr("top level is not a mapping".into()))?;
    let get = |k: &str| map.get(Value::String(k.to_string()));
    let nc = get("nc")
        .and_then(Value::as_u64)
        .filter(|&n| n > 0 && n < 100_000)
        .ok_or_else(|| yerr("`nc` must be a positive integer".into()))? as usize;
    let gd = get("depth_multiple").map_or(Some(1.0), as_f64).filter(|v| *v > 0.0 && v.is_finite());
    let gw = get("width_multiple").map_or(Some(1.0), as_f64).filter(|v| *v > 0.0 && v.is_finite());
    let (gd, gw) = match (gd, gw) {
        (Some(d), Some(w)) => (d, w),
        _ => return Err(yerr("`depth_multiple`/`width_multiple` must be positive numbers".into())),
    };
    let anchors = parse_anchors(get("anchors"), &yerr)?;
    let na = anchors.first().map_or(0, Vec::len);
    let no = na * (nc + 5);
    let names = match get("names").and_then(Value::as_sequence) {
        Some(seq) => seq.iter().map(|v| v.as_str().map(str::to_string).unwrap_or_else(|| format!("{v:?}"))).collect(),
        None => default_names(nc),
    };
    if names.len() != nc {
        return Err(yerr(format!("{} names for nc = {nc}", names.len())));
    }
    let rows = |k: &str| -> Result<Vec<Value>, ArchError> {
        get(k)
            .and_then(Value::as_sequence)
            .cloned()
            .ok_or_else(|| yerr(format!("`{k}` must be a list of [from, number, module, args] rows")))
    };
    let backbone = rows("backbone")?;
    let head = rows("head")?;
    let backbone_len = backbone.len();

    let input_channels = 3;
    let mut ch: Vec<usize> = Vec::new(); // output channels per layer
    let mut strides: Vec<usize> = Vec::new();
    let mut layers = Vec::new();
    for (i, row) in backbone.iter().chain(head.iter()).enumerate() {
        let seq = row.as_sequence().filter(|s| s.len() == 4);
        let module = seq.and_then(|s| s[2].as_str()).unwrap_or("?").to_string();
        let ctx = Ctx { origin, index: i, module: module.clone() };
        let seq = seq.ok_or_else(|| ctx.err("a row must be [from, number, module, args]"))?;
        let from: Vec<i64> = match &seq[0] {
            Value::Number(n) => vec![n.as_i64().ok_or_else(|| ctx.err("bad `from`"))?],
            Value::Sequence(s) => {
                s.iter().map(|v| v.as_i64().ok_or_else(|| ctx.err("bad `from`"))).collect::<Result<_, _>>()?
            }
            _ => return Err(ctx.err("`from` must be an int or a list of ints")),
        };
        let mut srcs = Vec::new();
        for &f in &from {
            let src = if f < 0 { i as i64 + f } else { f };
            if i == 0 && f == -1 {
                srcs.push(None); // the image
            } else if src < 0 || src as usize >= i {
                return Err(ctx.err(format!("`from` {f} is not an earlier layer")));
            } else {
                srcs.push(Some(src as usize));
            }
        }
        if srcs.is_empty() {
            return Err(ctx.err("`from` is empty"));
        }
        let c_in = |k: usize| srcs[k].map_or(input_channels, |s| ch[s]);
        let s_in = |k: usize| srcs[k].map_or(1, |s| strides[s]);
        let n_raw = seq[1].as_i64().filter(|&n| n >= 1).ok_or_else(|| ctx.err("`number` must be ≥ 1"))?;
        let n_scaled = if n_raw > 1 { round_half_even(n_raw as f64 * gd).max(1) } else { 1 };
        if n_scaled > 10_000 {
            return Err(ctx.err(format!("{n_scaled} repeats (number × depth_multiple) is more than 10000")));
        }
        let n = n_scaled as usize;
        let args: Vec<Value> = seq[3].as_sequence().cloned().ok_or_else(|| ctx.err("`args` must be a list"))?;
        let arg_usize = |k: usize, default: usize| -> Result<usize, ArchError> {
            match args.get(k) {
                None | Some(Value::Null) => Ok(default),
                Some(Value::String(s)) if s == "None" => Ok(default),
                Some(v) => v
                    .as_u64()
                    .filter(|&x| x <= 1 << 16)
                    .map(|x| x as usize)
                    .ok_or_else(|| ctx.err(format!("argument {k} must be an int in 0..=65536, got {v:?}"))),
            }
        };
        let arg_bool = |k: usize, default: bool| -> Result<bool, ArchError> {
            match args.get(k) {
                None => Ok(default),
                Some(Value::Bool(b)) => Ok(*b),
                Some(Value::String(s)) if s == "True" => Ok(true),
                Some(Value::String(s)) if s == "False" => Ok(false),
                Some(v) => Err(ctx.err(format!("argument {k} must be a boolean, got {v:?}"))),
            }
        };
        let single = |ctx: &Ctx| if from.len() == 1 { Ok(()) } else { Err(ctx.err("takes exactly one input")) };
        let c2_scaled = |ctx: &Ctx| -> Result<usize, ArchError> {
            let c2 = match args.first() {
                Some(Value::String(s)) if s == "no" => no,
                Some(v) => v
                    .as_u64()
                    .filter(|&c| c > 0)
                    .ok_or_else(|| ctx.err("first argument (channels) must be a positive int"))?
                    as usize,
                None => return Err(ctx.err("missing output channels")),
            };
            if c2 != no && c2 as f64 * gw > 1_048_576.0 {
                return Err(
                    ctx.err(format!("{} channels (channels × width_multiple) is more than 2^20", c2 as f64 * gw))
                );
            }
            Ok(if c2 != no { make_divisible(c2 as f64 * gw, 8) } else { c2 })
        };
        let repeated = matches!(module.as_str(), "C3" | "C3Ghost");
        if n > 1 && !repeated {
            return Err(ctx.err(format!("repeats > 1 ({n}) are only supported for C3/C3Ghost rows")));
        }
        let (block, c_out, stride) = match module.as_str() {
            "Conv" | "DWConv" => {
                single(&ctx)?;
                let (c1, c2) = (c_in(0), c2_scaled(&ctx)?);
                let k = arg_usize(1, 1)?;
                let s = arg_usize(2, 1)?;
                let (p, g, act) = if module == "Conv" {
                    (args.get(3).and_then(Value::as_u64).map(|p| p as usize), arg_usize(4, 1)?, arg_bool(6, true)?)
                } else {
                    (None, gcd(c1, c2), arg_bool(4, true)?)
                };
                if g == 0 || c1 % g != 0 || c2 % g != 0 {
                    return Err(ctx.err(format!("groups {g} do not divide channels {c1} → {c2}")));
                }
                (BlockSpec::Conv { c1, c2, k, s, p, g, act }, c2, s_in(0) * s)
            }
            "Focus" => {
                single(&ctx)?;
                let (c1, c2) = (c_in(0), c2_scaled(&ctx)?);
                let (k, s) = (arg_usize(1, 1)?, arg_usize(2, 1)?);
                (BlockSpec::Focus { c1, c2, k, s }, c2, s_in(0) * 2 * s)
            }
            "Bottleneck" => {
                single(&ctx)?;
                let (c1, c2) = (c_in(0), c2_scaled(&ctx)?);
                let shortcut = arg_bool(1, true)?;
                let g = arg_usize(2, 1)?;
                let e = args.get(3).and_then(as_f64).unwrap_or(0.5);
                (BlockSpec::Bottleneck { c1, c2, hidden: (c2 as f64 * e) as usize, shortcut, g }, c2, s_in(0))
            }
            "C3" | "C3Ghost" => {
                single(&ctx)?;
                let (c1, c2) = (c_in(0), c2_scaled(&ctx)?);
                let shortcut = arg_bool(1, true)?;
                let g = arg_usize(2, 1)?;
                let e = args.get(3).and_then(as_f64).unwrap_or(0.5);
                let c_ = (c2 as f64 * e) as usize;
                let ghost = module == "C3Ghost";
                let inner = vec![if ghost { c_ / 2 } else { c_ }; n];
                (BlockSpec::C3 { c1, c2, hidden1: c_, hidden2: c_, inner, shortcut, g, ghost }, c2, s_in(0))
            }
            "SPP" => {
                single(&ctx)?;
                let (c1, c2) = (c_in(0), c2_scaled(&ctx)?);
                let k = match args.get(1) {
                    Some(Value::Sequence(s)) => s
                        .iter()
                        .map(|v| v.as_u64().map(|x| x as usize).ok_or_else(|| ctx.err("bad pool kernel")))
                        .collect::<Result<_, _>>()?,
                    _ => vec![5, 9, 13],
                };
                (BlockSpec::Spp { c1, c2, k }, c2, s_in(0))
            }
            "SPPF" => {
                single(&ctx)?;
                let (c1, c2) = (c_in(0), c2_scaled(&ctx)?);
                (BlockSpec::Sppf { c1, c2, hidden: c1 / 2, k: arg_usize(1, 5)? }, c2, s_in(0))
            }
            "GhostConv" => {
                single(&ctx)?;
                let (c1, c2) = (c_in(0), c2_scaled(&ctx)?);
                let (k, s, g, act) = (arg_usize(1, 1)?, arg_usize(2, 1)?, arg_usize(3, 1)?, arg_bool(4, true)?);
                (BlockSpec::GhostConv { c1, c2, k, s, g, act }, c2, s_in(0) * s)
            }
            // GhostNet's bottleneck, args [c2, expansion, k, SE ratio, s]. The Yolov5-Processing project
            // names it `GhostBottleneck`; its five arguments tell it apart from YOLOv5's [c2, k, s].
            "GhostNetBottleneck" | "GhostBottleneck" if module == "GhostNetBottleneck" || args.len() >= 4 => {
                single(&ctx)?;
                let (c1, c2) = (c_in(0), c2_scaled(&ctx)?);
                // The expansion width is not scaled by width_multiple (the reference's convention).
                let hidden = args
                    .get(1)
                    .and_then(Value::as_u64)
                    .filter(|&e| e > 0 && e % 2 == 0)
                    .ok_or_else(|| ctx.err("argument 1 (expansion size) must be a positive even int"))?
                    as usize;
                let k = arg_usize(2, 3)?;
                let ratio = match args.get(3) {
                    None => 0.0,
                    Some(v) => as_f64(v)
                        .filter(|r| (0.0..=1.0).contains(r))
                        .ok_or_else(|| ctx.err(format!("argument 3 (SE ratio) must be in [0, 1], got {v:?}")))?,
                };
                let s = arg_usize(4, 1)?;
                if s != 1 && s != 2 {
                    return Err(ctx.err("GhostNetBottleneck stride must be 1 or 2"));
                }
                if k % 2 == 0 {
                    return Err(ctx.err("GhostNetBottleneck kernel must be odd"));
                }
                // Python's int(exp · ratio), as the reference's SqueezeExcite.
                let se = (hidden as f64 * ratio) as usize;
                if ratio > 0.0 && se == 0 {
                    return Err(ctx.err(format!("SE ratio {ratio} leaves no channels of {hidden}")));
                }
                (BlockSpec::GhostNetBottleneck { c1, c2, hidden, k, se, s }, c2, s_in(0) * s)
            }
            "GhostBottleneck" => {
                single(&ctx)?;
                let (c1, c2) = (c_in(0), c2_scaled(&ctx)?);
                let (k, s) = (arg_usize(1, 3)?, arg_usize(2, 1)?);
                if s != 1 && s != 2 {
                    return Err(ctx.err("GhostBottleneck stride must be 1 or 2"));
                }
                (BlockSpec::GhostBottleneck { c1, c2, hidden: c2 / 2, k, s }, c2, s_in(0) * s)
            }
            "nn.Upsample" | "Upsample" => {
                single(&ctx)?;
                let scale = args.get(1).and_then(as_f64).unwrap_or(2.0);
                let mode = args.get(2).and_then(Value::as_str).unwrap_or("nearest");
                if mode != "nearest" || scale.fract() != 0.0 || scale < 1.0 {
                    return Err(ctx.err("only integer nearest upsampling is supported"));
                }
                let scale = scale as usize;
                if s_in(0) % scale != 0 {
                    return Err(ctx.err("upsampling above the input resolution"));
                }
                (BlockSpec::Upsample { scale }, c_in(0), s_in(0) / scale)
            }
            "Concat" => {
                if arg_usize(0, 1)? != 1 {
                    return Err(ctx.err("only channel concatenation (dimension 1) is supported"));
                }
                let s0 = s_in(0);
                if (0..from.len()).any(|k| s_in(k) != s0) {
                    return Err(ctx.err("inputs have different strides"));
                }
                (BlockSpec::Concat, (0..from.len()).map(c_in).sum(), s0)
            }
            "Detect" => {
                if from.len() != anchors.len() {
                    return Err(ctx.err(format!("{} inputs but {} anchor levels", from.len(), anchors.len())));
                }
                let chs: Vec<usize> = (0..from.len()).map(c_in).collect();
                let st: Vec<f32> = (0..from.len()).map(|k| s_in(k) as f32).collect();
                (BlockSpec::Detect { nc, anchors: anchors.clone(), strides: st, ch: chs }, no, 0)
            }
            other => return Err(ctx.err(format!("unsupported module `{other}`"))),
        };
        if stride > 1 << 16 {
            return Err(ctx.err(format!("stride {stride} is larger than 65536")));
        }
        ch.push(c_out);
        strides.push(stride);
        layers.push(LayerSpec { from, module, block, out_channels: c_out, stride });
    }
    let arch = Architecture { name: origin.to_string(), nc, names, input_channels, layers, backbone_len };
    arch.validate()?;
    Ok(arch)
}

fn parse_anchors(v: Option<&Value>, yerr: &dyn Fn(String) -> ArchError) -> Result<Vec<Vec<[f32; 2]>>, ArchError> {
    let seq = v.and_then(Value::as_sequence).ok_or_else(|| {
        yerr("`anchors` must be a list of per-level [w,h, w,h, …] pixel lists (anchor counts are not supported)".into())
    })?;
    let mut out = Vec::new();
    for lvl in seq {
        let vals: Vec<f32> = lvl
            .as_sequence()
            .ok_or_else(|| yerr("each anchor level must be a list".into()))?
            .iter()
            .map(|x| as_f64(x).map(|f| f as f32).filter(|f| *f > 0.0))
            .collect::<Option<_>>()
            .ok_or_else(|| yerr("anchors must be positive numbers".into()))?;
        if vals.is_empty() || !vals.len().is_multiple_of(2) {
            return Err(yerr("each anchor level needs an even number of values".into()));
        }
        out.push(vals.chunks(2).map(|c| [c[0], c[1]]).collect::<Vec<_>>());
    }
    if out.is_empty() || out.iter().any(|l| l.len() != out[0].len()) {
        return Err(yerr("every level needs the same number of anchors".into()));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::arch::builtin_yaml;

    #[test]
    fn python_rounding() {
        assert_eq!(round_half_even(0.5), 0);
        assert_eq!(round_half_even(1.5), 2);
        assert_eq!(round_half_even(2.5), 2);
        assert_eq!(round_half_even(2.97), 3);
        assert_eq!(round_half_even(1.98), 2);
        assert_eq!(make_divisible(1024.0 * 0.25, 8), 256);
        assert_eq!(make_divisible(64.0 * 0.33, 8), 24);
    }

    #[test]
    fn yolov5s_widths_depths_strides() {
        let a = parse_model_yaml(builtin_yaml("yolov5s").unwrap(), "yolov5s").unwrap();
        assert_eq!(a.layers.len(), 25);
        assert_eq!(a.backbone_len, 10);
        let ch: Vec<usize> = a.layers.iter().map(|l| l.out_channels).collect();
        assert_eq!(&ch[..10], &[32, 64, 64, 128, 128, 256, 256, 512, 512, 512]);
        assert_eq!(ch[24], 255);
        let BlockSpec::C3 { inner, .. } = &a.layers[6].block else { panic!() };
        assert_eq!(inner.len(), 3); // 9 · 0.33 = 2.97 → 3
        let BlockSpec::Detect { strides, ch, .. } = &a.layers[24].block else { panic!() };
        assert_eq!(strides, &[8.0, 16.0, 32.0]);
        assert_eq!(ch, &[128, 256, 512]);
        assert_eq!(a.layers[12].out_channels, 512); // concat of 256 + 256
    }

    #[test]
    fn yolov5_ghostnet_widths_strides_and_se() {
        let a = parse_model_yaml(builtin_yaml("yolov5-ghostnet").unwrap(), "yolov5-ghostnet").unwrap();
        assert_eq!((a.layers.len(), a.backbone_len), (34, 19));
        let ch: Vec<usize> = a.layers.iter().map(|l| l.out_channels).collect();
        assert_eq!(&ch[..19], &[16, 16, 24, 24, 40, 40, 80, 80, 80, 80, 112, 112, 160, 160, 160, 160, 160, 960, 1024]);
        let st: Vec<usize> = a.layers[..19].iter().map(|l| l.stride).collect();
        assert_eq!(st, [2, 2, 4, 4, 8, 8, 16, 16, 16, 16, 16, 16, 32, 32, 32, 32, 32, 32, 32]);
        let blocks: Vec<(usize, usize, usize)> = a.layers[1..17]
            .iter()
            .map(|l| match l.block {
                BlockSpec::GhostNetBottleneck { hidden, k, se, .. } => (hidden, k, se),
                ref b => panic!("{b:?}"),
            })
            .collect();
        let hidden: Vec<usize> = blocks.iter().map(|b| b.0).collect();
        assert_eq!(hidden, [16, 48, 72, 72, 120, 240, 200, 184, 184, 480, 672, 672, 960, 960, 960, 960]);
        let se: Vec<usize> = blocks.iter().map(|b| b.2).collect();
        assert_eq!(se, [0, 0, 0, 18, 30, 0, 0, 0, 0, 120, 168, 168, 0, 240, 0, 240]);
        assert_eq!(blocks[3].1, 5);
        let BlockSpec::Sppf { c1, hidden, .. } = a.layers[18].block else { panic!() };
        assert_eq!((c1, hidden), (960, 480));
        assert_eq!((a.layers[21].from.clone(), a.layers[25].from.clone()), (vec![-1, 11], vec![-1, 5]));
        let BlockSpec::Detect { strides, ch, .. } = &a.layers[33].block else { panic!() };
        assert_eq!((strides.as_slice(), ch.as_slice()), (&[8.0, 16.0, 32.0][..], &[256, 512, 1024][..]));
        assert_eq!(a.layers[25].out_channels, 256 + 40);
        assert_eq!(a.layers[21].out_channels, 512 + 112);
    }

    /// The reference project's spelling (`GhostBottleneck` with five arguments) parses to the same
    /// blocks, and YOLOv5's three-argument `GhostBottleneck` keeps its meaning; expansion widths do not
    /// follow width_multiple.
    #[test]
    fn ghostnet_rows_in_reference_spelling_and_scaled() {
        let ours = parse_model_yaml(builtin_yaml("yolov5-ghostnet").unwrap(), "g").unwrap();
        let text = builtin_yaml("yolov5-ghostnet").unwrap().replace("GhostNetBottleneck", "GhostBottleneck");
        let theirs = parse_model_yaml(&text, "g").unwrap();
        let blocks = |a: &Architecture| a.layers.iter().map(|l| l.block.clone()).collect::<Vec<_>>();
        assert_eq!(blocks(&ours), blocks(&theirs));
        let yolo = "nc: 1\nanchors: [[10,13]]\nbackbone: [[-1, 1, Conv, [16, 3, 2]], [-1, 1, GhostBottleneck, [32, 3, 2]]]\nhead: [[[1], 1, Detect, [nc, anchors]]]";
        let a = parse_model_yaml(yolo, "y").unwrap();
        assert!(matches!(a.layers[1].block, BlockSpec::GhostBottleneck { c2: 32, k: 3, s: 2, .. }));
        let half = builtin_yaml("yolov5-ghostnet").unwrap().replace("width_multiple: 1.0", "width_multiple: 0.5");
        let a = parse_model_yaml(&half, "h").unwrap();
        assert!(matches!(
            a.layers[5].block,
            BlockSpec::GhostNetBottleneck { c1: 24, c2: 24, hidden: 120, k: 5, se: 30, s: 1 }
        ));
    }

    #[test]
    fn bad_ghostnet_rows_are_named() {
        let row = |args: &str| {
            let text = format!(
                "nc: 1\nanchors: [[10,13]]\nbackbone: [[-1, 1, Conv, [16, 3, 2]], [-1, 1, GhostNetBottleneck, {args}]]\nhead: [[[1], 1, Detect, [nc, anchors]]]"
            );
            parse_model_yaml(&text, "r").map(|_| ()).map_err(|e| e.to_string())
        };
        assert!(row("[24, 48, 3, 0, 2]").is_ok());
        assert!(row("[24, 47, 3, 0, 2]").unwrap_err().contains("expansion"));
        assert!(row("[24, 48, 3, 0, 3]").unwrap_err().contains("stride"));
        assert!(row("[24, 48, 4, 0, 1]").unwrap_err().contains("odd"));
        assert!(row("[24, 48, 3, 1.5, 1]").unwrap_err().contains("SE ratio"));
        assert!(row("[24, 2, 3, 0.25, 1]").unwrap_err().contains("no channels"));
    }

    #[test]
    fn bad_rows_are_named() {
        let text = "nc: 2\nanchors: [[10,13, 16,30]]\nbackbone: [[-1, 1, Conv, [16, 3, 2]], [-1, 1, Magic, [3]]]\nhead: [[[1], 1, Detect, [nc, anchors]]]";
        let err = parse_model_yaml(text, "bad.yaml").unwrap_err().to_string();
        assert!(err.contains("bad.yaml") && err.contains("layer 1") && err.contains("Magic"), "{err}");
        let err = parse_model_yaml("nc: -3", "x").unwrap_err().to_string();
        assert!(err.contains("nc"), "{err}");
        let fwd =
            "nc: 2\nanchors: [[10,13]]\nbackbone: [[3, 1, Conv, [16, 3, 2]]]\nhead: [[[0], 1, Detect, [nc, anchors]]]";
        assert!(parse_model_yaml(fwd, "f").unwrap_err().to_string().contains("earlier layer"));
    }
}
