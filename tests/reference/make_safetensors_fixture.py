"""Writes tests/fixtures/safetensors/small.safetensors with the reference safetensors library, and
small.json with the values the C test expects (sums and sampled elements, as exact doubles).

Made with: safetensors 0.8.0, numpy 2.4.6 (pip install safetensors numpy). The versions are also
recorded in the file's __metadata__. Run from the repository root:
    python3 tests/reference/make_safetensors_fixture.py
"""
import json
import os

import numpy as np
import safetensors
from safetensors import TensorSpec, serialize_file

OUT = "tests/fixtures/safetensors"


def to_bf16_bits(x):
    """f32 -> bf16 bits, round to nearest even (numpy has no bfloat16)."""
    u = x.astype(np.float32).view(np.uint32).astype(np.uint64)
    u = (u + 0x7FFF + ((u >> 16) & 1)) >> 16
    return u.astype(np.uint16)


def bf16_bits_to_f32(b):
    return (b.astype(np.uint32) << 16).view(np.float32)


def main():
    rng = np.random.default_rng(20240607)
    tensors = {}
    keep_alive = []
    expected = []

    def add(name, dtype, shape):
        x = rng.standard_normal(shape).astype(np.float32)
        if dtype == "bfloat16":
            bits = to_bf16_bits(x)
            data, values = bits.tobytes(), bf16_bits_to_f32(bits)
        elif dtype == "float16":
            h = x.astype(np.float16)
            data, values = h.tobytes(), h.astype(np.float32)
        else:
            data, values = x.tobytes(), x
        buf = np.frombuffer(data, dtype=np.uint8).copy()
        keep_alive.append(buf)  # TensorSpec holds a raw pointer: the buffer must outlive the write
        tensors[name] = TensorSpec(dtype=dtype, shape=list(shape), data_ptr=buf.ctypes.data, data_len=buf.nbytes)
        flat = values.reshape(-1).astype(np.float64)
        picks = sorted({0, flat.size - 1, flat.size // 2, flat.size // 3, (7 * flat.size) // 11})
        expected.append({
            "name": name,
            "dtype": {"float32": "F32", "bfloat16": "BF16", "float16": "F16"}[dtype],
            "shape": list(shape),
            "sum": float(flat.sum()),
            "samples": [[int(i), float(flat[i])] for i in picks],
        })

    add("model.embed_tokens.weight", "float32", (37, 13))
    add("model.layers.0.self_attn.q_proj.weight", "bfloat16", (13, 29))
    add("model.layers.0.mlp.up_proj.weight", "float16", (7, 5, 3))
    add("model.norm.weight", "float32", (13,))
    add("lm_head.bias", "bfloat16", (1,))

    os.makedirs(OUT, exist_ok=True)
    metadata = {"format": "pt", "safetensors": safetensors.__version__, "numpy": np.__version__}
    serialize_file(tensors, os.path.join(OUT, "small.safetensors"), metadata=metadata)
    with open(os.path.join(OUT, "small.json"), "w") as f:
        json.dump({"metadata": metadata, "tensors": expected}, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
