#!/usr/bin/env bash
# How much a training step slows down when one other CPU-bound process shares the machine.
#
# Runs bench_train_step (the tiny model's step, --profile 0) REPS times alone and REPS times with a
# competing process this script starts itself (a shell busy loop, one core's worth of work),
# alternating the two, and prints the median ms/step of each and the slowdown (contended / alone).
# THREADS is passed to bench_train_step as --threads (ctune keeps the thread count a recipe asks
# for and changes only how idle threads wait: docs/PERF.md "Steady under contention"). Other work
# on the machine slows both sides alike; the alternation keeps either from getting all the quiet
# moments.
#
#   usage: bench/contention_step.sh [BUILD_DIR=build] [REPS=5] [THREADS=2] [-- bench_train_step flags]
set -euo pipefail

source "$(dirname "${BASH_SOURCE[0]}")/bench_args.sh"
bench_args contention_step 5 2 "$@"
[[ "$threads" =~ ^[1-9][0-9]*$ ]] || { echo "contention_step: THREADS must be a positive whole number" >&2; exit 2; }
set -- "${bench_flags[@]}"

results="$(mktemp)"
competitor=""
cleanup() {
    [[ -n "$competitor" ]] && kill "$competitor" 2>/dev/null || true
    rm -f "$results"
}
trap cleanup EXIT

step() { # label
    "$bench" --threads "$threads" --profile 0 --steps 10 --warmup 2 "$@" | sed "s/^{/{\"contention\": \"$label\", /" >> "$results"
}
for ((r = 1; r <= reps; r++)); do
    for label in alone contended; do
        if [[ "$label" == contended ]]; then
            bash -c 'while :; do :; done' &
            competitor=$!
            sleep 0.2 # let the scheduler see it running
        fi
        step "$@"
        if [[ -n "$competitor" ]]; then kill "$competitor"; wait "$competitor" 2>/dev/null || true; competitor=""; fi
    done
done

python3 - "$results" "$threads" <<'EOF'
import json, statistics, sys
path, threads = sys.argv[1], sys.argv[2]
lines = [json.loads(l) for l in open(path) if l.startswith("{") and '"train_step"' in l]
ms = {k: [l["ms_per_step"] for l in lines if l["contention"] == k] for k in ("alone", "contended")}
used = sorted({l.get("threads") for l in lines if l["contention"] == "contended"})
summary = {"bench": "train_step_contention", "threads": threads, "threads_used_contended": used,
           "reps": len(ms["alone"]), "alone_ms": ms["alone"], "contended_ms": ms["contended"],
           "alone_ms_median": statistics.median(ms["alone"]), "contended_ms_median": statistics.median(ms["contended"])}
summary["slowdown_median"] = round(summary["contended_ms_median"] / summary["alone_ms_median"], 3)
print(json.dumps(summary))
EOF
