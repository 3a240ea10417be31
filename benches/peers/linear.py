#!/usr/bin/env python3
"""scikit-learn 1.9 peer for classical::linear (StandardScaler, LogisticRegression(lbfgs), LinearSVC).

Three jobs, run by hand (not in CI):

    # 1. The committed test fixtures (crates/classical/tests/fixtures/linear/*.npz):
    python3 benches/peers/linear.py fixtures [--data-dir /work/shared/data]

    # 2. sklearn fit times on the digits split of the tests, or on any features file:
    OPENBLAS_NUM_THREADS=1 python3 benches/peers/linear.py time --digits [--data-dir DIR] [--repeat 5]
    OPENBLAS_NUM_THREADS=1 python3 benches/peers/linear.py time --features X.npy --labels y.npy \
        [--test-features Xt.npy --test-labels yt.npy] [--cases lr_default,svc_default]
    # (benches/examples/linear_time.rs writes MNIST HOG features in this form and times ours on them)

    # 3. A random-ish features file for speed comparisons (not committed; 10,000 x 1,000 is 80 MB):
    python3 benches/peers/linear.py make-random OUT_DIR [--n 10000] [--d 1000] [--k 10] [--seed 0]

The fixtures: `synthetic.npz` (a generated 4-class set of 240 x 16 with a constant column and a column
offset by 1e6, written whole) and, when the digits data is found (`--data-dir`, else $MATHNN_DATA), a
`digits.npz` with the split (train_test_split(test_size=0.25, random_state=0) indices) and sklearn's
results on it, but never the digits themselves. Logistic regression is fitted twice: "tight"
(tol=1e-10, max_iter=10000: converged, for comparing coefficients) and with the defaults (tol=1e-4,
max_iter=100, what a user gets). LinearSVC is fitted with dual=True (liblinear's
L2R_L2LOSS_SVC_DUAL) and tol=1e-8 (tight), and with its defaults (dual="auto", which picks the primal
trust-region Newton solver, L2R_L2LOSS_SVC, when n_samples >= n_features); classical::linear implements
both.

The objectives written are scikit-learn's: logistic C*sum(logloss) + 0.5*|W|^2 (intercepts not
penalised); SVM per one-vs-rest problem 0.5*(|w|^2 + w_b^2) + C*sum(max(0, 1 - y_i(w.x_i + b))^2)
with b = intercept_scaling * w_b.

Timings are the best of --repeat fits, wall and process-CPU seconds, printed as JSON.
"""

import argparse
import gzip
import json
import os
import sys
import time
import warnings

for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(var, "1")

import numpy as np  # noqa: E402
import sklearn  # noqa: E402
from sklearn.exceptions import ConvergenceWarning  # noqa: E402
from sklearn.linear_model import LogisticRegression  # noqa: E402
from sklearn.model_selection import train_test_split  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402
from sklearn.svm import LinearSVC  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FIXTURES = os.path.join(ROOT, "crates", "classical", "tests", "fixtures", "linear")

TIGHT_LR = dict(tol=1e-10, max_iter=10000)
TIGHT_SVC = dict(tol=1e-8, max_iter=100000, dual=True)


def lr_objective(X, y, coef, intercept, C):
    """C * sum(logloss) + 0.5 * |coef|^2, binomial for one coefficient row, multinomial otherwise."""
    Z = X @ coef.T + intercept
    if coef.shape[0] == 1:
        z = Z[:, 0]
        loss = np.logaddexp(0.0, z) - y * z
    else:
        m = Z.max(axis=1, keepdims=True)
        lse = m[:, 0] + np.log(np.exp(Z - m).sum(axis=1))
        loss = lse - Z[np.arange(len(y)), y]
    return C * loss.sum() + 0.5 * (coef**2).sum()


