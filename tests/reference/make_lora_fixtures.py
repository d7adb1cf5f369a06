"""Writes tests/fixtures/lora/<case>/: PEFT LoRA adapters on the tiny model fixtures of
tests/fixtures/models/ (made by make_model_fixtures.py), each with what peft computes for them.

Per case:
    adapter_config.json, adapter_model.safetensors   exactly as peft's save_pretrained writes them
                                                     (its README.md model card is dropped)
    reference.safetensors   input_ids [2, T] i32, labels [2, T] i32 (some -100), logits
                            [2, T, vocab] f32, loss [1] f32 (transformers' shifted-label mean), and
                            grad.<key> f32 for every tensor of adapter_model.safetensors, under the
                            same key (lora_A [r, in], lora_B [out, r], modules_to_save copies)
    meta.json               versions of peft, torch, transformers, safetensors, numpy; the case

The cases:
    llama_qv               r 4, alpha 8, q_proj + v_proj, every layer
    qwen2_rslora           use_rslora (scale alpha / sqrt(r)), r 8, alpha 16, q/k/o/down_proj,
                           layers_to_transform [0, 2] (layer 1 has no adapter)
    qwen3_all_linear       target_modules "all-linear" (every nn.Linear but the output layer lm_head)
    llama_dora_qv          DoRA (use_dora): r 4, alpha 8, q_proj + v_proj
    qwen2_dora_rslora      DoRA + rsLoRA, r 8, alpha 16, q/k/o/down_proj of layers 0 and 2 (qwen2's
                           q/k projections have a bias, which DoRA's scaling must leave out)
    qwen3_dora_all_linear  DoRA on every linear but lm_head
    qwen2_modules_to_save  q_proj + v_proj, modules_to_save ["lm_head"]. qwen2 ties lm_head to
                           embed_tokens: peft trains an untied copy of lm_head (saved as
                           base_model.model.lm_head.weight) while embed_tokens keeps the base
                           weights; peft warns that ensure_weight_tying is not set, as it does for
                           any user who does this on a tied model (Qwen2.5-0.5B, ...).

lora_B starts at zero in PEFT, which makes lora_A's gradient zero; here every lora_B is set to
N(0, 0.05^2) from a seeded generator after get_peft_model, and the modules_to_save copy is
perturbed by N(0, 0.02^2), so every gradient is non-trivial. A DoRA magnitude starts as the row
norm of W (B = 0 at creation); it is then multiplied by 1 + N(0, 0.1^2), so m / ||W + s·B·A|| is
not 1 and the magnitude's gradient and the direction both matter. lora_dropout is 0.

The adapters are created and saved in f32 (the dtype of a training run). The reference runs on an
f64 copy of the same model and adapter (the f32 values widened exactly), so it is the exact math
of the stored values; it is stored in f32, like the model fixtures' references.

Made with: torch 2.15.0, transformers 5.25.0, peft 0.21.2, safetensors 0.8.0, numpy 2.4.6
(pip install -r tests/integration/requirements.txt); meta.json records them. Run from the
repository root (the output is the same, byte for byte, on every run):

    python3 tests/reference/make_lora_fixtures.py
"""
import copy
import json
import os
import shutil
import sys

import numpy as np
import peft
import safetensors
import torch
import transformers
from peft import LoraConfig, get_peft_model
from safetensors.torch import load_file, save_file

MODELS = "tests/fixtures/models"
OUT = "tests/fixtures/lora"

