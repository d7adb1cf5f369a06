#!/usr/bin/env bash
# The main job on the bundled corpus, until the one-command pipeline exists:
#   1. pretrain a tiny LLaMA-style model from scratch (recipes/pretrain_tiny_zh.yaml), with a
#      byte-level BPE tokenizer learned from the same text;
#   2. fine-tune it on the 15 customer-service intents (recipes/full_finetune_intent_zh.yaml);
#   3. evaluate it on the hand-written single-turn test split and print its accuracy next to the
#      corpus baselines of docs/datasets.md.
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

start=$(date +%s)
"$ctune" train recipes/pretrain_tiny_zh.yaml output_dir="$pretrain" overwrite=true "$@"
pretrained=$(date +%s)
"$ctune" train recipes/full_finetune_intent_zh.yaml model.path="$pretrain" tokenizer.path="$pretrain/tokenizer" \
    output_dir="$finetune" overwrite=true "$@"
finetuned=$(date +%s)
"$ctune" eval --model "$finetune" --data datasets/data/intent_test.jsonl \
    --json "$finetune/test_eval.json" | tee "$finetune/test_eval.txt"
accuracy=$(awk '$1 == "accuracy" {print $2; exit}' "$finetune/test_eval.txt")

# The baselines were measured by `python3 tools/corpus/baselines.py` (docs/datasets.md, "Baselines"):
# character n-gram classifiers trained on the same training split, on the same 380 test utterances.
cat <<EOF

Intent accuracy on the hand-written single-turn test split (datasets/data/intent_test.jsonl, 380 utterances)
  ctune tiny model, pretrained + fine-tuned here     $accuracy
  baseline: char 1-3-gram logistic regression        0.918
  baseline: char 1-3-gram naive Bayes                0.876
  baseline: majority class                           0.068
time: pretraining $(( pretrained - start )) s, fine-tuning $(( finetuned - pretrained )) s, evaluation $(( $(date +%s) - finetuned )) s
EOF

# The same figures for scripts/record_main_job.sh, which writes them into docs/PERF.md.
python3 - "$finetune/test_eval.json" "$runs/main_job.json" "$("$ctune" --version | sed -n 2p)" \
    "$(( pretrained - start ))" "$(( finetuned - pretrained ))" "$(( $(date +%s) - finetuned ))" <<'PY'
import datetime, json, sys
evaluation = json.load(open(sys.argv[1]))
summary = {"date": datetime.date.today().isoformat(), "blas": sys.argv[3],
           "pretrain_s": int(sys.argv[4]), "finetune_s": int(sys.argv[5]), "eval_s": int(sys.argv[6]),
           "accuracy": evaluation["accuracy_summed"],
           "accuracy_length_normalized": evaluation["accuracy_length_normalized"]}
json.dump(summary, open(sys.argv[2], "w"), indent=1)
PY
