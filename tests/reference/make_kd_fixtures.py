"""Writes tests/fixtures/kd/reference.safetensors: the fused distillation loss of ctune's
ct_kd_loss computed by PyTorch, in float64, for tests/test_kd_loss.c.

Made with: torch 2.15.0 (CPU), safetensors. Run from the repository root:
    python3 tests/reference/make_kd_fixtures.py

For each divergence (forward_kl, reverse_kl, symmetric_kl) and temperature T (1, 2, 0.5):
student hidden hs [N, Hs] and head ws [Vs, Hs], teacher hidden ht [N, Ht] and head wt [Vt, Ht],
targets [N] with -100 on ignored rows. Only the first V columns count (the heads' extra rows are
padding). With s = hs ws[:V]^T, t = ht wt[:V]^T and the rows whose target is not -100:
    loss = sum over rows of (1 - alpha) * CE(s, y) + alpha * T^2 * KL
where KL comes from torch.nn.functional.kl_div on log_softmax(x / T) (log_target=True,
reduction="sum"): forward = kl_div(log p_s, log p_t) = KL(p_t || p_s), reverse = kl_div(log p_t,
log p_s) = KL(p_s || p_t), symmetric = their mean. Gradients by autograd: of hs, ws and of the
student logits s. Tensor names: <case>.<what>, case = <divergence>_T<T>.
"""
import os

import torch
import torch.nn.functional as F
from safetensors.torch import save_file

OUT = "tests/fixtures/kd/reference.safetensors"
N, HS, HT, V, VS, VT = 7, 5, 6, 11, 13, 15
ALPHAS = {1.0: 0.5, 2.0: 0.3, 0.5: 0.8}


def case(divergence, temperature, generator):
    dt = torch.float64
    hs = torch.randn(N, HS, dtype=dt, generator=generator).requires_grad_()
    ws = torch.randn(VS, HS, dtype=dt, generator=generator).requires_grad_()
    ht = torch.randn(N, HT, dtype=dt, generator=generator)
    wt = torch.randn(VT, HT, dtype=dt, generator=generator)
    y = torch.randint(0, V, (N,), generator=generator, dtype=torch.int32)
    y[1] = -100
    y[4] = -100
    alpha = ALPHAS[temperature]
    s = hs @ ws[:V].T
    s.retain_grad()
    t = ht @ wt[:V].T
    keep = y != -100
    ce = F.cross_entropy(s, y.long(), ignore_index=-100, reduction="sum")
    log_ps = F.log_softmax(s[keep] / temperature, dim=-1)
    log_pt = F.log_softmax(t[keep] / temperature, dim=-1)
    fwd = F.kl_div(log_ps, log_pt, log_target=True, reduction="sum")
    rev = F.kl_div(log_pt, log_ps, log_target=True, reduction="sum")
    kl = {"forward_kl": fwd, "reverse_kl": rev, "symmetric_kl": 0.5 * (fwd + rev)}[divergence]
    loss = (1 - alpha) * ce + alpha * temperature**2 * kl
    loss.backward()
    name = f"{divergence}_T{temperature:g}"
    return {
        f"{name}.hs": hs.detach(), f"{name}.ws": ws.detach(), f"{name}.ht": ht, f"{name}.wt": wt,
        f"{name}.targets": y, f"{name}.alpha": torch.tensor([alpha], dtype=dt),
        f"{name}.loss": loss.detach().reshape(1), f"{name}.grad_hs": hs.grad, f"{name}.grad_ws": ws.grad,
        f"{name}.logits": s.detach(), f"{name}.teacher_logits": t, f"{name}.grad_logits": s.grad,
    }


def main():
    generator = torch.Generator().manual_seed(16)
    tensors = {}
    for divergence in ("forward_kl", "reverse_kl", "symmetric_kl"):
        for temperature in (1.0, 2.0, 0.5):
            tensors.update(case(divergence, temperature, generator))
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    save_file({k: v.contiguous() for k, v in tensors.items()}, OUT)
    print(f"wrote {OUT}: {len(tensors)} tensors")


if __name__ == "__main__":
    main()
