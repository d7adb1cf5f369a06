"""The `gguf` Python package (llama.cpp's own reader) reads ctune's GGUF files, and what they
hold matches the layout facts of GGUF-NOTES.md and llama.cpp's converter (convert_hf_to_gguf.py):

- key types (u32 sizes, f32 epsilon and RoPE base), values equal the model's config.json;
- the tokenizer: gpt2 model, qwen2 pre-tokenizer (the fixtures' regex is Qwen2's), tokens and
  merges equal tokenizer.json, specials typed control (3), rows past the tokenizer [PAD{i}]
  typed unused (5), eos/pad ids, add_bos_token false, the chat template of tokenizer_config.json;
- the exact tensor set per architecture (qwen2 biases, qwen3 q/k norms and key_length, llama 3's
  rope_freqs with the converter's factors, no output.weight when tied), ne = the HF shape
  reversed, 1-D tensors F32;
- data: the f32 files hold the HF weights bit for bit (llama's q/k rows RoPE-permuted); the Q8_0
  file's blocks equal the gguf package's own Q8_0 quantizer on the same rows (F16 for a tensor
  whose row is not a multiple of 32), general.file_type 7 and quantization_version 2;
- a gguf-lora file: adapter keys, lora_a ne {in, r} and lora_b ne {r, out} with PEFT's values.
"""
import glob
import json
import math
import os
import sys

import numpy as np
import torch
import transformers
from gguf import GGMLQuantizationType as QT
from gguf import GGUFReader, GGUFValueType as VT
from gguf.quants import quantize
from peft import LoraConfig, get_peft_model
from safetensors.numpy import load_file

from llama_cpp_common import FIXTURES, TMP, export_gguf, export_gguf_lora, intent_model, model_folder

problems = []


def expect(cond, what):
    if not cond:
        problems.append(what)
    return cond


def hf_weights(folder):
    out = {}
    for path in sorted(glob.glob(os.path.join(folder, "*.safetensors"))):
        if os.path.basename(path) != "reference.safetensors":
            out.update(load_file(path))
    return out


def field(reader, key, vtype, label):
    f = reader.get_field(key)
    if not expect(f is not None, f"{label}: key {key} missing"):
        return None
    expect(f.types[0] == vtype, f"{label}: {key} has type {f.types[0].name}, want {vtype.name}")
    return f.contents()


def permute(w, n_head):
    """llama.cpp's converter's q/k permutation (halves -> interleaved pairs within each head)."""
    return w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def gguf_name(hf):
    parts = hf.split(".")
    fixed = {"model.embed_tokens.weight": "token_embd.weight", "model.norm.weight": "output_norm.weight",
             "lm_head.weight": "output.weight"}
    if hf in fixed:
        return fixed[hf]
    n, rest = parts[2], ".".join(parts[3:])
    table = {"input_layernorm.weight": "attn_norm.weight", "post_attention_layernorm.weight": "ffn_norm.weight",
             "self_attn.q_proj": "attn_q", "self_attn.k_proj": "attn_k", "self_attn.v_proj": "attn_v",
             "self_attn.o_proj": "attn_output", "self_attn.q_norm.weight": "attn_q_norm.weight",
             "self_attn.k_norm.weight": "attn_k_norm.weight", "mlp.gate_proj": "ffn_gate", "mlp.up_proj": "ffn_up",
             "mlp.down_proj": "ffn_down"}
    for k, v in table.items():
        if rest == k or rest.startswith(k + "."):
            return f"blk.{n}.{v}{rest[len(k):]}"
    raise KeyError(hf)


