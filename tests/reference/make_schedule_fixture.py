"""Writes tests/fixtures/schedule/schedules.json: the learning rate of every step of a few
schedules, as computed by transformers' own schedule functions driving a torch optimizer.

Made with: transformers 5.23.0, torch 2.15.0 (CPU). Run from the repository root:
    python3 tests/reference/make_schedule_fixture.py

Each case records lrs[k] = the lr the optimizer holds before its update number k (k = 0 is the
first update), read from scheduler.get_last_lr() with one scheduler.step() per update, for
k = 0 .. total_steps (plus a few steps past the end where transformers holds its final value).
"""
import json
import os

import torch
import transformers
from transformers import (
    get_constant_schedule_with_warmup,
    get_cosine_schedule_with_warmup,
    get_cosine_with_min_lr_schedule_with_warmup,
    get_linear_schedule_with_warmup,
)

OUT = "tests/fixtures/schedule/schedules.json"


def lrs_of(make, base_lr, steps):
    param = torch.nn.Parameter(torch.ones(1))
    optimizer = torch.optim.SGD([param], lr=base_lr)
    scheduler = make(optimizer)
    out = []
    for _ in range(steps):
        out.append(scheduler.get_last_lr()[0])
        optimizer.step()
        scheduler.step()
    return out


def main():
    cases = []

    def add(kind, base_lr, warmup, total, min_lr_ratio, make, past_end):
        steps = total + 1 + past_end
        cases.append({
            "kind": kind, "base_lr": base_lr, "warmup_steps": warmup, "total_steps": total,
            "min_lr_ratio": min_lr_ratio, "lrs": lrs_of(make, base_lr, steps),
        })

    # Odd sizes, warmup on and off, a decay phase of one step, warmup filling the whole run.
    for base_lr, warmup, total in [(3e-4, 7, 53), (1.7e-3, 0, 29), (2e-5, 11, 12), (5e-4, 9, 9)]:
        add("cosine", base_lr, warmup, total, 0.0,
            lambda o, w=warmup, t=total: get_cosine_schedule_with_warmup(o, w, t), 0)
        add("linear", base_lr, warmup, total, 0.0,
            lambda o, w=warmup, t=total: get_linear_schedule_with_warmup(o, w, t), 5)
        add("constant", base_lr, warmup, total, 0.0,
            lambda o, w=warmup: get_constant_schedule_with_warmup(o, w), 5)
    for base_lr, warmup, total, rate in [(3e-4, 7, 53, 0.1), (1e-3, 0, 31, 0.37)]:
        add("cosine", base_lr, warmup, total, rate,
            lambda o, w=warmup, t=total, r=rate: get_cosine_with_min_lr_schedule_with_warmup(
                o, w, t, min_lr_rate=r), 0)

    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    with open(OUT, "w") as f:
        json.dump({"transformers": transformers.__version__, "torch": torch.__version__, "cases": cases}, f)
        f.write("\n")
    print(f"wrote {OUT}: {len(cases)} cases")


if __name__ == "__main__":
    main()
