"""Writes tests/fixtures/quantize/int8_rows.safetensors: f32 weights and the INT8 values, scales and
packed words that the compressed-tensors package computes for them under a weight-only, 8-bit,
symmetric, per-channel ("channel" strategy) integer scheme. tests/test_quantize.c checks ctune's
quantizer against it.

The scale comes from the package's calculate_qparams on each row's min and max (what a min-max
observer hands it), the integers from its quantize(), the packed words from the pack-quantized
compressor itself, so nothing here restates the formula.

Made with: compressed-tensors 0.20.1, torch 2.15.0, safetensors 0.8.0. Run from the repository root:
    python3 tests/reference/make_int8_fixtures.py
"""
import os

import compressed_tensors
import torch
from compressed_tensors.compressors.pack_quantized.base import PackedQuantizationCompressor
from compressed_tensors.quantization import QuantizationArgs, QuantizationScheme
from compressed_tensors.quantization.lifecycle.forward import quantize
from compressed_tensors.quantization.utils.helpers import calculate_qparams
from safetensors.torch import save_file

OUT = "tests/fixtures/quantize"
ARGS = QuantizationArgs(num_bits=8, type="int", symmetric=True, strategy="channel", dynamic=False)


def weights():
    g = torch.Generator().manual_seed(20261207)
    rows, cols = 12, 67  # 67: not a multiple of 4, so the last packed word is partly padding
    w = torch.randn(rows, cols, generator=g, dtype=torch.float32) * 0.05
    w[1] = 0.0                                   # all zero: the scale becomes eps
    w[2] = torch.rand(cols, generator=g) * 3.0   # only positive
    w[3] = -torch.rand(cols, generator=g) * 0.01  # only negative: its minimum maps to -128
    # exact halves: absmax 31.875 gives scale 0.25, so k*0.125 lands on x.5 (ties to even)
    w[4] = (torch.arange(cols, dtype=torch.float32) - 33) * 0.125
    w[4, 0] = 31.875
    w[4, 1] = -31.875
    w[5, 7] = 1e-30                              # a tiny value beside normal ones
    w[6] *= 1e4
    return w


def main():
    w = weights()
    scale, zp = calculate_qparams(w.amin(dim=1, keepdim=True), w.amax(dim=1, keepdim=True), ARGS)
    q = quantize(x=w, scale=scale, zero_point=zp, args=ARGS, dtype=torch.int8)
    scheme = QuantizationScheme(targets=["Linear"], weights=ARGS)
    packed = PackedQuantizationCompressor.compress({"weight": w, "weight_scale": scale, "weight_zero_point": zp},
                                                   scheme)
    os.makedirs(OUT, exist_ok=True)
    save_file({"weight": w.contiguous(), "q": q.to(torch.int32).contiguous(), "scale": scale.contiguous(),
               "weight_packed": packed["weight_packed"].contiguous()},
              f"{OUT}/int8_rows.safetensors",
              metadata={"compressed_tensors": compressed_tensors.__version__, "torch": torch.__version__})
    print("scale shape", tuple(scale.shape), "q range", int(q.min()), int(q.max()),
          "packed", tuple(packed["weight_packed"].shape), sorted(packed.keys()))


if __name__ == "__main__":
    main()
