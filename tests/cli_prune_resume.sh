#!/bin/sh
# Gradual pruning with masks that last, through an interrupted run: a run that prunes every 2
# steps (cubic schedule to 50%) and a run resumed from its step-3 checkpoint must write the same
# model bit for bit, with exactly 50% of the projection weights zero, and metrics.jsonl must hold
# the pruning records. Usage: cli_prune_resume.sh CTUNE (from the source root).
set -eu
ctune=$1
dir=${TMPDIR:-/tmp}/ctune-prune-resume-$$
mkdir -p "$dir"
trap 'rm -rf "$dir"' EXIT
common="model.path=tests/fixtures/models/qwen2 data.train=datasets/data/intent_train.jsonl data.val= data.labels=datasets/data/labels.json
 data.format=intent data.max_examples=64 data.max_seq_len=64 data.batch_tokens=512 data.batch_size=8 data.truncation=left
 train.max_steps=8 train.log_every=1 threads=2 optimizer.lr=1e-3 checkpoint.every=3 checkpoint.keep_last=0
 prune.method=l1_unstructured prune.schedule=gradual prune.amount=0.5 prune.start_step=0 prune.end_step=6 prune.every=2"
# shellcheck disable=SC2086
"$ctune" train recipes/prune_intent_zh.yaml $common data.test= output_dir="$dir/a" > "$dir/a.log" 2>&1 || { cat "$dir/a.log"; exit 1; }
# b: run a's folder as it was at step 3 (between two pruning steps: its masks must come back), resumed there
cp -r "$dir/a" "$dir/b"
rm -rf "$dir/b/model" "$dir/b/checkpoints/step-00000006.h5" "$dir/b/checkpoints/step-00000008.h5"
# shellcheck disable=SC2086
"$ctune" train recipes/prune_intent_zh.yaml $common data.test= output_dir="$dir/b" resume="$dir/b/checkpoints/step-00000003.h5" \
  > "$dir/b.log" 2>&1 || { cat "$dir/b.log"; exit 1; }
cmp "$dir/a/model/model.safetensors" "$dir/b/model/model.safetensors" || { echo "resumed model differs"; exit 1; }
grep -q 'prune: step 6, target sparsity 0.5000, measured 0.5000' "$dir/a.log" || { cat "$dir/a.log"; exit 1; }
grep -q 'measured from the file): 0.5000 of the 21 pruned tensors' "$dir/a.log" || { cat "$dir/a.log"; exit 1; }
test "$(grep -c '"type":"prune"' "$dir/a/metrics.jsonl")" -ge 4 || { echo "metrics.jsonl lacks prune records"; exit 1; }
grep -q 'sparsity' "$dir/a/plot.svg" || { echo "plot.svg shows no sparsity"; exit 1; }
echo "gradual pruning resumed bit for bit"
