//! Tensor trains (Oseledets, "Tensor-train decomposition", SISC 2011): TT-SVD with a guaranteed relative
//! accuracy, rounding, and arithmetic that never forms the full tensor.
//!
//! A TT tensor `A ∈ R^{n_1×…×n_d}` has cores `G_k ∈ R^{r_{k-1}×n_k×r_k}` with `r_0 = r_d = 1` and
//! `A[i_1,…,i_d] = G_1[:,i_1,:]·G_2[:,i_2,:]⋯G_d[:,i_d,:]`. Dense tensors are read in C order (last index
//! fastest).
//!
//! ```
//! use ndarray::{ArrayD, IxDyn};
//! use tensor_decomp::TensorTrain;
//!
//! // sin(x + y + z) on a 10×10×10 grid has TT ranks [1, 2, 2, 1].
//! let a = ArrayD::from_shape_fn(IxDyn(&[10, 10, 10]), |i| {
//!     (0.1 * (i[0] + i[1] + i[2]) as f64).sin()
//! });
//! let tt = TensorTrain::tt_svd(&a, 1e-10, None)?;
//! assert_eq!(tt.ranks(), vec![1, 2, 2, 1]);
//! let err = tensor_decomp::dense::relative_error(a.as_slice().unwrap(), tt.full()?.as_slice().unwrap());
//! assert!(err <= 1e-10);
//! // Arithmetic stays in TT format: A + A has ranks 4, rounding brings them back to 2.
//! let sum = tt.add(&tt)?.round(1e-12, None)?;
//! assert_eq!(sum.ranks(), vec![1, 2, 2, 1]);
//! assert!((sum.norm() - 2.0 * tt.norm()).abs() <= 1e-10 * tt.norm());
//! # Ok::<(), tensor_decomp::TdError>(())
//! ```

use ndarray::{Array3, ArrayD, IxDyn};
use serde::{Deserialize, Serialize};

use crate::dense::{check_finite, checked_numel, norm, validated};
use crate::linalg::{F64_EPS, ImplicitLq, left_svd, matmul, matmul_tn, numerical_rank, tsqr_r};
use crate::{Result, TdError};

/// A tensor in TT format: `d` cores `G_k` of shape `[r_{k-1}, n_k, r_k]`, `r_0 = r_d = 1`.
///
/// Invariants (checked by [`TensorTrain::from_cores`]): at least one core, consecutive ranks agree, the
/// boundary ranks are 1, no dimension is 0, every entry is finite, every core is stored in standard
/// (C) layout.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TensorTrain {
    cores: Vec<Array3<f64>>,
}

/// What TT-SVD or rounding did: the ranks, which bonds the rank cap cut, and the error.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Truncation {
    /// TT ranks including the boundary 1s (length d + 1).
    pub ranks: Vec<usize>,
    /// Bonds `k` (1-based: between modes k and k+1) where `max_rank` cut the rank below what `ε` needed;
    /// when non-empty, `‖A − TT‖ ≤ ε‖A‖` no longer holds and `rel_error` is what was achieved.
    pub capped_bonds: Vec<usize>,
    /// `sqrt(Σ_k ‖discarded σ at bond k‖²) / ‖A‖`. The discarded parts are mutually orthogonal, so this is
    /// `‖A − TT‖_F / ‖A‖_F` (exact up to rounding errors of order 1e-15), computed without the full tensor.
    pub rel_error: f64,
}

/// A core as a row-major buffer during the algorithms.
#[derive(Clone)]
struct Core {
    r0: usize,
    n: usize,
    r1: usize,
    data: Vec<f64>,
}

impl Core {
    fn into_array(self) -> Array3<f64> {
        Array3::from_shape_vec((self.r0, self.n, self.r1), self.data)
            .expect("core buffer length matches its dimensions")
    }
}

fn check_eps(eps: f64) -> Result<()> {
    if !(eps.is_finite() && eps >= 0.0) {
        return Err(TdError::invalid(
            "eps",
            format!("relative accuracy must be a finite number ≥ 0, got {eps}"),
        ));
    }
    Ok(())
}

fn check_max_rank(max_rank: Option<usize>) -> Result<()> {
    if max_rank == Some(0) {
        return Err(TdError::invalid(
            "max_rank",
            "must be at least 1 (or none for no cap)",
        ));
    }
    Ok(())
}

