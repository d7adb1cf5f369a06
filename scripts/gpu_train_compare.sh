#!/usr/bin/env bash
# Trains recipes/pretrain_tiny_zh.yaml for 20 steps on the CPU and on the GPU, from the same
# tokenizer, seed and data order, and compares the per-step training losses of metrics.jsonl:
#
#   cuda fp32            vs cpu fp32   max |difference| <= 1e-3
#   cuda bf16            vs cpu bf16   max |difference| <= 2e-2
#   cuda fp32 + gradient checkpointing vs cuda fp32   max |difference| <= 1e-5
#
# Why these tolerances. fp32: the two devices sum in different orders (cuBLAS and OpenBLAS tiles,
# parallel reductions), which moves a loss near 8 in its sixth or seventh digit per step; AdamW
# then turns tiny gradient differences into weight differences, and 20 steps of that stay far
# below 1e-3, while a wrong kernel moves the loss by 0.1 or more within a step or two.
# bf16: activations keep 8 significant bits (a rounding error of up to 2^-9, 0.2%), and the two
# devices round after different accumulation orders, so any one value may differ by a bf16 step.
# The loss is a mean over 2,048 tokens, which averages most of that out, but the differences feed
# back through 20 updates; 2e-2 is a quarter of a percent of the starting loss (ln 3000, about
# 8.0), still far below what a real bf16 bug does (a lost scale or a bf16 master weight shows in
# the first steps as a difference of 0.1 or more). Gradient checkpointing recomputes the same
# forward with the same kernels: the losses should agree to the last bit; 1e-5 leaves room only
# for kernels whose atomic additions are not ordered.
#
#   scripts/gpu_train_compare.sh CTUNE_BINARY WORK_DIR
#
#   CT_TRAIN_STEPS    steps per run (default 20)
#   CT_TRAIN_THREADS  CPU threads (default: all cores)
#   CT_GPU_TIMEOUT    seconds one run may take (default 300)
#
# Prints one line per run and per comparison, starting with ok, FAIL or note (the format of
# scripts/gpu_check.sh's summary), and each run's output after a "==== " header. Exit status: 0
# when every run and comparison passed, 1 otherwise, 2 on a usage error. Needs no network.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1

