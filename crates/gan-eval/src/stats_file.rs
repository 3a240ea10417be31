//! FID statistics files in pytorch-fid's format: an `.npz` archive with `mu` (the feature mean, length d)
//! and `sigma` (the covariance, d × d), as `pytorch_fid --save-stats` writes them with
//! `numpy.savez_compressed` (clean-fid and torch-fidelity keep the same two arrays).
//!
//! [`read_stats_npz`] reads such files (stored or deflate-compressed; f64 or f32 arrays — pytorch-fid's `mu`
//! is f32 when its activations were) and [`write_stats_npz`] writes files pytorch-fid reads back: f64 `mu`
//! and `sigma`, plus an `n` array with the sample count (pytorch-fid ignores extra keys).
//!
//! ```
//! use gan_eval::FrechetStats;
//! use gan_eval::stats_file::{read_stats_npz, write_stats_npz};
//!
//! let x = ndarray::Array2::from_shape_fn((10, 3), |(i, j)| ((i * 7 + j * 3) % 5) as f64);
//! let stats = FrechetStats::from_features(x.view())?;
//! let path = std::env::temp_dir().join("gan_eval_doc_stats.npz");
//! write_stats_npz(&stats, &path)?;
//! let back = read_stats_npz(&path)?;
//! assert_eq!((back.mean, back.cov, back.n), (stats.mean, stats.cov, 10));
//! # Ok::<(), gan_eval::GanEvalError>(())
//! ```

use std::io::Cursor;
use std::path::Path;

use ndarray::{Array0, Array1, Array2, Dimension};
use ndarray_npy::{NpzReader, NpzWriter, ReadNpzError};

use crate::frechet::FrechetStats;
use crate::{GanEvalError, Result};

/// The sample count given to statistics whose file does not record one (pytorch-fid's): 2, the least a
/// sample covariance needs. Only [`FrechetStats::n`] carries it; FID uses the mean and covariance alone.
pub const UNKNOWN_SAMPLE_COUNT: usize = 2;

fn bad(path: &Path, reason: impl Into<String>) -> GanEvalError {
    GanEvalError::BadFile {
        path: path.to_path_buf(),
        reason: reason.into(),
    }
}

/// Reads array `name` as f64 (stored as f64 or f32).
fn read_f64<D: Dimension>(
    npz: &mut NpzReader<Cursor<Vec<u8>>>,
    name: &str,
    path: &Path,
) -> Result<ndarray::Array<f64, D>> {
    let described = |e: ReadNpzError| {
        bad(
            path,
            format!(
                "array `{name}`: {e}; expected a float64 or float32 array (pytorch-fid's mu/sigma)"
            ),
        )
    };
    match npz.by_name::<ndarray::OwnedRepr<f64>, D>(name) {
        Ok(a) => Ok(a),
        Err(ReadNpzError::Npy(ndarray_npy::ReadNpyError::WrongDescriptor(_))) => npz
            .by_name::<ndarray::OwnedRepr<f32>, D>(name)
            .map(|a| a.mapv(f64::from))
            .map_err(described),
        Err(e) => Err(described(e)),
    }
}

/// Reads FID statistics from an `.npz` file with arrays `mu` (d) and `sigma` (d × d), and `n` when the file
/// has it (else [`UNKNOWN_SAMPLE_COUNT`]). Errors name the file: a missing array, another shape, a
/// non-float dtype, a non-finite value, a covariance that is not symmetric.
pub fn read_stats_npz(path: &Path) -> Result<FrechetStats> {
    let bytes = std::fs::read(path).map_err(|e| bad(path, format!("cannot read: {e}")))?;
    let mut npz = NpzReader::new(Cursor::new(bytes))
        .map_err(|e| bad(path, format!("not an .npz archive: {e}")))?;
    let names = npz
        .names()
        .map_err(|e| bad(path, format!("unreadable .npz directory: {e}")))?;
    for key in ["mu", "sigma"] {
        if !names.iter().any(|n| n == key) {
            return Err(bad(
                path,
                format!(
                    "has no `{key}` array (it holds {}); FID statistics files hold `mu` and `sigma`",
                    if names.is_empty() {
                        "none".to_string()
                    } else {
                        names.join(", ")
                    }
                ),
            ));
        }
    }
    let mean: Array1<f64> = read_f64(&mut npz, "mu", path)?;
    let cov: Array2<f64> = read_f64(&mut npz, "sigma", path)?;
    let n = if names.iter().any(|k| k == "n") {
        let n = npz
            .by_name::<ndarray::OwnedRepr<i64>, ndarray::Ix0>("n")
            .map_err(|e| bad(path, format!("array `n`: {e}; expected an int64 scalar")))?;
        usize::try_from(n.into_scalar())
            .map_err(|_| bad(path, "array `n` is negative; expected the sample count"))?
    } else {
        UNKNOWN_SAMPLE_COUNT
    };
    let stats = FrechetStats {
        mean,
        cov,
        n,
        factor: None,
    };
    stats
        .validate("statistics")
        .map_err(|e| bad(path, e.to_string()))?;
    let d = stats.dim();
    for i in 0..d {
        for j in 0..i {
            let (a, b) = (stats.cov[[i, j]], stats.cov[[j, i]]);
            if (a - b).abs() > 1e-9 * (a.abs() + b.abs()).max(f64::MIN_POSITIVE) {
                return Err(bad(
                    path,
                    format!("`sigma` is not symmetric: [{i}, {j}] = {a}, [{j}, {i}] = {b}"),
                ));
            }
        }
    }
    Ok(stats)
}

/// Writes `stats` as pytorch-fid reads statistics: `mu` and `sigma` in f64, plus `n` (int64 scalar).
/// Stored, not compressed (numpy reads both); written to a temporary file and renamed into place.
pub fn write_stats_npz(stats: &FrechetStats, path: &Path) -> Result<()> {
    stats.validate("statistics")?;
    let io = |e: std::io::Error| bad(path, format!("cannot write: {e}"));
    nn_core::checkpoint::write_with_atomic(path, |tmp| {
        let file = std::fs::File::create(tmp)?;
        let mut npz = NpzWriter::new(file);
        let n = i64::try_from(stats.n).unwrap_or(i64::MAX);
        let write = |npz: &mut NpzWriter<std::fs::File>| -> std::result::Result<(), ndarray_npy::WriteNpzError> {
            npz.add_array("mu", &stats.mean)?;
            npz.add_array("sigma", &stats.cov)?;
            npz.add_array("n", &Array0::from_elem((), n))?;
            Ok(())
        };
        write(&mut npz).map_err(std::io::Error::other)?;
        npz.finish().map_err(std::io::Error::other)?;
        Ok(())
    })
    .map_err(|e| match e {
        nn_core::NnError::Io { source, .. } => io(source),
        other => bad(path, other.to_string()),
    })
}
