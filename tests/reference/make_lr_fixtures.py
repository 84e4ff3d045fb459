#!/usr/bin/env python3
"""Learning-rate schedule fixtures: HF transformers' and Axolotl's own lr_lambda
functions, evaluated for each case below at every step (and two past the end),
times the base lr as torch's LambdaLR multiplies; and Axolotl's RexLR, a torch
LRScheduler, stepped with a real optimizer (needs torch; without it the other
cases are written with torch stubbed). Also torch's OneCycleLR (lr_scheduler: one_cycle) with its beta1 cycle and an AdamW trajectory under it:
one_cycle.json (test_train.c). Writes lr_schedules.jsonl:
{"case": {...runtime/train.h rt_lr_sched fields...}, "base_lr": x, "lr": [...]}.
test_train.c compares rt_lr_sched_at with these. The lambdas are pure Python;
Without torch, torch is replaced by an inert stand-in for the import only (the
rex cases then cannot be written: the script stops).
Run from the repository root: python3 tests/reference/make_lr_fixtures.py
"""
import json
import os
import sys


sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import inert_modules  # noqa: E402

try:  # RexLR is a torch LRScheduler: its cases need the real torch; the lambdas run with a stand-in too
    import torch  # noqa: F401
    HAVE_TORCH = True
except ImportError:
    inert_modules.install({"torch"})
    HAVE_TORCH = False
import transformers.optimization as hf  # noqa: E402
import axolotl.utils.schedulers as ax  # noqa: E402

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "lr_schedules.jsonl")


def hf_lambda(name, W, N, base, kw):
    if name == "constant":
        return lambda t: 1.0
    if name == "constant_with_warmup":
        return lambda t: hf._get_constant_schedule_with_warmup_lr_lambda(t, num_warmup_steps=W)
    if name == "linear":
        return lambda t: hf._get_linear_schedule_with_warmup_lr_lambda(t, num_warmup_steps=W, num_training_steps=N)
    if name == "cosine":
        return lambda t: hf._get_cosine_schedule_with_warmup_lr_lambda(
            t, num_warmup_steps=W, num_training_steps=N, num_cycles=kw.get("num_cycles", 0.5))
    if name == "cosine_with_restarts":
        return lambda t: hf._get_cosine_with_hard_restarts_schedule_with_warmup_lr_lambda(
            t, num_warmup_steps=W, num_training_steps=N, num_cycles=kw.get("num_cycles", 1))
    if name == "polynomial":
        return lambda t: hf._get_polynomial_decay_schedule_with_warmup_lr_lambda(
            t, num_warmup_steps=W, num_training_steps=N, lr_end=kw.get("lr_end", 1e-7), power=kw.get("power", 1.0),
            lr_init=base)
    if name == "inverse_sqrt":
        ts = kw.get("timescale") or (W or 10_000)
        return lambda t: hf._get_inverse_sqrt_schedule_lr_lambda(t, num_warmup_steps=W, timescale=ts)
    if name == "cosine_warmup_with_min_lr":
        rate = kw["min_lr_rate"] if "min_lr_rate" in kw else kw["min_lr"] / base
        return lambda t: hf._get_cosine_with_min_lr_schedule_with_warmup_lr_rate_lambda(
            t, num_warmup_steps=W, num_training_steps=N, num_cycles=kw.get("num_cycles", 0.5), min_lr_rate=rate,
            warmup_lr_rate=kw.get("warmup_lr_rate"))
    if name == "warmup_stable_decay":
        D = kw["num_decay_steps"]
        S = kw["num_stable_steps"] if "num_stable_steps" in kw else N - W - D  # get_wsd_schedule's default
        return lambda t: hf._get_wsd_scheduler_lambda(
            t, num_warmup_steps=W, num_stable_steps=S, num_decay_steps=D, warmup_type=kw.get("warmup_type", "linear"),
            decay_type=kw.get("decay_type", "cosine"), min_lr_ratio=kw.get("min_lr_ratio", 0), num_cycles=kw.get("num_cycles", 0.5))
    if name == "cosine_with_min_lr":
        rate = kw["min_lr_rate"] if "min_lr_rate" in kw else kw["min_lr"] / base
        return lambda t: hf._get_cosine_schedule_with_warmup_lr_lambda(
            t, num_warmup_steps=W, num_training_steps=N, num_cycles=kw.get("num_cycles", 0.5), min_lr_rate=rate)
    raise ValueError(name)


