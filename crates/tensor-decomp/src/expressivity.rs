//! Expressive power of recurrent (TT) versus shallow (CP) networks (Khrulkov, Novikov, Oseledets,
//! ICLR 2018): the CP rank of a TT tensor is bounded below by the rank of its **odd/even**
//! matricization (rows `i_1, i_3, …`; columns `i_2, i_4, …`; modes 0, 2, 4, … vs 1, 3, 5, … here).
//!
//! Theorem 1: for even `d` and TT ranks `r`, mode size `n`, `q = min(n, r)`, almost every TT tensor has
//! `rank_CP ≥ q^{d/2}`. The proof exhibits one TT of rank ≤ r whose odd/even matricization has rank
//! exactly `q^{d/2}` ([`delta_pairs_tt`]); the minor that is nonzero there is a polynomial in the cores,
//! hence nonzero almost everywhere. The **balanced** split (first d/2 modes vs the rest) gives only the
//! middle TT rank `min(r, n^{d/2})`: no exponential bound.
//!
//! ```
//! use tensor_decomp::expressivity::{cp_rank_lower_bound, delta_pairs_tt, random_tt, theorem_bound};
//!
//! let tt = random_tt(6, 3, 2, false, 0)?;
//! // Observed closed form n^{d/2-1}·min(n, r) = 9·2 = 18, above the theorem's q^{d/2} = 8.
//! assert_eq!(cp_rank_lower_bound(&tt)?, 18);
//! assert_eq!(theorem_bound(6, 3, 2)?, 8);
//! assert_eq!(cp_rank_lower_bound(&delta_pairs_tt(6, 3, 2)?)?, 8);
//! # Ok::<(), tensor_decomp::TdError>(())
//! ```

use ndarray::{Array3, ArrayD};
use rand::SeedableRng;
use rand::rngs::StdRng;
use rand_distr::{Distribution, StandardNormal};
use serde::{Deserialize, Serialize};

use crate::dense::norm;
use crate::tt::TensorTrain;
use crate::unfold::{RankInfo, rank_info, unfold};
use crate::{Result, TdError};

/// Largest full tensor the rank functions will form (2^26 entries, 512 MiB).
pub const MAX_FULL_ENTRIES: usize = 1 << 26;

fn check_dnr(d: usize, n: usize, r: usize) -> Result<()> {
    if d < 2 {
        return Err(TdError::invalid(
            "d",
            format!("need at least 2 modes, got {d}"),
        ));
    }
    if n == 0 {
        return Err(TdError::invalid("n", "mode size must be at least 1"));
    }
    if r == 0 {
        return Err(TdError::invalid("r", "TT rank must be at least 1"));
    }
    Ok(())
}

/// A random TT tensor with `d` modes of size `n` and all inner ranks `r` (`[1, r, …, r, 1]`), cores with
/// independent N(0, 1) entries from `seed`. With `shared_cores`, the middle cores `G_2 = … = G_{d-1}` are
/// one and the same draw (an RNN with shared weights); first and last cores are drawn separately.
pub fn random_tt(
    d: usize,
    n: usize,
    r: usize,
    shared_cores: bool,
    seed: u64,
) -> Result<TensorTrain> {
    check_dnr(d, n, r)?;
    let mut rng = StdRng::seed_from_u64(seed);
    let mut draw = |r0: usize, r1: usize| -> Array3<f64> {
        Array3::from_shape_simple_fn((r0, n, r1), || StandardNormal.sample(&mut rng))
    };
    let first = draw(1, r);
    let mut cores = vec![first];
    if shared_cores {
        let mid = draw(r, r);
        for _ in 1..d - 1 {
            cores.push(mid.clone());
        }
    } else {
        for _ in 1..d - 1 {
            cores.push(draw(r, r));
        }
    }
    cores.push(draw(r, 1));
    TensorTrain::from_cores(cores)
}

/// The modes of the odd/even split's rows: `i_1, i_3, …` (0-based 0, 2, 4, …).
pub fn odd_modes(d: usize) -> Vec<usize> {
    (0..d).step_by(2).collect()
}

/// The modes of the balanced split's rows: the first `⌊d/2⌋`.
pub fn balanced_modes(d: usize) -> Vec<usize> {
    (0..d / 2).collect()
}

fn full_normalised(tt: &TensorTrain) -> Result<ArrayD<f64>> {
    let numel: usize = tt.shape().iter().product();
    if numel > MAX_FULL_ENTRIES {
        return Err(TdError::invalid(
            "tt",
            format!(
                "the full tensor of shape {:?} has {numel} entries, above the limit {MAX_FULL_ENTRIES} for rank computations",
                tt.shape()
            ),
        ));
    }
    let mut a = tt.full()?;
    let nrm = norm(a.as_slice().expect("standard layout"));
    if nrm > 0.0 {
        a.mapv_inplace(|x| x / nrm);
    }
    Ok(a)
}

/// Rank (numpy tolerance, f64) of the matricization of `tt` with rows over `row_modes`; the tensor is
/// normalised before the SVD.
pub fn matricization_rank(tt: &TensorTrain, row_modes: &[usize]) -> Result<RankInfo> {
    let a = full_normalised(tt)?;
    rank_info(&unfold(&a, row_modes)?, f64::EPSILON)
}

/// `rank_CP(A) ≥` rank of the odd/even matricization (rows `i_1, i_3, …`, columns `i_2, i_4, …`).
pub fn cp_rank_lower_bound(tt: &TensorTrain) -> Result<usize> {
    Ok(matricization_rank(tt, &odd_modes(tt.ndim()))?.rank)
}

