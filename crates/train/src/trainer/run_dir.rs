//! The run folder (`runs/train/exp`, `exp2`, …) and its text files: `args.yaml`, `hyp.yaml` and
//! `results.csv` in ultralytics' layout.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use crate::error::TrainError;

/// The `results.csv` columns, as ultralytics names them.
pub const RESULTS_COLUMNS: [&str; 14] = [
    "epoch",
    "train/box_loss",
    "train/obj_loss",
    "train/cls_loss",
    "metrics/precision",
    "metrics/recall",
    "metrics/mAP_0.5",
    "metrics/mAP_0.5:0.95",
    "val/box_loss",
    "val/obj_loss",
    "val/cls_loss",
    "x/lr0",
    "x/lr1",
    "x/lr2",
];

/// `project/name`, or `project/name2`, `name3`, … if taken (ultralytics' `increment_path`);
/// `exist_ok` reuses `project/name`. The folder and its `weights/` are created.
pub fn increment_run_dir(project: &Path, name: &str, exist_ok: bool) -> Result<PathBuf, TrainError> {
    let mut dir = project.join(name);
    if !exist_ok && dir.exists() {
        let mut n = 2;
        while project.join(format!("{name}{n}")).exists() {
            n += 1;
        }
        dir = project.join(format!("{name}{n}"));
    }
    let weights = dir.join("weights");
    std::fs::create_dir_all(&weights).map_err(|source| TrainError::Io { path: weights, source })?;
    Ok(dir)
}

/// Writes `value` as YAML to `path` (atomically).
pub fn write_yaml<T: serde::Serialize>(path: &Path, value: &T) -> Result<(), TrainError> {
    let text = serde_norway::to_string(value).map_err(|e| TrainError::Config(format!("{}: {e}", path.display())))?;
    yolo_compress_model::weights::atomic_write(path, text.as_bytes())
        .map_err(|source| TrainError::Io { path: path.to_path_buf(), source })
}

/// C's `%.{sig}g`: `sig` significant digits, trailing zeros removed, exponent form for very small
/// or large magnitudes (what ultralytics' `'%20.5g'` prints).
pub fn format_g(v: f64, sig: usize) -> String {
    if v == 0.0 || !v.is_finite() {
        return if v == 0.0 { "0".into() } else { v.to_string() };
    }
    let exp = v.abs().log10().floor() as i32;
    let exp = {
        // Rounding can carry into the next power of ten (9.99995 → 10).
        let r = format!("{:.*e}", sig.saturating_sub(1), v);
        r.rsplit('e').next().and_then(|e| e.parse::<i32>().ok()).unwrap_or(exp)
    };
    let trim = |s: String| {
        if s.contains('.') { s.trim_end_matches('0').trim_end_matches('.').to_string() } else { s }
    };
    if exp < -4 || exp >= sig as i32 {
        let s = format!("{:.*e}", sig.saturating_sub(1), v);
        let (mant, e) = s.split_once('e').unwrap_or((&s, "0"));
        let e: i32 = e.parse().unwrap_or(0);
        format!("{}e{}{:02}", trim(mant.to_string()), if e < 0 { '-' } else { '+' }, e.abs())
    } else {
        let decimals = (sig as i32 - 1 - exp).max(0) as usize;
        trim(format!("{v:.decimals$}"))
    }
}

/// Appends one row to `results.csv`, writing the header first if the file is new. Values are
/// right-aligned in 20 characters as ultralytics writes them (`%20.5g`).
pub fn append_results(path: &Path, epoch: usize, values: &[f64; 13]) -> Result<(), TrainError> {
    let io = |source| TrainError::Io { path: path.to_path_buf(), source };
    let mut text = String::new();
    if !path.exists() {
        let header: Vec<String> = RESULTS_COLUMNS.iter().map(|c| format!("{c:>20}")).collect();
        let _ = writeln!(text, "{}", header.join(","));
    }
    let mut row = vec![format!("{epoch:>20}")];
    row.extend(values.iter().map(|v| format!("{:>20}", format_g(*v, 5))));
    let _ = writeln!(text, "{}", row.join(","));
    let mut f = std::fs::OpenOptions::new().create(true).append(true).open(path).map_err(io)?;
    f.write_all(text.as_bytes()).map_err(io)?;
    f.sync_data().map_err(io)
}

/// Keeps the rows of `results.csv` for epochs `< epoch` (a resumed run rewrites later rows).
pub fn truncate_results(path: &Path, epoch: usize) -> Result<(), TrainError> {
    let Ok(text) = std::fs::read_to_string(path) else { return Ok(()) };
    let kept: Vec<&str> = text
        .lines()
        .enumerate()
        .filter(|(i, l)| {
            *i == 0 || l.split(',').next().and_then(|e| e.trim().parse::<usize>().ok()).is_some_and(|e| e < epoch)
        })
        .map(|(_, l)| l)
        .collect();
    let mut out = kept.join("\n");
    out.push('\n');
    yolo_compress_model::weights::atomic_write(path, out.as_bytes())
        .map_err(|source| TrainError::Io { path: path.to_path_buf(), source })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn format_g_matches_c_printf() {
        // Values checked against Python's '%.5g' % v.
        for (v, e) in [
            (0.0, "0"),
            (1.0, "1"),
            (0.123456, "0.12346"),
            (12.3456789, "12.346"),
            (0.00012345678, "0.00012346"),
            (0.0000123456, "1.2346e-05"),
            (123456.0, "1.2346e+05"),
            (99999.5, "1e+05"),
            (-0.5, "-0.5"),
            (0.01, "0.01"),
        ] {
            assert_eq!(format_g(v, 5), e, "{v}");
        }
    }

    #[test]
    fn run_dirs_increment_and_results_append() {
        let tmp = tempfile::tempdir().unwrap();
        let a = increment_run_dir(tmp.path(), "exp", false).unwrap();
        let b = increment_run_dir(tmp.path(), "exp", false).unwrap();
        let c = increment_run_dir(tmp.path(), "exp", true).unwrap();
        assert_eq!(a, tmp.path().join("exp"));
        assert_eq!(b, tmp.path().join("exp2"));
        assert_eq!(c, a);
        assert!(b.join("weights").is_dir());
        let csv = a.join("results.csv");
        for e in 0..3 {
            append_results(&csv, e, &[0.5; 13]).unwrap();
        }
        truncate_results(&csv, 2).unwrap();
        let text = std::fs::read_to_string(&csv).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3);
        let header: Vec<&str> = lines[0].split(',').map(str::trim).collect();
        assert_eq!(header, RESULTS_COLUMNS);
        assert_eq!(lines[2].split(',').next().unwrap().trim(), "1");
        assert_eq!(lines[1].split(',').nth(3).unwrap(), format!("{:>20}", "0.5"));
    }
}
