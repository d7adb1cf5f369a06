#!/usr/bin/env python3
"""The training step of bench/bench_train_step.c in PyTorch, for comparison on the same machine.

transformers' LlamaForCausalLM with the same config (tied embeddings, grouped-query attention),
float32 on the CPU, torch.set_num_threads(N). Each step: zero the gradients, forward with
labels = input ids (transformers shifts them: the mean cross-entropy over B * (T - 1) tokens, as
ct_llama_loss), backward, clip the global gradient norm, AdamW (torch.optim.AdamW with its default
implementation, constant lr; weight decay on matrices only). Batches are uniform random ids drawn
before timing. The same warm-up and timed step counts as the C benchmark.

Precision: --precision fp32 (default) or bf16: the forward and the loss under
torch.autocast("cpu", dtype=torch.bfloat16), PyTorch's own CPU mixed precision (f32 parameters,
bf16 matmuls and their backward), beside bench_train_step's --precision bf16 (f32 masters, bf16
compute copies).

Attention: --attn sdpa (default; torch's scaled_dot_product_attention, is_causal without a mask
tensor) or --attn eager (explicit softmax(q k^T) v with a causal mask).

Prints two JSON lines with the C benchmark's field names: the step and its breakdown. With
--profile 1, after the timed steps, the same number of further steps runs under torch.profiler and
the breakdown adds the self CPU time of its GEMM ops (aten::mm / addmm / bmm / baddbmm), of the
fused attention (sdpa's CPU flash kernel, forward and backward) and of the cross-entropy
(log-softmax and NLL, forward and backward), as shares of those profiled steps; tokens/s and
ms/step always come from the unprofiled timed loop.

    OMP_NUM_THREADS=2 python3 bench/train_step_torch.py --threads 2
"""
import argparse
import json
import math
import resource
import time

import torch
import transformers
from transformers import LlamaConfig, LlamaForCausalLM


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--seq", type=int, default=128)
    p.add_argument("--vocab", type=int, default=3008)
    p.add_argument("--hidden", type=int, default=128)
    p.add_argument("--intermediate", type=int, default=352)
    p.add_argument("--layers", type=int, default=4)
    p.add_argument("--heads", type=int, default=4)
    p.add_argument("--kv-heads", type=int, default=2)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--grad-clip", type=float, default=1.0)
    p.add_argument("--seed", type=int, default=1234)
    p.add_argument("--threads", type=int, default=0, help="0: torch's default")
    p.add_argument("--attn", choices=["sdpa", "eager"], default="sdpa")
    p.add_argument("--profile", type=int, choices=[0, 1], default=0)
    p.add_argument("--precision", choices=["fp32", "bf16"], default="fp32")
    args = p.parse_args()
    if args.steps < 1 or args.warmup < 0:
        p.error("--steps must be at least 1 and --warmup at least 0")
    return args


def tiny_model(a):
    cfg = LlamaConfig(
        vocab_size=a.vocab, hidden_size=a.hidden, intermediate_size=a.intermediate,
        num_hidden_layers=a.layers, num_attention_heads=a.heads, num_key_value_heads=a.kv_heads,
        max_position_embeddings=a.seq, rms_norm_eps=1e-5, rope_theta=10000.0, initializer_range=0.02,
        tie_word_embeddings=True, attention_dropout=0.0, hidden_act="silu", attn_implementation=a.attn,
    )
    model = LlamaForCausalLM(cfg).to(torch.float32)
    model.train()
    return model


