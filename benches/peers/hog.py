"""scikit-image 0.26 HOG: fixtures for crates/classical/tests/hog.rs, and the per-image speed peer.

    python3 benches/peers/hog.py fixtures [OUT_DIR]   # writes the committed fixtures (default
                                                       # crates/classical/tests/fixtures/hog)
    python3 benches/peers/hog.py time SIZE REPEATS     # µs per image of skimage.feature.hog, defaults,
                                                       # one SIZE×SIZE f64 image (seed 0), one thread
    python3 benches/peers/hog.py batch N SIZE          # seconds for N SIZE×SIZE images, defaults

Fixture layout: `manifest.tsv` (one case per line: name, image file, orientations, pixels_per_cell r,c,
cells_per_block r,c, block_norm, transform_sqrt 0/1, channel_axis none/-1, outputs) and .npy files:
images as f64 (or uint8), descriptors `<case>.npy` (f64, feature_vector=True), visualisations
`<case>.vis.npy`, and for some cases the cell histograms `<case>.cells.npy` straight from scikit-image's
Cython kernel (exact f32-accumulator values).
"""
import os
import sys
import time

import numpy as np
import skimage
from skimage.feature import hog
from skimage.feature import _hoghistogram


def images(rng):
    """Small synthetic test images: odd sizes, edges, smooth fields, noise, uint8, RGB."""
    out = {}
    r, c = np.mgrid[0:29, 0:23]
    smooth = np.sin(r / 5.0) * np.cos(c / 3.0) + 0.3 * rng.standard_normal((29, 23))
    out["gray29x23"] = smooth.astype(np.float64)
    disc = ((r - 14) ** 2 + (c - 11) ** 2 < 64).astype(np.float64)
    out["disc29x23"] = disc
    out["u8_26x30"] = rng.integers(0, 256, size=(26, 30), dtype=np.uint8)
    steps = np.zeros((25, 27), dtype=np.uint8)
    steps[:, 13:] = 200
    steps[8:19, 4:22] += 50
    out["u8steps25x27"] = steps
    rgb = np.stack([smooth[:25, :], disc[:25, :] * 0.7, 0.5 * np.roll(smooth, 3, axis=0)[:25, :]], axis=-1)
    out["rgb25x23"] = np.ascontiguousarray(rgb)
    tie = np.repeat(out["u8_26x30"][:24, :24, None], 3, axis=-1)  # equal channels: argmax ties
    out["u8rgbtie24"] = np.ascontiguousarray(tie)
    # The 180° quirk: on the right half, rows decrease by one ulp (2^-53 below 1), so at the edge column
    # g_row = -2^-52 and g_col ≈ +1: atan2 is a tiny negative angle and mod 180 rounds it to exactly 180.0,
    # which falls in no bin.
    ulp = np.zeros((24, 24))
    ulp[:, 12:] = (1.0 - np.arange(24) * 2.0**-53)[:, None]
    angle = np.arctan2(ulp[2, 12] - ulp[0, 12], ulp[1, 13] - ulp[1, 11]) * (180 / np.pi) % 180
    assert angle == 180.0, angle
    out["ulp24"] = ulp
    return out


CASES = [
    # name suffix, orientations, ppc, cpb, norm, sqrt
    ("def", 9, (8, 8), (3, 3), "L2-Hys", False),
    ("l1", 9, (4, 4), (2, 2), "L1", False),
    ("l1sqrt", 9, (4, 4), (2, 2), "L1-sqrt", False),
    ("l2", 9, (4, 4), (2, 2), "L2", False),
    ("hys", 9, (4, 4), (2, 2), "L2-Hys", False),
    ("rect", 7, (5, 3), (2, 3), "L2-Hys", False),
    ("rectl1", 12, (3, 5), (3, 1), "L1", False),
    ("sqrt", 9, (6, 6), (2, 2), "L2-Hys", True),
    ("sqrtl1s", 8, (5, 4), (1, 2), "L1-sqrt", True),
    ("odd", 5, (7, 7), (1, 1), "L2", False),
    ("tiny", 9, (2, 2), (2, 2), "L1", False),
]


