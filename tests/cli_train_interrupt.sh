#!/bin/sh
# ctune train stops cleanly on SIGINT: it saves a checkpoint at the next step boundary, says how
# to resume, exits 0, and the resumed run continues from that step.
# usage: cli_train_interrupt.sh CTUNE (run from the source root)
set -u
ctune=$1
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
set -- output_dir="$dir/run" model.hidden_size=32 model.intermediate_size=48 model.num_layers=1 \
    model.num_heads=2 model.num_kv_heads=1 tokenizer.vocab_size=300 data.val= train.eval_every=0 \
    train.log_every=1 checkpoint.every=0 threads=2
"$ctune" train recipes/pretrain_tiny_zh.yaml train.max_steps=100000 "$@" >"$dir/out" 2>"$dir/err" &
pid=$!
i=0
until grep -q "step 2/" "$dir/err" 2>/dev/null; do
    i=$((i + 1))
    [ $i -gt 600 ] && { echo "no step was logged in 60 s"; cat "$dir/err"; kill $pid; exit 1; }
    kill -0 $pid 2>/dev/null || { echo "ctune train exited early"; cat "$dir/err"; exit 1; }
    sleep 0.1
done
kill -INT $pid
wait $pid
status=$?
cat "$dir/out"
[ $status -eq 0 ] || { echo "exit status $status after SIGINT"; cat "$dir/err"; exit 1; }
checkpoint=$(sed -n 's/^interrupted: resume with resume=//p' "$dir/out")
[ -f "$checkpoint" ] || { echo "no checkpoint named in the output"; exit 1; }
step=$(echo "$checkpoint" | sed 's/.*step-0*\([0-9]*\)\.h5/\1/')
"$ctune" train recipes/pretrain_tiny_zh.yaml train.max_steps=$((step + 2)) resume="$checkpoint" "$@" \
    >"$dir/out2" 2>"$dir/err2" || { echo "resume failed"; cat "$dir/err2"; exit 1; }
grep -q "resumed from $checkpoint at step $step" "$dir/err2" || { echo "resume did not start at step $step"; cat "$dir/err2"; exit 1; }
grep -q "^steps $((step + 2))," "$dir/out2" || { echo "resumed run did not finish at step $((step + 2))"; cat "$dir/out2"; exit 1; }
echo "interrupted at step $step, resumed to $((step + 2))"
