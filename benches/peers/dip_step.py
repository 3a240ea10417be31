"""PyTorch peer of mathnn's deep-image-prior bench: the wall time of one DIP iteration on the CPU.

The network is the deep image prior "skip" hourglass (Ulyanov, Vedaldi, Lempitsky, "Deep Image Prior"),
with `--channels` n (n_d = n_u = n), `--skip-channels` n_s, 5 levels, 32 input and 3 output channels:

* act = LeakyReLU(0.2); bn = BatchNorm2d (affine, eps 1e-5), always in training mode (batch statistics:
  net.train() is called and eval() never is); every conv has a bias; every k x k conv with k > 1 is
  preceded by ReflectionPad2d((k-1)//2) and has padding 0.
* Level i (i = 0..4) on x with cin channels (cin = 32 at level 0, n below):
    s = act(bn(conv1x1(x -> n_s)))                      (the skip branch; absent when n_s = 0)
    d = act(bn(conv3x3 stride 2 (x -> n))); d = act(bn(conv3x3(d -> n)))
    d = level_{i+1}(d)                                   (only for i < 4)
    d = Upsample(scale 2, bilinear align_corners=False | nearest)(d)
    c = bn(cat([s, d], 1))                               (BN only, n_s + n channels)
    c = act(bn(conv3x3(c -> n))); c = act(bn(conv1x1(c -> n)))
* Output: sigmoid(conv1x1(level_0(z) -> 3)).

Trainable parameters (asserted against the formula in `expected_params`): 152,199 for n = 32, n_s = 4;
572,455 for n = 64; 2,217,831 for n = 128.

One iteration (what is timed; full batch, one 3 x S x S image, S = `--side`, a multiple of 32):
z = torch.rand(1, 32, S, S) * 0.1 fixed (torch.manual_seed(--seed)), target x0 = torch.rand(1, 3, S, S);
input = z + randn_like(z) / 30; out = net(input); loss = mse_loss(out, x0); zero_grad; backward;
torch.optim.Adam(lr=0.01, default betas, no weight decay) step; ema = 0.99 * ema + 0.01 * out.detach()
(ema starts as the first output); psnr = -10 * log10(mse(out.detach(), x0)).item(), as the Rust side
computes a PSNR every iteration. Weights use PyTorch's default initialisation; the cost does not depend
on the values.

Timing: `--warmup` untimed iterations, then `--iters` iterations each timed on its own with
time.perf_counter; reported are the median, mean and minimum seconds per iteration, and the load average
(os.getloadavg) taken just before the run, so that a busy machine shows in the record.

Run (torch is a benchmark peer only, never a project dependency; it lives in its own venv):

    python3 -m venv ~/torch-peer && ~/torch-peer/bin/pip install torch numpy
    ~/torch-peer/bin/python benches/peers/dip_step.py --threads 1
    ~/torch-peer/bin/python benches/peers/dip_step.py --channels 128 --upsample nearest --iters 10

Prints one JSON line on stdout ("benchmark": "dip_step", "s_per_iter_median", ...); notes go to stderr.
"""
import argparse
import json
import math
import os
import statistics
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

LEVELS = 5
IN_CHANNELS = 32
OUT_CHANNELS = 3


def expected_params(n, n_s, in_channels=IN_CHANNELS, out_channels=OUT_CHANNELS, levels=LEVELS):
    """Trainable parameters of the skip network, by formula (conv weight + bias, BN gamma + beta).

    Per level with cin input channels:
      skip conv1x1 cin*n_s + n_s, its BN 2*n_s        (nothing when n_s = 0)
      down conv3x3 9*cin*n + n, BN 2n;  conv3x3 9*n*n + n, BN 2n
      BN on the concatenation 2*(n_s + n)
      up conv3x3 9*(n_s + n)*n + n, BN 2n;  conv1x1 n*n + n, BN 2n
    plus the output conv1x1 n*out + out. For n = 32, n_s = 4: 5 * 30,420 + 99 = 152,199.
    """
    total = 0
    for i in range(levels):
        cin = in_channels if i == 0 else n
        total += cin * n_s + n_s + 2 * n_s
        total += 9 * cin * n + n + 2 * n
        total += 9 * n * n + n + 2 * n
        total += 2 * (n_s + n)
        total += 9 * (n_s + n) * n + n + 2 * n
        total += n * n + n + 2 * n
    return total + n * out_channels + out_channels


