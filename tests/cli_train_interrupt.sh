#!/bin/sh
# ctune train and Ctrl-C (SIGINT).
#   once (default): the first SIGINT says "saving a checkpoint; press Ctrl-C again to quit without
#     saving", the run saves a checkpoint at the next step boundary, names it once in
#     "interrupted at step N: resume with resume=PATH" and exits 130 (so a script stops); the
#     resumed run continues from that step; model.path=<the run folder>, which has no model/ yet,
#     loads that checkpoint.
#   twice: a second SIGINT while the first is pending quits at once with exit 130, saying that
#     the steps since the last checkpoint are lost, and writes no checkpoint.
# usage: cli_train_interrupt.sh CTUNE [once|twice] (run from the source root)
set -u
ctune=$1
mode=${2:-once}
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
set -- output_dir="$dir/run" model.num_heads=2 model.num_kv_heads=1 tokenizer.vocab_size=300 data.val= \
    train.eval_every=0 train.log_every=1 checkpoint.every=0 threads=2

# Waits (up to 60 s) for a line matching $1 in $dir/err while ctune ($pid) runs.
wait_for() {
    i=0
    until grep -q "$1" "$dir/err" 2>/dev/null; do
        i=$((i + 1))
        [ $i -gt 1200 ] && { echo "'$1' did not appear in 60 s"; cat "$dir/err"; kill $pid; exit 1; }
        kill -0 $pid 2>/dev/null || { echo "ctune train exited before '$1'"; cat "$dir/err"; exit 1; }
        sleep 0.05
    done
}

if [ "$mode" = twice ]; then
    # The recipe's own model shape: steps long enough (about a second on two cores) for the second
    # SIGINT to land before the next step boundary.
    "$ctune" train recipes/pretrain_tiny_zh.yaml train.max_steps=100000 data.batch_tokens=8192 data.batch_size=64 \
        "$@" >"$dir/out" 2>"$dir/err" &
    pid=$!
    wait_for "step 1/"
    kill -INT $pid
    wait_for "saving a checkpoint; press Ctrl-C again to quit without saving"
    kill -INT $pid
    wait $pid
    status=$?
    [ $status -eq 130 ] || { echo "exit status $status after two SIGINTs (130 expected)"; cat "$dir/err"; exit 1; }
    grep -q "quitting without saving; the steps since the last checkpoint are lost" "$dir/err" ||
        { echo "the second SIGINT did not say that nothing was saved"; cat "$dir/err"; exit 1; }
    ls "$dir/run/checkpoints" 2>/dev/null | grep -q '\.h5$' && { echo "a checkpoint was written"; ls "$dir/run/checkpoints"; exit 1; }
    echo "second SIGINT: exit 130 without saving"
    exit 0
fi

"$ctune" train recipes/pretrain_tiny_zh.yaml train.max_steps=100000 model.hidden_size=32 \
    model.intermediate_size=48 model.num_layers=1 "$@" >"$dir/out" 2>"$dir/err" &
pid=$!
wait_for "step 2/"
# SIGINT and SIGTERM reach one thread only, never a computing one (cli/signal_thread.h): every
# thread but one blocks both (SigBlk bits 2 and 15: 0x4002), and there are others (OpenMP's).
receivers=0 blocking=0
for task in /proc/$pid/task/*; do
    mask=$(sed -n 's/^SigBlk:[[:space:]]*//p' "$task/status" 2>/dev/null) || continue
    [ -n "$mask" ] || continue
    if [ $((0x$mask & 0x4002)) -eq 0 ]; then receivers=$((receivers + 1)); fi
    if [ $((0x$mask & 0x4002)) -eq $((0x4002)) ]; then blocking=$((blocking + 1)); fi
done
[ $receivers -eq 1 ] && [ $blocking -ge 2 ] ||
    { echo "SIGINT/SIGTERM: $receivers threads receive them (1 expected), $blocking block both (2 or more expected)"; kill $pid; exit 1; }
kill -INT $pid
wait $pid
status=$?
cat "$dir/out"
[ $status -eq 130 ] || { echo "exit status $status after SIGINT (130 expected)"; cat "$dir/err"; exit 1; }
grep -q "saving a checkpoint; press Ctrl-C again to quit without saving" "$dir/err" ||
    { echo "the first SIGINT did not say what it does"; cat "$dir/err"; exit 1; }
[ "$(grep -c "resume=" "$dir/out" "$dir/err" | awk -F: '{s += $2} END {print s}')" -eq 1 ] ||
    { echo "the resume hint is not printed exactly once"; cat "$dir/out" "$dir/err"; exit 1; }
checkpoint=$(sed -n 's/^interrupted at step [0-9]*: resume with resume=//p' "$dir/out")
[ -f "$checkpoint" ] || { echo "no checkpoint named in the output"; exit 1; }
step=$(echo "$checkpoint" | sed 's/.*step-0*\([0-9]*\)\.h5/\1/')
grep -q "^interrupted at step $step: " "$dir/out" || { echo "the hint names another step than $step"; exit 1; }

# The interrupted run has no model/ folder: model.path=<run> loads its newest checkpoint.
"$ctune" train recipes/pretrain_tiny_zh.yaml model.path="$dir/run" tokenizer.train=false train.max_steps=1 \
    output_dir="$dir/from_run" data.val= threads=2 >"$dir/out3" 2>"$dir/err3" ||
    { echo "model.path=<interrupted run> failed"; cat "$dir/err3"; exit 1; }
grep -q "^model: loaded $checkpoint (the run's newest checkpoint" "$dir/err3" ||
    { echo "the loaded checkpoint was not named"; cat "$dir/err3"; exit 1; }

"$ctune" train recipes/pretrain_tiny_zh.yaml train.max_steps=$((step + 2)) resume="$checkpoint" \
    model.hidden_size=32 model.intermediate_size=48 model.num_layers=1 "$@" >"$dir/out2" 2>"$dir/err2" ||
    { echo "resume failed"; cat "$dir/err2"; exit 1; }
grep -q "resumed from $checkpoint at step $step" "$dir/err2" || { echo "resume did not start at step $step"; cat "$dir/err2"; exit 1; }
grep -q "^steps $((step + 2))," "$dir/out2" || { echo "resumed run did not finish at step $((step + 2))"; cat "$dir/out2"; exit 1; }
echo "interrupted at step $step (exit 130), resumed to $((step + 2))"