/// Rank of the balanced matricization (first `⌊d/2⌋` modes vs the rest) = the middle TT rank of a
/// generic TT: no exponential CP bound.
pub fn balanced_rank(tt: &TensorTrain) -> Result<usize> {
    Ok(matricization_rank(tt, &balanced_modes(tt.ndim()))?.rank)
}

/// [`check_dnr`] plus an even number of modes (Theorem 1 and its construction need one).
fn check_even_dnr(d: usize, n: usize, r: usize) -> Result<()> {
    check_dnr(d, n, r)?;
    if !d.is_multiple_of(2) {
        return Err(TdError::invalid(
            "d",
            format!("Theorem 1 needs an even number of modes, got {d}"),
        ));
    }
    Ok(())
}

fn checked_pow(base: usize, exp: usize) -> Result<usize> {
    base.checked_pow(exp as u32)
        .ok_or_else(|| TdError::invalid("d", format!("{base}^{exp} overflows")))
}

/// Theorem 1's bound `q^{d/2}`, `q = min(n, r)`; `d` must be even.
pub fn theorem_bound(d: usize, n: usize, r: usize) -> Result<usize> {
    check_even_dnr(d, n, r)?;
    checked_pow(n.min(r), d / 2)
}

/// The odd/even rank observed for generic TT tensors with ranks `[1, r, …, r, 1]` (spec §4):
/// `n^{d/2−1}·min(n, r)` — equal to `q^{d/2}` when `n ≤ r`, larger when `n > r`.
pub fn observed_odd_even_rank(d: usize, n: usize, r: usize) -> Result<usize> {
    check_even_dnr(d, n, r)?;
    Ok(checked_pow(n, d / 2 - 1)? * n.min(r))
}

/// The construction from the proof of Theorem 1: `A = Π_{j=1}^{d/2} δ(i_{2j−1}, i_{2j})` with every index
/// restricted to `{0, …, q−1}` (entries with an index ≥ q are 0), as an exact TT with ranks
/// `[1, q, 1, q, 1, …, q, 1]`. Its odd/even matricization is a permuted identity of size `q^{d/2}`
/// (plus zero rows and columns), so its rank is exactly `q^{d/2}`. Needs even `d ≥ 2` and `1 ≤ q ≤ n`.
pub fn delta_pairs_tt(d: usize, n: usize, q: usize) -> Result<TensorTrain> {
    check_even_dnr(d, n, q)?;
    if q > n {
        return Err(TdError::invalid(
            "q",
            format!("must be ≤ the mode size n = {n}, got {q}"),
        ));
    }
    let mut cores = Vec::with_capacity(d);
    for _ in 0..d / 2 {
        cores.push(Array3::from_shape_fn((1, n, q), |(_, i, a)| {
            if i == a { 1.0 } else { 0.0 }
        }));
        cores.push(Array3::from_shape_fn((q, n, 1), |(a, i, _)| {
            if i == a { 1.0 } else { 0.0 }
        }));
    }
    TensorTrain::from_cores(cores)
}

/// One row of the matricization table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MatricizationRow {
    pub d: usize,
    pub n: usize,
    pub r: usize,
    /// Whether the middle cores are shared (`G_2 = … = G_{d-1}`).
    pub shared_cores: bool,
    /// Rank of the odd/even matricization of a random TT (the CP-rank lower bound).
    pub odd_even_rank: usize,
    /// Rank of the balanced matricization.
    pub balanced_rank: usize,
    /// Theorem 1's `q^{d/2}`.
    pub theorem_bound: usize,
    /// `n^{d/2−1}·min(n, r)`, the closed form observed in the spec.
    pub predicted_odd_even: usize,
    /// Odd/even rank of [`delta_pairs_tt`]`(d, n, q)`, which the proof says is exactly `q^{d/2}`.
    pub construction_rank: usize,
    /// Smallest kept singular value / largest, in the odd/even matricization.
    pub smallest_kept_rel: f64,
    /// Largest dropped singular value / largest (0 when full rank).
    pub largest_dropped_rel: f64,
}

/// The table over every `d ∈ ds` (even), `n ∈ ns`, `r ∈ rs`, with independent and with shared cores;
/// case `i` (in that loop order, independent before shared) uses seed `seed + i`.
pub fn matricization_table(
    ds: &[usize],
    ns: &[usize],
    rs: &[usize],
    seed: u64,
) -> Result<Vec<MatricizationRow>> {
    let mut rows = Vec::new();
    let mut case = 0u64;
    for &d in ds {
        for &n in ns {
            for &r in rs {
                for shared in [false, true] {
                    let tt = random_tt(d, n, r, shared, seed.wrapping_add(case))?;
                    case += 1;
                    let odd = matricization_rank(&tt, &odd_modes(d))?;
                    let q = n.min(r);
                    rows.push(MatricizationRow {
                        d,
                        n,
                        r,
                        shared_cores: shared,
                        odd_even_rank: odd.rank,
                        balanced_rank: balanced_rank(&tt)?,
                        theorem_bound: theorem_bound(d, n, r)?,
                        predicted_odd_even: observed_odd_even_rank(d, n, r)?,
                        construction_rank: cp_rank_lower_bound(&delta_pairs_tt(d, n, q)?)?,
                        smallest_kept_rel: odd.smallest_kept_rel,
                        largest_dropped_rel: odd.largest_dropped_rel,
                    });
                }
            }
        }
    }
    Ok(rows)
}
