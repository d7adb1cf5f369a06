"""llama.cpp loads ctune's f32 GGUF of the llama, qwen2 and qwen3 fixture models and computes
the same next-token logits as ctune at every position of several prompts (max abs difference
<= 1e-3).

The fixtures (tests/fixtures/models/) are tiny random models with odd sizes (hidden 48/64,
intermediate 80/96/112, vocabularies of 283-320 rows over a 283-token tokenizer), grouped-query
attention, qwen2's q/k/v biases, qwen3's q/k norms, llama 3 RoPE scaling on the llama one and an
untied lm_head there. The prompts are real text through ctune's tokenizer plus random ids over
the whole tokenizer; llama.cpp's logits come from tests/integration/llama_probe.cpp (f32 K/V
cache, no flash attention), ctune's from `ctune logits` on the Hugging Face folder itself.
"""
import os
import sys

import numpy as np

from llama_cpp_common import FIXTURES, TMP, ctune_logits, ctune_tokenize, export_gguf, llama_logits

TOLERANCE = 1e-3
TEXTS = ["退货申请怎么办理？", "Hello world, it's 2024!", "我想查一下订单 12345 的物流\n谢谢"]


def check(arch):
    folder = os.path.join(FIXTURES, arch)
    gguf = export_gguf(folder, "f32", os.path.join(TMP, f"{arch}-f32.gguf"))
    rng = np.random.default_rng(7)
    seqs = [ctune_tokenize(folder, t, f"{arch}-text{i}") for i, t in enumerate(TEXTS)]
    seqs += [rng.integers(0, 283, size=n).tolist() for n in (1, 17, 64)]
    want = ctune_logits(folder, seqs, f"{arch}-logits")
    got = llama_logits(gguf, seqs, f"{arch}-logits")
    worst, scale = 0.0, 0.0
    for w, g in zip(want, got):
        if w.shape != g.shape:
            print(f"{arch}: llama.cpp gives logits of shape {g.shape}, ctune {w.shape}")
            return False
        worst = max(worst, float(np.abs(w - g).max()))
        scale = max(scale, float(np.abs(w).max()))
    positions = sum(len(s) for s in seqs)
    ok = worst <= TOLERANCE
    print(f"{arch:6s} f32: {len(seqs)} prompts, {positions} positions, vocab {want[0].shape[1]}: "
          f"max |llama.cpp - ctune| = {worst:.2e} (logits up to {scale:.2f}) {'ok' if ok else 'FAILED'}")
    return ok


def main():
    ok = [check(arch) for arch in ("llama", "qwen2", "qwen3")]
    print("all checks passed" if all(ok) else "FAILED")
    return 0 if all(ok) else 1


if __name__ == "__main__":
    sys.exit(main())
