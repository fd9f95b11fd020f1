#!/usr/bin/env python3
"""torch_llama.py - PyTorch's side of bench-7b: a Hugging Face LLaMA folder
(safetensors, any of f32/f16/bf16) widened to fp32, as LLM-Pruner runs it, and
timed on B windows of T tokens of a text:

  forward             the logits under torch.no_grad() (LLM-Pruner's perplexity)
  backward            forward + loss.backward() with autograd on every weight, then
                      the element-wise first-order Taylor term |w * g| of every
                      matrix (LLM-Pruner's element1 importance), summed over each
                      row as it is made, so that only one such matrix is held

Prints "forward TOK/S SECONDS", "backward TOK/S SECONDS", "peak GIB" (peak RSS of
this process) and "loss X", the mean cross-entropy of the windows, which is the
log of pare-eval's perplexity of the same windows (BOS once at the start of the
text, windows of T tokens, every next token scored): a check that both run the
same model. Needs python3-torch and python3-sentencepiece; reads
safetensors itself (no transformers, no safetensors package).

usage: torch_llama.py MODEL_DIR TOKENIZER TEXT B T
"""
import json
import math
import os
import resource
import sys
import time

import numpy as np
import sentencepiece as spm
import torch


def read_safetensors(path):
    with open(path, "rb") as f:
        n = int.from_bytes(f.read(8), "little")
        header = json.loads(f.read(n))
    raw = np.memmap(path, dtype=np.uint8, mode="r", offset=8 + n)
    out = {}
    for name, e in header.items():
        if name == "__metadata__":
            continue
        b, end = e["data_offsets"]
        buf = raw[b:end]
        if e["dtype"] == "F32":
            a = torch.from_numpy(np.array(buf.view(np.float32)))
        elif e["dtype"] == "F16":
            a = torch.from_numpy(buf.view(np.float16).astype(np.float32))
        elif e["dtype"] == "BF16":
            a = torch.from_numpy((buf.view(np.uint16).astype(np.uint32) << 16).view(np.float32))
        else:
            raise SystemExit(f"{path}: {name} has dtype {e['dtype']}")
        out[name] = a.reshape(e["shape"])
    return out


def load(folder):
    cfg = json.load(open(os.path.join(folder, "config.json")))
    index = os.path.join(folder, "model.safetensors.index.json")
    files = sorted(set(json.load(open(index))["weight_map"].values())) if os.path.exists(index) \
        else ["model.safetensors"]
    w = {}
    for f in files:
        w.update(read_safetensors(os.path.join(folder, f)))
    for t in w.values():
        t.requires_grad_(True)
    return cfg, w


def rms_norm(x, g, eps):
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * g


def rotate_half(x):
    h = x.shape[-1] // 2
    return torch.cat((-x[..., h:], x[..., :h]), dim=-1)


def forward(cfg, w, ids):
    B, T = ids.shape
    D, L = cfg["hidden_size"], cfg["num_hidden_layers"]
    H = cfg["num_attention_heads"]
    H = H if isinstance(H, int) else H[0]
    KV = cfg.get("num_key_value_heads", H)
    KV = KV if isinstance(KV, int) else KV[0]
    hd = cfg.get("head_dim", D // H)
    eps, theta = cfg["rms_norm_eps"], cfg.get("rope_theta", 10000.0)
    inv = 1.0 / theta ** (torch.arange(0, hd, 2, dtype=torch.float32) / hd)
    ang = torch.outer(torch.arange(T, dtype=torch.float32), inv)
    cos, sin = torch.cat((ang, ang), -1).cos(), torch.cat((ang, ang), -1).sin()
    mask = torch.full((T, T), float("-inf")).triu(1)
    x = w["model.embed_tokens.weight"][ids]
    for l in range(L):
        p = f"model.layers.{l}."
        h = rms_norm(x, w[p + "input_layernorm.weight"], eps)
        q = (h @ w[p + "self_attn.q_proj.weight"].T).view(B, T, H, hd).transpose(1, 2)
        k = (h @ w[p + "self_attn.k_proj.weight"].T).view(B, T, KV, hd).transpose(1, 2)
        v = (h @ w[p + "self_attn.v_proj.weight"].T).view(B, T, KV, hd).transpose(1, 2)
        q, k = q * cos + rotate_half(q) * sin, k * cos + rotate_half(k) * sin
        if KV != H:
            k, v = k.repeat_interleave(H // KV, 1), v.repeat_interleave(H // KV, 1)
        a = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(hd) + mask, -1) @ v
        x = x + a.transpose(1, 2).reshape(B, T, H * hd) @ w[p + "self_attn.o_proj.weight"].T
        h = rms_norm(x, w[p + "post_attention_layernorm.weight"], eps)
        g = torch.nn.functional.silu(h @ w[p + "mlp.gate_proj.weight"].T) * (h @ w[p + "mlp.up_proj.weight"].T)
        x = x + g @ w[p + "mlp.down_proj.weight"].T
    x = rms_norm(x, w["model.norm.weight"], eps)
    head = w.get("lm_head.weight", w["model.embed_tokens.weight"])
    return x @ head.T


def main():
    folder, tok, text, B, T = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
    torch.set_num_threads(int(os.environ.get("PARE_THREADS", os.cpu_count())))
    sp = spm.SentencePieceProcessor(model_file=tok)
    ids = ([sp.bos_id()] + sp.encode(open(text).read()))[: B * T]  # as pare-eval --ppl: BOS once
    ids = torch.tensor(ids, dtype=torch.long).view(B, T)
    cfg, w = load(folder)

    t0 = time.perf_counter()
    with torch.no_grad():
        forward(cfg, w, ids)
    fwd = time.perf_counter() - t0

    t0 = time.perf_counter()
    logits = forward(cfg, w, ids)
    loss = torch.nn.functional.cross_entropy(logits[:, :-1].reshape(-1, logits.shape[-1]), ids[:, 1:].reshape(-1))
    loss.backward()
    with torch.no_grad():  # reduced tensor by tensor: one |w * g| matrix alive at a time
        imp = {n: (t * t.grad).abs().sum(1) for n, t in w.items() if t.dim() == 2}
    bwd = time.perf_counter() - t0
    del imp

    n = B * T
    print(f"forward {n / fwd:.1f} {fwd:.2f}")
    print(f"backward {n / bwd:.1f} {bwd:.2f}")
    print(f"peak {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1048576:.2f}")
    print(f"loss {loss.item():.4f}")


if __name__ == "__main__":
    main()
