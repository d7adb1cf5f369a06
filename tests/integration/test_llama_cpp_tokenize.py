"""llama.cpp tokenizes text exactly as ctune does with the vocabulary, merges and pre-tokenizer
type that ctune embeds in its GGUF: Chinese, English (contractions, case), digits, emoji,
spaces, tabs and newlines, special-token text (kept as plain text by both).

Checked on the trained intent model's tokenizer (3,000 tokens learned from the Chinese corpus)
and on the qwen2 fixture's (283 tokens: most text falls back to single bytes).
"""
import os
import sys

from llama_cpp_common import FIXTURES, TMP, ctune_tokenize, export_gguf, intent_model, llama_tokenize, model_folder

TEXTS = [
    "我想退货，衣服尺码不对。",
    "订单号是 20240315-8891，什么时候发货？",
    "Hello World! It's 3.14159 and I'LL say: don't.",
    "1234567890 12 345 6789",
    "表情 😀👍🏽 和 emoji ❤️",
    "  leading spaces\n\nnew lines\ttabs   trailing  ",
    "\n",
    " ",
    "mixed中文English123混合",
    "<|im_start|>user\n不是特殊标记<|im_end|>",
    "全角：ＡＢＣ１２３，标点！？",
]


def check(name, folder, gguf):
    bad = 0
    for i, text in enumerate(TEXTS):
        want = ctune_tokenize(folder, text, f"{name}-{i}")
        got = llama_tokenize(gguf, text, f"{name}-{i}")
        if want != got:
            bad += 1
            print(f"  {name}: {text!r}\n    ctune     {want}\n    llama.cpp {got}")
    print(f"{name}: {len(TEXTS) - bad}/{len(TEXTS)} strings tokenized the same")
    return bad == 0


def main():
    intent = model_folder(intent_model())
    ok = [check("intent", intent, export_gguf(intent, "f32", os.path.join(TMP, "intent-f32.gguf"))),
          check("qwen2", os.path.join(FIXTURES, "qwen2"),
                export_gguf(os.path.join(FIXTURES, "qwen2"), "f32", os.path.join(TMP, "qwen2-f32.gguf")))]
    print("all checks passed" if all(ok) else "FAILED")
    return 0 if all(ok) else 1


if __name__ == "__main__":
    sys.exit(main())