def axolotl_lambda(W, N, quad, rmin, rconst):
    # axolotl/core/trainers/mixins/scheduler.py's precedence for lr_scheduler: cosine
    if quad:
        return lambda t: ax._get_cosine_schedule_with_quadratic_warmup_lr_lambda(
            t, num_warmup_steps=W, num_training_steps=N, num_cycles=0.5)
    if rmin and rconst:
        return lambda t: ax._get_cosine_schedule_with_warmup_decay_constant_lr_lambda(
            t, num_warmup_steps=W, num_training_steps=N, constant_lr_ratio=rconst, min_lr_ratio=rmin, num_cycles=0.5)
    return lambda t: ax._get_cosine_schedule_with_min_lr_lambda(t, num_warmup_steps=W, num_training_steps=N,
                                                                min_lr_ratio=rmin)


CASES = [
    ("constant", 10, 50, {}), ("constant_with_warmup", 10, 50, {}), ("linear", 0, 40, {}), ("linear", 7, 40, {}),
    ("cosine", 5, 60, {}), ("cosine", 0, 1, {}), ("cosine", 5, 60, {"num_cycles": 1.5}),
    ("cosine_with_restarts", 4, 60, {}), ("cosine_with_restarts", 4, 60, {"num_cycles": 3}),
    ("polynomial", 6, 40, {}), ("polynomial", 6, 40, {"power": 2.0, "lr_end": 1e-5}),
    ("inverse_sqrt", 8, 50, {}), ("inverse_sqrt", 0, 50, {}), ("inverse_sqrt", 8, 50, {"timescale": 20}),
    ("cosine_with_min_lr", 5, 50, {"min_lr_rate": 0.1}), ("cosine_with_min_lr", 5, 50, {"min_lr": 2e-5, "num_cycles": 0.7}),
]
CASES += [
    ("cosine_warmup_with_min_lr", 5, 50, {"min_lr_rate": 0.1}), ("cosine_warmup_with_min_lr", 0, 30, {"min_lr": 2e-5}),
    ("cosine_warmup_with_min_lr", 6, 50, {"min_lr_rate": 0.05, "warmup_lr_rate": 0.2, "num_cycles": 0.7}),
    ("warmup_stable_decay", 5, 60, {"num_decay_steps": 20}),
    ("warmup_stable_decay", 0, 40, {"num_decay_steps": 10, "decay_type": "linear", "min_lr_ratio": 0.1}),
    ("warmup_stable_decay", 8, 60, {"num_decay_steps": 15, "num_stable_steps": 20, "warmup_type": "cosine",
                                    "decay_type": "1-sqrt", "min_lr_ratio": 0.05}),
    ("warmup_stable_decay", 6, 50, {"num_decay_steps": 12, "warmup_type": "1-sqrt", "num_cycles": 1.0}),
    ("warmup_stable_decay", 10, 30, {"num_decay_steps": 25}),  # warmup + decay past the end: stable < 0
]
# Axolotl's RexLR (lr_scheduler: rex): (warmup, total, cosine_min_lr_ratio or None)
REX = [(5, 60, None), (0, 40, None), (8, 50, 0.1), (1, 20, None), (3, 3, 0.2), (0, 1, None)]
AXOLOTL = [(5, 60, False, 0.1, None), (5, 60, False, 0.2, 0.8), (5, 60, True, None, None), (0, 30, False, 0.05, None)]


def main():
    base = 2e-4
    with open(OUT, "w") as f:
        for name, W, N, kw in CASES:
            lam = hf_lambda(name, W, N, base, kw)
            case = {"name": name, "warmup": W, "total": N}
            for k, v in kw.items():
                case["min_lr_rate" if k == "min_lr" else k] = v / base if k == "min_lr" else v
            f.write(json.dumps({"case": case, "base_lr": base, "lr": [base * lam(t) for t in range(N + 3)]}) + "\n")
        for W, N, quad, rmin, rconst in AXOLOTL:
            lam = axolotl_lambda(W, N, quad, rmin or 0.0, rconst)
            case = {"name": "cosine", "warmup": W, "total": N, "quadratic_warmup": int(quad)}
            if rmin is not None:
                case["cosine_min_lr_ratio"] = rmin
            if rconst is not None:
                case["cosine_constant_lr_ratio"] = rconst
            f.write(json.dumps({"case": case, "base_lr": base, "lr": [base * lam(t) for t in range(N + 3)]}) + "\n")
        if not HAVE_TORCH:
            raise SystemExit("the rex cases need torch (pip install torch)")
        for W, N, rmin in REX:  # a real optimizer stepped as HF Trainer steps it: the lr each step uses, then step()
            p = torch.nn.Parameter(torch.zeros(1))
            opt = torch.optim.AdamW([p], lr=base)
            sch = ax.RexLR(opt, max_lr=base, min_lr=0 if rmin is None else base * rmin, total_steps=N, num_warmup_steps=W)
            lrs = []
            for _ in range(N + 3):
                lrs.append(opt.param_groups[0]["lr"])
                opt.step()
                sch.step()
            case = {"name": "rex", "warmup": W, "total": N}
            if rmin is not None:
                case["cosine_min_lr_ratio"] = rmin
            f.write(json.dumps({"case": case, "base_lr": base, "lr": lrs}) + "\n")
    print(OUT, len(CASES) + len(AXOLOTL) + len(REX), "schedules")
    plateau()


