#!/bin/sh
# ctune train with a teacher (recipe section distill:), as a user runs it, on the fixture models:
# a student made of all the teacher's layers starts with a KL of 0 (dropout off, kd_ratio 1),
# which checks the teacher's forward, the target rows and the dropped padding columns end to end
# (the qwen2 fixture has 320 lm_head rows for 283 tokens); a student of two teacher layers, a new
# small student and a LoRA student train; a teacher with 283 rows (qwen3) and a student with 320
# share the tokenizer and are accepted; a new student over the teacher's embedding trains. Then the
# refusals: a tokenizer that differs (naming the
# ids), one of another size, a student or teacher too short for the data, kd_ratio outside [0, 1],
# T <= 0, a missing teacher, a layer the teacher lacks, an int8 teacher's layers for a student.
# A bf16 teacher distilled into its own (widened) weights starts at 0 too; an int8 one near 0. Each is one line,
# exit 1, before any step, and leaves no run folder.
#   sh tests/cli_distill.sh path/to/ctune
set -u
ctune=$1
tmp=$(mktemp -d /tmp/ctune-cli-distill.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
q2=tests/fixtures/models/qwen2
base="distill.teacher=$q2 tokenizer.path=$q2 data.max_examples=24 data.val= data.batch_size=8 model.dropout=0 \
train.log_every=1 checkpoint.every=0 threads=2 student.init_from_teacher_embedding=false"

run() { # name, overrides...
    name=$1
    shift
    # shellcheck disable=SC2086
    "$ctune" train recipes/distill_intent_zh.yaml $base output_dir="$tmp/$name" "$@" > "$tmp/$name.log" 2>&1 ||
        { cat "$tmp/$name.log"; fail "$name run"; }
}

# The whole teacher as the student, kd_ratio 1: the first step's loss is the KL of two equal models.
run same student.init_from_teacher_layers=0,1,2 distill.kd_ratio=1 train.max_steps=1
grep -q "^distill: teacher $q2 " "$tmp/same.log" || fail "no distill line"
grep -q "^model: student of teacher layers \[0,1,2\]" "$tmp/same.log" || fail "no student line"
loss=$(sed -n 's/^step 1\/1 loss \([^ ]*\) .*/\1/p' "$tmp/same.log")
awk -v l="$loss" 'BEGIN { exit !(l != "" && l + 0 < 1e-6 && l + 0 > -1e-6) }' || fail "KL of the teacher with itself is '$loss', not 0"
echo "ok the teacher distilled into itself starts at loss $loss"
# A bf16 teacher and the student widened from its weights: the same numbers, a KL of 0 again.
run same_bf16 student.init_from_teacher_layers=0,1,2 distill.kd_ratio=1 train.max_steps=1 distill.teacher_dtype=bf16
loss=$(sed -n 's/^step 1\/1 loss \([^ ]*\) .*/\1/p' "$tmp/same_bf16.log")
awk -v l="$loss" 'BEGIN { exit !(l != "" && l + 0 < 1e-5 && l + 0 > -1e-5) }' || fail "bf16 teacher with itself: '$loss'"
# An int8 teacher (projections quantized per row) is close to, not equal to, the f32 one.
run same_int8 model.path=$q2 distill.kd_ratio=1 train.max_steps=1 distill.teacher_dtype=int8
loss=$(sed -n 's/^step 1\/1 loss \([^ ]*\) .*/\1/p' "$tmp/same_int8.log")
awk -v l="$loss" 'BEGIN { exit !(l + 0 > 0 && l + 0 < 0.05) }' || fail "int8 teacher against the f32 model: KL '$loss'"
echo "ok an int8 teacher against its f32 model: KL $loss"
# The same student with CE only: a real loss, and the teacher is not run.
run same_ce student.init_from_teacher_layers=0,1,2 distill.kd_ratio=0 train.max_steps=1
grep -q "kd_ratio 0: cross-entropy only" "$tmp/same_ce.log" || fail "kd_ratio=0 does not say the teacher is skipped"
ce=$(sed -n 's/^step 1\/1 loss \([^ ]*\) .*/\1/p' "$tmp/same_ce.log")
awk -v l="$ce" 'BEGIN { exit !(l + 0 > 0.1) }' || fail "CE of the student is '$ce'"

run layers student.init_from_teacher_layers=0,2 train.max_steps=3 distill.loss=symmetric_kl distill.temperature=2
grep -q "^step 3/3 loss" "$tmp/layers.log" || fail "no third step"
test -s "$tmp/layers/model/model.safetensors" || fail "no student model/"
grep -q '"num_hidden_layers":	2' "$tmp/layers/model/config.json" || fail "the student does not have 2 layers"
run scratch model.hidden_size=32 model.intermediate_size=64 model.num_layers=1 train.max_steps=2 distill.loss=reverse_kl
grep -q "^step 2/2 loss" "$tmp/scratch.log" || fail "new student"
run embedding student.init_from_teacher_embedding=true model.hidden_size=48 model.num_heads=4 train.max_steps=2
grep -q "^model: new student layers over the teacher's embedding and norm" "$tmp/embedding.log" || fail "embedding student"
grep -q "^step 2/2 loss" "$tmp/embedding.log" || fail "embedding student did not train"
run lora student.init_from_teacher_layers=0 lora.enabled=true lora.r=2 lora.alpha=4 train.max_steps=2
grep -q "^step 2/2 loss" "$tmp/lora.log" || fail "LoRA student"
grep -q "^lora: r 2" "$tmp/lora.log" || fail "LoRA student has no adapters"
# A 283-row teacher and a 320-row student: the padding rows differ, the tokens do not.
run padded distill.teacher=tests/fixtures/models/qwen3 model.path=$q2 train.max_steps=1
grep -q "^step 1/1 loss" "$tmp/padded.log" || fail "padded vocabularies"

refused() { # name, expected text, overrides...
    name=$1 want=$2
    shift 2
    # shellcheck disable=SC2086
    out=$("$ctune" train recipes/distill_intent_zh.yaml $base train.max_steps=2 output_dir="$tmp/bad" "$@" 2>&1)
    rc=$?
    [ $rc -eq 1 ] || fail "$name: exit $rc: $out"
    echo "$out" | grep -q "$want" || fail "$name: '$out' lacks '$want'"
    [ "$(echo "$out" | grep -c '^ctune train:')" -eq 1 ] || fail "$name: not one line: $out"
    echo "$out" | grep -q "^step " && fail "$name: a step ran"
    [ ! -e "$tmp/bad" ] || fail "$name: left $tmp/bad"
    echo "ok $name: $out"
}
# The same size, two tokens swapped: ids 65 ('b') and 66 ('c') differ.
mkdir -p "$tmp/swapped" "$tmp/short"
cp $q2/* "$tmp/swapped/"
sed 's/"b": 65,/"b": 66,/; s/"c": 66,/"c": 65,/' $q2/tokenizer.json > "$tmp/swapped/tokenizer.json"
cmp -s $q2/tokenizer.json "$tmp/swapped/tokenizer.json" && fail "the swapped tokenizer is unchanged"
refused "swapped tokens" "its tokenizer differs from the student's at 2 of 283 ids (65, 66)" distill.teacher="$tmp/swapped"
sed 's/"<|im_end|>"/"<|im_stop|>"/g' $q2/tokenizer.json > "$tmp/renamed.json"
refused "another size" "its tokenizer has 283 tokens, the student's 1000" \
    tokenizer.path=tests/fixtures/tokenizer/trained model.hidden_size=32 model.num_layers=1
refused "renamed special token" "differs from the student's at 1 of 283 ids (282)" tokenizer.path="$tmp/renamed.json" \
    model.hidden_size=32 model.num_layers=1
cp $q2/* "$tmp/short/"
sed 's/"max_position_embeddings": 4096/"max_position_embeddings": 64/' $q2/config.json > "$tmp/short/config.json"
refused "teacher too short" "reads at most 64 positions, fewer than the data's 128" distill.teacher="$tmp/short"
refused "student too short" "data.max_seq_len (128) exceeds model.max_seq_len (64)" model.max_seq_len=64
refused "kd_ratio above 1" "distill.kd_ratio" distill.kd_ratio=1.5
refused "kd_ratio below 0" "distill.kd_ratio" distill.kd_ratio=-0.1
refused "T 0" "distill.temperature" distill.temperature=0
refused "T negative" "distill.temperature" distill.temperature=-1
refused "missing teacher" "distill.teacher=$tmp/nowhere does not exist" distill.teacher="$tmp/nowhere"
refused "missing layer" "student.init_from_teacher_layers: '7' is not a layer of the teacher (0 .. 2)" \
    student.init_from_teacher_layers=0,7
refused "layers and model.path" "student.init_from_teacher_layers and model.path both" \
    student.init_from_teacher_layers=0 model.path=$q2
refused "embedding of another width" "the student's model.embed_tokens.weight is \[320, 32\] f32, the teacher's \[320, 48\] f32" \
    student.init_from_teacher_embedding=true model.hidden_size=32
refused "int8 teacher's layers" "the teacher's model.layers.0.self_attn.q_proj.weight is missing, of another shape or int8" \
    distill.teacher_dtype=int8 student.init_from_teacher_layers=0
echo "cli_distill: all checks passed"
