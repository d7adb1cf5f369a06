#!/bin/sh
# checkpoint.select: model/ holds the weights of the best validation evaluation, not the last
# step's. The fixture model trains with a learning rate that warms up to 1.0 over 12 steps, so
# the later evaluations get worse; a checkpoint every 2 steps (the evaluation interval) keeps
# each evaluated model, and model/ must equal, byte for byte, the export of the checkpoint at the
# step this script finds best in metrics.jsonl (lowest val loss, or highest accuracy, the earlier
# step on a tie). The script checks first that that step is not the last, or it would prove
# nothing.
#   sh tests/cli_select_best.sh CTUNE MODE      (from the source root)
#   loss      best_val_loss on a full fine-tune; the log line and the "model" record name the step;
#             and the same run stopped at step 12 and continued to 14 (resume=) writes the same
#             model/: its best step is before 12, so the selection came through the checkpoint
#   accuracy  best_val_accuracy (the fixture's accuracy ties across steps: the earliest wins)
# (lora, distill, prune and accuracy run 4 steps, the warmup to 1.0 over them: a few seconds in all)
#   lora      best_val_loss on a LoRA run: adapter/ and the merged model/ are the best step's
#   distill   best_val_loss on a distillation run: the student's best step
#   prune     best_val_loss on a one-shot pruning run, whose masks stay
#   refuse    bad combinations stop at the recipe with one line naming the key
set -u
ctune=$1
mode=$2
tmp=$(mktemp -d /tmp/ctune-cli-select.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
base="model.path=tests/fixtures/models/qwen2 tokenizer.path=tests/fixtures/models/qwen2 data.max_examples=24
 data.max_seq_len=64 data.test= train.eval_every=2 train.log_every=1 checkpoint.every=2 checkpoint.keep_last=0
 eval.max_examples=4 threads=1 schedule.name=constant schedule.warmup_steps=12 optimizer.lr=1 model.dropout=0"

# train NAME RECIPE KEY=VALUE...: a run into $tmp/NAME, its log in $tmp/NAME.log
train() {
    name=$1 recipe=$2
    shift 2
    # shellcheck disable=SC2086
    "$ctune" train "$recipe" $base "$@" output_dir="$tmp/$name" > "$tmp/$name.log" 2>&1 ||
        { cat "$tmp/$name.log"; fail "run $name"; }
}

# best_step RUN FIELD lower|higher: the step of the best val evaluation in metrics.jsonl, the
# earlier one on a tie (a step logged twice, by a resume, counts once: the later record).
best_step() {
    sed -n 's/.*"type":"eval","step":\([0-9]*\),"split":"val".*"'"$2"'":\([-0-9.e]*\).*/\1 \2/p' \
        "$tmp/$1/metrics.jsonl" | sort -n -k1,1 -s | awk -v want="$3" '
        { value[$1] = $2; if (!($1 in seen)) { order[n++] = $1; seen[$1] = 1 } }
        END { for (i = 0; i < n; i++) { s = order[i]; v = value[s] + 0
                  if (best == "" || (want == "lower" ? v < bv : v > bv)) { best = s; bv = v } }
              print best }'
}

# export_step RUN STEP: the checkpoint of that step as a Hugging Face folder $tmp/RUN-STEP
export_step() {
    ckpt=$(printf '%s/%s/checkpoints/step-%08d.h5' "$tmp" "$1" "$2")
    "$ctune" export --model "$ckpt" --format "${3:-hf}" --out "$tmp/$1-$2${3:-}" > "$tmp/export.log" 2>&1 ||
        { cat "$tmp/export.log"; fail "export of $ckpt"; }
}

# check_selected RUN FIELD lower|higher BEFORE: model/ is the export of the best step's checkpoint,
# a step before BEFORE (the last step, or where the resumed run was cut)
check_selected() {
    best=$(best_step "$1" "$2" "$3")
    [ -n "$best" ] || fail "no val evaluation in $tmp/$1/metrics.jsonl"
    echo "$1: best val $2 at step $best (must be before step $4)"
    [ "$best" -lt "$4" ] || fail "the best val $2 is not before step $4: this run cannot tell selection from none"
    export_step "$1" "$best"
    cmp -s "$tmp/$1-$best/model.safetensors" "$tmp/$1/model/model.safetensors" ||
        fail "$1/model/ is not the model of step $best, the best val $2"
}

case $mode in
loss)
    train whole recipes/full_finetune_intent_zh.yaml train.max_steps=14 checkpoint.select=best_val_loss
    check_selected whole loss lower 12
    grep -q "^model: $tmp/whole/model (step $best, best val loss [0-9.]*)\$" "$tmp/whole.log" ||
        { cat "$tmp/whole.log"; fail "no model line naming step $best"; }
    grep -q "\"type\":\"model\",\"step\":$best,\"select\":\"best_val_loss\",\"metric\":\"loss\"" \
        "$tmp/whole/metrics.jsonl" || fail "no model record naming step $best in metrics.jsonl"
    # the same run stopped at step 12 (after its best step), then continued to 14
    train part recipes/full_finetune_intent_zh.yaml train.max_steps=12 checkpoint.select=best_val_loss
    train part recipes/full_finetune_intent_zh.yaml train.max_steps=14 checkpoint.select=best_val_loss \
        resume="$tmp/part/checkpoints/step-00000012.h5"
    grep -q "^resume: best val loss so far [0-9.]*, at step $best\$" "$tmp/part.log" ||
        { cat "$tmp/part.log"; fail "the resume did not read the best step $best back"; }
    cmp -s "$tmp/whole/model/model.safetensors" "$tmp/part/model/model.safetensors" ||
        fail "the resumed run's model/ differs from the uninterrupted run's (step $best)"
    ;;
