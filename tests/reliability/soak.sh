#!/usr/bin/env bash
# Soak run: a long training run stopped by SIGINT every few minutes and resumed each time ends
# bit-identical to an uninterrupted run trained beside it, with flat memory (docs/reliability.md,
# "Soak run"). Too long for ctest or CI: run by hand.
#
#   tests/reliability/soak.sh CTUNE [LENGTH] [EVERY] [DIR]
#     LENGTH  about how long one run trains, alone: 20m (default), 90s, or minutes as a number
#     EVERY   how often the interrupted run gets SIGINT: 4m (default), 40s, ...
#     DIR     where the runs and rss.tsv are kept (default: a new folder in $TMPDIR or /tmp)
#   CT_SOAK_REFERENCE_OVERRIDES="k=v ..."  extra overrides for the uninterrupted run only, to see
#                                          the comparison fail (e.g. seed=99); not for real runs
#   CT_SOAK_RSS_TOLERANCE=5                 % a later segment's peak RSS may exceed the first's
#
# The tiny recipe (recipes/pretrain_tiny_zh.yaml, its model and data) trains with threads=1, a
# log line and a metrics record every step, and a checkpoint about every 30 s of training. A
# probe of 30 steps times a step; train.max_steps is LENGTH over that time (printed: the wall
# time of the runs below is longer, since two runs share the machine). Then two identical runs
# start together: the reference, uninterrupted, and the soaked run, sent SIGINT every EVERY and
# resumed each time with the resume=PATH that ctune printed (as tests/reliability/kill_resume.sh
# does), until it finishes. VmRSS of both (/proc/PID/status) is sampled every 2 s into
# DIR/rss.tsv. At the end:
#   - every step's loss and gradient norm logged by the soaked run (metrics.jsonl, all its
#     segments, 17 significant digits) equals the reference's, and every step is logged;
#   - every file of model/ is byte-identical (cmp);
#   - per segment (the soaked run) and per EVERY-long window (the reference): RSS min, median and
#     max; each later one's max within CT_SOAK_RSS_TOLERANCE % of the first one's.
# Exits 1 on any difference, 0 with a summary line otherwise.
set -uo pipefail
ctune=${1:?usage: soak.sh CTUNE [LENGTH] [EVERY] [DIR]}
seconds_of() { case $1 in *s) echo "${1%s}" ;; *m) echo $((${1%m} * 60)) ;; *) echo $(($1 * 60)) ;; esac; }
length_s=$(seconds_of "${2:-20m}")
every_s=$(seconds_of "${3:-4m}")
dir=${4:-$(mktemp -d "${TMPDIR:-/tmp}/ctune-soak.XXXXXX")}
tolerance=${CT_SOAK_RSS_TOLERANCE:-5}
mkdir -p "$dir" || exit 1
[ -z "$(ls -A "$dir")" ] || { echo "$dir is not empty; give a new folder"; exit 1; }
export OMP_NUM_THREADS=1
echo "soak: $length_s s of training, SIGINT every $every_s s, in $dir"

args=(data.val= train.eval_every=0 train.log_every=1 checkpoint.keep_last=2 threads=1)
# The tokenizer is trained once and shared, as the recipe would train it.
"$ctune" tokenizer train --data datasets/data/pretrain_train.txt --vocab-size 3000 --out "$dir/tokenizer" \
    >"$dir/tokenizer.out" 2>&1 || { echo "training the tokenizer failed"; cat "$dir/tokenizer.out"; exit 1; }
args+=(tokenizer.train=false tokenizer.path="$dir/tokenizer")

# "step loss grad_norm" of every train record, in file order.
losses() { jq -r 'select(.type == "train") | "\(.step) \(.loss) \(.grad_norm)"' "$1"; }
elapsed_at() { jq -r "select(.type == \"train\" and .step == $2) | .elapsed_s" "$1"; }

"$ctune" train recipes/pretrain_tiny_zh.yaml "${args[@]}" output_dir="$dir/probe" train.max_steps=30 checkpoint.every=1000 >"$dir/probe.out" 2>"$dir/probe.err" ||
    { echo "the probe failed"; tail -n 3 "$dir/probe.err"; exit 1; }
step_ms=$(awk -v a="$(elapsed_at "$dir/probe/metrics.jsonl" 10)" -v b="$(elapsed_at "$dir/probe/metrics.jsonl" 30)" \
    'BEGIN { printf "%d", (b - a) * 1000 / 20 }')
rm -rf "$dir/probe"
[ "$step_ms" -gt 0 ] || step_ms=1
steps=$((length_s * 1000 / step_ms))
every_steps=$((30000 / step_ms))
[ $every_steps -ge 1 ] || every_steps=1
args+=(train.max_steps=$steps checkpoint.every=$every_steps)
echo "probe: $step_ms ms a step alone; train.max_steps=$steps, checkpoint.every=$every_steps"

# Job control: a background command of a script otherwise starts with SIGINT ignored. (ctune
# itself is the background job, not a function's subshell: the signal and the RSS are its own.)
set -m
# Stopped by hand: the runs in the background (their own process groups) stop too.
reference_pid="" pid="" sampler_pid=""
stop_all() {
    for p in $reference_pid $pid $sampler_pid; do kill "$p" 2>/dev/null; done
    echo "soak: stopped; kept in $dir"
    exit 130
}
trap stop_all INT TERM HUP
start=$SECONDS
read -r -a reference_extra <<<"${CT_SOAK_REFERENCE_OVERRIDES:-}"
"$ctune" train recipes/pretrain_tiny_zh.yaml "${args[@]}" output_dir="$dir/reference" "${reference_extra[@]}" >"$dir/reference.out" 2>"$dir/reference.err" &
reference_pid=$!