def conv(cin, cout, k, stride=1):
    """Biased conv; for k > 1 preceded by reflection padding of (k-1)//2 (and conv padding 0)."""
    c = nn.Conv2d(cin, cout, k, stride=stride, padding=0, bias=True)
    return nn.Sequential(nn.ReflectionPad2d((k - 1) // 2), c) if k > 1 else c


def conv_bn_act(cin, cout, k, stride=1):
    return nn.Sequential(conv(cin, cout, k, stride), nn.BatchNorm2d(cout, eps=1e-5), nn.LeakyReLU(0.2))


class Level(nn.Module):
    def __init__(self, i, cin, n, n_s, upsample, levels=LEVELS):
        super().__init__()
        self.skip = conv_bn_act(cin, n_s, 1) if n_s > 0 else None
        self.down = nn.Sequential(conv_bn_act(cin, n, 3, stride=2), conv_bn_act(n, n, 3))
        self.deeper = Level(i + 1, n, n, n_s, upsample, levels) if i < levels - 1 else None
        if upsample == "bilinear":
            self.up = nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False)
        else:
            self.up = nn.Upsample(scale_factor=2, mode="nearest")
        self.bn_cat = nn.BatchNorm2d(n_s + n, eps=1e-5)
        self.after = nn.Sequential(conv_bn_act(n_s + n, n, 3), conv_bn_act(n, n, 1))

    def forward(self, x):
        d = self.down(x)
        if self.deeper is not None:
            d = self.deeper(d)
        d = self.up(d)
        c = d if self.skip is None else torch.cat([self.skip(x), d], dim=1)
        return self.after(self.bn_cat(c))


class SkipNet(nn.Module):
    def __init__(self, n, n_s, upsample, in_channels=IN_CHANNELS, out_channels=OUT_CHANNELS):
        super().__init__()
        self.body = Level(0, in_channels, n, n_s, upsample)
        self.head = nn.Conv2d(n, out_channels, 1, bias=True)

    def forward(self, z):
        return torch.sigmoid(self.head(self.body(z)))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--side", type=int, default=128, help="image side S (a multiple of 2**5 = 32)")
    ap.add_argument("--channels", type=int, default=32, help="n = n_d = n_u")
    ap.add_argument("--skip-channels", type=int, default=4, help="n_s (0: no skip branch)")
    ap.add_argument("--threads", type=int, default=1, help="torch.set_num_threads (interop threads: 1)")
    ap.add_argument("--iters", type=int, default=30, help="timed iterations")
    ap.add_argument("--warmup", type=int, default=5, help="untimed iterations before timing")
    ap.add_argument("--seed", type=int, default=0, help="torch.manual_seed for z, x0 and the weights")
    ap.add_argument("--upsample", choices=["bilinear", "nearest"], default="bilinear")
    args = ap.parse_args()
    if min(args.threads, args.iters, args.channels) < 1 or args.warmup < 0 or args.skip_channels < 0:
        ap.error("--threads, --iters and --channels must be positive, --warmup and --skip-channels "
                 "non-negative")
    if args.side < 32 or args.side % 32:
        ap.error("--side must be a positive multiple of 32 (five stride-2 levels)")

    # Before any parallel work, or set_num_interop_threads raises.
    torch.set_num_interop_threads(1)
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}; intra-op threads {torch.get_num_threads()}, inter-op "
          f"{torch.get_num_interop_threads()}; mkldnn available {torch.backends.mkldnn.is_available()}, "
          f"enabled {torch.backends.mkldnn.enabled}; cpu capability {torch.backends.cpu.get_cpu_capability()}",
          file=sys.stderr)

    torch.manual_seed(args.seed)
    n, n_s, s = args.channels, args.skip_channels, args.side
    net = SkipNet(n, n_s, args.upsample)
    params = sum(p.numel() for p in net.parameters())
    expected = expected_params(n, n_s)
    assert params == expected, f"skip net: {params} parameters, the formula gives {expected}"
    net.train()
    z = torch.rand(1, IN_CHANNELS, s, s) * 0.1
    x0 = torch.rand(1, OUT_CHANNELS, s, s)
    opt = torch.optim.Adam(net.parameters(), lr=0.01)
    state = {"ema": None, "psnr": None}

    def step():
        inp = z + torch.randn_like(z) * (1.0 / 30.0)
        out = net(inp)
        loss = F.mse_loss(out, x0)
        opt.zero_grad()
        loss.backward()
        opt.step()
        o = out.detach()
        state["ema"] = o.clone() if state["ema"] is None else state["ema"].mul_(0.99).add_(o, alpha=0.01)
        state["psnr"] = (-10.0 * torch.log10(F.mse_loss(o, x0))).item()

    load = os.getloadavg()
    for _ in range(args.warmup):
        step()
    times = []
    for _ in range(args.iters):
        t = time.perf_counter()
        step()
        times.append(time.perf_counter() - t)
    print(json.dumps({
        "benchmark": "dip_step",
        "side": s,
        "channels": n,
        "skip_channels": n_s,
        "upsample": args.upsample,
        "threads": args.threads,
        "params": params,
        "iters": args.iters,
        "warmup": args.warmup,
        "s_per_iter_median": round(statistics.median(times), 6),
        "s_per_iter_mean": round(statistics.mean(times), 6),
        "s_per_iter_min": round(min(times), 6),
        "psnr_last": round(state["psnr"], 4) if math.isfinite(state["psnr"]) else None,
        "torch": torch.__version__,
        "loadavg": [round(x, 2) for x in load],
    }), flush=True)


if __name__ == "__main__":
    main()