# torch's ReduceLROnPlateau (lr_scheduler: reduce_lr_on_plateau; HF steps it with the eval loss after each
# evaluation): (kwargs, the metrics it is stepped with). Writes plateau.json: the lr after each step.
PLATEAU = [
    ({}, [3.0, 2.9, 2.95, 2.91, 2.92, 2.93, 2.94, 2.95, 2.96, 2.97, 2.98, 2.99, 3.0, 3.1, 2.0] + [2.5] * 12),
    ({"patience": 0}, [1.0, 1.0, 0.9, 0.95, 0.8, 0.8, 0.8]),
    ({"patience": 2, "cooldown": 2, "factor": 0.5}, [1.0] + [1.1] * 12 + [0.5, 0.6, 0.7, 0.8]),
    ({"mode": "max", "patience": 1, "factor": 0.3}, [0.1, 0.2, 0.2, 0.15, 0.25, 0.2, 0.2, 0.2]),
    ({"threshold_mode": "abs", "threshold": 0.05, "patience": 1}, [1.0, 0.97, 0.96, 0.9, 0.89, 0.88, 0.8]),
    ({"patience": 0, "min_lr": 1e-4, "factor": 0.2}, [1.0] * 8),
    ({"patience": 0, "factor": 0.5, "eps": 1e-4}, [1.0] * 10),
    ({"mode": "max", "threshold_mode": "abs", "threshold": 0.0, "patience": 0, "cooldown": 1}, [0.5, 0.5, 0.6, 0.6, 0.6, 0.7, 0.7]),
]


def metric_schedule(make, cases, name):
    """Each (kwargs, metrics) case stepped with its metrics: the lr after each step, into NAME.json."""
    out = []
    for kw, metrics in cases:
        p = torch.nn.Parameter(torch.zeros(1))
        opt = torch.optim.AdamW([p], lr=2e-4)
        sch = make(opt, **kw)
        lrs = []
        for m in metrics:
            sch.step(m)
            lrs.append(opt.param_groups[0]["lr"])
        out.append({"kwargs": kw, "base_lr": 2e-4, "metrics": metrics, "lr": lrs})
    path = os.path.join(os.path.dirname(OUT), name + ".json")
    with open(path, "w") as f:
        json.dump(out, f, indent=1)
        f.write("\n")
    print(path, len(out), "cases")


def plateau():
    metric_schedule(torch.optim.lr_scheduler.ReduceLROnPlateau, PLATEAU, "plateau")


# torch's OneCycleLR (lr_scheduler: one_cycle) as Axolotl's SchedulerMixin builds it: max_lr = learning_rate,
# total_steps = the run's steps, pct_start = warmup / total unless the kwargs give one, anneal_strategy cos unless
# given, then the kwargs. Stepped with a real AdamW as HF Trainer steps it: the lr and beta1 each step uses, then
# step(); "error": the first step where torch raises instead (its exception's name), "error_at": that step.
# (warmup, total, kwargs)
ONE_CYCLE = [
    (5, 60, {}), (0, 40, {}), (3, 10, {}), (1, 10, {}), (2, 2, {}), (0, 1, {}), (30, 20, {}),
    (6, 50, {"anneal_strategy": "linear"}), (8, 50, {"three_phase": True}), (4, 9, {"three_phase": True}),
    (5, 60, {"pct_start": 0.25, "div_factor": 10.0, "final_div_factor": 100.0, "base_momentum": 0.8,
             "max_momentum": 0.9}),
    (4, 30, {"cycle_momentum": False}), (7, 20, {"three_phase": True, "anneal_strategy": "linear", "pct_start": 0.3}),
    (0, 12, {"pct_start": 0.5, "base_momentum": 0.9, "max_momentum": 0.9}),
]


