#!/usr/bin/env bash
# LoRA vs full fine-tuning step cost on the tiny intent model: recipes/full_finetune_intent_zh.yaml
# and recipes/lora_intent_zh.yaml from the pretrained tiny model (runs/pretrain_tiny_zh, from
# scripts/main_job.sh), on one thread. Wall-clock step times move by 20-35% between runs on a
# shared VM, so this measures user CPU seconds: a run of 60 steps minus a run of 20 (set-up and
# the final save cancel), divided by 40. CT_LORA_REPS repetitions (default 3) alternate which
# recipe goes first; each gives a ratio, and the median ratio is the result. Prints one JSON line
# per recipe and repetition, then the ratios and their median.
#   bash bench/compare_lora_step.sh [key=value ...]      # overrides go to both runs
# A GEMM-bound base (docs/PERF.md): CT_LORA_BASE=DIR (a run folder or its model/), CT_LORA_TOKENIZER=DIR,
# and CT_LORA_STEPS="5 15" (the short and the long run) to keep a slow model's runs short.
set -euo pipefail
cd "$(dirname "$0")/.."
ctune="${CT_CTUNE:-./${CT_BUILD_DIR:-build}/ctune}"
base=${CT_LORA_BASE:-runs/pretrain_tiny_zh}
tokenizer=${CT_LORA_TOKENIZER:-$base/tokenizer}
reps=${CT_LORA_REPS:-3}
read -r short long <<< "${CT_LORA_STEPS:-20 60}"
[ -d "$base" ] || { echo "compare_lora_step.sh: $base not found; run scripts/main_job.sh first" >&2; exit 1; }
out=$(mktemp -d /tmp/ctune-lora-bench.XXXXXX)
trap 'rm -rf "$out"' EXIT
"$ctune" --version | sed -n 2p
run_recipe() { # recipe rep
    for steps in "$short" "$long"; do
        /usr/bin/time -f "%U" -o "$out/$1.$2.$steps.user" "$ctune" train recipes/$1.yaml model.path="$base" \
            tokenizer.path="$tokenizer" train.max_steps=$steps train.eval_every=0 data.val= checkpoint.every=0 \
            threads=1 output_dir="$out/run" overwrite=true "${@:3}" > "$out/log" 2>&1 || { cat "$out/log"; exit 1; }
    done
}
for ((rep = 1; rep <= reps; rep++)); do
    if ((rep % 2)); then order="full_finetune_intent_zh lora_intent_zh"; else order="lora_intent_zh full_finetune_intent_zh"; fi
    for recipe in $order; do run_recipe "$recipe" "$rep" "$@"; done
done
python3 - "$out" "$short" "$long" "$reps" <<'PY'
import json, statistics, sys
out, short, long, reps = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
ratios = []
for rep in range(1, reps + 1):
    per_step = {}
    for recipe in ("full_finetune_intent_zh", "lora_intent_zh"):
        user = {s: float(open(f"{out}/{recipe}.{rep}.{s}.user").read()) for s in (short, long)}
        per_step[recipe] = (user[long] - user[short]) / (long - short)
        print(json.dumps({"bench": "train_step_cpu", "recipe": recipe, "threads": 1, "rep": rep,
                          "user_s_per_step": round(per_step[recipe], 4)}))
    ratios.append(per_step["lora_intent_zh"] / per_step["full_finetune_intent_zh"])
print(json.dumps({"bench": "lora_over_full_step_cpu", "ratios": [round(r, 3) for r in ratios],
                  "ratio": round(statistics.median(ratios), 3)}))
PY
