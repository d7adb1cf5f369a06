"""Writes tests/fixtures/generate/: what transformers computes for generation and scoring on the
tiny model fixtures of tests/fixtures/models/ (made by make_model_fixtures.py), as an independent
check of models/generate.c and models/score.c.

For each model, <name>.json holds:
  greedy     a few prompts (token ids of different lengths) and the ids transformers' greedy
             generate() produces after each, with the rows beyond the tokenizer's size suppressed
             (SuppressTokensLogitsProcessor: ctune never produces an id the tokenizer lacks) and
             generation ending at the config's eos id, which is then the last id. min_margin is
             the smallest gap between the best and the second-best logit over all steps, so a
             reader can see that no step is a near tie that rounding could flip.
  score      one prompt and candidate continuations of 1 to 8 tokens: each candidate's summed
             log-probability with the softmax over the tokenizer's ids (logprob) and over every
             row of the model (logprob_all_rows, what the model's raw logits give).
  nll        the per-token negative log-likelihood of one sequence, both ways.
  chat       (qwen2 only) a ChatML prompt as the text of one user turn, its ids, and the greedy
             ids after it: what `ctune generate --ids` must print.
sampling.json holds a random logits vector and, for several (temperature, top_k, top_p), the
distribution transformers' sampling draws from: TemperatureLogitsWarper, TopKLogitsWarper and
TopPLogitsWarper in generate()'s order, then softmax, computed in float64. min_gap is the
smallest distance between a nucleus boundary's cumulative mass and 1 - top_p.

Every file records the library versions. Made with torch 2.15.0, transformers 5.23.0, tokenizers
0.23.3, numpy 2.4.6 (pip install torch transformers tokenizers numpy). Run from the repository
root:
    python3 tests/reference/make_generate_fixture.py
"""
import json
import os

import numpy as np
import tokenizers
import torch
import transformers
from transformers.generation.logits_process import (TemperatureLogitsWarper, TopKLogitsWarper,
                                                    TopPLogitsWarper)

MODELS = "tests/fixtures/models"
OUT = "tests/fixtures/generate"
NAMES = ["llama", "qwen2", "qwen3", "mistral"]
MAX_NEW_TOKENS = 12

PROMPTS = [
    "Hello, where is my order?",
    "退货",
    "The package arrived damaged, can I get a refund? 请帮我修改收货地址，谢谢。",
]
SCORE_PROMPT = "<|im_start|>user\n您好，我的订单什么时候发货？<|im_end|>\n<|im_start|>assistant\n"
CANDIDATES = ["退货申请", "物流查询", "Hello", " refund", "I would like to return these shoes", "？"]
NLL_TEXT = "I would like to return these shoes; 退货申请已提交，请耐心等待审核。"
CHAT_USER = "我要退货"
SAMPLING_CASES = [  # (temperature, top_k, top_p)
    (0.7, 0, 0.9),
    (1.3, 10, 0.8),
    (1.0, 5, 1.0),
    (0.5, 0, 1.0),
    (2.0, 0, 0.6),
    (1.0, 0, 0.95),
]


def versions():
    return {"torch": torch.__version__, "transformers": transformers.__version__,
            "tokenizers": tokenizers.__version__, "numpy": np.__version__}


def encode(tok, text):
    """Ids as the library gives them by default: special-token text in the input is matched."""
    return tok.encode(text, add_special_tokens=False).ids


def greedy(model, prompt, tok_size, eos):
    vocab = model.config.vocab_size
    suppress = list(range(tok_size, vocab)) or None
    input_ids = torch.tensor([prompt])
    out = model.generate(input_ids, attention_mask=torch.ones_like(input_ids), do_sample=False,
                         max_new_tokens=MAX_NEW_TOKENS, eos_token_id=eos, pad_token_id=eos[0],
                         suppress_tokens=suppress, output_logits=True, return_dict_in_generate=True,
                         top_k=None, top_p=None, temperature=None)
    ids = out.sequences[0, len(prompt):].tolist()
    margin = float("inf")
    for step in out.logits:
        top2 = step[0, :tok_size].double().topk(2).values
        margin = min(margin, (top2[0] - top2[1]).item())
    return ids, margin


def log_probs(model, ids, tok_size):
    """log p(ids[t + 1] | ids[:t + 1]) for every t, both normalizations, in float64."""
    with torch.no_grad():
        logits = model(input_ids=torch.tensor([ids])).logits[0].double()
    targets = torch.tensor(ids[1:])
    rows = torch.arange(len(ids) - 1)
    restricted = torch.log_softmax(logits[:-1, :tok_size], dim=-1)[rows, targets]
    all_rows = torch.log_softmax(logits[:-1], dim=-1)[rows, targets]
    return restricted.tolist(), all_rows.tolist()


