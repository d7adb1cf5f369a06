#!/usr/bin/env bash
# Runs the libFuzzer harnesses (tests/fuzz/, docs/reliability.md) at the lowest CPU priority.
#
#   scripts/fuzz.sh SECONDS [NAME...]   each named harness (default: all) for SECONDS of wall time
#
# Builds build-fuzz (clang, ASan + UBSan, CT_FUZZ=ON) first. Each harness starts from its
# committed seeds (tests/fuzz/corpus/NAME) plus what earlier runs found (build-fuzz/corpus/NAME,
# not committed); a crashing input lands in build-fuzz/crashes/NAME/ and fails the script, with
# the command that replays it. CT_FUZZ_ARGS adds libFuzzer options (-jobs, -dict, ...). Every run appends "name wall_s cpu_s exit" to build-fuzz/fuzz-log.tsv,
# the record docs/reliability.md sums. CT_FUZZ_NICE (default 19) is the niceness.
set -uo pipefail
cd "$(dirname "$0")/.."
seconds=${1:?usage: scripts/fuzz.sh SECONDS [NAME...]}
shift
build=${CT_FUZZ_BUILD_DIR:-build-fuzz}
if [ ! -f "$build/CMakeCache.txt" ]; then
    CC=clang cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Sanitize -DCT_FUZZ=ON -DCT_ENABLE_CUDA=OFF -DCT_ENABLE_ONEDNN=OFF \
        ${CT_CMAKE_ARGS:-} > "$build.configure.log" 2>&1 || { cat "$build.configure.log"; exit 1; }
fi
# CT_FUZZ_NO_BUILD=1: run the executables as they are (a long campaign while the sources change).
if [ -z "${CT_FUZZ_NO_BUILD:-}" ]; then
    nice -n 19 cmake --build "$build" -j "$(nproc)" --target fuzz_all > "$build/fuzz-build.log" 2>&1 ||
        { tail -n 30 "$build/fuzz-build.log"; exit 1; }
fi
names=("$@")
if [ ${#names[@]} -eq 0 ]; then
    for f in tests/fuzz/fuzz_*.c; do
        n=$(basename "$f" .c)
        [ "$n" = fuzz_util ] || names+=("${n#fuzz_}")
    done
fi
# allocator_may_return_null: a huge allocation returns NULL to ctune (which must report it)
# instead of aborting; a single request over malloc_limit_mb still counts as a finding, since a
# reader should check a declared size against the file before allocating it.
export ASAN_OPTIONS=${ASAN_OPTIONS:-allocator_may_return_null=1:detect_leaks=1}
export LSAN_OPTIONS=${LSAN_OPTIONS:-suppressions=$PWD/tests/fuzz/lsan.supp:print_suppressions=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
export OMP_NUM_THREADS=1 CT_SOURCE_DIR=$PWD
failed=0
for name in "${names[@]}"; do
    work="$build/corpus/$name" crashes="$build/crashes/$name"
    mkdir -p "$work" "$crashes"
    start=$(date +%s.%N)
    # the first folder receives what the run finds; the seeds and the regressions are read only
    seeds=("tests/fuzz/corpus/$name")
    [ -d "tests/fuzz/regressions/$name" ] && seeds+=("tests/fuzz/regressions/$name")
    /usr/bin/time -f "%U %S" -o "$build/time.$name" nice -n "${CT_FUZZ_NICE:-19}" "$build/fuzz_$name" "$work" "${seeds[@]}" \
        -max_total_time="$seconds" -timeout=20 -rss_limit_mb=2048 -malloc_limit_mb=1024 \
        -artifact_prefix="$crashes/" -print_final_stats=1 ${CT_FUZZ_ARGS:-} > "$build/log.$name" 2>&1
    status=$?
    wall=$(echo "$(date +%s.%N) - $start" | bc)
    cpu=$(awk 'END { print $1 + $2 }' "$build/time.$name")
    printf '%s\t%.0f\t%.1f\t%d\n' "$name" "$wall" "$cpu" "$status" >> "$build/fuzz-log.tsv"
    runs=$(grep -ao 'stat::number_of_executed_units: *[0-9]*' "$build/log.$name" | grep -o '[0-9]*$')
    printf "fuzz %s: %.0f s, %s CPU-s, %s inputs, exit %d\n" "$name" "$wall" "$cpu" "${runs:-?}" "$status"
    if [ $status -ne 0 ]; then
        failed=1
        grep -aE '^(==[0-9]+==ERROR|SUMMARY|fuzz invariant|.*runtime error)' "$build/log.$name" | head -n 5
        echo "  inputs: $crashes/ (replay: $build/fuzz_$name FILE, or build/fuzz_replay_$name FILE)"
    fi
done
exit $failed
