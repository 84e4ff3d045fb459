#!/usr/bin/env python3
"""bench/torch_ref.py — the PyTorch + transformers side of bench/run.sh.

What Axolotl runs for a full bf16 fine-tune, on a randomly initialised model
of the given HF config (default: bench/models/llama-3.2-1b-shape): the model in
bf16, SDPA attention, torch.optim.AdamW on the bf16 parameters, gradient
clipping at 1.0, no gradient checkpointing, one micro-batch per step.

  torch_ref.py --seq 2048 [--batch 1] [--warmup 3] [--steps 10] [--config PATH]
      one JSON line: tokens_per_s (median over the timed steps), step times,
      last loss, peak memory (torch.cuda.max_memory_allocated / _reserved)
  torch_ref.py --peak
      one JSON line: the measured dense bf16 GEMM rate (8192^3, random data,
      median of 20 after 3 warm-ups), the denominator of MFU
  torch_ref.py --kernels [--seq 4096]
      one JSON line: scaled_dot_product_attention forward and backward at the
      shape of bench/kernel_bench.c (batch 1, 32 query heads, 8 kv heads,
      head_dim 64, causal, bf16; k/v repeated to 32 heads as transformers
      does), median CUDA-event times and TFLOP/s with the same FLOP count
      (causal: 2 S^2 heads hd forward, 2.5x that backward), and torch's
      device-to-device copy bandwidth (1 GiB, read + write)

Timing: torch.cuda.synchronize() around each step, time.perf_counter();
warm-up steps are excluded. Never run on zeros (random token ids).
"""
import argparse
import json
import os
import statistics
import sys
import time

import torch

HERE = os.path.dirname(os.path.abspath(__file__))


def peak_gemm():
    n = 8192
    a = torch.randn(n, n, device="cuda", dtype=torch.bfloat16)
    b = torch.randn(n, n, device="cuda", dtype=torch.bfloat16)
    for _ in range(3):
        a @ b
    torch.cuda.synchronize()
    times = []
    for _ in range(20):
        s, e = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        s.record()
        a @ b
        e.record()
        torch.cuda.synchronize()
        times.append(s.elapsed_time(e) / 1e3)
    t = statistics.median(times)
    return {"gemm": f"{n}x{n}x{n} bf16", "tflops": 2 * n**3 / t / 1e12, "seconds": t}


def cuda_time(fn, warmup=3, iters=20):
    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(iters):
        s, e = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        s.record()
        fn()
        e.record()
        torch.cuda.synchronize()
        times.append(s.elapsed_time(e) * 1e3)  # us
    return statistics.median(times)


def kernels(seq):
    import torch.nn.functional as F

    nh, nkv, hd = 32, 8, 64
    g = torch.Generator(device="cuda").manual_seed(0)
    q = torch.randn(1, nh, seq, hd, device="cuda", dtype=torch.bfloat16, generator=g, requires_grad=True)
    k = torch.randn(1, nkv, seq, hd, device="cuda", dtype=torch.bfloat16, generator=g, requires_grad=True)
    v = torch.randn(1, nkv, seq, hd, device="cuda", dtype=torch.bfloat16, generator=g, requires_grad=True)
    do = torch.randn(1, nh, seq, hd, device="cuda", dtype=torch.bfloat16, generator=g)

    def fwd():
        kk, vv = k.repeat_interleave(nh // nkv, dim=1), v.repeat_interleave(nh // nkv, dim=1)
        return F.scaled_dot_product_attention(q, kk, vv, is_causal=True, scale=hd**-0.5)

    fwd_us = cuda_time(fwd)
    bwd_us = cuda_time(lambda: torch.autograd.grad(fwd(), (q, k, v), do)) - fwd_us
    flops = 4.0 * seq * seq * nh * hd / 2
    n = 1 << 30
    a = torch.empty(n, dtype=torch.uint8, device="cuda")
    b = torch.empty_like(a)
    copy_us = cuda_time(lambda: b.copy_(a), warmup=1, iters=5)
    return {
        "impl": "torch",
        "kernels": "sdpa",
        "torch": torch.__version__,
        "device": torch.cuda.get_device_name(),
        "seq": seq,
        "sdpa_fwd_us": fwd_us,
        "sdpa_bwd_us": bwd_us,
        "sdpa_fwd_tflops": flops / (fwd_us * 1e-6) / 1e12,
        "sdpa_bwd_tflops": 2.5 * flops / (bwd_us * 1e-6) / 1e12,
        "copy_gbps": 2.0 * n / (copy_us * 1e-6) / 1e9,
    }


def build_model(config_path):
    import transformers
    from transformers import AutoConfig, AutoModelForCausalLM

    cfg = AutoConfig.from_pretrained(os.path.dirname(config_path))
    cfg.use_cache = False
    torch.manual_seed(0)
    try:
        model = AutoModelForCausalLM.from_config(cfg, attn_implementation="sdpa")
    except TypeError:  # older transformers
        cfg._attn_implementation = "sdpa"
        model = AutoModelForCausalLM.from_config(cfg)
    model = model.to(device="cuda", dtype=torch.bfloat16)
    model.train()
    return model, cfg, transformers.__version__


def train(args):
    model, cfg, tver = build_model(args.config)
    nparams = sum(p.numel() for p in model.parameters())  # tied weights counted once
    opt = torch.optim.AdamW(model.parameters(), lr=1e-5, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0)
    g = torch.Generator(device="cuda").manual_seed(1)
    torch.cuda.reset_peak_memory_stats()
    times, loss = [], None
    for i in range(args.warmup + args.steps):
        ids = torch.randint(0, cfg.vocab_size, (args.batch, args.seq), device="cuda", generator=g)
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        out = model(input_ids=ids, labels=ids)
        out.loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        torch.cuda.synchronize()
        if i >= args.warmup:
            times.append(time.perf_counter() - t0)
        loss = float(out.loss)
    tok = args.batch * args.seq
    med = statistics.median(times)
    return {
        "impl": "torch",
        "torch": torch.__version__,
        "transformers": tver,
        "device": torch.cuda.get_device_name(),
        "seq": args.seq,
        "batch": args.batch,
        "params": nparams,
        "steps": args.steps,
        "step_s_median": med,
        "step_s": times,
        "tokens_per_s": tok / med,
        "loss_last": loss,
        "peak_allocated": torch.cuda.max_memory_allocated(),
        "peak_reserved": torch.cuda.max_memory_reserved(),
    }


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--config", default=os.path.join(HERE, "models", "llama-3.2-1b-shape", "config.json"))
    p.add_argument("--seq", type=int, default=2048)
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--peak", action="store_true")
    p.add_argument("--kernels", action="store_true")
    args = p.parse_args()
    if not torch.cuda.is_available():
        print(json.dumps({"error": "no CUDA device visible to torch"}))
        return 1
    if args.kernels:
        print(json.dumps(kernels(args.seq)))
    else:
        print(json.dumps(peak_gemm() if args.peak else train(args)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