# The sampler: "seconds run segment pid rss_kb" every 2 s, while $dir/current (the soaked run's
# segment and pid) exists.
printf 'seconds\trun\tsegment\tpid\trss_kb\n' >"$dir/rss.tsv"
echo "0 0" >"$dir/current"
sample() {
    local run=$1 segment=$2 pid=$3 rss
    rss=$(awk '/^VmRSS:/ { print $2 }' "/proc/$pid/status" 2>/dev/null) || return 0
    [ -n "$rss" ] && printf '%d\t%s\t%d\t%d\t%d\n' $((SECONDS - start)) "$run" "$segment" "$pid" "$rss" >>"$dir/rss.tsv"
}
(
    while [ -e "$dir/current" ]; do
        sample reference $(((SECONDS - start) / every_s + 1)) $reference_pid
        read -r segment pid <"$dir/current" 2>/dev/null && [ "$pid" != 0 ] && sample soaked "$segment" "$pid"
        sleep 2
    done
) &
sampler_pid=$!

failed=0
fail() { echo "FAILED: $*"; failed=1; }
segment=0 resume=()
while :; do
    segment=$((segment + 1))
    "$ctune" train recipes/pretrain_tiny_zh.yaml "${args[@]}" output_dir="$dir/soaked" "${resume[@]}" >"$dir/soaked.$segment.out" 2>"$dir/soaked.$segment.err" &
    pid=$!
    echo "$segment $pid" >"$dir/current"
    deadline=$((SECONDS + every_s))
    while kill -0 $pid 2>/dev/null && [ $SECONDS -lt $deadline ]; do sleep 1; done
    kill -INT $pid 2>/dev/null
    { wait $pid; } 2>/dev/null
    status=$?
    [ $status -eq 0 ] && { echo "segment $segment: finished at $((SECONDS - start)) s"; break; }
    named=$(sed -n 's/^interrupted at step [0-9]*: resume with resume=//p' "$dir/soaked.$segment.out")
    if [ $status -ne 130 ] || [ -z "$named" ]; then
        fail "segment $segment exited $status without a checkpoint to resume: $(tail -n 1 "$dir/soaked.$segment.err")"
        break
    fi
    echo "segment $segment: $(tail -n 1 "$dir/soaked.$segment.out") (at $((SECONDS - start)) s)"
    if [ "$((10#$(basename "$named" .h5 | sed 's/step-//')))" -eq $steps ]; then
        # stopped after the last step, while model/ was written: the last checkpoint is the model
        "$ctune" export --model "$named" --format hf --out "$dir/soaked/model" >"$dir/export.out" 2>&1 ||
            fail "exporting the last checkpoint failed: $(tail -n 1 "$dir/export.out")"
        break
    fi
    resume=(resume="$named")
done
{ wait $reference_pid; } 2>/dev/null || fail "the reference run failed: $(tail -n 1 "$dir/reference.err")"
rm -f "$dir/current"
wait $sampler_pid

if [ $failed -eq 0 ]; then
    losses "$dir/reference/metrics.jsonl" >"$dir/reference.losses"
    losses "$dir/soaked/metrics.jsonl" >"$dir/soaked.losses"
    bad=$(grep -vxF -f "$dir/reference.losses" "$dir/soaked.losses" | head -n 1)
    [ -z "$bad" ] || fail "the soaked run logged a step the reference did not (step loss grad_norm): $bad"
    for run in reference soaked; do
        covered=$(cut -d' ' -f1 "$dir/$run.losses" | sort -un | wc -l)
        [ "$covered" -eq $steps ] || fail "$run logged $covered of $steps steps"
    done
    for f in "$dir/reference/model"/*; do
        cmp -s "$f" "$dir/soaked/model/$(basename "$f")" || fail "model/$(basename "$f") differs"
    done
    [ -n "$(ls "$dir/reference/model" 2>/dev/null)" ] || fail "the reference wrote no model/"
fi

# RSS: min/median/max per segment (the soaked run) and per window of EVERY (the reference); a
# later one's max more than the tolerance above the first one's fails.
rss_summary() {
    awk -F'\t' -v run="$1" -v tol="$tolerance" '
        NR > 1 && $2 == run { n[$3]++; v[$3, n[$3]] = $5; if ($3 > last) last = $3 }
        END {
            bad = 0
            for (s = 1; s <= last; s++) {
                if (!n[s]) continue
                m = n[s]
                for (i = 1; i <= m; i++) a[i] = v[s, i]
                for (i = 2; i <= m; i++) for (j = i; j > 1 && a[j - 1] > a[j]; j--) { t = a[j]; a[j] = a[j - 1]; a[j - 1] = t }
                med = m % 2 ? a[(m + 1) / 2] : (a[m / 2] + a[m / 2 + 1]) / 2
                if (!first) first = a[m]
                growth = 100 * (a[m] - first) / first
                printf "%s %d: %d samples, RSS min %.1f / median %.1f / max %.1f MiB (%+.1f%% of the first max)\n", run, s, m, a[1] / 1024, med / 1024, a[m] / 1024, growth
                if (growth > tol) bad = 1
            }
            exit bad
        }' "$dir/rss.tsv"
}
rss_summary soaked || fail "the soaked run's memory grew by more than $tolerance % from its first segment"
rss_summary reference || fail "the reference's memory grew by more than $tolerance % from its first window"

result="soak: $steps steps, $segment segments, SIGINT every $every_s s, $((SECONDS - start)) s"
if [ $failed -ne 0 ]; then
    echo "$result: FAILED (kept in $dir)"
    exit 1
fi
echo "$result: every step's loss and gradient norm and every model file bit-identical, memory flat (kept in $dir)"
