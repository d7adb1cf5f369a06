"""Writes tests/fixtures/models/{llama,qwen2,qwen3,mistral}/: tiny random Hugging Face models saved
with save_pretrained (config.json, safetensors, tokenizer.json, tokenizer_config.json) and, beside
each, reference.safetensors with what transformers computes for them:

    input_ids [2, T] i32, labels [2, T] i32 (some -100), logits [2, T, vocab_size] f32,
    loss [1] f32 (transformers' shifted-label mean), grad.<hf name> f32 for every parameter,
    inv_freq [head_dim / 2] f32 (the model's RoPE table), and for llama also inv_freq_llama32:
    the "llama3"-scaled table of the real Llama-3.2-1B configuration.

The models are small (hidden 32-64, 2-3 layers, vocab ~300) but keep every feature that can go
wrong: grouped-query heads (mistral: a single kv head), Llama-3 rope scaling whose three frequency
bands are all populated, Qwen2's q/k/v biases, Qwen3's q/k RMSNorm with an explicit head_dim that
differs from hidden/heads, tied embeddings (qwen2, qwen3), vocab rows beyond the tokenizer's size,
a sharded checkpoint (llama) and a bf16 one (mistral, whose reference is computed with the
bf16-rounded weights in f32). Weights use a large initializer_range and norm weights and biases
are random too, so attention is far from uniform and a swapped or transposed tensor shows.

Made with: torch 2.15.0, transformers 5.23.0, tokenizers 0.23.3, safetensors 0.8.0, numpy 2.4.6
(pip install torch transformers tokenizers safetensors numpy); the versions are also written into
each reference.safetensors' __metadata__. Run from the repository root:

    python3 tests/reference/make_model_fixtures.py

With --check DIR NAME it instead loads a folder that ctune saved (DIR) with transformers and
compares its logits and loss with fixture NAME's reference (an optional integration check).
"""
import json
import os
import shutil
import sys

import numpy as np
import safetensors
import tokenizers
import torch
import transformers
from safetensors.torch import load_file, save_file
from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers.modeling_rope_utils import ROPE_INIT_FUNCTIONS

OUT = "tests/fixtures/models"
SEQ_LEN = 11

# The split pattern of the Qwen2 / Qwen3 tokenizers (a fact of their tokenizer.json).
SPLIT_PATTERN = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"
                 r"|\s*[\r\n]+|\s+(?!\S)|\s+")
CORPUS = [
    "Hello, where is my order? It was due on Monday.",
    "I would like to return these shoes; they are too small.",
    "您好，我的订单什么时候发货？",
    "请帮我修改收货地址，谢谢。",
    "The package arrived damaged, can I get a refund?",
    "退货申请已提交，请耐心等待审核。",
]
SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]


def make_tokenizer():
    """A byte-level BPE tokenizer of ~280 tokens with Qwen-style pre-tokenization; the special
    tokens come after the vocabulary, numbered as the library numbers added tokens."""
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(SPLIT_PATTERN), behavior="isolated"),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
    ])
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=280, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  show_progress=False)
    tok.train_from_iterator(CORPUS, trainer)
    tok.add_special_tokens(SPECIALS)
    return tok


def save_tokenizer(tok, folder):
    tok.save(os.path.join(folder, "tokenizer.json"))
    config = {
        "tokenizer_class": "PreTrainedTokenizerFast",
        "bos_token": None,
        "eos_token": "<|im_end|>",
        "pad_token": "<|endoftext|>",
        "model_max_length": 2048,
    }
    with open(os.path.join(folder, "tokenizer_config.json"), "w") as f:
        json.dump(config, f, indent=2)
        f.write("\n")


