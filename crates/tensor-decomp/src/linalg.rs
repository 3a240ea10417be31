//! Dense kernels on row-major `f64` buffers, wrapping faer (GEMM, thin SVD, QR/LQ, Cholesky).
//!
//! Every matrix here is a row-major slice with explicit dimensions: a C-order tensor reshaped to
//! `m × n` is such a matrix without a copy, and the same buffer read column-major is its transpose,
//! which is how the wide unfoldings of TT-SVD reach faer's tall-matrix SVD (a QR first, then the SVD of
//! the small triangular factor) without any transposition copy. faer's global parallelism
//! ([`faer::set_global_parallelism`]) decides the threads.

use faer::dyn_stack::{MemBuffer, MemStack};
use faer::linalg::svd::{ComputeSvdVectors, svd, svd_scratch};
use faer::prelude::Solve;
use faer::{Accum, Mat, MatMut, MatRef, Par, Side};

use crate::{Result, TdError};

/// Machine epsilon of f64 (2⁻⁵²), the `ε` in numpy's rank tolerance.
pub const F64_EPS: f64 = f64::EPSILON;

fn par() -> Par {
    faer::get_global_parallelism()
}

/// `A·B` for row-major `A` (m×k) and `B` (k×n); returns row-major m×n.
pub(crate) fn matmul(a: &[f64], b: &[f64], m: usize, k: usize, n: usize) -> Vec<f64> {
    let mut out = vec![0.0; m * n];
    if m == 0 || n == 0 {
        return out;
    }
    let lhs = MatRef::from_row_major_slice(a, m, k);
    let rhs = MatRef::from_row_major_slice(b, k, n);
    let dst = MatMut::from_row_major_slice_mut(&mut out, m, n);
    faer::linalg::matmul::matmul(dst, Accum::Replace, lhs, rhs, 1.0, par());
    out
}

/// `Aᵀ·B` for row-major `A` (k×m) and `B` (k×n); returns row-major m×n.
pub(crate) fn matmul_tn(a: &[f64], b: &[f64], k: usize, m: usize, n: usize) -> Vec<f64> {
    let mut out = vec![0.0; m * n];
    if m == 0 || n == 0 {
        return out;
    }
    let lhs = MatRef::from_row_major_slice(a, k, m).transpose();
    let rhs = MatRef::from_row_major_slice(b, k, n);
    let dst = MatMut::from_row_major_slice_mut(&mut out, m, n);
    faer::linalg::matmul::matmul(dst, Accum::Replace, lhs, rhs, 1.0, par());
    out
}

/// Left singular vectors and singular values of a row-major `m × n` matrix `C`.
pub(crate) struct LeftSvd {
    /// `m × k` row-major, `k = min(m, n)`, orthonormal columns.
    pub u: Vec<f64>,
    /// The `k` singular values, non-increasing.
    pub s: Vec<f64>,
    pub k: usize,
}

/// Thin SVD of the row-major `m × n` matrix `c`, computing only `U` and `σ` (not `V`).
///
/// faer sees the buffer column-major as `Cᵀ` (n×m). The left singular vectors of `C` are the right
/// singular vectors of `Cᵀ`, which are those of the `R` of any QR of `Cᵀ`: for a wide `C`
/// (`n > 8m`) a cache-blocked tall-skinny QR ([`tsqr_r`]) reduces it to an `m × m` SVD, so a wide
/// unfolding costs `O(m² n)` flops, one pass over memory, and no `n × n` anything. Never the
/// eigen-decomposition of `C Cᵀ` (which would square the condition number).
pub(crate) fn left_svd(c: &[f64], m: usize, n: usize, what: &str) -> Result<LeftSvd> {
    let x = MatRef::from_column_major_slice(c, n, m);
    if n > TSQR_RATIO * m {
        // Very wide C: the SVD of TSQR's small R has the same σ and V (X = Q·R ⇒ V_X = V_R).
        let r = tsqr_r(x);
        return left_svd_of_xt(r.as_ref(), m, what, n);
    }
    left_svd_of_xt(x, m, what, n)
}

