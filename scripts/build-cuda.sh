#!/usr/bin/env bash
# Builds `mathnn` with CUDA on a machine without a CUDA toolkit (and without a GPU): the toolkit comes from
# NVIDIA's PyPI wheels, pinned to CUDA 13.0 (driver 580 rejects the PTX of nvcc ≥ 13.1), and the driver
# library `libcuda.so` — present only on GPU machines, needed only at run time — is replaced at link time by
# a stub generated from cudarc's bindings. Verified recipe and costs: ../shared/specs/cuda-build.md.
#
#   scripts/build-cuda.sh            cargo build --release --features cuda (binary: target/cuda/release/mathnn)
#   scripts/build-cuda.sh --check    cargo check of every crate and target with CUDA (what CI runs)
#   scripts/build-cuda.sh --env      print the environment to build by hand (eval "$(scripts/build-cuda.sh --env)")
#   further arguments go to cargo, e.g. scripts/build-cuda.sh --tests -p nn-core --test device --no-run
#
# Needs python3 with pip, a C compiler (cc) and network access to PyPI the first time; the wheels (≈ 680 MB)
# and the unpacked toolkit are cached in $MATHNN_CUDA_CACHE (default ~/.cache/mathnn-cuda), outside the
# clone. The build uses its own target directory (target/cuda) so the CPU build is not invalidated.
# Environment knobs: CUDA_COMPUTE_CAP (default 90: H100/H200; 80 for A100), CUDAFORGE_THREADS (nvcc jobs).
# At run time the binary needs libcuda.so.1 (driver), libcublas.so.13, libcublasLt.so.13, libcurand.so.10
# and libcudart.so.13 on the library path (e.g. PyTorch's site-packages/nvidia/cu13/lib, or
# $MATHNN_CUDA_CACHE/prefix/nvidia/cu13/lib).
set -euo pipefail
cd "$(dirname "$0")/.."

mode=build
if [[ "${1:-}" == "--check" || "${1:-}" == "--env" ]]; then
    mode="${1#--}"
    shift
fi

CACHE="${MATHNN_CUDA_CACHE:-$HOME/.cache/mathnn-cuda}"
WHEELS="$CACHE/wheels"
PREFIX="$CACHE/prefix"
T="$PREFIX/nvidia/cu13"
PACKAGES=(
    nvidia-cuda-nvcc==13.0.88 nvidia-nvvm==13.0.88 nvidia-cuda-crt==13.0.88 nvidia-cuda-cccl==13.0.85
    nvidia-cuda-runtime==13.0.96 nvidia-cuda-nvrtc==13.0.88 nvidia-cublas==13.0.2.14 nvidia-curand==10.4.0.35
)

say() { echo "build-cuda: $*" >&2; }
fail() { say "error: $*"; exit 1; }

command -v python3 >/dev/null || fail "python3 is needed to fetch NVIDIA's wheels"
command -v cc >/dev/null || fail "a C compiler (cc) is needed to build the libcuda.so link stub"

