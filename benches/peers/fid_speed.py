"""FID at d = 2048, mathnn against pytorch-fid side by side, interleaved (issue 20).

Inputs (written once to a temporary folder): two 5,000 × 2,048 float32 feature sets (Gaussian rows through
a near-identity mixing matrix) and their pytorch-fid statistics (`np.mean`, `np.cov`,
`np.savez_compressed`, as `save_fid_stats` does). For each thread count, rounds of A B A B …:

* from statistics: pytorch-fid 0.3.0's `calculate_frechet_distance` on the loaded statistics, against
  `gan_eval::fid` on the same files' statistics in memory (the `fid_from_stats` example, median of 3);
* from statistics files: `mathnn fid a.npz b.npz` (process start, inflating both files, FID), and the same
  command of an older binary when `--baseline` names one;
* end to end: `np.load` of both `.npy` files + `np.mean`/`np.cov` + `calculate_frechet_distance`, against
  `mathnn fid a.npy b.npy` (process start, reading, statistics, FID).

numpy/OpenBLAS get the same thread count as mathnn's rayon pool. Usage (after
`cargo build --release --bin mathnn --example fid_from_stats -p experiments -p gan-eval`):
    python3 benches/peers/fid_speed.py [--threads 2,1] [--rounds 3]
"""
import argparse, json, os, subprocess, sys, tempfile, time

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", default="2,1")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--mathnn", default="target/release/mathnn")
    ap.add_argument("--example", default="target/release/examples/fid_from_stats")
    ap.add_argument("--baseline", help="an older mathnn binary: `fid A.npz B.npz` timed beside the current one")
    a = ap.parse_args()
    tmp = tempfile.mkdtemp()
    script = os.path.abspath(__file__)
    subprocess.run([sys.executable, script, "--make", tmp], check=True,
                   env={**os.environ, "OPENBLAS_NUM_THREADS": "2"})
    rows = []
    for t in [int(x) for x in a.threads.split(",")]:
        env = {**os.environ, "OPENBLAS_NUM_THREADS": str(t), "OMP_NUM_THREADS": str(t),
               "MKL_NUM_THREADS": str(t), "RAYON_NUM_THREADS": str(t)}
        for r in range(a.rounds):
            load = os.getloadavg()[0]
            peer = json.loads(subprocess.run([sys.executable, script, "--peer", tmp], env=env, check=True,
                                             capture_output=True, text=True).stdout)
            ours = json.loads(subprocess.run([a.example, f"{tmp}/a.npz", f"{tmp}/b.npz", "3"], env=env,
                                             check=True, capture_output=True, text=True).stdout)
            start = time.perf_counter()
            cli = json.loads(subprocess.run([a.mathnn, "fid", "--json", f"{tmp}/a.npy", f"{tmp}/b.npy"],
                                            env=env, check=True, capture_output=True, text=True).stdout)
            cli_s = time.perf_counter() - start
            files = {}
            for label, binary in (("current", a.mathnn), ("baseline", a.baseline)):
                if binary:
                    start = time.perf_counter()
                    subprocess.run([binary, "fid", "--json", f"{tmp}/a.npz", f"{tmp}/b.npz"], env=env,
                                   check=True, capture_output=True)
                    files[label] = time.perf_counter() - start
            rows.append((t, r, load, peer, ours, cli_s, cli))
            print(f"threads {t} round {r + 1} (load {load:.2f}): from statistics pytorch-fid "
                  f"{peer['stats_s']:.3f} s vs mathnn {ours['median_s']:.3f} s "
                  f"({peer['stats_s'] / ours['median_s']:.1f}×); end to end {peer['e2e_s']:.2f} s vs "
                  f"{cli_s:.2f} s ({peer['e2e_s'] / cli_s:.1f}×); FID {peer['fid']:.6f} / "
                  f"{ours['fid']:.6f} / {cli['fid']:.6f}; `mathnn fid A.npz B.npz` "
                  + ", ".join(f"{k} {v:.3f} s" for k, v in files.items()), flush=True)
    print(f"load average at end: {os.getloadavg()}")

def make(out):
    import numpy as np
    rng = np.random.default_rng(2026)
    d, n = 2048, 5000
    for name in ("a", "b"):
        mix = np.eye(d) + 0.1 * rng.standard_normal((d, d)) / np.sqrt(d)
        x = (rng.standard_normal((n, d)) @ mix + (0.3 if name == "b" else 0.0)).astype(np.float32)
        np.save(f"{out}/{name}.npy", x)
        np.savez_compressed(f"{out}/{name}.npz", mu=np.mean(x, axis=0), sigma=np.cov(x, rowvar=False))

def peer(folder):
    import numpy as np
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from gan_eval import load_pytorch_fid
    cfd, _ = load_pytorch_fid()
    stats = []
    for name in ("a", "b"):
        with np.load(f"{folder}/{name}.npz") as f:
            stats.append((f["mu"][:], f["sigma"][:]))
    start = time.perf_counter()
    value = float(cfd(stats[0][0], stats[0][1], stats[1][0], stats[1][1]))
    stats_s = time.perf_counter() - start
    start = time.perf_counter()
    xs = [np.load(f"{folder}/{name}.npy") for name in ("a", "b")]
    mu = [np.mean(x, axis=0) for x in xs]
    sigma = [np.cov(x, rowvar=False) for x in xs]
    cfd(mu[0], sigma[0], mu[1], sigma[1])
    e2e_s = time.perf_counter() - start
    print(json.dumps({"fid": value, "stats_s": stats_s, "e2e_s": e2e_s}))

if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--make":
        make(sys.argv[2])
    elif len(sys.argv) == 3 and sys.argv[1] == "--peer":
        peer(sys.argv[2])
    else:
        main()