/// Below this aspect ratio (columns of `C` over rows) the SVD goes straight to faer.
const TSQR_RATIO: usize = 8;

/// The `R` factor (`min(n, m) × m`) of a tall `n × m` matrix by tall-skinny QR: Householder QR of row
/// blocks small enough to stay in cache, then QR of the stacked `R`s (recursively). Same backward
/// stability as one Householder QR, but one pass over memory instead of one per column; the `Q` factors
/// are never formed.
pub(crate) fn tsqr_r(x: MatRef<'_, f64>) -> Mat<f64> {
    let (n, m) = x.shape();
    let block = (4 * m).max(2048);
    if n <= block {
        return x.qr().thin_R().to_owned();
    }
    let blocks = n.div_ceil(block);
    let mut stack = Mat::<f64>::zeros(blocks * m, m);
    for b in 0..blocks {
        let start = b * block;
        let len = block.min(n - start);
        let qr = x.subrows(start, len).qr();
        let r = qr.thin_R();
        stack
            .as_mut()
            .submatrix_mut(b * m, 0, r.nrows(), m)
            .copy_from(r);
    }
    tsqr_r(stack.as_ref())
}

/// `σ` and (when `want_v`; else an empty matrix) the `m × k` right singular vectors of the `n × m`
/// matrix `x`.
fn svd_of(
    x: MatRef<'_, f64>,
    want_v: bool,
    what: &str,
    cols: usize,
) -> Result<(Vec<f64>, Mat<f64>)> {
    let (n, m) = x.shape();
    let k = m.min(n);
    let mut s = faer::diag::Diag::<f64>::zeros(k);
    let mut v = if want_v {
        Mat::<f64>::zeros(m, k)
    } else {
        Mat::<f64>::zeros(0, 0)
    };
    let par = par();
    let compute_v = if want_v {
        ComputeSvdVectors::Thin
    } else {
        ComputeSvdVectors::No
    };
    let mut buf = MemBuffer::new(svd_scratch::<f64>(
        n,
        m,
        ComputeSvdVectors::No,
        compute_v,
        par,
        Default::default(),
    ));
    svd(
        x,
        s.as_mut(),
        None,
        want_v.then(|| v.as_mut()),
        par,
        MemStack::new(&mut buf),
        Default::default(),
    )
    .map_err(|e| TdError::LinAlg {
        op: format!("SVD of the {m}×{cols} {what}"),
        reason: format!("{e:?}"),
    })?;
    Ok(((0..k).map(|i| s[i]).collect(), v))
}

/// Left singular vectors of `C` given `X` (`Cᵀ`, or its QR factor `R`: same `σ` and `V`), `m` columns.
fn left_svd_of_xt(x: MatRef<'_, f64>, m: usize, what: &str, cols: usize) -> Result<LeftSvd> {
    let (s, v) = svd_of(x, true, what, cols)?;
    let k = s.len();
    let mut u = vec![0.0; m * k];
    for j in 0..k {
        let col = v.col(j);
        for i in 0..m {
            u[i * k + j] = col[i];
        }
    }
    Ok(LeftSvd { u, s, k })
}

/// Singular values (non-increasing) of the row-major `m × n` matrix `a`.
pub(crate) fn singular_values_rm(a: &[f64], m: usize, n: usize, what: &str) -> Result<Vec<f64>> {
    if m.min(n) == 0 {
        return Ok(Vec::new());
    }
    let x = MatRef::from_column_major_slice(a, n, m);
    let s = if n > TSQR_RATIO * m {
        svd_of(tsqr_r(x).as_ref(), false, what, n)?.0
    } else {
        svd_of(x, false, what, n)?.0
    };
    Ok(s)
}

/// A thin LQ `A = L·Q` (`A` row-major `m × n`, `k = min(m, n)`) whose `Q` (orthonormal rows) is kept
/// as Householder reflectors: forming `Q` costs as much as the factorisation, and rounding only ever
/// needs small products `Y·Q`.
pub(crate) struct ImplicitLq {
    qr: faer::linalg::solvers::Qr<f64>,
    /// `L`, row-major `m × k`.
    pub l: Vec<f64>,
    pub k: usize,
    n: usize,
}

