"""PyTorch peer of benches/benches/train_step.rs: one training step of the four nn-core classifiers.

Mirrors, layer for layer and parameter for parameter, crates/nn-core/src/models/ on 1x28x28 inputs and
10 classes:

* mlp          -- mlp.rs: flatten, 784-512-512-10, ReLU (the default widths of `ModelConfig::new`).
* lenet        -- lenet.rs: conv5x5*20 -> ReLU -> maxpool2 -> conv5x5*50 -> ReLU -> maxpool2 -> fc500 ->
                  ReLU -> fc10 (valid convolutions, floor-mode pools).
* vgg-small    -- vgg.rs: 3 blocks of (conv3x3 pad1 -> ReLU) x2 -> maxpool2, widths 16, 32, 64, then
                  fc128 -> ReLU -> fc10 (28 -> 14 -> 7 -> 3, so fc1 sees 64*3*3 = 576 inputs).
* resnet-small -- resnet.rs: conv3x3*16 stem [-> BN] -> ReLU, three stages of one basic block (16, 32, 64
                  channels, strides 1, 2, 2; 1x1 projection shortcut where the shape changes), global
                  average pool, fc10. `ModelConfig::new(ModelKind::ResnetSmall, ..)` builds it WITH batch norm
                  (`default_batch_norm() == true` in mod.rs: bias-free convs, BN eps 1e-5, momentum 0.1),
                  which is what the criterion bench times; `--resnet-bn off` gives the biased-conv variant.

One step, as in the Rust bench: forward in training mode on a fixed random batch (64,1,28,28) float32
uniform [0,1) with labels i % 10, mean softmax cross-entropy, zero_grad(set_to_none=True), backward,
torch.optim.Adam(lr=1e-3) step (betas 0.9/0.999, eps 1e-8 as nn-core's `OptimizerConfig::adam`). By default
Adam chooses its own implementation (for-loop, foreach or fused; for CPU tensors torch 2.x picks the
for-loop one); `--adam` forces one. The one that actually ran is detected and printed as "adam_impl".
Weights use PyTorch's default initialisation (nn-core seeds its own); the step cost does not depend on
the values.

Timing: `--warmup` untimed steps, then `--reps` repetitions of `--steps` steps each; per repetition
wall time (time.perf_counter) / steps and process CPU time (time.process_time, all threads) / steps.
Reported: the median wall ms/step, every repetition's wall ms/step, and the median CPU ms/step.

Run (torch is a benchmark peer only, never a project dependency; it lives in its own venv):

    python3 -m venv ~/torch-peer && ~/torch-peer/bin/pip install torch numpy
    ~/torch-peer/bin/python benches/peers/train_step.py --model all --threads 1
    ~/torch-peer/bin/python benches/peers/train_step.py --model lenet --threads 2 --profile

Prints one JSON line per model on stdout (the fields benches/peers/compare_train_step.py reads:
"model", "params", "ms_per_step_median", ...); notes and the optional profile go to stderr.
"""
import argparse
import json
import statistics
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

MODELS = ["mlp", "lenet", "vgg-small", "resnet-small"]

# Trainable parameter counts of nn-core's models on 1x28x28 inputs, 10 classes (batch-norm running
# statistics excluded, as in nn_core::models::parameter_count), worked out by hand from the Rust code:
#
# mlp:   784*512+512 = 401,920;  512*512+512 = 262,656;  512*10+10 = 5,130          -> 669,706
# lenet: conv1 1*20*25+20 = 520;  conv2 20*50*25+50 = 25,050;
#        28 -conv5-> 24 -pool-> 12 -conv5-> 8 -pool-> 4, fc1 50*4*4*500+500 = 400,500;
#        fc2 500*10+10 = 5,010                                                        -> 431,080
# vgg-small: conv weights 9*(1*16 + 16*16 + 16*32 + 32*32 + 32*64 + 64*64) = 9*7,952 = 71,568;
#        conv biases 16+16+32+32+64+64 = 224;  28 -> 14 -> 7 -> 3 (floor), fc1 64*3*3*128+128 = 73,856;
#        fc2 128*10+10 = 1,290                                                        -> 146,938
# resnet-small: conv weights 3x3: 9*(1*16 [stem] + 16*16*2 [stage1 a,b] + 16*32 + 32*32 [stage2 a,b]
#        + 32*64 + 64*64 [stage3 a,b]) = 9*8,208 = 73,872;  1x1 shortcuts 16*32 + 32*64 = 2,560
#        -> 76,432 conv weights;  fc 64*10+10 = 650.
#        with batch norm (default): bias-free convs, BN gamma+beta over the 11 channel sets of the 8 convs:
#          2*(16 [stem] + 16+16 [stage1] + 32+32+32 [stage2 a,b,shortcut] + 64+64+64 [stage3]) = 2*336
#          = 672                                                                      -> 77,754
#        without batch norm: conv biases 336 (the same channel sets)                  -> 77,418
EXPECTED_PARAMS = {
    "mlp": 669_706,
    "lenet": 431_080,
    "vgg-small": 146_938,
    ("resnet-small", True): 77_754,
    ("resnet-small", False): 77_418,
}


