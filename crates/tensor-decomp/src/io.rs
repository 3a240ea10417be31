//! Reading tensors from `.npy` and factor matrices from `.npz` files.
//!
//! Accepted: f64 or f32 entries (f32 is widened to f64), C or Fortran order, either byte order, any
//! number of dimensions. Anything else (integers, complex, object arrays, truncated files) is a
//! one-line error naming the file and what was expected.

use std::io::Cursor;
use std::path::Path;

use ndarray::{Array2, ArrayD, Ix2};
use ndarray_npy::{NpzReader, ReadNpyError, ReadNpyExt, ReadNpzError};
use serde::{Deserialize, Serialize};

use crate::{Result, TdError};

/// The element type a file held.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum NpyDtype {
    F64,
    F32,
}

fn read_bytes(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|source| TdError::Io {
        path: path.to_path_buf(),
        source,
    })
}

fn npy_error(path: &Path, what: &str, e: ReadNpyError) -> TdError {
    let reason = match e {
        ReadNpyError::WrongDescriptor(d) => {
            format!("{what} has dtype {d}; expected float64 ('<f8') or float32 ('<f4')")
        }
        other => format!("{what} is not a readable .npy array: {other}"),
    };
    TdError::bad_file(path, reason)
}

/// Reads a `.npy` tensor as f64, reporting whether it was stored as f32 (whose rank tolerance should
/// then use f32's ε).
pub fn read_npy_tensor(path: &Path) -> Result<(ArrayD<f64>, NpyDtype)> {
    let bytes = read_bytes(path)?;
    match ArrayD::<f64>::read_npy(Cursor::new(&bytes)) {
        Ok(a) => return Ok((a, NpyDtype::F64)),
        Err(ReadNpyError::WrongDescriptor(_)) => {}
        Err(e) => return Err(npy_error(path, "the file", e)),
    }
    match ArrayD::<f32>::read_npy(Cursor::new(&bytes)) {
        Ok(a) => Ok((a.mapv(f64::from), NpyDtype::F32)),
        Err(e) => Err(npy_error(path, "the file", e)),
    }
}

/// Reads a 2-D `.npy` array (rows = samples: feature matrices, class probabilities, point clouds) as
/// f64, with the dtypes and layouts of [`read_npy_tensor`]; any other number of dimensions is an error
/// naming the file.
pub fn read_npy_matrix(path: &Path) -> Result<Array2<f64>> {
    let (a, _) = read_npy_tensor(path)?;
    let ndim = a.ndim();
    a.into_dimensionality::<Ix2>().map_err(|_| {
        TdError::bad_file(
            path,
            format!("expected a 2-D array (rows = samples), found {ndim}-D"),
        )
    })
}

fn npz_matrix(
    npz: &mut NpzReader<Cursor<Vec<u8>>>,
    name: &str,
    path: &Path,
) -> Result<Array2<f64>> {
    let convert = |e: ReadNpzError| match e {
        ReadNpzError::Npy(ReadNpyError::WrongNdim(_, got)) => TdError::bad_file(
            path,
            format!("array `{name}` has {got} dimension(s); factor matrices must be 2-D (n_k × R)"),
        ),
        ReadNpzError::Npy(e) => npy_error(path, &format!("array `{name}`"), e),
        ReadNpzError::Zip(e) => TdError::bad_file(path, format!("array `{name}`: {e}")),
    };
    match npz.by_name::<ndarray::OwnedRepr<f64>, Ix2>(name) {
        Ok(a) => Ok(a),
        Err(ReadNpzError::Npy(ReadNpyError::WrongDescriptor(_))) => npz
            .by_name::<ndarray::OwnedRepr<f32>, Ix2>(name)
            .map(|a| a.mapv(f64::from))
            .map_err(convert),
        Err(e) => Err(convert(e)),
    }
}

