//! Matricizations and numerical rank with numpy's tolerance.
//!
//! `unfold(A, S)` permutes the axes to `(S…, remaining modes in increasing order…)` and reshapes in C
//! order: rows are multi-indices over `S` (first listed mode slowest), columns over the rest. The
//! matricization lemma `rank_CP(A) ≥ rank(unfold(A, S))` holds for every split.
//!
//! ```
//! use ndarray::{ArrayD, IxDyn};
//! use tensor_decomp::unfold::{matrix_rank, unfold};
//!
//! // A[i,j,k,l] = δ(i,j)·δ(k,l): the odd/even split (rows i,k; columns j,l) is a 4×4 identity.
//! let a = ArrayD::from_shape_fn(IxDyn(&[2, 2, 2, 2]), |x| ((x[0] == x[1]) && (x[2] == x[3])) as u8 as f64);
//! assert_eq!(matrix_rank(&unfold(&a, &[0, 2])?)?, 4);
//! // The balanced split (rows i,j; columns k,l) has rank 1.
//! assert_eq!(matrix_rank(&unfold(&a, &[0, 1])?)?, 1);
//! # Ok::<(), tensor_decomp::TdError>(())
//! ```

use ndarray::{Array2, ArrayD};
use serde::{Deserialize, Serialize};

use crate::dense::{check_finite, check_shape};
use crate::linalg::{F64_EPS, numpy_tolerance, singular_values_rm};
use crate::{Result, TdError};

/// Machine epsilon of f32, for ranks of matrices that came from f32 data.
pub const F32_EPS: f64 = f32::EPSILON as f64;

/// The matricization with rows over `row_modes` (in the order given) and columns over the other modes
/// (increasing), both C-order. `row_modes` must be distinct modes of `tensor`; it may be empty (a
/// `1 × N` row) or hold every mode (an `N × 1` column).
pub fn unfold(tensor: &ArrayD<f64>, row_modes: &[usize]) -> Result<Array2<f64>> {
    let d = tensor.ndim();
    check_shape(tensor.shape(), 1, "tensor")?;
    let mut seen = vec![false; d];
    for &m in row_modes {
        if m >= d || seen[m] {
            return Err(TdError::invalid(
                "row_modes",
                format!(
                    "{row_modes:?} must list distinct modes of a {d}-D tensor (0..{})",
                    d - 1
                ),
            ));
        }
        seen[m] = true;
    }
    let mut axes: Vec<usize> = row_modes.to_vec();
    axes.extend((0..d).filter(|m| !seen[*m]));
    let rows: usize = row_modes.iter().map(|&m| tensor.shape()[m]).product();
    let cols = tensor.len() / rows;
    let permuted = tensor.view().permuted_axes(axes);
    let data: Vec<f64> = permuted.iter().copied().collect();
    Ok(Array2::from_shape_vec((rows, cols), data).expect("length matches"))
}

/// Singular values (non-increasing) of `m`; NaN/∞ entries are an error.
pub fn singular_values(m: &Array2<f64>) -> Result<Vec<f64>> {
    let (rows, cols) = m.dim();
    let data: Vec<f64> = m.iter().copied().collect();
    check_finite(&data, "matrix")?;
    singular_values_rm(&data, rows, cols, "matrix")
}

/// A numerical rank with the numbers behind it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RankInfo {
    /// Number of singular values strictly above `tolerance`.
    pub rank: usize,
    /// `σ_max · max(rows, cols) · ε`.
    pub tolerance: f64,
    /// Smallest kept singular value over the largest (1 when rank ≤ 1; 0 when rank 0).
    pub smallest_kept_rel: f64,
    /// Largest dropped singular value over the largest (0 when nothing was dropped).
    pub largest_dropped_rel: f64,
}

/// Numerical rank with numpy's rule `tol = σ_max · max(rows, cols) · machine_eps` (pass
/// [`f64::EPSILON`] for f64 data, [`F32_EPS`] for data that came from f32). A fixed threshold such as
/// 1e-8 would drop genuine singular values near 1e-10 and report wrong ranks.
pub fn rank_info(m: &Array2<f64>, machine_eps: f64) -> Result<RankInfo> {
    if !(machine_eps.is_finite() && machine_eps > 0.0) {
        return Err(TdError::invalid(
            "machine_eps",
            format!("must be a positive number, got {machine_eps}"),
        ));
    }
    let (rows, cols) = m.dim();
    let s = singular_values(m)?;
    let smax = s.first().copied().unwrap_or(0.0);
    let tolerance = numpy_tolerance(smax, rows, cols, machine_eps);
    let rank = if smax > 0.0 {
        s.iter().filter(|&&x| x > tolerance).count()
    } else {
        0
    };
    let rel = |x: f64| if smax > 0.0 { x / smax } else { 0.0 };
    Ok(RankInfo {
        rank,
        tolerance,
        smallest_kept_rel: if rank == 0 { 0.0 } else { rel(s[rank - 1]) },
        largest_dropped_rel: s.get(rank).map_or(0.0, |&x| rel(x)),
    })
}

/// Numerical rank with numpy's tolerance for f64 (`np.linalg.matrix_rank`).
pub fn matrix_rank(m: &Array2<f64>) -> Result<usize> {
    Ok(rank_info(m, F64_EPS)?.rank)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::IxDyn;

    #[test]
    fn unfold_orders_rows_and_columns_in_c_order() {
        // A[i,j,k] = 100i + 10j + k on 2×3×2.
        let a = ArrayD::from_shape_fn(IxDyn(&[2, 3, 2]), |x| {
            (100 * x[0] + 10 * x[1] + x[2]) as f64
        });
        let m = unfold(&a, &[1]).unwrap();
        assert_eq!(m.dim(), (3, 4));
        // row j=1: columns (i,k) = (0,0),(0,1),(1,0),(1,1)
        assert_eq!(m.row(1).to_vec(), vec![10., 11., 110., 111.]);
        let m = unfold(&a, &[2, 0]).unwrap();
        assert_eq!(m.dim(), (4, 3));
        // row (k=1, i=0): columns j = 0,1,2
        assert_eq!(m.row(2).to_vec(), vec![1., 11., 21.]);
        assert!(unfold(&a, &[0, 0]).is_err());
        assert!(unfold(&a, &[3]).is_err());
    }

    #[test]
    fn numpy_tolerance_keeps_tiny_but_genuine_values() {
        // diag(1, 1e-10, 1e-17): numpy's rank is 2 (tol = 3·2.2e-16); a 1e-8 threshold would say 1.
        let m = Array2::from_diag(&ndarray::arr1(&[1.0, 1e-10, 1e-17]));
        let info = rank_info(&m, f64::EPSILON).unwrap();
        assert_eq!(info.rank, 2);
        assert!((info.smallest_kept_rel - 1e-10).abs() < 1e-22);
        assert!((info.largest_dropped_rel - 1e-17).abs() < 1e-28);
        // With f32's ε the 1e-10 value is noise.
        assert_eq!(rank_info(&m, F32_EPS).unwrap().rank, 1);
        assert_eq!(matrix_rank(&Array2::zeros((3, 2))).unwrap(), 0);
    }
}
