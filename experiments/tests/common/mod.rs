//! Helpers shared by the `mathnn` end-to-end tests.

use std::process::{Command, Output};

/// A mirror that refuses every connection at once (the discard port of the loopback address).
pub const DEAD_MIRROR: &str = "http://127.0.0.1:9/{name}/";

/// The `mathnn` binary with the caller's data and cache hidden, no way to the internet (every download
/// goes to [`DEAD_MIRROR`]) and one rayon thread.
pub fn mathnn() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_mathnn"));
    // Tests must not depend on the caller's data, cache or network.
    c.env_remove("MATHNN_DATA")
        .env("MATHNN_CACHE", "/nonexistent-mathnn-cache")
        .env("MATHNN_MIRROR", DEAD_MIRROR)
        .env("RAYON_NUM_THREADS", "1");
    c
}

/// Asserts failure, no panic, and a single `error:` line mentioning every one of `needles`.
pub fn assert_clean_failure(o: Output, needles: &[&str]) {
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        !o.status.success(),
        "expected failure, got success; stderr: {err}"
    );
    assert!(!err.contains("panicked"), "panic: {err}");
    let lines: Vec<&str> = err.lines().filter(|l| l.starts_with("error:")).collect();
    assert_eq!(lines.len(), 1, "expected one error line, got: {err}");
    for n in needles {
        assert!(
            lines[0].contains(n),
            "error line `{}` does not mention `{n}`",
            lines[0]
        );
    }
}
