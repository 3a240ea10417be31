//! Atomic file writes and safetensors checkpoints.
//!
//! Every file is written to a temporary sibling, flushed to disk, then renamed over the target, so a
//! crash leaves either the old file or the new one, never half of one. [`save_run`] / [`resume_run`] are
//! the checkpoint directory of a single-model training run (weights, optimiser state, history), shared by
//! [`crate::train::train`] and other runners.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use candle_core::{Device, Tensor};
use candle_nn::VarMap;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::models::ModelConfig;
use crate::optim::Optimizer;
use crate::{NnError, Result};

/// Writes `path` atomically: `write` fills a temporary sibling file, which is flushed to disk and renamed
/// over `path`; on any error the temporary file is removed.
pub fn write_with_atomic(
    path: &Path,
    write: impl FnOnce(&Path) -> std::io::Result<()>,
) -> Result<()> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    std::fs::create_dir_all(&dir).map_err(|e| NnError::io(&dir, e))?;
    let file_name = path
        .file_name()
        .ok_or_else(|| NnError::invalid("path", format!("{} has no file name", path.display())))?;
    let tmp = dir.join(format!(
        ".{}.tmp-{}",
        file_name.to_string_lossy(),
        std::process::id()
    ));
    let result = write(&tmp).and_then(|()| {
        std::fs::File::open(&tmp)?.sync_all()?;
        std::fs::rename(&tmp, path)
    });
    if let Err(e) = result {
        let _ = std::fs::remove_file(&tmp);
        return Err(NnError::io(path, e));
    }
    Ok(())
}

/// Writes `bytes` to `path` atomically.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    write_with_atomic(path, |tmp| {
        let mut f = std::fs::File::create(tmp)?;
        f.write_all(bytes)
    })
}

/// Serialises `value` as pretty JSON and writes it atomically.
pub fn write_json_atomic<T: serde::Serialize>(path: &Path, value: &T) -> Result<()> {
    let text =
        serde_json::to_string_pretty(value).map_err(|e| NnError::invalid("json", e.to_string()))?;
    write_atomic(path, text.as_bytes())
}

/// Reads JSON from `path`; a parse error names the file.
pub fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T> {
    let text = std::fs::read_to_string(path).map_err(|e| NnError::io(path, e))?;
    serde_json::from_str(&text).map_err(|e| NnError::bad_file(path, format!("invalid JSON: {e}")))
}

/// Saves named tensors as safetensors, atomically.
pub fn save_tensors(tensors: &HashMap<String, Tensor>, path: &Path) -> Result<()> {
    let cpu: HashMap<String, Tensor> = tensors
        .iter()
        .map(|(k, v)| Ok((k.clone(), v.to_device(&Device::Cpu)?)))
        .collect::<Result<_>>()?;
    write_with_atomic(path, |tmp| {
        candle_core::safetensors::save(&cpu, tmp).map_err(|e| std::io::Error::other(e.to_string()))
    })
}

/// Loads every tensor of a safetensors file onto `device`.
pub fn load_tensors(path: &Path, device: &Device) -> Result<HashMap<String, Tensor>> {
    if !path.exists() {
        return Err(NnError::Checkpoint {
            path: path.to_path_buf(),
            reason: "file does not exist".into(),
        });
    }
    candle_core::safetensors::load(path, device).map_err(|e| NnError::Checkpoint {
        path: path.to_path_buf(),
        reason: format!("not a valid safetensors file: {e}"),
    })
}

/// The variables of `varmap` as named tensors.
pub fn varmap_tensors(varmap: &VarMap) -> Result<HashMap<String, Tensor>> {
    let data = varmap
        .data()
        .lock()
        .map_err(|_| NnError::invalid("varmap", "lock poisoned"))?;
    Ok(data
        .iter()
        .map(|(k, v)| (k.clone(), v.as_tensor().clone()))
        .collect())
}

