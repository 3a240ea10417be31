"""mathnn vs PyTorch, one training step (batch 64), interleaved: A B A B A B for each model and thread count.

A = the criterion bench `cargo bench -p benches --bench train_step -- --noplot 'train_step_batch64/<model>$'`
    with RAYON_NUM_THREADS=<threads>; read back the median point estimate (ns) from
    target/criterion/train_step_batch64/<model>/new/estimates.json.
B = the PyTorch peer `<torch-python> benches/peers/train_step.py --model <model> --threads <threads>`
    (one JSON line; its "ms_per_step_median").

Rounds alternate A and B so that both sides see the same drift in machine load; the 1/5/15-minute load
average is recorded before every run. Prints a table of mathnn / PyTorch ratios per round (> 1: mathnn is
slower) with their median, then one JSON summary line.

Usage (from anywhere; commands run in the repository root):
    python3 benches/peers/compare_train_step.py --models lenet,mlp --threads 1,2 --rounds 3
Needs only the standard library here; the peer needs torch in its own venv (see train_step.py):
    python3 -m venv ~/torch-peer && ~/torch-peer/bin/pip install torch numpy
Models the bench does not (yet) define are reported as errors, not with stale numbers: an estimates.json
not rewritten by this run is refused.
"""
import argparse
import json
import os
import shlex
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PEER = os.path.join("benches", "peers", "train_step.py")
GROUP = "train_step_batch64"
MODELS = ["lenet", "mlp", "vgg-small", "resnet-small"]


def criterion_ns(root, *path):
    """Median point estimate (ns) of a criterion benchmark, and the file's mtime; (None, None) if absent."""
    f = os.path.join(root, *path, "new", "estimates.json")
    if not os.path.exists(f):
        return None, None
    with open(f) as fh:
        return json.load(fh)["median"]["point_estimate"], os.path.getmtime(f)


def bench_cmd(model):
    return ["cargo", "bench", "-p", "benches", "--bench", "train_step", "--", "--noplot",
            f"{GROUP}/{model}$"]


def peer_cmd(a, model, threads):
    return [os.path.expanduser(a.torch_python), PEER, "--model", model, "--threads", str(threads),
            "--steps", str(a.peer_steps), "--reps", str(a.peer_reps), "--resnet-bn", a.resnet_bn,
            "--adam", a.peer_adam]


