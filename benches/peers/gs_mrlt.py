"""MRLT with many draws (the reference's default n = 1000): the reference pipeline
(gs_reference_pipeline.mrlt: cdist + gudhi per draw) vs `mathnn gs --n N` with one rayon thread, on the same
cloud; mathnn's time is end to end (process start and .npy reading included). Run by hand:
    cargo build --release -p experiments && python3 benches/peers/gs_mrlt.py 1000 [target/release/mathnn]
"""
import json, os, subprocess, sys, tempfile, time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gs_reference_pipeline as gsref  # noqa: E402

n_draws = int(sys.argv[1]) if len(sys.argv) > 1 else 200
mathnn = sys.argv[2] if len(sys.argv) > 2 else "target/release/mathnn"
path = os.path.join(tempfile.mkdtemp(), "gs_x.npy")
rng = np.random.default_rng(0)
for name, X in [("784-D Gaussian N=5000", rng.normal(size=(5000, 784))),
                ("2-D circle N=2000", None)]:
    if X is None:
        t = rng.uniform(0, 2*np.pi, 2000); X = np.c_[np.cos(t), np.sin(t)] + 0.05*rng.normal(size=(2000, 2))
    N = X.shape[0]; gamma = N/640000
    np.save(path, X)
    env = dict(os.environ, RAYON_NUM_THREADS="1")
    t0 = time.perf_counter()
    out = json.loads(subprocess.run([mathnn, "gs", path, "--n", str(n_draws), "--gamma", repr(gamma), "--json"], env=env, capture_output=True, text=True, check=True).stdout)
    t_ours = time.perf_counter() - t0
    t0 = time.perf_counter(); c0 = time.thread_time()
    m_py = gsref.mrlt(X, 64, gamma, 100, n_draws, seed=1)
    t_py = time.perf_counter() - t0; c_py = time.thread_time() - c0
    print(f"{name}: {n_draws} draws: reference {t_py:.2f} s wall ({c_py:.2f} s CPU), mathnn (1 thread, CLI incl. reading) {t_ours:.2f} s -> {t_py/t_ours:.1f}x; max|dMRLT| {np.max(np.abs(np.array(out['mrlt_a'])-m_py)):.3f}; load {os.getloadavg()[0]:.1f}")
