#!/usr/bin/env bash
# Installs what ctune needs from Debian's packages (only what is missing), then configures and
# builds it in build/ (Release). Safe to run again: a second run only rebuilds what changed.
#
#   CT_BUILD_TYPE=Debug|Release|Sanitize  (default Release)
#   CT_BUILD_DIR=path                      (default build)
#   CT_WERROR=ON                           warnings are errors (CI sets it)
#   CT_SETUP_BENCH_BLAS=1                  also install BLIS and oneDNN for bench_blas_compare
#   CT_FUZZ=1                              also install clang, libFuzzer and valgrind (CI's fuzz
#                                          smoke and memcheck subset; docs/reliability.md)
#   CT_CCACHE=1                            also install ccache and compile through it (CI: its
#                                          cache outlives the clone, so a rerun recompiles nothing)
set -euo pipefail
cd "$(dirname "$0")/.."

# libopenblas-openmp-dev, not libopenblas-dev: the latter pulls the pthread build of OpenBLAS,
# whose own thread pool oversubscribes the cores (or deadlocks) when sgemm is called from inside
# ctune's OpenMP parallel regions. The OpenMP build shares OpenMP's threads instead.
# python3 and python3-venv: the main job's summary and the integration tests' virtual environment
# (tests/integration/run.sh); nothing in the training path.
# libopenmpi-dev and openmpi-bin: data-parallel training under mpirun (docs/distributed.md);
# without them ctune builds and trains single-process. jq: the reliability tests read the
# metrics.jsonl of the runs they interrupt (tests/reliability/). libdnnl-dev: oneDNN, whose sgemm
# runs the matmuls' f32 GEMMs faster than OpenBLAS on the model's shapes (kernels/cpu/cpu_sgemm.h).
packages=(build-essential cmake pkg-config libopenblas-openmp-dev libdnnl-dev libhdf5-dev hdf5-tools
          libcjson-dev libyaml-dev libpcre2-dev libutf8proc-dev python3 python3-venv
          libopenmpi-dev openmpi-bin jq)
# CT_SETUP_BENCH_BLAS=1: also BLIS, which only bench/bench_blas_compare.c opens (with dlopen, at
# run time) to compare with OpenBLAS and oneDNN; ctune itself neither links nor needs it.
if [ "${CT_SETUP_BENCH_BLAS:-0}" = 1 ]; then packages+=(libblis-dev); fi
if [ "${CT_CCACHE:-0}" = 1 ]; then packages+=(ccache); fi
# CT_FUZZ=1: also what the fuzz build (scripts/fuzz.sh) needs: clang with libFuzzer and its
# sanitizer runtimes, LLVM's OpenMP, and valgrind (scripts/valgrind.sh). Not needed otherwise.
if [ -n "${CT_FUZZ:-}" ]; then
    packages+=(clang libclang-rt-14-dev libomp-dev valgrind)
fi

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "setup: installing ${missing[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

build_dir=${CT_BUILD_DIR:-build}
# CT_CCACHE=1: every compiler (C, C++, nvcc) behind ccache. CMake reads these variables when it
# first configures a build folder (.ci/run exports them as well, for scripts/fuzz.sh's clang build).
if [ "${CT_CCACHE:-0}" = 1 ]; then
    export CMAKE_C_COMPILER_LAUNCHER=ccache CMAKE_CXX_COMPILER_LAUNCHER=ccache CMAKE_CUDA_COMPILER_LAUNCHER=ccache
fi
cmake -S . -B "$build_dir" -DCMAKE_BUILD_TYPE="${CT_BUILD_TYPE:-Release}" -DCT_WERROR="${CT_WERROR:-OFF}" \
      ${CT_CMAKE_ARGS:-} > "$build_dir.configure.log" 2>&1 || { cat "$build_dir.configure.log"; exit 1; }
grep -E "ctune:" "$build_dir.configure.log" || true
cmake --build "$build_dir" -j "$(nproc)"