def llama3_rope_factors(cfg):
    rp = cfg["rope_parameters"]
    dim = cfg.get("head_dim") or cfg["hidden_size"] // cfg["num_attention_heads"]
    freqs = 1.0 / (rp["rope_theta"] ** (np.arange(0, dim, 2, dtype=np.float32) / dim))
    old, lo, hi, factor = rp["original_max_position_embeddings"], rp["low_freq_factor"], rp["high_freq_factor"], rp["factor"]
    out = []
    for f in freqs:
        wavelen = 2 * math.pi / f
        if wavelen < old / hi:
            out.append(1.0)
        elif wavelen > old / lo:
            out.append(factor)
        else:
            smooth = (old / wavelen - lo) / (hi - lo)
            out.append(1 / ((1 - smooth) / factor + smooth))
    return np.array(out, dtype=np.float32)


def expected_tensor(arch, cfg, name, w):
    """The HF tensor as the GGUF stores it (f32 values, HF layout [out, in])."""
    if arch == "llama" and (".attn_q." in name or ".attn_k." in name):
        heads = cfg["num_attention_heads"] if ".attn_q." in name else cfg["num_key_value_heads"]
        return permute(w, heads)
    return w


def check_tokenizer(reader, folder, rows, label, cfg_pad):
    tj = json.load(open(os.path.join(folder, "tokenizer.json"), encoding="utf-8"))
    tc = json.load(open(os.path.join(folder, "tokenizer_config.json"), encoding="utf-8"))
    expect(field(reader, "tokenizer.ggml.model", VT.STRING, label) == "gpt2", f"{label}: tokenizer.ggml.model not gpt2")
    expect(field(reader, "tokenizer.ggml.pre", VT.STRING, label) == "qwen2", f"{label}: tokenizer.ggml.pre not qwen2")
    tokens = field(reader, "tokenizer.ggml.tokens", VT.ARRAY, label) or []
    types = field(reader, "tokenizer.ggml.token_type", VT.ARRAY, label) or []
    f = reader.get_field("tokenizer.ggml.token_type")
    expect(f is not None and f.types[-1] == VT.INT32, f"{label}: token_type is not an i32 array")
    expect(len(tokens) == rows and len(types) == rows,
           f"{label}: {len(tokens)} tokens / {len(types)} types for {rows} embedding rows")
    want = {i: t for t, i in tj["model"]["vocab"].items()}
    specials = {a["id"]: a["content"] for a in tj["added_tokens"]}
    want.update(specials)
    for i in range(min(rows, len(tokens), len(types))):
        if i in want:
            expect(tokens[i] == want[i], f"{label}: token {i} is {tokens[i]!r}, tokenizer.json has {want[i]!r}")
            expect(types[i] == (3 if i in specials else 1), f"{label}: token {i} {tokens[i]!r} has type {types[i]}")
        else:
            expect(tokens[i] == f"[PAD{i}]" and types[i] == 5, f"{label}: row {i} past the tokenizer: {tokens[i]!r} type {types[i]}")
    merges = [m if isinstance(m, str) else " ".join(m) for m in tj["model"]["merges"]]
    expect(field(reader, "tokenizer.ggml.merges", VT.ARRAY, label) == merges, f"{label}: merges differ from tokenizer.json")
    ids = {a["content"]: a["id"] for a in tj["added_tokens"]}
    expect(field(reader, "tokenizer.ggml.eos_token_id", VT.UINT32, label) == ids.get(tc.get("eos_token")),
           f"{label}: eos id is not the id of {tc.get('eos_token')!r}")
    if cfg_pad is not None:
        expect(field(reader, "tokenizer.ggml.padding_token_id", VT.UINT32, label) == ids[tc["pad_token"]],
               f"{label}: padding id is not the id of {tc['pad_token']!r}")
    expect(field(reader, "tokenizer.ggml.add_bos_token", VT.BOOL, label) is False, f"{label}: add_bos_token not false")
    if tc.get("chat_template"):
        expect(field(reader, "tokenizer.chat_template", VT.STRING, label) == tc["chat_template"],
               f"{label}: chat template differs from tokenizer_config.json")


