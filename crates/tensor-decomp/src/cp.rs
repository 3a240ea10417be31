//! CP (canonical polyadic) tensors and CP-ALS.
//!
//! `A = Σ_{α=1}^R λ_α a^{(1)}_α ⊗ … ⊗ a^{(d)}_α`, factor matrices `A_k ∈ R^{n_k×R}` (column α is
//! `a^{(k)}_α`). One ALS sweep updates every factor in turn by the normal equations
//! `A_k ← MTTKRP_k · V⁻¹`, `V = ∗_{j≠k} A_jᵀA_j` (Hadamard product of Gram matrices), with the MTTKRP
//! computed without the Khatri–Rao product of all other factors: the unfolding is multiplied by the
//! Khatri–Rao product of the modes *after* k (one GEMM) and contracted with that of the modes *before*
//! k, so memory stays `O(N/n_k · R)` at most.
//!
//! ```
//! use ndarray::Array2;
//! use tensor_decomp::cp::{cp_als, CpInit, CpTensor};
//!
//! // A rank-2 4×5×6 tensor, recovered from a seeded random start.
//! let f = |n: usize, s: f64| Array2::from_shape_fn((n, 2), |(i, j)| ((i + 1) as f64 * s + j as f64).sin());
//! let truth = CpTensor::new(vec![1.0, 1.0], vec![f(4, 0.3), f(5, 0.7), f(6, 1.1)])?;
//! let x = truth.full()?;
//! let fit = cp_als(&x, 2, 500, CpInit::Random { seed: 1 }, 1e-14)?;
//! assert!(fit.rel_error < 1e-8);
//! assert_eq!(fit.errors.len(), fit.iterations);
//! # Ok::<(), tensor_decomp::TdError>(())
//! ```

use ndarray::{Array2, ArrayD, IxDyn};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

use crate::dense::{check_finite, checked_numel, norm, validated};
use crate::linalg::{left_svd, matmul, matmul_tn, solve_spd_right};
use crate::tt::TensorTrain;
use crate::{Result, TdError};

/// A CP tensor: weights `λ` (length R) and factor matrices `A_k` (`n_k × R`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CpTensor {
    weights: Vec<f64>,
    factors: Vec<Array2<f64>>,
}

/// Row-major copy of a factor matrix.
fn rm(a: &Array2<f64>) -> Vec<f64> {
    a.iter().copied().collect()
}

impl CpTensor {
    /// Builds a CP tensor, checking that there is at least one factor, that all factors have the same
    /// number `R ≥ 1` of columns and no empty mode, that `weights` has length `R`, and that every number
    /// is finite.
    pub fn new(weights: Vec<f64>, factors: Vec<Array2<f64>>) -> Result<Self> {
        let r = check_factors(&factors, None, "factors")?;
        if weights.len() != r {
            return Err(TdError::shape(
                "CP weights",
                format!("{r} weights (one per column)"),
                format!("{}", weights.len()),
            ));
        }
        check_finite(&weights, "CP weights")?;
        Ok(Self { weights, factors })
    }

    /// CP rank `R` (number of terms).
    pub fn rank(&self) -> usize {
        self.weights.len()
    }

    /// Mode sizes.
    pub fn shape(&self) -> Vec<usize> {
        self.factors.iter().map(|f| f.nrows()).collect()
    }

    /// The weights `λ`.
    pub fn weights(&self) -> &[f64] {
        &self.weights
    }

    /// The factor matrices `A_k` (`n_k × R`).
    pub fn factors(&self) -> &[Array2<f64>] {
        &self.factors
    }

    /// The full tensor: `(A_1 diag λ)·KhatriRao(A_2, …, A_d)ᵀ`, one GEMM.
    pub fn full(&self) -> Result<ArrayD<f64>> {
        let shape = self.shape();
        checked_numel(&shape, "CP tensor")?;
        let factors: Vec<Vec<f64>> = self.factors.iter().map(rm).collect();
        let data = reconstruct(&shape, &factors, &self.weights);
        Ok(ArrayD::from_shape_vec(IxDyn(&shape), data).expect("length matches"))
    }

    /// The same tensor as an exact TT of ranks ≤ R (see [`cp_to_tt`]).
    pub fn to_tt(&self) -> TensorTrain {
        cp_to_tt(self)
    }
}

