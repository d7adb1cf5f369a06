#!/usr/bin/env bash
# Fault injection: a training run stopped at a random moment, then resumed, ends exactly as an
# uninterrupted run does (docs/reliability.md).
#
#   tests/reliability/kill_resume.sh CTUNE SIGNAL TRIALS [SEED]
#     SIGNAL  KILL (kill -9: no chance to save), INT or TERM (ctune saves at the next step boundary)
#     TRIALS  how many runs to stop (by hand >= 50; CI 10)
#
# A reference run trains the tiny model 12 steps with a checkpoint after every step (threads=1).
# Each trial starts the same run and sends SIGNAL at a random moment (after the line of a random
# step, plus a random part of a step's time), and then checks:
#   - KILL: whatever the moment, the newest checkpoint left in checkpoints/ is complete (it loads:
#     the resume below reads every tensor and checksum); INT/TERM: exit 128+signal, or 0 when the
#     run had already finished, and the checkpoint named in "resume with resume=PATH" exists;
#   - the run resumed from that checkpoint to step 12 logs, for every step, the reference's loss
#     and gradient norm bit for bit (metrics.jsonl, 17 significant digits), and its final weights
#     (model/model.safetensors) are byte-identical to the reference's;
#   - no temporary checkpoint (*.tmp-*) is left after the resume.
# A trial stopped before its first checkpoint has nothing to resume: it is counted, and a fresh
# run in the same output_dir with overwrite=true must still end bit-identical.
# Prints one line per trial and a summary; exits 1 on any failed trial. SEED (default: the time)
# makes the delays reproducible; it is printed.
set -uo pipefail
ctune=${1:?usage: kill_resume.sh CTUNE KILL|INT|TERM TRIALS [SEED]}
signal=${2:?signal}
trials=${3:?trials}
seed=${4:-$(date +%s)}
RANDOM=$seed
steps=12
dir=$(mktemp -d "${TMPDIR:-/tmp}/ctune-kill-resume.XXXXXX")
trap 'rm -rf "$dir"' EXIT
args=(model.hidden_size=32 model.intermediate_size=48 model.num_layers=1 model.num_heads=2 model.num_kv_heads=1
      data.val= train.eval_every=0 train.log_every=1 checkpoint.every=1 checkpoint.keep_last=2 threads=1
      train.max_steps=$steps)
# The tokenizer is trained once, so that a trial's time goes to training steps and checkpoints.
"$ctune" tokenizer train --data datasets/data/pretrain_train.txt --vocab-size 300 --out "$dir/tokenizer" \
    >"$dir/tok.out" 2>&1 || { echo "training the tokenizer failed"; cat "$dir/tok.out"; exit 1; }
args+=(tokenizer.train=false tokenizer.path="$dir/tokenizer")

# "step loss grad_norm" of every train record, in file order.
losses() { jq -r 'select(.type == "train") | "\(.step) \(.loss) \(.grad_norm)"' "$1"; }

start=$(date +%s%N)
"$ctune" train recipes/pretrain_tiny_zh.yaml output_dir="$dir/ref" "${args[@]}" >"$dir/ref.out" 2>"$dir/ref.err" ||
    { echo "the reference run failed"; cat "$dir/ref.err"; exit 1; }
ref_ms=$(( ($(date +%s%N) - start) / 1000000 ))
losses "$dir/ref/metrics.jsonl" >"$dir/ref.losses"
[ "$(wc -l <"$dir/ref.losses")" -eq $steps ] || { echo "the reference logged $(wc -l <"$dir/ref.losses") steps"; exit 1; }
echo "reference: $steps steps in $ref_ms ms; signal $signal, $trials trials, seed $seed"

# Checks that run's metrics and weights equal the reference's; prints what differs.
same_as_reference() {
    local run=$1
    local bad
    bad=$(losses "$run/metrics.jsonl" | grep -vxF -f "$dir/ref.losses" | head -n 1)
    [ -z "$bad" ] || { echo "step/loss/grad_norm not in the reference: $bad"; return 1; }
    local covered
    covered=$(losses "$run/metrics.jsonl" | cut -d' ' -f1 | sort -un | wc -l)
    [ "$covered" -eq $steps ] || { echo "$covered of $steps steps logged"; return 1; }
    cmp -s "$run/model/model.safetensors" "$dir/ref/model/model.safetensors" ||
        { echo "final weights differ from the reference"; return 1; }
    ! ls "$run/checkpoints" | grep -q '\.tmp' || { echo "temporary file left: $(ls "$run/checkpoints")"; return 1; }
}

