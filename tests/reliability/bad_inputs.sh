#!/usr/bin/env bash
# The bad-input and fault table of docs/reliability.md, generated: every row is run here, and
# the message, exit status and what changed on disk are what ctune did, not what it should do.
#
#   tests/reliability/bad_inputs.sh CTUNE FAIL_IO_SO print        the table on standard output
#   tests/reliability/bad_inputs.sh CTUNE FAIL_IO_SO check DOC    fails when DOC's table differs
#   tests/reliability/bad_inputs.sh CTUNE FAIL_IO_SO write DOC    replaces DOC's table
# (regenerate: tests/reliability/bad_inputs.sh build/ctune build/libct_fail_io.so write docs/reliability.md)
#
# Each case runs in a workspace W holding a finished 2-step run (run/, checkpoint at step 2,
# model/ folder) and copies to corrupt; commands run from W, so messages show W-relative paths.
# $TINY in the command column stands for the tiny model's settings (the array `tiny` below).
# "Kept on disk" compares a checksum of every file of W before and after the command.
# Every case must exit non-zero: a bad input that ctune accepted fails the check too.
set -uo pipefail
ctune=$(realpath "${1:?usage: bad_inputs.sh CTUNE FAIL_IO_SO print|check|write [DOC]}")
shim=$(realpath "${2:?fail_io.so}")
mode=${3:?print, check or write}
doc=${4:-}
src=$(pwd)
W=$(mktemp -d "${TMPDIR:-/tmp}/ctune-bad-inputs.XXXXXX")
trap 'rm -rf "$W"' EXIT
cd "$W" || exit 1
ln -s "$src/datasets" datasets
mkdir recipes && cp "$src/recipes/pretrain_tiny_zh.yaml" recipes/
tiny=(model.hidden_size=32 model.intermediate_size=48 model.num_layers=1 model.num_heads=2 model.num_kv_heads=1
      tokenizer.vocab_size=300 data.val= train.eval_every=0 checkpoint.every=2 threads=1)
"$ctune" train recipes/pretrain_tiny_zh.yaml output_dir=run train.max_steps=2 "${tiny[@]}" >/dev/null 2>setup.err ||
    { cat setup.err; exit 1; }
rm setup.err
ckpt=run/checkpoints/step-00000002.h5

snapshot() { find . -path ./datasets -prune -o -type f -print | LC_ALL=C sort | xargs -r sha1sum; }
# Paths and numbers that change from run to run.
normalize() {
    sed -e "s|$W|W|g" -e 's/\.h5\.tmp-[0-9]\+/.h5.tmp-PID/g' -e 's/\.tmp\.[A-Za-z0-9]\{6\}/.tmp.XXXXXX/g' \
        -e 's/\.tmp-[A-Za-z0-9]\{6\}/.tmp-XXXXXX/g' -e 's/|/\\|/g' \
        -e 's/stored_eof = [0-9]\+/stored_eof = N/g'
}
# (stored_eof: the size libhdf5 read from a truncated checkpoint's superblock, which moves with
# whatever a checkpoint holds; the table is about the message, not the file's size.)
# What differs between two snapshots, as "created a, b; changed c; removed d" or "nothing changed".
changes() {
    local created changed removed out=""
    created=$(join -v2 <(awk '{print $2}' "$1") <(awk '{print $2}' "$2") | sed 's|^\./||' | paste -sd, - | sed 's/,/, /g')
    removed=$(join -v1 <(awk '{print $2}' "$1") <(awk '{print $2}' "$2") | sed 's|^\./||' | paste -sd, - | sed 's/,/, /g')
    changed=$(join <(awk '{print $2, $1}' "$1") <(awk '{print $2, $1}' "$2") | awk '$2 != $3 {print $1}' |
              sed 's|^\./||' | paste -sd, - | sed 's/,/, /g')
    [ -n "$created" ] && out="created $created"
    [ -n "$changed" ] && out="${out:+$out; }changed $changed"
    [ -n "$removed" ] && out="${out:+$out; }removed $removed"
    echo "${out:-nothing changed}" | normalize
}

rows=()
bad=0
# case "what is wrong" "shell setup" ctune-arguments...
case_() {
    local what=$1 setup=$2
    shift 2
    [ -n "$setup" ] && { bash -c "$setup" || { echo "setup of '$what' failed" >&2; bad=1; return; }; }
    snapshot >"$W/../before.$$"
    local status
    env ${CASE_ENV:-} "$ctune" "$@" >out.txt 2>err.txt
    status=$?
    local message
    message=$(grep -v '^\(step \|checkpoint: \|model: \|resumed \|gguf: writing\)' err.txt | grep . | tail -n 1 | normalize)
    rm -f out.txt err.txt
    snapshot >"$W/../after.$$"
    local kept
    kept=$(changes "$W/../before.$$" "$W/../after.$$")
    rm -f "$W/../before.$$" "$W/../after.$$"
    [ $status -ne 0 ] || { echo "'$what' exited 0" >&2; bad=1; }
    local command
    command=$(printf '%s ' ctune "$@" | sed 's/ $//' | sed "s|${tiny[*]}|\$TINY|" | normalize)
    rows+=("| $what | \`$command\` | $message | $status | $kept |")
}

