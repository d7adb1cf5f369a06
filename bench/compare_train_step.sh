#!/usr/bin/env bash
# A training step of the tiny model, ctune against PyTorch, on this machine in one go.
#
# Runs bench_train_step (C) and train_step_torch.py (transformers' LlamaForCausalLM) REPS times
# each, alternating which goes first, with the same thread count (OMP_NUM_THREADS and each
# program's own setting), the same shapes, warm-up and step counts. Prints every run's JSON lines,
# then one summary JSON line and a table: tokens/s of each (best and median over the
# repetitions) and the ratio ctune / torch of the bests. On a machine shared with other work the
# numbers are noisy; the alternation keeps either side from getting all the quiet moments.
#
#   usage: bench/compare_train_step.sh [BUILD_DIR=build] [REPS=3] [THREADS=2] [-- flags for both]
#   env:   TORCH_ATTN=sdpa|eager (default sdpa)   PYTHON=python3
#   e.g.   bench/compare_train_step.sh build 3 2 -- --steps 20 --warmup 3
#          bench/compare_train_step.sh build 3 2 -- --precision bf16   # both in mixed precision
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
positional=()
while (($#)) && [[ "$1" != "--" ]]; do positional+=("$1"); shift; done
if (($#)); then shift; fi # the "--"; what follows goes to both programs
build="${positional[0]:-build}"
reps="${positional[1]:-3}"
threads="${positional[2]:-2}"
attn="${TORCH_ATTN:-sdpa}"
python="${PYTHON:-python3}"

case "$build" in /*) ;; *) build="$root/$build" ;; esac
bench="$build/bench_train_step"
if [[ ! -x "$bench" ]]; then
    echo "compare_train_step: $bench not found; build it first: cmake --build $build --target bench_train_step" >&2
    exit 1
fi
if ! [[ "$reps" =~ ^[1-9][0-9]*$ && "$threads" =~ ^[1-9][0-9]*$ ]]; then
    echo "compare_train_step: REPS and THREADS must be positive whole numbers (got '$reps', '$threads')" >&2
    exit 2
fi
if ! "$python" -c "import torch, transformers" 2>/dev/null; then
    echo "compare_train_step: $python cannot import torch and transformers; pip install them or set PYTHON" >&2
    exit 1
fi

export OMP_NUM_THREADS="$threads"
results="$(mktemp)"
trap 'rm -f "$results"' EXIT

run_ctune() { "$bench" --threads "$threads" "$@" | tee -a "$results"; }
# torch.profiler prints a harmless CUDA probe error on machines without a GPU: keep stderr
# for real failures only.
run_torch() {
    "$python" "$root/bench/train_step_torch.py" --threads "$threads" --attn "$attn" --profile 1 "$@" \
        2> >(grep -vE "gpuGetDeviceCount|ActivityProfiler" >&2) | tee -a "$results"
}

for ((r = 1; r <= reps; r++)); do
    if ((r % 2)); then run_ctune "$@"; run_torch "$@"; else run_torch "$@"; run_ctune "$@"; fi
done

"$python" - "$results" "$threads" "$attn" <<'EOF'
import json
import statistics
import sys

path, threads, attn = sys.argv[1], int(sys.argv[2]), sys.argv[3]
lines = [json.loads(line) for line in open(path) if line.startswith("{")]
steps = {impl: [l for l in lines if l["bench"] == "train_step" and l["impl"] == impl] for impl in ("ctune", "torch")}
parts = {impl: [l for l in lines if l["bench"] == "train_step_breakdown" and l["impl"] == impl]
         for impl in ("ctune", "torch")}
if not steps["ctune"] or not steps["torch"]:
    sys.exit("compare_train_step: a run printed no result; see the errors above")

def best(impl, key="tokens_per_s"):
    return max(l[key] for l in steps[impl])

def median(impl, key="tokens_per_s"):
    return statistics.median(l[key] for l in steps[impl])

def breakdown_of_best(impl):
    i = max(range(len(steps[impl])), key=lambda j: steps[impl][j]["tokens_per_s"])
    return parts[impl][i]

first = steps["ctune"][0]
summary = {
    "bench": "train_step_compare", "threads": threads, "torch_attn": attn, "reps": len(steps["ctune"]),
    "precision": steps["torch"][0].get("precision", "fp32"),
    "batch": first["batch"], "seq": first["seq"], "steps": first["steps"], "warmup": first["warmup"],
    "torch": steps["torch"][0]["torch"], "transformers": steps["torch"][0]["transformers"],
    "ctune_tokens_per_s": [l["tokens_per_s"] for l in steps["ctune"]],
    "torch_tokens_per_s": [l["tokens_per_s"] for l in steps["torch"]],
    "ctune_tokens_per_s_best": best("ctune"), "torch_tokens_per_s_best": best("torch"),
    "ratio_ctune_over_torch_best": round(best("ctune") / best("torch"), 3),
    "ratio_ctune_over_torch_median": round(median("ctune") / median("torch"), 3),
}
print(json.dumps(summary))

print()
print(f"training step, {summary['precision']}, B={first['batch']} T={first['seq']}, {threads} threads, {summary['reps']} alternating "
      f"repetitions of {first['warmup']} warm-up + {first['steps']} timed steps; torch attention: {attn}")
print(f"{'':8} {'tokens/s best':>14} {'tokens/s median':>16} {'ms/step best':>13} {'gemm share':>11} "
      f"{'loss first -> last':>20}")
for impl in ("ctune", "torch"):
    b = breakdown_of_best(impl)
    share = f"{b['gemm_share']:.2f}" if "gemm_share" in b else "-"
    l0 = steps[impl][0]
    print(f"{impl:8} {best(impl):14.1f} {median(impl):16.1f} {min(l['ms_per_step'] for l in steps[impl]):13.1f} "
          f"{share:>11} {l0['first_loss']:9.4f} -> {l0['last_loss']:.4f}")
print(f"ratio ctune / torch (tokens/s): best {summary['ratio_ctune_over_torch_best']:.3f}, "
      f"median {summary['ratio_ctune_over_torch_median']:.3f}")
EOF