def check_model(arch, folder, gtype, path):
    label = f"{arch} {gtype}"
    cfg = json.load(open(os.path.join(folder, "config.json")))
    reader = GGUFReader(path)
    expect(field(reader, "general.architecture", VT.STRING, label) == arch, f"{label}: general.architecture")
    for key, hf in [("context_length", "max_position_embeddings"), ("embedding_length", "hidden_size"),
                    ("block_count", "num_hidden_layers"), ("feed_forward_length", "intermediate_size"),
                    ("attention.head_count", "num_attention_heads"), ("attention.head_count_kv", "num_key_value_heads")]:
        expect(field(reader, f"{arch}.{key}", VT.UINT32, label) == cfg[hf], f"{label}: {arch}.{key} != {hf}")
    eps = field(reader, f"{arch}.attention.layer_norm_rms_epsilon", VT.FLOAT32, label)
    expect(eps is not None and np.float32(eps) == np.float32(cfg["rms_norm_eps"]), f"{label}: rms epsilon {eps}")
    theta = (cfg.get("rope_parameters") or {}).get("rope_theta", cfg.get("rope_theta"))
    base = field(reader, f"{arch}.rope.freq_base", VT.FLOAT32, label)
    expect(base is not None and np.float32(base) == np.float32(theta), f"{label}: rope.freq_base {base}, want {theta}")
    head_dim = cfg.get("head_dim") or cfg["hidden_size"] // cfg["num_attention_heads"]
    if head_dim != cfg["hidden_size"] // cfg["num_attention_heads"]:
        for k in ("key_length", "value_length"):
            expect(field(reader, f"{arch}.attention.{k}", VT.UINT32, label) == head_dim, f"{label}: {arch}.attention.{k}")
    if gtype == "q8_0":
        expect(field(reader, "general.file_type", VT.UINT32, label) == 7, f"{label}: general.file_type not 7")
        expect(field(reader, "general.quantization_version", VT.UINT32, label) == 2, f"{label}: quantization_version not 2")
    elif gtype == "f32":
        expect(field(reader, "general.file_type", VT.UINT32, label) == 0, f"{label}: general.file_type not 0")

    weights = hf_weights(folder)
    want = {gguf_name(k): v for k, v in weights.items()}
    if cfg.get("tie_word_embeddings"):
        want.pop("output.weight", None)
    rp = cfg.get("rope_parameters") or cfg.get("rope_scaling") or {}
    if rp.get("rope_type") == "llama3":
        want["rope_freqs.weight"] = llama3_rope_factors(cfg)
    tensors = {t.name: t for t in reader.tensors}
    expect(set(tensors) == set(want), f"{label}: tensors extra {sorted(set(tensors) - set(want))[:5]}, "
                                      f"missing {sorted(set(want) - set(tensors))[:5]}")
    rows = None
    for name in sorted(set(tensors) & set(want)):
        t, w = tensors[name], np.asarray(want[name], dtype=np.float32)
        w = expected_tensor(arch, cfg, name, w)
        if not expect(list(t.shape) == list(w.shape[::-1]), f"{label}: {name} ne {list(t.shape)}, HF shape {list(w.shape)}"):
            continue
        if name == "token_embd.weight":
            rows = w.shape[0]
        if w.ndim == 1 or gtype == "f32":
            kind = QT.F32
        elif w.shape[-1] % 32 == 0:
            kind = QT.Q8_0
        else:
            kind = QT.F16
        if not expect(t.tensor_type == kind, f"{label}: {name} is {t.tensor_type.name}, want {kind.name}"):
            continue
        if name == "rope_freqs.weight":
            # Computed in f32 by two programs: equal to a few ulps.
            expect(np.allclose(np.asarray(t.data), w, rtol=1e-6, atol=0), f"{label}: rope_freqs {np.asarray(t.data)}, want {w}")
            continue
        ref = quantize(w, kind)
        got = np.asarray(t.data).reshape(ref.shape) if kind != QT.F32 else np.asarray(t.data).reshape(w.shape)
        if kind == QT.Q8_0:
            # Same scales; int8 values may differ only at exact .5 ties (numpy rounds those to even).
            blocks_ref, blocks_got = ref.reshape(-1, 34), got.reshape(-1, 34)
            expect(np.array_equal(blocks_ref[:, :2], blocks_got[:, :2]), f"{label}: {name} Q8_0 scales differ")
            diff = np.count_nonzero(blocks_ref[:, 2:] != blocks_got[:, 2:])
            expect(diff <= max(1, blocks_ref.size // 100000), f"{label}: {name} {diff} int8 values differ")
        else:
            expect(np.array_equal(np.asarray(ref).view(np.uint8), np.asarray(got).view(np.uint8)),
                   f"{label}: {name} data differ from the HF weights")
    # ctune writes the pad id when config.json has pad_token_id (llama.cpp's converter also
    # takes tokenizer_config.json's pad_token when config.json has none).
    check_tokenizer(reader, folder, rows or 0, label, cfg.get("pad_token_id"))
    return reader


def check_lora(arch):
    folder = os.path.join(FIXTURES, arch)
    cfg = json.load(open(os.path.join(folder, "config.json")))
    torch.manual_seed(4)
    model = get_peft_model(transformers.AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32),
                           LoraConfig(r=4, lora_alpha=12, target_modules=["q_proj", "k_proj", "down_proj"],
                                      task_type="CAUSAL_LM"))
    for n, p in model.named_parameters():
        if "lora_B" in n:
            torch.nn.init.normal_(p, std=0.05)
    adapter = os.path.join(TMP, f"{arch}-meta-adapter")
    model.save_pretrained(adapter)
    path = export_gguf_lora(folder, adapter, os.path.join(TMP, f"{arch}-meta-lora.gguf"))
    label = f"{arch} gguf-lora"
    reader = GGUFReader(path)
    expect(field(reader, "general.type", VT.STRING, label) == "adapter", f"{label}: general.type")
    expect(field(reader, "general.architecture", VT.STRING, label) == arch, f"{label}: general.architecture")
    expect(field(reader, "adapter.type", VT.STRING, label) == "lora", f"{label}: adapter.type")
    expect(field(reader, "adapter.lora.alpha", VT.FLOAT32, label) == 12.0, f"{label}: adapter.lora.alpha")
    peft = load_file(os.path.join(adapter, "adapter_model.safetensors"))
    want = {}
    for k, v in peft.items():
        base = k.replace("base_model.model.", "").replace(".lora_A.weight", ".weight").replace(".lora_B.weight", ".weight")
        name = gguf_name(base) + (".lora_a" if "lora_A" in k else ".lora_b")
        if "lora_B" in k:
            v = expected_tensor(arch, cfg, name, v)
        want[name] = v
    tensors = {t.name: t for t in reader.tensors}
    expect(set(tensors) == set(want), f"{label}: tensors {sorted(set(tensors) ^ set(want))[:6]} differ")
    for name in set(tensors) & set(want):
        t, w = tensors[name], want[name]
        expect(list(t.shape) == list(w.shape[::-1]) and t.tensor_type == QT.F32 and
               np.array_equal(np.asarray(t.data).reshape(w.shape), w), f"{label}: {name} shape/type/values")


def main():
    for arch in ("llama", "qwen2", "qwen3"):
        folder = os.path.join(FIXTURES, arch)
        check_model(arch, folder, "f32", export_gguf(folder, "f32", os.path.join(TMP, f"{arch}-meta-f32.gguf")))
    qwen3 = os.path.join(FIXTURES, "qwen3")
    check_model("qwen3", qwen3, "q8_0", export_gguf(qwen3, "q8_0", os.path.join(TMP, "qwen3-meta-q8_0.gguf")))
    intent = model_folder(intent_model())
    check_model("llama", intent, "q8_0", export_gguf(intent, "q8_0", os.path.join(TMP, "intent-meta-q8_0.gguf")))
    for arch in ("llama", "qwen2"):
        check_lora(arch)
    for p in problems[:40]:
        print("  " + p)
    print(f"{len(problems)} problems" if problems else "all checks passed")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
