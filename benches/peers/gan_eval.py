"""Python peers of gan-eval, on the same inputs as the `mathnn` CLI, with timing ratios.

* FID: pytorch-fid 0.3.0's `calculate_frechet_distance` (scipy `sqrtm` of Σ_aΣ_b). Without torch the
  package cannot be imported, so its function is taken verbatim from the installed package source
  (`pip install pytorch-fid==0.3.0 --no-deps`); the label printed says which.
* Geometry Score: the reference pipeline (benches/peers/gs_reference_pipeline.py: scipy cdist, gudhi
  WitnessComplex, Z/2 persistence, RLT), one draw (median wall and thread-CPU seconds over --reps) and
  200-draw MRLTs.

Usage: python3 benches/peers/gan_eval.py [--bench] [--only all|fid|gs] [--reps 15] [--mathnn target/release/mathnn]
       [--criterion target/criterion]
(`cargo build --release -p experiments` first; `--bench` runs the criterion bench right before the peers.)
Needs numpy, scipy, gudhi (and pytorch-fid --no-deps). Prints a Markdown table for docs/performance.md.
"""
import argparse, ast, importlib.util, json, os, subprocess, sys, tempfile, time

import numpy as np
import scipy
from scipy import linalg

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gs_reference_pipeline as gsref  # noqa: E402


def load_pytorch_fid():
    try:
        from pytorch_fid.fid_score import calculate_frechet_distance
        return calculate_frechet_distance, "pytorch-fid 0.3.0 (imported)"
    except ImportError:
        pass
    spec = importlib.util.find_spec("pytorch_fid")
    if spec is None or spec.submodule_search_locations is None:
        sys.exit("pytorch-fid is not installed: pip install pytorch-fid==0.3.0 --no-deps")
    path = os.path.join(list(spec.submodule_search_locations)[0], "fid_score.py")
    src = open(path).read()
    fn = next(n for n in ast.parse(src).body
              if isinstance(n, ast.FunctionDef) and n.name == "calculate_frechet_distance")
    ns = {"np": np, "linalg": linalg}
    exec(ast.get_source_segment(src, fn), ns)
    return ns["calculate_frechet_distance"], "pytorch-fid 0.3.0 source, function verbatim (torch absent)"


def timed(f, reps):
    """Median wall seconds and the last result."""
    wall, _, out = timed2(f, reps)
    return wall, out


def timed2(f, reps):
    """Median wall seconds, median CPU seconds of this thread (`time.thread_time`), last result."""
    wall, cpu, out = [], [], None
    for _ in range(reps):
        t, c = time.perf_counter(), time.thread_time()
        out = f()
        cpu.append(time.thread_time() - c)
        wall.append(time.perf_counter() - t)
    return float(np.median(wall)), float(np.median(cpu)), out


def criterion_ns(root, *path):
    f = os.path.join(root, *path, "new", "estimates.json")
    if not os.path.exists(f):
        return None
    return json.load(open(f))["median"]["point_estimate"]