def specs(tok_size, eos_id):
    """name -> (config class, model class, config kwargs, extra save options)."""
    T = transformers
    common = dict(eos_token_id=eos_id, bos_token_id=None, pad_token_id=None, attn_implementation="eager")
    return {
        "llama": (T.LlamaConfig, T.LlamaForCausalLM, dict(
            hidden_size=64, intermediate_size=112, num_hidden_layers=3, num_attention_heads=4,
            num_key_value_heads=2, vocab_size=300, max_position_embeddings=2048, rms_norm_eps=1e-5,
            rope_theta=10000.0, initializer_range=0.15, tie_word_embeddings=False,
            # 16-dim heads at theta 1e4 have wavelengths 6.3 .. 19869: with an original context of
            # 256, two frequencies keep their value, one is smoothed and five are divided by 8.
            rope_scaling={"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
                          "high_freq_factor": 4.0, "original_max_position_embeddings": 256},
            **common), {"max_shard_size": "200KB"}),
        "qwen2": (T.Qwen2Config, T.Qwen2ForCausalLM, dict(
            hidden_size=48, intermediate_size=96, num_hidden_layers=3, num_attention_heads=6,
            num_key_value_heads=2, vocab_size=320, max_position_embeddings=4096, rms_norm_eps=1e-6,
            rope_theta=1000000.0, initializer_range=0.15, tie_word_embeddings=True,
            use_sliding_window=False, **common), {}),
        "qwen3": (T.Qwen3Config, T.Qwen3ForCausalLM, dict(
            hidden_size=48, intermediate_size=80, num_hidden_layers=2, num_attention_heads=4,
            num_key_value_heads=2, head_dim=16, vocab_size=tok_size, max_position_embeddings=4096,
            rms_norm_eps=1e-6, rope_theta=1000000.0, initializer_range=0.15, tie_word_embeddings=True,
            attention_bias=False, use_sliding_window=False, **common), {}),
        "mistral": (T.MistralConfig, T.MistralForCausalLM, dict(
            hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
            num_key_value_heads=1, vocab_size=290, max_position_embeddings=1024, rms_norm_eps=1e-5,
            rope_theta=1000000.0, initializer_range=0.15, tie_word_embeddings=False,
            sliding_window=None, **common), {"bf16": True}),
    }


def randomize(model, gen):
    """Matrices keep the config's N(0, initializer_range); norm weights become 1 + N(0, 0.2^2)
    and biases N(0, 0.3^2), so a misplaced norm weight or bias changes the result."""
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.dim() == 1 and name.endswith("norm.weight"):
                p.copy_(1.0 + 0.2 * torch.randn(p.shape, generator=gen))
            elif p.dim() == 1:
                p.copy_(0.3 * torch.randn(p.shape, generator=gen))


def make_inputs(tok, tok_size, gen):
    """Row 0: a tokenized customer-service sentence; row 1: random ids. Labels ignore the first
    three tokens of row 0 and one token of row 1, as a prompt mask would."""
    ids0 = tok.encode("您好，退货申请 where is my order?").ids
    while len(ids0) < SEQ_LEN:
        ids0 = ids0 + ids0
    ids0 = torch.tensor(ids0[:SEQ_LEN], dtype=torch.long)
    ids1 = torch.randint(0, tok_size, (SEQ_LEN,), generator=gen)
    input_ids = torch.stack([ids0, ids1])
    labels = input_ids.clone()
    labels[0, :3] = -100
    labels[1, 6] = -100
    return input_ids, labels


def llama32_inv_freq():
    """The "llama3"-scaled RoPE table of Llama-3.2-1B's published configuration."""
    config = transformers.LlamaConfig(
        hidden_size=2048, num_attention_heads=32, head_dim=64, rope_theta=500000.0,
        max_position_embeddings=131072,
        rope_scaling={"rope_type": "llama3", "factor": 32.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                      "original_max_position_embeddings": 8192})
    inv_freq, scaling = ROPE_INIT_FUNCTIONS["llama3"](config, "cpu")
    assert scaling == 1.0
    return inv_freq.float()


def versions():
    return {"torch": torch.__version__, "transformers": transformers.__version__,
            "tokenizers": tokenizers.__version__, "safetensors": safetensors.__version__,
            "numpy": np.__version__}