def one_cycle_case(W, N, kw, base, params=None, grads=None):
    p = torch.nn.Parameter(torch.zeros(1)) if params is None else params
    opt = torch.optim.AdamW([p], lr=base, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.01, foreach=False)
    extra = {}
    if "pct_start" not in kw:
        extra["pct_start"] = W / N
    if "anneal_strategy" not in kw:
        extra["anneal_strategy"] = "cos"
    out = {"lr": [], "beta1": [], "params": []}
    try:
        sch = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=base, total_steps=N, **extra, **kw)
    except Exception as e:  # noqa: BLE001 - torch's own refusal is the expected value
        out.update(error=type(e).__name__, error_at=0)
        return out
    for t in range(N + 1):
        g = opt.param_groups[0]
        out["lr"].append(g["lr"])
        out["beta1"].append(g["betas"][0])
        if t == N:
            break
        if grads is not None:
            p.grad = grads[t].clone()
            opt.step()
            out["params"].append([float(x) for x in p.detach()])
        try:
            sch.step()
        except Exception as e:  # noqa: BLE001
            out.update(error=type(e).__name__, error_at=t + 1)
            break
    return out


def one_cycle():
    import re
    import warnings
    warnings.filterwarnings("ignore", message=re.escape("Detected call of `lr_scheduler.step()` before"))  # lr-only cases
    base = 2e-4
    cases = []
    for W, N, kw in ONE_CYCLE:
        r = one_cycle_case(W, N, kw, base)
        del r["params"]
        cases.append({"warmup": W, "total": N, "kwargs": kw, "base_lr": base, **r})
    # an AdamW trajectory under the cycle: 64 f32 values, fixed gradients, weight decay 0.01 (torch's
    # single-tensor AdamW, foreach=False): the params after each step
    gen = torch.Generator().manual_seed(7)
    p0 = torch.randn(64, generator=gen)
    N = 12
    grads = [torch.randn(64, generator=gen) * 0.1 for _ in range(N)]
    p = torch.nn.Parameter(p0.clone())
    traj = one_cycle_case(3, N, {}, 1e-2, params=p, grads=grads)
    out = {"cases": cases, "adamw": {"warmup": 3, "total": N, "base_lr": 1e-2, "betas": [0.9, 0.999], "eps": 1e-8,
                                     "weight_decay": 0.01, "p0": [float(x) for x in p0],
                                     "grads": [[float(x) for x in g] for g in grads], "params": traj["params"],
                                     "lr": traj["lr"], "beta1": traj["beta1"]}}
    path = os.path.join(os.path.dirname(OUT), "one_cycle.json")
    with open(path, "w") as f:
        json.dump(out, f, indent=1)
        f.write("\n")
    print(path, len(cases), "cases + an AdamW trajectory")


# transformers' GreedyLR (lr_scheduler: greedy; HF steps it with the eval metric after each evaluation, as
# ReduceLROnPlateau): (kwargs, the metrics it is stepped with). Writes greedy.json: the lr after each step.
GREEDY = [
    ({}, [3.0 - 0.01 * i for i in range(14)] + [2.9] * 14),
    ({"min_lr": 1e-5, "patience": 2, "factor": 0.5}, [1.0, 0.9, 0.95, 0.96, 0.97, 0.8, 0.7, 0.6, 0.5, 0.55, 0.56, 0.57, 0.58]),
    ({"mode": "max", "threshold_mode": "rel", "threshold": 0.01, "patience": 1, "cooldown": 1, "warmup": 2,
      "min_lr": 1e-6}, [0.1, 0.2, 0.3, 0.4, 0.4, 0.4, 0.4, 0.5, 0.6, 0.7, 0.7, 0.7, 0.7, 0.7]),
    ({"smooth": True, "window_size": 3, "patience": 1, "min_lr": 1e-6}, [1.0, 0.5, 2.0, 0.4, 0.3, 3.0, 0.2, 0.2, 0.2, 0.2, 0.19, 0.18]),
    ({"reset_start": 2, "patience": 0, "min_lr": 1.5e-4, "factor": 0.5}, [1.0, 1.1, 1.2, 1.3, 1.4, 1.5, 0.5, 0.6, 0.7, 0.8]),
    ({"max_lr": 3e-4, "patience": 0, "min_lr": 1e-6, "eps": 1e-5}, [1.0, 0.9, 0.8, 0.7, 0.6, 0.5, 0.6, 0.6, 0.6]),
    ({"threshold_mode": "rel", "threshold": 0.1, "patience": 0, "min_lr": 1e-6}, [1.0, 0.95, 0.8, 0.79, 0.5, 0.49, 0.48]),
    ({"smooth": True, "window_size": 1, "patience": 0, "min_lr": 1e-6, "cooldown": 2}, [1.0, 2.0, 0.5, 0.4, 0.45, 0.3, 0.2, 0.25]),
]


def greedy():
    from transformers.optimization import GreedyLR
    metric_schedule(GreedyLR, GREEDY, "greedy")


if __name__ == "__main__":
    main()
    one_cycle()
    greedy()
