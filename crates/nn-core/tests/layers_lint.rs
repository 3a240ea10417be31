//! Lint: the raw candle ops with wrong or missing gradients (pitfalls A1–A7 of
//! `shared/specs/candle-pitfalls.md`) may only be called in `crates/nn-core/src/layers.rs` (the safe
//! replacements) and `crates/nn-core/tests/layers_canary.rs` (the canaries). Everything else must use
//! `nn_core::layers`.
//!
//! The forbidden strings are built by concatenation so that this file does not match itself.

use std::path::{Path, PathBuf};

/// Files allowed to contain the forbidden strings, relative to the workspace root.
const ALLOWED: [&str; 2] = [
    "crates/nn-core/src/layers.rs",
    "crates/nn-core/tests/layers_canary.rs",
];

/// (forbidden string, prefix that makes an occurrence allowed, which pitfall).
fn forbidden() -> Vec<(String, Option<&'static str>, &'static str)> {
    vec![
        (
            ["softmax", "_last_dim"].concat(),
            None,
            "A6: use layers::softmax / layers::log_softmax",
        ),
        (
            ["ops::", "layer_norm("].concat(),
            None,
            "A7: use layers::layer_norm",
        ),
        (
            ["ops::", "rms_norm("].concat(),
            None,
            "A7: use layers::rms_norm",
        ),
        // `layers::upsample_bilinear2d(` (the replacement, same name) is the one allowed form.
        (
            ["upsample_", "bilinear2d("].concat(),
            Some("layers::"),
            "A5: use layers::upsample_bilinear2d",
        ),
        (
            [".max_", "pool2d("].concat(),
            None,
            "A1: use layers::max_pool2d",
        ),
        (
            ["Tensor::max_", "pool2d("].concat(),
            None,
            "A1: use layers::max_pool2d",
        ),
        (
            [".upsample_", "nearest2d("].concat(),
            None,
            "A3: use layers::upsample_nearest2d",
        ),
        (
            ["Tensor::upsample_", "nearest2d("].concat(),
            None,
            "A3: use layers::upsample_nearest2d",
        ),
    ]
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') || name == "target" {
            continue;
        }
        let Ok(ft) = entry.file_type() else { continue };
        if ft.is_dir() {
            rust_files(&path, out);
        } else if ft.is_file() && name.ends_with(".rs") {
            out.push(path);
        }
    }
}

/// Occurrences of `pat` in `line` not immediately preceded by `allowed_prefix`.
fn bad_occurrences(line: &str, pat: &str, allowed_prefix: Option<&str>) -> usize {
    line.match_indices(pat)
        .filter(|(i, _)| allowed_prefix.is_none_or(|p| !line[..*i].ends_with(p)))
        .count()
}

#[test]
fn raw_candle_ops_with_broken_gradients_are_only_used_in_layers_rs() {
    let root = workspace_root();
    let mut files = Vec::new();
    for dir in ["crates", "experiments", "benches"] {
        rust_files(&root.join(dir), &mut files);
    }
    assert!(
        files
            .iter()
            .any(|f| f.ends_with("crates/nn-core/src/layers.rs")),
        "lint did not find crates/nn-core/src/layers.rs under {}",
        root.display()
    );
    let rules = forbidden();
    let mut violations = Vec::new();
    for file in &files {
        let rel = file
            .strip_prefix(&root)
            .unwrap()
            .to_string_lossy()
            .replace('\\', "/");
        if ALLOWED.contains(&rel.as_str()) {
            continue;
        }
        let Ok(text) = std::fs::read_to_string(file) else {
            continue;
        };
        for (lineno, line) in text.lines().enumerate() {
            for (pat, prefix, why) in &rules {
                if bad_occurrences(line, pat, *prefix) > 0 {
                    violations.push(format!("{rel}:{}: `{pat}` ({why})", lineno + 1));
                }
            }
        }
    }
    eprintln!("layers lint: scanned {} .rs files", files.len());
    assert!(
        violations.is_empty(),
        "raw candle ops with broken gradients used outside nn_core::layers:\n{}",
        violations.join("\n")
    );
}

#[test]
fn lint_patterns_match_what_they_should() {
    let rules = forbidden();
    let hits = |line: &str| {
        rules
            .iter()
            .filter(|(p, pre, _)| bad_occurrences(line, p, *pre) > 0)
            .count()
    };
    let raw_pool = ["let y = x.max", "_pool2d(2)?;"].concat();
    let raw_bilinear = ["x.upsample", "_bilinear2d(4, 4, false)"].concat();
    let raw_softmax = ["candle_nn::ops::softmax", "_last_dim(&x)"].concat();
    assert_eq!(hits(&raw_pool), 1);
    assert_eq!(hits(&raw_bilinear), 1);
    assert_eq!(hits(&raw_softmax), 1);
    assert_eq!(hits("layers::upsample_bilinear2d(&x, 4, 4)"), 0);
    assert_eq!(hits("layers::max_pool2d(&x, 2)"), 0);
    assert_eq!(hits("candle_nn::ops::layer_norm_slow(&x, &g, &b, 1e-5)"), 0);
}