/// Sets every variable of `varmap` from `tensors` (keys `prefix + name`); a missing name or a shape
/// mismatch is an error naming `path`.
pub fn load_into_varmap(
    varmap: &VarMap,
    tensors: &HashMap<String, Tensor>,
    prefix: &str,
    path: &Path,
) -> Result<()> {
    let data = varmap
        .data()
        .lock()
        .map_err(|_| NnError::invalid("varmap", "lock poisoned"))?;
    for (name, var) in data.iter() {
        let key = format!("{prefix}{name}");
        let t = tensors.get(&key).ok_or_else(|| NnError::Checkpoint {
            path: path.to_path_buf(),
            reason: format!("missing tensor `{key}` (was it saved from a different model?)"),
        })?;
        if t.dims() != var.dims() {
            return Err(NnError::Checkpoint {
                path: path.to_path_buf(),
                reason: format!(
                    "tensor `{key}` has shape {:?}, the model expects {:?}",
                    t.dims(),
                    var.dims()
                ),
            });
        }
        check_finite(&key, t, path)?;
        var.set(&t.to_dtype(var.dtype())?.to_device(var.device())?)?;
    }
    Ok(())
}

/// An error naming `path` and the tensor `name` when it holds a NaN or an infinity.
fn check_finite(name: &str, t: &Tensor, path: &Path) -> Result<()> {
    match first_non_finite(t)? {
        None => Ok(()),
        Some((index, value)) => Err(NnError::Checkpoint {
            path: path.to_path_buf(),
            reason: format!(
                "tensor `{name}` holds a non-finite value ({value} at flat index {index}); the \
                 checkpoint is damaged or its run diverged"
            ),
        }),
    }
}

/// The first NaN or infinite element of a floating-point tensor (flat index and value); integer tensors
/// have none.
pub fn first_non_finite(t: &Tensor) -> Result<Option<(usize, f32)>> {
    if !t.dtype().is_float() {
        return Ok(None);
    }
    let values = t
        .to_device(&Device::Cpu)?
        .to_dtype(candle_core::DType::F32)?
        .flatten_all()?
        .to_vec1::<f32>()?;
    Ok(values
        .iter()
        .position(|v| !v.is_finite())
        .map(|i| (i, values[i])))
}

/// Saves the variables of `varmap` to `path` (safetensors, atomically).
pub fn save_varmap(varmap: &VarMap, path: &Path) -> Result<()> {
    save_tensors(&varmap_tensors(varmap)?, path)
}

/// Loads `path` into the variables of `varmap`.
pub fn load_varmap(varmap: &VarMap, path: &Path) -> Result<()> {
    let tensors = load_tensors(path, &Device::Cpu)?;
    load_into_varmap(varmap, &tensors, "", path)
}

/// The fields in which two settings differ, as `path: checkpoint A, this run B` (nested fields joined by
/// dots), so that a refused resume names what changed instead of printing both structures whole.
pub fn differences<T: Serialize>(saved: &T, now: &T) -> String {
    let out = differing_fields(saved, now, "checkpoint");
    if out.is_empty() {
        "no field differs".into()
    } else {
        out.join("; ")
    }
}

/// The fields in which `saved` (described as `saved_label`: "checkpoint", "directory", …) and `now`
/// differ, one `path: {saved_label} A, this run B` each, nested fields joined by dots; empty when equal.
pub fn differing_fields<T: Serialize + ?Sized>(
    saved: &T,
    now: &T,
    saved_label: &str,
) -> Vec<String> {
    fn walk(
        prefix: &str,
        a: &serde_json::Value,
        b: &serde_json::Value,
        label: &str,
        out: &mut Vec<String>,
    ) {
        use serde_json::Value;
        match (a, b) {
            (Value::Object(x), Value::Object(y)) => {
                let mut keys: Vec<&String> = x.keys().chain(y.keys()).collect();
                keys.sort();
                keys.dedup();
                for k in keys {
                    let path = if prefix.is_empty() {
                        k.clone()
                    } else {
                        format!("{prefix}.{k}")
                    };
                    walk(
                        &path,
                        x.get(k).unwrap_or(&Value::Null),
                        y.get(k).unwrap_or(&Value::Null),
                        label,
                        out,
                    );
                }
            }
            _ if a != b => out.push(format!("{prefix}: {label} {a}, this run {b}")),
            _ => {}
        }
    }
    match (serde_json::to_value(saved), serde_json::to_value(now)) {
        (Ok(a), Ok(b)) => {
            let mut out = Vec::new();
            walk("", &a, &b, saved_label, &mut out);
            out
        }
        _ => vec!["settings that cannot be compared".into()],
    }
}

