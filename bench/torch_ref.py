#!/usr/bin/env python3
"""bench/torch_ref.py — the PyTorch + transformers side of bench/run.sh.

What Axolotl runs for a full bf16 fine-tune, on a randomly initialised model
of the given HF config (default: bench/models/llama-3.2-1b-shape): the model in
bf16, SDPA attention, torch.optim.AdamW on the bf16 parameters, gradient
clipping at 1.0, no gradient checkpointing, one micro-batch per step.

  torch_ref.py --seq 2048 [--batch 1] [--warmup 3] [--steps 10] [--config PATH]
      one JSON line: tokens_per_s (median over the timed steps), step times,
      last loss, peak memory (torch.cuda.max_memory_allocated / _reserved)
  torch_ref.py --adapter lora|qlora [--lora-r 16] [--lora-alpha 32]
               [--lora-dropout 0.05] [--lr 2e-4] --seq 2048 ...
      the same for parameter-efficient fine-tuning, as Axolotl runs
      `adapter: lora` / `adapter: qlora` + `load_in_4bit: true` with
      `lora_target_linear: true`: the base loaded in bf16 (qlora: quantised by
      transformers' bitsandbytes integration, BitsAndBytesConfig nf4, double
      quantisation, bf16 compute and storage, what Axolotl passes), then
      peft.get_peft_model with LoraConfig(r, lora_alpha, lora_dropout, the 7
      decoder projections, task_type CAUSAL_LM): the base frozen, the adapters
      f32 (PEFT's autocast_adapter_dtype default); the forward under
      torch.autocast(bf16), as HF Trainer with `bf16: true` runs it (so the
      adapter matmuls run in bf16); torch.optim.AdamW over the trainable
      parameters only, clipping at 1.0. Where bitsandbytes does not import,
      the qlora line says so ("skipped") and measures nothing.
  torch_ref.py --optim adamw8bit --seq 2048 ...
      the full fine-tune with HF Trainer's `optim: adamw_bnb_8bit`:
      bitsandbytes.optim.AdamW(..., optim_bits=8) over the bf16 parameters
      (8-bit block-wise state); where bitsandbytes does not import the line
      says so ("skipped")
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
import contextlib
import json
import os
import statistics
import sys
import time

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
# lora_target_linear: true on a Llama: every decoder linear layer, never the embedding or lm_head
LORA_TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


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


def build_model_4bit(config_path):
    """The base quantised the way Axolotl loads it for qlora: from_pretrained
    with a BitsAndBytesConfig. A random model has no checkpoint, so it is
    initialised as build_model does (bf16, same seed), written to a temporary
    directory and loaded back through transformers' bitsandbytes path. Returns
    the model, its config, the base parameter count and the versions."""
    import tempfile

    import bitsandbytes
    import transformers
    from transformers import AutoConfig, AutoModelForCausalLM, BitsAndBytesConfig

    cfg = AutoConfig.from_pretrained(os.path.dirname(config_path))
    cfg.use_cache = False
    torch.manual_seed(0)
    base = AutoModelForCausalLM.from_config(cfg).to(dtype=torch.bfloat16)
    nparams = sum(p.numel() for p in base.parameters())
    bnb = BitsAndBytesConfig(
        load_in_4bit=True,
        bnb_4bit_quant_type="nf4",
        bnb_4bit_use_double_quant=True,
        bnb_4bit_compute_dtype=torch.bfloat16,
        bnb_4bit_quant_storage=torch.bfloat16,  # Axolotl's setting; the packed bytes are the same
    )
    with tempfile.TemporaryDirectory(prefix="axo-bench-qlora-") as tmp:
        base.save_pretrained(tmp, safe_serialization=True)
        del base
        # transformers 4.56 renamed torch_dtype to dtype
        tv = tuple(int(x) for x in transformers.__version__.split(".")[:2] if x.isdigit())
        dtype_kw = {"dtype" if tv >= (4, 56) else "torch_dtype": torch.bfloat16}
        model = AutoModelForCausalLM.from_pretrained(
            tmp, config=cfg, quantization_config=bnb, device_map={"": 0}, attn_implementation="sdpa", **dtype_kw)
    model.train()
    versions = {
        "transformers": transformers.__version__,
        "bitsandbytes": bitsandbytes.__version__,
        # 7 per layer when every decoder projection is 4-bit (lm_head/embedding stay bf16)
        "linear4bit_modules": sum(type(m).__name__ == "Linear4bit" for m in model.modules()),
    }
    return model, cfg, nparams, versions


def add_lora(model, args):
    import peft
    from peft import LoraConfig, get_peft_model

    lcfg = LoraConfig(r=args.lora_r, lora_alpha=args.lora_alpha, lora_dropout=args.lora_dropout,
                      target_modules=LORA_TARGETS, task_type="CAUSAL_LM")
    model = get_peft_model(model, lcfg)  # autocast_adapter_dtype=True: the adapters in f32
    model.train()
    return model, peft.__version__


def train(args):
    extra = {}
    if args.adapter == "qlora":
        try:
            import bitsandbytes  # noqa: F401
        except ModuleNotFoundError:
            return skipped(args, "bitsandbytes not installed")
        except Exception as e:  # installed but broken (no CUDA library for this torch, ...)
            return skipped(args, f"bitsandbytes does not import: {type(e).__name__}: {e}"[:300])
    if args.optim == "adamw8bit":
        try:
            import bitsandbytes  # noqa: F401
        except ModuleNotFoundError:
            return skipped(args, "bitsandbytes not installed")
        except Exception as e:
            return skipped(args, f"bitsandbytes does not import: {type(e).__name__}: {e}"[:300])
    if args.adapter != "none":
        try:
            import peft  # noqa: F401
        except ModuleNotFoundError:
            return {"impl": "torch", "mode": args.adapter, "seq": args.seq, "error": "peft not installed"}
    if args.adapter == "qlora":
        model, cfg, nparams, versions = build_model_4bit(args.config)
        tver = versions["transformers"]
        extra["bitsandbytes"] = versions["bitsandbytes"]
        extra["linear4bit_modules"] = versions["linear4bit_modules"]
        extra["quantization"] = "bitsandbytes nf4, double quant, compute bf16, storage bf16"
    else:
        model, cfg, tver = build_model(args.config)
        nparams = sum(p.numel() for p in model.parameters())  # tied weights counted once
    if args.adapter != "none":
        model, extra["peft"] = add_lora(model, args)
        trainable = [p for p in model.parameters() if p.requires_grad]
        extra.update(
            mode=args.adapter,
            lora_r=args.lora_r,
            lora_alpha=args.lora_alpha,
            lora_dropout=args.lora_dropout,
            target_modules=LORA_TARGETS,
            trainable_params=sum(p.numel() for p in trainable),
            adapter_dtypes=sorted({str(p.dtype).replace("torch.", "") for p in trainable}),
            autocast="bf16",
            learning_rate=args.lr,
        )
        ctx = lambda: torch.autocast("cuda", dtype=torch.bfloat16)  # noqa: E731
    else:
        trainable = list(model.parameters())
        ctx = contextlib.nullcontext
    if args.optim == "adamw8bit":  # what HF Trainer builds for optim adamw_bnb_8bit
        import bitsandbytes as bnb

        opt = bnb.optim.AdamW(trainable, lr=args.lr, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, optim_bits=8)
        extra.update(mode="8bit", optimizer="bitsandbytes AdamW optim_bits=8", bitsandbytes=bnb.__version__)
    else:
        opt = torch.optim.AdamW(trainable, lr=args.lr, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0)
    g = torch.Generator(device="cuda").manual_seed(1)
    torch.cuda.reset_peak_memory_stats()
    times, loss = [], None
    for i in range(args.warmup + args.steps):
        ids = torch.randint(0, cfg.vocab_size, (args.batch, args.seq), device="cuda", generator=g)
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        with ctx():
            out = model(input_ids=ids, labels=ids)
        out.loss.backward()
        torch.nn.utils.clip_grad_norm_(trainable, 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        torch.cuda.synchronize()
        if i >= args.warmup:
            times.append(time.perf_counter() - t0)
        loss = float(out.loss)
    tok = args.batch * args.seq
    med = statistics.median(times)
    r = {
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
    r.update(extra)
    return r


def skipped(args, why):
    """A row that says plainly why nothing was measured."""
    mode = "8bit" if args.optim == "adamw8bit" else args.adapter
    return {"impl": "torch", "mode": mode, "seq": args.seq, "batch": args.batch, "skipped": why}


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--config", default=os.path.join(HERE, "models", "llama-3.2-1b-shape", "config.json"))
    p.add_argument("--seq", type=int, default=2048)
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--lr", type=float, default=1e-5)
    p.add_argument("--adapter", choices=["none", "lora", "qlora"], default="none")
    p.add_argument("--optim", choices=["adamw", "adamw8bit"], default="adamw")
    p.add_argument("--lora-r", type=int, default=16)
    p.add_argument("--lora-alpha", type=int, default=32)
    p.add_argument("--lora-dropout", type=float, default=0.05)
    p.add_argument("--peak", action="store_true")
    p.add_argument("--kernels", action="store_true")
    args = p.parse_args()
    if not torch.cuda.is_available():
        print(json.dumps({"error": "no CUDA device visible to torch"}))
        return 1
    if args.kernels:
        print(json.dumps(kernels(args.seq)))
    elif args.peak:
        print(json.dumps(peak_gemm()))
    else:
        r = train(args)
        print(json.dumps(r))
        return 1 if "error" in r else 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
