#!/usr/bin/env bash
# Builds ctune's core (autograd/, kernels/, the CUDA backend) on a machine that has CUDA, cuDNN,
# CMake and gcc but none of ctune's Debian libraries, runs the core tests and the GPU tests, then
# runs every GPU test under compute-sanitizer (memcheck and racecheck). Logs and a summary go to
# $OUT (or ./gpu-results when OUT is unset). docs/gpu.md says how and why.
#
#   scripts/gpu_check.sh [phase...]     phases: build test sanitize bench; default: build test sanitize
#
#   CT_GPU_BUILD_DIR  build folder (default build-gpu)
#   CT_GPU_DEPS_DIR   where the carried .debs are unpacked (default <build folder>/gpu-deps)
#   CT_GPU_TIMEOUT    seconds one test or bench may run, sanitizer runs included (default 300)
#   CT_WERROR         ON makes warnings errors (default OFF: a warning must not hide GPU results)
#   CT_CUDNN, CT_CUDNN_INCLUDE_DIR   cuDNN's library file and header folder, when not found alone
#   CT_CMAKE_ARGS     more arguments for the configure step
#   CT_SANITIZER_FLAGS  more compute-sanitizer flags (e.g. "--leak-check full")
#
# Exit status: 0 when everything that ran passed (a test with no usable GPU exits 77 and counts as
# skipped), 1 when something failed, 2 on a usage error.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
root=$PWD

phases=("$@")
[ ${#phases[@]} -gt 0 ] || phases=(build test sanitize)
for p in "${phases[@]}"; do
  case "$p" in
    build|test|sanitize|bench) ;;
    *) echo "usage: scripts/gpu_check.sh [build] [test] [sanitize] [bench]" >&2; exit 2 ;;
  esac
done

