"""Writes tests/fixtures/prune/reference.safetensors: weights and the masks that
torch.nn.utils.prune computes for them, for tests/test_prune.c.

Made with: torch 2.15.0 (CPU), safetensors. Run from the repository root:
    /work/venv-ref/bin/python tests/reference/make_prune_fixtures.py

Weights are random normals checked to hold no two equal magnitudes (and no two equal channel
norms), so topk has one answer and the masks do not depend on how torch breaks ties.
Tensors (all f32):
  w_a [13, 20], w_b [7, 20], w_c [2, 13]       the weights
  l1_frac                 l1_unstructured(w_a, amount=0.3)
  l1_count                l1_unstructured(w_a, amount=37)          (an int: a count)
  l1_half                 l1_unstructured(w_c, amount=0.25)        0.25 * 26 = 6.5 rounds to 6 (half to even)
  l1_twice                l1_unstructured(0.3) then l1_unstructured(0.2) on w_a (the second acts on what remains)
  global_a, global_b      global_unstructured([w_a, w_b], L1Unstructured, amount=0.4)
  global_twice_a/_b       global 0.3 then global 0.2
  ln{n}_dim{d}            ln_structured(w_a, amount=0.3, n, dim) for n = 1, 2 and dim = 0, 1
  ln2_dim0_twice          ln_structured(0.3, n=2, dim=0) then ln_structured(0.25, n=2, dim=0)
  nm_2_4, nm_1_4, nm_3_4  N:M on w_a rows (reference below: keep the N largest |w| of each group of M)
"""
import os

import torch
import torch.nn.utils.prune as prune
from safetensors.torch import save_file

OUT = "tests/fixtures/prune/reference.safetensors"


def no_ties(t):
    flat = t.abs().flatten()
    return flat.unique().numel() == flat.numel()


def weights(gen, rows, cols):
    while True:
        w = torch.randn(rows, cols, generator=gen)
        norms_ok = all(torch.linalg.vector_norm(w, ord=n, dim=d).unique().numel() == w.shape[1 - d]
                       for n in (1, 2) for d in (0, 1))
        if no_ties(w) and norms_ok:
            return w


def linear_with(w):
    lin = torch.nn.Linear(w.shape[1], w.shape[0], bias=False)
    with torch.no_grad():
        lin.weight.copy_(w)
    return lin


def mask_after(w, *steps):
    lin = linear_with(w)
    for fn, kwargs in steps:
        fn(lin, name="weight", **kwargs)
    return lin.weight_mask.clone()


def global_masks(ws, *amounts):
    lins = [linear_with(w) for w in ws]
    for amount in amounts:
        prune.global_unstructured([(l, "weight") for l in lins], pruning_method=prune.L1Unstructured,
                                  amount=amount)
    return [l.weight_mask.clone() for l in lins]


def nm_reference(w, n, m):
    """In every row, each group of m consecutive weights keeps its n largest magnitudes."""
    mask = torch.zeros_like(w)
    rows, cols = w.shape
    for r in range(rows):
        for g in range(0, cols, m):
            group = w[r, g:g + m].abs()
            keep = sorted(range(m), key=lambda i: -group[i].item())[:n]
            for i in keep:
                mask[r, g + i] = 1
    return mask


def main():
    gen = torch.Generator().manual_seed(17)
    w_a, w_b, w_c = weights(gen, 13, 20), weights(gen, 7, 20), weights(gen, 2, 13)
    out = {"w_a": w_a, "w_b": w_b, "w_c": w_c}
    l1 = prune.l1_unstructured
    out["l1_frac"] = mask_after(w_a, (l1, {"amount": 0.3}))
    out["l1_count"] = mask_after(w_a, (l1, {"amount": 37}))
    out["l1_half"] = mask_after(w_c, (l1, {"amount": 0.25}))
    assert int((out["l1_half"] == 0).sum()) == 6
    out["l1_twice"] = mask_after(w_a, (l1, {"amount": 0.3}), (l1, {"amount": 0.2}))
    out["global_a"], out["global_b"] = global_masks([w_a, w_b], 0.4)
    out["global_twice_a"], out["global_twice_b"] = global_masks([w_a, w_b], 0.3, 0.2)
    for n in (1, 2):
        for d in (0, 1):
            out[f"ln{n}_dim{d}"] = mask_after(w_a, (prune.ln_structured, {"amount": 0.3, "n": n, "dim": d}))
    out["ln2_dim0_twice"] = mask_after(w_a, (prune.ln_structured, {"amount": 0.3, "n": 2, "dim": 0}),
                                       (prune.ln_structured, {"amount": 0.25, "n": 2, "dim": 0}))
    for n in (1, 2, 3):
        out[f"nm_{n}_4"] = nm_reference(w_a, n, 4)
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    save_file({k: v.contiguous().float() for k, v in out.items()}, OUT)
    for k, v in out.items():
        if k.startswith("w_"):
            continue
        print(f"{k}: {int((v == 0).sum())} of {v.numel()} pruned")


if __name__ == "__main__":
    main()
