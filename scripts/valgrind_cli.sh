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
# Same rules as scripts/valgrind.sh: a case fails on a memcheck error, a definitely lost block,
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
pipe="tests/fixtures/pipeline_tiny.yaml serve.server=$w/no-llama-server"
dialog='[{"role":"user","content":"我要退货"}]'
echo "$dialog" > "$w/messages.json"

# name and command of every case; $w is the workspace
cases=(
    "pipeline|run $pipe output_dir=$w/full"
    "pipeline_lora|run $pipe output_dir=$w/lora adapt.recipe=recipes/lora_intent_zh.yaml"
    "resume|train recipes/pretrain_tiny_zh.yaml output_dir=$w/full/teacher resume=LATEST train.max_steps=4
        model.hidden_size=32 model.intermediate_size=64 model.num_layers=2 model.num_heads=2 model.num_kv_heads=1
        tokenizer.vocab_size=400 train.eval_every=0 checkpoint.every=0 eval.max_examples=4 data.batch_tokens=512 threads=1"
    "eval_int8|eval --model $w/full/quantize/model --data datasets/data/dialog_test.jsonl --max-examples 6"
    "eval_gguf|eval --model $w/full/export/model.gguf --data datasets/data/intent_test.jsonl --max-examples 6"
    "generate|generate --model $w/full/prune/model --prompt 我要退货 --max-new-tokens 8"
    "export_peft|export --model $w/lora/adapt --format peft --out $w/peft"
    "eval_adapter|eval --model $w/lora/teacher/model --adapter $w/peft --data datasets/data/intent_test.jsonl --max-examples 6"
    "export_gguf_lora|export --model $w/lora/adapt --format gguf-lora --out $w/adapter.gguf"
    "export_hf_bf16|export --model $w/lora/adapt --format hf --dtype bf16 --out $w/merged"
    "template|template --model $w/full/merge/model --messages $w/messages.json"
    "tokenize|tokenize --tokenizer $w/full/teacher/tokenizer --chat --generation-prompt --verbose --text $dialog"
)

wanted=("$@")
failed=0 passed=0 ran=0
for spec in "${cases[@]}"; do
    name=${spec%%|*}
    if [ ${#wanted[@]} -gt 0 ] && [[ " ${wanted[*]} " != *" $name "* ]]; then continue; fi
    cmd=${spec#*|}
    # resume=LATEST: the newest checkpoint the teacher stage left
    if [[ $cmd == *resume=LATEST* ]]; then
        latest=$(ls "$w"/full/teacher/checkpoints/step-*.h5 2>/dev/null | tail -n 1)
        cmd=${cmd/resume=LATEST/resume=$latest}
    fi
    log="$build/valgrind/cli-$name"
    start=$(date +%s)
    # shellcheck disable=SC2086 # the command is split into its words on purpose
    timeout "${CT_VALGRIND_TIMEOUT:-1800}" nice -n "${CT_VALGRIND_NICE:-15}" valgrind --tool=memcheck \
        --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite --show-leak-kinds=definite \
        --track-origins=no --suppressions=tests/valgrind.supp --log-file="$log.log" "$ctune" $cmd > "$log.out" 2>&1
    status=$?
    seconds=$(( $(date +%s) - start ))
    ran=$((ran + 1))
    errors=$(grep -o 'ERROR SUMMARY: [0-9]*' "$log.log" | tail -n 1 | grep -o '[0-9]*$')
    case $status in
    0) result="clean"; passed=$((passed + 1)) ;;
    124) result="timeout after ${CT_VALGRIND_TIMEOUT:-1800} s"; failed=$((failed + 1)) ;;
    99) result="MEMCHECK ERRORS ($errors): $log.log"; failed=$((failed + 1)) ;;
    *) result="CTUNE FAILED (exit $status): $log.out"; failed=$((failed + 1)) ;;
    esac
    echo "valgrind cli $name: $result (${seconds} s)"
done
echo "valgrind cli: $ran cases, $passed clean, $failed failed"
[ $failed -eq 0 ] && [ $ran -gt 0 ]
