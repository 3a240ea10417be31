//! [`RunLock`]: one process at a time per run directory. Two processes writing checkpoints into the same
//! folder would silently replace each other's files; the second one now gets an error naming the first
//! one's pid.
//!
//! The lock is `flock(LOCK_EX | LOCK_NB)` on `DIR/.mathnn.lock`, which holds the owner's pid for the
//! message. The kernel drops it when the process exits, however it exits (a `SIGKILL`ed run leaves no stale
//! lock: resuming just works). On platforms without `flock` the lock is a no-op.
//!
//! [`RunLock::acquire_for`] also stamps the directory with the *kind* of run that owns it
//! (`DIR/.mathnn-run`, e.g. `train` or `gan train`): a directory holding another kind of run, or files that
//! no mathnn run wrote, is refused unless the caller forces it — so a classifier's run is never mixed into
//! a GAN's, and a user's own folder is never written into by mistake.
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

/// The file naming the kind of run a directory holds (written by [`RunLock::acquire_for`]).
pub const KIND_FILE: &str = ".mathnn-run";

/// How many foreign file names a refusal lists before "and N more".
const LISTED: usize = 3;

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

    /// Locks `dir` for a run of `kind` (`"train"`, `"gan train"`, …) and stamps it with that kind.
    ///
    /// Refused, unless `force`, when the directory already holds another kind of run, or holds files
    /// although no mathnn run has used it (no stamp and no lock file): the error names `--out`, the kinds
    /// or the first few files. A directory with a lock file but no stamp was used by a mathnn run from
    /// before the stamp existed and is adopted. `force` lets the run share the directory anyway; files it
    /// writes replace files of the same name, other files are left alone.
    pub fn acquire_for(dir: &Path, kind: &str, force: bool) -> Result<Self> {
        let used_before = dir.join(LOCK_FILE).exists();
        let lock = Self::acquire(dir)?;
        let stamp_path = dir.join(KIND_FILE);
        let stamp = std::fs::read_to_string(&stamp_path)
            .ok()
            .map(|s| s.trim().to_string());
        let refuse = |what: String| {
            NnError::invalid(
                "--out",
                format!(
                    "{} {what}; use another directory, or --force to write this `{kind}` run into it anyway",
                    dir.display()
                ),
            )
        };
        match stamp.as_deref() {
            Some(k) if k == kind => return Ok(lock),
            Some(k) if !force => {
                return Err(refuse(format!("holds a `{k}` run, not a `{kind}` run")));
            }
            Some(_) => {}
            None if !used_before && !force => {
                let foreign = foreign_entries(dir)?;
                if !foreign.is_empty() {
                    let mut listed = foreign[..foreign.len().min(LISTED)].join(", ");
                    if foreign.len() > LISTED {
                        listed.push_str(&format!(" and {} more", foreign.len() - LISTED));
                    }
                    // Leave the folder as it was: a lock file left behind would mark it as a mathnn
                    // run directory, and the next attempt would be let in without --force.
                    let _ = std::fs::remove_file(dir.join(LOCK_FILE));
                    return Err(refuse(format!(
                        "holds files no mathnn run wrote ({listed})"
                    )));
                }
            }
            None => {}
        }
        crate::checkpoint::write_atomic(&stamp_path, format!("{kind}\n").as_bytes())?;
        Ok(lock)
    }

    /// The locked directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

/// Names in `dir` other than the lock and the stamp, sorted.
fn foreign_entries(dir: &Path) -> Result<Vec<String>> {
    let entries = std::fs::read_dir(dir).map_err(|e| NnError::io(dir, e))?;
    let mut names = Vec::new();
    for entry in entries {
        let name = entry
            .map_err(|e| NnError::io(dir, e))?
            .file_name()
            .to_string_lossy()
            .into_owned();
        if name != LOCK_FILE && name != KIND_FILE {
            names.push(name);
        }
    }
    names.sort();
    Ok(names)
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

#[cfg(test)]
mod tests {
    use super::*;

    fn message(r: Result<RunLock>) -> String {
        r.expect_err("expected a refusal").to_string()
    }

    #[test]
    fn same_kind_resumes_and_other_kind_is_refused() -> Result<()> {
        let dir = tempfile::tempdir().map_err(|e| NnError::io("tempdir", e))?;
        let run = dir.path().join("run");
        drop(RunLock::acquire_for(&run, "train", false)?);
        assert_eq!(
            std::fs::read_to_string(run.join(KIND_FILE)).unwrap(),
            "train\n"
        );
        drop(RunLock::acquire_for(&run, "train", false)?);
        let e = message(RunLock::acquire_for(&run, "gan train", false));
        assert!(e.contains("`--out`") && e.contains("holds a `train` run, not a `gan train` run"));
        assert!(e.contains("--force"), "{e}");
        // Forced: the directory now belongs to the new kind.
        drop(RunLock::acquire_for(&run, "gan train", true)?);
        assert_eq!(
            std::fs::read_to_string(run.join(KIND_FILE)).unwrap(),
            "gan train\n"
        );
        Ok(())
    }

    #[test]
    fn a_users_folder_is_refused_unless_forced_and_its_files_are_kept() -> Result<()> {
        let dir = tempfile::tempdir().map_err(|e| NnError::io("tempdir", e))?;
        for name in ["notes.txt", "a.csv", "b.csv", "c.csv"] {
            std::fs::write(dir.path().join(name), name).unwrap();
        }
        for _ in 0..2 {
            // Refused every time: a refusal leaves nothing behind that would let the next one in.
            let e = message(RunLock::acquire_for(dir.path(), "train", false));
            assert!(
                e.contains("holds files no mathnn run wrote (a.csv, b.csv, c.csv and 1 more)"),
                "{e}"
            );
            assert!(!dir.path().join(KIND_FILE).exists());
            assert!(!dir.path().join(LOCK_FILE).exists());
        }
        drop(RunLock::acquire_for(dir.path(), "train", true)?);
        assert_eq!(
            std::fs::read_to_string(dir.path().join("notes.txt")).unwrap(),
            "notes.txt"
        );
        // Stamped now: the next run of the same kind needs no force.
        drop(RunLock::acquire_for(dir.path(), "train", false)?);
        Ok(())
    }

    #[test]
    fn an_empty_folder_and_a_pre_stamp_run_are_taken() -> Result<()> {
        let dir = tempfile::tempdir().map_err(|e| NnError::io("tempdir", e))?;
        drop(RunLock::acquire_for(dir.path(), "dip", false)?);
        // A run from before the stamp: lock file and checkpoint, no stamp.
        let old = dir.path().join("old");
        std::fs::create_dir_all(old.join("checkpoint")).unwrap();
        std::fs::write(old.join(LOCK_FILE), "1").unwrap();
        drop(RunLock::acquire_for(&old, "train", false)?);
        assert!(old.join(KIND_FILE).exists());
        Ok(())
    }
}
