//! Atomic file writes and safetensors checkpoints.
//!
//! Every file is written to a temporary sibling, flushed to disk, then renamed over the target, so a
//! crash leaves either the old file or the new one, never half of one.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use candle_core::{Device, Tensor};
use candle_nn::VarMap;

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
        var.set(&t.to_dtype(var.dtype())?.to_device(var.device())?)?;
    }
    Ok(())
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
