#!/usr/bin/env bash
# Runs test executables under Valgrind's memcheck (docs/reliability.md, "Valgrind"), at low CPU
# priority, one thread (Valgrind serializes threads anyway).
#
#   scripts/valgrind.sh BUILD_DIR [TEST...]   each named test (default: every test_* and
#                                            fuzz_replay_* of BUILD_DIR that is not a GPU test)
#
# A test fails when memcheck reports an error or a definitely lost block, or when the test itself
# fails (scripts/memcheck.sh has the rules, CT_VALGRIND_NICE and CT_VALGRIND_TIMEOUT). Prints one
# line per test and a summary; the full reports are in BUILD_DIR/valgrind/NAME.log. A test that
# runs out of time is reported as "timeout", not as a pass. scripts/valgrind_cli.sh does the same
# for ctune's own commands.
set -uo pipefail
cd "$(dirname "$0")/.."
build=${1:?usage: scripts/valgrind.sh BUILD_DIR [TEST...]}
shift
command -v valgrind >/dev/null || { echo "valgrind is not installed (apt-get install valgrind)"; exit 1; }
tests=("$@")
if [ ${#tests[@]} -eq 0 ]; then
    for t in "$build"/test_* "$build"/fuzz_replay_*; do
        n=$(basename "$t")
        [ -x "$t" ] && [[ $n != test_cuda_* ]] && tests+=("$n")
    done
fi
mkdir -p "$build/valgrind"
# CT_NO_REGEX_JIT: memcheck cannot follow PCRE2's JIT code (datasets/regex_jit.h)
export OMP_NUM_THREADS=1 CT_SOURCE_DIR=$PWD CT_NO_REGEX_JIT=1
# shellcheck source=scripts/memcheck.sh
. scripts/memcheck.sh
for n in "${tests[@]}"; do
    args=()
    [[ $n == fuzz_replay_* ]] && args=("tests/fuzz/corpus/${n#fuzz_replay_}" "tests/fuzz/regressions/${n#fuzz_replay_}")
    memcheck "$n" "$build/valgrind/$n" "$build/$n" "${args[@]}"
done
echo "valgrind: ${#tests[@]} tests, $passed clean, $failed failed, $skipped skipped, $timeouts timed out"
[ $failed -eq 0 ] && [ $timeouts -eq 0 ]