def run_cli(mathnn, args, reps=3):
    def call():
        r = subprocess.run([mathnn] + args + ["--json"], capture_output=True, text=True, check=True)
        return json.loads(r.stdout)
    return timed(call, reps)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--mathnn", default="target/release/mathnn")
    ap.add_argument("--criterion", default="target/criterion")
    ap.add_argument("--bench", action="store_true",
                    help="run `cargo bench -p benches --bench gan_eval` first, so both sides see the same load")
    ap.add_argument("--only", choices=["all", "fid", "gs"], default="all")
    ap.add_argument("--reps", type=int, default=15, help="repetitions of one GS draw (medians)")
    a = ap.parse_args()
    if a.bench:
        print(f"load average before cargo bench: {os.getloadavg()}")
        filt = [] if a.only == "all" else ["--", "gs_draw" if a.only == "gs" else "fid"]
        subprocess.run(["cargo", "bench", "-p", "benches", "--bench", "gan_eval"] + filt, check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                       env={**os.environ, "RAYON_NUM_THREADS": "1"})
    cfd, label = load_pytorch_fid()
    print(f"numpy {np.__version__}, scipy {scipy.__version__}, gudhi {gsref.gudhi.__version__}; {label}")
    print(f"load average at start: {os.getloadavg()}, cores: {os.cpu_count()}")
    rng = np.random.default_rng(0)
    tmp = tempfile.mkdtemp()
    rows = []
    for d in (64, 2048) if a.only in ("all", "fid") else ():
        n = max(2 * d, 1000)
        mix = rng.normal(size=(d, d)) / np.sqrt(d)
        A, B = rng.normal(size=(n, d)) @ mix, rng.normal(size=(n, d)) @ mix
        pa, pb = os.path.join(tmp, f"a{d}.npy"), os.path.join(tmp, f"b{d}.npy")
        np.save(pa, A), np.save(pb, B)
        t_stats, (m1, s1, m2, s2) = timed(
            lambda: (A.mean(0), np.cov(A, rowvar=False), B.mean(0), np.cov(B, rowvar=False)), 3)
        reps = 5 if d == 64 else 2
        t_py, v_py = timed(lambda: cfd(m1, s1, m2, s2), reps)
        t_cli, out = run_cli(a.mathnn, ["fid", pa, pb], reps=3)
        kernel = {r: criterion_ns(a.criterion, "fid", f"d{d}_{r}") for r in ("eigen-sqrt", "cholesky")}
        rows.append((f"FID d={d} kernel (stats given); mathnn: default Cholesky route | eigen-sqrt route",
                     t_py, kernel["cholesky"], kernel["eigen-sqrt"]))
        rows.append((f"FID d={d} end to end (n={n}, stats + FID; CLI incl. .npy reading)",
                     t_stats + t_py, t_cli * 1e9, None))
        print(f"d={d}: pytorch-fid {v_py:.12g}, mathnn {out['fid']:.12g}, "
              f"rel diff {abs(v_py - out['fid']) / abs(v_py):.2e}")
    gs_cases = [("N=2000, 2-D circle", None, 64), ("N=5000, 784-D Gaussian", None, 64)]
    for name, X, L0 in gs_cases if a.only in ("all", "gs") else ():
        if X is None and "2-D" in name:
            t = rng.uniform(0, 2 * np.pi, 2000)
            X = np.c_[np.cos(t), np.sin(t)] + 0.05 * rng.normal(size=(2000, 2))
        elif X is None:
            X = rng.normal(size=(5000, 784))
        N = X.shape[0]
        gamma = N / 640000
        idx = rng.choice(N, L0)
        px, pi = os.path.join(tmp, "x.npy"), os.path.join(tmp, "idx.npy")
        np.save(px, X), np.save(pi, idx.astype(np.int64))
        t_py, c_py, (intervals, alpha, _) = timed2(lambda: gsref.h1_intervals(X, idx, gamma), a.reps)
        r_py = gsref.rlt_of_intervals(intervals, alpha, 100)
        t_cli, out = run_cli(a.mathnn, ["rlt", px, "--landmark-indices", pi, "--gamma", repr(gamma)])
        key = "n2000_d2_default" if N == 2000 else "n5000_d784_default"
        rows.append((f"GS one draw, {name}, L0=64, γ=N/640000 — wall", t_py, criterion_ns(a.criterion, "gs_draw", key), None))
        rows.append((f"GS one draw, {name}, L0=64, γ=N/640000 — thread CPU", c_py,
                     criterion_ns(a.criterion, "gs_draw_cpu", key), None))
        rows.append((f"GS one draw, {name}: end to end (CLI incl. .npy reading)", t_py, t_cli * 1e9, None))
        print(f"{name}: {len(intervals)} bars (ref) vs {len(out['bars'])} (mathnn); "
              f"max |ΔRLT| = {np.max(np.abs(np.array(out['rlt']) - r_py)):.2e}")
        if a.only == "gs":
            continue
        t_pym, m_py = timed(lambda: gsref.mrlt(X, 64, gamma, 100, 200, seed=1), 1)
        t_clim, outm = run_cli(a.mathnn, ["gs", px, "--n", "200", "--gamma", repr(gamma)], reps=1)
        rows.append((f"MRLT, 200 draws, {name} (CLI incl. .npy reading, 2 threads)", t_pym, t_clim * 1e9, None))
        rs = np.random.RandomState(7)
        se = np.std([gsref.rlt(X, 64, gamma, 100, rs) for _ in range(20)], axis=0).max() / np.sqrt(200)
        print(f"{name}: MRLT 200 draws, max |Δ| between reference and mathnn = "
              f"{np.max(np.abs(np.array(outm['mrlt_a']) - m_py)):.3f} (≈ standard error {se:.3f} per run)")
    print(f"load average at end: {os.getloadavg()}")
    print("\n| kernel | Python peer (s) | mathnn (s) | ratio | mathnn, other route (s) | ratio |")
    print("|---|---|---|---|---|---|")
    for name, t_py, ns, ns2 in rows:
        def fmt(x):
            return "—" if x is None else f"{x / 1e9:.4g}"
        def ratio(x):
            return "—" if x is None else f"{t_py / (x / 1e9):.1f}×"
        print(f"| {name} | {t_py:.4g} | {fmt(ns)} | {ratio(ns)} | {fmt(ns2)} | {ratio(ns2)} |")


if __name__ == "__main__":
    main()
