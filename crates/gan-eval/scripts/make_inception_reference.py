"""Independent numpy (f64) implementation of pytorch-fid's FID-Inception-v3 forward pass (torchvision key
names, BasicConv2d = conv → BatchNorm(eps 1e-3) → ReLU, count-excluding average pools, max pool in
Mixed_7c), run with deterministic formula weights on two 28×28 grey images resized to 75×75.
Writes crates/gan-eval/tests/data/inception_ref_{pool3,logits}.npy and inception_ref_params.json, which
the Rust test `features_inception.rs` compares against the candle port (same weight formula).
Run once: `python3 crates/gan-eval/scripts/make_inception_reference.py` (numpy only).
"""
import json, os
import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "..", "tests", "data")
M64 = (1 << 64) - 1
PARAMS = {}


def fnv1a(name):
    h = 0xCBF29CE484222325
    for b in name.encode():
        h = ((h ^ b) * 0x100000001B3) & M64
    return h


def uniform(name, n):
    """u_i in [-1, 1): SplitMix64 of fnv1a(name) + (i + 1)·golden, top 53 bits."""
    with np.errstate(over="ignore"):
        i = np.arange(n, dtype=np.uint64) + np.uint64(1)
        z = np.uint64(fnv1a(name)) + i * np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z = z ^ (z >> np.uint64(31))
    return (z >> np.uint64(11)).astype(np.float64) * 2.0 ** -53 * 2.0 - 1.0


def param(name, shape):
    PARAMS[name] = list(shape)
    u = uniform(name, int(np.prod(shape))).reshape(shape)
    if name.endswith("conv.weight"):
        return u * np.sqrt(6.0 / np.prod(shape[1:]))
    if name.endswith("bn.weight"):
        return 1.0 + 0.1 * u
    if name.endswith("bn.running_var"):
        return 1.0 + 0.25 * (u + 1.0)
    if name == "fc.weight":
        return u * np.sqrt(3.0 / shape[1])
    return 0.1 * u  # bn.bias, bn.running_mean, fc.bias


def conv2d(x, w, stride, pad):
    ph, pw = pad
    x = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    kh, kw = w.shape[2:]
    win = np.lib.stride_tricks.sliding_window_view(x, (kh, kw), axis=(2, 3))[:, :, ::stride, ::stride]
    return np.einsum("nchwij,ocij->nohw", win, w, optimize=True)


def basic(x, name, cin, cout, k, stride=1, pad=(0, 0)):
    w = param(name + ".conv.weight", (cout, cin) + k)
    g = param(name + ".bn.weight", (cout,))
    b = param(name + ".bn.bias", (cout,))
    m = param(name + ".bn.running_mean", (cout,))
    v = param(name + ".bn.running_var", (cout,))
    y = conv2d(x, w, stride, pad)
    y = (y - m[None, :, None, None]) / np.sqrt(v[None, :, None, None] + 1e-3) * g[None, :, None, None] + b[None, :, None, None]
    return np.maximum(y, 0.0)


def avg_pool_excl(x):
    s = np.lib.stride_tricks.sliding_window_view(np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1))), (3, 3), axis=(2, 3)).sum(axis=(-1, -2))
    ones = np.pad(np.ones(x.shape[2:]), 1)
    cnt = np.lib.stride_tricks.sliding_window_view(ones, (3, 3)).sum(axis=(-1, -2))
    return s / cnt


def max_pool(x, stride, pad):
    x = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)), constant_values=-np.inf)
    return np.lib.stride_tricks.sliding_window_view(x, (3, 3), axis=(2, 3))[:, :, ::stride, ::stride].max(axis=(-1, -2))


def block_a(x, p, cin, pf):
    return np.concatenate([
        basic(x, p + ".branch1x1", cin, 64, (1, 1)),
        basic(basic(x, p + ".branch5x5_1", cin, 48, (1, 1)), p + ".branch5x5_2", 48, 64, (5, 5), pad=(2, 2)),
        basic(basic(basic(x, p + ".branch3x3dbl_1", cin, 64, (1, 1)), p + ".branch3x3dbl_2", 64, 96, (3, 3), pad=(1, 1)),
              p + ".branch3x3dbl_3", 96, 96, (3, 3), pad=(1, 1)),
        basic(avg_pool_excl(x), p + ".branch_pool", cin, pf, (1, 1)),
    ], axis=1)


def block_b(x, p, cin):
    d = basic(x, p + ".branch3x3dbl_1", cin, 64, (1, 1))
    d = basic(d, p + ".branch3x3dbl_2", 64, 96, (3, 3), pad=(1, 1))
    d = basic(d, p + ".branch3x3dbl_3", 96, 96, (3, 3), stride=2)
    return np.concatenate([basic(x, p + ".branch3x3", cin, 384, (3, 3), stride=2), d, max_pool(x, 2, 0)], axis=1)


