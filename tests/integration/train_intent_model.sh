#!/usr/bin/env bash
# The trained intent model that the llama.cpp serving tests export and serve: the main job's two
# recipes, shortened (recipes/pretrain_tiny_zh.yaml then recipes/full_finetune_intent_zh.yaml,
# STEPS below), trained once into a cache outside the clone and reused while the recipes, the
# data and this script stay the same. Prints the fine-tuning run folder.
#
#   bash tests/integration/train_intent_model.sh      # needs the ctune binary (CTUNE or build/ctune)
#
# The cache key is a hash of the recipes, their data files and this script; a change to ctune's
# C code does not retrain (the tests export whatever model this is: they compare runtimes on the
# same weights, they do not grade the training).
# Environment: CTUNE, CT_CACHE_DIR (default ~/.cache/ctune-ci).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
cd "$root"
ctune="${CTUNE:-$root/build/ctune}"
pretrain_steps=400
finetune_steps=400
inputs=(recipes/pretrain_tiny_zh.yaml recipes/full_finetune_intent_zh.yaml datasets/data/pretrain_train.txt
        datasets/data/pretrain_val.txt datasets/data/intent_train.jsonl datasets/data/intent_val.jsonl
        datasets/data/sft_train.jsonl datasets/data/sft_val.jsonl
        datasets/data/labels.json tests/integration/train_intent_model.sh)
key="$(cat "${inputs[@]}" | sha256sum | cut -c1-16)"
dir="${CT_CACHE_DIR:-$HOME/.cache/ctune-ci}/intent-model-$key"
run="$dir/full_finetune_intent_zh"
# Trained in place (the run's recipe names the pretraining folder); .done marks a finished one.
if [ ! -f "$dir/.done" ]; then
    echo "train_intent_model: training the intent model into $dir (cold: a few minutes)" >&2
    start=$(date +%s)
    rm -rf "$dir"
    mkdir -p "$dir"
    "$ctune" train recipes/pretrain_tiny_zh.yaml output_dir="$dir/pretrain_tiny_zh" overwrite=true \
        train.max_steps=$pretrain_steps train.eval_every=0 checkpoint.every=0 > "$dir/pretrain.log" 2>&1 \
        || { tail -5 "$dir/pretrain.log" >&2; exit 1; }
    # A system prompt, which the recipe no longer has: the served GGUF's embedded chat template
    # must then render it for a client that sends none (test_llama_server.py checks that).
    "$ctune" train recipes/full_finetune_intent_zh.yaml model.path="$dir/pretrain_tiny_zh" \
        tokenizer.path="$dir/pretrain_tiny_zh/tokenizer" output_dir="$run" overwrite=true \
        "data.system_prompt=你是电商平台的客服助手。请判断用户消息的意图，只回答意图名称。" \
        train.max_steps=$finetune_steps train.eval_every=0 checkpoint.every=0 > "$dir/finetune.log" 2>&1 \
        || { tail -5 "$dir/finetune.log" >&2; exit 1; }
    touch "$dir/.done"
    echo "train_intent_model: trained in $(( $(date +%s) - start )) s" >&2
fi
echo "$run"