/// Checks factor matrices (all `n_k × R` with the same `R ≥ 1`, `n_k ≥ 1`, finite); returns `R`.
fn check_factors(factors: &[Array2<f64>], shape: Option<&[usize]>, name: &str) -> Result<usize> {
    if factors.is_empty() {
        return Err(TdError::invalid(name, "needs at least one factor matrix"));
    }
    let r = factors[0].ncols();
    if r == 0 {
        return Err(TdError::invalid(
            name,
            "factor matrices need at least one column (rank ≥ 1)",
        ));
    }
    if let Some(shape) = shape
        && shape.len() != factors.len()
    {
        return Err(TdError::shape(
            name,
            format!("{} factor matrices (one per mode)", shape.len()),
            format!("{}", factors.len()),
        ));
    }
    for (k, f) in factors.iter().enumerate() {
        let expected_rows = shape.map_or(f.nrows(), |s| s[k]);
        if f.ncols() != r || f.nrows() != expected_rows || f.nrows() == 0 {
            return Err(TdError::shape(
                format!("{name}: factor {k}"),
                format!("{expected_rows}×{r}"),
                format!("{}×{}", f.nrows(), f.ncols()),
            ));
        }
        check_finite(&rm(f), &format!("{name}: factor {k}"))?;
    }
    Ok(r)
}

/// A CP tensor of rank R as an exact TT of ranks ≤ R: `G_1[i] = A_1[i,:]` (1×R),
/// `G_k[i] = diag(A_k[i,:])`, `G_d[i] = (λ ∘ A_d[i,:])ᵀ` (R×1). A one-mode CP tensor becomes the vector
/// `Σ_α λ_α a_α`.
pub fn cp_to_tt(cp: &CpTensor) -> TensorTrain {
    let d = cp.factors.len();
    let r = cp.rank();
    let lam = &cp.weights;
    let cores =
        if d == 1 {
            let a = &cp.factors[0];
            vec![ndarray::Array3::from_shape_fn(
                (1, a.nrows(), 1),
                |(_, i, _)| (0..r).map(|c| lam[c] * a[[i, c]]).sum(),
            )]
        } else {
            cp.factors
                .iter()
                .enumerate()
                .map(|(k, a)| {
                    let n = a.nrows();
                    if k == 0 {
                        ndarray::Array3::from_shape_fn((1, n, r), |(_, i, c)| a[[i, c]])
                    } else if k == d - 1 {
                        ndarray::Array3::from_shape_fn((r, n, 1), |(c, i, _)| lam[c] * a[[i, c]])
                    } else {
                        ndarray::Array3::from_shape_fn((r, n, r), |(x, i, y)| {
                            if x == y { a[[i, x]] } else { 0.0 }
                        })
                    }
                })
                .collect()
        };
    TensorTrain::from_cores(cores).expect("a valid CP tensor gives valid TT cores")
}

/// Khatri–Rao product of row-major `n_j × R` factors, rows ordered C-style (first factor slowest), as
/// the columns of a C-order unfolding are. Returns row-major `(Π n_j) × R`.
fn khatri_rao(factors: &[&[f64]], dims: &[usize], r: usize) -> Vec<f64> {
    let mut acc = vec![1.0; r];
    let mut rows = 1;
    for (f, &n) in factors.iter().zip(dims) {
        let mut next = vec![0.0; rows * n * r];
        for p in 0..rows {
            let a = &acc[p * r..(p + 1) * r];
            for i in 0..n {
                let b = &f[i * r..(i + 1) * r];
                let out = &mut next[(p * n + i) * r..(p * n + i + 1) * r];
                for c in 0..r {
                    out[c] = a[c] * b[c];
                }
            }
        }
        acc = next;
        rows *= n;
    }
    acc
}