def make_fixture(name, tok, tok_size, eos_id, seed):
    config_cls, model_cls, kwargs, options = specs(tok_size, eos_id)[name]
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    config = config_cls(**kwargs)
    model = model_cls(config).float()
    randomize(model, gen)
    if options.get("bf16"):
        # The file holds bf16; the reference runs in f32 on exactly those rounded values.
        with torch.no_grad():
            for p in model.parameters():
                p.copy_(p.to(torch.bfloat16).float())

    folder = os.path.join(OUT, name)
    shutil.rmtree(folder, ignore_errors=True)
    os.makedirs(folder)
    save_model = model_cls(config).to(torch.bfloat16) if options.get("bf16") else model
    if save_model is not model:
        save_model.load_state_dict(model.state_dict())
    save_model.save_pretrained(folder, max_shard_size=options.get("max_shard_size", "50GB"))
    save_tokenizer(tok, folder)
    gen_config = os.path.join(folder, "generation_config.json")
    if os.path.exists(gen_config):
        os.remove(gen_config)  # not read by ctune; keeps the fixture to what is tested

    input_ids, labels = make_inputs(tok, tok_size, gen)
    model.train()  # dropout is 0 in these configs; train mode only matters for gradients
    out = model(input_ids=input_ids, labels=labels)
    out.loss.backward()

    ref = {
        "input_ids": input_ids.to(torch.int32).contiguous(),
        "labels": labels.to(torch.int32).contiguous(),
        "logits": out.logits.detach().float().contiguous(),
        "loss": out.loss.detach().float().reshape(1).contiguous(),
        "inv_freq": model.model.rotary_emb.inv_freq.detach().float().contiguous(),
    }
    for pname, p in model.named_parameters():
        ref["grad." + pname] = p.grad.detach().float().contiguous()
    if name == "llama":
        ref["inv_freq_llama32"] = llama32_inv_freq().contiguous()
    meta = versions()
    meta["model"] = model_cls.__name__
    save_file(ref, os.path.join(folder, "reference.safetensors"), metadata=meta)
    n_params = sum(p.numel() for p in model.parameters())
    print(f"{name}: {n_params} parameters, loss {out.loss.item():.6f}, files:",
          ", ".join(sorted(os.listdir(folder))))


def check_saved(folder, name):
    """Loads a folder ctune wrote and compares it with the reference of fixture `name`."""
    ref = load_file(os.path.join(OUT, name, "reference.safetensors"))
    model = transformers.AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32)
    tok = transformers.AutoTokenizer.from_pretrained(folder)
    with torch.no_grad():
        out = model(input_ids=ref["input_ids"].long(), labels=ref["labels"].long())
    diff = (out.logits - ref["logits"]).norm() / ref["logits"].norm()
    loss_diff = abs(out.loss.item() - ref["loss"].item()) / abs(ref["loss"].item())
    print(f"{folder}: {type(model).__name__}, tokenizer of {len(tok)} tokens, "
          f"logits rel. error {diff.item():.3g}, loss rel. error {loss_diff:.3g}")
    return 0 if diff < 1e-4 and loss_diff < 1e-4 else 1


def main():
    if len(sys.argv) == 4 and sys.argv[1] == "--check":
        return check_saved(sys.argv[2], sys.argv[3])
    tok = make_tokenizer()
    tok_size = tok.get_vocab_size(with_added_tokens=True)
    eos_id = tok.token_to_id("<|im_end|>")
    os.makedirs(OUT, exist_ok=True)
    for seed, name in enumerate(["llama", "qwen2", "qwen3", "mistral"]):
        make_fixture(name, tok, tok_size, eos_id, 1000 + seed)
    with open(os.path.join(OUT, "VERSIONS"), "w") as f:
        f.write("Made by tests/reference/make_model_fixtures.py with\n")
        for k, v in versions().items():
            f.write(f"{k} {v}\n")
        f.write(f"tokenizer size {tok_size}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