# Damages a copy: truncate FILE to N bytes, or flip the byte at OFFSET.
truncate_to() { echo "cp $1 $2 && truncate -s $3 $2"; }
flip_at() { echo "cp $1 $2 && printf '\\\\377' | dd of=$2 bs=1 seek=$3 conv=notrunc 2>/dev/null"; }

# ---- recipes and the command line ----
case_ "unknown recipe key on the command line" "" train recipes/pretrain_tiny_zh.yaml optimizer.lrr=1e-3
case_ "value of the wrong type" "" train recipes/pretrain_tiny_zh.yaml train.max_steps=ten
case_ "value out of its range" "" train recipes/pretrain_tiny_zh.yaml optimizer.lr=-1
case_ "override without '='" "" train recipes/pretrain_tiny_zh.yaml max_steps
case_ "missing recipe file" "" train recipes/nothing.yaml
case_ "YAML syntax error" "printf 'train:\n  max_steps: [1,\n' > broken.yaml" train broken.yaml
case_ "unknown key in a recipe file" "printf 'train:\n  max_stepz: 3\n' > typo.yaml" train typo.yaml
case_ "heads that do not divide the width" "" train recipes/pretrain_tiny_zh.yaml model.hidden_size=30 model.num_heads=4
case_ "a fresh run into a folder holding a run" "" train recipes/pretrain_tiny_zh.yaml output_dir=run "${tiny[@]}"
# ---- resuming ----
case_ "resume from a missing checkpoint" "" train recipes/pretrain_tiny_zh.yaml output_dir=run resume=run/checkpoints/step-00000009.h5 "${tiny[@]}"
case_ "resume with another thread count" "" train recipes/pretrain_tiny_zh.yaml output_dir=run resume=$ckpt train.max_steps=4 "${tiny[@]}" threads=2
CASE_ENV="CT_GEMM=openblas" \
    case_ "resume with another matmul library (CT_GEMM=openblas)" "" train recipes/pretrain_tiny_zh.yaml output_dir=run resume=$ckpt train.max_steps=4 "${tiny[@]}"
case_ "resume with another model shape" "" train recipes/pretrain_tiny_zh.yaml output_dir=run resume=$ckpt train.max_steps=4 "${tiny[@]}" model.intermediate_size=64
case_ "resume at or past train.max_steps" "" train recipes/pretrain_tiny_zh.yaml output_dir=run resume=$ckpt train.max_steps=2 "${tiny[@]}"
case_ "truncated checkpoint" "$(truncate_to $ckpt bad/truncated.h5 40000 | sed 's|^|mkdir -p bad \&\& |')" train recipes/pretrain_tiny_zh.yaml output_dir=run resume=bad/truncated.h5 train.max_steps=4 "${tiny[@]}"
case_ "checkpoint with one flipped byte in a tensor" "$(flip_at $ckpt bad/flipped.h5 60000 | sed 's|^|mkdir -p bad \&\& |')" train recipes/pretrain_tiny_zh.yaml output_dir=run resume=bad/flipped.h5 train.max_steps=4 "${tiny[@]}"
case_ "checkpoint that is not HDF5" "mkdir -p bad && head -c 4096 /dev/zero > bad/zeros.h5" eval --model bad/zeros.h5 --data datasets/data/intent_test.jsonl
# ---- training data ----
case_ "missing data file" "" train recipes/pretrain_tiny_zh.yaml output_dir=new data.train=nothing.txt "${tiny[@]}"
case_ "malformed JSONL line" "cp $src/tests/fixtures/data/bad_line.jsonl bad_line.jsonl" eval --model run --labels datasets/data/labels.json --data bad_line.jsonl
case_ "invalid UTF-8 in a JSONL line" "printf '{\"text\": \"\\377abc\", \"label\": \"refund\"}\n' > bad_utf8.jsonl" eval --model run --labels datasets/data/labels.json --data bad_utf8.jsonl
case_ "label not in the label set" "printf '{\"text\": \"hi\", \"label\": \"no_such_label\"}\n' > bad_label.jsonl" eval --model run --labels datasets/data/labels.json --data bad_label.jsonl
case_ "chat line without an assistant turn" "printf '{\"messages\": [{\"role\": \"user\", \"content\": \"hi\"}]}\n' > no_assistant.jsonl" eval --model run --data no_assistant.jsonl
case_ "empty data file" ": > empty.jsonl" eval --model run --data empty.jsonl
# ---- model folders ----
case_ "missing model folder" "" eval --model nowhere --data datasets/data/intent_test.jsonl
case_ "config.json that is not JSON" "cp -r run/model m1 && echo '{\"hidden_size\": 32,' > m1/config.json" eval --model m1 --data datasets/data/intent_test.jsonl
case_ "config.json without hidden_size" "cp -r run/model m2 && sed -i '/\"hidden_size\"/d' m2/config.json" eval --model m2 --data datasets/data/intent_test.jsonl
case_ "truncated model.safetensors" "cp -r run/model m3 && truncate -s 20000 m3/model.safetensors" eval --model m3 --data datasets/data/intent_test.jsonl
case_ "safetensors header length past the file" "cp -r run/model m4 && printf '\\377\\377\\377\\377' | dd of=m4/model.safetensors bs=1 seek=0 conv=notrunc 2>/dev/null" eval --model m4 --data datasets/data/intent_test.jsonl
case_ "weights of another shape than config.json" "cp -r run/model m5 && sed -i 's/\"intermediate_size\":[[:space:]]*48/\"intermediate_size\": 64/' m5/config.json" eval --model m5 --data datasets/data/intent_test.jsonl
case_ "tokenizer.json that is not JSON" "cp -r run/model m6 && echo '{' > m6/tokenizer.json" eval --model m6 --data datasets/data/intent_test.jsonl
case_ "tokenizer of an unsupported model type" "cp -r run/model m7 && sed -i 's/\"type\":[[:space:]]*\"BPE\"/\"type\": \"Unigram\"/' m7/tokenizer.json" eval --model m7 --data datasets/data/intent_test.jsonl
# ---- GGUF and adapters ----
case_ "truncated GGUF file" "mkdir -p g && $ctune export --model run --format gguf --out g/m.gguf >/dev/null 2>&1 && truncate -s 3000 g/m.gguf" eval --model g/m.gguf --data datasets/data/intent_test.jsonl
case_ "file with another magic than GGUF" "mkdir -p g && printf 'GGUX\\003\\000\\000\\000' > g/magic.gguf && head -c 100 /dev/zero >> g/magic.gguf" eval --model g/magic.gguf --data datasets/data/intent_test.jsonl
case_ "adapter_config.json that is not JSON" "mkdir -p a1 && echo '{\"r\": 8,' > a1/adapter_config.json" export --model run --adapter a1 --format hf --out out1
case_ "adapter folder without weights" "mkdir -p a2 && cp $src/tests/fixtures/lora/llama_qv/adapter_config.json a2/" export --model run --adapter a2 --format hf --out out2
# ---- exports ----
case_ "export into a folder that does not exist" "" export --model run --format gguf --out nowhere/m.gguf
case_ "unknown export format" "" export --model run --format onnx --out out3
# ---- faults ----
CASE_ENV="LD_PRELOAD=$shim CT_FAIL_IO_MATCH=/checkpoints CT_FAIL_IO_NTH=3 CT_FAIL_IO_ERRNO=28" \
    case_ "disk full while writing a checkpoint (fail_io.so, 3rd write)" "" train recipes/pretrain_tiny_zh.yaml output_dir=run resume=$ckpt train.max_steps=4 "${tiny[@]}"
