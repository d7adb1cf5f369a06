#!/usr/bin/env bash
# Builds ctune on a machine that has CUDA, cuDNN, CMake and gcc but none of ctune's Debian
# libraries, from the .debs carried in third_party/debs/ (scripts/fetch_gpu_deps.sh), and checks
# it there. Logs and a summary go to $OUT (or ./gpu-results when OUT is unset), one log per phase,
# since a GPU machine's call returns only a few files. docs/gpu.md says how and why.
#
#   scripts/gpu_check.sh [phase...]     default: build test sanitize
#
#   build     core only (CT_CORE_ONLY): core/, kernels/, autograd/, the CUDA backend, their tests
#   test      the core build's CPU tests, then its GPU tests (ctest -L gpu)
#   sanitize  every GPU test under compute-sanitizer memcheck and racecheck
#   bench     the GPU benches (bench_cuda_*), JSON lines into bench.jsonl
#   full      the whole of ctune (CLI, trainer, every test) from the carried .debs, then the whole
#             ctest suite: CPU tests and GPU tests
#   train     scripts/gpu_train_compare.sh: 20 training steps on the CPU and on the GPU, losses
#             compared step by step (builds the full tree first when the full phase did not)
#
#   CT_GPU_BUILD_DIR       core build folder (default build-gpu)
#   CT_GPU_DEPS_DIR        where the OpenBLAS .deb is unpacked for it (default <build folder>/gpu-deps)
#   CT_GPU_FULL_BUILD_DIR  full build folder (default build-gpu-full; the .debs go to its deps/)
#   CT_GPU_TIMEOUT    seconds one test, bench or training run may take, sanitizer runs included (default 300)
#   CT_WERROR         ON makes warnings errors (default OFF: a warning must not hide GPU results)
#   CT_CUDNN, CT_CUDNN_INCLUDE_DIR   cuDNN's library file and header folder, when not found alone
#   CT_CMAKE_ARGS     more arguments for the configure steps
#   CT_SANITIZER_FLAGS  more compute-sanitizer flags (e.g. "--leak-check full")
#   CT_TRAIN_THREADS  CPU threads of the train phase's CPU runs (default: all cores)
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
    build|test|sanitize|bench|full|train) ;;
    *) echo "usage: scripts/gpu_check.sh [build] [test] [sanitize] [bench] [full] [train]" >&2; exit 2 ;;
  esac
done

