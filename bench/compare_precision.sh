#!/usr/bin/env bash
# bf16 against f32 training on this machine, in one run: bench_train_step with --precision fp32
# and --precision bf16 (bf16 compute copies, f32 master weights: train.precision), alternating
# which goes first, REPS times. Prints every run's JSON line, each repetition's ratio
# bf16 / fp32 (tokens/s) and their median. The bf16 GEMMs run in hardware where the CPU has
# AVX512-BF16 (the "bf16_gemm" field says which path ran; CT_GEMM_BF16=widen forces the f32 one).
#   usage: bench/compare_precision.sh [BUILD_DIR=build] [REPS=3] [THREADS=2] [-- flags for both]
#   e.g.   bench/compare_precision.sh build 3 2 -- --hidden 768 --intermediate 2048 --layers 12 \
#              --heads 12 --kv-heads 12 --seq 512 --batch 2 --steps 3 --warmup 1
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/bench_args.sh"
bench_args compare_precision 3 2 "$@"
set -- "${bench_flags[@]}"
[[ "$threads" =~ ^[1-9][0-9]*$ ]] || { echo "compare_precision: THREADS must be a positive whole number" >&2; exit 2; }
export OMP_NUM_THREADS="$threads"
results="$(mktemp)"
trap 'rm -f "$results"' EXIT
run() { "$bench" --threads "$threads" --profile 0 --precision "$1" "${@:2}" | grep '"bench": "train_step"' | tee -a "$results"; }
for ((r = 1; r <= reps; r++)); do
    if ((r % 2)); then run fp32 "$@"; run bf16 "$@"; else run bf16 "$@"; run fp32 "$@"; fi
done
python3 - "$results" <<'PY'
import json, statistics, sys
lines = [json.loads(l) for l in open(sys.argv[1])]
fp32 = [l["tokens_per_s"] for l in lines if l["precision"] == "fp32"]
bf16 = [l["tokens_per_s"] for l in lines if l["precision"] == "bf16"]
ratios = [b / f for f, b in zip(fp32, bf16)]
print(json.dumps({"bench": "bf16_over_fp32_train_step", "bf16_gemm": lines[0].get("bf16_gemm"),
                  "fp32_tokens_per_s": fp32, "bf16_tokens_per_s": bf16,
                  "ratios": [round(r, 3) for r in ratios], "ratio_median": round(statistics.median(ratios), 3)}))
PY