def tiny_optimizer(model, a):
    # As the trainer: decay for matrices (projections, embedding), none for norm weights.
    params = [p for p in model.parameters() if p.requires_grad]
    decay = [p for p in params if p.dim() >= 2]
    no_decay = [p for p in params if p.dim() < 2]
    groups = [{"params": decay, "weight_decay": 0.1}, {"params": no_decay, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=a.lr, betas=(0.9, 0.95), eps=1e-8)


def train_step(model, opt, ids, grad_clip, times, bf16=False):
    t0 = time.perf_counter()
    opt.zero_grad(set_to_none=True)
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        loss = model(input_ids=ids, labels=ids).loss
    t1 = time.perf_counter()
    loss.backward()
    t2 = time.perf_counter()
    if grad_clip > 0:
        torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
    opt.step()
    t3 = time.perf_counter()
    times["forward"] += t1 - t0
    times["backward"] += t2 - t1
    times["optimizer"] += t3 - t2
    times["total"] += t3 - t0
    return loss.item()


GEMM_OPS = ("aten::mm", "aten::addmm", "aten::bmm", "aten::baddbmm")
CROSS_ENTROPY_OPS = ("aten::_log_softmax", "aten::_log_softmax_backward_data", "aten::nll_loss_forward",
                     "aten::nll_loss_backward")


def is_attention_op(key):
    return "flash_attention" in key or "scaled_dot_product" in key


def profiled_seconds(model, opt, batches, grad_clip, bf16):
    """Runs the steps under torch.profiler: (wall seconds, self CPU seconds of GEMM, attention and
    cross-entropy ops). Self time, so a wrapper op is not counted on top of the kernel it calls."""
    times = dict(forward=0.0, backward=0.0, optimizer=0.0, total=0.0)
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
        for ids in batches:
            train_step(model, opt, ids, grad_clip, times, bf16)
    events = prof.key_averages()
    def self_s(select):
        return sum(e.self_cpu_time_total for e in events if select(e.key)) * 1e-6
    return (times["total"], self_s(lambda k: k in GEMM_OPS), self_s(is_attention_op),
            self_s(lambda k: k in CROSS_ENTROPY_OPS))


def main():
    a = parse_args()
    if a.threads > 0:
        torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    model = tiny_model(a)
    opt = tiny_optimizer(model, a)
    gen = torch.Generator().manual_seed(a.seed + 1)
    batches = [torch.randint(0, a.vocab, (a.batch, a.seq), generator=gen) for _ in range(a.warmup + a.steps)]

    warm = dict(forward=0.0, backward=0.0, optimizer=0.0, total=0.0)
    timed = dict(warm)
    first_loss = last_loss = math.nan
    bf16 = a.precision == "bf16"
    for i in range(a.warmup):
        loss = train_step(model, opt, batches[i], a.grad_clip, warm, bf16)
        if i == 0:
            first_loss = loss
    for i in range(a.steps):
        loss = train_step(model, opt, batches[a.warmup + i], a.grad_clip, timed, bf16)
        if i == 0 and a.warmup == 0:
            first_loss = loss
        last_loss = loss
    profile = profiled_seconds(model, opt, batches[a.warmup:], a.grad_clip, bf16) if a.profile else None

    per_step = timed["total"] / a.steps
    n_params = sum(p.numel() for p in model.parameters())
    step = {
        "bench": "train_step", "impl": "torch", "torch": torch.__version__, "transformers": transformers.__version__,
        "attn": a.attn, "precision": a.precision, "threads": torch.get_num_threads(), "batch": a.batch, "seq": a.seq, "vocab": a.vocab,
        "hidden": a.hidden, "intermediate": a.intermediate, "layers": a.layers, "heads": a.heads,
        "kv_heads": a.kv_heads, "params": n_params, "warmup": a.warmup, "steps": a.steps,
        "profiled": bool(a.profile), "tokens_per_s": round(a.batch * a.seq / per_step, 1),
        "ms_per_step": round(1e3 * per_step, 3), "first_loss": round(first_loss, 4),
        "last_loss": round(last_loss, 4),
        "max_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0, 1),
    }
    ms = 1e3 / a.steps
    breakdown = {
        "bench": "train_step_breakdown", "impl": "torch", "ms_per_step": round(timed["total"] * ms, 3),
        "forward_ms": round(timed["forward"] * ms, 3), "backward_ms": round(timed["backward"] * ms, 3),
        "optimizer_ms": round(timed["optimizer"] * ms, 3),
    }
    if profile is not None:
        total, gemm, attention, cross_entropy = profile
        breakdown.update({
            "profiled_ms_per_step": round(total * ms, 3),
            "gemm_ms": round(gemm * ms, 3), "attention_ms": round(attention * ms, 3),
            "cross_entropy_ms": round(cross_entropy * ms, 3),
            "gemm_share": round(gemm / total, 3), "attention_share": round(attention / total, 3),
            "cross_entropy_share": round(cross_entropy / total, 3),
            "optimizer_share": round(timed["optimizer"] / timed["total"], 3),
        })
    print(json.dumps(step))
    print(json.dumps(breakdown))


if __name__ == "__main__":
    main()
