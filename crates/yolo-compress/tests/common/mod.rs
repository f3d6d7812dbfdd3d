//! Helpers shared by the CLI tests: run the `ycomp` binary built for this test run.

#![allow(dead_code)]

use std::path::Path;
use std::process::{Command, Output};

/// Runs `ycomp` with `args`.
pub fn ycomp(args: &[&str]) -> Output {
    ycomp_in(Path::new("."), args)
}

/// Runs `ycomp` with `args` in the working directory `dir`.
pub fn ycomp_in(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ycomp")).current_dir(dir).args(args).output().expect("ycomp runs")
}

/// Runs `ycomp` and asserts success (printing its stderr otherwise).
pub fn ok(args: &[&str]) -> Output {
    ok_in(Path::new("."), args)
}

/// [`ok`] in the working directory `dir`.
pub fn ok_in(dir: &Path, args: &[&str]) -> Output {
    let out = ycomp_in(dir, args);
    assert!(out.status.success(), "ycomp {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    out
}

/// Runs `ycomp`, asserts success and parses its stdout as JSON.
pub fn ok_json(args: &[&str]) -> serde_json::Value {
    ok_json_in(Path::new("."), args)
}

/// [`ok_json`] in the working directory `dir`.
pub fn ok_json_in(dir: &Path, args: &[&str]) -> serde_json::Value {
    let out = ok_in(dir, args);
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)))
}
