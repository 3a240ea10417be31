#!/usr/bin/env python3
"""Python peers for benches/benches/tensor_decomp.rs: the same TT-SVD, TT-arithmetic and CP-ALS work in
ttpy (if importable), TensorLy and a textbook numpy TT-SVD, with one BLAS thread.

Run by hand (not in CI):

    OPENBLAS_NUM_THREADS=1 python3 benches/peers/tensor_decomp.py [--repeat 5] [--json out.json]

Timings are the best of --repeat runs, as process CPU seconds and wall seconds. Inputs match the Rust
bench: smooth 1/(1 + sum_k x_k) with x_k = i_k/(n-1) and i.i.d. N(0, 1) tensors on 4^10 and 10^7
(7 modes of 10); TT with d = 20, n = 10, r = 20 and N(0, 1) cores; CP-ALS of a 100^3 tensor (rank 10 plus
1e-3 noise), rank 10, 100 sweeps, random init, no tolerance stop.

The numpy TT-SVD is the textbook algorithm (Oseledets 2011, Alg. 1) with the same delta = eps/sqrt(d-1)*||A||
rule as ttpy and tensor_decomp: it is the stand-in for ttpy where ttpy does not build.
"""

import argparse
import json
import os
import sys
import time

for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(var, "1")

import numpy as np  # noqa: E402

try:
    import tensorly as tl
    from tensorly.decomposition import parafac, tensor_train
except ImportError:  # pragma: no cover
    tl = None

try:
    import tt as ttpy  # ttpy
except ImportError:  # pragma: no cover
    ttpy = None


def timed(fn, repeat):
    """Best (cpu, wall) seconds over `repeat` calls, and the last result."""
    best_cpu, best_wall, out = float("inf"), float("inf"), None
    for _ in range(repeat):
        c0, w0 = time.process_time(), time.perf_counter()
        out = fn()
        c1, w1 = time.process_time(), time.perf_counter()
        best_cpu, best_wall = min(best_cpu, c1 - c0), min(best_wall, w1 - w0)
    return best_cpu, best_wall, out


def smooth(shape):
    grids = np.meshgrid(*[np.arange(n) / (n - 1) for n in shape], indexing="ij", sparse=True)
    s = sum(grids)
    return 1.0 / (1.0 + s)


def gaussian(shape, seed):
    return np.random.default_rng(seed).standard_normal(shape)


def numpy_tt_svd(a, eps, rmax=None):
    """Textbook TT-SVD: thin SVD of each unfolding, delta = eps/sqrt(d-1)*||A||."""
    d, n = a.ndim, a.shape
    delta = eps / np.sqrt(d - 1) * np.linalg.norm(a)
    c = a.reshape(n[0], -1)
    r, cores = 1, []
    for k in range(d - 1):
        c = c.reshape(r * n[k], -1)
        u, s, vt = np.linalg.svd(c, full_matrices=False)
        tail = np.sqrt(np.cumsum((s**2)[::-1]))[::-1]  # tail[j] = ||s[j:]||
        rk = max(1, int(np.sum(tail > delta)))
        if rmax is not None:
            rk = min(rk, rmax)
        cores.append(u[:, :rk].reshape(r, n[k], rk))
        c = s[:rk, None] * vt[:rk]
        r = rk
    cores.append(c.reshape(r, n[-1], 1))
    return cores


def tt_full(cores):
    out = cores[0].reshape(cores[0].shape[1], -1)
    for g in cores[1:]:
        out = (out @ g.reshape(g.shape[0], -1)).reshape(-1, g.shape[2])
    return out.reshape([g.shape[1] for g in cores])


def rel_err(a, cores):
    return float(np.linalg.norm(a - tt_full(cores)) / np.linalg.norm(a))


