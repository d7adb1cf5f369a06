"""Loads a .safetensors file (e.g. /tmp/ctune_st_roundtrip.safetensors, written by
tests/test_safetensors) with the reference safetensors library and prints each tensor's dtype,
shape and sum, to confirm ctune's writer produces files other tools accept.

    python3 tests/reference/check_safetensors_roundtrip.py /tmp/ctune_st_roundtrip.safetensors
"""
import sys

import numpy as np
from safetensors import safe_open


def main(path):
    with safe_open(path, framework="numpy") as f:
        print("metadata", f.metadata())
        for name in f.keys():
            # Read raw bytes through the slice API so bf16 works without torch.
            sl = f.get_slice(name)
            dtype, shape = sl.get_dtype(), sl.get_shape()
            if dtype == "BF16":
                print(f"{name} {dtype} {shape} (bf16: shape only; numpy has no bfloat16)")
                continue
            t = f.get_tensor(name)
            print(f"{name} {dtype} {list(t.shape)} sum={float(np.asarray(t, dtype=np.float64).sum()):.9g}")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: check_safetensors_roundtrip.py FILE.safetensors")
    main(sys.argv[1])