accuracy)
    train a recipes/full_finetune_intent_zh.yaml train.max_steps=4 schedule.warmup_steps=4 \
        checkpoint.select=best_val_accuracy
    # the tie rule is what this case checks: the best accuracy must be reached more than once
    ties=$(sed -n 's/.*"type":"eval","step":[0-9]*,"split":"val","accuracy":\([-0-9.e]*\).*/\1/p' \
        "$tmp/a/metrics.jsonl" | sort -g | uniq -c | tail -n 1 | awk '{print $1}')
    [ "${ties:-0}" -ge 2 ] || fail "the best val accuracy is reached once: this run cannot check the tie rule"
    check_selected a accuracy higher 4
    ;;
lora)
    train a recipes/lora_intent_zh.yaml train.max_steps=4 schedule.warmup_steps=4 checkpoint.select=best_val_loss
    check_selected a loss lower 4
    export_step a "$best" peft
    cmp -s "$tmp/a-${best}peft/adapter_model.safetensors" "$tmp/a/adapter/adapter_model.safetensors" ||
        fail "a/adapter/ is not the adapter of step $best, the best val loss"
    ;;
distill)
    train a recipes/distill_intent_zh.yaml train.max_steps=4 schedule.warmup_steps=4 checkpoint.select=best_val_loss \
        distill.teacher=tests/fixtures/models/qwen2 student.init_from_teacher_embedding=false
    check_selected a loss lower 4
    ;;
prune)
    train a recipes/prune_intent_zh.yaml train.max_steps=4 schedule.warmup_steps=4 checkpoint.select=best_val_loss \
        prune.schedule=one_shot data.val=datasets/data/intent_val.jsonl
    check_selected a loss lower 4
    ;;
refuse)
    # expect WHAT LINES KEY=VALUE...: exit 1, the error naming checkpoint.select on the last of
    # LINES lines (any: a resume's refusal comes after the setup's lines), no run folder
    expect() {
        what=$1 lines=$2
        shift 2
        # shellcheck disable=SC2086
        "$ctune" train recipes/full_finetune_intent_zh.yaml $base train.max_steps=2 "$@" output_dir="$tmp/r" \
            > "$tmp/r.log" 2>&1
        rc=$?
        [ $rc -eq 1 ] || { cat "$tmp/r.log"; fail "$what: exit $rc, not 1"; }
        [ "$lines" = any ] || [ "$(wc -l < "$tmp/r.log")" -eq "$lines" ] ||
            { cat "$tmp/r.log"; fail "$what: not $lines line(s)"; }
        tail -n 1 "$tmp/r.log" | grep -q "^ctune train: .*checkpoint.select=" ||
            { cat "$tmp/r.log"; fail "$what: the last line does not name checkpoint.select"; }
        [ ! -e "$tmp/r" ] || fail "$what: a run folder was written"
        tail -n 1 "$tmp/r.log"
    }
    expect "no data.val" 1 checkpoint.select=best_val_loss data.val=
    expect "no evaluation interval" 1 checkpoint.select=best_val_loss train.eval_every=0
    expect "accuracy of text" 1 checkpoint.select=best_val_accuracy data.format=text data.labels=
    expect "gradual pruning" 1 checkpoint.select=best_val_loss prune.method=l1_unstructured prune.schedule=gradual
    # a checkpoint of a select=last run cannot continue a selection it never kept
    train last recipes/full_finetune_intent_zh.yaml train.max_steps=2
    expect "resume of another selection" any checkpoint.select=best_val_loss train.max_steps=4 \
        resume="$tmp/last/checkpoints/step-00000002.h5"
    ;;
*) fail "unknown mode $mode" ;;
esac
echo "cli_select_best $mode: ok"
