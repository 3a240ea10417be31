"""mathnn's four classifiers as PyTorch modules whose state-dict names are mathnn's own, so a checkpoint
moves between the two without renaming (issue 19; docs/interop.md).

    from mathnn_torch import load, save
    model, config = load("lenet.torch.safetensors")   # written by `mathnn export --torch`
    save(model, config, "back.safetensors")            # read back by `mathnn import --torch`

The file is a safetensors state dict (f32, NCHW convolution kernels and (out, in) linear weights — the
layouts of both frameworks) whose metadata entry `mathnn_model` holds the model's JSON configuration
(`kind`, `input`, `mlp_widths`, `batch_norm`), exactly as mathnn's `config.json` writes it. Inputs are
images in [0, 1] (N × C × H × W), no normalisation, as mathnn trains them.

Command line (needs torch and safetensors; numpy for the data):

    python benches/peers/mathnn_torch.py eval FILE.safetensors [--data-dir DIR] [--split test]
        accuracy, confusion matrix and the number of images per predicted class on MNIST or
        Fashion-MNIST (the data set named in the metadata), as one JSON line — to compare with
        `mathnn eval --checkpoint DIR`.
    python benches/peers/mathnn_torch.py roundtrip FILE.safetensors OUT.safetensors
        load, then save the PyTorch module's own state dict (what a PyTorch user would hand back).
"""
import argparse
import gzip
import json
import os
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from safetensors import safe_open


class Mlp(nn.Module):
    """Flatten, then `fc1 … fcK` with ReLU, then `out`."""

    def __init__(self, spec, widths):
        super().__init__()
        fan_in = spec["channels"] * spec["height"] * spec["width"]
        self.hidden = []
        for i, w in enumerate(widths):
            layer = nn.Linear(fan_in, w)
            self.add_module(f"fc{i + 1}", layer)
            self.hidden.append(layer)
            fan_in = w
        self.out = nn.Linear(fan_in, spec["num_classes"])

    def forward(self, x):
        h = x.flatten(1)
        for layer in self.hidden:
            h = F.relu(layer(h))
        return self.out(h)


class LeNet(nn.Module):
    """conv 5×5·20, ReLU, max-pool 2, conv 5×5·50, ReLU, max-pool 2, fc 500, ReLU, fc (valid convs,
    floor pooling)."""

    def __init__(self, spec):
        super().__init__()
        side = lambda s: ((s - 4) // 2 - 4) // 2
        self.conv1 = nn.Conv2d(spec["channels"], 20, 5)
        self.conv2 = nn.Conv2d(20, 50, 5)
        self.fc1 = nn.Linear(50 * side(spec["height"]) * side(spec["width"]), 500)
        self.fc2 = nn.Linear(500, spec["num_classes"])

    def forward(self, x):
        h = F.max_pool2d(F.relu(self.conv1(x)), 2)
        h = F.max_pool2d(F.relu(self.conv2(h)), 2)
        return self.fc2(F.relu(self.fc1(h.flatten(1))))


class VggBlock(nn.Module):
    def __init__(self, c_in, c):
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c, 3, padding=1)
        self.conv2 = nn.Conv2d(c, c, 3, padding=1)

    def forward(self, x):
        return F.max_pool2d(F.relu(self.conv2(F.relu(self.conv1(x)))), 2)