def mlp(widths=(512, 512), in_features=784, num_classes=10):
    layers, fan_in = [nn.Flatten()], in_features
    for w in widths:
        layers += [nn.Linear(fan_in, w), nn.ReLU()]
        fan_in = w
    return nn.Sequential(*layers, nn.Linear(fan_in, num_classes))


def lenet(in_channels=1, side=28, num_classes=10):
    s = ((side - 4) // 2 - 4) // 2
    return nn.Sequential(
        nn.Conv2d(in_channels, 20, 5), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(20, 50, 5), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(50 * s * s, 500), nn.ReLU(), nn.Linear(500, num_classes),
    )


def vgg_small(in_channels=1, side=28, num_classes=10):
    layers, c_in = [], in_channels
    for c in (16, 32, 64):
        layers += [nn.Conv2d(c_in, c, 3, padding=1), nn.ReLU(),
                   nn.Conv2d(c, c, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2)]
        c_in = c
    s = side // 8
    return nn.Sequential(*layers, nn.Flatten(), nn.Linear(c_in * s * s, 128), nn.ReLU(),
                         nn.Linear(128, num_classes))


def conv_bn(c_in, c_out, k, stride, bn):
    """resnet.rs `ConvBn`: conv (padding k/2) then BN, or a biased conv without BN."""
    conv = nn.Conv2d(c_in, c_out, k, stride=stride, padding=k // 2, bias=not bn)
    return nn.Sequential(conv, nn.BatchNorm2d(c_out, eps=1e-5, momentum=0.1)) if bn else conv


class BasicBlock(nn.Module):
    def __init__(self, c_in, c_out, stride, bn):
        super().__init__()
        self.a = conv_bn(c_in, c_out, 3, stride, bn)
        self.b = conv_bn(c_out, c_out, 3, 1, bn)
        self.shortcut = conv_bn(c_in, c_out, 1, stride, bn) if stride != 1 or c_in != c_out else None

    def forward(self, x):
        h = self.b(F.relu(self.a(x)))
        return F.relu(h + (x if self.shortcut is None else self.shortcut(x)))


class ResNetSmall(nn.Module):
    def __init__(self, in_channels=1, num_classes=10, bn=True):
        super().__init__()
        self.stem = conv_bn(in_channels, 16, 3, 1, bn)
        stages, c_in = [], 16
        for s, c in enumerate((16, 32, 64)):
            stages.append(BasicBlock(c_in, c, 1 if s == 0 else 2, bn))
            c_in = c
        self.stages = nn.Sequential(*stages)
        self.fc = nn.Linear(c_in, num_classes)

    def forward(self, x):
        h = self.stages(F.relu(self.stem(x)))
        return self.fc(h.mean((2, 3)))


def build(name, resnet_bn):
    if name == "mlp":
        return mlp(), EXPECTED_PARAMS["mlp"]
    if name == "lenet":
        return lenet(), EXPECTED_PARAMS["lenet"]
    if name == "vgg-small":
        return vgg_small(), EXPECTED_PARAMS["vgg-small"]
    if name == "resnet-small":
        return ResNetSmall(bn=resnet_bn), EXPECTED_PARAMS[("resnet-small", resnet_bn)]
    raise ValueError(name)


def detect_adam_impl(step):
    """Runs `step()` once with torch.optim.adam's three kernels wrapped; returns the ones called."""
    import torch.optim.adam as adam_mod
    kinds = {"_single_tensor_adam": "for-loop (_single_tensor_adam)",
             "_multi_tensor_adam": "foreach (_multi_tensor_adam)",
             "_fused_adam": "fused (_fused_adam)"}
    used, saved = [], {}
    for name, label in kinds.items():
        fn = getattr(adam_mod, name, None)
        if fn is None:
            continue
        saved[name] = fn

        def wrapper(*a, _fn=fn, _label=label, **kw):
            used.append(_label)
            return _fn(*a, **kw)
        setattr(adam_mod, name, wrapper)
    try:
        step()
    finally:
        for name, fn in saved.items():
            setattr(adam_mod, name, fn)
    return ", ".join(sorted(set(used))) or "unknown (no known kernel was called)"


def profile_step(step, model_name):
    """One profiled step; prints the top ops by self CPU time to stderr and returns the conv op names."""
    from torch.profiler import ProfilerActivity, profile
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        step()
    events = prof.key_averages()
    print(f"--- {model_name}: one profiled step, top ops by self CPU time ---", file=sys.stderr)
    print(events.table(sort_by="self_cpu_time_total", row_limit=15), file=sys.stderr)
    return sorted({e.key for e in events if "conv" in e.key.lower()})


def bench(name, args):
    torch.manual_seed(0)
    model, expected = build(name, args.resnet_bn == "on")
    params = sum(p.numel() for p in model.parameters() if p.requires_grad)
    assert params == expected, f"{name}: {params} parameters, nn-core has {expected}"
    model.train()
    x = torch.rand(args.batch, 1, 28, 28, dtype=torch.float32)
    y = torch.arange(args.batch, dtype=torch.long) % 10
    impl = {"default": {}, "for-loop": {"foreach": False}, "foreach": {"foreach": True},
            "fused": {"fused": True}}[args.adam]
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, **impl)

    def step():
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    adam_impl = detect_adam_impl(step)  # counts as the first warm-up step
    for _ in range(max(args.warmup - 1, 0)):
        step()
    wall, cpu = [], []
    for _ in range(args.reps):
        t, c = time.perf_counter(), time.process_time()
        for _ in range(args.steps):
            step()
        cpu.append((time.process_time() - c) / args.steps * 1e3)
        wall.append((time.perf_counter() - t) / args.steps * 1e3)
    record = {
        "model": name,
        "threads": args.threads,
        "batch": args.batch,
        "params": params,
        "ms_per_step_median": round(statistics.median(wall), 4),
        "ms_per_step_all": [round(w, 4) for w in wall],
        "cpu_ms_per_step": round(statistics.median(cpu), 4),
        "torch": torch.__version__,
        "steps": args.steps,
        "reps": args.reps,
        "adam_impl": adam_impl,
    }
    if name == "resnet-small":
        record["resnet_bn"] = args.resnet_bn
    if args.profile:
        record["conv_ops"] = profile_step(step, name)
    return record


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", choices=MODELS + ["all"], default="all")
    ap.add_argument("--threads", type=int, default=1, help="torch.set_num_threads (interop threads: 1)")
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--steps", type=int, default=50, help="steps per timed repetition")
    ap.add_argument("--warmup", type=int, default=5, help="untimed steps before timing")
    ap.add_argument("--reps", type=int, default=5, help="timed repetitions (the median is reported)")
    ap.add_argument("--resnet-bn", choices=["on", "off"], default="on",
                    help="ResNet-small with batch norm (nn-core's default) or biased convs")
    ap.add_argument("--adam", choices=["default", "for-loop", "foreach", "fused"], default="default",
                    help="Adam implementation: torch's own choice (default; on CPU the for-loop one) or forced")
    ap.add_argument("--profile", action="store_true",
                    help="after timing, profile one step per model (top ops to stderr, conv ops to JSON)")
    args = ap.parse_args()
    if min(args.threads, args.batch, args.steps, args.reps) < 1 or args.warmup < 0:
        ap.error("--threads, --batch, --steps and --reps must be positive, --warmup non-negative")

    # Before any parallel work, or set_num_interop_threads raises.
    torch.set_num_interop_threads(1)
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}; intra-op threads {torch.get_num_threads()}, inter-op "
          f"{torch.get_num_interop_threads()}; mkldnn available {torch.backends.mkldnn.is_available()}, "
          f"enabled {torch.backends.mkldnn.enabled}; cpu capability {torch.backends.cpu.get_cpu_capability()}",
          file=sys.stderr)
    for name in MODELS if args.model == "all" else [args.model]:
        print(json.dumps(bench(name, args)), flush=True)


if __name__ == "__main__":
    main()
