#!/bin/sh
# ctune train with LoRA, as a user runs it: a few steps of recipes/lora_intent_zh.yaml on the
# qwen2 fixture model, the files it writes (adapter/ as PEFT, merged model/), ctune export of both
# formats, eval of base + --adapter equal to eval of the merged folder, and the bad inputs: a
# target module the model lacks, r 0, alpha 0, train.trainable beside lora, an adapter of another
# model, an adapter_config.json field ctune does not implement. Each refusal is one line, exit 1,
# and leaves no run folder.
#   sh tests/cli_lora.sh path/to/ctune
set -u
ctune=$1
tmp=$(mktemp -d /tmp/ctune-cli-lora.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
system=只回答意图名称。  # a system prompt (the recipe has none), so the adapter path is checked with one
base="model.path=tests/fixtures/models/qwen2 tokenizer.path=tests/fixtures/models/qwen2 data.max_examples=40 data.system_prompt=$system \
data.val= train.max_steps=4 train.log_every=2 checkpoint.every=2 lora.r=4 lora.alpha=8 threads=2"

# shellcheck disable=SC2086
"$ctune" train recipes/lora_intent_zh.yaml $base output_dir="$tmp/run" > "$tmp/log" 2>&1 || { cat "$tmp/log"; fail "LoRA run"; }
grep -q "^lora: r 4, alpha 8" "$tmp/log" || fail "no lora line in the log"
grep -q "^parameters: .* trainable of " "$tmp/log" || fail "no parameters line"
test -s "$tmp/run/adapter/adapter_config.json" && test -s "$tmp/run/adapter/adapter_model.safetensors" || fail "no adapter/"
test -s "$tmp/run/model/model.safetensors" || fail "no merged model/"

"$ctune" export --model "$tmp/run" --format peft --out "$tmp/peft" > /dev/null 2>&1 || fail "export peft"
cmp -s "$tmp/peft/adapter_model.safetensors" "$tmp/run/adapter/adapter_model.safetensors" || fail "export peft differs from adapter/"
"$ctune" export --model "$tmp/run" --format hf --out "$tmp/hf" > /dev/null 2>&1 || fail "export hf"
test -s "$tmp/hf/model.safetensors" || fail "no hf export"
ev="--data datasets/data/intent_val.jsonl --max-examples 12 --max-seq-len 128"
# shellcheck disable=SC2086
a=$("$ctune" eval --model tests/fixtures/models/qwen2 --adapter "$tmp/run/adapter" --labels datasets/data/labels.json \
    --system "$system" $ev 2>/dev/null | grep '^loss')
# shellcheck disable=SC2086
b=$("$ctune" eval --model "$tmp/run/model" $ev 2>/dev/null | grep '^loss')
[ -n "$a" ] && [ "$a" = "$b" ] || fail "base + --adapter ($a) and the merged model ($b) evaluate differently"

# vLLM loads A/B pairs only: an adapter with modules_to_save is refused for it, naming the key.
# shellcheck disable=SC2086
"$ctune" train recipes/lora_intent_zh.yaml $base train.max_steps=2 lora.modules_to_save=lm_head output_dir="$tmp/saved" \
    > "$tmp/saved.log" 2>&1 || { cat "$tmp/saved.log"; fail "modules_to_save run"; }
out=$("$ctune" export --model "$tmp/saved" --format peft --for vllm --out "$tmp/vllm" 2>&1)
[ $? -eq 1 ] && echo "$out" | grep -q "modules_to_save=lm_head fully, which vLLM does not load" && [ ! -e "$tmp/vllm" ] ||
    fail "export --for vllm of a modules_to_save adapter: $out"
"$ctune" export --model "$tmp/saved" --format peft --out "$tmp/plain_peft" > /dev/null 2>&1 || fail "export of a modules_to_save adapter"
echo "ok --for vllm: $out"

refused() { # name, expected text, overrides...
    name=$1 want=$2
    shift 2
    # shellcheck disable=SC2086
    out=$("$ctune" train recipes/lora_intent_zh.yaml $base output_dir="$tmp/bad" "$@" 2>&1)
    rc=$?
    [ $rc -eq 1 ] || fail "$name: exit $rc: $out"
    echo "$out" | grep -q "$want" || fail "$name: '$out' lacks '$want'"
    [ "$(echo "$out" | grep -c '^ctune train:')" -eq 1 ] || fail "$name: not one line: $out"
    [ ! -e "$tmp/bad" ] || fail "$name: left $tmp/bad"
    echo "ok $name: $out"
}
refused "unknown target" "lora.target_modules: 'qq_proj' is not a module of this model; the modules are q_proj" lora.target_modules=q_proj,qq_proj
refused "r 0" "lora.r" lora.r=0
refused "alpha 0" "lora.alpha" lora.alpha=0
refused "trainable beside lora" "with lora.enabled the adapters and lora.modules_to_save train" train.trainable=lm_head.weight
refused "another model's adapter" "has shape \[4, 64\]; the model expects \[4, 48\]" model.adapter=tests/fixtures/lora/llama_qv
mkdir -p "$tmp/biased"
cp tests/fixtures/lora/qwen2_modules_to_save/* "$tmp/biased/"
sed 's/"bias": "none"/"bias": "all"/' tests/fixtures/lora/qwen2_modules_to_save/adapter_config.json > "$tmp/biased/adapter_config.json"
refused "bias all" '"bias"' model.adapter="$tmp/biased"
echo "cli_lora: all checks passed"
