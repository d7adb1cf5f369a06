#!/usr/bin/env bash
# `ctune export` stopped by SIGINT or SIGTERM while it writes leaves nothing behind: exit 128 +
# the signal, no output, no temporary file or folder beside it, and one line saying so
# (docs/reliability.md).
#
#   tests/reliability/interrupt_export.sh CTUNE gguf|hf INT|TERM|INT+TERM [RUN]
#   tests/reliability/interrupt_export.sh CTUNE train RUN    (makes RUN for the cases above)
#
# The model exported is RUN, or one trained here: the tiny recipe widened to ~13 MB
# (hidden_size=256), one step, so that writing it takes a while. The moment is chosen rather
# than drawn: the signal is sent as soon as the export's temporary file (gguf) or a file inside
# its temporary folder (hf) appears; writing the model takes far longer than that watch. An
# export that had finished anyway (exit 0, or the "interrupted after ... was written" line) is
# tried again, up to 5 times. INT+TERM sends both at once: the second arrives while the first
# one's cleanup runs, and must change nothing (one line, the exit of one of them).
set -uo pipefail
ctune=${1:?usage: interrupt_export.sh CTUNE gguf|hf INT|TERM|INT+TERM [RUN]}
format=${2:?gguf, hf or train}
train_run() {
    rm -rf "$1"
    "$ctune" train recipes/pretrain_tiny_zh.yaml output_dir="$1" train.max_steps=1 data.val= train.eval_every=0 \
        threads=1 model.hidden_size=256 model.intermediate_size=704 >"$1.train.out" 2>&1 ||
        { echo "the run failed"; tail -n 5 "$1.train.out"; exit 1; }
    rm -f "$1.train.out"
}
if [ "$format" = train ]; then
    train_run "${3:?the run folder to make}"
    exit 0
fi
signals=${3:?INT, TERM or INT+TERM}
dir=$(mktemp -d "${TMPDIR:-/tmp}/ctune-interrupt-export.XXXXXX")
[ -n "${KEEP:-}" ] || trap 'rm -rf "$dir"' EXIT
run=${4:-}
[ -n "$run" ] || { run="$dir/run" && train_run "$run"; }
mkdir "$dir/out"
out="$dir/out/model.$format"
# what shows the export is writing: its temporary file, or an entry in its temporary folder
watched="$out.tmp.*"
[ "$format" = hf ] && watched="$out.tmp-*/*"
# the exit of the signal that was handled first; with two, either may be (each thread of the
# export takes one from the process's pending signals), the other must change nothing
expected=""
for s in ${signals//+/ }; do expected="$expected $((128 + $(kill -l "$s")))"; done
line="ctune export: interrupted; nothing was written to $out (temporary files removed)"

# Job control: a background command of a script otherwise starts with SIGINT ignored.
set -m
caught=0
for attempt in 1 2 3 4 5; do
    rm -rf "$dir/out" && mkdir "$dir/out"
    "$ctune" export --model "$run" --format "$format" --out "$out" >"$dir/export.out" 2>"$dir/export.err" &
    pid=$!
    until compgen -G "$watched" >/dev/null || ! kill -0 $pid 2>/dev/null; do sleep 0.002; done
    for s in ${signals//+/ }; do kill -s "$s" $pid 2>/dev/null; done
    { wait $pid; } 2>/dev/null
    status=$?
    # The export finished (exit 0, or its output was in place when the signal came): too late,
    # this attempt shows nothing; again.
    if [ $status -ne 0 ] && ! grep -q "^ctune export: interrupted after" "$dir/export.err"; then
        caught=1
        break
    fi
    echo "attempt $attempt: the export had finished (exit $status) when the signal came; again"
done
[ $caught -eq 1 ] || { echo "FAILED: the signal never came while the export was writing, in 5 attempts"; exit 1; }
failed=0
fail() { echo "FAILED: $*"; failed=1; }
[[ " $expected " == *" $status "* ]] || fail "exit status $status, expected one of$expected (128 + the signal)"
[ ! -e "$out" ] || fail "$out exists"
left=$(ls -A "$dir/out")
[ -z "$left" ] || fail "left beside the output: $left"
[ "$(grep -cxF "$line" "$dir/export.err")" -eq 1 ] || fail "the line '$line' is not printed once"
[ "$(tail -n 1 "$dir/export.err")" = "$line" ] || fail "stderr does not end with that line"
if [ $failed -ne 0 ]; then
    echo "--- stderr of the export:"
    cat "$dir/export.err"
    exit 1
fi
echo "interrupt_export $format $signals: exit $status, no output, nothing left, one line: ok"
