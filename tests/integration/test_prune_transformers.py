"""ctune prune's folders in transformers: an L1-pruned folder loads with exactly the zeros ctune
reports, and a channel-pruned MLP cut out with --compact loads as a valid smaller model that
computes the same logits as the masked (uncompacted) one. Needs CTUNE and CT_SOURCE_DIR."""
import json
import os
import subprocess
import sys

import torch
import transformers

ctune = os.environ["CTUNE"]
root = os.environ["CT_SOURCE_DIR"]
tmp = os.environ["CT_INTEGRATION_TMP"]
model = os.path.join(root, "tests/fixtures/models/qwen2")


def prune(out, *flags):
    subprocess.run([ctune, "prune", "--model", model, "--out", out, *flags], check=True, stdout=subprocess.DEVNULL)
    return transformers.AutoModelForCausalLM.from_pretrained(out).eval()


l1 = prune(os.path.join(tmp, "l1"), "--method", "l1_unstructured", "--amount", "0.3")
report = json.load(open(os.path.join(tmp, "l1", "prune_report.json")))
for name, param in l1.named_parameters():
    if name in report["tensors"]:
        zeros = int((param == 0).sum()) / param.numel()
        assert abs(zeros - report["tensors"][name]) < 1e-9, f"{name}: {zeros} zeros, the report says {report['tensors'][name]}"
checked = len(report["tensors"])
assert checked == 21, f"{checked} pruned tensors in the report"

flags = ("--method", "ln_structured", "--n", "2", "--mlp-channels", "--amount", "0.25")
masked = prune(os.path.join(tmp, "masked"), *flags)
small = prune(os.path.join(tmp, "small"), *flags, "--compact")
assert small.config.intermediate_size == 72, small.config.intermediate_size
assert small.model.layers[0].mlp.down_proj.weight.shape == (48, 72)
ids = torch.tensor([[3, 17, 42, 99, 5, 250]])
with torch.no_grad():
    a, b = masked(ids).logits, small(ids).logits
err = (a - b).abs().max().item()
assert err < 1e-4, f"compact logits differ by {err}"
print(f"l1 zeros match the report in {checked} tensors; compact model (intermediate 96 -> 72) logits within {err:.2e}")
sys.exit(0)
