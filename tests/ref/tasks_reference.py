#!/usr/bin/python3
"""Independent zero-shot reference for stories260K-style llama2.c models.

Written for the tests from the published descriptions only
(shared/reference/lm-eval-tasks.md: lm-evaluation-harness at 4d21ab6b, 0-shot, as
LLM-Pruner ran it; MANIFEST.md for the file layouts). The model, the llama2.c
tokenizer and the forward pass are those of ppl_reference.py (numpy float64); it
shares no code with pare.

usage: tasks_reference.py MODEL.bin TOK.bin MAX_LEN LIMIT TASK=FILE ...
Prints one JSON object: per task the per-item log-likelihoods, contexts and
continuations, and acc, acc_norm, n and stderr.
"""
import bz2
import json
import math
import os
import re
import sys

import numpy as np

here = os.path.dirname(os.path.abspath(__file__))
_src = open(os.path.join(here, "ppl_reference.py")).read()
_src = _src[:_src.rindex("main()")]  # the file runs main() at its end
ref = {}
exec(compile(_src, "ppl_reference.py", "exec"), ref)


def read_lines(path):
    raw = open(path, "rb").read()
    if path.endswith(".bz2"):
        raw = bz2.decompress(raw)
    return raw.decode("utf-8").split("\n")


def jsonl(path):
    return [json.loads(l) for l in read_lines(path) if l.strip()]


# ---- documents, as the harness's tasks build them (lm-eval-tasks.md section 2) ----

def preprocess(text):  # hellaswag.py
    text = text.strip()
    text = text.replace(" [title]", ". ")
    text = re.sub("\\[.*?\\]", "", text)
    text = text.replace("  ", " ")
    return text


def mc(ctx, choices, gold):
    return {"ctx": [ctx] * len(choices), "cont": [" " + c for c in choices], "choices": choices, "gold": gold}


def boolq(path):
    out = []
    for d in jsonl(path):
        label = d["label"]
        if isinstance(label, str):
            label = {"true": 1, "false": 0}[label.lower()]
        ctx = "%s\nQuestion: %s?\nAnswer:" % (d["passage"], d["question"])
        out.append(mc(ctx, ["no", "yes"], int(label)))  # yes only if strictly more likely
    return out


def piqa(path):
    docs = jsonl(path)
    if "label" not in docs[0]:
        labels = [l for l in read_lines(path[:-len(".jsonl")] + "-labels.lst") if l.strip()]
        for d, l in zip(docs, labels):
            d["label"] = int(l)
    return [mc("Question: %s\nAnswer:" % d["goal"], [d["sol1"], d["sol2"]], int(d["label"])) for d in docs]


def hellaswag(path):
    out = []
    if path.endswith(".jsonl"):
        for d in jsonl(path):
            ctx = d["ctx_a"] + " " + d["ctx_b"].capitalize()
            out.append(mc(preprocess(d["activity_label"] + ": " + ctx), [preprocess(e) for e in d["endings"]],
                          int(d["label"])))
        return out
    lines = read_lines(path)
    for i in range(0, len(lines) - 5, 6):  # llama.cpp: context, gold, 4 endings
        out.append(mc(preprocess(lines[i]), [preprocess(e) for e in lines[i + 2:i + 6]], int(lines[i + 1])))
    return out


def winogrande(path):
    out = []
    for d in jsonl(path):
        if "context_options" in d:  # llm-foundry's partial form
            ctxs, target, gold = d["context_options"], " " + d["continuation"].strip(), d["gold"]
        else:
            p = d["sentence"].index("_")
            target = " " + d["sentence"][p + 1:].strip()
            ctxs = [d["sentence"][:p] + d["option1"], d["sentence"][:p] + d["option2"]]
            gold = {"1": 0, "2": 1}[d["answer"]]
        out.append({"ctx": ctxs, "cont": [target, target], "choices": None, "gold": gold})
    return out


def arc(path):
    out = []
    for d in jsonl(path):
        key = {"1": "A", "2": "B", "3": "C", "4": "D", "5": "E"}.get(d["answerKey"], d["answerKey"])
        out.append(mc("Question: " + d["question"] + "\nAnswer:", d["choices"]["text"], ["A", "B", "C", "D", "E"].index(key)))
    return out


def openbookqa(path):
    if path.endswith(".jsonl"):
        return [mc(d["question_stem"], d["choices"]["text"], ["A", "B", "C", "D"].index(d["answerKey"].strip()))
                for d in jsonl(path)]
    out = []
    for row in read_lines(path)[1:]:
        if not row.strip():
            continue
        f = row.split("\t")
        texts = re.split(r" ?\([A-D]\) ", f[2])[1:]
        out.append(mc(f[1], texts, ["A", "B", "C", "D"].index(f[4].strip())))
    return out


READERS = {"boolq": boolq, "piqa": piqa, "hellaswag": hellaswag, "winogrande": winogrande, "arc_easy": arc,
           "arc_challenge": arc, "openbookqa": openbookqa}
NORM = {"piqa", "hellaswag", "arc_easy", "arc_challenge", "openbookqa"}


# ---- BaseLM._loglikelihood_tokens (lm-eval-tasks.md section 3) ----

def main():
    model, tok, max_len, limit = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    cfg, w = ref["load_model"](model)
    pieces, scores = ref["load_tokenizer"](tok)

    def encode(text):  # separately, dummy prefix, no BOS
        return ref["encode"](text, pieces, scores)[1:]

    def loglik(ctx, cont):
        c, x = encode(ctx), encode(cont)
        inp = (c + x)[-(max_len + 1):][:-1]
        logits = ref["forward"](cfg, w, inp)
        m = logits.max(axis=1, keepdims=True)
        logp = logits - (m + np.log(np.exp(logits - m).sum(axis=1, keepdims=True)))
        rows = logp[len(inp) - len(x):]
        return float(sum(rows[j, x[j]] for j in range(len(x)))), c, x

    result = {}
    for arg in sys.argv[5:]:
        task, path = arg.split("=", 1)
        docs = READERS[task](path)[:limit]
        items, acc, acc_norm = [], 0, 0
        for d in docs:
            lls, cids, xids = [], [], []
            for ctx, cont in zip(d["ctx"], d["cont"]):
                ll, c, x = loglik(ctx, cont)
                lls.append(ll)
                cids.append(c)
                xids.append(x)
            acc += int(np.argmax(lls)) == d["gold"]
            if task in NORM:
                acc_norm += int(np.argmax(np.array(lls) / np.array([float(len(c)) for c in d["choices"]]))) == d["gold"]
            items.append({"context": d["ctx"], "continuation": d["cont"], "context_ids": cids, "continuation_ids": xids,
                          "ll": lls, "gold": d["gold"]})
        n = len(docs)

        def stderr(k):  # metrics.py: mean_stderr = sample_stddev / sqrt(n)
            xs = [1.0] * k + [0.0] * (n - k)
            mu = sum(xs) / n
            return math.sqrt(sum((x - mu) ** 2 for x in xs) / (n - 1)) / math.sqrt(n) if n > 1 else None

        r = {"n": n, "acc": acc / n, "acc_stderr": stderr(acc), "items": items}
        if task in NORM:
            r["acc_norm"] = acc_norm / n
            r["acc_norm_stderr"] = stderr(acc_norm)
        result[task] = r
    json.dump(result, sys.stdout)
    print()


main()
