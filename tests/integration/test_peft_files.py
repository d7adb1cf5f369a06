"""PEFT adapter folders read by peft itself: every tests/fixtures/lora/<case>/ loads with
PeftModel.from_pretrained on its base model (tests/fixtures/models/...) with no warning (missing
or unexpected adapter keys, config fields peft does not know, ...), its tensors are exactly the
adapter peft builds from adapter_config.json (no key missing, none unexpected, every shape equal),
and the logits equal the fixture's reference.

When ctune writes PEFT folders (`ctune export --format peft`), the same check runs on its output;
when it reads them (`model.adapter`), its logits are compared with these references.
"""
import json
import os
import sys
import warnings

import torch
import transformers
from peft import PeftModel
from peft.utils import get_peft_model_state_dict
from safetensors.torch import load_file

ROOT = os.environ.get("CT_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "..", ".."))
LORA = os.path.join(ROOT, "tests", "fixtures", "lora")

# Warnings that say nothing about the adapter file: peft's note that a tied lm_head in
# modules_to_save is trained untied (the qwen2_modules_to_save case does that on purpose), and
# transformers' deprecation notices.
ALLOWED = ("ensure_weight_tying",)


def unexpected_warnings(caught):
    bad = []
    for w in caught:
        if issubclass(w.category, (FutureWarning, DeprecationWarning)):
            continue
        if any(a in str(w.message) for a in ALLOWED):
            continue
        bad.append(f"{w.category.__name__}: {w.message}")
    return bad


def dequantize_base(model, folder):
    """A case on an INT8 base (tests/reference/make_lora_int8_fixtures.py) has its reference on the
    dequantized projections q * scale: put them in place of the f32 ones, as ctune's
    model.base_dtype=int8 computes with them."""
    path = os.path.join(folder, "quantized.safetensors")
    if not os.path.exists(path):
        return
    quantized = load_file(path)
    params = dict(model.named_parameters())
    with torch.no_grad():
        for key, q in quantized.items():
            if key.startswith("q."):
                name = key[2:]
                params[name].copy_(q.float() * quantized["scale." + name])


def check_case(case):
    folder = os.path.join(LORA, case)
    meta = json.load(open(os.path.join(folder, "meta.json")))
    base = os.path.join(ROOT, meta["base_model"])
    ref = load_file(os.path.join(folder, "reference.safetensors"))
    model = transformers.AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32,
                                                              attn_implementation="eager")
    dequantize_base(model, folder)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        pmodel = PeftModel.from_pretrained(model, folder)
    problems = unexpected_warnings(caught)

    saved = load_file(os.path.join(folder, "adapter_model.safetensors"))
    expected = get_peft_model_state_dict(pmodel)
    missing = sorted(set(expected) - set(saved))
    extra = sorted(set(saved) - set(expected))
    if missing:
        problems.append(f"missing adapter keys: {missing[:5]}")
    if extra:
        problems.append(f"unexpected keys: {extra[:5]}")
    for key in sorted(set(saved) & set(expected)):
        if tuple(saved[key].shape) != tuple(expected[key].shape):
            problems.append(f"{key}: file {tuple(saved[key].shape)}, model {tuple(expected[key].shape)}")
        elif not torch.equal(saved[key], expected[key].float()):
            problems.append(f"{key}: loaded values differ from the file's")

    pmodel.eval()
    with torch.no_grad():
        out = pmodel(input_ids=ref["input_ids"].long(), labels=ref["labels"].long())
    err = ((out.logits - ref["logits"]).norm() / ref["logits"].norm()).item()
    loss_err = abs(out.loss.item() - ref["loss"].item()) / abs(ref["loss"].item())
    if not (err < 1e-5 and loss_err < 1e-5):
        problems.append(f"logits rel. error {err:.3g}, loss rel. error {loss_err:.3g} (limit 1e-5)")
    status = "ok" if not problems else "FAILED"
    print(f"{case}: {len(saved)} tensors, logits rel. error {err:.3g}, loss rel. error {loss_err:.3g}: {status}")
    for p in problems:
        print(f"  {case}: {p}")
    return not problems


def main():
    torch.set_num_threads(1)
    cases = sorted(d for d in os.listdir(LORA) if os.path.isdir(os.path.join(LORA, d)))
    if not cases:
        print(f"no fixtures in {LORA}")
        return 1
    ok = [check_case(c) for c in cases]
    return 0 if all(ok) else 1


if __name__ == "__main__":
    sys.exit(main())