/// `MTTKRP_k = X_(k) · KhatriRao_{j≠k}(A_j)` (`n_k × R`, row-major) for a C-order tensor `x`: with
/// `P = n_1⋯n_{k-1}`, `Q = n_{k+1}⋯n_d`, one GEMM `(P n_k × Q)·KR_right (Q × R)` and a contraction with
/// `KR_left (P × R)`. Cost `O(N R)`, memory `O((P + Q) R + P n_k R)`.
fn mttkrp(x: &[f64], shape: &[usize], factors: &[Vec<f64>], r: usize, k: usize) -> Vec<f64> {
    let p: usize = shape[..k].iter().product();
    let nk = shape[k];
    let q: usize = shape[k + 1..].iter().product();
    let slices: Vec<&[f64]> = factors.iter().map(|f| f.as_slice()).collect();
    if q == 1 {
        let left = khatri_rao(&slices[..k], &shape[..k], r);
        return matmul_tn(x, &left, p, nk, r);
    }
    let right = khatri_rao(&slices[k + 1..], &shape[k + 1..], r);
    let y = matmul(x, &right, p * nk, q, r);
    if p == 1 {
        return y;
    }
    let left = khatri_rao(&slices[..k], &shape[..k], r);
    let mut m = vec![0.0; nk * r];
    for pp in 0..p {
        let l = &left[pp * r..(pp + 1) * r];
        for i in 0..nk {
            let yy = &y[(pp * nk + i) * r..(pp * nk + i + 1) * r];
            let out = &mut m[i * r..(i + 1) * r];
            for c in 0..r {
                out[c] += l[c] * yy[c];
            }
        }
    }
    m
}

/// Dense reconstruction `(A_1 diag λ)·KR(A_2..A_d)ᵀ` in C order.
fn reconstruct(shape: &[usize], factors: &[Vec<f64>], weights: &[f64]) -> Vec<f64> {
    let r = weights.len();
    let n0 = shape[0];
    let mut a0 = factors[0].clone();
    for i in 0..n0 {
        for c in 0..r {
            a0[i * r + c] *= weights[c];
        }
    }
    if shape.len() == 1 {
        return (0..n0)
            .map(|i| a0[i * r..(i + 1) * r].iter().sum())
            .collect();
    }
    let slices: Vec<&[f64]> = factors[1..].iter().map(|f| f.as_slice()).collect();
    let kr = khatri_rao(&slices, &shape[1..], r);
    let q = kr.len() / r;
    // (n0 × R)·(Q × R)ᵀ
    let krt = transpose(&kr, q, r);
    matmul(&a0, &krt, n0, r, q)
}

fn transpose(a: &[f64], m: usize, n: usize) -> Vec<f64> {
    let mut t = vec![0.0; m * n];
    for i in 0..m {
        for j in 0..n {
            t[j * m + i] = a[i * n + j];
        }
    }
    t
}

fn gram(f: &[f64], n: usize, r: usize) -> Vec<f64> {
    matmul_tn(f, f, n, r, r)
}

/// Moves the column norms of a row-major `n × R` factor into the returned weights (columns of norm 0
/// are left as they are, with weight 0).
fn normalize_columns(f: &mut [f64], n: usize, r: usize) -> Vec<f64> {
    let mut w = vec![0.0; r];
    for row in f.chunks_exact(r).take(n) {
        w.iter_mut().zip(row).for_each(|(a, x)| *a += x * x);
    }
    w.iter_mut().for_each(|a| *a = a.sqrt());
    for row in f.chunks_exact_mut(r).take(n) {
        row.iter_mut()
            .zip(&w)
            .filter(|(_, nrm)| **nrm > 0.0)
            .for_each(|(x, nrm)| *x /= nrm);
    }
    w
}

/// How CP-ALS starts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum CpInit {
    /// Factors with entries uniform in `[0, 1)` from a seeded RNG (factor 1 first, row-major).
    Random { seed: u64 },
    /// These factor matrices (`n_k × R` each): deterministic starts for tests and restarts.
    Given(Vec<Array2<f64>>),
    /// The leading left singular vectors of each mode unfolding (computed by a QR of the long side, so
    /// memory stays `O(N)`: no `N/n_k × N/n_k` matrix). Columns beyond `n_k` are filled with uniform
    /// `[0, 1)` numbers from seed 0.
    Svd,
}

/// Options of [`cp_als_with`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CpAlsOptions {
    /// Maximum number of sweeps (default 100).
    pub iters: usize,
    /// Start (default `Random { seed: 0 }`).
    pub init: CpInit,
    /// Stop when the relative error changes by less than `tol` between sweeps (default 1e-10; 0 runs
    /// all sweeps).
    pub tol: f64,
    /// Bro's extrapolation as in TensorLy: every second sweep after the fifth, try
    /// `A + (A − A_prev)·it^{1/p}` (p = 2, raised by one after 4 failures) and keep it when it lowers the
    /// error (default false).
    pub line_search: bool,
}