/// Reads factor matrices `A0, A1, …` (consecutive names, `n_k × R` each) from a `.npz` file.
pub fn read_npz_factors(path: &Path) -> Result<Vec<Array2<f64>>> {
    let bytes = read_bytes(path)?;
    let mut npz = NpzReader::new(Cursor::new(bytes))
        .map_err(|e| TdError::bad_file(path, format!("not a readable .npz archive: {e}")))?;
    let names = npz
        .names()
        .map_err(|e| TdError::bad_file(path, format!("cannot list arrays: {e}")))?;
    let mut factors = Vec::new();
    while names.iter().any(|n| n == &format!("A{}", factors.len())) {
        let name = format!("A{}", factors.len());
        factors.push(npz_matrix(&mut npz, &name, path)?);
    }
    if factors.is_empty() {
        return Err(TdError::bad_file(
            path,
            format!("no array named A0; expected factor matrices A0, A1, … (found: {names:?})"),
        ));
    }
    Ok(factors)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::ShapeBuilder;
    use ndarray_npy::{NpzWriter, WriteNpyExt};

    #[test]
    fn matrices_read_f32_f64_fortran_and_refuse_other_dtypes_and_ranks() {
        let dir = tempfile::tempdir().unwrap();
        let a = ndarray::array![[1.0f64, 2.0], [3.0, 4.0], [5.0, 6.0]];
        let write = |name: &str, f: &dyn Fn(&mut std::fs::File)| {
            let p = dir.path().join(name);
            f(&mut std::fs::File::create(&p).unwrap());
            p
        };
        let p64 = write("a64.npy", &|f| a.write_npy(f).unwrap());
        assert_eq!(read_npy_matrix(&p64).unwrap(), a);
        let p32 = write("a32.npy", &|f| a.mapv(|v| v as f32).write_npy(f).unwrap());
        assert_eq!(read_npy_matrix(&p32).unwrap(), a);
        let fortran =
            Array2::from_shape_vec((3, 2).f(), vec![1.0, 3.0, 5.0, 2.0, 4.0, 6.0]).unwrap();
        let pf = write("af.npy", &|f| fortran.write_npy(f).unwrap());
        assert_eq!(read_npy_matrix(&pf).unwrap(), a);
        let pi = write("ai.npy", &|f| {
            ndarray::array![[1i64, 2]].write_npy(f).unwrap()
        });
        let e = read_npy_matrix(&pi).unwrap_err().to_string();
        assert!(e.contains("ai.npy") && e.contains("float64"), "{e}");
        let p1 = write("a1.npy", &|f| {
            ndarray::array![1.0f64, 2.0].write_npy(f).unwrap()
        });
        let e = read_npy_matrix(&p1).unwrap_err().to_string();
        assert!(
            e.contains("a1.npy") && e.contains("2-D") && e.contains("1-D"),
            "{e}"
        );
    }

    #[test]
    fn reads_f64_f32_c_and_fortran_order() {
        let dir = tempfile::tempdir().unwrap();
        let a = ArrayD::from_shape_fn(ndarray::IxDyn(&[2, 3, 4]), |i| {
            (i[0] * 100 + i[1] * 10 + i[2]) as f64
        });
        let p = dir.path().join("c.npy");
        a.write_npy(std::fs::File::create(&p).unwrap()).unwrap();
        let (b, dt) = read_npy_tensor(&p).unwrap();
        assert_eq!((b.clone(), dt), (a.clone(), NpyDtype::F64));
        // Fortran order: same logical array.
        let mut f = ndarray::Array3::<f32>::zeros((2, 3, 4).f());
        f.indexed_iter_mut()
            .for_each(|((i, j, k), v)| *v = (i * 100 + j * 10 + k) as f32);
        let p = dir.path().join("f.npy");
        f.write_npy(std::fs::File::create(&p).unwrap()).unwrap();
        let (b, dt) = read_npy_tensor(&p).unwrap();
        assert_eq!(dt, NpyDtype::F32);
        assert_eq!(b, a);
        // Integers: a clear error.
        let p = dir.path().join("i.npy");
        ndarray::arr1(&[1i64, 2])
            .write_npy(std::fs::File::create(&p).unwrap())
            .unwrap();
        let err = read_npy_tensor(&p).unwrap_err().to_string();
        assert!(
            err.contains("i.npy") && err.contains("expected float64"),
            "{err}"
        );
        let err = read_npy_tensor(&dir.path().join("missing.npy"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("missing.npy"), "{err}");
    }

    #[test]
    fn reads_npz_factors_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f.npz");
        let mut w = NpzWriter::new(std::fs::File::create(&p).unwrap());
        w.add_array("A1", &Array2::<f64>::ones((3, 2))).unwrap();
        w.add_array("A0", &Array2::<f32>::zeros((4, 2))).unwrap();
        w.finish().unwrap();
        let f = read_npz_factors(&p).unwrap();
        assert_eq!(f.len(), 2);
        assert_eq!(f[0].dim(), (4, 2));
        assert_eq!(f[1][[2, 1]], 1.0);
        let p = dir.path().join("bad.npz");
        let mut w = NpzWriter::new(std::fs::File::create(&p).unwrap());
        w.add_array("B0", &Array2::<f64>::ones((3, 2))).unwrap();
        w.finish().unwrap();
        let err = read_npz_factors(&p).unwrap_err().to_string();
        assert!(err.contains("no array named A0"), "{err}");
    }
}
