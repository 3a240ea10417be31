#!/usr/bin/env bash
# The GPU check of issue 13, for whenever a GPU machine is lent (≤ 8 minutes on one GPU): the device-
# parametrised test suite on CUDA, one LeNet epoch, one 500-iteration WGAN-GP run, one random-labels fit —
# each timed. Record what it prints, with the date and the GPU, in docs/performance.md.
#
# On the GPU machine, from the repository root (nothing is built there):
#   scripts/gpu-check.sh BIN_DIR DATA_DIR
# BIN_DIR holds `mathnn` and the `device` test binary built here with
#   scripts/build-cuda.sh && scripts/build-cuda.sh --tests -p nn-core --test device   (see that script)
# (xz-compressed copies `mathnn.xz`, `device.xz` are unpacked first); DATA_DIR holds mnist/ as in
# ../shared/data. The CUDA run-time libraries (libcublas.so.13, libcurand.so.10, libcudart.so.13) must be on
# LD_LIBRARY_PATH, e.g. PyTorch's site-packages/nvidia/cu13/lib.
set -euo pipefail
bin="${1:?usage: scripts/gpu-check.sh BIN_DIR DATA_DIR}"
data="${2:?usage: scripts/gpu-check.sh BIN_DIR DATA_DIR}"
for f in "$bin"/*.xz; do [[ -e "$f" ]] && xz -dkf "$f"; done
chmod +x "$bin"/mathnn "$bin"/device
export MATHNN_DATA="$data" CANDLE_GRAD_DO_NOT_DETACH=1
work=$(mktemp -d)
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader || true
date -u +"date %Y-%m-%d %H:%M UTC"

timed() {
    local name="$1"
    shift
    local t0=$(date +%s.%N)
    "$@"
    echo "== $name: $(echo "$(date +%s.%N) - $t0" | bc) s"
}

timed "device suite (MATHNN_TEST_DEVICE=cuda)" env MATHNN_TEST_DEVICE=cuda "$bin"/device --test-threads 1
timed "LeNet, 1 epoch of MNIST" "$bin"/mathnn train --dataset mnist --model lenet --epochs 1 \
    --device cuda --quiet --out "$work/lenet"
timed "LeNet, second process (PTX cached), 1 epoch" "$bin"/mathnn train --dataset mnist --model lenet \
    --epochs 1 --device cuda --quiet --out "$work/lenet2"
timed "WGAN-GP DCGAN, 500 iterations" "$bin"/mathnn gan train --loss wgan-gp --arch dcgan --iters 500 \
    --device cuda --quiet --out "$work/wgan"
timed "random labels, MLP 1×512, 10,000 images, ≤ 20 epochs" "$bin"/mathnn random-labels --dataset mnist \
    --model mlp-1x512 --train-size 10000 --max-epochs 20 --device cuda --quiet --out "$work/rl"
