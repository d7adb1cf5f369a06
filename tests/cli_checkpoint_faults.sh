#!/bin/sh
# A checkpoint write that fails partway (a full disk) ends ctune train with exit 1 and one
# line, not a crash; the previous checkpoint stays byte for byte as it was and still resumes,
# and no temporary file is left. The failure is injected with a file-size limit (ulimit -f, in
# 512-byte blocks, with SIGXFSZ ignored so that write() fails with EFBIG as on a full disk) at
# points from early in the step-4 checkpoint to its last bytes, which HDF5 writes while closing.
# usage: cli_checkpoint_faults.sh CTUNE (run from the source root)
set -u
ctune=$1
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
set -- output_dir="$dir/run" model.hidden_size=32 model.intermediate_size=48 model.num_layers=1 \
    model.num_heads=2 model.num_kv_heads=1 tokenizer.vocab_size=300 data.val= train.eval_every=0 \
    checkpoint.every=2 threads=2
ckpt="$dir/run/checkpoints"
"$ctune" train recipes/pretrain_tiny_zh.yaml train.max_steps=2 "$@" >"$dir/out" 2>"$dir/err" ||
    { echo "the first run failed"; cat "$dir/err"; exit 1; }
previous="$ckpt/step-00000002.h5"
cp "$previous" "$dir/previous.h5" || exit 1
size=$(wc -c <"$previous")
blocks=$((size / 512))
# Every file the resumed run writes before its checkpoint (tokenizer, recipe, metrics) is under
# 16 blocks; the step-4 checkpoint has the size of the step-2 one.
failed=0
for limit in 16 $((blocks / 4)) $((blocks / 2)) $((blocks * 3 / 4)) $((blocks - 8)) $((blocks - 1)) $blocks; do
    sh -c 'ulimit -f "$1" && trap "" XFSZ && shift && exec "$@"' sh "$limit" \
        "$ctune" train recipes/pretrain_tiny_zh.yaml train.max_steps=4 resume="$previous" "$@" >"$dir/out" 2>"$dir/err"
    status=$?
    errors=$(grep -c '^ctune train: ' "$dir/err")
    last=$(tail -n 1 "$dir/err")
    problem=""
    [ $status -eq 1 ] || problem="exit status $status, expected 1"
    [ -z "$problem" ] && [ "$errors" -ne 1 ] && problem="$errors error lines, expected 1"
    [ -z "$problem" ] && case "$last" in
        "ctune train: $ckpt/step-00000004.h5.tmp-"*"File too large; check free disk space") ;;
        *) problem="unexpected last line" ;;
    esac
    [ -z "$problem" ] && ! cmp -s "$previous" "$dir/previous.h5" && problem="the step-2 checkpoint changed"
    [ -z "$problem" ] && [ -e "$ckpt/step-00000004.h5" ] && problem="a step-4 checkpoint exists"
    [ -z "$problem" ] && ls "$ckpt" | grep -q '\.tmp' && problem="a temporary file was left: $(ls "$ckpt")"
    if [ -n "$problem" ]; then
        echo "limit $limit blocks ($((limit * 512)) of $size bytes): $problem"
        cat "$dir/err"
        failed=1
    else
        echo "limit $limit blocks: $last"
    fi
done
[ $failed -eq 0 ] || exit 1
"$ctune" train recipes/pretrain_tiny_zh.yaml train.max_steps=4 resume="$previous" "$@" >"$dir/out" 2>"$dir/err" ||
    { echo "the step-2 checkpoint no longer resumes"; cat "$dir/err"; exit 1; }
grep -q "resumed from $previous at step 2" "$dir/err" || { echo "the resume did not start at step 2"; cat "$dir/err"; exit 1; }
echo "every failed checkpoint write exited 1; the step-2 checkpoint is intact and resumes"
