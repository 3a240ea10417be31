"""Peer of benches/benches/generalization.rs: one epoch of the MLP 1x512 (784-512-10, ReLU, softmax
cross-entropy, Adam lr 1e-3, batch 128) on 5,000 random 28x28 images with random labels, plus one
exact-accuracy pass over the 5,000 images, in numpy float32 (OpenBLAS).

Run by hand:  OPENBLAS_NUM_THREADS=1 python3 benches/peers/random_labels_epoch.py
Prints the median of 7 timings of each, in milliseconds.
"""

import time

import numpy as np

N, D, H, K, B = 5000, 784, 512, 10, 128
rng = np.random.default_rng(0)
X = rng.random((N, D), dtype=np.float32)
Y = rng.integers(0, K, N)


def init(fan_in, fan_out):
    bound = 1.0 / np.sqrt(fan_in)
    w = rng.uniform(-bound, bound, (fan_in, fan_out)).astype(np.float32)
    b = rng.uniform(-bound, bound, fan_out).astype(np.float32)
    return w, b


params = [*init(D, H), *init(H, K)]
m = [np.zeros_like(p) for p in params]
v = [np.zeros_like(p) for p in params]
t = 0


def forward(x):
    w1, b1, w2, b2 = params
    h = x @ w1 + b1
    a = np.maximum(h, 0)
    return h, a, a @ w2 + b2


def step(x, y):
    global t
    w1, b1, w2, b2 = params
    h, a, z = forward(x)
    z = z - z.max(1, keepdims=True)
    p = np.exp(z)
    p /= p.sum(1, keepdims=True)
    p[np.arange(len(y)), y] -= 1
    g = p / len(y)
    gw2, gb2 = a.T @ g, g.sum(0)
    ga = g @ w2.T
    ga[h < 0] = 0
    gw1, gb1 = x.T @ ga, ga.sum(0)
    t += 1
    for i, gr in enumerate((gw1, gb1, gw2, gb2)):
        m[i] = 0.9 * m[i] + 0.1 * gr
        v[i] = 0.999 * v[i] + 0.001 * gr * gr
        mh = m[i] / (1 - 0.9**t)
        vh = v[i] / (1 - 0.999**t)
        params[i] -= 1e-3 * mh / (np.sqrt(vh) + 1e-8)


def epoch():
    order = rng.permutation(N)
    for s in range(0, N, B):
        idx = order[s : s + B]
        step(X[idx], Y[idx])


def accuracy():
    correct = 0
    for s in range(0, N, 500):
        correct += (forward(X[s : s + 500])[2].argmax(1) == Y[s : s + 500]).sum()
    return correct / N


def median_ms(f, reps=7):
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        f()
        times.append(time.perf_counter() - t0)
    return 1000 * sorted(times)[reps // 2]


epoch()
print(f"epoch (40 steps) + exact accuracy pass: {median_ms(lambda: (epoch(), accuracy())):.1f} ms")
print(f"exact accuracy pass alone: {median_ms(accuracy):.1f} ms")
