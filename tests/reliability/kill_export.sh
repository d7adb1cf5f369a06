#!/usr/bin/env bash
# Fault injection: `ctune export` stopped at a random moment leaves either no output or the whole
# output, never a partial one under the output's name (docs/reliability.md).
#
#   tests/reliability/kill_export.sh CTUNE gguf|hf TRIALS [SEED]
#
# A one-step run of the tiny recipe's model is exported once without interruption (the
# reference); each trial repeats the export into a fresh folder and sends KILL, INT or TERM (in
# turn) after a random delay drawn over the reference's wall time. Afterwards the output is
# absent or equal to the reference byte for byte. After INT or TERM nothing else is left beside
# it (ctune export's handler removes its temporary file or folder, *.tmp*); after KILL, which
# cannot be caught, a temporary may remain, and is never taken for the output.
set -uo pipefail
ctune=${1:?usage: kill_export.sh CTUNE gguf|hf TRIALS [SEED]}
format=${2:?gguf or hf}
trials=${3:?trials}
seed=${4:-$(date +%s)}
RANDOM=$seed
dir=$(mktemp -d "${TMPDIR:-/tmp}/ctune-kill-export.XXXXXX")
trap 'rm -rf "$dir"' EXIT
"$ctune" train recipes/pretrain_tiny_zh.yaml output_dir="$dir/run" train.max_steps=1 tokenizer.vocab_size=300 \
    data.val= train.eval_every=0 threads=1 >"$dir/out" 2>"$dir/err" || { echo "the run failed"; cat "$dir/err"; exit 1; }
name=model.gguf
[ "$format" = hf ] && name=hf
# (ctune itself is the background job, not a function's subshell: the signal must reach it)
export_args=(export --model "$dir/run" --format "$format" --out)
same() { [ "$format" = gguf ] && cmp -s "$1" "$2" || diff -r "$1" "$2" >/dev/null 2>&1; }

mkdir "$dir/ref"
start=$(date +%s%N)
"$ctune" "${export_args[@]}" "$dir/ref/$name" >"$dir/out" 2>"$dir/err" || { echo "the reference export failed"; cat "$dir/err"; exit 1; }
ref_ms=$(( ($(date +%s%N) - start) / 1000000 ))
echo "reference export ($format): $ref_ms ms; $trials trials, seed $seed"
signals=(KILL INT TERM)
# Job control: a background command of a script otherwise starts with SIGINT ignored, and would
# never see the Ctrl-C this sends.
set -m
failed=0 absent=0 whole=0
for t in $(seq 1 "$trials"); do
    out="$dir/t$t"
    mkdir "$out"
    signal=${signals[$((t % 3))]}
    delay_ms=$(( (RANDOM * 32768 + RANDOM) % (ref_ms + 1) ))
    "$ctune" "${export_args[@]}" "$out/$name" >"$out.log" 2>&1 &
    pid=$!
    sleep "$(printf '%d.%03d' $((delay_ms / 1000)) $((delay_ms % 1000)))"
    kill -s "$signal" $pid 2>/dev/null
    { wait $pid; } 2>/dev/null
    status=$?
    if [ ! -e "$out/$name" ]; then
        what="no output"; absent=$((absent + 1))
        [ $status -ne 0 ] || { what="exit 0 without output: FAILED"; failed=$((failed + 1)); }
    elif same "$out/$name" "$dir/ref/$name"; then
        what="whole output"; whole=$((whole + 1))
    else
        what="PARTIAL OUTPUT: FAILED"; failed=$((failed + 1))
    fi
    left=$(ls -A "$out" | grep tmp)
    if [ -n "$left" ] && [ "$signal" != KILL ]; then
        what="$what; TEMPORARY LEFT AFTER $signal ($left): FAILED"; failed=$((failed + 1))
    elif [ -n "$left" ]; then
        what="$what; a temporary file remains"
    fi
    echo "trial $t ($signal after $delay_ms ms, exit $status): $what"
    rm -rf "$out" "$out.log"
done
echo "kill_export $format: $trials trials, $absent without output, $whole whole; $failed failed (seed $seed)"
[ $failed -eq 0 ]
