"""Writes crates/gan-eval/tests/data/gs_reference.json: point clouds with fixed landmark indices and the H1
bars, complex sizes and RLTs that gudhi 3.13 gives through the reference pipeline
(benches/peers/gs_reference_pipeline.py). Run once: `python3 crates/gan-eval/scripts/make_gs_reference.py`.
"""
import json, os, sys
import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "..", "benches", "peers"))
from gs_reference_pipeline import h1_intervals, rlt_of_intervals  # noqa: E402

rng = np.random.default_rng(20180214)


def circle(n, noise):
    t = rng.uniform(0, 2 * np.pi, n)
    return np.c_[np.cos(t), np.sin(t)] + noise * rng.normal(size=(n, 2))


def eight(n, noise):
    t = rng.uniform(0, 2 * np.pi, n)
    s = rng.integers(0, 2, n) * 2 - 1
    return np.c_[s * (1 - np.cos(t)), np.sin(t)] + noise * rng.normal(size=(n, 2))


cases = []
specs = [
    ("circle-2d", circle(300, 0.05), 24, 1 / 8),
    ("figure-eight-2d", eight(400, 0.03), 32, 0.1),
    ("gauss-5d", rng.normal(size=(150, 5)), 16, 0.3),
    ("circle-duplicates", circle(200, 0.02), 20, 1 / 16),
    ("gauss-20d-gemm", rng.normal(size=(200, 20)), 24, 0.2),
    ("disk-2d-default-gamma", np.sqrt(rng.uniform(size=(500, 1))) * np.c_[np.cos(t := rng.uniform(0, 2 * np.pi, 500)), np.sin(t)], 64, 500 / 640000),
]
for name, X, L0, gamma in specs:
    idx = rng.integers(0, X.shape[0], L0)
    if name == "circle-duplicates":
        idx[5] = idx[0]
        idx[11] = idx[3]
        idx[12] = idx[3]
    intervals, alpha_max, st = h1_intervals(X, idx, gamma)
    dims = [len(s) - 1 for s, _ in st.get_simplices()]
    bars = sorted([[float(b), float(d)] for b, d in intervals])
    cases.append({
        "name": name,
        "points": X.tolist(),
        "landmarks": [int(i) for i in idx],
        "gamma": gamma,
        "alpha_max": float(alpha_max),
        "edges": dims.count(1),
        "triangles": dims.count(2),
        "bars": [[b, "inf" if np.isinf(d) else d] for b, d in bars],
        "rlt10": rlt_of_intervals(intervals, alpha_max, 10).tolist(),
        "rlt100": rlt_of_intervals(intervals, alpha_max, 100).tolist(),
    })
    print(name, len(bars), "bars", dims.count(1), "edges", dims.count(2), "triangles")
out = os.path.join(HERE, "..", "tests", "data", "gs_reference.json")
with open(out, "w") as f:
    json.dump({"generator": "gudhi " + __import__("gudhi").__version__, "cases": cases}, f)
print("wrote", out)
