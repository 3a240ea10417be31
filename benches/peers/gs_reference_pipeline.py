"""The Geometry Score pipeline of the reference code (github.com/KhrulkovV/geometry-score), re-implemented
on the same library calls: scipy `cdist` (plain Euclidean), per-witness `argsort`, gudhi's
`WitnessComplex(...).create_simplex_tree(max_alpha_square=alpha_max, limit_dimension=2)`, persistence over
Z/2, H1 intervals, and the relative-living-times formula. The reference package itself is not on PyPI (the
PyPI name `gs` is an unrelated Google Storage client), so this module stands in for it; it is used by
benches/peers/gan_eval.py and by crates/gan-eval/scripts/make_gs_reference.py.
"""
import numpy as np
from scipy.spatial.distance import cdist
import gudhi


def h1_intervals(X, landmark_idx, gamma):
    """H1 intervals (death may be inf), alpha_max and the simplex tree of one draw with given landmarks."""
    A = cdist(X, X[landmark_idx])
    alpha_max = A.max() * gamma
    order = np.argsort(A)
    table = np.dstack([order, A[np.arange(A.shape[0])[:, None], order]])
    st = gudhi.WitnessComplex(table).create_simplex_tree(
        max_alpha_square=alpha_max, limit_dimension=2)
    st.persistence(homology_coeff_field=2)
    return st.persistence_intervals_in_dimension(1), alpha_max, st


def rlt_of_intervals(intervals, alpha_max, i_max):
    """Fraction of [0, alpha_max] with exactly i intervals alive (half-open), i < i_max."""
    bars = [[b, alpha_max if np.isinf(d) else d] for b, d in intervals]
    out = np.zeros(i_max)
    if not bars:
        out[0] = 1.0
        return out
    cuts = np.unique(np.array(bars + [[0.0, alpha_max]]).ravel())
    for lo, hi in zip(cuts[:-1], cuts[1:]):
        mid = 0.5 * (lo + hi)
        k = sum(1 for b, d in bars if b <= mid < d)
        if k < i_max:
            out[k] += hi - lo
    return out / alpha_max


def rlt(X, L0=64, gamma=None, i_max=100, rng=np.random):
    """One draw with L0 landmarks sampled with replacement; gamma defaults to N/640000."""
    if gamma is None:
        gamma = X.shape[0] / 640000.0
    idx = rng.choice(X.shape[0], L0)
    intervals, alpha_max, _ = h1_intervals(X, idx, gamma)
    return rlt_of_intervals(intervals, alpha_max, i_max)


def mrlt(X, L0=64, gamma=None, i_max=100, n=1000, seed=0):
    rng = np.random.RandomState(seed)
    return np.mean([rlt(X, L0, gamma, i_max, rng) for _ in range(n)], axis=0)
