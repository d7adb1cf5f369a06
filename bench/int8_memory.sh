#!/usr/bin/env bash
# Peak resident memory of `ctune eval` on a Qwen2.5-0.5B-shaped model (random weights, f32) and on
# its int8-safetensors export, measured with /usr/bin/time -v (maximum resident set size), and
# their ratio. The model gets the tokenizer and task files of a trained ctune model folder, so eval
# scores intent examples (a few: the weights, not the activations, are what is compared).
#
#   bash bench/int8_memory.sh [MODEL_FOLDER_WITH_TOKENIZER] [EXAMPLES]
#       default: runs/full_finetune_intent_zh/model, 1 example
#
# Needs build/ctune and build/bench_random_qwen05, ~6 GB of free disk and ~5 GB of memory.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
tok="${1:-$root/runs/full_finetune_intent_zh/model}"
examples="${2:-1}"
work="$(mktemp -d "${TMPDIR:-/tmp}/ctune-int8-memory.XXXXXX")"
trap 'rm -rf "$work"' EXIT
"$root/build/bench_random_qwen05" "$work/f32" "$tok" f32
cp "$tok"/ctune_task.json "$tok"/labels.json "$work/f32/" 2>/dev/null || true
"$root/build/ctune" export --model "$work/f32" --format int8-safetensors --out "$work/int8" | tail -1
peak() { # peak RSS in kB of ctune eval on $1
    /usr/bin/time -v "$root/build/ctune" eval --model "$1" --data "$root/datasets/data/intent_test.jsonl" \
        --max-examples "$examples" --format intent 2>&1 >/dev/null | sed -n 's/.*Maximum resident set size (kbytes): //p'
}
f32_kb="$(peak "$work/f32")"
int8_kb="$(peak "$work/int8")"
f32_mb="$(du -sm "$work/f32/model.safetensors" | cut -f1)"
int8_mb="$(du -sm "$work/int8/model.safetensors" | cut -f1)"
echo "{\"bench\": \"int8_memory\", \"model\": \"Qwen2.5-0.5B shapes, random\", \"examples\": $examples," \
     "\"f32_peak_rss_mb\": $((f32_kb / 1024)), \"int8_peak_rss_mb\": $((int8_kb / 1024))," \
     "\"ratio\": $(awk "BEGIN {printf \"%.3f\", $int8_kb / $f32_kb}"), \"f32_file_mb\": $f32_mb, \"int8_file_mb\": $int8_mb}"
