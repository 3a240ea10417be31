//! [`RunLock`]: one process at a time per run directory. Two processes writing checkpoints into the same
//! folder would silently replace each other's files; the second one now gets an error naming the first
//! one's pid.
//!
//! The lock is `flock(LOCK_EX | LOCK_NB)` on `DIR/.mathnn.lock`, which holds the owner's pid for the
//! message. The kernel drops it when the process exits, however it exits (a `SIGKILL`ed run leaves no stale
//! lock: resuming just works). On platforms without `flock` the lock is a no-op.
//!
//! ```
//! use nn_core::run_lock::RunLock;
//!
//! let dir = tempfile::tempdir().unwrap();
//! let held = RunLock::acquire(dir.path()).unwrap();
//! // Held: a second acquisition (from this or any other process) is refused.
//! let err = RunLock::acquire(dir.path()).unwrap_err().to_string();
//! assert!(err.contains("in use by process"));
//! drop(held);
//! assert!(RunLock::acquire(dir.path()).is_ok());
//! ```

use std::fs::File;
use std::path::{Path, PathBuf};

use crate::{NnError, Result};

/// The lock file inside a run directory.
pub const LOCK_FILE: &str = ".mathnn.lock";

/// An exclusive lock on a run directory, released on drop (or when the process ends).
#[derive(Debug)]
pub struct RunLock {
    /// Kept open: closing the file releases the lock.
    _file: File,
    dir: PathBuf,
}

impl RunLock {
    /// Creates `dir` (and parents) if needed and locks it, or fails naming the process that holds it.
    pub fn acquire(dir: &Path) -> Result<Self> {
        std::fs::create_dir_all(dir).map_err(|e| NnError::Io {
            path: dir.to_path_buf(),
            source: e,
        })?;
        let path = dir.join(LOCK_FILE);
        let mut file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|e| NnError::Io {
                path: path.clone(),
                source: e,
            })?;
        if !try_lock(&file) {
            let holder = std::fs::read_to_string(&path).unwrap_or_default();
            let holder = holder.trim();
            return Err(NnError::invalid(
                "run directory",
                format!(
                    "{} is in use by process {}; wait for it to finish or use another directory",
                    dir.display(),
                    if holder.is_empty() {
                        "(unknown pid)"
                    } else {
                        holder
                    }
                ),
            ));
        }
        write_pid(&mut file, &path)?;
        Ok(Self {
            _file: file,
            dir: dir.to_path_buf(),
        })
    }

    /// The locked directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

fn write_pid(file: &mut File, path: &Path) -> Result<()> {
    use std::io::{Seek, SeekFrom, Write};
    let io = |e| NnError::Io {
        path: path.to_path_buf(),
        source: e,
    };
    file.set_len(0).map_err(io)?;
    file.seek(SeekFrom::Start(0)).map_err(io)?;
    write!(file, "{}", std::process::id()).map_err(io)?;
    file.flush().map_err(io)
}

#[cfg(unix)]
fn try_lock(file: &File) -> bool {
    use std::os::fd::AsRawFd;
    // SAFETY: flock on a descriptor this process owns; it touches no memory.
    unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) == 0 }
}

#[cfg(not(unix))]
fn try_lock(_file: &File) -> bool {
    true
}