/// The rank kept at one bond: the smallest `r ≥ 1` with `sqrt(σ_{r+1}² + …) ≤ δ` (a tail equal to `δ`
/// keeps the smaller rank), never more than the numerical rank (numpy's tolerance, so `ε = 0` gives the
/// exact rank and not noise directions), then capped at `max_rank`. Returns `(rank, capped, Σ discarded σ²)`.
fn choose_rank(
    s: &[f64],
    delta: f64,
    rows: usize,
    cols: usize,
    max_rank: Option<usize>,
) -> (usize, bool, f64) {
    let len = s.len();
    let mut acc = 0.0;
    let mut r_eps = len;
    for j in (1..len).rev() {
        acc += s[j] * s[j];
        if acc.sqrt() <= delta {
            r_eps = j;
        } else {
            break;
        }
    }
    let numerical = numerical_rank(s, rows, cols, F64_EPS).max(1);
    let mut r = r_eps.min(numerical).max(1);
    let mut capped = false;
    if let Some(cap) = max_rank
        && r > cap
    {
        r = cap;
        capped = true;
    }
    let discarded: f64 = s[r.min(len)..].iter().map(|x| x * x).sum();
    (r, capped, discarded)
}

/// First `r` columns of a row-major `m × k` matrix.
fn first_columns(u: &[f64], m: usize, k: usize, r: usize) -> Vec<f64> {
    if r == k {
        return u.to_vec();
    }
    let mut out = Vec::with_capacity(m * r);
    for i in 0..m {
        out.extend_from_slice(&u[i * k..i * k + r]);
    }
    out
}

/// Right-to-left orthogonalisation with per-core normalisation: `G_k = L_k·Q_k` (LQ of
/// `G_k ×₃ L_{k+1}` reshaped `r_{k-1} × n_k r_k`). Afterwards cores 2…d are the orthonormal `Q_k`, kept
/// implicitly (returned Householder factorisations; their `data` is left empty and only their new left
/// rank is set), core 1 holds `G_1 ×₃ L_2` with unit Frobenius norm, and the cores represent `A/‖A‖`.
/// Returns `ln ‖A‖` (`-∞` for the zero tensor) and the factorisations (index k for core k ≥ 1).
///
/// Normalising each core as it absorbs the `L` factor keeps long trains (d ≈ 400 and beyond) free of
/// overflow and underflow, the failure behind ttpy's loss of rank control for d > 370.
fn right_orthogonalize(cores: &mut [Core]) -> (f64, Vec<Option<ImplicitLq>>) {
    let d = cores.len();
    let mut factors: Vec<Option<ImplicitLq>> = (0..d).map(|_| None).collect();
    let mut log_scale = 0.0;
    for k in (1..d).rev() {
        let Core { r0, n, r1, .. } = cores[k];
        let lq = ImplicitLq::new(&cores[k].data, r0, n * r1);
        let kk = lq.k;
        let prev = &cores[k - 1];
        let mut next = matmul(&prev.data, &lq.l, prev.r0 * prev.n, r0, kk);
        cores[k] = Core {
            r0: kk,
            n,
            r1,
            data: Vec::new(),
        };
        factors[k] = Some(lq);
        let nrm = norm(&next);
        if nrm == 0.0 {
            return (f64::NEG_INFINITY, factors);
        }
        next.iter_mut().for_each(|x| *x /= nrm);
        log_scale += nrm.ln();
        let prev = &cores[k - 1];
        cores[k - 1] = Core {
            r0: prev.r0,
            n: prev.n,
            r1: kk,
            data: next,
        };
    }
    let nrm = norm(&cores[0].data);
    if nrm == 0.0 {
        return (f64::NEG_INFINITY, factors);
    }
    cores[0].data.iter_mut().for_each(|x| *x /= nrm);
    (log_scale + nrm.ln(), factors)
}

/// Multiplies the tensor the cores represent by `exp(log_scale)`: on the last core when that factor is
/// a normal f64, else spread evenly over all cores (`exp(log_scale / d)` each) so nothing overflows.
fn apply_log_scale(cores: &mut [Core], log_scale: f64) {
    let factor = log_scale.exp();
    if factor.is_normal() {
        if let Some(last) = cores.last_mut() {
            last.data.iter_mut().for_each(|x| *x *= factor);
        }
    } else {
        let per_core = (log_scale / cores.len() as f64).exp();
        for c in cores.iter_mut() {
            c.data.iter_mut().for_each(|x| *x *= per_core);
        }
    }
}

