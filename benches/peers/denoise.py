"""scikit-image 0.26 classical denoisers: fixtures for crates/generalization/tests/denoise.rs, and the PSNRs
of the deep-image-prior experiment's baselines computed by scikit-image itself.

    python3 benches/peers/denoise.py fixtures [OUT_FILE]
        writes the committed fixture (default crates/generalization/tests/data/nl_means.json): small
        deterministic images, the parameters, and `denoise_nl_means(…, fast_mode=True)`'s output, every
        float written with repr (exact round trip).
    python3 benches/peers/denoise.py psnr [DATA_DIR]
        the experiment's setting done by scikit-image: astronaut (RGB) and camera (grey) from
        DATA_DIR/skimage-photos (default $MATHNN_DATA or ../shared/data), resized to 128² with
        `resize(…, anti_aliasing=True)`, σ = 25/255 Gaussian noise (numpy seed 0, clipped to [0, 1]), and
        the best PSNR in hindsight of the Gaussian filter, TV (Chambolle) and non-local means over the same
        parameter grids as experiments/src/reproduce/deep_image_prior.rs, and non-local means at the
        spec's setting (h = 0.8σ, σ known, 5×5 patches within 6 pixels: its 26.08 / 28.71 dB come out
        exactly, as do its TV numbers). One JSON line per image.

The noise here is numpy's, not mathnn's, so the PSNRs agree with the experiment's only to the spread of
one noise draw (a few hundredths of a dB); the fixture test is the exact comparison.
"""
import json
import os
import sys

import numpy as np
import skimage
from skimage.filters import gaussian
from skimage.io import imread
from skimage.metrics import peak_signal_noise_ratio
from skimage.restoration import denoise_nl_means, denoise_tv_chambolle
from skimage.transform import resize

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# The experiment's grids (deep_image_prior.rs): Gaussian σ = 0.25…3, TV weight 0.02…0.30, and NLM's h as
# multiples of the known σ, with scikit-image's documented patch_size 5 / patch_distance 6.
GAUSSIAN_GRID = [k * 0.25 for k in range(2, 13)]
TV_GRID = [k * 0.02 for k in range(1, 16)]
NLM_H_FACTORS = [k * 0.1 for k in range(4, 15)]
NLM_PATCH, NLM_DISTANCE = 5, 6


def pattern(c, h, w, seed):
    """A smooth field plus noise, values in [0, 1], shape (C, H, W), float32 like mathnn's images."""
    rng = np.random.default_rng(seed)
    r, q = np.mgrid[0:h, 0:w]
    planes = [0.5 + 0.3 * np.sin(r / (2.0 + k) + q / 3.0) * np.cos(q / (4.0 + k)) for k in range(c)]
    x = np.stack(planes) + 0.08 * rng.standard_normal((c, h, w))
    return np.clip(x, 0.0, 1.0).astype(np.float32)


def nlm_chw(x, patch_size, patch_distance, h, sigma):
    """denoise_nl_means on a (C, H, W) image, channels as the last axis as scikit-image wants them."""
    out = denoise_nl_means(np.moveaxis(x, 0, -1), patch_size=patch_size, patch_distance=patch_distance,
                           h=h, sigma=sigma, fast_mode=True, channel_axis=-1)
    if out.ndim == 2:  # scikit-image squeezes a single channel away
        out = out[..., np.newaxis]
    return np.moveaxis(out, -1, 0)


def fixtures(out_file):
    cases = [
        # name, (C, H, W), seed, patch_size, patch_distance, h, sigma
        ("rgb_sigma", (3, 12, 11), 1, 5, 3, 0.08, 0.05),
        ("grey_even_patch", (1, 13, 10), 2, 4, 2, 0.1, 0.0),
        # Defaults: the 15-pixel padding is wider than the image (repeated reflection).
        ("rgb_defaults_small", (3, 9, 8), 3, 7, 11, 0.1, 0.0),
        ("grey_wide", (1, 7, 19), 4, 3, 5, 0.05, 0.02),
    ]
    out = {"skimage": skimage.__version__, "cases": []}
    for name, shape, seed, ps, pd, h, sigma in cases:
        x = pattern(*shape, seed)
        y = nlm_chw(x, ps, pd, h, sigma)
        out["cases"].append({
            "name": name, "shape": list(shape), "patch_size": ps, "patch_distance": pd, "h": h,
            "sigma": sigma, "input": [float(v) for v in x.ravel()], "output": [float(v) for v in y.ravel()],
        })
    os.makedirs(os.path.dirname(out_file), exist_ok=True)
    with open(out_file, "w") as fh:
        json.dump(out, fh)
        fh.write("\n")
    print(f"wrote {len(cases)} cases to {out_file}")


def best(noisy, clean, grid, denoise):
    # scikit-image squeezes a single channel away in some denoisers; compare like shapes.
    scored = [(p, peak_signal_noise_ratio(clean, denoise(noisy, p).reshape(clean.shape), data_range=1.0))
              for p in grid]
    return max(scored, key=lambda t: t[1])


def psnr(data_dir):
    sigma = 25.0 / 255.0
    for name, grey in [("astronaut.png", False), ("camera.png", True)]:
        img = imread(os.path.join(data_dir, "skimage-photos", name)).astype(np.float64) / 255.0
        if img.ndim == 3 and grey:
            img = img[..., :3].mean(axis=-1)
        clean = resize(img[..., :3] if img.ndim == 3 else img, (128, 128), anti_aliasing=True)
        clean = np.atleast_3d(clean)
        rng = np.random.default_rng(0)
        noisy = np.clip(clean + sigma * rng.standard_normal(clean.shape), 0.0, 1.0)
        axis = {"channel_axis": -1}
        g = best(noisy, clean, GAUSSIAN_GRID, lambda x, s: gaussian(x, sigma=s, **axis))
        t = best(noisy, clean, TV_GRID, lambda x, w: denoise_tv_chambolle(x, weight=w, **axis))
        n = best(noisy, clean, NLM_H_FACTORS, lambda x, f: denoise_nl_means(
            x, patch_size=NLM_PATCH, patch_distance=NLM_DISTANCE, h=f * sigma, sigma=sigma,
            fast_mode=True, **axis))
        spec = peak_signal_noise_ratio(clean, denoise_nl_means(
            noisy, patch_size=NLM_PATCH, patch_distance=NLM_DISTANCE, h=0.8 * sigma, sigma=sigma,
            fast_mode=True, **axis).reshape(clean.shape), data_range=1.0)
        print(json.dumps({
            "image": name, "noisy": peak_signal_noise_ratio(clean, noisy, data_range=1.0),
            "gaussian": {"sigma": g[0], "psnr": g[1]}, "tv": {"weight": t[0], "psnr": t[1]},
            "nl_means": {"h_over_sigma": round(n[0], 2), "psnr": n[1], "psnr_at_0.8_sigma": spec},
        }))


def main():
    mode = sys.argv[1] if len(sys.argv) > 1 else ""
    if mode == "fixtures":
        default = os.path.join(ROOT, "crates", "generalization", "tests", "data", "nl_means.json")
        fixtures(sys.argv[2] if len(sys.argv) > 2 else default)
    elif mode == "psnr":
        default = os.environ.get("MATHNN_DATA", os.path.join(ROOT, "..", "shared", "data"))
        psnr(sys.argv[2] if len(sys.argv) > 2 else default)
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
