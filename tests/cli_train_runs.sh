#!/bin/sh
# ctune train and its run folder.
#   refuse: a second run into an output_dir that holds a run exits 1 with one line naming the
#     folder, its newest checkpoint (resume=...), output_dir=... and overwrite=true, and leaves
#     every file of the folder byte-identical; with overwrite=true it replaces the earlier run
#     (no checkpoint of the earlier run survives, so the new final checkpoint is not pruned).
#   twice: the two training stages of scripts/main_job.sh (pretraining, then fine-tuning from
#     its run folder), with overwrite=true as the script passes it, run twice in a row.
# usage: cli_train_runs.sh CTUNE refuse|twice (run from the source root)
set -u
ctune=$1
mode=$2
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
run="$dir/run"
tiny="model.hidden_size=32 model.intermediate_size=48 model.num_layers=1 model.num_heads=2 model.num_kv_heads=1
      tokenizer.vocab_size=300 data.val= train.log_every=1 threads=2"

fail() { echo "$*"; exit 1; }
# Every file below the run folder with its checksum.
sums() { (cd "$run" && find . -type f | sort | xargs md5sum); }

if [ "$mode" = refuse ]; then
    # shellcheck disable=SC2086
    "$ctune" train recipes/pretrain_tiny_zh.yaml output_dir="$run" $tiny train.max_steps=2 checkpoint.every=1 \
        >"$dir/out" 2>&1 || { cat "$dir/out"; fail "the first run failed"; }
    before=$(sums)
    # shellcheck disable=SC2086
    "$ctune" train recipes/pretrain_tiny_zh.yaml output_dir="$run" $tiny train.max_steps=1 >"$dir/out" 2>&1
    status=$?
    cat "$dir/out"
    [ $status -eq 1 ] || fail "exit status $status for a second run into $run (1 expected)"
    [ "$(wc -l <"$dir/out")" -eq 1 ] || fail "the refusal is not one line"
    expected="ctune train: output_dir=$run already holds a run (recipe.yaml, metrics.jsonl, model/, checkpoints); continue it with resume=$run/checkpoints/step-00000002.h5, train into another output_dir=..., or set overwrite=true to replace it"
    [ "$(cat "$dir/out")" = "$expected" ] || fail "expected: $expected"
    [ "$(sums)" = "$before" ] || fail "the refused run changed $run"
    # shellcheck disable=SC2086
    "$ctune" train recipes/pretrain_tiny_zh.yaml output_dir="$run" $tiny train.max_steps=1 overwrite=true \
        >"$dir/out" 2>&1 || { cat "$dir/out"; fail "overwrite=true failed"; }
    [ "$(ls "$run/checkpoints")" = "step-00000001.h5" ] || fail "checkpoints after overwrite: $(ls "$run/checkpoints")"
    [ "$(grep -c '"type":"start"' "$run/metrics.jsonl")" -eq 1 ] || fail "metrics.jsonl mixes two runs"
    grep -q "^overwrite: removed the earlier run in $run$" "$dir/out" || fail "overwrite did not say so"
    echo "refused with one line, folder unchanged; overwrite=true replaced the run"
    exit 0
fi

[ "$mode" = twice ] || fail "unknown mode $mode"
for attempt in 1 2; do
    # shellcheck disable=SC2086
    "$ctune" train recipes/pretrain_tiny_zh.yaml output_dir="$dir/pretrain" overwrite=true $tiny train.max_steps=2 \
        >"$dir/out" 2>&1 || { cat "$dir/out"; fail "pretraining, attempt $attempt, failed"; }
    "$ctune" train recipes/full_finetune_intent_zh.yaml model.path="$dir/pretrain" \
        tokenizer.path="$dir/pretrain/tokenizer" output_dir="$dir/finetune" overwrite=true train.max_steps=2 \
        data.max_examples=40 data.val= threads=2 >"$dir/out" 2>&1 || { cat "$dir/out"; fail "fine-tuning, attempt $attempt, failed"; }
    grep -q "^model: loaded $dir/pretrain/model (the run's model/ folder, [0-9]* parameters)$" "$dir/out" ||
        { cat "$dir/out"; fail "fine-tuning did not say which model it loaded"; }
done
grep -q "^overwrite: removed the earlier run in $dir/finetune$" "$dir/out" || { cat "$dir/out"; fail "no overwrite line"; }
echo "both stages ran twice"