[ $# -eq 2 ] || { echo "usage: scripts/gpu_train_compare.sh CTUNE_BINARY WORK_DIR" >&2; exit 2; }
ctune=$1
work=$2
[ -x "$ctune" ] || { echo "gpu_train_compare: $ctune is not an executable" >&2; exit 2; }
steps=${CT_TRAIN_STEPS:-20}
threads=${CT_TRAIN_THREADS:-$(nproc)}
timeout_s=${CT_GPU_TIMEOUT:-300}
recipe=recipes/pretrain_tiny_zh.yaml
failures=0
declare -A finished # the runs that exited 0

fail() { echo "FAIL $*"; failures=$((failures + 1)); }

# The run's own folders only: work/<name> is made by this script and removed before each run,
# so a run never resumes an earlier one's metrics.jsonl.
mkdir -p "$work" || exit 1
tokenizer=$work/tokenizer

# One tokenizer for every run (the recipe would train its own in each): the same vocabulary, so
# the runs differ only in device, precision and checkpointing.
train_tokenizer() {
  local log=$work/tokenizer.log
  rm -rf "$tokenizer"
  if ! timeout "$timeout_s" "$ctune" tokenizer train --data datasets/data/pretrain_train.txt --vocab-size 3000 \
       --min-frequency 2 --out "$tokenizer" > "$log" 2>&1; then
    echo "==== tokenizer"; cat "$log"
    fail "train tokenizer: $(tail -1 "$log")"
    return 1
  fi
  echo "ok   train tokenizer ($(grep -o 'in [0-9.]* s' "$log" | tail -1))"
}

# run NAME OVERRIDE...: one run of the recipe into work/NAME; its output is kept in work/NAME.log.
run() {
  local name=$1; shift
  local dir=$work/$name log=$work/$name.log start rc
  rm -rf "$dir"
  start=$(date +%s.%N)
  OMP_NUM_THREADS=$threads timeout "$timeout_s" "$ctune" train "$recipe" output_dir="$dir" \
    tokenizer.train=false tokenizer.path="$tokenizer" train.max_steps="$steps" train.log_every=5 \
    train.eval_every=0 checkpoint.every=0 checkpoint.keep_last=1 eval.max_examples=16 \
    threads="$threads" "$@" > "$log" 2>&1
  rc=$?
  local seconds
  seconds=$(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f", b - a}')
  echo "==== $name: ctune train $recipe ... $* (exit $rc, ${seconds} s)"
  cat "$log"
  if [ $rc -eq 124 ]; then fail "train $name: over ${timeout_s}s (CT_GPU_TIMEOUT)"; return 1; fi
  if [ $rc -ne 0 ]; then
    # ctune's one-line error ("ctune train: device=cuda: ..."), else the last line it printed.
    local message
    message=$(grep '^ctune train: ' "$log" | tail -1 | sed 's/^ctune train: //')
    [ -n "$message" ] || message=$(grep -v '^[[:space:]]*$' "$log" | tail -1)
    fail "train $name: exit $rc: $message"
    return 1
  fi
  finished[$name]=1
  echo "ok   train $name: $(grep -E '^steps [0-9]+, final loss' "$log" | tail -1) (${seconds} s)"
}

# compare A B TOLERANCE: the step-by-step losses of two runs' metrics.jsonl. A step logged twice
# keeps its later record (metrics.h); every step 1..steps must be in both files and finite.
compare() {
  local a=$1 b=$2 tol=$3 line rc
  # A failed run is counted once, as that run's failure.
  for r in "$a" "$b"; do
    [ -n "${finished[$r]:-}" ] || { echo "note compare $a vs $b: not compared ($r failed)"; return 0; }
  done
  line=$(awk -v tol="$tol" -v steps="$steps" '
    function field(name,   m) {
      if (!match($0, "\"" name "\":[^,}]*")) return ""
      m = substr($0, RSTART, RLENGTH); sub(/^[^:]*:/, "", m); return m
    }
    !/"type":"train"/ { next }
    { s = field("step") + 0; v = field("loss"); if (FILENAME == ARGV[1]) a[s] = v; else b[s] = v }
    END {
      worst = -1; at = 0
      for (s = 1; s <= steps; s++) {
        if (!(s in a) || !(s in b)) { printf "step %d is missing from %s\n", s, (s in a) ? ARGV[2] : ARGV[1]; exit 1 }
        if (a[s] == "null" || b[s] == "null") { printf "step %d: the loss is not finite\n", s; exit 1 }
        d = a[s] - b[s]; if (d < 0) d = -d
        if (d > worst) { worst = d; at = s }
      }
      printf "max |loss difference| %.3g at step %d of %d (losses %s and %s; tolerance %s)\n", worst, at, steps, a[at], b[at], tol
      exit (worst <= tol + 0) ? 0 : 1
    }' "$work/$a/metrics.jsonl" "$work/$b/metrics.jsonl")
  rc=$?
  if [ $rc -eq 0 ]; then echo "ok   compare $a vs $b: $line"; else fail "compare $a vs $b: $line"; fi
}

echo "== train: $recipe, $steps steps per run, $threads CPU threads, in $work"
if train_tokenizer; then
  run cpu_fp32 device=cpu train.precision=fp32
  run cuda_fp32 device=cuda train.precision=fp32
  run cpu_bf16 device=cpu train.precision=bf16
  run cuda_bf16 device=cuda train.precision=bf16
  run cuda_fp32_checkpointing device=cuda train.precision=fp32 model.gradient_checkpointing=true
  compare cuda_fp32 cpu_fp32 1e-3
  compare cuda_bf16 cpu_bf16 2e-2
  compare cuda_fp32_checkpointing cuda_fp32 1e-5
fi
[ $failures -eq 0 ] || exit 1
exit 0