impl TensorTrain {
    /// Builds a TT from its cores, checking the invariants listed on [`TensorTrain`].
    pub fn from_cores(cores: Vec<Array3<f64>>) -> Result<Self> {
        if cores.is_empty() {
            return Err(TdError::invalid(
                "cores",
                "a tensor train needs at least one core",
            ));
        }
        let d = cores.len();
        for (k, c) in cores.iter().enumerate() {
            let (r0, n, r1) = c.dim();
            if r0 == 0 || n == 0 || r1 == 0 {
                return Err(TdError::invalid(
                    "cores",
                    format!("core {k} has shape [{r0}, {n}, {r1}]; no dimension may be 0"),
                ));
            }
            if k == 0 && r0 != 1 {
                return Err(TdError::shape(
                    "first TT core",
                    "left rank r_0 = 1",
                    format!("r_0 = {r0}"),
                ));
            }
            if k == d - 1 && r1 != 1 {
                return Err(TdError::shape(
                    "last TT core",
                    "right rank r_d = 1",
                    format!("r_d = {r1}"),
                ));
            }
            if k > 0 {
                let prev = cores[k - 1].dim().2;
                if prev != r0 {
                    return Err(TdError::shape(
                        format!("TT cores {} and {}", k - 1, k),
                        format!(
                            "left rank of core {k} = right rank of core {} = {prev}",
                            k - 1
                        ),
                        format!("{r0}"),
                    ));
                }
            }
            if let Some(i) = c.iter().position(|x| !x.is_finite()) {
                return Err(TdError::NonFinite {
                    name: format!("TT core {k}"),
                    index: i,
                    value: c.iter().nth(i).copied().unwrap_or(f64::NAN),
                });
            }
        }
        let cores = cores
            .into_iter()
            .map(|c| {
                if c.is_standard_layout() {
                    c
                } else {
                    c.as_standard_layout().into_owned()
                }
            })
            .collect();
        Ok(Self { cores })
    }

    fn from_bufs(cores: Vec<Core>) -> Self {
        Self {
            cores: cores.into_iter().map(Core::into_array).collect(),
        }
    }

    fn bufs(&self) -> Vec<Core> {
        self.cores
            .iter()
            .map(|c| {
                let (r0, n, r1) = c.dim();
                Core {
                    r0,
                    n,
                    r1,
                    data: self::slice(c).to_vec(),
                }
            })
            .collect()
    }

    /// `tt` with a report of an exact (untruncated) result.
    fn exact(tt: Self) -> Result<(Self, Truncation)> {
        let ranks = tt.ranks();
        Ok((
            tt,
            Truncation {
                ranks,
                capped_bonds: Vec::new(),
                rel_error: 0.0,
            },
        ))
    }

    /// The TT of `cores` with the report of its truncation (`discarded` = Σ discarded σ², relative).
    fn with_report(
        cores: Vec<Core>,
        capped_bonds: Vec<usize>,
        discarded: f64,
    ) -> (Self, Truncation) {
        let tt = Self::from_bufs(cores);
        let ranks = tt.ranks();
        (
            tt,
            Truncation {
                ranks,
                capped_bonds,
                rel_error: discarded.sqrt(),
            },
        )
    }

    /// The zero tensor of `shape` (all ranks 1, zero cores).
    pub fn zeros(shape: &[usize]) -> Result<Self> {
        crate::dense::check_shape(shape, 1, "shape")?;
        Ok(Self {
            cores: shape.iter().map(|&n| Array3::zeros((1, n, 1))).collect(),
        })
    }

    /// The cores `G_1 … G_d`.
    pub fn cores(&self) -> &[Array3<f64>] {
        &self.cores
    }

    /// The cores, by value.
    pub fn into_cores(self) -> Vec<Array3<f64>> {
        self.cores
    }

    /// Number of modes `d`.
    pub fn ndim(&self) -> usize {
        self.cores.len()
    }

    /// Mode sizes `[n_1, …, n_d]`.
    pub fn shape(&self) -> Vec<usize> {
        self.cores.iter().map(|c| c.dim().1).collect()
    }

    /// TT ranks `[r_0 = 1, r_1, …, r_{d-1}, r_d = 1]`.
    pub fn ranks(&self) -> Vec<usize> {
        let mut r = vec![1];
        r.extend(self.cores.iter().map(|c| c.dim().2));
        r
    }