def write_fixtures(out_dir):
    os.makedirs(out_dir, exist_ok=True)
    rng = np.random.default_rng(20261205)
    lines = []
    for image_name, image in images(rng).items():
        np.save(os.path.join(out_dir, f"{image_name}.npy"), image)
        multichannel = image.ndim == 3
        for suffix, n, ppc, cpb, norm, sqrt in CASES:
            if suffix == "tiny" and image_name not in ("ulp24", "gray29x23"):
                continue  # 2-pixel cells make long descriptors: two images suffice
            if suffix in ("l1", "l1sqrt", "l2", "rectl1") and image_name not in ("gray29x23", "u8_26x30", "u8steps25x27"):
                continue  # every norm on integer images (where eps matters) and one float image
            if sqrt and image.dtype != np.uint8 and image.min() < 0:
                continue  # NaN features in scikit-image; our port refuses negative pixels for sqrt
            case = f"{image_name}.{suffix}"
            kwargs = dict(orientations=n, pixels_per_cell=ppc, cells_per_block=cpb, block_norm=norm,
                          transform_sqrt=sqrt, channel_axis=-1 if multichannel else None)
            try:
                desc = hog(image, **kwargs)
            except ValueError:
                continue  # image too small for these cells; tested separately
            np.save(os.path.join(out_dir, f"{case}.npy"), desc.astype(np.float64))
            outputs = ["descriptor"]
            if suffix in ("def", "rect", "hys") and min(ppc) >= 2:
                _, vis = hog(image, visualize=True, **kwargs)
                np.save(os.path.join(out_dir, f"{case}.vis.npy"), vis.astype(np.float64))
                outputs.append("vis")
            if suffix in ("hys", "rect", "odd") and not multichannel:
                img = image.astype(np.float64)
                if sqrt:
                    img = np.sqrt(img)
                g_row = np.zeros_like(img)
                g_col = np.zeros_like(img)
                g_row[1:-1, :] = img[2:, :] - img[:-2, :]
                g_col[:, 1:-1] = img[:, 2:] - img[:, :-2]
                s_row, s_col = img.shape
                cells = np.zeros((s_row // ppc[0], s_col // ppc[1], n))
                _hoghistogram.hog_histograms(g_col, g_row, ppc[1], ppc[0], s_col, s_row,
                                             s_col // ppc[1], s_row // ppc[0], n, cells)
                np.save(os.path.join(out_dir, f"{case}.cells.npy"), cells)
                outputs.append("cells")
            lines.append("\t".join([case, f"{image_name}.npy", str(n), f"{ppc[0]},{ppc[1]}",
                                    f"{cpb[0]},{cpb[1]}", norm, str(int(sqrt)),
                                    "-1" if multichannel else "none", ",".join(outputs)]))
    with open(os.path.join(out_dir, "manifest.tsv"), "w") as f:
        f.write(f"# scikit-image {skimage.__version__}, numpy {np.__version__}; written by benches/peers/hog.py\n")
        f.write("\n".join(lines) + "\n")
    print(f"{len(lines)} cases in {out_dir}")


def time_one(size, repeats):
    img = np.random.default_rng(0).random((size, size))
    hog(img)
    t = time.perf_counter()
    for _ in range(repeats):
        hog(img)
    print(f"skimage hog {size}x{size}: {(time.perf_counter() - t) / repeats * 1e6:.1f} us/image")


def time_batch(count, size):
    imgs = np.random.default_rng(0).random((count, size, size))
    t = time.perf_counter()
    for img in imgs:
        hog(img)
    print(f"skimage hog batch {count}x{size}x{size}: {time.perf_counter() - t:.3f} s")


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    if len(sys.argv) >= 2 and sys.argv[1] == "fixtures":
        write_fixtures(sys.argv[2] if len(sys.argv) > 2 else "crates/classical/tests/fixtures/hog")
    elif len(sys.argv) == 4 and sys.argv[1] == "time":
        time_one(int(sys.argv[2]), int(sys.argv[3]))
    elif len(sys.argv) == 4 and sys.argv[1] == "batch":
        time_batch(int(sys.argv[2]), int(sys.argv[3]))
    else:
        sys.exit(__doc__)
