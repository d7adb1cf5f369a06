#!/bin/sh
# DoRA and frozen-base dtypes from the command line: a few steps of recipes/lora_intent_zh.yaml
# with lora.use_dora on the qwen2 fixture model; its adapter/ says use_dora and holds peft's
# lora_magnitude_vector keys; base + --adapter evaluates like the merged model/ and like
# ctune export --format hf; --for vllm is refused (vLLM serves no DoRA), leaving nothing.
# model.base_dtype=int8: a DoRA run on the INT8 base whose checkpoint (the base quantized again,
# its hash checked) evaluates like its merged model/ (the dequantized base + adapter); and the
# refusals, one line each, exit 1, no run folder: an unknown base_dtype (naming the known ones),
# an INT8 base under full fine-tuning, train.trainable naming an INT8 projection.
#   sh tests/cli_dora.sh path/to/ctune
set -u
ctune=$1
tmp=$(mktemp -d /tmp/ctune-cli-dora.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
system=只回答意图名称。  # a system prompt (the recipe has none), so the adapter path is checked with one
base="model.path=tests/fixtures/models/qwen2 tokenizer.path=tests/fixtures/models/qwen2 data.max_examples=40 data.system_prompt=$system \
data.val= train.max_steps=4 train.log_every=2 checkpoint.every=2 lora.r=4 lora.alpha=8 threads=2"

# shellcheck disable=SC2086
"$ctune" train recipes/lora_intent_zh.yaml $base lora.use_dora=true output_dir="$tmp/run" > "$tmp/log" 2>&1 ||
    { cat "$tmp/log"; fail "DoRA run"; }
grep -q "^lora: r 4, alpha 8 (DoRA)" "$tmp/log" || fail "no DoRA in the lora line: $(grep '^lora' "$tmp/log")"
grep -q '"use_dora":[[:space:]]*true' "$tmp/run/adapter/adapter_config.json" || fail "adapter_config.json lacks use_dora: true"
grep -aq 'q_proj.lora_magnitude_vector"' "$tmp/run/adapter/adapter_model.safetensors" || fail "no magnitude key"
ev="--data datasets/data/intent_val.jsonl --max-examples 12 --max-seq-len 128"
# shellcheck disable=SC2086
a=$("$ctune" eval --model tests/fixtures/models/qwen2 --adapter "$tmp/run/adapter" --labels datasets/data/labels.json \
    --system "$system" $ev 2>/dev/null | grep '^loss')
# shellcheck disable=SC2086
b=$("$ctune" eval --model "$tmp/run/model" $ev 2>/dev/null | grep '^loss')
[ -n "$a" ] && [ "$a" = "$b" ] || fail "base + DoRA --adapter ($a) and the merged model ($b) evaluate differently"
"$ctune" export --model "$tmp/run" --format hf --out "$tmp/hf" > /dev/null 2>&1 || fail "export hf"
cmp -s "$tmp/hf/model.safetensors" "$tmp/run/model/model.safetensors" || fail "export hf differs from the run's model/"
out=$("$ctune" export --model "$tmp/run" --format peft --for vllm --out "$tmp/vllm" 2>&1)
[ $? -eq 1 ] && echo "$out" | grep -q "DoRA (use_dora), which vLLM's LoRA loader does not serve" && [ ! -e "$tmp/vllm" ] ||
    fail "export --for vllm of a DoRA adapter: $out"
echo "ok --for vllm: $out"
# shellcheck disable=SC2086
"$ctune" train recipes/lora_intent_zh.yaml $base lora.use_dora=true model.base_dtype=int8 output_dir="$tmp/q8" \
    > "$tmp/q8.log" 2>&1 || { cat "$tmp/q8.log"; fail "DoRA run on an INT8 base"; }
# shellcheck disable=SC2086
a=$("$ctune" eval --model "$tmp/q8/checkpoints/step-00000004.h5" $ev 2>/dev/null | grep '^loss')
# shellcheck disable=SC2086
b=$("$ctune" eval --model "$tmp/q8/model" $ev 2>/dev/null | grep '^loss')
[ -n "$a" ] && [ "$a" = "$b" ] || fail "INT8 base: the checkpoint ($a) and the merged model ($b) evaluate differently"
echo "ok int8 base: checkpoint and merged model/ both $a"

refused() { # name, recipe, expected text, overrides...
    name=$1 recipe=$2 want=$3
    shift 3
    # shellcheck disable=SC2086
    out=$("$ctune" train "$recipe" $base output_dir="$tmp/bad" "$@" 2>&1)
    rc=$?
    [ $rc -eq 1 ] || fail "$name: exit $rc: $out"
    echo "$out" | grep -q "$want" || fail "$name: '$out' lacks '$want'"
    [ "$(echo "$out" | grep -c '^ctune train:')" -eq 1 ] || fail "$name: not one line: $out"
    [ ! -e "$tmp/bad" ] || fail "$name: left $tmp/bad"
    echo "ok $name: $out"
}
refused "unknown base_dtype" recipes/lora_intent_zh.yaml "model.base_dtype: 'int4' is not one of auto, f32, bf16, int8" \
    model.base_dtype=int4
refused "int8 full fine-tuning" recipes/full_finetune_intent_zh.yaml \
    "model.base_dtype=int8: model.layers.0.self_attn.q_proj.weight trains (full fine-tuning" model.base_dtype=int8
refused "int8 trainable projection" recipes/full_finetune_intent_zh.yaml \
    "model.layers.0.mlp.up_proj.weight trains (train.trainable names it)" model.base_dtype=int8 \
    "train.trainable=*norm*,*up_proj.weight"
echo "cli_dora: all checks passed"