    /// Number of stored numbers, `Σ_k r_{k-1} n_k r_k`.
    pub fn num_params(&self) -> usize {
        self.cores.iter().map(|c| c.len()).sum()
    }

    /// TT-SVD (Oseledets 2011, Algorithm 1) with relative accuracy `eps` and an optional rank cap.
    ///
    /// With `δ = ε/√(d−1)·‖A‖_F`, each bond keeps the smallest rank whose discarded singular values have
    /// norm `≤ δ`, so `‖A − TT‖_F ≤ ε‖A‖_F` whenever no cap was hit. `ε = 0` gives the exact ranks (singular
    /// values below numpy's rank tolerance `σ_max·max(m,n)·2.2e-16` count as zero). Each step is a true SVD
    /// (QR of the long side, then SVD of the small factor), never an eigen-decomposition of `C Cᵀ`.
    /// Errors: `eps < 0` or NaN, `max_rank = Some(0)`, a mode of size 0, NaN/∞ entries.
    pub fn tt_svd(tensor: &ArrayD<f64>, eps: f64, max_rank: Option<usize>) -> Result<Self> {
        Ok(Self::tt_svd_report(tensor, eps, max_rank)?.0)
    }

    /// [`TensorTrain::tt_svd`], also returning what was truncated (see [`Truncation`]).
    pub fn tt_svd_report(
        tensor: &ArrayD<f64>,
        eps: f64,
        max_rank: Option<usize>,
    ) -> Result<(Self, Truncation)> {
        check_eps(eps)?;
        check_max_rank(max_rank)?;
        let (data, nrm) = validated(tensor, 1, "tensor")?;
        let shape = tensor.shape().to_vec();
        let d = shape.len();
        if nrm == 0.0 {
            return Self::exact(Self::zeros(&shape)?);
        }
        if d == 1 {
            let core = Array3::from_shape_vec((1, shape[0], 1), data.into_owned())
                .expect("length matches");
            return Self::exact(Self { cores: vec![core] });
        }
        // Work on A/‖A‖ from the second step on; δ is relative to that unit norm.
        let delta = eps / ((d - 1) as f64).sqrt();
        let mut cores = Vec::with_capacity(d);
        let mut capped_bonds = Vec::new();
        let mut discarded = 0.0;
        let mut r_prev = 1;
        let mut cols = data.len();
        let mut current: Vec<f64> = Vec::new();
        for (k, &n) in shape.iter().enumerate().take(d - 1) {
            let c: &[f64] = if k == 0 { &data } else { &current };
            let rows = r_prev * n;
            cols /= n;
            let scale = if k == 0 { nrm } else { 1.0 };
            let svd = left_svd(c, rows, cols, &format!("unfolding {}", k + 1))?;
            let (r, capped, disc) = choose_rank(&svd.s, delta * scale, rows, cols, max_rank);
            if capped {
                capped_bonds.push(k + 1);
            }
            discarded += disc / (scale * scale);
            let u = first_columns(&svd.u, rows, svd.k, r);
            let mut next = matmul_tn(&u, c, rows, r, cols);
            if k == 0 {
                next.iter_mut().for_each(|x| *x /= nrm);
            }
            cores.push(Core {
                r0: r_prev,
                n,
                r1: r,
                data: u,
            });
            current = next;
            r_prev = r;
        }
        current.iter_mut().for_each(|x| *x *= nrm);
        cores.push(Core {
            r0: r_prev,
            n: shape[d - 1],
            r1: 1,
            data: current,
        });
        Ok(Self::with_report(cores, capped_bonds, discarded))
    }

    /// TT rounding (Oseledets 2011, Algorithm 2): right-to-left orthogonalisation (LQ), then
    /// left-to-right truncated SVDs with `δ = ε/√(d−1)·‖A‖`, so that `‖A − round(A)‖ ≤ ε‖A‖` when no cap
    /// was hit. Rounding a non-orthogonal TT (e.g. a sum from [`TensorTrain::add`]) is exactly what the
    /// orthogonalisation is for. Cores are normalised on the way, so trains of any length keep their
    /// rank control (see [`TensorTrain::log_norm`]).
    pub fn round(&self, eps: f64, max_rank: Option<usize>) -> Result<Self> {
        Ok(self.round_report(eps, max_rank)?.0)
    }