absolute() { case "$1" in /*) echo "$1" ;; *) echo "$root/$1" ;; esac; }
build=$(absolute "${CT_GPU_BUILD_DIR:-build-gpu}")
deps=$(absolute "${CT_GPU_DEPS_DIR:-$build/gpu-deps}")
full_build=$(absolute "${CT_GPU_FULL_BUILD_DIR:-build-gpu-full}")
full_deps=$full_build/deps
timeout_s=${CT_GPU_TIMEOUT:-300}
out=${OUT:-$root/gpu-results}
mkdir -p "$out"
summary=$out/summary.txt
: > "$summary"
failures=0
# Each test's or run's own output is written here first, then appended to its phase's log.
scratch=$(mktemp -d) || exit 1
trap 'rm -rf "$scratch"' EXIT

# One line per result, on the terminal and in the summary.
report() { echo "$*" | tee -a "$summary"; }
fail() { report "FAIL $*"; failures=$((failures + 1)); }
# append LOG TITLE FILE: FILE into the phase log LOG under a "==== TITLE" line.
append() { { echo "==== $2"; cat "$3"; echo; } >> "$out/$1"; }

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

# Unpacks one .deb into a folder, as dpkg -x does (no installation, no scripts run).
unpack_deb() {
  local deb=$1 dest=$2
  if command -v dpkg-deb >/dev/null; then
    dpkg-deb -x "$deb" "$dest"
    return
  fi
  # A .deb is an ar archive; its files are in data.tar.{xz,zst,gz}.
  local member
  member=$(ar t "$deb" | grep '^data\.tar') || return 1
  case "$member" in
    *.xz) ar p "$deb" "$member" | tar -xJ -C "$dest" ;;
    *.zst) ar p "$deb" "$member" | zstd -dc | tar -x -C "$dest" ;;
    *) ar p "$deb" "$member" | tar -xz -C "$dest" ;;
  esac
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
    unpack_deb "$deb" "$deps" || return 1
    touch "$stamp"
  fi
  echo "openblas: $(basename "$deb") unpacked in $deps"
  openblas_arg=(-DCT_OPENBLAS_ROOT="$deps")
}

# Every carried .deb into one folder, the CT_DEPS_ROOT of the full build; unpacked again when the
# set of .debs changed (the stamp holds their names).
unpack_all_debs() {
  local debs list deb
  debs=$(find third_party/debs -maxdepth 1 -name '*.deb' 2>/dev/null | sort)
  if [ -z "$debs" ]; then
    echo "deps: third_party/debs/ holds no .deb files: run scripts/fetch_gpu_deps.sh on a machine with apt" \
         "and carry third_party/debs" >&2
    return 1
  fi
  list=$(for deb in $debs; do basename "$deb"; done)
  if [ "$(cat "$full_deps/.unpacked" 2>/dev/null)" != "$list" ]; then
    rm -rf "$full_deps" && mkdir -p "$full_deps" || return 1
    for deb in $debs; do unpack_deb "$deb" "$full_deps" || { echo "deps: cannot unpack $deb" >&2; return 1; }; done
    echo "$list" > "$full_deps/.unpacked"
  fi
  echo "deps: $(echo "$list" | wc -l) .debs unpacked in $full_deps"
}

# cuDNN's CMake arguments, from find_cudnn.
cudnn_args() {
  cudnn_arg=()
  [ -n "$cudnn_lib" ] && cudnn_arg+=(-DCT_CUDNN="$cudnn_lib")
  [ -n "$cudnn_include" ] && cudnn_arg+=(-DCT_CUDNN_INCLUDE_DIR="$cudnn_include")
}

phase_build() {
  echo "== build ($build)"
  local log=$out/build.log
  unpack_openblas || { fail "build: OpenBLAS"; return 1; }
  cudnn_args
  # CT_CMAKE_ARGS is split into words on purpose.
  # shellcheck disable=SC2086
  if ! cmake -S "$root" -B "$build" -DCT_CORE_ONLY=ON -DCMAKE_BUILD_TYPE=Release -DCT_WERROR="${CT_WERROR:-OFF}" \
       "${openblas_arg[@]}" "${cudnn_arg[@]}" ${CT_CMAKE_ARGS:-} > "$scratch/configure" 2>&1; then
    append build.log "configure (failed)" "$scratch/configure"
    tail -30 "$scratch/configure"
    fail "build: configure (log: build.log)"
    return 1
  fi
  append build.log configure "$scratch/configure"
  grep -E "^-- ctune:" "$scratch/configure"
  if ! cmake --build "$build" -j "$(nproc)" > "$scratch/compile" 2>&1; then
    append build.log "compile and link (failed)" "$scratch/compile"
    grep -E "error|Error" "$scratch/compile" | head -30
    fail "build: compile or link (log: build.log)"
    return 1
  fi
  append build.log "compile and link" "$scratch/compile"
  report "ok   build"
}

# run_ctest BUILD_DIR LOG TITLE ARGS...: ctest's result lines ("1/9 Test #3: test_ops ....
# Passed   2.1 sec") into the summary, its whole output into the phase log.
run_ctest() {
  local dir=$1 log=$2 title=$3; shift 3
  (cd "$dir" && timeout $((timeout_s * 4)) ctest --output-on-failure "$@") > "$scratch/ctest" 2>&1
  local rc=$?
  append "$log" "$title: ctest $*" "$scratch/ctest"
  grep -E "Test +#[0-9]+:" "$scratch/ctest" | sed -E 's/^ *[0-9]+\/[0-9]+ +//' | tee -a "$summary"
  grep -E "tests passed|No tests were found" "$scratch/ctest" | sed "s/^/$title: /" | tee -a "$summary"
  [ $rc -eq 0 ] || fail "$title: ctest exited $rc (log: $log)"
}

phase_test() {
  echo "== test"
  [ -f "$build/CTestTestfile.cmake" ] || { fail "test: $build is not built; run the build phase first"; return 1; }
  run_ctest "$build" test.log "core CPU tests" -LE gpu -j "$(nproc)"
  run_ctest "$build" test.log "GPU tests" -L gpu
}

# Executables named <prefix>*, one per line, in the build folder.
built() { find "$build" -maxdepth 1 -type f -perm -u+x -name "$1*" 2>/dev/null | sort; }

# The sanitizer's last summary line ("ERROR SUMMARY: 0 errors"), without its "=====" prefix.
sanitizer_verdict() { grep -E 'ERROR SUMMARY|RACECHECK SUMMARY' "$1" | tail -1 | sed -E 's/^=+ *//'; }

# One sanitizer tool on one test: clean, hazards found, the test failing, or no GPU (77).
sanitize_one() {
  local tool=$1 bin=$2 name piece rc
  name=$(basename "$bin")
  piece=$scratch/$tool
  # CT_SANITIZER_FLAGS is split into words on purpose (e.g. "--leak-check full").
  # shellcheck disable=SC2086
  CT_SOURCE_DIR=$root OMP_NUM_THREADS=2 timeout "$timeout_s" "$sanitizer" --tool "$tool" --error-exitcode 99 \
    ${CT_SANITIZER_FLAGS:-} "$bin" > "$piece" 2>&1
  rc=$?
  append sanitize.log "$tool $name (exit $rc)" "$piece"
  case $rc in
    0) report "ok   $tool $name ($(sanitizer_verdict "$piece"))" ;;
    77) report "skip $tool $name (no usable GPU)" ;;
    99) fail "$tool $name: $(sanitizer_verdict "$piece") (log: sanitize.log)" ;;
    124) fail "$tool $name: over ${timeout_s}s (CT_GPU_TIMEOUT) (log: sanitize.log)" ;;
    *) fail "$tool $name: exited $rc under the sanitizer (log: sanitize.log)" ;;
  esac
}

