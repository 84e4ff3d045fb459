#!/usr/bin/env python3
"""gpt-oss's MXFP4 checkpoint format, for tests/e2e/gptoss.sh.

Writes tests/reference/mxfp4/tiny-gptoss-mxfp4/: tiny-gptoss-perturbed with each layer's
mlp.experts.gate_up_proj / down_proj stored as openai/gpt-oss's checkpoints store them (<name>_blocks u8
[E, R, C/32, 16], two FP4 e2m1 codes a byte, low nibble first; <name>_scales u8 [E, R, C/32], 2^(s - 127);
the parameter [E, C, R] is their dequantization transposed) and config.json's quantization_config; and
tiny-gptoss-dequant/: the same model with those experts as transformers itself dequantizes them
(integrations.mxfp4.convert_moe_packed_tensors, which Axolotl's Mxfp4Config(dequantize=True) runs), in
float32 under the parameters' names. The script also loads the MXFP4 directory with transformers
(Mxfp4Config(dequantize=True)) and checks that its experts are those values.

Usage (repository root): python3 tests/reference/make_mxfp4_fixture.py   (needs torch, transformers, safetensors)
"""
import json, os, shutil
import torch
from safetensors.torch import load_file, save_file

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
SRC = os.path.join(ROOT, "tests", "reference", "fixtures", "tiny-gptoss-perturbed")
OUT = os.path.join(ROOT, "tests", "reference", "mxfp4", "tiny-gptoss-mxfp4")
FP4 = torch.tensor([0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0, -0.0, -0.5, -1.0, -1.5, -2.0, -3.0, -4.0, -6.0])


def quantize(w):
    """param [E, C, R] -> blocks u8 [E, R, C/32, 16], scales u8 [E, R, C/32] (nearest code, shared power of two)"""
    x = w.transpose(1, 2).contiguous().double()            # [E, R, C]
    E, R, C = x.shape
    g = x.reshape(E, R, C // 32, 32)
    amax = g.abs().amax(-1).clamp_min(1e-30)
    e = torch.ceil(torch.log2(amax / 6.0))                  # every |value| / 2^e <= 6
    scales = (e + 127).clamp(0, 255).to(torch.uint8)
    y = g / torch.pow(2.0, e)[..., None]
    codes = (y[..., None] - FP4.double()).abs().argmin(-1)  # [E, R, G, 32] indices into FP4
    codes = codes.to(torch.uint8)
    blocks = codes[..., 0::2] | (codes[..., 1::2] << 4)
    return blocks.contiguous(), scales.contiguous()


def main():
    from transformers import AutoModelForCausalLM, Mxfp4Config
    from transformers.integrations.mxfp4 import convert_moe_packed_tensors
    os.makedirs(OUT, exist_ok=True)
    sd = load_file(os.path.join(SRC, "model.safetensors"))
    out, deq = {}, {}
    for k, v in sd.items():
        if k.endswith(("experts.gate_up_proj", "experts.down_proj")):
            b, s = quantize(v)
            out[k + "_blocks"], out[k + "_scales"] = b, s
            deq[k] = convert_moe_packed_tensors(b, s, dtype=torch.float32).contiguous()
            assert deq[k].shape == v.shape, (k, deq[k].shape, v.shape)
        else:
            out[k] = v
    save_file(out, os.path.join(OUT, "model.safetensors"), metadata={"format": "pt"})
    dq = os.path.join(os.path.dirname(OUT), "tiny-gptoss-dequant")
    os.makedirs(dq, exist_ok=True)
    save_file({k: deq.get(k, v) for k, v in sd.items()}, os.path.join(dq, "model.safetensors"), metadata={"format": "pt"})
    shutil.copyfile(os.path.join(SRC, "config.json"), os.path.join(dq, "config.json"))
    cfg = json.load(open(os.path.join(SRC, "config.json")))
    cfg["quantization_config"] = {"quant_method": "mxfp4", "modules_to_not_convert": [
        "model.layers.*.self_attn", "model.layers.*.mlp.router", "model.embed_tokens", "lm_head"]}
    json.dump(cfg, open(os.path.join(OUT, "config.json"), "w"), indent=2)
    # transformers' own load of the directory: the same experts
    m = AutoModelForCausalLM.from_pretrained(OUT, quantization_config=Mxfp4Config(dequantize=True), dtype=torch.float32)
    named = dict(m.named_parameters())
    for k, v in deq.items():
        assert torch.equal(named[k].detach().float(), v), k
    print("wrote", OUT, "and", dq + ";", len(deq), "expert tensors, transformers' load agrees")


if __name__ == "__main__":
    main()