# name -> (model fixture, LoraConfig kwargs, seed)
CASES = {
    "llama_qv": ("llama", dict(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"]), 2000),
    "qwen2_rslora": ("qwen2", dict(r=8, lora_alpha=16, use_rslora=True,
                                   target_modules=["q_proj", "k_proj", "o_proj", "down_proj"],
                                   layers_to_transform=[0, 2]), 2001),
    "qwen3_all_linear": ("qwen3", dict(r=4, lora_alpha=8, target_modules="all-linear"), 2002),
    "qwen2_modules_to_save": ("qwen2", dict(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"],
                                            modules_to_save=["lm_head"]), 2003),
    "llama_dora_qv": ("llama", dict(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"], use_dora=True), 2004),
    "qwen2_dora_rslora": ("qwen2", dict(r=8, lora_alpha=16, use_rslora=True, use_dora=True,
                                        target_modules=["q_proj", "k_proj", "o_proj", "down_proj"],
                                        layers_to_transform=[0, 2]), 2005),
    "qwen3_dora_all_linear": ("qwen3", dict(r=4, lora_alpha=8, target_modules="all-linear", use_dora=True), 2006),
}


def versions():
    return {"peft": peft.__version__, "torch": torch.__version__,
            "transformers": transformers.__version__, "safetensors": safetensors.__version__,
            "numpy": np.__version__}


def perturb(model, gen):
    """Non-zero lora_B (so lora_A's gradient is not zero) and a changed modules_to_save copy."""
    with torch.no_grad():
        for name, p in model.named_parameters():
            if ".lora_B." in name:
                p.copy_(0.05 * torch.randn(p.shape, generator=gen, dtype=torch.float64))
            elif ".modules_to_save." in name:
                p.add_(0.02 * torch.randn(p.shape, generator=gen, dtype=torch.float64))
            elif ".lora_magnitude_vector." in name:
                p.mul_(1 + 0.1 * torch.randn(p.shape, generator=gen, dtype=torch.float64))


def saved_key(param_name):
    """The key save_pretrained gives a trainable parameter: the adapter name is dropped, and a
    modules_to_save copy is stored under the wrapped module's own name; a DoRA magnitude
    (lora_magnitude_vector.default.weight) is stored without ".weight"."""
    key = param_name.replace(".default.", ".").replace(".modules_to_save.", ".")
    if key.endswith(".lora_magnitude_vector.weight"):
        key = key[: -len(".weight")]
    return key


def make_case(name):
    base, lora_kwargs, seed = CASES[name]
    base_dir = os.path.join(MODELS, base)
    ref_base = load_file(os.path.join(base_dir, "reference.safetensors"))
    input_ids = ref_base["input_ids"].long()
    labels = ref_base["labels"].long()

    torch.manual_seed(seed)  # peft's Kaiming-uniform init of lora_A draws from the global generator
    gen = torch.Generator().manual_seed(seed)
    model = transformers.AutoModelForCausalLM.from_pretrained(base_dir, dtype=torch.float32,
                                                              attn_implementation="eager")
    config = LoraConfig(lora_dropout=0.0, task_type="CAUSAL_LM", **lora_kwargs)
    pmodel = get_peft_model(model, config)
    perturb(pmodel, gen)

    folder = os.path.join(OUT, name)
    shutil.rmtree(folder, ignore_errors=True)
    os.makedirs(folder)
    pmodel.save_pretrained(folder)
    readme = os.path.join(folder, "README.md")
    if os.path.exists(readme):
        os.remove(readme)  # a model card template; not part of the format

    ref64 = copy.deepcopy(pmodel).double()
    ref64.train()  # dropout is 0 everywhere; train mode only matters for gradients
    out = ref64(input_ids=input_ids, labels=labels)
    out.loss.backward()

    saved = load_file(os.path.join(folder, "adapter_model.safetensors"))
    ref = {
        "input_ids": input_ids.to(torch.int32).contiguous(),
        "labels": labels.to(torch.int32).contiguous(),
        "logits": out.logits.detach().float().contiguous(),
        "loss": out.loss.detach().float().reshape(1).contiguous(),
    }
    for pname, p in ref64.named_parameters():
        if not p.requires_grad:
            continue
        key = saved_key(pname)
        assert key in saved, f"{key} (from {pname}) is not in adapter_model.safetensors"
        assert torch.equal(saved[key], p.detach().float()), f"{key} differs from the saved tensor"
        grad = p.grad.detach()
        assert grad.norm() > 0, f"{key}: zero gradient"
        ref["grad." + key] = grad.float().contiguous()
    missing = set(saved) - {k[len("grad."):] for k in ref if k.startswith("grad.")}
    assert not missing, f"saved tensors without a gradient: {sorted(missing)}"

    meta = versions()
    meta["case"] = name
    meta["base_model"] = base_dir
    meta["lora_config"] = {k: v for k, v in lora_kwargs.items()}
    meta["reference"] = "computed in float64 on the f32 adapter and model, stored as f32, lora_dropout 0"
    # The versions go to meta.json: safetensors writes a metadata map in a random order.
    save_file(ref, os.path.join(folder, "reference.safetensors"), metadata={"format": "pt"})
    with open(os.path.join(folder, "meta.json"), "w") as f:
        json.dump(meta, f, indent=2, sort_keys=True)
        f.write("\n")
    n = sum(v.numel() for v in saved.values())
    print(f"{name}: {len(saved)} tensors, {n} values, loss {out.loss.item():.6f}")


def main():
    # peft saves target_modules="all-linear" as the list of module names it matched, built from a
    # set: string hashing must be fixed for the file to be the same on every run.
    if os.environ.get("PYTHONHASHSEED") != "0":
        os.environ["PYTHONHASHSEED"] = "0"
        os.execv(sys.executable, [sys.executable] + sys.argv)
    os.makedirs(OUT, exist_ok=True)
    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(1)  # the same reduction order, so the same bits, on every machine
    for name in CASES:
        make_case(name)
    return 0


if __name__ == "__main__":
    sys.exit(main())
