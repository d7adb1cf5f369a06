#!/bin/sh
# Tests that need the shared folder (the Qwen3 tokenizer) say why they skip: without it they exit
# 77 naming the folder they looked in and CT_SHARED_DIR, leave that reason for ctest's summary
# (tests/report_skips.cmake prints it), and under CI=true they fail instead (exit 1).
# usage: cli_shared_data_skips.sh CMAKE TEST_BINARY... (run from the source root)
set -u
cmake=$1
shift
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
missing="$dir/no-shared"
failed=0
fail() { echo "$*"; failed=1; }
for test_binary in "$@"; do
    name=$(basename "$test_binary")
    mkdir -p "$dir/notes"
    out=$(CI= CT_SHARED_DIR="$missing" CT_SKIP_NOTES="$dir/notes" "$test_binary" 2>&1)
    status=$?
    [ $status -eq 77 ] || fail "$name without the shared folder: exit $status, expected 77 (skipped)"
    echo "$out" | grep -q "^SKIPPED: data/qwen3-tokenizer not found (looked in $missing/data/qwen3-tokenizer); set CT_SHARED_DIR" ||
        fail "$name: no skip reason naming $missing and CT_SHARED_DIR in its output: $out"
    report=$("$cmake" "-DNOTES=$dir/notes" -DACTION=report -P tests/report_skips.cmake 2>&1)
    echo "$report" | grep -q "^  $name: data/qwen3-tokenizer not found (looked in $missing/" ||
        fail "$name: the summary's report does not give the reason: '$report'"
    [ -z "$(ls "$dir/notes")" ] || fail "$name: the report left its notes behind"
    out=$(CI=true CT_SHARED_DIR="$missing" CT_SKIP_NOTES="$dir/notes" "$test_binary" 2>&1)
    status=$?
    [ $status -eq 1 ] || fail "$name under CI=true without the shared folder: exit $status, expected 1 (failed)"
    echo "$out" | grep -q "FAILED under CI=true: data/qwen3-tokenizer not found" || fail "$name under CI=true: no reason: $out"
    [ $failed -eq 0 ] && echo "$name: skips with its reason; fails under CI=true"
done
exit $failed