class VggSmall(nn.Module):
    """Three blocks (16, 32, 64 channels) of two 3×3 convolutions and a 2×2 max-pool; fc 128; fc."""

    def __init__(self, spec):
        super().__init__()
        c_in = spec["channels"]
        for b, c in enumerate([16, 32, 64]):
            self.add_module(f"block{b + 1}", VggBlock(c_in, c))
            c_in = c
        self.fc1 = nn.Linear(c_in * (spec["height"] // 8) * (spec["width"] // 8), 128)
        self.fc2 = nn.Linear(128, spec["num_classes"])

    def forward(self, x):
        h = self.block3(self.block2(self.block1(x)))
        return self.fc2(F.relu(self.fc1(h.flatten(1))))


class ConvBn(nn.Module):
    """`conv` (k×k, padding k/2, no bias when followed by batch norm) and `bn` (ε 1e-5)."""

    def __init__(self, c_in, c_out, k, stride, batch_norm):
        super().__init__()
        self.conv = nn.Conv2d(c_in, c_out, k, stride=stride, padding=k // 2, bias=not batch_norm)
        self.bn = nn.BatchNorm2d(c_out, eps=1e-5, momentum=0.1) if batch_norm else None

    def forward(self, x):
        h = self.conv(x)
        return self.bn(h) if self.bn is not None else h


class BasicBlock(nn.Module):
    def __init__(self, c_in, c_out, stride, batch_norm):
        super().__init__()
        self.a = ConvBn(c_in, c_out, 3, stride, batch_norm)
        self.b = ConvBn(c_out, c_out, 3, 1, batch_norm)
        self.shortcut = (ConvBn(c_in, c_out, 1, stride, batch_norm)
                         if stride != 1 or c_in != c_out else None)

    def forward(self, x):
        h = self.b(F.relu(self.a(x)))
        skip = self.shortcut(x) if self.shortcut is not None else x
        return F.relu(h + skip)


class ResNetSmall(nn.Module):
    """3×3 stem (16), three stages of one basic block (16, 32/2, 64/2), global average pool, fc."""

    def __init__(self, spec, batch_norm):
        super().__init__()
        self.stem = ConvBn(spec["channels"], 16, 3, 1, batch_norm)
        c_in = 16
        for s, c in enumerate([16, 32, 64]):
            self.add_module(f"stage{s + 1}", BasicBlock(c_in, c, 1 if s == 0 else 2, batch_norm))
            c_in = c
        self.fc = nn.Linear(c_in, spec["num_classes"])

    def forward(self, x):
        h = F.relu(self.stem(x))
        h = self.stage3(self.stage2(self.stage1(h)))
        return self.fc(h.mean(dim=(2, 3)))


def build(config):
    """The module for mathnn's model configuration (the JSON of `config.json`'s `model`)."""
    spec, kind = config["input"], config["kind"]
    if kind == "mlp":
        return Mlp(spec, config.get("mlp_widths", [512, 512]))
    if kind == "lenet":
        return LeNet(spec)
    if kind == "vgg-small":
        return VggSmall(spec)
    if kind == "resnet-small":
        return ResNetSmall(spec, config.get("batch_norm", True))
    raise ValueError(f"unknown mathnn model kind {kind!r}")


def load(path):
    """(module in eval mode, configuration) from a file `mathnn export --torch` wrote."""
    with safe_open(path, framework="pt") as f:
        meta = f.metadata() or {}
    if "mathnn_model" not in meta:
        raise ValueError(f"{path}: no `mathnn_model` metadata; was it written by `mathnn export --torch`?")
    config = json.loads(meta["mathnn_model"])
    model = build(config)
    model.load_state_dict(load_file(path), strict=True)
    return model.eval(), config


def save(model, config, path, dataset=None):
    """The module's state dict with the configuration (and the data set's name, when given) as metadata,
    which `mathnn import --torch` reads."""
    tensors = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
    meta = {"mathnn_model": json.dumps(config)}
    if dataset:
        meta["mathnn_dataset"] = dataset
    save_file(tensors, path, metadata=meta)


def read_idx(path):
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        data = f.read()
    magic = int.from_bytes(data[0:4], "big")
    dims = [int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(magic & 0xFF)]
    body = torch.frombuffer(bytearray(data[4 + 4 * len(dims):]), dtype=torch.uint8)
    return body.reshape(dims)


def find_split(data_dir, dataset, split):
    stem = "t10k" if split == "test" else "train"
    folder = os.path.join(data_dir, dataset)
    out = []
    for kind in ["images-idx3-ubyte", "labels-idx1-ubyte"]:
        for ext in ["", ".gz"]:
            p = os.path.join(folder, f"{stem}-{kind}{ext}")
            if os.path.exists(p):
                out.append(p)
                break
        else:
            sys.exit(f"{folder}: no {stem}-{kind}[.gz]")
    return out


def evaluate(args):
    model, config = load(args.file)
    with safe_open(args.file, framework="pt") as f:
        dataset = (f.metadata() or {}).get("mathnn_dataset", "mnist")
    data_dir = args.data_dir or os.environ.get("MATHNN_DATA") or "../shared/data"
    images, labels = (read_idx(p) for p in find_split(data_dir, dataset, args.split))
    x = images.float().div(255.0).unsqueeze(1)
    k = config["input"]["num_classes"]
    confusion = torch.zeros(k, k, dtype=torch.int64)
    with torch.no_grad():
        for start in range(0, len(x), 1000):
            pred = model(x[start:start + 1000]).argmax(dim=1)
            for t, p in zip(labels[start:start + 1000].tolist(), pred.tolist()):
                confusion[t, p] += 1
    correct = int(confusion.diag().sum())
    print(json.dumps({"file": args.file, "dataset": dataset, "split": args.split, "images": len(x),
                      "correct": correct, "accuracy": correct / len(x),
                      "confusion": confusion.tolist()}))


def roundtrip(args):
    model, config = load(args.file)
    with safe_open(args.file, framework="pt") as f:
        dataset = (f.metadata() or {}).get("mathnn_dataset")
    save(model, config, args.out, dataset)
    print(f"wrote {args.out}")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    e = sub.add_parser("eval")
    e.add_argument("file")
    e.add_argument("--data-dir")
    e.add_argument("--split", choices=["test", "train"], default="test")
    r = sub.add_parser("roundtrip")
    r.add_argument("file")
    r.add_argument("out")
    args = ap.parse_args()
    {"eval": evaluate, "roundtrip": roundtrip}[args.cmd](args)


if __name__ == "__main__":
    main()