/// The version of `state.json` this build writes and reads.
pub const RUN_STATE_FORMAT: u32 = 1;

/// The file name of a run checkpoint's commit point.
pub const RUN_STATE_FILE: &str = "state.json";

/// What identifies a single-model training run, checked on resume: a checkpoint directory belongs to
/// one model, one set of settings `C` and one data set (a fingerprint string).
#[derive(Debug, Clone, Copy)]
pub struct RunIdentity<'a, C> {
    pub model: &'a ModelConfig,
    pub config: &'a C,
    pub data: &'a str,
}

/// `state.json` of a run checkpoint directory: the run's identity, how far it got, its per-epoch history
/// `H`, and the name of the weights file — written last, so it only ever names a complete file.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunState<C, H> {
    pub format: u32,
    pub model: ModelConfig,
    /// The run's settings (`train` in checkpoints written before the field was shared).
    #[serde(alias = "train")]
    pub config: C,
    pub data: String,
    pub epochs_done: usize,
    /// Optimiser steps taken.
    pub steps: u64,
    /// The safetensors file (in the same directory) with the weights (`model.` + variable name) and
    /// the optimiser state.
    pub weights: String,
    pub history: Vec<H>,
}

/// Saves a run after `history.len()` epochs: weights and optimiser state to
/// `weights-epoch<k>.safetensors`, then [`RUN_STATE_FILE`] (the commit point), then removes older
/// weight files. Every write is atomic.
pub fn save_run<C: Serialize + Clone, H: Serialize + Clone>(
    dir: &Path,
    id: RunIdentity<'_, C>,
    varmap: &VarMap,
    optimizer: &Optimizer,
    history: &[H],
) -> Result<()> {
    let epochs_done = history.len();
    let weights = format!("weights-epoch{epochs_done}.safetensors");
    let mut tensors: HashMap<String, Tensor> = varmap_tensors(varmap)?
        .into_iter()
        .map(|(k, v)| (format!("model.{k}"), v))
        .collect();
    tensors.extend(optimizer.state_tensors());
    save_tensors(&tensors, &dir.join(&weights))?;
    let state = RunState {
        format: RUN_STATE_FORMAT,
        model: id.model.clone(),
        config: id.config.clone(),
        data: id.data.to_string(),
        epochs_done,
        steps: optimizer.steps(),
        weights: weights.clone(),
        history: history.to_vec(),
    };
    write_json_atomic(&dir.join(RUN_STATE_FILE), &state)?;
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().to_string();
            if name.starts_with("weights-epoch") && name != weights {
                let _ = std::fs::remove_file(entry.path());
            }
        }
    }
    Ok(())
}