impl Default for CpAlsOptions {
    fn default() -> Self {
        Self {
            iters: 100,
            init: CpInit::Random { seed: 0 },
            tol: 1e-10,
            line_search: false,
        }
    }
}

/// The outcome of CP-ALS.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CpAls {
    /// The fitted CP tensor (columns of every factor have unit norm; scale in the weights).
    pub cp: CpTensor,
    /// Relative error `‖X − X̂‖/‖X‖` after each sweep (one entry per sweep, line-search sweeps included).
    /// Computed with the Gram trick `‖X‖² − 2⟨X,X̂⟩ + ‖X̂‖²`, switching to the dense residual once the
    /// error drops below 1e-6, where the trick's cancellation (floor ≈ 1e-8) would show.
    pub errors: Vec<f64>,
    /// Sweeps done.
    pub iterations: usize,
    /// Whether the `tol` criterion stopped the iteration (false: sweeps exhausted).
    pub converged: bool,
    /// Final relative error from the dense residual.
    pub rel_error: f64,
}

/// Below this relative error the Gram-trick error is replaced by the dense residual.
const DENSE_ERROR_BELOW: f64 = 1e-6;

/// CP-ALS with rank `rank`, at most `iters` sweeps, start `init`, stopping tolerance `tol` (see
/// [`CpAlsOptions`]). Errors: a tensor with fewer than 2 modes, rank 0, a mode of size 0, NaN/∞ entries,
/// an all-zero tensor, `tol < 0`, given factors of the wrong shape.
pub fn cp_als(
    tensor: &ArrayD<f64>,
    rank: usize,
    iters: usize,
    init: CpInit,
    tol: f64,
) -> Result<CpAls> {
    cp_als_with(
        tensor,
        rank,
        &CpAlsOptions {
            iters,
            init,
            tol,
            line_search: false,
        },
    )
}

/// Working memory of [`cp_als_with`] in bytes, `None` if it overflows `u64`: f64 factors, their line-search
/// copies and one MTTKRP output (3·R·Σnₖ), and a Gram matrix per mode plus the normal-equation product
/// ((d + 2)·R²) — the R² terms dominate for large ranks (R = 100,000 needs ~80 GB per matrix). The tensor
/// itself is not counted. For callers that take R from a user and want to refuse before allocating.
pub fn cp_als_memory_bytes(shape: &[usize], rank: usize) -> Option<u64> {
    let r = rank as u64;
    let sum_n = shape
        .iter()
        .try_fold(0u64, |acc, &n| acc.checked_add(n as u64))?;
    let factors = r.checked_mul(sum_n)?.checked_mul(3)?;
    let grams = r.checked_mul(r)?.checked_mul(shape.len() as u64 + 2)?;
    factors.checked_add(grams)?.checked_mul(8)
}

