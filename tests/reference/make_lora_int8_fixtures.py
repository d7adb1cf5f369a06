"""Writes tests/fixtures/lora/<case>/ for LoRA and DoRA on an INT8 base (model.base_dtype: int8):
the tiny model fixture's seven projections of every layer quantized per output row with the
compressed-tensors package (weight-only, 8-bit, symmetric, "channel" strategy: the arithmetic of
ctune's models/quantize.c), then a peft adapter on the model whose projection weights are those
int8 values times their scales (the f32 product, as the package dequantizes), and what peft
computes on it.

Per case, beside make_lora_fixtures.py's files (adapter_config.json, adapter_model.safetensors,
reference.safetensors with input_ids, labels, logits, loss and grad.<key>, meta.json):
    quantized.safetensors   q.<weight name> i32 [out, in] and scale.<weight name> f32 [out, 1], so
                            the test checks that ctune quantized the base to these same values

The cases:
    llama_qv_int8          LoRA r 4, alpha 8 on q_proj + v_proj (B non-zero, N(0, 0.05^2))
    qwen3_dora_int8        DoRA r 4, alpha 8, all-linear: the weight norm of the dequantized rows;
                           the magnitude moved by 1 + N(0, 0.1^2)

The reference runs in float64 on the dequantized f32 values widened exactly. Made with the
versions meta.json records (torch 2.15.0, transformers 5.25.0, peft 0.21.2, compressed-tensors
0.20.1). Run from the repository root:

    python3 tests/reference/make_lora_int8_fixtures.py
"""
import copy
import json
import os
import shutil
import sys

import compressed_tensors
import peft
import torch
import transformers
from compressed_tensors.quantization import QuantizationArgs
from compressed_tensors.quantization.lifecycle.forward import quantize
from compressed_tensors.quantization.utils.helpers import calculate_qparams
from peft import LoraConfig, get_peft_model
from safetensors.torch import load_file, save_file

sys.path.insert(0, os.path.dirname(__file__))
from make_lora_fixtures import perturb, saved_key, versions  # noqa: E402

MODELS = "tests/fixtures/models"
OUT = "tests/fixtures/lora"
ARGS = QuantizationArgs(num_bits=8, type="int", symmetric=True, strategy="channel", dynamic=False)
PROJECTIONS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")

CASES = {
    "llama_qv_int8": ("llama", dict(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"]), 2010),
    "qwen3_dora_int8": ("qwen3", dict(r=4, lora_alpha=8, target_modules="all-linear", use_dora=True), 2011),
}


def quantize_base(model):
    """Every projection weight replaced by q * scale (f32); returns {name: (q, scale)}."""
    out = {}
    with torch.no_grad():
        for name, p in model.named_parameters():
            if not (name.endswith(".weight") and name.split(".")[-2] in PROJECTIONS):
                continue
            w = p.detach().float()
            scale, zp = calculate_qparams(w.amin(dim=1, keepdim=True), w.amax(dim=1, keepdim=True), ARGS)
            q = quantize(x=w, scale=scale, zero_point=zp, args=ARGS, dtype=torch.int8)
            p.copy_(q.float() * scale)
            out[name] = (q, scale)
    return out


def make_case(name):
    base, lora_kwargs, seed = CASES[name]
    base_dir = os.path.join(MODELS, base)
    ref_base = load_file(os.path.join(base_dir, "reference.safetensors"))
    input_ids, labels = ref_base["input_ids"].long(), ref_base["labels"].long()
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    model = transformers.AutoModelForCausalLM.from_pretrained(base_dir, dtype=torch.float32,
                                                              attn_implementation="eager")
    quantized = quantize_base(model)
    pmodel = get_peft_model(model, LoraConfig(lora_dropout=0.0, task_type="CAUSAL_LM", **lora_kwargs))
    perturb(pmodel, gen)
    folder = os.path.join(OUT, name)
    shutil.rmtree(folder, ignore_errors=True)
    os.makedirs(folder)
    pmodel.save_pretrained(folder)
    if os.path.exists(os.path.join(folder, "README.md")):
        os.remove(os.path.join(folder, "README.md"))

    ref64 = copy.deepcopy(pmodel).double()
    ref64.train()
    out = ref64(input_ids=input_ids, labels=labels)
    out.loss.backward()
    saved = load_file(os.path.join(folder, "adapter_model.safetensors"))
    ref = {"input_ids": input_ids.to(torch.int32).contiguous(), "labels": labels.to(torch.int32).contiguous(),
           "logits": out.logits.detach().float().contiguous(),
           "loss": out.loss.detach().float().reshape(1).contiguous()}
    for pname, p in ref64.named_parameters():
        if p.requires_grad:
            key = saved_key(pname)
            assert key in saved and p.grad.norm() > 0, key
            ref["grad." + key] = p.grad.detach().float().contiguous()
    save_file(ref, os.path.join(folder, "reference.safetensors"), metadata={"format": "pt"})
    qfile = {}
    for wname, (q, scale) in quantized.items():
        qfile["q." + wname] = q.to(torch.int32).contiguous()
        qfile["scale." + wname] = scale.float().contiguous()
    save_file(qfile, os.path.join(folder, "quantized.safetensors"), metadata={"format": "pt"})
    meta = versions()
    meta.update(case=name, base_model=base_dir, lora_config=lora_kwargs, compressed_tensors=compressed_tensors.__version__,
                reference="float64 on the dequantized (q * scale, f32) projections and the f32 adapter, lora_dropout 0")
    with open(os.path.join(folder, "meta.json"), "w") as f:
        json.dump(meta, f, indent=2, sort_keys=True)
        f.write("\n")
    print(f"{name}: {len(saved)} adapter tensors, {len(quantized)} quantized weights, loss {out.loss.item():.6f}")


def main():
    if os.environ.get("PYTHONHASHSEED") != "0":
        os.environ["PYTHONHASHSEED"] = "0"
        os.execv(sys.executable, [sys.executable] + sys.argv)
    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(1)
    for name in CASES:
        make_case(name)
    return 0


if __name__ == "__main__":
    sys.exit(main())