build=${CT_GPU_BUILD_DIR:-build-gpu}
case "$build" in /*) ;; *) build=$root/$build ;; esac
deps=${CT_GPU_DEPS_DIR:-$build/gpu-deps}
timeout_s=${CT_GPU_TIMEOUT:-300}
out=${OUT:-$root/gpu-results}
mkdir -p "$out"
summary=$out/summary.txt
: > "$summary"
failures=0

# One line per result, on the terminal and in the summary.
report() { echo "$*" | tee -a "$summary"; }
fail() { report "FAIL $*"; failures=$((failures + 1)); }

[ -d /usr/local/cuda/bin ] && export PATH=$PATH:/usr/local/cuda/bin

print_environment() {
  echo "== environment ($(date -u +%Y-%m-%dT%H:%M:%SZ))"
  echo "host: $(uname -m), $(nproc) cores, glibc $(ldd --version 2>/dev/null | head -1 | awk '{print $NF}')"
  if command -v nvidia-smi >/dev/null; then
    nvidia-smi --query-gpu=name,driver_version,memory.total,compute_cap --format=csv,noheader 2>&1 |
      sed 's/^/gpu: /'
    nvidia-smi 2>/dev/null | grep -o 'CUDA Version: [0-9.]*' | sed 's/^/driver supports /'
  else
    echo "gpu: nvidia-smi not found (no GPU driver on this machine)"
  fi
  if command -v nvcc >/dev/null; then nvcc --version | tail -2; else echo "nvcc: not found"; fi
  echo "cuDNN: ${cudnn_version:-not found} (header ${cudnn_include:-?}, library ${cudnn_lib:-?})"
  echo "cmake: $(cmake --version | head -1)"
  echo "gcc: $(gcc --version | head -1)"
  echo "compute-sanitizer: ${sanitizer:-not found}"
}

# cuDNN: CUDA's folders first, then the system's, then the pip wheel PyTorch brings (nvidia-cudnn).
find_cudnn() {
  cudnn_include=${CT_CUDNN_INCLUDE_DIR:-}
  cudnn_lib=${CT_CUDNN:-}
  local cuda_root
  cuda_root=$(dirname "$(dirname "$(command -v nvcc 2>/dev/null || echo /usr/local/cuda/bin/nvcc)")")
  local wheel=""
  wheel=$(python3 -c 'import nvidia.cudnn as m; print(list(m.__path__)[0])' 2>/dev/null) || wheel=""
  local d
  if [ -z "$cudnn_include" ]; then
    for d in "$cuda_root/include" /usr/include /usr/include/x86_64-linux-gnu ${wheel:+"$wheel/include"}; do
      [ -f "$d/cudnn.h" ] && { cudnn_include=$d; break; }
    done
  fi
  if [ -z "$cudnn_lib" ]; then
    for d in "$cuda_root/lib64" "$cuda_root/lib" /usr/lib/x86_64-linux-gnu ${wheel:+"$wheel/lib"}; do
      for f in "$d/libcudnn.so" "$d/libcudnn.so.9"; do
        [ -e "$f" ] && { cudnn_lib=$f; break 2; }
      done
    done
  fi
  cudnn_version=""
  local vh=$cudnn_include/cudnn_version.h
  if [ -n "$cudnn_include" ] && [ -f "$vh" ]; then
    cudnn_version=$(awk '/#define CUDNN_(MAJOR|MINOR|PATCHLEVEL) /{v=v (v?".":"") $3} END{print v}' "$vh")
  fi
  # cuDNN 9 loads its engine libraries at run time from the loader's search path.
  if [ -n "$cudnn_lib" ]; then
    LD_LIBRARY_PATH=$(dirname "$cudnn_lib")${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
    export LD_LIBRARY_PATH
  fi
}

find_sanitizer() {
  sanitizer=$(command -v compute-sanitizer 2>/dev/null || true)
  local f
  for f in /usr/local/cuda/bin/compute-sanitizer /usr/local/cuda/compute-sanitizer/compute-sanitizer; do
    [ -z "$sanitizer" ] && [ -x "$f" ] && sanitizer=$f
  done
}

# OpenBLAS from the carried libopenblas-openmp-dev .deb (third_party/debs/, filled by
# scripts/fetch_gpu_deps.sh); without one, the system's OpenBLAS (OpenMP build) if it has it.
unpack_openblas() {
  local deb
  deb=$(find third_party/debs -maxdepth 1 -name 'libopenblas-openmp-dev_*.deb' 2>/dev/null | sort | tail -1)
  openblas_arg=()
  if [ -z "$deb" ]; then
    if ls /usr/include/*/openblas-openmp/cblas.h >/dev/null 2>&1; then
      echo "openblas: no carried .deb, using the system's"
      return 0
    fi
    echo "openblas: third_party/debs/ holds no libopenblas-openmp-dev .deb and the system has no OpenBLAS;" \
         "run scripts/fetch_gpu_deps.sh on a machine with apt and carry third_party/debs" >&2
    return 1
  fi
  local stamp
  stamp=$deps/.unpacked-$(basename "$deb")
  if [ ! -f "$stamp" ]; then
    rm -rf "$deps" && mkdir -p "$deps"
    if command -v dpkg-deb >/dev/null; then
      dpkg-deb -x "$deb" "$deps" || return 1
    else
      # A .deb is an ar archive; its files are in data.tar.{xz,zst,gz}.
      local member
      member=$(ar t "$deb" | grep '^data\.tar') || return 1
      case "$member" in
        *.xz) ar p "$deb" "$member" | tar -xJ -C "$deps" ;;
        *.zst) ar p "$deb" "$member" | zstd -dc | tar -x -C "$deps" ;;
        *) ar p "$deb" "$member" | tar -xz -C "$deps" ;;
      esac || return 1
    fi
    touch "$stamp"
  fi
  echo "openblas: $(basename "$deb") unpacked in $deps"
  openblas_arg=(-DCT_OPENBLAS_ROOT="$deps")
}

phase_build() {
  echo "== build ($build)"
  unpack_openblas || { fail "build: OpenBLAS"; return 1; }
  local cudnn_args=()
  [ -n "$cudnn_lib" ] && cudnn_args+=(-DCT_CUDNN="$cudnn_lib")
  [ -n "$cudnn_include" ] && cudnn_args+=(-DCT_CUDNN_INCLUDE_DIR="$cudnn_include")
  # CT_CMAKE_ARGS is split into words on purpose.
  # shellcheck disable=SC2086
  if ! cmake -S "$root" -B "$build" -DCT_CORE_ONLY=ON -DCMAKE_BUILD_TYPE=Release -DCT_WERROR="${CT_WERROR:-OFF}" \
       "${openblas_arg[@]}" "${cudnn_args[@]}" ${CT_CMAKE_ARGS:-} > "$out/configure.log" 2>&1; then
    tail -30 "$out/configure.log"
    fail "build: configure (log: configure.log)"
    return 1
  fi
  grep -E "^-- ctune:" "$out/configure.log"
  if ! cmake --build "$build" -j "$(nproc)" > "$out/build.log" 2>&1; then
    grep -E "error|Error" "$out/build.log" | head -30
    fail "build: compile or link (log: build.log)"
    return 1
  fi
  report "ok   build"
}

