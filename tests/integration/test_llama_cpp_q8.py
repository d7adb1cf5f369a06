"""llama.cpp on ctune's Q8_0 GGUF of the trained intent model agrees with ctune's f32 model:
top-1 agreement >= 99% and mean KL(f32 || Q8_0) <= 1e-3 over every position of the test
split's conversations (system prompt from the chat template, the user's message, the
assistant's label), as ctune trains on them.
"""
import json
import os
import sys

import numpy as np

from llama_cpp_common import (TMP, ctune, ctune_logits, export_gguf, intent_model, labels, llama_logits, log_softmax,
                              model_folder, test_split)

PROMPTS = 80
MIN_TOP1, MAX_KL = 0.99, 1e-3


def conversation_ids(folder, row, names, i):
    path = os.path.join(TMP, f"conv{i}.json")
    with open(path, "w", encoding="utf-8") as f:
        json.dump([{"role": "user", "content": row["text"]},
                   {"role": "assistant", "content": names[row["label"]]}], f, ensure_ascii=False)
    return [int(x) for x in ctune("tokenize", "--tokenizer", folder, "--chat", "--file", path).split()]


def main():
    folder = model_folder(intent_model())
    names = labels(folder)
    rows = test_split()[::max(1, len(test_split()) // PROMPTS)][:PROMPTS]
    seqs = [conversation_ids(folder, r, names, i) for i, r in enumerate(rows)]
    gguf = export_gguf(folder, "q8_0", os.path.join(TMP, "intent-q8_0.gguf"))
    want = np.concatenate(ctune_logits(folder, seqs, "intent-f32"))
    got = np.concatenate(llama_logits(gguf, seqs, "intent-q8"))
    top1 = float((want.argmax(-1) == got.argmax(-1)).mean())
    lp, lq = log_softmax(want), log_softmax(got)
    kl = float((np.exp(lp) * (lp - lq)).sum(-1).mean())
    size = os.path.getsize(gguf)
    ok = top1 >= MIN_TOP1 and kl <= MAX_KL
    print(f"intent model, Q8_0 in llama.cpp vs f32 in ctune: {len(seqs)} conversations, {want.shape[0]} positions: "
          f"top-1 agreement {100 * top1:.2f}% (need >= {100 * MIN_TOP1:.0f}%), mean KL {kl:.2e} (need <= {MAX_KL:g}); "
          f"max |logit diff| {float(np.abs(want - got).max()):.3f}; file {size / 1e6:.2f} MB")
    print("all checks passed" if ok else "FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