/// CP-ALS with all options (see [`cp_als`], [`CpAlsOptions`]).
pub fn cp_als_with(tensor: &ArrayD<f64>, rank: usize, options: &CpAlsOptions) -> Result<CpAls> {
    if rank == 0 {
        return Err(TdError::invalid("rank", "CP rank must be at least 1"));
    }
    if !(options.tol.is_finite() && options.tol >= 0.0) {
        return Err(TdError::invalid(
            "tol",
            format!("must be a finite number ≥ 0, got {}", options.tol),
        ));
    }
    let (x, norm_x) = validated(tensor, 2, "tensor")?;
    if norm_x == 0.0 {
        return Err(TdError::invalid(
            "tensor",
            "is identically zero; its relative CP error is undefined",
        ));
    }
    let shape = tensor.shape().to_vec();
    let d = shape.len();
    let r = rank;
    let mut factors = initial_factors(tensor, &x, &shape, r, &options.init)?;
    let mut weights = vec![1.0; r];
    let mut grams: Vec<Vec<f64>> = factors
        .iter()
        .zip(&shape)
        .map(|(f, &n)| gram(f, n, r))
        .collect();
    let nx2 = norm_x * norm_x;
    let mut errors = Vec::with_capacity(options.iters);
    let mut converged = false;
    let (mut acc_pow, mut acc_fail) = (2.0f64, 0usize);
    const MAX_FAIL: usize = 4;
    let mut last: Option<(Vec<Vec<f64>>, Vec<f64>)> = None;
    for it in 0..options.iters {
        if options.line_search && it % 2 == 0 {
            last = Some((factors.clone(), weights.clone()));
        }
        let mut inner = 0.0;
        let mut recon2 = 0.0;
        for k in 0..d {
            let n = shape[k];
            let mut v = vec![1.0; r * r];
            for (j, g) in grams.iter().enumerate() {
                if j != k {
                    v.iter_mut().zip(g).for_each(|(a, b)| *a *= b);
                }
            }
            let m = mttkrp(&x, &shape, &factors, r, k);
            let mut a = m.clone();
            solve_spd_right(&v, &mut a, n, r)?;
            let g = gram(&a, n, r);
            if k == d - 1 {
                inner = m.iter().zip(&a).map(|(p, q)| p * q).sum();
                recon2 = v.iter().zip(&g).map(|(p, q)| p * q).sum();
            }
            weights = normalize_columns(&mut a, n, r);
            grams[k] = gram(&a, n, r);
            factors[k] = a;
        }
        let mut err = ((nx2 - 2.0 * inner + recon2).max(0.0)).sqrt() / norm_x;
        if err < DENSE_ERROR_BELOW {
            err = dense_error(&x, &shape, &factors, &weights, norm_x);
        }
        if options.line_search
            && it % 2 == 0
            && it > 5
            && let Some((f_last, w_last)) = &last
        {
            let jump = (it as f64).powf(1.0 / acc_pow);
            let extrapolate = |new: &[f64], old: &[f64]| -> Vec<f64> {
                new.iter()
                    .zip(old)
                    .map(|(a, b)| b + (a - b) * jump)
                    .collect()
            };
            let f_ls: Vec<Vec<f64>> = factors
                .iter()
                .zip(f_last)
                .map(|(a, b)| extrapolate(a, b))
                .collect();
            let w_ls = extrapolate(&weights, w_last);
            let err_ls = model_error(&x, &shape, &f_ls, &w_ls, norm_x);
            if err_ls.is_finite() && err_ls < err {
                factors = f_ls;
                weights = w_ls;
                err = err_ls;
                acc_fail = 0;
                grams = factors
                    .iter()
                    .zip(&shape)
                    .map(|(f, &n)| gram(f, n, r))
                    .collect();
            } else {
                acc_fail += 1;
                if acc_fail >= MAX_FAIL {
                    acc_pow += 1.0;
                    acc_fail = 0;
                }
            }
        }
        let prev = errors.last().copied();
        errors.push(err);
        if let Some(p) = prev
            && (p - err).abs() < options.tol
        {
            converged = true;
            break;
        }
    }
    let rel_error = dense_error(&x, &shape, &factors, &weights, norm_x);
    let cp = CpTensor {
        weights,
        factors: factors
            .into_iter()
            .zip(&shape)
            .map(|(f, &n)| Array2::from_shape_vec((n, r), f).expect("length matches"))
            .collect(),
    };
    Ok(CpAls {
        cp,
        iterations: errors.len(),
        errors,
        converged,
        rel_error,
    })
}

fn dense_error(
    x: &[f64],
    shape: &[usize],
    factors: &[Vec<f64>],
    weights: &[f64],
    norm_x: f64,
) -> f64 {
    let rec = reconstruct(shape, factors, weights);
    let diff: Vec<f64> = x.iter().zip(&rec).map(|(a, b)| a - b).collect();
    norm(&diff) / norm_x
}

/// Relative error of the model `[[λ; A_1..A_d]]` by the Gram trick (dense below 1e-6).
fn model_error(
    x: &[f64],
    shape: &[usize],
    factors: &[Vec<f64>],
    weights: &[f64],
    norm_x: f64,
) -> f64 {
    let d = shape.len();
    let r = weights.len();
    let m = mttkrp(x, shape, factors, r, d - 1);
    let last = &factors[d - 1];
    let mut inner = 0.0;
    for i in 0..shape[d - 1] {
        for c in 0..r {
            inner += weights[c] * m[i * r + c] * last[i * r + c];
        }
    }
    let mut v = vec![1.0; r * r];
    for (f, &n) in factors.iter().zip(shape) {
        v.iter_mut().zip(gram(f, n, r)).for_each(|(a, b)| *a *= b);
    }
    let mut recon2 = 0.0;
    for a in 0..r {
        for b in 0..r {
            recon2 += weights[a] * weights[b] * v[a * r + b];
        }
    }
    let err = ((norm_x * norm_x - 2.0 * inner + recon2).max(0.0)).sqrt() / norm_x;
    if err < DENSE_ERROR_BELOW {
        dense_error(x, shape, factors, weights, norm_x)
    } else {
        err
    }
}

