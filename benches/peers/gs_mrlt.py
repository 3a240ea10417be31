"""MRLT with many draws (the reference's default n = 1000): the reference pipeline
(gs_reference_pipeline.mrlt: cdist + gudhi per draw) vs `mathnn gs --n N` with one rayon thread, on the same
cloud; mathnn's time is end to end (process start and .npy reading included). Rounds interleave the two
(reference, mathnn, reference, mathnn, ...) so both see the same machine load. Run by hand:
    cargo build --release -p experiments && python3 benches/peers/gs_mrlt.py 1000 [target/release/mathnn] [rounds]
"""
import json, os, resource, subprocess, sys, tempfile, time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gs_reference_pipeline as gsref  # noqa: E402

n_draws = int(sys.argv[1]) if len(sys.argv) > 1 else 200
mathnn = sys.argv[2] if len(sys.argv) > 2 else "target/release/mathnn"
rounds = int(sys.argv[3]) if len(sys.argv) > 3 else 2
path = os.path.join(tempfile.mkdtemp(), "gs_x.npy")
rng = np.random.default_rng(0)
X784 = rng.normal(size=(5000, 784))
t = rng.uniform(0, 2*np.pi, 2000)
X2 = np.c_[np.cos(t), np.sin(t)] + 0.05*rng.normal(size=(2000, 2))
env = dict(os.environ, RAYON_NUM_THREADS="1")


def children_cpu():
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


for rnd in range(1, rounds + 1):
    for name, X in [("784-D Gaussian N=5000", X784), ("2-D circle N=2000", X2)]:
        N = X.shape[0]; gamma = N/640000
        np.save(path, X)
        t0 = time.perf_counter(); c0 = time.thread_time()
        m_py = gsref.mrlt(X, 64, gamma, 100, n_draws, seed=1)
        t_py = time.perf_counter() - t0; c_py = time.thread_time() - c0
        t0 = time.perf_counter(); k0 = children_cpu()
        out = json.loads(subprocess.run([mathnn, "gs", path, "--n", str(n_draws), "--gamma", repr(gamma), "--json"],
                                        env=env, capture_output=True, text=True, check=True).stdout)
        t_ours = time.perf_counter() - t0; c_ours = children_cpu() - k0
        print(f"round {rnd}: {name}: {n_draws} draws: reference {t_py:.2f} s wall ({c_py:.2f} s CPU), "
              f"mathnn (1 thread, CLI incl. reading) {t_ours:.2f} s wall ({c_ours:.2f} s CPU) -> "
              f"{t_py/t_ours:.1f}x wall, {c_py/c_ours:.1f}x CPU; "
              f"max|dMRLT| {np.max(np.abs(np.array(out['mrlt_a'])-m_py)):.3f}; load {os.getloadavg()[0]:.1f}",
              flush=True)