phase_sanitize() {
  echo "== sanitize"
  local bins rc bin name
  bins=$(built test_cuda_)
  [ -n "$bins" ] || { report "note sanitize: no GPU test binaries (tests/test_cuda_*.c) in $build"; return 0; }
  for bin in $bins; do
    name=$(basename "$bin")
    # A plain run first: a test that skips (no GPU) or fails needs no sanitizer to say so.
    CT_SOURCE_DIR=$root OMP_NUM_THREADS=2 timeout "$timeout_s" "$bin" > "$scratch/run" 2>&1
    rc=$?
    append sanitize.log "plain run $name (exit $rc)" "$scratch/run"
    if [ $rc -eq 77 ]; then report "skip sanitize $name (no usable GPU)"; continue; fi
    [ $rc -eq 0 ] || { fail "sanitize $name: the test itself exited $rc (log: sanitize.log)"; continue; }
    if [ -z "$sanitizer" ]; then fail "sanitize $name: compute-sanitizer not found"; continue; fi
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
    OMP_NUM_THREADS=$(nproc) timeout "$timeout_s" "$bin" > "$scratch/stdout" 2> "$scratch/stderr"
    rc=$?
    append bench.log "$name stderr (exit $rc)" "$scratch/stderr"
    # Each JSON line names its bench; a skipped bench's stdout is a message, not JSON.
    if [ $rc -eq 0 ]; then cat "$scratch/stdout" >> "$out/bench.jsonl"; else append bench.log "$name stdout" "$scratch/stdout"; fi
    case $rc in
      0) report "ok   bench $name ($(wc -l < "$scratch/stdout") JSON lines in bench.jsonl)" ;;
      77) report "skip bench $name (no usable GPU)" ;;
      *) fail "bench $name: exited $rc (log: bench.log)" ;;
    esac
  done
}

# The whole of ctune from the carried .debs (CT_DEPS_ROOT), once per invocation of this script.
full_built=""
build_full() {
  [ -z "$full_built" ] || return "$full_built"
  full_built=1
  echo "== full build ($full_build)"
  unpack_all_debs > "$scratch/unpack" 2>&1
  local rc=$?
  cat "$scratch/unpack"
  append full.log "unpack third_party/debs" "$scratch/unpack"
  [ $rc -eq 0 ] || { fail "full build: unpacking third_party/debs (log: full.log)"; return 1; }
  cudnn_args
  # CT_CMAKE_ARGS is split into words on purpose.
  # shellcheck disable=SC2086
  if ! cmake -S "$root" -B "$full_build" -DCMAKE_BUILD_TYPE=Release -DCT_WERROR="${CT_WERROR:-OFF}" \
       -DCT_DEPS_ROOT="$full_deps" "${cudnn_arg[@]}" ${CT_CMAKE_ARGS:-} > "$scratch/configure" 2>&1; then
    append full.log "configure (failed)" "$scratch/configure"
    tail -30 "$scratch/configure"
    fail "full build: configure (log: full.log)"
    return 1
  fi
  append full.log configure "$scratch/configure"
  grep -E "^-- ctune:" "$scratch/configure"
  if ! cmake --build "$full_build" -j "$(nproc)" > "$scratch/compile" 2>&1; then
    append full.log "compile and link (failed)" "$scratch/compile"
    grep -E "error|Error" "$scratch/compile" | head -30
    fail "full build: compile or link (log: full.log)"
    return 1
  fi
  append full.log "compile and link" "$scratch/compile"
  report "ok   full build"
  full_built=0
}

phase_full() {
  build_full || return 1
  echo "== full test"
  # Two threads per test (the tests set OMP_NUM_THREADS=2), so half as many tests as cores at once.
  local jobs=$(( $(nproc) / 2 ))
  [ $jobs -ge 1 ] || jobs=1
  run_ctest "$full_build" full.log "full CPU tests" -LE gpu -j "$jobs"
  run_ctest "$full_build" full.log "full GPU tests" -L gpu
}

phase_train() {
  build_full || return 1
  echo "== train"
  CT_GPU_TIMEOUT=$timeout_s "$root/scripts/gpu_train_compare.sh" "$full_build/ctune" "$full_build/train-compare" \
    > "$scratch/train" 2>&1
  local rc=$?
  append train.log "scripts/gpu_train_compare.sh (exit $rc)" "$scratch/train"
  # Its result lines, in this summary's format; each FAIL counts here too.
  grep -E '^(ok   |FAIL |note )(train|compare) ' "$scratch/train" | tee -a "$summary"
  failures=$((failures + $(grep -cE '^FAIL (train|compare) ' "$scratch/train")))
  case $rc in
    0|1) ;;
    *) fail "train: scripts/gpu_train_compare.sh exited $rc (log: train.log)" ;;
  esac
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
    full) phase_full ;;
    train) phase_train ;;
  esac
done
if [ $failures -eq 0 ]; then
  report "gpu_check: all passed (phases: ${phases[*]}; results in $out)"
  exit 0
fi
report "gpu_check: $failures failed (phases: ${phases[*]}; results in $out)"
exit 1
