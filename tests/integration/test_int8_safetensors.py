"""`ctune export --format int8-safetensors` against the compressed-tensors package itself, for the
llama, mistral, qwen2 and qwen3 fixtures (tied and untied lm_head, q/k/v biases, q/k norms):

1. compressed-tensors writes its own folder for the same f32 weights: the fixture loaded by
   transformers, the scheme (weight-only int, 8 bits, symmetric, channel; lm_head ignored) applied
   with apply_quantization_config, each scale from the package's calculate_qparams on the rows'
   min and max, then the package's ModelCompressor (compress_model, save_pretrained,
   update_config), as llm-compressor saves a model. ctune's model.safetensors has exactly its
   keys, dtypes and shapes and bit-identical values, and config.json the same quantization_config.
2. transformers loads ctune's folder through compressed-tensors on the CPU with no missing or
   unexpected key, and its logits equal (rel. 1e-6) those of the f32 fixture whose projections are
   replaced by q * scale unpacked here with numpy from ctune's file (the dequantized model).
"""
import json
import os
import subprocess

import compressed_tensors
import numpy as np
import torch
import transformers
from compressed_tensors.compressors.model_compressors.model_compressor import ModelCompressor
from compressed_tensors.quantization import QuantizationConfig, QuantizationStatus, apply_quantization_config
from compressed_tensors.quantization.utils.helpers import calculate_qparams
from safetensors import safe_open

ROOT = os.environ.get("CT_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "..", ".."))
CTUNE = os.environ["CTUNE"]
TMP = os.environ.get("CT_INTEGRATION_TMP", "/tmp")
ARCHS = ("llama", "mistral", "qwen2", "qwen3")
SCHEME = {"targets": ["Linear"],
          "weights": {"num_bits": 8, "type": "int", "symmetric": True, "strategy": "channel", "dynamic": False}}


def load_f32(folder):
    return transformers.AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32,
                                                             attn_implementation="eager").eval()


def tensors(folder):
    out = {}
    for name in sorted(os.listdir(folder)):
        if name.endswith(".safetensors"):
            with safe_open(os.path.join(folder, name), "pt") as f:
                out.update({k: f.get_tensor(k) for k in f.keys()})
    return out


def compressed_tensors_folder(fixture, out):
    """What compressed-tensors writes for the fixture's f32 weights."""
    model = load_f32(fixture)
    config = QuantizationConfig(config_groups={"group_0": SCHEME}, ignore=["lm_head"], format="pack-quantized")
    apply_quantization_config(model, config)
    for module in model.modules():
        if getattr(module, "quantization_scheme", None) is None:
            continue
        w = module.weight.data
        scale, zero = calculate_qparams(w.amin(dim=1, keepdim=True), w.amax(dim=1, keepdim=True),
                                        module.quantization_scheme.weights)
        module.weight_scale.data.copy_(scale)
        if hasattr(module, "weight_zero_point"):
            module.weight_zero_point.data.copy_(zero)
        module.quantization_status = QuantizationStatus.FROZEN
    compressor = ModelCompressor.from_pretrained_model(model)
    compressor.compress_model(model)
    model.save_pretrained(out)
    compressor.update_config(out)


def compare_files(ours, theirs):
    a, b = tensors(ours), tensors(theirs)
    problems = [f"only in ctune's: {k}" for k in sorted(a.keys() - b.keys())]
    problems += [f"only in compressed-tensors': {k}" for k in sorted(b.keys() - a.keys())]
    for k in sorted(a.keys() & b.keys()):
        if a[k].dtype != b[k].dtype or a[k].shape != b[k].shape:
            problems.append(f"{k}: {a[k].dtype} {tuple(a[k].shape)} vs {b[k].dtype} {tuple(b[k].shape)}")
        elif not torch.equal(a[k], b[k]):
            problems.append(f"{k}: values differ ({(a[k] != b[k]).sum().item()} elements)")
    qa = json.load(open(os.path.join(ours, "config.json")))["quantization_config"]
    qb = json.load(open(os.path.join(theirs, "config.json")))["quantization_config"]
    if qa != qb:
        problems.append(f"quantization_config differs:\n  ctune {json.dumps(qa, sort_keys=True)}\n"
                        f"  compressed-tensors {json.dumps(qb, sort_keys=True)}")
    return problems, sum(k.endswith("weight_packed") for k in a)


def dequantized_model(fixture, ours):
    """The f32 fixture with every projection replaced by q * scale, unpacked with numpy."""
    model = load_f32(fixture)
    files = tensors(ours)
    params = dict(model.named_parameters())
    for key, packed in files.items():
        if not key.endswith(".weight_packed"):
            continue
        base = key[: -len("_packed")]
        rows, cols = files[base + "_shape"].tolist()
        q = packed.numpy().view(np.uint8).reshape(rows, -1)[:, :cols].astype(np.int32) - 128
        w = torch.from_numpy(q.astype(np.float32)) * files[base + "_scale"]
        params[base].data.copy_(w)
    return model


def check(arch, ids):
    fixture = os.path.join(ROOT, "tests", "fixtures", "models", arch)
    ours, theirs = os.path.join(TMP, f"ctune_{arch}"), os.path.join(TMP, f"ct_{arch}")
    run = subprocess.run([CTUNE, "export", "--model", fixture, "--format", "int8-safetensors", "--out", ours],
                         cwd=ROOT, capture_output=True, text=True)
    if run.returncode != 0:
        print(run.stdout[-2000:], run.stderr[-2000:])
        return False
    compressed_tensors_folder(fixture, theirs)
    problems, n_packed = compare_files(ours, theirs)
    loaded, info = transformers.AutoModelForCausalLM.from_pretrained(ours, dtype=torch.float32,
                                                                     attn_implementation="eager",
                                                                     output_loading_info=True)
    missing = [k for k in info["missing_keys"] if "lm_head" not in k or not loaded.config.tie_word_embeddings]
    problems += [f"transformers: missing {k}" for k in missing] + [f"transformers: unexpected {k}"
                                                                    for k in info["unexpected_keys"]]
    with torch.no_grad():
        got = loaded.eval()(input_ids=ids).logits
        want = dequantized_model(fixture, ours)(input_ids=ids).logits
        f32 = load_f32(fixture)(input_ids=ids).logits
    err = ((got - want).norm() / want.norm()).item()
    # the comparison can tell: quantization moves the logits away from the f32 model's
    moved = ((f32 - want).norm() / want.norm()).item()
    if not moved > 1e-5:
        problems.append(f"the dequantized model's logits equal the f32 model's (rel. {moved:.3g}): nothing quantized?")
    if not err < 1e-6:
        problems.append(f"logits through compressed-tensors vs the dequantized model: rel. error {err:.3g}")
    for p in problems:
        print(f"{arch}: {p}")
    print(f"{arch}: {n_packed} packed projections; keys, dtypes, shapes, values and quantization_config equal to "
          f"compressed-tensors {compressed_tensors.__version__}'s: {not problems}; logits rel. error {err:.3g} (f32 vs INT8: {moved:.3g})")
    return not problems and n_packed > 0


def main():
    torch.manual_seed(3)
    ids = torch.randint(0, 290, (2, 11))
    ok = [check(arch, ids) for arch in ARCHS]
    raise SystemExit(0 if all(ok) else 1)


if __name__ == "__main__":
    main()
