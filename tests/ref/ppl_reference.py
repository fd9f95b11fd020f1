#!/usr/bin/python3
"""Independent perplexity reference for stories260K-style llama2.c models.

Written for the tests from the published descriptions only (llama2.c's file
layout and run.c's algorithm, LLM-Pruner's ppl protocol, the Hugging Face
wikitext and ptb loaders), in numpy float64; it shares no code with pare.

usage: ppl_reference.py MODEL.bin TOK.bin FILE FORMAT SEQ_LEN
FORMAT: wikitext | ptb | text. Prints the perplexity.
"""
import struct
import sys

import numpy as np


def load_model(path):
    raw = open(path, "rb").read()
    dim, hidden, n_layers, n_heads, n_kv, vocab, seq = struct.unpack("7i", raw[:28])
    tied = vocab > 0
    vocab = abs(vocab)
    f = np.frombuffer(raw[28:], dtype=np.float32).astype(np.float64)
    hd = dim // n_heads
    kv_dim = n_kv * hd
    at = 0

    def take(*shape):
        nonlocal at
        n = int(np.prod(shape))
        a = f[at:at + n].reshape(shape)
        at += n
        return a

    w = {}
    w["emb"] = take(vocab, dim)
    w["rms_att"] = take(n_layers, dim)
    w["wq"] = take(n_layers, dim, dim)
    w["wk"] = take(n_layers, kv_dim, dim)
    w["wv"] = take(n_layers, kv_dim, dim)
    w["wo"] = take(n_layers, dim, dim)
    w["rms_ffn"] = take(n_layers, dim)
    w["w1"] = take(n_layers, hidden, dim)
    w["w2"] = take(n_layers, dim, hidden)
    w["w3"] = take(n_layers, hidden, dim)
    w["rms_final"] = take(dim)
    take(seq, hd // 2)
    take(seq, hd // 2)
    w["cls"] = w["emb"] if tied else take(vocab, dim)
    cfg = dict(dim=dim, n_layers=n_layers, n_heads=n_heads, n_kv=n_kv, hd=hd)
    return cfg, w


def load_tokenizer(path):
    raw = open(path, "rb").read()
    at = 4
    pieces, scores = [], []
    while at < len(raw):
        score, n = struct.unpack("fi", raw[at:at + 8])
        at += 8
        pieces.append(raw[at:at + n])
        scores.append(score)
        at += n
    return pieces, scores


def encode(text, pieces, scores):
    """llama2.c run.c encode: dummy prefix, code points, byte fallback, best-pair merges."""
    index = {p: i for i, p in enumerate(pieces)}
    data = text.encode("utf-8", errors="surrogateescape")
    toks = [index[b" "]] if data else []  # the dummy prefix takes part in merges
    i = 0
    while i < len(data):
        j = i + 1
        while j < len(data) and (data[j] & 0xC0) == 0x80 and j - i < 4:
            j += 1
        ch = data[i:j]
        if ch in index:
            toks.append(index[ch])
        else:
            toks.extend(b + 3 for b in ch)
        i = j
    while True:
        best, best_i = -1e10, -1
        for k in range(len(toks) - 1):
            m = pieces[toks[k]] + pieces[toks[k + 1]]
            if m in index and scores[index[m]] > best:
                best, best_i = scores[index[m]], k
        if best_i < 0:
            break
        toks[best_i:best_i + 2] = [index[pieces[toks[best_i]] + pieces[toks[best_i + 1]]]]
    return [1] + toks  # BOS first


def rows(path, fmt):
    text = open(path, "rb").read().decode("utf-8")
    if fmt == "text":
        return text
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    lines = [l[:-1] if l.endswith("\r") else l for l in lines]
    if fmt == "wikitext":
        out = [l + "\n" if l.strip() else "" for l in lines]
    else:
        out = [l.strip() for l in lines]
    return "\n\n".join(out)


def rmsnorm(x, w):
    return x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + 1e-5) * w


def forward(cfg, w, toks):
    T = len(toks)
    dim, hd, H, KV = cfg["dim"], cfg["hd"], cfg["n_heads"], cfg["n_kv"]
    x = w["emb"][toks]
    pos = np.arange(T)[:, None]
    freq = 10000.0 ** (-np.arange(0, hd, 2) / hd)
    ang = pos * freq[None, :]
    cos, sin = np.cos(ang), np.sin(ang)

    def rope(v):  # (T, heads, hd), pairs (2i, 2i+1)
        a, b = v[..., 0::2], v[..., 1::2]
        out = np.empty_like(v)
        out[..., 0::2] = a * cos[:, None, :] - b * sin[:, None, :]
        out[..., 1::2] = a * sin[:, None, :] + b * cos[:, None, :]
        return out

    mask = np.triu(np.full((T, T), -np.inf), 1)
    for l in range(cfg["n_layers"]):
        h = rmsnorm(x, w["rms_att"][l])
        q = rope((h @ w["wq"][l].T).reshape(T, H, hd))
        k = rope((h @ w["wk"][l].T).reshape(T, KV, hd))
        v = (h @ w["wv"][l].T).reshape(T, KV, hd)
        out = np.zeros((T, H, hd))
        for hh in range(H):
            kh = hh // (H // KV)
            s = q[:, hh, :] @ k[:, kh, :].T / np.sqrt(hd) + mask
            p = np.exp(s - s.max(axis=1, keepdims=True))
            p /= p.sum(axis=1, keepdims=True)
            out[:, hh, :] = p @ v[:, kh, :]
        x = x + out.reshape(T, dim) @ w["wo"][l].T
        h = rmsnorm(x, w["rms_ffn"][l])
        g = h @ w["w1"][l].T
        u = h @ w["w3"][l].T
        x = x + ((g / (1 + np.exp(-g))) * u) @ w["w2"][l].T
    x = rmsnorm(x, w["rms_final"])
    return x @ w["cls"].T


def main():
    model, tok, path, fmt, seq = sys.argv[1:6]
    seq = int(seq)
    cfg, w = load_model(model)
    pieces, scores = load_tokenizer(tok)
    ids = encode(rows(path, fmt), pieces, scores)
    nll, count = 0.0, 0
    for s in range(0, len(ids) // seq * seq, seq):
        win = ids[s:s + seq]
        logits = forward(cfg, w, win)
        m = logits.max(axis=1, keepdims=True)
        lse = (m + np.log(np.exp(logits - m).sum(axis=1, keepdims=True)))[:, 0]
        for t in range(seq - 1):
            nll += lse[t] - logits[t, win[t + 1]]
            count += 1
    print("%.10f %d %d" % (np.exp(nll / count), count, len(ids)))


main()