CASE_ENV="LD_PRELOAD=$shim CT_FAIL_IO_MATCH=/checkpoints CT_FAIL_IO_NTH=47 CT_FAIL_IO_ERRNO=5" \
    case_ "I/O error on the fsync of a new checkpoint (call 47)" "" train recipes/pretrain_tiny_zh.yaml output_dir=run resume=$ckpt train.max_steps=4 "${tiny[@]}"
CASE_ENV="LD_PRELOAD=$shim CT_FAIL_IO_MATCH=out4 CT_FAIL_IO_NTH=2 CT_FAIL_IO_ERRNO=28" \
    case_ "disk full during an HF export (2nd write)" "" export --model run --format hf --out out4
CASE_ENV="LD_PRELOAD=$shim CT_FAIL_IO_MATCH=e.gguf CT_FAIL_IO_NTH=4 CT_FAIL_IO_ERRNO=28" \
    case_ "disk full during a GGUF export (4th write)" "" export --model run --format gguf --out e.gguf

table=$(printf '%s\n' "| input or fault | command (run in W) | message (last line of stderr) | exit | kept on disk |" \
    "| --- | --- | --- | --- | --- |" "${rows[@]}")
cd "$src" || exit 1
[ "$mode" = print ] && echo "$table"
[ $bad -eq 0 ] || exit 1
begin='<!-- bad-inputs:begin (generated by tests/reliability/bad_inputs.sh; do not edit) -->'
end='<!-- bad-inputs:end -->'
case $mode in
print) ;;
check|write)
    [ -f "$doc" ] || { echo "no $doc"; exit 1; }
    new=$(awk -v b="$begin" -v e="$end" -v t="$table" '
        $0 == b { print; print t; skip = 1; next }
        $0 == e { skip = 0 }
        !skip { print }' "$doc")
    grep -qxF "$begin" "$doc" || { echo "$doc has no line $begin"; exit 1; }
    if [ "$mode" = write ]; then
        printf '%s\n' "$new" >"$doc"
        echo "${#rows[@]} rows written to $doc"
    elif ! diff <(cat "$doc") <(printf '%s\n' "$new"); then
        echo "$doc's table differs from what ctune does now (above: < the document, > ctune);"
        echo "regenerate it: tests/reliability/bad_inputs.sh build/ctune build/libct_fail_io.so write $doc"
        exit 1
    else
        echo "${#rows[@]} rows of $doc match what ctune does"
    fi ;;
esac
