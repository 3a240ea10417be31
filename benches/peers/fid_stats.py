"""Fixtures and a check for FID statistics files in pytorch-fid's format (issue 20).

`make DIR` writes, from seeded features:
  features_a.npy (60 × 8, float32) and features_b.npy (50 × 8, float64);
  peer_a.npz, peer_b.npz: exactly what pytorch-fid's `save_fid_stats` writes, i.e.
      mu = np.mean(act, axis=0); sigma = np.cov(act, rowvar=False)
      np.savez_compressed(path, mu=mu, sigma=sigma)
  (mu is float32 for float32 activations, as in pytorch-fid);
  expected.json: pytorch-fid 0.3.0's `calculate_frechet_distance` between the two files' statistics.
`check STATS.npz FEATURES.npy` loads STATS.npz as pytorch-fid's `compute_statistics_of_path` does
(`np.load(path)`, `f['mu'][:]`, `f['sigma'][:]`) and prints the largest difference from numpy's own
statistics of FEATURES.npy: a file `mathnn fid-stats` wrote must read back within 1e-12.

Usage: python3 benches/peers/fid_stats.py make crates/gan-eval/tests/data/fid_stats
       python3 benches/peers/fid_stats.py check STATS.npz FEATURES.npy
Needs numpy and scipy (and pytorch-fid 0.3.0, imported or loaded from its source, as gan_eval.py does).
"""
import json, os, sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))


def pytorch_fid_stats(act):
    return np.mean(act, axis=0), np.cov(act, rowvar=False)


def make(out):
    from gan_eval import load_pytorch_fid
    cfd, label = load_pytorch_fid()
    os.makedirs(out, exist_ok=True)
    rng = np.random.default_rng(20)
    a = (rng.standard_normal((60, 8)) @ rng.standard_normal((8, 8))).astype(np.float32)
    b = rng.standard_normal((50, 8)) * 1.5 + 0.25
    np.save(os.path.join(out, "features_a.npy"), a)
    np.save(os.path.join(out, "features_b.npy"), b)
    stats = {}
    for name, act in (("a", a), ("b", b)):
        mu, sigma = pytorch_fid_stats(act)
        np.savez_compressed(os.path.join(out, f"peer_{name}.npz"), mu=mu, sigma=sigma)
        with np.load(os.path.join(out, f"peer_{name}.npz")) as f:
            stats[name] = (f["mu"][:], f["sigma"][:])
    fid = float(cfd(stats["a"][0], stats["a"][1], stats["b"][0], stats["b"][1]))
    with open(os.path.join(out, "expected.json"), "w") as f:
        json.dump({"fid_a_b": fid, "peer": label, "numpy": np.__version__,
                   "mu_a_dtype": str(stats["a"][0].dtype)}, f, indent=1)
    print(f"wrote {out}: FID(a, b) = {fid!r} ({label})")


def check(stats_path, features_path):
    with np.load(stats_path) as f:
        m, s = f["mu"][:], f["sigma"][:]
    mu, sigma = pytorch_fid_stats(np.load(features_path).astype(np.float64))
    diff = max(np.abs(m - mu).max(), np.abs(s - sigma).max())
    print(f"{stats_path}: mu {m.dtype} {m.shape}, sigma {s.dtype} {s.shape}; max |difference| = {diff:.3e}")
    sys.exit(0 if diff <= 1e-12 else 1)


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "make":
        make(sys.argv[2])
    elif len(sys.argv) == 4 and sys.argv[1] == "check":
        check(sys.argv[2], sys.argv[3])
    else:
        sys.exit(__doc__)