# 1. The toolkit, unpacked once. The marker names the package list, so changing the pins re-unpacks.
marker="$PREFIX/.unpacked-$(echo "${PACKAGES[*]}" | cksum | cut -d' ' -f1)"
if [[ ! -f "$marker" ]]; then
    mkdir -p "$WHEELS"
    say "fetching CUDA 13.0 wheels into $WHEELS (≈ 680 MB, once)"
    python3 -m pip download --quiet --no-deps --only-binary=:all: -d "$WHEELS" "${PACKAGES[@]}" ||
        fail "pip could not fetch the CUDA wheels (${PACKAGES[*]}); is PyPI reachable?"
    rm -rf "$PREFIX"
    mkdir -p "$PREFIX"
    for pkg in "${PACKAGES[@]}"; do
        name="${pkg%%==*}"
        version="${pkg##*==}"
        wheel=$(ls "$WHEELS"/"${name//-/_}"-"$version"-*.whl 2>/dev/null | head -n1)
        [[ -n "$wheel" ]] || fail "no wheel for $pkg in $WHEELS"
        python3 -m zipfile -e "$wheel" "$PREFIX/"
    done
    [[ -x "$T/bin/nvcc" || -f "$T/bin/nvcc" ]] || fail "the wheels did not provide $T/bin/nvcc"
    chmod +x "$T"/bin/* "$T"/nvvm/bin/* # zipfile drops the exec bits
    # The wheels ship only versioned names; the linker wants the plain ones.
    for l in cudart.so.13 cublas.so.13 cublasLt.so.13 curand.so.10 nvrtc.so.13; do
        ln -sf "lib$l" "$T/lib/lib${l%.so.*}.so"
    done
    touch "$marker"
fi

# 2. The libcuda.so link stub: every driver-API function cudarc declares, as an empty C function. cudarc
#    loads the real library at run time; the stub only satisfies the linker.
cudarc_version=$(awk '/^name = "cudarc"$/ { getline; gsub(/"/, "", $3); print $3 }' Cargo.lock)
[[ -n "$cudarc_version" ]] || fail "Cargo.lock has no cudarc entry"
stub="$T/lib/stubs/libcuda.so"
if [[ ! -f "$stub.$cudarc_version" ]]; then
    cargo fetch --quiet
    sys_rs=$(ls -d "${CARGO_HOME:-$HOME/.cargo}"/registry/src/*/cudarc-"$cudarc_version"/src/driver/sys/mod.rs 2>/dev/null | head -n1)
    [[ -n "$sys_rs" ]] || fail "cudarc $cudarc_version's source is not in the cargo registry after cargo fetch"
    mkdir -p "$T/lib/stubs"
    grep -oE 'pub unsafe fn cu[A-Za-z0-9_]+' "$sys_rs" | awk '{ print "void " $4 "(void) {}" }' | sort -u \
        >"$T/lib/stubs/stub.c"
    n=$(wc -l <"$T/lib/stubs/stub.c")
    [[ "$n" -gt 100 ]] || fail "found only $n driver functions in $sys_rs; cudarc's layout changed?"
    cc -shared -fPIC -Wl,-soname,libcuda.so.1 -o "$stub" "$T/lib/stubs/stub.c"
    touch "$stub.$cudarc_version"
    say "libcuda.so stub with $n functions from cudarc $cudarc_version"
fi

# 3. The environment (read by cudarc's and candle-kernels' build scripts and by the final link).
export CUDA_HOME="$T"
export NVCC="$T/bin/nvcc"
export PATH="$T/bin:$PATH"
export CUDARC_CUDA_VERSION=13000
export CUDA_COMPUTE_CAP="${CUDA_COMPUTE_CAP:-90}"
export CUDAFORGE_THREADS="${CUDAFORGE_THREADS:-$(nproc)}"
export RUSTFLAGS="${RUSTFLAGS:-} -C link-arg=-Wl,-rpath-link,$T/lib"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-target/cuda}"

if [[ "$mode" == env ]]; then
    for v in CUDA_HOME NVCC PATH CUDARC_CUDA_VERSION CUDA_COMPUTE_CAP CUDAFORGE_THREADS RUSTFLAGS CARGO_TARGET_DIR; do
        printf 'export %s=%q\n' "$v" "${!v}"
    done
    exit 0
fi

start=$(date +%s)
if [[ "$mode" == check ]]; then
    say "cargo check --workspace --all-targets --features experiments/cuda (first run ≈ 12 min: nvcc compiles candle's kernels)"
    cargo check --workspace --all-targets --features experiments/cuda "$@"
else
    say "cargo build --release -p experiments --features cuda (first run ≈ 17 min on 2 cores)"
    cargo build --release -p experiments --features cuda "$@"
    say "binary: $CARGO_TARGET_DIR/release/mathnn"
fi
say "done in $(($(date +%s) - start)) s"
