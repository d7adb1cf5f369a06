#!/bin/sh
# ctune run on tests/fixtures/pipeline_tiny.yaml (the shipped pipeline's recipes, a few steps on a
# tiny model, eight test examples), as a user runs it:
#   1. the whole pipeline: every stage's outputs and record, the plots, the table and the report
#      files; the serve stage skipped with a one-line note (serve.server names no program);
#   2. again: every stage skipped, nothing rewritten;
#   3. --stage distill with a changed recipe key: only distill runs; the next whole run takes the
#      later stages again (their input changed) and skips the earlier ones;
#   4. an interrupted stage (no record): the run starts it over and skips the finished ones; Ctrl-C
#      in a training stage exits 130 and the next run continues from the checkpoint it saved;
#   5. refusals, one line each, exit 1 (2 for usage) and nothing on disk changed: outputs edited
#      by hand, a stage whose input is missing (naming the stage that makes it), an unknown stage in
#      the file or on the command line, an unknown recipe, an unknown recipe key.
#   sh tests/cli_pipeline.sh path/to/ctune
set -u
ctune=$1
tmp=$(mktemp -d /tmp/ctune-cli-pipeline.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
out=$tmp/run
base="output_dir=$out serve.server=$tmp/no-llama-server"
pipe() { # log, args...: ctune run on the tiny pipeline
    log=$1
    shift
    # shellcheck disable=SC2086
    "$ctune" run tests/fixtures/pipeline_tiny.yaml $base "$@" > "$tmp/$log.out" 2> "$tmp/$log.err"
}
tree_sum() { (cd "$1" && find . -type f | LC_ALL=C sort | xargs cksum) | cksum; }
one_line_error() { # log, expected text: exit 1 already checked; stderr is one line naming it
    [ "$(wc -l < "$tmp/$1.err")" -eq 1 ] || { cat "$tmp/$1.err"; fail "$1: not one line"; }
    grep -q "$2" "$tmp/$1.err" || { cat "$tmp/$1.err"; fail "$1: no '$2'"; }
}

# 1. the whole pipeline
pipe first || { cat "$tmp/first.err"; fail "first run"; }
for f in teacher/model/model.safetensors teacher/tokenizer/tokenizer.json adapt/model/model.safetensors \
    merge/model/model.safetensors merge/model/labels.json distill/model/model.safetensors prune/model/model.safetensors \
    quantize/model/model.safetensors export/model.gguf report.md report.json; do
    [ -s "$out/$f" ] || fail "no $f"
done
for s in teacher adapt merge distill prune quantize export serve; do
    grep -q '"fingerprint":[[:space:]]*"fnv1a64:' "$out/$s/stage.json" || fail "no record for $s"
done
for s in teacher adapt distill prune; do
    grep -q '<svg' "$out/$s/plot.svg" || fail "no plot for $s"
    grep -q "($s/plot.svg)" "$out/report.md" || fail "report.md does not show the $s plot"
done
grep -q '<svg' "$out/accuracy.svg" && grep -q '(accuracy.svg)' "$out/report.md" || fail "no accuracy chart"
grep -q '"config_groups"\|quantization_config' "$out/quantize/model/config.json" || fail "quantize/model is not INT8"
grep -q '"test_accuracy"' "$out/prune/stage.json" && grep -q '"dialog_accuracy"' "$out/quantize/stage.json" ||
    fail "no accuracies recorded"
for row in "teacher (adapted, merged)" "student (distilled)" "pruned student" "INT8 student"; do
    grep -q "^$row  *[0-9-]" "$tmp/first.out" || { cat "$tmp/first.out"; fail "no table row '$row'"; }
done
# The baselines come from datasets/data/baselines.json with their accuracies on both test splits.
grep -Eq '^baseline: majority class.* 0\.[0-9]{3} +0\.[0-9]{3} ' "$tmp/first.out" ||
    { cat "$tmp/first.out"; fail "no table row for the majority-class baseline"; }
grep -q "^\[8/8\] serve: skipped: no llama-server at $tmp/no-llama-server" "$tmp/first.err" || fail "no serve note"
grep -q "served INT8 model (GGUF Q8_0, llama-server): skipped" "$tmp/first.out" || fail "no serve note in the table"
grep -q '^\[5/8\] prune  *step 2/2 .*stage ETA .* pipeline ETA' "$tmp/first.err" || fail "no progress line"
sum_but_report() { (cd "$1" && find . -type f ! -name 'report.*' | LC_ALL=C sort | xargs cksum) | cksum; }
before=$(sum_but_report "$out")

# 2. again: all skipped, nothing rewritten but the report
pipe second || { cat "$tmp/second.err"; fail "second run"; }
[ "$(grep -c 'finished earlier with the same inputs and configuration: skipped' "$tmp/second.err")" -eq 8 ] ||
    { cat "$tmp/second.err"; fail "not every stage skipped"; }
[ "$(sum_but_report "$out")" = "$before" ] || fail "the second run rewrote files"
grep -q "^INT8 student  *[0-9]" "$tmp/second.out" || { cat "$tmp/second.out"; fail "no table from the records"; }

# 3. one stage alone, with a changed key; then the rest follows
sum_teacher=$(tree_sum "$out/teacher")
pipe only distill.set.train.max_steps=4 --stage distill || { cat "$tmp/only.err"; fail "--stage distill"; }
grep -q '^\[4/8\] distill: its configuration, data or input changed since it finished: running it again' "$tmp/only.err" ||
    { cat "$tmp/only.err"; fail "distill did not run again"; }
grep -q '^\[[1235678]/8\]' "$tmp/only.err" && { cat "$tmp/only.err"; fail "--stage ran other stages"; }
grep -q 'max_steps: 4' "$out/distill/recipe.yaml" || fail "distill did not take the new key"
pipe after distill.set.train.max_steps=4 || { cat "$tmp/after.err"; fail "run after --stage"; }
for s in teacher adapt merge distill; do
    grep -q "\] $s: finished earlier" "$tmp/after.err" || { cat "$tmp/after.err"; fail "$s not skipped"; }
done
grep -q '^\[5/8\] prune: its configuration, data or input changed' "$tmp/after.err" ||
    { cat "$tmp/after.err"; fail "prune did not follow its input"; }
[ "$(tree_sum "$out/teacher")" = "$sum_teacher" ] || fail "teacher rewritten"

# 4. an interrupted stage: no record; it starts over, the finished ones are skipped
rm "$out/prune/stage.json"
pipe resumed distill.set.train.max_steps=4 || { cat "$tmp/resumed.err"; fail "resumed run"; }
grep -q '^\[5/8\] prune: starting over' "$tmp/resumed.err" || { cat "$tmp/resumed.err"; fail "prune not started over"; }
grep -q '^\[4/8\] distill: finished earlier' "$tmp/resumed.err" || fail "distill not skipped on resume"
[ -s "$out/prune/stage.json" ] || fail "prune has no record after the resume"

# 4b. Ctrl-C in a training stage: exit 130, a checkpoint; the next run continues from it
long="output_dir=$tmp/int teacher.set.train.max_steps=200 teacher.set.train.log_every=1"
# shellcheck disable=SC2086
"$ctune" run tests/fixtures/pipeline_tiny.yaml $long --stage teacher > /dev/null 2> "$tmp/int.err" &
pid=$!
i=0
while [ $i -lt 300 ] && ! grep -q '"type":"train"' "$tmp/int/teacher/metrics.jsonl" 2> /dev/null; do
    sleep 0.1
    i=$((i + 1))
done
kill -INT $pid
wait $pid
rc=$?
[ $rc -eq 130 ] || { cat "$tmp/int.err"; fail "interrupted run: exit $rc, not 130"; }
grep -q "run the same command again to continue" "$tmp/int.err" || fail "no word on continuing"
[ ! -e "$tmp/int/teacher/stage.json" ] || fail "an interrupted stage has a record"
# shellcheck disable=SC2086
"$ctune" run tests/fixtures/pipeline_tiny.yaml $long --stage teacher > /dev/null 2> "$tmp/int2.err" ||
    { cat "$tmp/int2.err"; fail "continued run"; }
grep -q "^\[1/8\] teacher: continuing the interrupted run from $tmp/int/teacher/checkpoints/step-" "$tmp/int2.err" ||
    { cat "$tmp/int2.err"; fail "the interrupted stage did not continue"; }
grep -q '"resumed":true' "$tmp/int/teacher/metrics.jsonl" || fail "metrics.jsonl shows no resume"
[ -s "$tmp/int/teacher/stage.json" ] || fail "no record after the continued run"

# 4c. a teacher given a tokenizer (tokenizer.train=false) has no tokenizer/ of its own: the next
# stages take the one in its model folder
given="output_dir=$tmp/given teacher.set.tokenizer.train=false teacher.set.tokenizer.path=$out/teacher/tokenizer"
# shellcheck disable=SC2086
"$ctune" run tests/fixtures/pipeline_tiny.yaml $given serve.server="$tmp/no-llama-server" > /dev/null 2> "$tmp/given.err" ||
    { cat "$tmp/given.err"; fail "a teacher with a given tokenizer"; }
[ ! -e "$tmp/given/teacher/tokenizer" ] && [ -s "$tmp/given/export/model.gguf" ] ||
    fail "a teacher with a given tokenizer: not every stage ran from its model folder"
cmp -s "$tmp/given/teacher/model/tokenizer.json" "$out/teacher/tokenizer/tokenizer.json" ||
    fail "the teacher's model folder does not hold the tokenizer it was given"

# 5. refusals
echo >> "$out/merge/model/config.json"
before=$(tree_sum "$out")
pipe edited distill.set.train.max_steps=4 && fail "edited outputs accepted"
one_line_error edited "stage merge: the files in $out/merge changed after the stage finished"
[ "$(tree_sum "$out")" = "$before" ] || fail "the refused run changed the run folder"

pipe missing output_dir="$tmp/fresh" --stage distill && fail "missing input accepted"
one_line_error missing "stage distill: its input $tmp/fresh/merge/model is missing; stage merge makes it"
[ ! -e "$tmp/fresh" ] || fail "a refused --stage made the run folder"

sed 's/^quantize: {}/quantise: {}/' tests/fixtures/pipeline_tiny.yaml > "$tmp/bad_stage.yaml"
"$ctune" run "$tmp/bad_stage.yaml" output_dir="$tmp/bad" > /dev/null 2> "$tmp/bad_stage.err" && fail "unknown stage accepted"
one_line_error bad_stage "unknown stage 'quantise' (stages: teacher, adapt, merge"
pipe bad_recipe adapt.recipe=recipes/no_such_recipe.yaml output_dir="$tmp/bad" && fail "unknown recipe accepted"
one_line_error bad_recipe "adapt.recipe: recipe 'recipes/no_such_recipe.yaml' not found"
pipe bad_key distill.set.train.max_stepz=4 output_dir="$tmp/bad" && fail "unknown recipe key accepted"
one_line_error bad_key "'train.max_stepz' is not a recipe key"
pipe bad_option --stage quantise
[ $? -eq 2 ] || fail "--stage quantise: exit status not 2"
grep -q "no such stage" "$tmp/bad_option.err" || fail "--stage quantise: no message"
[ ! -e "$tmp/bad" ] || fail "a refused pipeline made its run folder"
echo "all pipeline checks passed"
