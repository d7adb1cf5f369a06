#!/usr/bin/env bash
# Runs test executables under Valgrind's memcheck (docs/reliability.md, "Valgrind"), at low CPU
# priority, one thread (Valgrind serializes threads anyway).
#
#   scripts/valgrind.sh BUILD_DIR [TEST...]   each named test (default: every test_* and
#                                            fuzz_replay_* of BUILD_DIR that is not a GPU test)
#
# A test fails when memcheck reports an error (invalid read or write, use of uninitialised
# memory, invalid free) or a definitely lost block, or when the test itself fails. Prints one
# line per test and a summary; the full reports are in BUILD_DIR/valgrind/NAME.log.
# CT_VALGRIND_NICE sets the niceness (default 15). CT_VALGRIND_TIMEOUT (seconds per test,
# default 1800) stops a test that takes too long; it is
# reported as "timeout", not as a pass.
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
failed=0 passed=0 skipped=0 timeouts=0
for n in "${tests[@]}"; do
    args=()
    [[ $n == fuzz_replay_* ]] && args=("tests/fuzz/corpus/${n#fuzz_replay_}" "tests/fuzz/regressions/${n#fuzz_replay_}")
    start=$(date +%s)
    timeout "${CT_VALGRIND_TIMEOUT:-1800}" nice -n "${CT_VALGRIND_NICE:-15}" valgrind --tool=memcheck --error-exitcode=99 --leak-check=full \
        --errors-for-leak-kinds=definite --show-leak-kinds=definite --track-origins=no \
        --suppressions=tests/valgrind.supp --log-file="$build/valgrind/$n.log" "$build/$n" "${args[@]}" \
        >"$build/valgrind/$n.out" 2>&1
    status=$?
    seconds=$(( $(date +%s) - start ))
    errors=$(grep -o 'ERROR SUMMARY: [0-9]*' "$build/valgrind/$n.log" | tail -n 1 | grep -o '[0-9]*$')
    case $status in
    0) result="clean"; passed=$((passed + 1)) ;;
    77) result="skipped by the test"; skipped=$((skipped + 1)) ;;
    124) result="timeout after ${CT_VALGRIND_TIMEOUT:-1800} s"; timeouts=$((timeouts + 1)) ;;
    99) result="MEMCHECK ERRORS ($errors): $build/valgrind/$n.log"; failed=$((failed + 1)) ;;
    *) result="TEST FAILED (exit $status): $build/valgrind/$n.out"; failed=$((failed + 1)) ;;
    esac
    echo "valgrind $n: $result (${seconds} s)"
done
echo "valgrind: ${#tests[@]} tests, $passed clean, $failed failed, $skipped skipped, $timeouts timed out"
[ $failed -eq 0 ] && [ $timeouts -eq 0 ]
