//! Checksummed downloads (the `download` feature, on by default): [`fetch_files`] over HTTP(S) with
//! `ureq`, one temporary file per download, renamed into place only once its SHA-256 matches. A library
//! user who never downloads builds nn-core with `default-features = false` and no HTTP stack.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use sha2::{Digest, Sha256};

use crate::data::image_io::temp_path_for;
use crate::data::locate::{RemoteFile, check_file, hex};
use crate::progress::Progress;
use crate::{NnError, Result};

/// Downloads every file of `files` that is not already in `dest_dir` with the right size and SHA-256,
/// trying `mirrors` (base URLs; the file name is appended) in order until one gives the right bytes.
///
/// Each download goes to a temporary file in `dest_dir`, which is renamed into place only after its
/// SHA-256 matches and deleted otherwise. The error of a file that no mirror could serve names the URL,
/// and for a checksum mismatch the expected and actual SHA-256; earlier attempts are listed too.
///
/// `progress` counts bytes: for each download, `message(file name)`, `start(size, 0)`, then `advance` per
/// chunk received.
pub fn fetch_files(
    files: &[RemoteFile],
    dest_dir: &Path,
    mirrors: &[String],
    progress: Option<&dyn Progress>,
) -> Result<()> {
    if mirrors.is_empty() {
        return Err(NnError::invalid("mirrors", "no mirror given"));
    }
    std::fs::create_dir_all(dest_dir).map_err(|e| NnError::io(dest_dir, e))?;
    let agent = ureq::Agent::new_with_config(
        ureq::Agent::config_builder()
            .timeout_connect(Some(Duration::from_secs(30)))
            .timeout_recv_response(Some(Duration::from_secs(60)))
            .timeout_per_read(Some(Duration::from_secs(60)))
            .accept_encoding("identity")
            .user_agent(concat!("mathnn/", env!("CARGO_PKG_VERSION")))
            .build(),
    );
    for file in files {
        let status = check_file(dest_dir, file)?;
        if status.ok {
            tracing::info!(file = file.name, dir = %dest_dir.display(), "already present and verified");
            continue;
        }
        let mut failures: Vec<(String, String)> = Vec::new();
        for mirror in mirrors {
            let url = join_url(mirror, file.name);
            match download_verified(&agent, &url, file, dest_dir, progress) {
                Ok(()) => {
                    failures.clear();
                    break;
                }
                Err(reason) => {
                    tracing::warn!(%url, %reason, "download failed");
                    failures.push((url, reason));
                }
            }
        }
        if let Some((url, reason)) = failures.pop() {
            let earlier: Vec<String> = failures.iter().map(|(u, r)| format!("{u}: {r}")).collect();
            let reason = if earlier.is_empty() {
                reason
            } else {
                format!("{reason}; earlier mirrors: {}", earlier.join("; "))
            };
            return Err(NnError::Download { url, reason });
        }
    }
    Ok(())
}

/// `base` and `name` joined with exactly one `/`.
fn join_url(base: &str, name: &str) -> String {
    format!("{}/{name}", base.trim_end_matches('/'))
}

/// Removes the temporary file on drop unless it was renamed into place.
struct TempFile {
    path: PathBuf,
    keep: bool,
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if !self.keep {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// Downloads `url` into a temporary file in `dest_dir`, checks size and SHA-256 against `file`, and
/// renames it to `dest_dir/<file.name>`. Returns the reason of a failure; nothing is left behind then.
fn download_verified(
    agent: &ureq::Agent,
    url: &str,
    file: &RemoteFile,
    dest_dir: &Path,
    progress: Option<&dyn Progress>,
) -> std::result::Result<(), String> {
    let dest = dest_dir.join(file.name);
    let mut response = agent.get(url).call().map_err(|e| e.to_string())?;
    let encoding = response
        .headers()
        .get("content-encoding")
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.eq_ignore_ascii_case("identity"))
        .map(str::to_string);
    let total = response.body().content_length().unwrap_or(file.bytes);
    let mut reader = response.body_mut().with_config().reader();

    let tmp = TempFile {
        path: temp_path_for(&dest),
        keep: false,
    };
    let mut out = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&tmp.path)
        .map_err(|e| format!("cannot create {}: {e}", tmp.path.display()))?;
    if let Some(p) = progress {
        p.message(file.name);
        p.start(total, 0);
    }
    tracing::info!(%url, bytes = total, "downloading");
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    let mut got: u64 = 0;
    loop {
        let k = reader
            .read(&mut buf)
            .map_err(|e| format!("reading the response failed after {got} bytes: {e}"))?;
        if k == 0 {
            break;
        }
        got += k as u64;
        if got > file.bytes {
            return Err(format!(
                "server sent more than the expected {} bytes (downloaded file discarded)",
                file.bytes
            ));
        }
        hasher.update(&buf[..k]);
        out.write_all(&buf[..k])
            .map_err(|e| format!("cannot write {}: {e}", tmp.path.display()))?;
        if let Some(p) = progress {
            p.advance(k as u64);
        }
    }
    let actual = hex(&hasher.finalize());
    if actual != file.sha256 {
        let note = encoding
            .map(|e| format!(" (the server applied Content-Encoding: {e})"))
            .unwrap_or_default();
        return Err(format!(
            "sha256 mismatch: expected {}, got {actual} ({got} bytes, expected {}){note}; downloaded file discarded",
            file.sha256, file.bytes
        ));
    }
    out.sync_all()
        .map_err(|e| format!("cannot write {}: {e}", tmp.path.display()))?;
    drop(out);
    std::fs::rename(&tmp.path, &dest).map_err(|e| {
        format!(
            "cannot rename {} to {}: {e}",
            tmp.path.display(),
            dest.display()
        )
    })?;
    let mut tmp = tmp;
    tmp.keep = true;
    tracing::info!(%url, dest = %dest.display(), "downloaded and verified");
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn file_names_join_mirror_urls_with_one_slash() {
        assert_eq!(super::join_url("http://a/b/", "f.gz"), "http://a/b/f.gz");
        assert_eq!(super::join_url("http://a/b", "f.gz"), "http://a/b/f.gz");
    }
}
