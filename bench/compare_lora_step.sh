#!/usr/bin/env bash
# LoRA vs full fine-tuning step cost on the tiny intent model: recipes/full_finetune_intent_zh.yaml
# and recipes/lora_intent_zh.yaml from the pretrained tiny model (runs/pretrain_tiny_zh, from
# scripts/main_job.sh), on one thread. Wall-clock step times move by 20-35% between runs on a
# shared VM, so this measures user CPU seconds: a run of 60 steps minus a run of 20 (set-up and
# the final save cancel), divided by 40. Prints one JSON line per recipe, then the ratio.
#   bash bench/compare_lora_step.sh [key=value ...]      # overrides go to both runs
# A GEMM-bound base (docs/PERF.md): CT_LORA_BASE=DIR (a run folder or its model/), CT_LORA_TOKENIZER=DIR,
# and CT_LORA_STEPS="5 15" (the short and the long run) to keep a slow model's runs short.
set -euo pipefail
cd "$(dirname "$0")/.."
ctune="./${CT_BUILD_DIR:-build}/ctune"
base=${CT_LORA_BASE:-runs/pretrain_tiny_zh}
tokenizer=${CT_LORA_TOKENIZER:-$base/tokenizer}
read -r short long <<< "${CT_LORA_STEPS:-20 60}"
[ -d "$base" ] || { echo "compare_lora_step.sh: $base not found; run scripts/main_job.sh first" >&2; exit 1; }
out=$(mktemp -d /tmp/ctune-lora-bench.XXXXXX)
trap 'rm -rf "$out"' EXIT
"$ctune" --version | sed -n 2p
for recipe in full_finetune_intent_zh lora_intent_zh; do
    for steps in "$short" "$long"; do
        /usr/bin/time -f "%U" -o "$out/$recipe.$steps.user" "$ctune" train recipes/$recipe.yaml model.path="$base" \
            tokenizer.path="$tokenizer" train.max_steps=$steps train.eval_every=0 data.val= checkpoint.every=0 \
            threads=1 output_dir="$out/run" overwrite=true "$@" > "$out/log" 2>&1 || { cat "$out/log"; exit 1; }
    done
done
python3 - "$out" "$short" "$long" <<'PY'
import json, sys
out, short, long = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
per_step = {}
for recipe in ("full_finetune_intent_zh", "lora_intent_zh"):
    user = {s: float(open(f"{out}/{recipe}.{s}.user").read()) for s in (short, long)}
    per_step[recipe] = (user[long] - user[short]) / (long - short)
    print(json.dumps({"bench": "train_step_cpu", "recipe": recipe, "threads": 1,
                      "user_s_per_step": round(per_step[recipe], 4)}))
print(json.dumps({"bench": "lora_over_full_step_cpu",
                  "ratio": round(per_step["lora_intent_zh"] / per_step["full_finetune_intent_zh"], 3)}))
PY