    /// [`TensorTrain::round`], also returning what was truncated.
    pub fn round_report(&self, eps: f64, max_rank: Option<usize>) -> Result<(Self, Truncation)> {
        check_eps(eps)?;
        check_max_rank(max_rank)?;
        let d = self.ndim();
        let mut cores = self.bufs();
        let (log_norm, factors) = right_orthogonalize(&mut cores);
        if log_norm == f64::NEG_INFINITY {
            return Self::exact(Self::zeros(&self.shape())?);
        }
        let delta = if d > 1 {
            eps / ((d - 1) as f64).sqrt()
        } else {
            0.0
        };
        let mut capped_bonds = Vec::new();
        let mut discarded = 0.0;
        for k in 0..d.saturating_sub(1) {
            let Core { r0, n, r1, .. } = cores[k];
            let rows = r0 * n;
            let svd = left_svd(&cores[k].data, rows, r1, &format!("TT core {}", k + 1))?;
            let (r, capped, disc) = choose_rank(&svd.s, delta, rows, r1, max_rank);
            if capped {
                capped_bonds.push(k + 1);
            }
            discarded += disc;
            let u = first_columns(&svd.u, rows, svd.k, r);
            let svt = matmul_tn(&u, &cores[k].data, rows, r, r1);
            cores[k] = Core {
                r0,
                n,
                r1: r,
                data: u,
            };
            let next = &cores[k + 1];
            // G_{k+1} ← (Σ Vᵀ)_r · Q_{k+1}, with Q_{k+1} applied from its Householder factors.
            let data = factors[k + 1]
                .as_ref()
                .expect("every core after the first was factorised")
                .left_mul_q(&svt, r);
            cores[k + 1] = Core {
                r0: r,
                n: next.n,
                r1: next.r1,
                data,
            };
        }
        apply_log_scale(&mut cores, log_norm);
        Ok(Self::with_report(cores, capped_bonds, discarded))
    }

    /// The full tensor, by sequential contraction: `(n_1⋯n_k × r_k)·(r_k × n_{k+1} r_{k+1})` GEMMs, cost
    /// `O(N r²)` for `N` entries. Errors when the tensor has more entries than fit in memory.
    pub fn full(&self) -> Result<ArrayD<f64>> {
        let shape = self.shape();
        checked_numel(&shape, "TT tensor")?;
        let mut acc = slice(&self.cores[0]).to_vec();
        let mut rows = shape[0];
        for c in &self.cores[1..] {
            let (r0, n, r1) = c.dim();
            acc = matmul(&acc, slice(c), rows, r0, n * r1);
            rows *= n;
        }
        Ok(ArrayD::from_shape_vec(IxDyn(&shape), acc).expect("length matches shape"))
    }

    /// The entry `A[i_1, …, i_d]` as a product of core slices, `O(d r²)`.
    pub fn element(&self, index: &[usize]) -> Result<f64> {
        let shape = self.shape();
        if index.len() != shape.len() || index.iter().zip(&shape).any(|(&i, &n)| i >= n) {
            return Err(TdError::invalid(
                "index",
                format!("{index:?} is not a valid index of a tensor of shape {shape:?}"),
            ));
        }
        let mut v = vec![1.0];
        for (c, &i) in self.cores.iter().zip(index) {
            let (r0, _, r1) = c.dim();
            let mut next = vec![0.0; r1];
            for (a, &va) in v.iter().enumerate().take(r0) {
                for (b, nb) in next.iter_mut().enumerate() {
                    *nb += va * c[[a, i, b]];
                }
            }
            v = next;
        }
        Ok(v[0])
    }

    fn check_same_shape(&self, other: &Self, op: &str) -> Result<()> {
        if self.shape() != other.shape() {
            return Err(TdError::shape(
                format!("TT {op}"),
                format!("{:?}", self.shape()),
                format!("{:?}", other.shape()),
            ));
        }
        Ok(())
    }

