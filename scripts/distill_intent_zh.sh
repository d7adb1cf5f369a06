#!/bin/sh
# Distillation on the bundled intents, with and without the teacher: recipes/distill_intent_zh.yaml
# for seeds 1, 2, 3 with KD (its distill.kd_ratio) and with distill.kd_ratio=0 (the CE-only twin,
# same student, same data order), each evaluated once on the hand-written test split; prints the
# accuracies, their means and the teacher's. The three seeds run side by side, one thread each.
#   scripts/distill_intent_zh.sh [key=value ...]        (overrides for both runs of every seed)
# Environment: CTUNE (build/ctune), RUNS (runs), TEACHER ($RUNS/full_finetune_intent_zh).
set -u
ctune="${CTUNE:-build/ctune}"
runs="${RUNS:-runs}"
teacher="${TEACHER:-$runs/full_finetune_intent_zh}"
test=datasets/data/intent_test.jsonl
[ -x "$ctune" ] || { echo "distill_intent_zh.sh: $ctune not found; build ctune first" >&2; exit 1; }
[ -d "$teacher" ] || { echo "distill_intent_zh.sh: no teacher at $teacher; run recipes/full_finetune_intent_zh.yaml first" >&2; exit 1; }

one() { # seed kind ratio overrides...: train, then evaluate on the test split
    seed=$1 kind=$2 ratio=$3
    shift 3
    out="$runs/distill_intent_zh_s${seed}_$kind"
    "$ctune" train recipes/distill_intent_zh.yaml seed="$seed" distill.kd_ratio="$ratio" distill.teacher="$teacher" \
        tokenizer.path="$teacher/model" output_dir="$out" overwrite=true threads=1 "$@" > "$out.log" 2>&1 &&
        OMP_NUM_THREADS=1 "$ctune" eval --model "$out" --data "$test" --json "$out.test.json" > "$out.test.txt" 2>&1 ||
        echo "seed $seed $kind failed: see $out.log" >&2
}
mkdir -p "$runs"
start=$(date +%s)
kd=$(sed -n 's/^  kd_ratio: *\([0-9.]*\).*/\1/p' recipes/distill_intent_zh.yaml)
for seed in 1 2 3; do
    (one "$seed" kd "$kd" "$@"; one "$seed" ce 0 "$@") &
done
wait
acc() { awk '$1 == "accuracy" {print $2; exit}' "$runs/distill_intent_zh_s$1_$2.test.txt" 2>/dev/null; }
teacher_acc=$(awk '$1 == "accuracy" {print $2; exit}' "$teacher/test_eval.txt" 2>/dev/null)
if [ -z "$teacher_acc" ]; then
    teacher_acc=$(OMP_NUM_THREADS=1 "$ctune" eval --model "$teacher" --data "$test" 2>/dev/null | awk '$1 == "accuracy" {print $2; exit}')
fi
params() { sed -n 's/^model: LlamaForCausalLM, \([0-9]*\) parameters.*/\1/p' "$runs/distill_intent_zh_s1_$1.log"; }
echo
echo "Intent accuracy on $test (380 utterances), recipes/distill_intent_zh.yaml, $(($(date +%s) - start)) s"
printf '%-6s %12s %12s\n' seed "KD" "CE only"
for seed in 1 2 3; do printf '%-6s %12s %12s\n' "$seed" "$(acc "$seed" kd)" "$(acc "$seed" ce)"; done
awk -v a="$(acc 1 kd) $(acc 2 kd) $(acc 3 kd)" -v b="$(acc 1 ce) $(acc 2 ce) $(acc 3 ce)" -v t="$teacher_acc" \
    -v ps="$(params kd)" -v pt="$(sed -n 's/^distill: teacher .* (\([0-9]*\) parameters.*/\1/p' "$runs/distill_intent_zh_s1_kd.log")" '
    BEGIN {
        n = split(a, x, " "); split(b, y, " ")
        for (i = 1; i <= n; i++) { sa += x[i]; sb += y[i] }
        printf "%-6s %12.4f %12.4f\n", "mean", sa / n, sb / n
        printf "teacher %s (%s parameters); student %s parameters = %.1f%% of the teacher\n", t, pt, ps, 100 * ps / pt
        printf "KD student / teacher = %.1f%% (goal >= 97%%); KD - CE = %+.4f (goal > 0)\n", 100 * sa / n / t, (sa - sb) / n
    }'