impl ImplicitLq {
    /// Factors the row-major `m × n` matrix `a` (a QR of `aᵀ`, read without copying).
    pub fn new(a: &[f64], m: usize, n: usize) -> Self {
        let qr = MatRef::from_column_major_slice(a, n, m).qr();
        let r = qr.thin_R();
        let k = r.nrows();
        let mut l = vec![0.0; m * k];
        for j in 0..k {
            for i in j..m {
                l[i * k + j] = r[(j, i)];
            }
        }
        Self { qr, l, k, n }
    }

    /// `Y·Q` for row-major `Y` (`p × k`); returns row-major `p × n`. Computed as `(Q_colᵀ…)`:
    /// `Y·Q = (H·[Yᵀ; 0])ᵀ` with `H` the Householder product, cost `O(n k p)`.
    pub fn left_mul_q(&self, y: &[f64], p: usize) -> Vec<f64> {
        let (n, k) = (self.n, self.k);
        let mut z = Mat::<f64>::zeros(n, p);
        for j in 0..p {
            for i in 0..k {
                z[(i, j)] = y[j * k + i];
            }
        }
        let coeff = self.qr.Q_coeff();
        let mut buf = MemBuffer::new(
            faer::linalg::householder::apply_block_householder_sequence_on_the_left_in_place_scratch::<f64>(
                n,
                coeff.nrows(),
                p,
            ),
        );
        faer::linalg::householder::apply_block_householder_sequence_on_the_left_in_place_with_conj(
            self.qr.Q_basis(),
            coeff,
            faer::Conj::No,
            z.as_mut(),
            par(),
            MemStack::new(&mut buf),
        );
        let mut out = vec![0.0; p * n];
        for j in 0..p {
            let col = z.col(j);
            for i in 0..n {
                out[j * n + i] = col[i];
            }
        }
        out
    }
}

/// Solves `X·V = M` in place (`M` row-major `n × r` becomes `X`) for a symmetric positive semi-definite
/// `V` (`r × r`, row-major): Cholesky, falling back to the pseudo-inverse when `V` is singular.
pub(crate) fn solve_spd_right(v: &[f64], m: &mut [f64], n: usize, r: usize) -> Result<()> {
    let vm = MatRef::from_row_major_slice(v, r, r).to_owned();
    let original = MatRef::from_row_major_slice(m, n, r).to_owned();
    let mut lhs = MatMut::from_row_major_slice_mut(m, n, r);
    if let Ok(llt) = vm.llt(Side::Lower) {
        llt.rsolve_in_place(lhs.as_mut());
        if lhs.as_ref().is_all_finite() {
            return Ok(());
        }
    }
    let svd = vm.thin_svd().map_err(|e| TdError::LinAlg {
        op: format!("pseudo-inverse of the {r}×{r} Gram matrix"),
        reason: format!("{e:?}"),
    })?;
    let pinv = svd.pseudoinverse();
    let x = &original * &pinv;
    lhs.copy_from(&x);
    Ok(())
}

/// numpy's `matrix_rank` tolerance: `σ_max · max(rows, cols) · ε`.
pub fn numpy_tolerance(sigma_max: f64, rows: usize, cols: usize, machine_eps: f64) -> f64 {
    sigma_max * rows.max(cols) as f64 * machine_eps
}

