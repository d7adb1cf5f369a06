#!/bin/sh
# data.test in a training run: the final model is evaluated once on the whole test file (not cut
# to eval.max_examples), logged as split "test" in the log and metrics.jsonl, with the accuracy
# and loss ctune eval gives the saved model on the same examples (the fixture model scores 0
# after two steps: the loss is what tells a wrong evaluation apart); without data.test no test
# record.
#   sh tests/cli_train_test_split.sh path/to/ctune
set -u
ctune=$1
tmp=$(mktemp -d /tmp/ctune-cli-test-split.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
head -n 30 datasets/data/intent_test.jsonl > "$tmp/test.jsonl"
base="model.path=tests/fixtures/models/qwen2 tokenizer.path=tests/fixtures/models/qwen2 data.max_examples=40 \
data.val= train.max_steps=2 train.log_every=1 checkpoint.every=0 eval.max_examples=5 threads=2"

# shellcheck disable=SC2086
"$ctune" train recipes/full_finetune_intent_zh.yaml $base data.test="$tmp/test.jsonl" output_dir="$tmp/run" \
    > "$tmp/log" 2>&1 || { cat "$tmp/log"; fail "run with data.test"; }
line=$(grep "^eval test at step 2: accuracy" "$tmp/log") || { cat "$tmp/log"; fail "no test evaluation in the log"; }
trained=$(echo "$line" | sed 's/.*accuracy \([0-9.]*\) .*loss \([0-9.]*\) .*/\1 \2/')
grep -q '"split":"test"' "$tmp/run/metrics.jsonl" || fail "no test record in metrics.jsonl"
evaluated=$("$ctune" eval --model "$tmp/run/model" --data "$tmp/test.jsonl" 2>/dev/null |
    awk '$1 == "accuracy" {a = $2} $1 == "loss" {l = sprintf("%.4f", $2)} END {print a, l}')
echo "trainer: accuracy, loss $trained; ctune eval: $evaluated"
[ "$trained" = "$evaluated" ] ||
    fail "the run's test accuracy and loss ($trained) differ from ctune eval's ($evaluated) on the same 30 examples"

# shellcheck disable=SC2086
"$ctune" train recipes/full_finetune_intent_zh.yaml $base data.test= output_dir="$tmp/none" > "$tmp/none.log" 2>&1 ||
    { cat "$tmp/none.log"; fail "run without data.test"; }
grep -q "^eval test" "$tmp/none.log" && fail "a test evaluation without data.test"
grep -q '"split":"test"' "$tmp/none/metrics.jsonl" && fail "a test record without data.test"
echo "cli_train_test_split: ok"