/// Resumes a run saved by [`save_run`]: `Ok(None)` when `dir` holds no checkpoint; otherwise restores
/// the weights into `varmap` and the optimiser state, and returns the saved state. A checkpoint of a
/// different run — another model, data fingerprint, or settings for which `same_settings(saved, now)`
/// is false (e.g. anything but the epoch budget differs) — is an error naming the difference.
pub fn resume_run<C, H>(
    dir: &Path,
    id: RunIdentity<'_, C>,
    same_settings: impl Fn(&C, &C) -> bool,
    varmap: &VarMap,
    optimizer: &mut Optimizer,
) -> Result<Option<RunState<C, H>>>
where
    C: DeserializeOwned + Serialize + std::fmt::Debug,
    H: DeserializeOwned,
{
    let path = dir.join(RUN_STATE_FILE);
    if !path.exists() {
        return Ok(None);
    }
    let state: RunState<C, H> = read_json(&path)?;
    if state.format != RUN_STATE_FORMAT {
        return Err(NnError::Checkpoint {
            path,
            reason: format!(
                "state format version {} is not supported (this mathnn reads version {RUN_STATE_FORMAT})",
                state.format
            ),
        });
    }
    let mismatch = |what: &str, differences: String| NnError::Checkpoint {
        path: path.clone(),
        reason: format!(
            "belongs to a different run ({what} differ: {differences}); use another output directory or \
             delete it"
        ),
    };
    if &state.model != id.model {
        return Err(mismatch(
            "model settings",
            differences(&state.model, id.model),
        ));
    }
    if state.data != id.data {
        return Err(mismatch(
            "data",
            format!("checkpoint {}, this run {}", state.data, id.data),
        ));
    }
    if !same_settings(&state.config, id.config) {
        return Err(mismatch("settings", differences(&state.config, id.config)));
    }
    if state.history.len() != state.epochs_done {
        return Err(NnError::Checkpoint {
            path,
            reason: format!(
                "records {} epochs but says {} are done",
                state.history.len(),
                state.epochs_done
            ),
        });
    }
    let weights_path = dir.join(&state.weights);
    // Loaded on the CPU; `load_into_varmap` and `load_state` move each tensor to its variable's device.
    let tensors = load_tensors(&weights_path, &Device::Cpu)?;
    // The optimiser state too (load_into_varmap checks the model's): a NaN moment would poison the first
    // step after resuming.
    let mut names: Vec<&String> = tensors
        .keys()
        .filter(|k| !k.starts_with("model."))
        .collect();
    names.sort();
    for name in names {
        check_finite(name, &tensors[name], &weights_path)?;
    }
    load_into_varmap(varmap, &tensors, "model.", &weights_path)?;
    optimizer.load_state(&tensors, state.steps)?;
    Ok(Some(state))
}

#[cfg(test)]
mod tests {
    use candle_core::DType;

    use super::*;

    #[test]
    fn varmap_roundtrip_and_errors() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.safetensors");
        let a = VarMap::new();
        a.get(
            (2, 3),
            "w",
            candle_nn::Init::Randn {
                mean: 0.0,
                stdev: 1.0,
            },
            DType::F32,
            &Device::Cpu,
        )
        .unwrap();
        save_varmap(&a, &path).unwrap();
        let b = VarMap::new();
        b.get(
            (2, 3),
            "w",
            candle_nn::Init::Const(0.0),
            DType::F32,
            &Device::Cpu,
        )
        .unwrap();
        load_varmap(&b, &path).unwrap();
        let get = |m: &VarMap| {
            m.data().lock().unwrap()["w"]
                .as_tensor()
                .to_vec2::<f32>()
                .unwrap()
        };
        assert_eq!(get(&a), get(&b));
        // No temporary file is left behind.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);

        let c = VarMap::new();
        c.get(
            (3, 3),
            "w",
            candle_nn::Init::Const(0.0),
            DType::F32,
            &Device::Cpu,
        )
        .unwrap();
        let err = load_varmap(&c, &path).unwrap_err().to_string();
        assert!(
            err.contains("shape [2, 3]") && err.contains("m.safetensors"),
            "{err}"
        );

        std::fs::write(&path, b"not safetensors").unwrap();
        let err = load_varmap(&b, &path).unwrap_err().to_string();
        assert!(err.contains("not a valid safetensors"), "{err}");
        let err = load_varmap(&b, &dir.path().join("none.safetensors"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("does not exist"), "{err}");
    }
}