def svc_primal(X, y, coef, intercept, C, intercept_scaling):
    """Per one-vs-rest problem: 0.5*(|w|^2 + w_b^2) + C*sum(squared hinge)."""
    rows = coef.shape[0]
    out = []
    for j in range(rows):
        positive = 1 if rows == 1 else j
        s = np.where(y == positive, 1.0, -1.0)
        z = X @ coef[j] + intercept[j]
        h = np.maximum(0.0, 1.0 - s * z)
        wb = intercept[j] / intercept_scaling
        out.append(0.5 * (coef[j] @ coef[j] + wb * wb) + C * (h * h).sum())
    return np.array(out)


def fit_lr(X, y, C=1.0, fit_intercept=True, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        m = LogisticRegression(C=C, fit_intercept=fit_intercept, **kw).fit(X, y)
    return m


def fit_svc(X, y, C=1.0, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        m = LinearSVC(C=C, random_state=0, **kw).fit(X, y)
    return m


def lr_record(prefix, m, Xtr, ytr, C, Xte=None):
    out = {
        f"{prefix}_coef": m.coef_,
        f"{prefix}_intercept": np.atleast_1d(m.intercept_).astype(float),
        f"{prefix}_objective": np.array([lr_objective(Xtr, ytr, m.coef_, m.intercept_, C)]),
        f"{prefix}_n_iter": np.asarray(m.n_iter_, dtype=np.int64),
    }
    # Predictions as int16 (small fixtures): on the training set, or on the test set when there is one.
    if Xte is None:
        out[f"{prefix}_train_pred"] = m.predict(Xtr).astype(np.int16)
    else:
        out[f"{prefix}_test_pred"] = m.predict(Xte).astype(np.int16)
        out[f"{prefix}_test_proba"] = m.predict_proba(Xte)
    return out


def svc_record(prefix, m, Xtr, ytr, C, Xte=None):
    out = {
        f"{prefix}_coef": m.coef_,
        f"{prefix}_intercept": np.atleast_1d(m.intercept_).astype(float),
        f"{prefix}_primal": svc_primal(Xtr, ytr, m.coef_, np.atleast_1d(m.intercept_), C, 1.0),
        f"{prefix}_n_iter": np.atleast_1d(np.asarray(m.n_iter_, dtype=np.int64)),
    }
    if Xte is None:
        out[f"{prefix}_train_pred"] = m.predict(Xtr).astype(np.int16)
    else:
        out[f"{prefix}_test_pred"] = m.predict(Xte).astype(np.int16)
    return out


def synthetic():
    """240 x 16, 4 overlapping Gaussian classes; column 5 constant, column 9 offset by 1e6, scales 1..1e3."""
    rng = np.random.default_rng(20240611)
    n_per, d, k = 60, 16, 4
    centres = rng.normal(0.0, 1.2, size=(k, d))
    X = np.concatenate([rng.normal(centres[c], 1.0, size=(n_per, d)) for c in range(k)])
    y = np.repeat(np.arange(k), n_per)
    perm = rng.permutation(len(y))
    X, y = X[perm], y[perm]
    X *= np.logspace(0, 3, d)[None, :]
    X[:, 5] = 3.25
    X[:, 9] += 1e6
    return X, y.astype(np.int16)


def write_synthetic():
    X, y = synthetic()
    sc = StandardScaler().fit(X)
    Xs = sc.transform(X)
    rec = {
        "x": X,
        "y": y,
        "xs": Xs,
        "scaler_mean": sc.mean_,
        "scaler_var": sc.var_,
        "scaler_scale": sc.scale_,
    }
    # Multinomial, C = 1 and C = 0.05 without intercept; binomial (classes 0 and 1), C = 0.3.
    rec |= lr_record("lr", fit_lr(Xs, y, **TIGHT_LR), Xs, y, 1.0)
    rec |= lr_record("lr_default", fit_lr(Xs, y), Xs, y, 1.0)
    rec |= lr_record("lr_noint", fit_lr(Xs, y, C=0.05, fit_intercept=False, **TIGHT_LR), Xs, y, 0.05)
    mask = y < 2
    Xb, yb = Xs[mask], y[mask]
    rec |= lr_record("lrbin", fit_lr(Xb, yb, C=0.3, **TIGHT_LR), Xb, yb, 0.3)
    rec |= svc_record("svc", fit_svc(Xs, y, **TIGHT_SVC), Xs, y, 1.0)
    rec |= svc_record("svcbin", fit_svc(Xb, yb, C=0.3, **TIGHT_SVC), Xb, yb, 0.3)
    # The defaults: dual="auto" picks the primal trust-region Newton solver here (n > d).
    rec |= svc_record("svcp", fit_svc(Xs, y), Xs, y, 1.0)
    rec |= svc_record("svcpbin", fit_svc(Xb, yb, C=0.3), Xb, yb, 0.3)
    return rec


def load_digits_csv(data_dir):
    path = os.path.join(data_dir, "sklearn-digits", "digits.csv.gz")
    with gzip.open(path, "rt") as f:
        a = np.loadtxt(f, delimiter=",")
    return a[:, :64], a[:, 64].astype(np.int64)


def digits_split(data_dir):
    X, y = load_digits_csv(data_dir)
    idx = np.arange(len(y))
    tr, te = train_test_split(idx, test_size=0.25, random_state=0)
    return X, y, tr.astype(np.int64), te.astype(np.int64)


def write_digits(data_dir):
    X, y, tr, te = digits_split(data_dir)
    sc = StandardScaler().fit(X[tr])
    Xtr, Xte = sc.transform(X[tr]), sc.transform(X[te])
    ytr = y[tr]
    rec = {
        "train_idx": tr.astype(np.int16),
        "test_idx": te.astype(np.int16),
        "scaler_mean": sc.mean_,
        "scaler_scale": sc.scale_,
    }
    rec |= lr_record("lr", fit_lr(Xtr, ytr, **TIGHT_LR), Xtr, ytr, 1.0, Xte)
    default = lr_record("lr_default", fit_lr(Xtr, ytr), Xtr, ytr, 1.0, Xte)
    del default["lr_default_test_proba"]
    rec |= default
    rec |= svc_record("svc", fit_svc(Xtr, ytr, **TIGHT_SVC), Xtr, ytr, 1.0, Xte)
    rec |= svc_record("svc_dual_default", fit_svc(Xtr, ytr, dual=True), Xtr, ytr, 1.0, Xte)
    rec |= svc_record("svc_default", fit_svc(Xtr, ytr), Xtr, ytr, 1.0, Xte)
    return rec


def cmd_fixtures(args):
    os.makedirs(FIXTURES, exist_ok=True)
    rec = write_synthetic()
    np.savez(os.path.join(FIXTURES, "synthetic.npz"), **rec)
    print(f"wrote synthetic.npz ({len(rec)} arrays)")
    data_dir = args.data_dir or os.environ.get("MATHNN_DATA")
    if data_dir and os.path.exists(os.path.join(data_dir, "sklearn-digits", "digits.csv.gz")):
        rec = write_digits(data_dir)
        np.savez(os.path.join(FIXTURES, "digits.npz"), **rec)
        print(f"wrote digits.npz ({len(rec)} arrays)")
    else:
        print("digits not found (--data-dir or MATHNN_DATA): digits.npz not written", file=sys.stderr)
    total = sum(os.path.getsize(os.path.join(FIXTURES, f)) for f in os.listdir(FIXTURES))
    print(f"fixtures: {total / 1024:.1f} KiB")


def timed(fn, repeat):
    best_cpu, best_wall, out = float("inf"), float("inf"), None
    for _ in range(repeat):
        c0, w0 = time.process_time(), time.perf_counter()
        out = fn()
        c1, w1 = time.process_time(), time.perf_counter()
        best_cpu, best_wall = min(best_cpu, c1 - c0), min(best_wall, w1 - w0)
    return best_cpu, best_wall, out


def time_all(name, Xtr, ytr, Xte, yte, repeat, only=None):
    cases = {
        "standard_scaler": lambda: StandardScaler().fit(Xtr),
        "lr_default": lambda: fit_lr(Xtr, ytr),
        "lr_tight": lambda: fit_lr(Xtr, ytr, **TIGHT_LR),
        "svc_default": lambda: fit_svc(Xtr, ytr),
        "svc_dual": lambda: fit_svc(Xtr, ytr, dual=True),
    }
    rows = []
    for case, fn in cases.items():
        if only and case not in only:
            continue
        cpu, wall, m = timed(fn, repeat)
        row = {"data": name, "case": case, "wall_s": wall, "cpu_s": cpu}
        if hasattr(m, "predict"):
            row["n_iter"] = np.asarray(m.n_iter_).max().item()
            row["train_acc"] = float((m.predict(Xtr) == ytr).mean())
            if Xte is not None:
                row["test_acc"] = float((m.predict(Xte) == yte).mean())
        rows.append(row)
    return rows


def cmd_time(args):
    rows = []
    if args.digits:
        data_dir = args.data_dir or os.environ.get("MATHNN_DATA")
        if not data_dir:
            sys.exit("--digits needs --data-dir or MATHNN_DATA")
        X, y, tr, te = digits_split(data_dir)
        sc = StandardScaler().fit(X[tr])
        rows += time_all(
            "digits", sc.transform(X[tr]), y[tr], sc.transform(X[te]), y[te], args.repeat, args.cases
        )
    if args.features:
        X = np.load(args.features)
        y = np.load(args.labels).astype(np.int64)
        Xte = np.load(args.test_features) if args.test_features else None
        yte = np.load(args.test_labels).astype(np.int64) if args.test_labels else None
        rows += time_all(os.path.basename(args.features), X, y, Xte, yte, args.repeat, args.cases)
    meta = {
        "sklearn": sklearn.__version__,
        "numpy": np.__version__,
        "threads": os.environ.get("OPENBLAS_NUM_THREADS"),
    }
    out = {"meta": meta, "rows": rows}
    print(json.dumps(out, indent=1))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(out, f, indent=1)


def cmd_make_random(args):
    """Gaussian features; labels = argmax of a random linear score plus Gumbel noise (about 80-90 %
    linearly predictable), so the optimisers run to a nontrivial optimum."""
    rng = np.random.default_rng(args.seed)
    X = rng.standard_normal((args.n, args.d))
    W = rng.standard_normal((args.d, args.k)) / np.sqrt(args.d) * 3.0
    y = np.argmax(X @ W + rng.gumbel(size=(args.n, args.k)), axis=1).astype(np.int64)
    os.makedirs(args.out_dir, exist_ok=True)
    np.save(os.path.join(args.out_dir, "x.npy"), X)
    np.save(os.path.join(args.out_dir, "y.npy"), y)
    print(f"wrote {args.out_dir}/x.npy {X.shape} and y.npy ({np.bincount(y).tolist()})")


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    f = sub.add_parser("fixtures")
    f.add_argument("--data-dir")
    t = sub.add_parser("time")
    t.add_argument("--digits", action="store_true")
    t.add_argument("--data-dir")
    t.add_argument("--features")
    t.add_argument("--labels")
    t.add_argument("--test-features")
    t.add_argument("--test-labels")
    t.add_argument("--repeat", type=int, default=5)
    t.add_argument("--json")
    t.add_argument(
        "--cases",
        type=lambda v: v.split(","),
        help="comma-separated subset of standard_scaler,lr_default,lr_tight,svc_default,svc_dual",
    )
    r = sub.add_parser("make-random")
    r.add_argument("out_dir")
    r.add_argument("--n", type=int, default=10000)
    r.add_argument("--d", type=int, default=1000)
    r.add_argument("--k", type=int, default=10)
    r.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    {"fixtures": cmd_fixtures, "time": cmd_time, "make-random": cmd_make_random}[args.cmd](args)


if __name__ == "__main__":
    main()