fn uniform_factor(rng: &mut StdRng, n: usize, r: usize) -> Vec<f64> {
    (0..n * r).map(|_| rng.random::<f64>()).collect()
}

fn initial_factors(
    tensor: &ArrayD<f64>,
    x: &[f64],
    shape: &[usize],
    r: usize,
    init: &CpInit,
) -> Result<Vec<Vec<f64>>> {
    match init {
        CpInit::Random { seed } => {
            let mut rng = StdRng::seed_from_u64(*seed);
            Ok(shape
                .iter()
                .map(|&n| uniform_factor(&mut rng, n, r))
                .collect())
        }
        CpInit::Given(f) => {
            let given_r = check_factors(f, Some(shape), "initial factors")?;
            if given_r != r {
                return Err(TdError::shape(
                    "initial factors",
                    format!("{r} columns (the requested rank)"),
                    format!("{given_r}"),
                ));
            }
            Ok(f.iter().map(rm).collect())
        }
        CpInit::Svd => {
            let mut rng = StdRng::seed_from_u64(0);
            let mut out = Vec::with_capacity(shape.len());
            for (k, &n) in shape.iter().enumerate() {
                let cols = x.len() / n;
                let unf;
                let data: &[f64] = if k == 0 {
                    x
                } else {
                    unf = crate::unfold::unfold(tensor, &[k])?;
                    unf.as_slice().expect("standard layout")
                };
                let svd = left_svd(data, n, cols, &format!("mode-{k} unfolding"))?;
                let mut f = uniform_factor(&mut rng, n, r);
                let keep = r.min(svd.k);
                for i in 0..n {
                    f[i * r..i * r + keep].copy_from_slice(&svd.u[i * svd.k..i * svd.k + keep]);
                }
                out.push(f);
            }
            Ok(out)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn khatri_rao_row_order_matches_c_order_unfolding() {
        // Two factors 2×1 and 3×1: rows (i,j) with i slowest.
        let kr = khatri_rao(&[&[1.0, 2.0], &[1.0, 10.0, 100.0]], &[2, 3], 1);
        assert_eq!(kr, vec![1., 10., 100., 2., 20., 200.]);
    }

    #[test]
    fn mttkrp_matches_explicit_sum() {
        let shape = [2, 3, 4];
        let x: Vec<f64> = (0..24).map(|v| (v as f64 * 0.37).sin()).collect();
        let r = 2;
        let factors: Vec<Vec<f64>> = shape
            .iter()
            .enumerate()
            .map(|(k, &n)| (0..n * r).map(|v| ((v + k) as f64 * 0.91).cos()).collect())
            .collect();
        for k in 0..3 {
            let m = mttkrp(&x, &shape, &factors, r, k);
            for i in 0..shape[k] {
                for c in 0..r {
                    let mut s = 0.0;
                    for a in 0..2 {
                        for b in 0..3 {
                            for e in 0..4 {
                                let idx = [a, b, e];
                                if idx[k] != i {
                                    continue;
                                }
                                let mut w = x[(a * 3 + b) * 4 + e];
                                for j in 0..3 {
                                    if j != k {
                                        w *= factors[j][idx[j] * r + c];
                                    }
                                }
                                s += w;
                            }
                        }
                    }
                    assert!((m[i * r + c] - s).abs() < 1e-12, "mode {k}");
                }
            }
        }
    }

    #[test]
    fn memory_estimate_counts_factors_and_grams_and_never_overflows() {
        // 3 modes of 10, R = 4: 3·4·30 factors + 5·16 Gram entries, 8 bytes each.
        assert_eq!(
            super::cp_als_memory_bytes(&[10, 10, 10], 4),
            Some(8 * (360 + 80))
        );
        assert!(super::cp_als_memory_bytes(&[10, 10, 10], 100_000).unwrap() > 400_000_000_000);
        assert_eq!(
            super::cp_als_memory_bytes(&[usize::MAX, usize::MAX], 2),
            None
        );
    }
}