def run_mathnn(a, model, threads):
    """One criterion run; returns ms per step."""
    started = time.time()
    env = {**os.environ, "RAYON_NUM_THREADS": str(threads)}
    r = subprocess.run(bench_cmd(model), cwd=ROOT, env=env, capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(f"cargo bench failed ({r.returncode}):\n{r.stderr[-3000:]}")
    ns, mtime = criterion_ns(a.criterion, GROUP, model)
    if ns is None or mtime < started - 1:
        raise RuntimeError(f"criterion wrote no new estimate for {GROUP}/{model}: "
                           f"does benches/benches/train_step.rs define it?")
    return ns / 1e6


def run_peer(a, model, threads):
    """One peer run; returns (ms per step, the peer's JSON record)."""
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    r = subprocess.run(peer_cmd(a, model, threads), cwd=ROOT, env=env, capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(f"PyTorch peer failed ({r.returncode}):\n{r.stderr[-3000:]}")
    rec = json.loads([line for line in r.stdout.splitlines() if line.startswith("{")][-1])
    return rec["ms_per_step_median"], rec


def csv_list(s, cast=str):
    return [cast(x) for x in s.split(",") if x.strip()]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", default="lenet,mlp,vgg-small,resnet-small",
                    help=f"comma-separated, from {','.join(MODELS)} (default: lenet,mlp, the models the "
                         "bench defines today)")
    ap.add_argument("--threads", default="1,2", help="comma-separated thread counts (default 1,2)")
    ap.add_argument("--rounds", type=int, default=3, help="A/B rounds per model and thread count")
    ap.add_argument("--no-build", action="store_true",
                    help="skip the up-front `cargo bench --no-run` (the bench is already built)")
    ap.add_argument("--torch-python", default="~/torch-peer/bin/python",
                    help="python of the venv that has torch (default ~/torch-peer/bin/python)")
    ap.add_argument("--criterion", default=None,
                    help="criterion output folder (default $CARGO_TARGET_DIR/criterion or target/criterion)")
    ap.add_argument("--peer-steps", type=int, default=50, help="--steps of the peer")
    ap.add_argument("--peer-reps", type=int, default=5, help="--reps of the peer")
    ap.add_argument("--resnet-bn", choices=["on", "off"], default="on",
                    help="peer ResNet-small variant; the bench builds `ModelConfig::new`, i.e. on")
    ap.add_argument("--peer-adam", choices=["default", "for-loop", "foreach", "fused"], default="default",
                    help="Adam implementation of the peer (default: torch's choice, the for-loop one on CPU)")
    ap.add_argument("--dry-run", action="store_true", help="print the commands and exit")
    a = ap.parse_args()
    models, threads = csv_list(a.models), csv_list(a.threads, int)
    bad = [m for m in models if m not in MODELS]
    if bad or not models or not threads or min(threads) < 1 or a.rounds < 1:
        ap.error(f"bad --models/--threads/--rounds (models are {', '.join(MODELS)})")
    if a.criterion is None:
        target = os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))
        a.criterion = os.path.join(target, "criterion")

    if a.dry_run:
        print("cd", ROOT)
        if not a.no_build:
            print(shlex.join(["cargo", "bench", "-p", "benches", "--bench", "train_step", "--no-run"]))
        for m in models:
            for t in threads:
                print(f"RAYON_NUM_THREADS={t}", shlex.join(bench_cmd(m)))
                print(f"OMP_NUM_THREADS={t}", shlex.join(peer_cmd(a, m, t)))
        return

    if not a.no_build:
        print("building the bench (cargo bench --no-run) ...", file=sys.stderr)
        subprocess.run(["cargo", "bench", "-p", "benches", "--bench", "train_step", "--no-run"],
                       cwd=ROOT, check=True)
    print(f"cores {os.cpu_count()}, load average at start {os.getloadavg()}", file=sys.stderr)

    results, torch_version, adam_impl = [], None, None
    for m in models:
        for t in threads:
            rounds = []
            for i in range(a.rounds):
                la = [round(x, 2) for x in os.getloadavg()]
                ms_a = run_mathnn(a, m, t)
                lb = [round(x, 2) for x in os.getloadavg()]
                ms_b, rec = run_peer(a, m, t)
                torch_version, adam_impl = rec.get("torch"), rec.get("adam_impl")
                rounds.append({"mathnn_ms": round(ms_a, 4), "torch_ms": ms_b,
                               "ratio": round(ms_a / ms_b, 4),
                               "load_before_mathnn": la, "load_before_torch": lb,
                               "torch_cpu_ms": rec.get("cpu_ms_per_step")})
                print(f"{m} threads={t} round {i + 1}: mathnn {ms_a:.3f} ms, PyTorch {ms_b:.3f} ms, "
                      f"ratio {ms_a / ms_b:.3f} (load {la[0]:.2f} / {lb[0]:.2f})", file=sys.stderr)
            results.append({
                "model": m, "threads": t, "rounds": rounds,
                "median_ratio": round(statistics.median(r["ratio"] for r in rounds), 4),
                "mathnn_ms_median": round(statistics.median(r["mathnn_ms"] for r in rounds), 4),
                "torch_ms_median": round(statistics.median(r["torch_ms"] for r in rounds), 4),
            })

    print(f"\nload average at end {os.getloadavg()}; torch {torch_version}, Adam: {adam_impl}")
    print("ratio = mathnn ms/step / PyTorch ms/step (> 1: mathnn slower); load = 1-min load average "
          "before the mathnn | PyTorch run\n")
    print("| model | threads | round | mathnn (ms) | PyTorch (ms) | ratio | load |")
    print("|---|---|---|---|---|---|---|")
    for r in results:
        for i, x in enumerate(r["rounds"]):
            print(f"| {r['model']} | {r['threads']} | {i + 1} | {x['mathnn_ms']:.3f} | {x['torch_ms']:.3f} "
                  f"| {x['ratio']:.3f} | {x['load_before_mathnn'][0]:.2f} / {x['load_before_torch'][0]:.2f} |")
        print(f"| **{r['model']}** | **{r['threads']}** | median | {r['mathnn_ms_median']:.3f} "
              f"| {r['torch_ms_median']:.3f} | **{r['median_ratio']:.3f}** | |")
    print()
    print(json.dumps({"benchmark": GROUP, "cores": os.cpu_count(), "torch": torch_version,
                      "adam_impl": adam_impl, "resnet_bn": a.resnet_bn, "results": results}))


if __name__ == "__main__":
    try:
        main()
    except RuntimeError as e:
        sys.exit(f"error: {e}")