failed=0 resumed=0 fresh=0 finished=0
# Job control: a background command of a script otherwise starts with SIGINT ignored, and would
# never see the Ctrl-C this sends.
set -m
for t in $(seq 1 "$trials"); do
    run="$dir/t$t"
    # The moment: after step k's line (k drawn from 0..steps; 0 = during setup) plus a random part
    # of one step's time, so that trials spread over every step and checkpoint write whatever the
    # machine's load (a delay drawn over wall time alone lands mostly in setup on a busy machine).
    k=$((RANDOM % (steps + 1)))
    delay_ms=$(( (RANDOM * 32768 + RANDOM) % (ref_ms / steps + 1) ))
    "$ctune" train recipes/pretrain_tiny_zh.yaml output_dir="$run" "${args[@]}" >"$run.out" 2>"$run.err" &
    pid=$!
    if [ $k -gt 0 ]; then
        until grep -q "^step $k/" "$run.err" 2>/dev/null || ! kill -0 $pid 2>/dev/null; do sleep 0.01; done
    fi
    sleep "$(printf '%d.%03d' $((delay_ms / 1000)) $((delay_ms % 1000)))"
    kill -s "$signal" $pid 2>/dev/null
    { wait $pid; } 2>/dev/null # no "Killed" notice from bash
    status=$?
    problem="" what=""
    [ $status -eq 0 ] && what="finished before the signal"
    newest=$(ls "$run/checkpoints"/step-*.h5 2>/dev/null | sort | tail -n 1)
    if [ "$signal" != KILL ]; then
        expected=$((128 + $(kill -l "$signal")))
        named=$(sed -n 's/^interrupted at step [0-9]*: resume with resume=//p' "$run.out")
        if [ $status -eq 0 ]; then
            :
        elif [ $status -ne $expected ]; then
            problem="exit status $status, expected $expected or 0"
        elif [ -n "$named" ] && [ "$named" != "$newest" ]; then
            problem="named $named but the newest checkpoint is $newest"
        elif [ -z "$named" ] && [ -n "$newest" ]; then
            problem="exit $status without naming the checkpoint to resume"
        fi
    fi
    step=0
    [ -n "$newest" ] && step=$((10#$(basename "$newest" .h5 | sed 's/step-//')))
    if [ -z "$problem" ]; then
        if [ -z "$newest" ]; then
            what="stopped before the first checkpoint; fresh run"
            "$ctune" train recipes/pretrain_tiny_zh.yaml output_dir="$run" overwrite=true "${args[@]}" \
                >"$run.out2" 2>"$run.err2" || problem="the fresh run failed: $(tail -n 1 "$run.err2")"
            fresh=$((fresh + 1))
        elif [ $step -lt $steps ]; then
            what="${what:-stopped} at checkpoint $step; resumed"
            "$ctune" train recipes/pretrain_tiny_zh.yaml output_dir="$run" resume="$newest" "${args[@]}" \
                >"$run.out2" 2>"$run.err2" || problem="the resume from $newest failed: $(tail -n 1 "$run.err2")"
            resumed=$((resumed + 1))
        else
            what="${what:-stopped after the last checkpoint}"
            finished=$((finished + 1))
            # Stopped while writing model/ after the last checkpoint: that checkpoint still loads.
            [ -f "$run/model/model.safetensors" ] ||
                "$ctune" export --model "$newest" --format hf --out "$run/model" >"$run.out2" 2>"$run.err2" ||
                problem="the step-$steps checkpoint does not load: $(tail -n 1 "$run.err2")"
        fi
    fi
    [ -z "$problem" ] && { problem=$(same_as_reference "$run") || true; }
    if [ -n "$problem" ]; then
        echo "trial $t (signal $delay_ms ms after step $k, exit $status): FAILED: $problem"
        tail -n 3 "$run.err" "$run.err2" 2>/dev/null
        failed=$((failed + 1))
        mkdir -p "$dir/../ctune-kill-resume-failed" && cp -r "$run" "$run".* "$dir/../ctune-kill-resume-failed/" 2>/dev/null
    else
        echo "trial $t (signal $delay_ms ms after step $k, exit $status): $what; bit-identical"
        rm -rf "$run" "$run".*
    fi
done
echo "kill_resume $signal: $trials trials, $resumed resumed, $fresh before any checkpoint, $finished after the last; $failed failed (seed $seed)"
[ $failed -eq 0 ]
