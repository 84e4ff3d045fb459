#!/usr/bin/env python3
"""bench/flops.py — parameter and FLOP counts of a Llama-shaped HF config.

The numerators of MFU in bench/run.sh's table, kept in one place so that the
axo and torch rows of a mode are counted the same way, and checked against
axoc's own parameter counts by `bench/run.sh --dry`.

  N       parameters of the base model: embedding (tied with the head,
          counted once), per layer q,o (d x d), k,v (d x kv), gate,up,down
          (3 d I), 2 norms; the final norm
  N_lora  adapter parameters: r (in + out) for each of the 7 decoder
          projections of every layer (lora_target_linear: true)

FLOPs per token (S = sequence length, L layers, d hidden; attention counted
as non-causal, 4 L d S forward, twice that backward, as in the PaLM paper):

  full          6 N + 12 L d S        forward 2N, backward 4N (activations
                                      and weights)
  lora, qlora   4 N + 6 N_lora + 12 L d S
                                      the frozen base: forward 2N and the
                                      backward through the activations 2N,
                                      no weight gradients; the adapters
                                      in full (6 N_lora); NF4 dequantisation
                                      is not useful work and not counted

  flops.py CONFIG.json MODE SEQ [R]   prints one JSON line with the counts
"""
import json
import sys

PROJECTIONS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


def dims(cfg):
    d = cfg["hidden_size"]
    hd = cfg.get("head_dim") or d // cfg["num_attention_heads"]
    kv = cfg["num_key_value_heads"] * hd
    q = cfg["num_attention_heads"] * hd
    return cfg["num_hidden_layers"], d, q, kv, cfg["intermediate_size"], cfg["vocab_size"]


def linears(cfg):
    """(name, in, out) of the 7 projections of one decoder layer."""
    L, d, q, kv, inter, V = dims(cfg)
    return [("q_proj", d, q), ("k_proj", d, kv), ("v_proj", d, kv), ("o_proj", q, d),
            ("gate_proj", d, inter), ("up_proj", d, inter), ("down_proj", inter, d)]


def base_params(cfg):
    L, d, q, kv, inter, V = dims(cfg)
    per_layer = sum(i * o for _, i, o in linears(cfg)) + 2 * d
    head = 0 if cfg.get("tie_word_embeddings", False) else V * d
    return V * d + head + L * per_layer + d


def lora_params(cfg, r):
    return cfg["num_hidden_layers"] * sum(r * (i + o) for _, i, o in linears(cfg))


def flops_per_token(cfg, mode, seq, r=16):
    L, d = cfg["num_hidden_layers"], cfg["hidden_size"]
    attn = 12 * L * d * seq
    if mode in ("full", "pure", "8bit"):  # pure, 8bit: the same training, other optimizer state
        return 6 * base_params(cfg) + attn
    if mode in ("lora", "qlora"):
        return 4 * base_params(cfg) + 6 * lora_params(cfg, r) + attn
    raise ValueError(f"unknown mode {mode!r}")


FORMULA = {
    "full": "6N + 12·L·d·S",
    "pure": "6N + 12·L·d·S",
    "8bit": "6N + 12·L·d·S",
    "lora": "4N + 6·N_lora + 12·L·d·S",
    "qlora": "4N + 6·N_lora + 12·L·d·S",
}


def main():
    if len(sys.argv) not in (4, 5):
        print(__doc__.strip().splitlines()[-1].strip(), file=sys.stderr)
        return 2
    cfg = json.load(open(sys.argv[1]))
    mode, seq = sys.argv[2], int(sys.argv[3])
    r = int(sys.argv[4]) if len(sys.argv) == 5 else 16
    out = {"mode": mode, "seq": seq, "params": base_params(cfg), "flops_per_token": flops_per_token(cfg, mode, seq, r),
           "formula": FORMULA[mode]}
    if mode not in ("full", "pure", "8bit"):
        out["lora_r"], out["lora_params"] = r, lora_params(cfg, r)
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
