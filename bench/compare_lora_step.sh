#!/usr/bin/env bash
# LoRA vs full fine-tuning step time on the tiny intent model, one run of each on the same data,
# threads and batches: recipes/full_finetune_intent_zh.yaml and recipes/lora_intent_zh.yaml from
# the pretrained tiny model (runs/pretrain_tiny_zh, from scripts/main_job.sh). Prints one JSON line
# per run (median step seconds after 10 warm-up steps, from metrics.jsonl's elapsed_s) and the
# ratio LoRA / full. The BLAS line says which kernels ran.
#   bash bench/compare_lora_step.sh [STEPS] [key=value ...]
set -euo pipefail
cd "$(dirname "$0")/.."
steps=${1:-80}
shift || true
ctune="./${CT_BUILD_DIR:-build}/ctune"
base=${CT_LORA_BASE:-runs/pretrain_tiny_zh}
[ -d "$base" ] || { echo "compare_lora_step.sh: $base not found; run scripts/main_job.sh first" >&2; exit 1; }
out=$(mktemp -d /tmp/ctune-lora-bench.XXXXXX)
trap 'rm -rf "$out"' EXIT
"$ctune" --version | sed -n 2p
for recipe in full_finetune_intent_zh lora_intent_zh; do
    "$ctune" train recipes/$recipe.yaml model.path="$base" tokenizer.path="$base/tokenizer" train.max_steps="$steps" \
        train.log_every=1 train.eval_every=0 data.val= checkpoint.every=0 threads=2 output_dir="$out/$recipe" "$@" \
        > "$out/$recipe.log" 2>&1 || { cat "$out/$recipe.log"; exit 1; }
done
python3 - "$out" "$steps" <<'PY'
import json, statistics, sys
out, steps = sys.argv[1], int(sys.argv[2])
median = {}
for recipe in ("full_finetune_intent_zh", "lora_intent_zh"):
    rows = [json.loads(l) for l in open(f"{out}/{recipe}/metrics.jsonl")]
    t = [r["elapsed_s"] for r in rows if r.get("type") == "train"]
    dt = [b - a for a, b in zip(t, t[1:])][10:]
    peak = max(r.get("peak_memory_bytes", 0) for r in rows if r.get("type") == "train")
    median[recipe] = statistics.median(dt)
    print(json.dumps({"bench": "train_step", "recipe": recipe, "steps": steps, "median_step_s": round(median[recipe], 5),
                      "peak_memory_bytes": peak}))
print(json.dumps({"bench": "lora_over_full_step_time", "ratio": round(median["lora_intent_zh"] / median["full_finetune_intent_zh"], 3)}))
PY
