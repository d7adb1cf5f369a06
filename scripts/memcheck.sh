# memcheck NAME LOGBASE COMMAND...: runs COMMAND under Valgrind's memcheck with ctune's rules and
# prints "valgrind NAME: RESULT (SECONDS s)". Sourced by scripts/valgrind.sh and
# scripts/valgrind_cli.sh, which count the results in passed, failed, skipped and timeouts.
# A run fails on a memcheck error (invalid read or write, use of uninitialised memory, invalid
# free) or a definitely lost block (exit 99), or when the command itself fails; exit 77 is a test
# that skipped itself; 124 is CT_VALGRIND_TIMEOUT (default 1800 s) running out. The memcheck report
# is LOGBASE.log, the command's output LOGBASE.out. CT_VALGRIND_NICE sets the niceness (default 15).
passed=0 failed=0 skipped=0 timeouts=0
memcheck() {
    local name=$1 log=$2
    shift 2
    local start status seconds errors result
    start=$(date +%s)
    timeout "${CT_VALGRIND_TIMEOUT:-1800}" nice -n "${CT_VALGRIND_NICE:-15}" valgrind --tool=memcheck \
        --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite --show-leak-kinds=definite \
        --track-origins=no --suppressions=tests/valgrind.supp --log-file="$log.log" "$@" >"$log.out" 2>&1
    status=$?
    seconds=$(($(date +%s) - start))
    errors=$(grep -o 'ERROR SUMMARY: [0-9]*' "$log.log" | tail -n 1 | grep -o '[0-9]*$')
    case $status in
    0) result="clean"; passed=$((passed + 1)) ;;
    77) result="skipped by the test"; skipped=$((skipped + 1)) ;;
    124) result="timeout after ${CT_VALGRIND_TIMEOUT:-1800} s"; timeouts=$((timeouts + 1)) ;;
    99) result="MEMCHECK ERRORS ($errors): $log.log"; failed=$((failed + 1)) ;;
    *) result="FAILED (exit $status): $log.out"; failed=$((failed + 1)) ;;
    esac
    echo "valgrind $name: $result (${seconds} s)"
}