/// Number of singular values strictly above numpy's tolerance (see [`numpy_tolerance`]).
pub(crate) fn numerical_rank(s: &[f64], rows: usize, cols: usize, machine_eps: f64) -> usize {
    let smax = s.first().copied().unwrap_or(0.0);
    if smax <= 0.0 {
        return 0;
    }
    let tol = numpy_tolerance(smax, rows, cols, machine_eps);
    s.iter().filter(|&&x| x > tol).count()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matmul_matches_hand_product() {
        // [[1,2],[3,4]]·[[5,6],[7,8]] = [[19,22],[43,50]]
        let c = matmul(&[1., 2., 3., 4.], &[5., 6., 7., 8.], 2, 2, 2);
        assert_eq!(c, vec![19., 22., 43., 50.]);
        // Aᵀ·B with A = [[1,2],[3,4]]: [[1,3],[2,4]]·[[5,6],[7,8]] = [[26,30],[38,44]]
        let c = matmul_tn(&[1., 2., 3., 4.], &[5., 6., 7., 8.], 2, 2, 2);
        assert_eq!(c, vec![26., 30., 38., 44.]);
    }

    #[test]
    fn left_svd_of_wide_and_tall_matrices() {
        // diag(3, 2) padded: singular values 3, 2.
        let a = [3., 0., 0., 0., 2., 0.];
        let svd = left_svd(&a, 2, 3, "test").unwrap();
        assert!((svd.s[0] - 3.0).abs() < 1e-14 && (svd.s[1] - 2.0).abs() < 1e-14);
        assert!((svd.u[0].abs() - 1.0).abs() < 1e-14 && svd.u[1].abs() < 1e-14);
        let t = [3., 0., 0., 2., 0., 0.];
        let svd = left_svd(&t, 3, 2, "test").unwrap();
        assert_eq!(svd.k, 2);
        // U Uᵀ C = C
        let ut_c = matmul_tn(&svd.u, &t, 3, 2, 2);
        let back = matmul(&svd.u, &ut_c, 3, 2, 2);
        for (x, y) in back.iter().zip(t.iter()) {
            assert!((x - y).abs() < 1e-14);
        }
    }

    #[test]
    fn tsqr_matches_the_gram_matrix_and_singular_values() {
        // 20000 × 3 (10 blocks, one level of recursion): RᵀR = XᵀX, σ(R) = σ(X).
        let (n, m) = (20000, 3);
        let c: Vec<f64> = (0..n * m)
            .map(|i| ((i * 7919) % 1000) as f64 / 1000.0 - 0.3)
            .collect();
        let x = MatRef::from_column_major_slice(&c, n, m);
        let r = tsqr_r(x);
        assert_eq!((r.nrows(), r.ncols()), (3, 3));
        let rtr = r.transpose() * &r;
        let xtx = x.transpose() * x;
        for i in 0..m {
            for j in 0..m {
                assert!((rtr[(i, j)] - xtx[(i, j)]).abs() < 1e-9 * xtx[(0, 0)].abs());
            }
        }
        let direct = x.singular_values().unwrap();
        let via = singular_values_rm(&c, m, n, "test").unwrap();
        for (a, b) in direct.iter().zip(&via) {
            assert!((a - b).abs() < 1e-12 * direct[0]);
        }
    }

    #[test]
    fn implicit_lq_applies_q() {
        let a = [1., 2., 3., 4., 5., 6.]; // 2×3
        let lq = ImplicitLq::new(&a, 2, 3);
        // L·Q = A with Q applied implicitly to L's rows.
        let back = lq.left_mul_q(&lq.l, 2);
        for (x, y) in back.iter().zip(a.iter()) {
            assert!((x - y).abs() < 1e-13);
        }
    }

    #[test]
    fn spd_solve_and_singular_fallback() {
        // X·[[2,0],[0,4]] = [[2,4]] → X = [[1,1]]
        let mut m = vec![2., 4.];
        solve_spd_right(&[2., 0., 0., 4.], &mut m, 1, 2).unwrap();
        assert!((m[0] - 1.0).abs() < 1e-14 && (m[1] - 1.0).abs() < 1e-14);
        // Singular V = [[1,1],[1,1]], M = [[2,2]]: minimum-norm X = [[1,1]].
        let mut m = vec![2., 2.];
        solve_spd_right(&[1., 1., 1., 1.], &mut m, 1, 2).unwrap();
        assert!(m.iter().all(|x| x.is_finite()));
        assert!((m[0] + m[1] - 2.0).abs() < 1e-10);
    }
}
