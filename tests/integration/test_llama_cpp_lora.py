"""A LoRA adapter exported by `ctune export --format gguf-lora` and applied by llama.cpp at load
time (what `llama-server --lora FILE` does) gives the logits of the merged model: ctune's logits
of base + adapter, within 1e-3 max abs, at every position.

The adapters are made by peft on the llama and qwen2 fixtures (every linear layer of the
blocks, random lora_B so they move the logits; llama's q/k rows need the RoPE permutation in
lora_B). The base goes to llama.cpp as ctune's f32 GGUF.
"""
import os
import sys

import numpy as np
import torch
import transformers
from peft import LoraConfig, get_peft_model

from llama_cpp_common import FIXTURES, TMP, ctune_logits, export_gguf, export_gguf_lora, llama_logits

TOLERANCE = 1e-3
TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


def make_adapter(folder, out):
    torch.manual_seed(3)
    base = transformers.AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32)
    model = get_peft_model(base, LoraConfig(r=4, lora_alpha=8, target_modules=TARGETS, task_type="CAUSAL_LM"))
    for name, p in model.named_parameters():
        if "lora_B" in name:
            torch.nn.init.normal_(p, std=0.05)
    model.save_pretrained(out)
    return out


def check(arch):
    folder = os.path.join(FIXTURES, arch)
    adapter = make_adapter(folder, os.path.join(TMP, f"{arch}-adapter"))
    base = export_gguf(folder, "f32", os.path.join(TMP, f"{arch}-f32.gguf"))
    lora = export_gguf_lora(folder, adapter, os.path.join(TMP, f"{arch}-lora.gguf"))
    rng = np.random.default_rng(11)
    seqs = [rng.integers(0, 283, size=n).tolist() for n in (5, 23, 48)]
    merged = ctune_logits(folder, seqs, f"{arch}-merged", adapter=adapter)
    plain = ctune_logits(folder, seqs, f"{arch}-plain")
    got = llama_logits(base, seqs, f"{arch}-lora", lora=lora)
    worst = max(float(np.abs(w - g).max()) for w, g in zip(merged, got))
    moved = max(float(np.abs(w - p).max()) for w, p in zip(merged, plain))
    ok = worst <= TOLERANCE and moved > 100 * TOLERANCE
    print(f"{arch:6s} base f32 + --lora in llama.cpp vs ctune's merged model: max |diff| {worst:.2e} "
          f"(the adapter moves the logits by up to {moved:.3f}) {'ok' if ok else 'FAILED'}")
    return ok


def main():
    ok = [check(arch) for arch in ("llama", "qwen2")]
    print("all checks passed" if all(ok) else "FAILED")
    return 0 if all(ok) else 1


if __name__ == "__main__":
    sys.exit(main())