    /// `A + B` in TT format: first cores concatenated along the right rank, last along the left rank,
    /// middle cores block-diagonal. Ranks add (boundary ranks stay 1); round afterwards.
    pub fn add(&self, other: &Self) -> Result<Self> {
        self.check_same_shape(other, "add")?;
        let d = self.ndim();
        if d == 1 {
            return Ok(Self {
                cores: vec![&self.cores[0] + &other.cores[0]],
            });
        }
        let mut cores = Vec::with_capacity(d);
        for (k, (a, b)) in self.cores.iter().zip(&other.cores).enumerate() {
            let (ra0, n, ra1) = a.dim();
            let (rb0, _, rb1) = b.dim();
            let (r0, r1) = match k {
                0 => (1, ra1 + rb1),
                _ if k == d - 1 => (ra0 + rb0, 1),
                _ => (ra0 + rb0, ra1 + rb1),
            };
            // B's block starts at row `ob0`, column `ob1` of every slice; A's at (0, 0).
            let (ob0, ob1) = match k {
                0 => (0, ra1),
                _ if k == d - 1 => (ra0, 0),
                _ => (ra0, ra1),
            };
            let mut out = vec![0.0; r0 * n * r1];
            let mut place = |src: &[f64], rows: usize, cols: usize, row0: usize, col0: usize| {
                for x in 0..rows {
                    for i in 0..n {
                        let from = &src[(x * n + i) * cols..(x * n + i + 1) * cols];
                        let at = ((row0 + x) * n + i) * r1 + col0;
                        out[at..at + cols].copy_from_slice(from);
                    }
                }
            };
            place(slice(a), ra0, ra1, 0, 0);
            place(slice(b), rb0, rb1, ob0, ob1);
            cores.push(Array3::from_shape_vec((r0, n, r1), out).expect("length matches"));
        }
        Ok(Self { cores })
    }

    /// Element-wise (Hadamard) product `A ∘ B`: slice-wise Kronecker products
    /// `G_k[i] = G^A_k[i] ⊗ G^B_k[i]`; ranks multiply. Cost `O(d n r_A² r_B²)`.
    pub fn hadamard(&self, other: &Self) -> Result<Self> {
        self.check_same_shape(other, "hadamard")?;
        let cores = self
            .cores
            .iter()
            .zip(&other.cores)
            .map(|(a, b)| {
                let (ra0, n, ra1) = a.dim();
                let (rb0, _, rb1) = b.dim();
                let (sa, sb) = (slice(a), slice(b));
                let (r0, r1) = (ra0 * rb0, ra1 * rb1);
                let mut out = vec![0.0; r0 * n * r1];
                for (row, chunk) in out.chunks_exact_mut(n * r1).enumerate() {
                    let (x, y) = (row / rb0, row % rb0);
                    for i in 0..n {
                        let arow = &sa[(x * n + i) * ra1..(x * n + i + 1) * ra1];
                        let brow = &sb[(y * n + i) * rb1..(y * n + i + 1) * rb1];
                        let dst = &mut chunk[i * r1..(i + 1) * r1];
                        for (va, d) in arow.iter().zip(dst.chunks_exact_mut(rb1)) {
                            d.iter_mut().zip(brow).for_each(|(o, vb)| *o = va * vb);
                        }
                    }
                }
                Array3::from_shape_vec((r0, n, r1), out).expect("length matches")
            })
            .collect();
        Ok(Self { cores })
    }

    /// `c·A` (multiplies the first core); `c` must be finite.
    pub fn scale(&self, c: f64) -> Result<Self> {
        if !c.is_finite() {
            return Err(TdError::invalid(
                "scale factor",
                format!("must be finite, got {c}"),
            ));
        }
        let mut out = self.clone();
        out.cores[0].mapv_inplace(|x| x * c);
        Ok(out)
    }

    /// Inner product `⟨A, B⟩ = Σ A[i]·B[i]` by the recursion `Φ_0 = [1]`,
    /// `Φ_k = Σ_i G^A_k[i]ᵀ Φ_{k−1} G^B_k[i]` (two GEMMs per core), cost `O(d n r³)`.
    pub fn dot(&self, other: &Self) -> Result<f64> {
        self.check_same_shape(other, "dot")?;
        let mut phi = vec![1.0];
        for (a, b) in self.cores.iter().zip(&other.cores) {
            let (ra0, n, ra1) = a.dim();
            let (rb0, _, rb1) = b.dim();
            let w = matmul(&phi, slice(b), ra0, rb0, n * rb1);
            phi = matmul_tn(slice(a), &w, ra0 * n, ra1, rb1);
        }
        Ok(phi[0])
    }

