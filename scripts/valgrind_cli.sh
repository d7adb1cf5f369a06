#!/usr/bin/env bash
# Runs ctune's own commands under Valgrind's memcheck (docs/reliability.md, "Valgrind"): the
# tiny pipeline (pretrain, full fine-tune, merge, distill, prune, INT8, GGUF) and again with LoRA
# as its adaptation, then resume, eval, generate, export, template and tokenize on what those
# made. The unit tests under scripts/valgrind.sh do not reach this code: the CLI's argument
# handling, the pipeline's stages and records, the report writers.
#
#   scripts/valgrind_cli.sh BUILD_DIR [CASE...]   each named case (default: all, in order;
#                                                 later cases use what earlier ones wrote)
#
# The rules of scripts/memcheck.sh: a case fails on a memcheck error, a definitely lost block,
# or a non-zero exit of ctune. Reports: BUILD_DIR/valgrind/cli-CASE.log (memcheck) and .out.
# CT_VALGRIND_NICE and CT_VALGRIND_TIMEOUT as there. The workspace is a temporary folder,
# removed at the end (CT_VALGRIND_KEEP=1 keeps it).
set -uo pipefail
cd "$(dirname "$0")/.."
build=${1:?usage: scripts/valgrind_cli.sh BUILD_DIR [CASE...]}
shift
command -v valgrind >/dev/null || { echo "valgrind is not installed (apt-get install valgrind)"; exit 1; }
ctune=$PWD/$build/ctune
[ -x "$ctune" ] || { echo "valgrind_cli: $ctune not found; build it first"; exit 1; }
w=$(mktemp -d /tmp/ctune-valgrind-cli.XXXXXX)
[ -n "${CT_VALGRIND_KEEP:-}" ] || trap 'rm -rf "$w"' EXIT
mkdir -p "$build/valgrind"
# OMP_WAIT_POLICY set: ctune does not start itself again to choose it (valgrind would not follow).
export OMP_NUM_THREADS=1 OMP_WAIT_POLICY=passive CT_NO_REGEX_JIT=1
# The teacher is given a tokenizer learned here, outside memcheck: with CT_NO_REGEX_JIT learning it
# takes minutes natively and hours under memcheck (test_tokenizer covers the learning code).
"$ctune" tokenizer train --data datasets/data/pretrain_train.txt --vocab-size 400 --out "$w/tokenizer" >/dev/null ||
    { echo "valgrind_cli: could not learn the tokenizer"; exit 1; }
pipe="tests/fixtures/pipeline_tiny.yaml serve.server=$w/no-llama-server teacher.set.tokenizer.train=false
      teacher.set.tokenizer.path=$w/tokenizer"
dialog='[{"role":"user","content":"我要退货"}]'
echo "$dialog" > "$w/messages.json"

# name and command of every case; $w is the workspace
cases=(
    "pipeline|run $pipe output_dir=$w/full"
    "pipeline_lora|run $pipe output_dir=$w/lora adapt.recipe=recipes/lora_intent_zh.yaml"
    "resume|train recipes/pretrain_tiny_zh.yaml output_dir=$w/full/teacher resume=LATEST train.max_steps=4
        model.hidden_size=32 model.intermediate_size=64 model.num_layers=2 model.num_heads=2 model.num_kv_heads=1
        tokenizer.train=false tokenizer.path=$w/tokenizer train.eval_every=0 checkpoint.every=0 eval.max_examples=4 data.batch_tokens=512 threads=1"
    "eval_int8|eval --model $w/full/quantize/model --data datasets/data/dialog_test.jsonl --max-examples 6"
    "eval_gguf|eval --model $w/full/export/model.gguf --data datasets/data/intent_test.jsonl --max-examples 6"
    "generate|generate --model $w/full/prune/model --prompt 我要退货 --max-new-tokens 8"
    "export_peft|export --model $w/lora/adapt --format peft --out $w/peft"
    "eval_adapter|eval --model $w/lora/teacher/model --adapter $w/peft --data datasets/data/intent_test.jsonl --max-examples 6"
    "export_gguf_lora|export --model $w/lora/adapt --format gguf-lora --out $w/adapter.gguf"
    "export_hf_bf16|export --model $w/lora/adapt --format hf --dtype bf16 --out $w/merged"
    "template|template --model $w/full/merge/model --messages $w/messages.json"
    "tokenize|tokenize --tokenizer $w/tokenizer --chat --generation-prompt --verbose --text $dialog"
)

wanted=("$@")
# shellcheck source=scripts/memcheck.sh
. scripts/memcheck.sh
ran=0
for spec in "${cases[@]}"; do
    name=${spec%%|*}
    if [ ${#wanted[@]} -gt 0 ] && [[ " ${wanted[*]} " != *" $name "* ]]; then continue; fi
    cmd=${spec#*|}
    # resume=LATEST: the newest checkpoint the teacher stage left
    if [[ $cmd == *resume=LATEST* ]]; then
        latest=$(ls "$w"/full/teacher/checkpoints/step-*.h5 2>/dev/null | tail -n 1)
        cmd=${cmd/resume=LATEST/resume=$latest}
    fi
    ran=$((ran + 1))
    # shellcheck disable=SC2086 # the command is split into its words on purpose
    memcheck "cli $name" "$build/valgrind/cli-$name" "$ctune" $cmd
done
echo "valgrind cli: $ran cases, $passed clean, $failed failed, $timeouts timed out"
[ $failed -eq 0 ] && [ $timeouts -eq 0 ] && [ $ran -gt 0 ]
