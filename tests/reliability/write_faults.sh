#!/usr/bin/env bash
# Fault injection: every write-side call of a save fails in turn (tests/reliability/fail_io.c,
# loaded with LD_PRELOAD), and each time ctune exits 1 with one line, leaves what was on disk
# before as it was, and leaves no partial or temporary file (docs/reliability.md).
#
#   tests/reliability/write_faults.sh CTUNE FAIL_IO_SO train|gguf|hf [STRIDE]
#     train  the step-4 checkpoint of a run resumed from its step-2 checkpoint: the step-2 file
#            stays byte-identical and still resumes to step 4 afterwards; no step-4 file
#     gguf   ctune export --format gguf of that run: no output file
#     hf     ctune export --format hf: no output folder
#     STRIDE fail every STRIDE-th call only (default 1: every call)
#
# A first run with no failure counts the watched calls (write, pwrite, ftruncate, fsync, close
# of a file written, rename) on the save's paths; then call 1, 2, ... N fails, each in a fresh
# copy of the run. The one exception to "no output": a failure to sync the directory after the
# rename (the last call) leaves the output complete, says so ("written, but its directory ...
# could not be synced"), and exits 1; the output must then load (train) or equal the output of
# the run without a fault (exports). Exits 1 on any failed case.
set -uo pipefail
ctune=${1:?usage: write_faults.sh CTUNE FAIL_IO_SO train|gguf|hf [STRIDE]}
shim=${2:?fail_io.so}
kind=${3:?train, gguf or hf}
stride=${4:-1}
dir=$(mktemp -d "${TMPDIR:-/tmp}/ctune-write-faults.XXXXXX")
trap 'rm -rf "$dir"' EXIT
args=(model.hidden_size=32 model.intermediate_size=48 model.num_layers=1 model.num_heads=2 model.num_kv_heads=1
      tokenizer.vocab_size=300 data.val= train.eval_every=0 checkpoint.every=2 threads=1)
"$ctune" train recipes/pretrain_tiny_zh.yaml output_dir="$dir/pristine" train.max_steps=2 "${args[@]}" \
    >"$dir/out" 2>"$dir/err" || { echo "the first run failed"; cat "$dir/err"; exit 1; }
previous_rel=checkpoints/step-00000002.h5

case $kind in
train)
    match=/checkpoints
    save() {
        "$ctune" train recipes/pretrain_tiny_zh.yaml output_dir="$dir/run" train.max_steps=4 \
            resume="$dir/run/$previous_rel" "${args[@]}"
    }
    prefix="ctune train: "
    output="$dir/run/checkpoints/step-00000004.h5" ;;
gguf)
    match=/export
    save() { "$ctune" export --model "$dir/run" --format gguf --out "$dir/export/model.gguf"; }
    prefix="ctune export: "
    output="$dir/export/model.gguf" ;;
hf)
    match=/export
    save() { "$ctune" export --model "$dir/run" --format hf --out "$dir/export/hf"; }
    prefix="ctune export: "
    output="$dir/export/hf" ;;
*) echo "unknown kind $kind"; exit 2 ;;
esac

fresh() { rm -rf "$dir/run" "$dir/export" && cp -r "$dir/pristine" "$dir/run" && mkdir -p "$dir/export"; }
inject() { CT_FAIL_IO_MATCH=$match CT_FAIL_IO_NTH=$1 CT_FAIL_IO_REPORT="$dir/report" LD_PRELOAD=$shim save; }

fresh
inject 0 >"$dir/out" 2>"$dir/err" || { echo "the save without a fault failed"; cat "$dir/err"; exit 1; }
read -r calls _ <"$dir/report"
[ "$calls" -gt 0 ] || { echo "no watched call: the shim saw nothing under $match"; exit 1; }
[ -e "$output" ] || { echo "the save without a fault wrote no $output"; exit 1; }
cp -r "$output" "$dir/reference_output"

# After "written, but its directory could not be synced": the output is whole.
output_whole() {
    case $kind in
    train) "$ctune" export --model "$output" --format hf --out "$dir/check_export" >/dev/null 2>&1 &&
           rm -rf "$dir/check_export" ;;
    gguf) cmp -s "$output" "$dir/reference_output" ;;
    hf) diff -r "$output" "$dir/reference_output" >/dev/null ;;
    esac
}

failed=0 tried=0
for n in $(seq 1 "$stride" "$calls"); do
    fresh
    inject "$n" >"$dir/out" 2>"$dir/err"
    status=$?
    read -r _ failed_call <"$dir/report"
    errors=$(grep -c "^$prefix" "$dir/err")
    problem=""
    [ "$failed_call" -eq "$n" ] || problem="call $n was not reached (the run made fewer calls)"
    [ -z "$problem" ] && [ $status -ne 1 ] && problem="exit status $status, expected 1"
    [ -z "$problem" ] && [ "$errors" -ne 1 ] && problem="$errors error lines, expected 1"
    if [ -z "$problem" ] && [ -e "$output" ]; then
        if ! grep -q "written, but its directory .* could not be synced" "$dir/err"; then
            problem="$output exists after a failed save"
        elif ! output_whole; then
            problem="$output is not whole after a failed directory sync"
        fi
    fi
    [ -z "$problem" ] && ! cmp -s "$dir/run/$previous_rel" "$dir/pristine/$previous_rel" &&
        problem="the step-2 checkpoint changed"
    [ -z "$problem" ] && leftover=$(find "$dir/run" "$dir/export" -name '*.tmp*' | head -n 1) &&
        [ -n "$leftover" ] && problem="temporary file left: $leftover"
    tried=$((tried + 1))
    if [ -n "$problem" ]; then
        echo "call $n of $calls: FAILED: $problem"
        tail -n 2 "$dir/err"
        failed=$((failed + 1))
    else
        echo "call $n of $calls: exit 1: $(grep "^$prefix" "$dir/err")"
    fi
done
if [ "$kind" = train ]; then
    fresh
    save >"$dir/out" 2>"$dir/err" || { echo "after the faults, the step-2 checkpoint does not resume"; cat "$dir/err"; exit 1; }
fi
echo "write_faults $kind: $tried of $calls calls failed in turn; $failed cases wrong"
[ $failed -eq 0 ]
