"""Shared by the llama.cpp integration tests (test_llama_cpp_*.py, test_llama_server.py).

run.sh builds llama.cpp (build_llama_cpp.sh) and passes its build folder in CT_LLAMA_CPP, and
the trained intent model (train_intent_model.sh) in CT_INTENT_MODEL; both are required: a test
without them fails, it does not skip.
"""
import json
import os
import subprocess

import numpy as np

ROOT = os.environ.get("CT_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "..", ".."))
CTUNE = os.environ["CTUNE"]
TMP = os.environ.get("CT_INTEGRATION_TMP", "/tmp")
FIXTURES = os.path.join(ROOT, "tests", "fixtures", "models")


def required_env(name, what):
    value = os.environ.get(name)
    if not value or not os.path.exists(value):
        raise SystemExit(f"{name} is not set or missing ({value!r}): {what}; run the test through "
                         f"tests/integration/run.sh, which provides it")
    return value


def llama_bin(name):
    build = required_env("CT_LLAMA_CPP", "the llama.cpp build folder of build_llama_cpp.sh")
    path = os.path.join(build, "bin", name)
    if not os.access(path, os.X_OK):
        raise SystemExit(f"{path} missing: rerun tests/integration/build_llama_cpp.sh")
    return path


def intent_model():
    return required_env("CT_INTENT_MODEL", "a trained intent run or model folder (train_intent_model.sh)")


def run(cmd, **kw):
    done = subprocess.run(cmd, capture_output=True, text=True, **kw)
    if done.returncode != 0:
        print(done.stdout[-3000:], done.stderr[-3000:])
        raise SystemExit(f"{os.path.basename(cmd[0])} {' '.join(cmd[1:3])} ... failed with exit {done.returncode}")
    return done.stdout


def ctune(*args):
    return run([CTUNE, *args], cwd=ROOT)


def export_gguf(model, gtype, out, adapter=None):
    args = ["export", "--model", model, "--format", "gguf", "--type", gtype, "--out", out]
    if adapter:
        args += ["--adapter", adapter]
    ctune(*args)
    return out


def export_gguf_lora(model, adapter, out):
    ctune("export", "--model", model, "--adapter", adapter, "--format", "gguf-lora", "--out", out)
    return out


def write_ids(path, seqs):
    with open(path, "w") as f:
        for s in seqs:
            f.write(" ".join(str(int(i)) for i in s) + "\n")
    return path


def read_logits(path, shapes):
    """The raw f32 file of `ctune logits` / `llama-probe --logits`, split into [T, V] arrays
    by the "T V" lines the program printed."""
    flat = np.fromfile(path, dtype="<f4")
    out, at = [], 0
    for t, v in shapes:
        out.append(flat[at:at + t * v].reshape(t, v))
        at += t * v
    if at != flat.size:
        raise SystemExit(f"{path}: {flat.size} floats, the printed shapes need {at}")
    return out


def shapes_of(stdout):
    return [tuple(int(x) for x in line.split()) for line in stdout.splitlines() if line.strip()]


def ctune_logits(model, seqs, name, adapter=None):
    ids = write_ids(os.path.join(TMP, f"{name}.ids"), seqs)
    out = os.path.join(TMP, f"{name}.ctune.bin")
    args = ["logits", "--model", model, "--ids-file", ids, "--out", out]
    if adapter:
        args += ["--adapter", adapter]
    return read_logits(out, shapes_of(ctune(*args)))


def llama_logits(gguf, seqs, name, lora=None):
    ids = write_ids(os.path.join(TMP, f"{name}.ids"), seqs)
    out = os.path.join(TMP, f"{name}.llama.bin")
    cmd = [llama_bin("llama-probe"), "--model", gguf, "--logits", ids, "--out", out]
    if lora:
        cmd += ["--lora", lora]
    return read_logits(out, shapes_of(run(cmd)))


def ctune_tokenize(tokenizer, text, name):
    path = os.path.join(TMP, f"{name}.txt")
    with open(path, "wb") as f:
        f.write(text.encode("utf-8"))
    return [int(x) for x in ctune("tokenize", "--tokenizer", tokenizer, "--file", path).split()]


def llama_tokenize(gguf, text, name):
    path = os.path.join(TMP, f"{name}.txt")
    with open(path, "wb") as f:
        f.write(text.encode("utf-8"))
    return [int(x) for x in run([llama_bin("llama-probe"), "--model", gguf, "--tokenize", path]).split()]


def model_folder(model):
    """A run folder's model/ (what ctune trained), or the folder itself."""
    sub = os.path.join(model, "model")
    return sub if os.path.isfile(os.path.join(sub, "config.json")) else model


def test_split(limit=None):
    rows = []
    with open(os.path.join(ROOT, "datasets", "data", "intent_test.jsonl"), encoding="utf-8") as f:
        for line in f:
            if line.strip():
                rows.append(json.loads(line))
    return rows[:limit] if limit else rows


def labels(model):
    with open(os.path.join(model_folder(model), "labels.json"), encoding="utf-8") as f:
        return json.load(f)


def log_softmax(x):
    x = x.astype(np.float64)
    m = x.max(axis=-1, keepdims=True)
    return x - m - np.log(np.exp(x - m).sum(axis=-1, keepdims=True))
