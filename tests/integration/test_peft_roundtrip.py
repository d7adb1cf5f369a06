"""PEFT adapter files both ways, with the real peft:

1. peft -> ctune: an adapter made and saved by peft's save_pretrained (random B, so it changes
   the output) is read by ctune (`ctune export --adapter DIR --format hf` merges it into the base);
   transformers' logits on that merged folder equal PeftModel's logits on base + adapter.
2. ctune -> peft: a short LoRA run of ctune (recipes/lora_intent_zh.yaml on the qwen2 fixture,
   every linear adapted, lm_head in modules_to_save) writes adapter/; PeftModel.from_pretrained
   loads it with no warning about missing or unexpected keys, and its logits equal transformers'
   logits on the run's merged model/ folder.

3. and 4. the same both ways with DoRA (use_dora): peft's adapter with its magnitude vectors
   (scaled away from their initial row norms) merged by ctune; a ctune DoRA run's adapter loaded
   by peft.

Logits are compared norm-wise within 1e-5 on random token ids.
"""
import os
import subprocess
import sys
import warnings

import torch
import transformers
from peft import LoraConfig, PeftModel, get_peft_model

ROOT = os.environ.get("CT_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "..", ".."))
CTUNE = os.environ["CTUNE"]
TMP = os.environ.get("CT_INTEGRATION_TMP", "/tmp")
BASE = os.path.join(ROOT, "tests", "fixtures", "models", "qwen2")
ALLOWED = ("ensure_weight_tying",)  # peft's note that a tied lm_head in modules_to_save is trained untied


def load(folder):
    return transformers.AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32,
                                                             attn_implementation="eager").eval()


def logits(model, ids):
    with torch.no_grad():
        return model(input_ids=ids).logits


def rel(a, b):
    return ((a - b).norm() / b.norm()).item()


def bad_warnings(caught):
    return [f"{w.category.__name__}: {w.message}" for w in caught
            if not issubclass(w.category, (FutureWarning, DeprecationWarning))
            and not any(a in str(w.message) for a in ALLOWED)]


def ctune(*args):
    run = subprocess.run([CTUNE, *args], cwd=ROOT, capture_output=True, text=True)
    if run.returncode != 0:
        print(run.stdout[-2000:], run.stderr[-2000:])
        raise SystemExit(f"ctune {' '.join(args[:2])} failed with exit {run.returncode}")
    return run


def peft_to_ctune(ids, dora=False):
    torch.manual_seed(5)
    model = get_peft_model(load(BASE), LoraConfig(r=4, lora_alpha=12, target_modules=["q_proj", "v_proj", "down_proj"],
                                                   layers_to_transform=[1], task_type="CAUSAL_LM", use_dora=dora))
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "lora_B" in name:
                torch.nn.init.normal_(p, std=0.05)
            elif "lora_magnitude_vector" in name:
                p.mul_(1 + 0.1 * torch.randn(p.shape))
    tag = "dora" if dora else "lora"
    folder = os.path.join(TMP, f"from_peft_{tag}")
    model.save_pretrained(folder)
    want = logits(model.eval(), ids)
    merged = os.path.join(TMP, f"from_peft_{tag}_merged")
    ctune("export", "--model", BASE, "--adapter", folder, "--format", "hf", "--out", merged)
    err = rel(logits(load(merged), ids), want)
    print(f"peft -> ctune ({tag}): merged by ctune vs PeftModel, logits rel. error {err:.3g}")
    return err < 1e-5


def ctune_to_peft(ids, dora=False):
    tag = "dora" if dora else "lora"
    run = os.path.join(TMP, f"{tag}_run")
    ctune("train", "recipes/lora_intent_zh.yaml", f"model.path={BASE}", f"tokenizer.path={BASE}",
          "data.max_examples=40", "data.val=", "train.max_steps=6", "lora.r=4", "lora.alpha=8",
          "lora.target_modules=all-linear", "lora.modules_to_save=lm_head", "optimizer.lr=2e-2",
          f"lora.use_dora={'true' if dora else 'false'}", f"output_dir={run}")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = PeftModel.from_pretrained(load(BASE), os.path.join(run, "adapter")).eval()
    problems = bad_warnings(caught)
    err = rel(logits(model, ids), logits(load(os.path.join(run, "model")), ids))
    change = rel(logits(load(BASE), ids), logits(model, ids))
    print(f"ctune -> peft ({tag}): PeftModel on ctune's adapter vs ctune's merged model, logits rel. error {err:.3g} "
          f"(the adapter moved the logits by {change:.3g})")
    for p in problems:
        print(f"  warning: {p}")
    return err < 1e-5 and change > 1e-3 and not problems


def main():
    torch.manual_seed(0)
    ids = torch.randint(0, 300, (2, 13))
    ok = [peft_to_ctune(ids), ctune_to_peft(ids), peft_to_ctune(ids, dora=True), ctune_to_peft(ids, dora=True)]
    print("all checks passed" if all(ok) else "FAILED")
    return 0 if all(ok) else 1


if __name__ == "__main__":
    sys.exit(main())
