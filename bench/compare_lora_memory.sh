#!/usr/bin/env bash
# Peak resident memory and step time of full fine-tuning (f32) against LoRA on a bf16 base and on
# an INT8 base (model.base_dtype), and of DoRA against LoRA, on a Qwen2.5-0.5B-shaped model with
# random weights stored in bf16 (bench/bench_random_qwen05.c: hidden 896, 24 layers, 14 heads,
# 2 kv heads, MLP 4864, vocabulary 151936, tied): one row of 512 packed tokens per step (batch 1),
# gradient checkpointing on, adapters r 16 alpha 32 on every projection (all-linear).
#
# Each configuration is its own `ctune train` process of STEPS steps (default 3); its
# metrics.jsonl gives the peak resident set at the last step (getrusage's ru_maxrss: loading
# included, the final merge and save excluded) and the seconds of each step after the first.
# Prints one JSON line per configuration and the ratios.
#   bash bench/compare_lora_memory.sh [STEPS] [MODEL_DIR]   # MODEL_DIR: made here when absent
# CT_BENCH_THREADS sets threads= (default: every core).
set -euo pipefail
cd "$(dirname "$0")/.."
build="${CT_BUILD_DIR:-build}"
steps=${1:-3}
out=$(mktemp -d /tmp/ctune-lora-memory.XXXXXX)
trap 'rm -rf "$out"' EXIT
model=${2:-$out/qwen05}
tok=${CT_BENCH_TOKENIZER:-runs/pretrain_tiny_zh/tokenizer}
if [ ! -d "$model" ]; then
    "./$build/bench_random_qwen05" "$model" "$tok" > /dev/null
fi
"./$build/ctune" --version | sed -n 2p
common=(model.path="$model" tokenizer.path="$model" model.gradient_checkpointing=true model.dropout=0
        data.format=text data.train=datasets/data/pretrain_train.txt data.val= data.test= data.labels=
        data.system_prompt= data.max_seq_len=512 data.batch_tokens=512 data.batch_size=1 data.packing=true
        data.truncation=right train.max_steps="$steps" train.log_every=1 train.eval_every=0 checkpoint.every=0
        threads="${CT_BENCH_THREADS:-$(nproc)}")
lora=(lora.target_modules=all-linear lora.r=16 lora.alpha=32 lora.dropout=0)
run() { # name, recipe, overrides...
    name=$1 recipe=$2
    shift 2
    "./$build/ctune" train "recipes/$recipe.yaml" "${common[@]}" output_dir="$out/$name" "$@" > "$out/$name.log" 2>&1 ||
        { tail -5 "$out/$name.log"; exit 1; }
    cp "$out/$name/metrics.jsonl" "$out/$name.metrics.jsonl"
    rm -rf "${out:?}/$name"
}
# CT_BENCH_CONFIGS runs a subset; CT_BENCH_KEEP names a folder that receives each metrics.jsonl.
configs=${CT_BENCH_CONFIGS:-full_f32 lora_bf16 lora_int8 dora_bf16}
for name in $configs; do
    case $name in
    full_f32) run full_f32 full_finetune_intent_zh ;;
    lora_bf16) run lora_bf16 lora_intent_zh "${lora[@]}" model.base_dtype=bf16 ;;
    lora_int8) run lora_int8 lora_intent_zh "${lora[@]}" model.base_dtype=int8 ;;
    dora_bf16) run dora_bf16 lora_intent_zh "${lora[@]}" model.base_dtype=bf16 lora.use_dora=true ;;
    *) echo "compare_lora_memory.sh: unknown configuration $name" >&2; exit 2 ;;
    esac
    if [ -n "${CT_BENCH_KEEP:-}" ]; then mkdir -p "$CT_BENCH_KEEP"; cp "$out/$name.metrics.jsonl" "$CT_BENCH_KEEP/"; fi
done
python3 - "$out" "${CT_BENCH_KEEP:-}" <<'PY'
import json, os, sys
out, keep = sys.argv[1], sys.argv[2]
rows = {}
for name in ("full_f32", "lora_bf16", "lora_int8", "dora_bf16"):
    path = f"{out}/{name}.metrics.jsonl"
    if not os.path.exists(path) and keep:
        path = f"{keep}/{name}.metrics.jsonl"  # measured by an earlier invocation (CT_BENCH_CONFIGS)
    if not os.path.exists(path):
        continue
    train = [json.loads(l) for l in open(f"{out}/{name}.metrics.jsonl") if '"type":"train"' in l]
    times = [b["elapsed_s"] - a["elapsed_s"] for a, b in zip(train, train[1:])]
    rows[name] = {"peak_rss_mib": round(train[-1]["peak_memory_bytes"] / 2**20), "steps": len(train),
                  "step_s": [round(t, 1) for t in times]}
    print(json.dumps({"bench": "lora_memory", "config": name, **rows[name]}))
if len(rows) < 4:
    sys.exit(0)
mean = {n: sum(r["step_s"]) / len(r["step_s"]) for n, r in rows.items()}
full = rows["full_f32"]["peak_rss_mib"]
print(json.dumps({"bench": "lora_memory_ratios",
                  "lora_bf16_peak_over_full": round(rows["lora_bf16"]["peak_rss_mib"] / full, 3),
                  "lora_int8_peak_over_full": round(rows["lora_int8"]["peak_rss_mib"] / full, 3),
                  "dora_over_lora_step": round(mean["dora_bf16"] / mean["lora_bf16"], 3),
                  "lora_bf16_over_full_step": round(mean["lora_bf16"] / mean["full_f32"], 3),
                  "lora_int8_over_full_step": round(mean["lora_int8"] / mean["full_f32"], 3)}))
PY
