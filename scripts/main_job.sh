#!/usr/bin/env bash
# The main job on the bundled corpus, until the one-command pipeline exists:
#   1. pretrain a tiny LLaMA-style model from scratch (recipes/pretrain_tiny_zh.yaml), with a
#      byte-level BPE tokenizer learned from the same text;
#   2. fine-tune it on the 15 customer-service intents, single messages and dialogues together
#      (recipes/full_finetune_intent_zh.yaml);
#   3. evaluate it on the hand-written test splits (single messages, multi-turn dialogues) and print
#      its accuracy next to the corpus baselines (datasets/data/baselines.json, written by
#      tools/corpus/baselines.py; docs/datasets.md).
# Runs from the repository root with the binary of scripts/setup.sh (CT_BUILD_DIR, default build).
# Extra arguments are passed to both `ctune train` calls as key=value overrides. The runs go to
# CT_RUNS_DIR (default runs) and replace the previous main job's runs there (overwrite=true), so
# the script can be run again; a stage that fails or is interrupted (Ctrl-C exits 130) stops it.
set -euo pipefail
cd "$(dirname "$0")/.."
ctune="./${CT_BUILD_DIR:-build}/ctune"
runs="${CT_RUNS_DIR:-runs}"
[ -x "$ctune" ] || { echo "main_job.sh: $ctune not found; run scripts/setup.sh first" >&2; exit 1; }
pretrain="$runs/pretrain_tiny_zh"
finetune="$runs/full_finetune_intent_zh"

# cpu: CPU seconds (user + system) of the finished child processes so far, from the shell's own
# `times` (it must run in this shell, not in a $(...) subshell, which would count nothing).
mkdir -p "$runs"
cpu_now() {
    times > "$runs/.times"
    cpu=$(awk 'NR == 2 {split($1, u, /[ms]/); split($2, s, /[ms]/); printf "%d", u[1] * 60 + u[2] + s[1] * 60 + s[2]}' "$runs/.times")
}

start=$(date +%s)
"$ctune" train recipes/pretrain_tiny_zh.yaml output_dir="$pretrain" overwrite=true "$@"
pretrained=$(date +%s)
cpu_now
pretrain_cpu=$cpu
"$ctune" train recipes/full_finetune_intent_zh.yaml model.path="$pretrain" tokenizer.path="$pretrain/tokenizer" \
    output_dir="$finetune" overwrite=true "$@"
finetuned=$(date +%s)
cpu_now
finetune_cpu=$(( cpu - pretrain_cpu ))
"$ctune" eval --model "$finetune" --data datasets/data/intent_test.jsonl --format intent \
    --json "$finetune/test_eval.json" | tee "$finetune/test_eval.txt"
"$ctune" eval --model "$finetune" --data datasets/data/dialog_test.jsonl --format dialog_intent \
    --json "$finetune/dialog_test_eval.json" | tee "$finetune/dialog_test_eval.txt"
evaluated=$(date +%s)

# The figures for the table and for scripts/record_main_job.sh, which writes them into docs/PERF.md.
python3 - "$finetune" "$runs/main_job.json" "$("$ctune" --version | sed -n 2p)" \
    "$(( pretrained - start ))" "$(( finetuned - pretrained ))" "$(( evaluated - finetuned ))" \
    "$pretrain_cpu" "$finetune_cpu" datasets/data/baselines.json <<'PY'
import datetime, json, sys
run, out, blas, pre_s, ft_s, ev_s, pre_cpu, ft_cpu, baselines_path = sys.argv[1:]
single = json.load(open(run + "/test_eval.json"))
multi = json.load(open(run + "/dialog_test_eval.json"))
summary = {"date": datetime.date.today().isoformat(), "blas": blas,
           "pretrain_s": int(pre_s), "finetune_s": int(ft_s), "eval_s": int(ev_s),
           "pretrain_cpu_s": int(pre_cpu), "finetune_cpu_s": int(ft_cpu),
           "accuracy": single["accuracy_summed"],
           "accuracy_length_normalized": single["accuracy_length_normalized"],
           "multi_turn_accuracy": multi["accuracy_summed"]}
json.dump(summary, open(out, "w"), indent=1)
# The baselines: character n-gram classifiers trained on the same training data, evaluated on the
# same test items (dialogues as their user turns joined), by `python3 tools/corpus/baselines.py`.
models = json.load(open(baselines_path))["models"]
print("\nIntent accuracy on the hand-written test split      single-turn (%d)  multi-turn (%d)"
      % (single["total"], multi["total"]))
print("  %-48s %-17.4f %.4f" % ("ctune tiny model, pretrained + fine-tuned here", summary["accuracy"],
                                summary["multi_turn_accuracy"]))
for key, name in (("logistic_regression", "char 1-3-gram logistic regression"),
                  ("naive_bayes", "char 1-3-gram naive Bayes"), ("majority", "majority class")):
    m = models[key]
    print("  %-48s %-17.4f %.4f" % ("baseline: " + name, m["single_turn_test"]["accuracy"],
                                    m["multi_turn_test"]["accuracy"]))
print("time: pretraining %s s (%s CPU s), fine-tuning %s s (%s CPU s), evaluation %s s"
      % (pre_s, pre_cpu, ft_s, ft_cpu, ev_s))
PY