def score(model, prompt, candidates, tok_size):
    logprob, logprob_all = [], []
    for cand in candidates:
        restricted, all_rows = log_probs(model, prompt + cand, tok_size)
        logprob.append(sum(restricted[len(prompt) - 1:]))
        logprob_all.append(sum(all_rows[len(prompt) - 1:]))
    return {"prompt": prompt, "candidates": candidates, "logprob": logprob,
            "logprob_all_rows": logprob_all}


def chatml_user_turn(text):
    """The ChatML rendering of one user turn followed by an open assistant turn (the format's
    definition, as Qwen uses it without a system prompt)."""
    return f"<|im_start|>user\n{text}<|im_end|>\n<|im_start|>assistant\n"


def model_fixture(name, tok, tok_size):
    folder = os.path.join(MODELS, name)
    model = transformers.AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32)
    model.eval()
    eos = model.config.eos_token_id
    eos_list = eos if isinstance(eos, list) else [eos]
    out = {"versions": versions(), "model": name, "tokenizer_size": tok_size,
           "vocab_size": model.config.vocab_size, "eos_token_ids": eos_list,
           "max_new_tokens": MAX_NEW_TOKENS, "greedy": []}
    for text in PROMPTS:
        prompt = encode(tok, text)
        ids, margin = greedy(model, prompt, tok_size, eos_list)
        out["greedy"].append({"text": text, "prompt": prompt, "ids": ids, "min_margin": margin})
        print(f"{name}: prompt of {len(prompt)} tokens -> {len(ids)} new, min margin {margin:.3g}")
    out["score"] = score(model, encode(tok, SCORE_PROMPT), [encode(tok, c) for c in CANDIDATES], tok_size)
    seq = encode(tok, NLL_TEXT)
    nll, nll_all = log_probs(model, seq, tok_size)
    out["nll"] = {"ids": seq, "nll": [-x for x in nll], "nll_all_rows": [-x for x in nll_all]}
    if name == "qwen2":
        prompt = encode(tok, chatml_user_turn(CHAT_USER))
        ids, margin = greedy(model, prompt, tok_size, eos_list)
        out["chat"] = {"user": CHAT_USER, "prompt": prompt, "ids": ids, "min_margin": margin}
        print(f"{name}: chat prompt of {len(prompt)} tokens -> {ids}, min margin {margin:.3g}")
    return out


def warped_probs(logits, temperature, top_k, top_p):
    scores = logits.clone().unsqueeze(0)
    if temperature != 1.0:
        scores = TemperatureLogitsWarper(temperature)(None, scores)
    if top_k:
        scores = TopKLogitsWarper(top_k=top_k)(None, scores)
    if top_p < 1.0:
        scores = TopPLogitsWarper(top_p=top_p)(None, scores)
    return torch.softmax(scores, dim=-1)[0]


def boundary_gap(logits, temperature, top_k, top_p):
    """How far the nucleus cut is from flipping: min |cumulative mass - (1 - top_p)|."""
    if top_p >= 1.0:
        return 1.0
    scores = logits / temperature
    if top_k:
        kth = scores.topk(top_k).values[-1]
        scores = scores.masked_fill(scores < kth, -float("inf"))
    cum = torch.softmax(scores, dim=-1).sort().values.cumsum(0)
    return (cum - (1 - top_p)).abs().min().item()


def sampling_fixture():
    gen = torch.Generator().manual_seed(2024)
    logits = torch.randn(37, generator=gen).float().double()
    cases = []
    for temperature, top_k, top_p in SAMPLING_CASES:
        probs = warped_probs(logits, temperature, top_k, top_p)
        cases.append({"temperature": temperature, "top_k": top_k, "top_p": top_p, "probs": probs.tolist(),
                      "kept": int((probs > 0).sum()), "min_gap": boundary_gap(logits, temperature, top_k, top_p)})
        print(f"sampling T={temperature} k={top_k} p={top_p}: {cases[-1]['kept']} tokens kept, "
              f"gap {cases[-1]['min_gap']:.3g}")
    return {"versions": versions(), "logits": logits.tolist(), "cases": cases}


def write(name, obj):
    with open(os.path.join(OUT, name), "w") as f:
        json.dump(obj, f, indent=1, ensure_ascii=False)
        f.write("\n")


def main():
    torch.manual_seed(0)
    os.makedirs(OUT, exist_ok=True)
    tok = tokenizers.Tokenizer.from_file(os.path.join(MODELS, "llama", "tokenizer.json"))
    tok_size = tok.get_vocab_size(with_added_tokens=True)
    for name in NAMES:
        write(f"{name}.json", model_fixture(name, tok, tok_size))
    write("sampling.json", sampling_fixture())


if __name__ == "__main__":
    main()