# ctest's result lines ("1/9 Test #3: test_ops ....   Passed   2.1 sec") into the summary.
run_ctest() {
  local name=$1; shift
  (cd "$build" && timeout $((timeout_s * 4)) ctest --output-on-failure "$@") > "$out/$name.log" 2>&1
  local rc=$?
  grep -E "Test +#[0-9]+:" "$out/$name.log" | sed -E 's/^ *[0-9]+\/[0-9]+ +//' | tee -a "$summary"
  grep -E "tests passed|No tests were found" "$out/$name.log" | tee -a "$summary"
  [ $rc -eq 0 ] || fail "$name: ctest exited $rc (log: $name.log)"
}

phase_test() {
  echo "== test"
  [ -f "$build/CTestTestfile.cmake" ] || { fail "test: $build is not built; run the build phase first"; return 1; }
  run_ctest ctest_core -LE gpu -j "$(nproc)"
  run_ctest ctest_gpu -L gpu
}

# Executables named <prefix>*, one per line, in the build folder.
built() { find "$build" -maxdepth 1 -type f -perm -u+x -name "$1*" 2>/dev/null | sort; }

# The sanitizer's last summary line ("ERROR SUMMARY: 0 errors"), without its "=====" prefix.
sanitizer_verdict() { grep -E 'ERROR SUMMARY|RACECHECK SUMMARY' "$1" | tail -1 | sed -E 's/^=+ *//'; }

# One sanitizer tool on one test: clean, hazards found, the test failing, or no GPU (77).
sanitize_one() {
  local tool=$1 bin=$2 name log rc
  name=$(basename "$bin")
  log=$out/${tool}_$name.log
  # CT_SANITIZER_FLAGS is split into words on purpose (e.g. "--leak-check full").
  # shellcheck disable=SC2086
  CT_SOURCE_DIR=$root OMP_NUM_THREADS=2 timeout "$timeout_s" "$sanitizer" --tool "$tool" --error-exitcode 99 \
    ${CT_SANITIZER_FLAGS:-} "$bin" > "$log" 2>&1
  rc=$?
  case $rc in
    0) report "ok   $tool $name ($(sanitizer_verdict "$log"))" ;;
    77) report "skip $tool $name (no usable GPU)" ;;
    99) fail "$tool $name: $(sanitizer_verdict "$log") (log: $(basename "$log"))" ;;
    124) fail "$tool $name: over ${timeout_s}s (CT_GPU_TIMEOUT) (log: $(basename "$log"))" ;;
    *) fail "$tool $name: exited $rc under the sanitizer (log: $(basename "$log"))" ;;
  esac
}

phase_sanitize() {
  echo "== sanitize"
  local bins rc bin
  bins=$(built test_cuda_)
  [ -n "$bins" ] || { report "note sanitize: no GPU test binaries (tests/test_cuda_*.c) in $build"; return 0; }
  for bin in $bins; do
    # A plain run first: a test that skips (no GPU) or fails needs no sanitizer to say so.
    CT_SOURCE_DIR=$root OMP_NUM_THREADS=2 timeout "$timeout_s" "$bin" > "$out/run_$(basename "$bin").log" 2>&1
    rc=$?
    if [ $rc -eq 77 ]; then report "skip sanitize $(basename "$bin") (no usable GPU)"; continue; fi
    [ $rc -eq 0 ] || { fail "sanitize $(basename "$bin"): the test itself exited $rc (log: run_$(basename "$bin").log)"; continue; }
    if [ -z "$sanitizer" ]; then fail "sanitize $(basename "$bin"): compute-sanitizer not found"; continue; fi
    sanitize_one memcheck "$bin"
    sanitize_one racecheck "$bin"
  done
}

phase_bench() {
  echo "== bench"
  local bins bin name rc
  bins=$(built bench_cuda_)
  [ -n "$bins" ] || { report "note bench: no bench_cuda_* binaries in $build"; return 0; }
  for bin in $bins; do
    name=$(basename "$bin")
    OMP_NUM_THREADS=$(nproc) timeout "$timeout_s" "$bin" > "$out/$name.jsonl" 2> "$out/$name.stderr.log"
    rc=$?
    case $rc in
      0) report "ok   bench $name ($(wc -l < "$out/$name.jsonl") JSON lines in $name.jsonl)" ;;
      77) report "skip bench $name (no usable GPU)" ;;
      *) fail "bench $name: exited $rc (log: $name.stderr.log)" ;;
    esac
  done
}

find_cudnn
find_sanitizer
print_environment | tee "$out/environment.txt"
for p in "${phases[@]}"; do
  case "$p" in
    build) phase_build || break ;;
    test) phase_test ;;
    sanitize) phase_sanitize ;;
    bench) phase_bench ;;
  esac
done
if [ $failures -eq 0 ]; then
  report "gpu_check: all passed (phases: ${phases[*]}; results in $out)"
  exit 0
fi
report "gpu_check: $failures failed (phases: ${phases[*]}; results in $out)"
exit 1