def block_c(x, p, cin, c7):
    s = basic(x, p + ".branch7x7_1", cin, c7, (1, 1))
    s = basic(s, p + ".branch7x7_2", c7, c7, (1, 7), pad=(0, 3))
    s = basic(s, p + ".branch7x7_3", c7, 192, (7, 1), pad=(3, 0))
    d = basic(x, p + ".branch7x7dbl_1", cin, c7, (1, 1))
    d = basic(d, p + ".branch7x7dbl_2", c7, c7, (7, 1), pad=(3, 0))
    d = basic(d, p + ".branch7x7dbl_3", c7, c7, (1, 7), pad=(0, 3))
    d = basic(d, p + ".branch7x7dbl_4", c7, c7, (7, 1), pad=(3, 0))
    d = basic(d, p + ".branch7x7dbl_5", c7, 192, (1, 7), pad=(0, 3))
    return np.concatenate([basic(x, p + ".branch1x1", cin, 192, (1, 1)), s, d,
                           basic(avg_pool_excl(x), p + ".branch_pool", cin, 192, (1, 1))], axis=1)


def block_d(x, p, cin):
    a = basic(basic(x, p + ".branch3x3_1", cin, 192, (1, 1)), p + ".branch3x3_2", 192, 320, (3, 3), stride=2)
    b = basic(x, p + ".branch7x7x3_1", cin, 192, (1, 1))
    b = basic(b, p + ".branch7x7x3_2", 192, 192, (1, 7), pad=(0, 3))
    b = basic(b, p + ".branch7x7x3_3", 192, 192, (7, 1), pad=(3, 0))
    b = basic(b, p + ".branch7x7x3_4", 192, 192, (3, 3), stride=2)
    return np.concatenate([a, b, max_pool(x, 2, 0)], axis=1)


def block_e(x, p, cin, use_max):
    s = basic(x, p + ".branch3x3_1", cin, 384, (1, 1))
    s = np.concatenate([basic(s, p + ".branch3x3_2a", 384, 384, (1, 3), pad=(0, 1)),
                        basic(s, p + ".branch3x3_2b", 384, 384, (3, 1), pad=(1, 0))], axis=1)
    d = basic(x, p + ".branch3x3dbl_1", cin, 448, (1, 1))
    d = basic(d, p + ".branch3x3dbl_2", 448, 384, (3, 3), pad=(1, 1))
    d = np.concatenate([basic(d, p + ".branch3x3dbl_3a", 384, 384, (1, 3), pad=(0, 1)),
                        basic(d, p + ".branch3x3dbl_3b", 384, 384, (3, 1), pad=(1, 0))], axis=1)
    pooled = max_pool(x, 1, 1) if use_max else avg_pool_excl(x)
    return np.concatenate([basic(x, p + ".branch1x1", cin, 320, (1, 1)), s, d,
                           basic(pooled, p + ".branch_pool", cin, 192, (1, 1))], axis=1)


def bilinear_matrix(n_in, n_out):
    m = np.zeros((n_out, n_in))
    for o in range(n_out):
        src = max((o + 0.5) * n_in / n_out - 0.5, 0.0)
        lo = int(np.floor(src))
        hi = min(lo + 1, n_in - 1)
        lam = src - lo
        m[o, lo] += 1 - lam
        m[o, hi] += lam
    return m


def forward(images):
    x = np.repeat(images, 3, axis=1)
    r = bilinear_matrix(28, 75)
    x = np.einsum("ah,nchw,bw->ncab", r, x, r)
    x = 2 * x - 1
    x = basic(x, "Conv2d_1a_3x3", 3, 32, (3, 3), stride=2)
    x = basic(x, "Conv2d_2a_3x3", 32, 32, (3, 3))
    x = basic(x, "Conv2d_2b_3x3", 32, 64, (3, 3), pad=(1, 1))
    x = max_pool(x, 2, 0)
    x = basic(x, "Conv2d_3b_1x1", 64, 80, (1, 1))
    x = basic(x, "Conv2d_4a_3x3", 80, 192, (3, 3))
    x = max_pool(x, 2, 0)
    x = block_a(x, "Mixed_5b", 192, 32)
    x = block_a(x, "Mixed_5c", 256, 64)
    x = block_a(x, "Mixed_5d", 288, 64)
    x = block_b(x, "Mixed_6a", 288)
    for name, c7 in [("Mixed_6b", 128), ("Mixed_6c", 160), ("Mixed_6d", 160), ("Mixed_6e", 192)]:
        x = block_c(x, name, 768, c7)
    x = block_d(x, "Mixed_7a", 768)
    x = block_e(x, "Mixed_7b", 1280, False)
    x = block_e(x, "Mixed_7c", 2048, True)
    pool3 = x.mean(axis=(2, 3))
    w = param("fc.weight", (1008, 2048))
    param("fc.bias", (1008,))
    return pool3, pool3 @ w.T


if __name__ == "__main__":
    images = (0.5 + 0.5 * uniform("input", 2 * 28 * 28)).reshape(2, 1, 28, 28)
    pool3, logits = forward(images)
    np.save(os.path.join(OUT, "inception_ref_pool3.npy"), pool3.astype(np.float32))
    np.save(os.path.join(OUT, "inception_ref_logits.npy"), logits.astype(np.float32))
    with open(os.path.join(OUT, "inception_ref_params.json"), "w") as f:
        json.dump(sorted(PARAMS.items()), f)
    print("pool3", pool3.shape, pool3[:, :4], "logits", logits[:, :4], len(PARAMS), "tensors")