    /// `ln ‖A‖_F`, computed by orthogonalisation with per-core normalisation, so it is finite and accurate
    /// even when `‖A‖` itself over- or underflows f64 (long trains); `-∞` for the zero tensor.
    pub fn log_norm(&self) -> f64 {
        // Right-to-left: only the triangular factors are needed. With `L_{d+1} = [1]`,
        // `M_k = G_k ×₃ L_{k+1}` and `M_k = L_k·Q_k` (LQ, `L_k` from the `R` of a QR of `M_kᵀ`);
        // `‖A‖ = ‖M_1‖_F` because every `Q_k` has orthonormal rows. `L_k` is normalised as it goes.
        let mut l = vec![1.0];
        let mut l_cols = 1;
        let mut log_scale = 0.0;
        for c in self.cores[1..].iter().rev() {
            let (r0, n, r1) = c.dim();
            let m = matmul(slice(c), &l, r0 * n, r1, l_cols);
            let r = tsqr_r(faer::MatRef::from_column_major_slice(&m, n * l_cols, r0));
            let kk = r.nrows();
            // L = Rᵀ (r0 × kk), row-major.
            let mut next = vec![0.0; r0 * kk];
            for i in 0..kk {
                for j in i..r0 {
                    next[j * kk + i] = r[(i, j)];
                }
            }
            let nrm = norm(&next);
            if nrm == 0.0 {
                return f64::NEG_INFINITY;
            }
            next.iter_mut().for_each(|x| *x /= nrm);
            log_scale += nrm.ln();
            l = next;
            l_cols = kk;
        }
        let (r0, n, r1) = self.cores[0].dim();
        let nrm = norm(&matmul(slice(&self.cores[0]), &l, r0 * n, r1, l_cols));
        if nrm == 0.0 {
            f64::NEG_INFINITY
        } else {
            log_scale + nrm.ln()
        }
    }

    /// `‖A‖_F` via orthogonalisation (accurate; `√dot(A, A)` loses half the digits near 0).
    pub fn norm(&self) -> f64 {
        self.log_norm().exp()
    }

    /// `‖A − B‖_F` as the orthogonalising norm of `A + (−1)·B`: no cancellation when `A ≈ B`, unlike
    /// `√(⟨A,A⟩ − 2⟨A,B⟩ + ⟨B,B⟩)`.
    pub fn distance(&self, other: &Self) -> Result<f64> {
        Ok(self.add(&other.scale(-1.0)?)?.norm())
    }

    /// Checks every entry is finite (used on results of long computations).
    pub fn check_finite(&self) -> Result<()> {
        for (k, c) in self.cores.iter().enumerate() {
            check_finite(slice(c), &format!("TT core {k}"))?;
        }
        Ok(())
    }
}

/// A core's entries in C order (cores are kept in standard layout).
fn slice(c: &Array3<f64>) -> &[f64] {
    c.as_slice()
        .expect("TT cores are stored in standard layout")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn choose_rank_rules() {
        let s = [4.0, 3.0, 1e-3, 1e-4];
        // δ between the tails: keep 2.
        assert_eq!(choose_rank(&s, 0.01, 4, 4, None).0, 2);
        // tail exactly δ: keeps the smaller rank.
        let tail = (1e-3f64 * 1e-3 + 1e-4 * 1e-4).sqrt();
        assert_eq!(choose_rank(&s, tail, 4, 4, None).0, 2);
        // δ = 0 keeps all numerically nonzero values, but not round-off.
        assert_eq!(choose_rank(&[1.0, 0.5, 1e-17], 0.0, 4, 4, None).0, 2);
        let (r, capped, disc) = choose_rank(&s, 0.0, 4, 4, Some(1));
        assert_eq!((r, capped), (1, true));
        assert!((disc - (9.0 + 1e-6 + 1e-8)).abs() < 1e-12);
    }

    #[test]
    fn element_full_and_bad_cores() {
        // A[i,j] = (i+1)(j+1): rank 1.
        let g1 = Array3::from_shape_vec((1, 2, 1), vec![1.0, 2.0]).unwrap();
        let g2 = Array3::from_shape_vec((1, 3, 1), vec![1.0, 2.0, 3.0]).unwrap();
        let tt = TensorTrain::from_cores(vec![g1.clone(), g2]).unwrap();
        assert_eq!(tt.element(&[1, 2]).unwrap(), 6.0);
        let full = tt.full().unwrap();
        assert_eq!(full.as_slice().unwrap(), &[1., 2., 3., 2., 4., 6.]);
        assert!(tt.element(&[2, 0]).is_err());
        let bad = Array3::from_shape_vec((2, 3, 1), vec![0.0; 6]).unwrap();
        let err = TensorTrain::from_cores(vec![g1, bad])
            .unwrap_err()
            .to_string();
        assert!(err.contains("rank"), "{err}");
    }
}