def bench_tt_svd(results, repeat):
    for name, shape in (("4^10", [4] * 10), ("10^7", [10] * 7)):
        s, g = smooth(shape), gaussian(shape, 0)
        cases = (("smooth_eps1e-8", s, 1e-8, None), ("smooth_cap16", s, 0.0, 16), ("gaussian_cap10", g, 0.0, 10))
        for case, a, eps, cap in cases:
            key = f"tt_svd/{case}/{name}"
            cpu, wall, cores = timed(lambda: numpy_tt_svd(a, eps, cap), repeat)
            results.append(dict(task=key, peer="numpy textbook", cpu=cpu, wall=wall,
                                ranks=[1] + [c.shape[2] for c in cores], rel_error=rel_err(a, cores)))
            if tl is not None and cap is not None:
                cpu, wall, f = timed(lambda: tensor_train(a, rank=cap), repeat)
                f = list(f.factors) if hasattr(f, "factors") else list(f)
                results.append(dict(task=key, peer="TensorLy", cpu=cpu, wall=wall,
                                    ranks=[1] + [c.shape[2] for c in f], rel_error=rel_err(a, f)))
            if ttpy is not None:
                if cap is None:
                    fn = lambda: ttpy.vector(a, eps)  # noqa: E731
                else:
                    fn = lambda: ttpy.vector(a, 1e-14, cap)  # noqa: E731
                cpu, wall, t = timed(fn, repeat)
                results.append(dict(task=key, peer="ttpy", cpu=cpu, wall=wall, ranks=[int(x) for x in t.r],
                                    rel_error=float(np.linalg.norm(a - t.full()) / np.linalg.norm(a))))
            print(f"done {key}", file=sys.stderr)


def bench_tt_ops(results, repeat):
    if ttpy is None:
        return
    rng = np.random.default_rng(1)

    def rand_tt(d, n, r):
        cores = [rng.standard_normal((1 if k == 0 else r, n, 1 if k == d - 1 else r)) for k in range(d)]
        return ttpy.vector.from_list(cores)

    y, z = rand_tt(20, 10, 20), rand_tt(20, 10, 20)
    s, h = y + y, y * z
    ops = (
        ("add", lambda: y + z),
        ("dot", lambda: ttpy.dot(y, z)),
        ("norm", lambda: y.norm()),
        ("round_sum_40_to_20", lambda: s.round(1e-10)),
        ("hadamard_400", lambda: y * z),
        ("round_hadamard_400_to_20", lambda: h.round(1e-10, 20)),
    )
    for name, fn in ops:
        cpu, wall, _ = timed(fn, repeat)
        results.append(dict(task=f"tt_d20_n10_r20/{name}", peer="ttpy", cpu=cpu, wall=wall))


def bench_cp_als(results, repeat):
    if tl is None:
        return
    rng = np.random.default_rng(3)
    factors = [rng.standard_normal((100, 10)) for _ in range(3)]
    clean = np.einsum("ir,jr,kr->ijk", *factors)
    noise = gaussian((100, 100, 100), 4)
    x = clean + noise * (1e-3 * np.linalg.norm(clean) / np.linalg.norm(noise))

    def run():
        return parafac(x, 10, n_iter_max=100, init="random", tol=0.0, random_state=0, return_errors=True)

    cpu, wall, (cp, errors) = timed(run, repeat)
    rec = tl.cp_to_tensor(cp)
    results.append(dict(task="cp_als/100^3_rank10_100sweeps", peer="TensorLy", cpu=cpu, wall=wall,
                        sweeps=len(errors), rel_error=float(np.linalg.norm(x - rec) / np.linalg.norm(x))))


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--repeat", type=int, default=5)
    p.add_argument("--json", help="also write the results to this file")
    args = p.parse_args()
    results = []
    bench_tt_svd(results, args.repeat)
    bench_tt_ops(results, args.repeat)
    bench_cp_als(results, args.repeat)
    print(f"numpy {np.__version__}, TensorLy {tl.__version__ if tl else 'missing'}, "
          f"ttpy {'present' if ttpy else 'missing'}; one BLAS thread")
    print(f"{'task':<42} {'peer':<15} {'cpu s':>9} {'wall s':>9}  ranks / error")
    for r in results:
        extra = ""
        if "ranks" in r:
            extra = f"{r['ranks']} err {r['rel_error']:.1e}"
        elif "rel_error" in r:
            extra = f"{r['sweeps']} sweeps, err {r['rel_error']:.1e}"
        print(f"{r['task']:<42} {r['peer']:<15} {r['cpu']:>9.4f} {r['wall']:>9.4f}  {extra}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()
