#!/usr/bin/env bats
# pare-eval: the zero-shot tasks (hand-checkable fixtures, an independent reference
# on stories260K, every file form), shards and merge, task-file errors, generation,
# statistics, and the examples/ sweeps.
load helper

EVAL="$DATA/eval"
LN512=6.238324625039508   # ln(512): every token of a uniform model over tok512

# A llama2.c model whose weights are all zero: its logits are all zero, so every
# token has probability 1/512 and ll = -(tokens of the continuation) * ln 512.
uniform_model() {
    $PY - "$1" <<'EOF'
import struct, sys
dim, hidden, layers, heads, kv, vocab, seq = 8, 16, 1, 2, 2, 512, 64
hd = dim // heads
n = (vocab * dim + layers * dim + layers * dim * dim * 2 + layers * kv * hd * dim * 2 + layers * dim
     + layers * hidden * dim * 3 + dim + seq * hd)
with open(sys.argv[1], "wb") as f:
    f.write(struct.pack("7i", dim, hidden, layers, heads, kv, vocab, seq))
    f.write(bytes(4 * n))
EOF
}

# The hand-checkable fixture files (tokens under tok512, continuation encoded alone:
# " a" 2, " cat" 3, " dog" 3, " 555" 5, " éé" 4, " yes" 3, " no" 3).
write_fixtures() {
    # BoolQ (SuperGLUE rows, labels as strings): " yes" and " no" tie, a tie is "no"
    cat > "$T/boolq.jsonl" <<'EOF'
{"question": "does ethanol take more energy make that produces", "passage": "Ethanol fuel -- All biomass goes through.", "idx": 0, "label": "false"}
{"question": "is it red", "passage": "Apple -- Apples are red.", "idx": 1, "label": "true"}
{"question": "q", "passage": "P", "idx": 2, "label": "false"}
{"question": "q", "passage": "P", "idx": 3, "label": "false"}
EOF
    # ARC (Hugging Face rows). With a uniform model, acc takes the fewest tokens and
    # acc_norm the fewest tokens per character, first on ties:
    #  1. "a" 2/1 vs "555" 5/3: acc 0 (wrong), acc_norm 1 (right; with the leading
    #     space counted it would be 2/2 < 5/4 and wrong)
    #  2. "éé" 4/2 vs "555" 5/3: acc 0 (wrong), acc_norm 1 (right; counting bytes,
    #     4/4 < 5/3, it would be wrong)
    #  3. "cat" vs "dog", gold 0: a tie, first: both right
    #  4. "cat" vs "dog", gold 1: a tie, first: both wrong
    # acc = 1/4, acc_norm = 3/4, each with stderr sqrt(p(1-p)/(n-1)) = 1/4
    cat > "$T/arc.jsonl" <<'EOF'
{"id": "1", "question": "Pick one.", "choices": {"text": ["a", "555"], "label": ["A", "B"]}, "answerKey": "B"}
{"id": "2", "question": "Pick one.", "choices": {"text": ["éé", "555"], "label": ["A", "B"]}, "answerKey": "2"}
{"id": "3", "question": "Pet?", "choices": {"text": ["cat", "dog"], "label": ["A", "B"]}, "answerKey": "A"}
{"id": "4", "question": "Pet?", "choices": {"text": ["cat", "dog"], "label": ["A", "B"]}, "answerKey": "B"}
EOF
    cat > "$T/piqa.jsonl" <<'EOF'
{"goal": "How do I ready a guinea pig cage?", "sol1": "Provide bedding.", "sol2": "Provide jeans.", "label": 0}
EOF
    cat > "$T/hellaswag.jsonl" <<'EOF'
{"activity_label": "Roof shingle removal", "ctx_a": "A man is sitting on a roof.", "ctx_b": "he", "endings": ["is using wrap.", "[header] is ripping [title] tiles.", "c", "d"], "label": "1"}
EOF
    cat > "$T/winogrande.jsonl" <<'EOF'
{"sentence": "Sarah was a much better surgeon than Maria so _ always got the harder cases.", "option1": "Sarah", "option2": "Maria", "answer": "1"}
EOF
    printf 'ID\tQuestion Stem\tChoices\tComplete Question\tAnswer Key\n7-1\tThe sun is\t(A) cold (B) a star (C) blue (D) small\tThe sun is ...\tB\n' > "$T/obqa.tsv"
}

fixture_args() {
    echo --task-file boolq="$T/boolq.jsonl" --task-file piqa="$T/piqa.jsonl" \
        --task-file hellaswag="$T/hellaswag.jsonl" --task-file winogrande="$T/winogrande.jsonl" \
        --task-file arc_easy="$T/arc.jsonl" --task-file arc_challenge="$T/arc.jsonl" \
        --task-file openbookqa="$T/obqa.tsv"
}

# value of TASK/METRIC in a --json report: "value stderr n correct"
metric() {
    $PY -c 'import json,sys; r=json.load(open(sys.argv[1]))
m=[m for m in r["metrics"] if m["task"]==sys.argv[2] and m["metric"]==sys.argv[3]][0]
print(m["value"], m["stderr"], m["n"], m.get("correct"))' "$@"
}

@test "eval tasks: hand-checkable fixture: prompts, separate tokenization, acc/acc_norm/tie rules, stderr" {
    need_data
    uniform_model "$T/uniform.bin"
    write_fixtures
    pare-eval -q -m "$T/uniform.bin" --tokenizer "$TOK" $(fixture_args) --items --json > "$T/r.json"
    # acc and acc_norm as worked out above, stderr sqrt(p(1-p)/(n-1))
    [ "$(metric "$T/r.json" boolq acc)" = "0.75 0.25 4 3" ]
    [ "$(metric "$T/r.json" arc_easy acc)" = "0.25 0.25 4 1" ]
    [ "$(metric "$T/r.json" arc_easy acc_norm)" = "0.75 0.25 4 3" ]
    [ "$(metric "$T/r.json" arc_challenge acc_norm)" = "0.75 0.25 4 3" ]
    [ "$(metric "$T/r.json" piqa acc)" = "1.0 None 1 1" ]   # 13 tokens vs 14; one item: no stderr
    # the paper's metrics: boolq acc .75, piqa acc 1, hellaswag acc_norm, winogrande
    # acc 1 (identical continuations tie), arc_easy acc .25, arc_challenge acc_norm
    # .75, openbookqa acc_norm
    $PY - "$T/r.json" "$LN512" <<'EOF'
import json, sys
r = json.load(open(sys.argv[1])); L = float(sys.argv[2])
items = {}
for it in r["items"]:
    items.setdefault(it["task"], []).append(it)
# the prompt strings of lm-eval-tasks.md section 2, by hand
assert items["boolq"][0]["context"][0] == "Ethanol fuel -- All biomass goes through.\nQuestion: does ethanol take more energy make that produces?\nAnswer:"
assert items["boolq"][0]["continuation"] == [" no", " yes"]
assert items["piqa"][0]["context"][0] == "Question: How do I ready a guinea pig cage?\nAnswer:"
assert items["piqa"][0]["continuation"] == [" Provide bedding.", " Provide jeans."]
h = items["hellaswag"][0]
assert h["context"][0] == "Roof shingle removal: A man is sitting on a roof. He", h["context"]
assert h["continuation"][:2] == [" is using wrap.", "  is ripping. tiles."], h["continuation"]
w = items["winogrande"][0]
assert w["context"] == ["Sarah was a much better surgeon than Maria so Sarah", "Sarah was a much better surgeon than Maria so Maria"]
assert w["continuation"] == [" always got the harder cases."] * 2
a = items["arc_easy"][1]
assert a["context"][0] == "Question: Pick one.\nAnswer:" and a["continuation"] == [" éé", " 555"] and a["gold"] == 1
assert a["chars"] == [2, 3]
o = items["openbookqa"][0]
assert o["context"][0] == "The sun is" and o["continuation"] == [" cold", " a star", " blue", " small"] and o["gold"] == 1
# separate tokenization: " yes" alone is [" ", " y", "es"] (the lone space token,
# as Llama's 29871), and no BOS (id 1) anywhere
yes = items["boolq"][0]["continuation_ids"][1]
assert yes == [410, 348, 406], yes
for t in items.values():
    for it in t:
        for ids in it["context_ids"] + it["continuation_ids"]:
            assert ids[0] != 1
# a uniform model: ll = -(continuation tokens) * ln 512, exactly
for t in items.values():
    for it in t:
        for ll, ids in zip(it["ll"], it["continuation_ids"]):
            assert abs(ll + len(ids) * L) < 1e-9 * len(ids) * L, (ll, ids)
# paper average: boolq .75, piqa 1, hellaswag acc_norm, winogrande 1, arc_easy .25,
# arc_challenge .75, openbookqa acc_norm (over 7)
m = {(x["task"], x["metric"]): x for x in r["metrics"]}
paper = [m[("boolq", "acc")], m[("piqa", "acc")], m[("hellaswag", "acc_norm")], m[("winogrande", "acc")],
         m[("arc_easy", "acc")], m[("arc_challenge", "acc_norm")], m[("openbookqa", "acc_norm")]]
assert all(p.get("paper") for p in paper)
assert sum(1 for x in r["metrics"] if x.get("paper")) == 7
avg = m[("average", "paper")]
assert abs(avg["value"] - sum(p["value"] for p in paper) / 7) < 1e-12 and avg["n"] == 7
EOF
}

@test "eval tasks: the fixture's token ids equal an independent tokenizer's" {
    need_data
    uniform_model "$T/uniform.bin"
    write_fixtures
    pare-eval -q -m "$T/uniform.bin" --tokenizer "$TOK" $(fixture_args) --items --json > "$T/r.json"
    $PY - "$T/r.json" "$ROOT/tests/ref/ppl_reference.py" "$TOK" <<'EOF'
import json, sys
src = open(sys.argv[2]).read(); src = src[:src.rindex("main()")]
ref = {}; exec(src, ref)
pieces, scores = ref["load_tokenizer"](sys.argv[3])
for it in json.load(open(sys.argv[1]))["items"]:
    for ctx, cont, cids, xids in zip(it["context"], it["continuation"], it["context_ids"], it["continuation_ids"]):
        assert ref["encode"](ctx, pieces, scores)[1:] == cids, ctx
        assert ref["encode"](cont, pieces, scores)[1:] == xids, cont
EOF
}

@test "eval tasks: all seven tasks on stories260K equal an independent numpy reference" {
    need_data
    n=5
    files="boolq=$EVAL/boolq/val.jsonl piqa=$EVAL/piqa/valid.jsonl hellaswag=$EVAL/hellaswag/hellaswag_val_full.txt.bz2
           winogrande=$EVAL/winogrande/winogrande_xl_dev.llmfoundry.jsonl arc_easy=$EVAL/arc/ARC-Easy-test.jsonl
           arc_challenge=$EVAL/arc/ARC-Challenge-test.jsonl openbookqa=$EVAL/openbookqa/test.tsv"
    $PY "$ROOT/tests/ref/tasks_reference.py" "$MODEL" "$TOK" 512 $n $files > "$T/ref.json"
    pare-eval -q -m "$MODEL" --tokenizer "$TOK" --data-dir "$DATA" --tasks all --limit $n --items --json > "$T/pare.json"
    $PY - "$T/ref.json" "$T/pare.json" <<'EOF'
import json, sys
ref = json.load(open(sys.argv[1])); got = json.load(open(sys.argv[2]))
items = {}
for it in got["items"]:
    items.setdefault(it["task"], []).append(it)
m = {(x["task"], x["metric"]): x for x in got["metrics"]}
worst = 0
for task, r in ref.items():
    assert len(items[task]) == r["n"]
    for a, b in zip(r["items"], items[task]):
        for k in ("context", "continuation", "context_ids", "continuation_ids", "gold"):
            assert a[k] == b[k], (task, k, a[k], b[k])
        for x, y in zip(a["ll"], b["ll"]):
            worst = max(worst, abs(x - y) / max(1.0, abs(x)))
    for metric in ("acc", "acc_norm"):
        if metric in r:
            g = m[(task, metric)]
            assert g["value"] == r[metric] and g["n"] == r["n"], (task, metric, g, r[metric])
            assert abs(g["stderr"] - r[metric + "_stderr"]) < 1e-12
print("worst relative ll difference", worst)
assert worst < 1e-5
EOF
    # BoolQ's long passages were left-truncated to the 512-token window
    run pare-eval -m "$MODEL" --tokenizer "$TOK" --data-dir "$DATA" --tasks boolq --limit $n --json
    [[ "$output" == *"truncated"* && "$output" != *" 0 truncated"* ]]
}

@test "eval tasks: Hugging Face rows, raw files and compressed files give the same items" {
    need_data
    # first 6 items of each shipped file, rewritten in the other forms
    $PY - "$EVAL" "$T" <<'EOF'
import bz2, json, re, sys
ev, out = sys.argv[1], sys.argv[2]
def lines(p):
    return [l for l in open(p, encoding="utf-8").read().split("\n") if l.strip()]
piqa = [json.loads(l) for l in lines(ev + "/piqa/valid.jsonl")[:6]]
labels = lines(ev + "/piqa/valid-labels.lst")[:6]
with open(out + "/valid.jsonl", "w") as f:
    f.write("".join(json.dumps(d) + "\n" for d in piqa))
with open(out + "/valid-labels.lst", "w") as f:
    f.write("".join(l + "\n" for l in labels))
with open(out + "/piqa-hf.jsonl", "w") as f:
    for d, l in zip(piqa, labels):
        d = dict(d, label=int(l)); f.write(json.dumps(d) + "\n")
arc = [json.loads(l) for l in lines(ev + "/arc/ARC-Challenge-test.jsonl")[:6]]
with open(out + "/arc.jsonl", "w") as f:
    f.write("".join(json.dumps(d) + "\n" for d in arc))
with open(out + "/arc-raw.jsonl", "w") as f:   # the original AI2 layout
    for d in arc:
        ch = [{"text": t, "label": l} for t, l in zip(d["choices"]["text"], d["choices"]["label"])]
        f.write(json.dumps({"id": d["id"], "question": {"stem": d["question"], "choices": ch}, "answerKey": d["answerKey"]}) + "\n")
rows = lines(ev + "/openbookqa/test.tsv")
with open(out + "/obqa.tsv", "w") as f:
    f.write("\n".join(rows[:7]) + "\n")
with open(out + "/obqa-hf.jsonl", "w") as f:
    for r in rows[1:7]:
        c = r.split("\t")
        texts = re.split(r" ?\([A-D]\) ", c[2])[1:]
        f.write(json.dumps({"id": c[0], "question_stem": c[1], "choices": {"text": texts, "label": list("ABCD")}, "answerKey": c[4]}) + "\n")
bq = [json.loads(l) for l in lines(ev + "/boolq/val.jsonl")[:6]]
with open(out + "/boolq.jsonl", "w") as f:
    f.write("".join(json.dumps(d) + "\n" for d in bq))
with open(out + "/boolq-hf.jsonl", "w") as f:
    f.write("".join(json.dumps(dict(d, label=1 if d["label"] == "true" else 0)) + "\n" for d in bq))
hs = bz2.open(ev + "/hellaswag/hellaswag_val_full.txt.bz2", "rt", encoding="utf-8").read().split("\n")[:36]
with open(out + "/hs.txt", "w") as f:
    f.write("\n".join(hs) + "\n")
EOF
    gzip -k "$T/arc.jsonl"
    bzip2 -k "$T/hs.txt"
    xz -k "$T/obqa.tsv"
    lls() { pare-eval -q -m "$MODEL" --tokenizer "$TOK" "$@" --items --json |
            $PY -c 'import json,sys; print(json.dumps([(i["context"], i["continuation"], i["gold"], i["ll"]) for i in json.load(sys.stdin)["items"]]))'; }
    [ "$(lls --task-file piqa="$T/valid.jsonl")" = "$(lls --task-file piqa="$T/piqa-hf.jsonl")" ]
    [ "$(lls --task-file arc_challenge="$T/arc.jsonl")" = "$(lls --task-file arc_challenge="$T/arc-raw.jsonl")" ]
    [ "$(lls --task-file arc_challenge="$T/arc.jsonl")" = "$(lls --task-file arc_challenge="$T/arc.jsonl.gz")" ]
    [ "$(lls --task-file openbookqa="$T/obqa.tsv")" = "$(lls --task-file openbookqa="$T/obqa-hf.jsonl")" ]
    [ "$(lls --task-file openbookqa="$T/obqa.tsv")" = "$(lls --task-file openbookqa="$T/obqa.tsv.xz")" ]
    [ "$(lls --task-file boolq="$T/boolq.jsonl")" = "$(lls --task-file boolq="$T/boolq-hf.jsonl")" ]
    [ "$(lls --task-file hellaswag="$T/hs.txt")" = "$(lls --task-file hellaswag="$T/hs.txt.bz2")" ]
    # the llama.cpp HellaSwag file says how it differs from the harness's contexts
    run pare-eval -q -m "$MODEL" --tokenizer "$TOK" --task-file hellaswag="$T/hs.txt" --json
    [[ "$output" == *"not capitalised"* ]]
}

@test "eval tasks: merging 3 shards equals the unsharded report" {
    need_data
    head -c 3000 "$STORIES" > "$T/s.txt"
    args="-m $MODEL --tokenizer $TOK --data-dir $DATA --tasks all --limit 11 --ppl $T/s.txt --generate --max-length 24 --items"
    pare-eval -q $args --json > "$T/whole.json"
    for i in 0 1 2; do pare-eval -q $args --shard $i/3 -o "$T/s$i.pare"; done
    # each shard holds its own items; the perplexity and samples come with shard 0
    pare show "$T/s1.pare" | grep -q '"shard":{"index":1,"count":3}'
    ! pare show "$T/s1.pare" | grep -q '"metric":"ppl"'
    pare-eval -q --merge "$T/s2.pare" "$T/s0.pare" "$T/s1.pare" --json > "$T/merged.json"
    # the same report: every count, accuracy, stderr, perplexity and sample exactly;
    # per-item log-likelihoods to float rounding (the batches differ)
    $PY - "$T/whole.json" "$T/merged.json" <<'EOF'
import json, sys
a, b = (json.load(open(f)) for f in sys.argv[1:3])
assert len(a["items"]) == 7 * 11 and [(i["task"], i["index"]) for i in a["items"]] == [(i["task"], i["index"]) for i in b["items"]]
for x, y in zip(a["items"], b["items"]):
    for u, v in zip(x.pop("ll"), y.pop("ll")):
        assert abs(u - v) <= 1e-6 * abs(u), (u, v)
assert a == b
EOF
    # as a stream too, and with a shard missing or twice
    pare-eval -q --merge "$T/s0.pare" "$T/s1.pare" "$T/s2.pare" -o "$T/merged.pare"
    pare show "$T/merged.pare" | grep -q '"task":"average"'
    run pare-eval --merge "$T/s0.pare" "$T/s1.pare"
    [ "$status" -eq 1 ]
    [[ "$output" == *"shard 2/3 is missing"* ]]
    run pare-eval --merge "$T/s0.pare" "$T/s1.pare" "$T/s1.pare"
    [ "$status" -eq 1 ]
    [[ "$output" == *"given twice"* ]]
}

@test "eval tasks: a choice repeated within an item ties exactly, and the first copy wins" {
    need_data
    cat > "$T/arc.jsonl" <<'EOF'
{"id": "1", "question": "Which pet?", "choices": {"text": ["dog", "a cat", "a cat", "fish"], "label": ["A", "B", "C", "D"]}, "answerKey": "C"}
{"id": "2", "question": "What is the sun?", "choices": {"text": ["a star", "a star"], "label": ["A", "B"]}, "answerKey": "B"}
EOF
    pare-eval -q -m "$MODEL" --tokenizer "$TOK" --task-file arc_easy="$T/arc.jsonl" --items --json > "$T/r.json"
    $PY - "$T/r.json" <<'EOF'
import json, sys
r = json.load(open(sys.argv[1]))
a, b = r["items"]
assert a["ll"][1] == a["ll"][2] and b["ll"][0] == b["ll"][1]
assert a["pred"] != 2 and b["pred"] == 0 and b["pred_norm"] == 0
assert [m["value"] for m in r["metrics"] if m["task"] == "arc_easy"] == [0.0, 0.0]
EOF
}

@test "eval tasks: whole reports merge by joining; the same metric twice is refused" {
    need_data
    pare-eval -q -m "$MODEL" --tokenizer "$TOK" --data-dir "$DATA" --tasks piqa --limit 4 -o "$T/a.pare"
    pare-eval -q -m "$MODEL" --tokenizer "$TOK" --data-dir "$DATA" --tasks openbookqa --limit 4 -o "$T/b.pare"
    pare-eval -q -m "$MODEL" --tokenizer "$TOK" --data-dir "$DATA" --tasks piqa,openbookqa --limit 4 --json > "$T/ab.json"
    pare-eval -q --merge "$T/a.pare" "$T/b.pare" --json > "$T/merged.json"
    cmp "$T/ab.json" "$T/merged.json"
    run pare-eval --merge "$T/a.pare" "$T/a.pare"
    [ "$status" -eq 1 ]
    [[ "$output" == *"piqa/acc is in two of the reports"* ]]
}

# One error line naming FILE:LINE, exit 1.
bad_file() {
    local task="$1" file="$2" want="$3"
    run pare-eval -m "$MODEL" --tokenizer "$TOK" --task-file "$task=$file" -o "$T/never.pare"
    echo "$output"
    [ "$status" -eq 1 ]
    [ "${#lines[@]}" -eq 1 ]
    [[ "$output" == *"$want"* ]]
    [ ! -e "$T/never.pare" ]
}

@test "eval tasks: bad task files give one error naming the file and line" {
    need_data
    good='{"goal": "g", "sol1": "a", "sol2": "b", "label": 0}'
    printf '%s\n{"goal": "g", "sol1": "a", "label": 1}\n' "$good" > "$T/missing.jsonl"
    bad_file piqa "$T/missing.jsonl" "missing.jsonl:2: missing field \"sol2\""
    printf '%s\n%s\n{"goal": "g", "sol1": "a", "sol2": "b", "label": 2}\n' "$good" "$good" > "$T/range.jsonl"
    bad_file piqa "$T/range.jsonl" "range.jsonl:3: label out of range"
    printf '%s\n{"goal": "g", "sol1": "a", "so' "$good" > "$T/trunc.jsonl"
    bad_file piqa "$T/trunc.jsonl" "trunc.jsonl:2: bad JSON"
    printf '%s\n{"goal": "caf\xe9", "sol1": "a", "sol2": "b", "label": 0}\n' "$good" > "$T/latin1.jsonl"
    bad_file piqa "$T/latin1.jsonl" "latin1.jsonl:2: invalid UTF-8"
    printf '%s\n' "$good" | iconv -f UTF-8 -t UTF-16 > "$T/utf16.jsonl"
    bad_file piqa "$T/utf16.jsonl" "utf16.jsonl:1: invalid UTF-8"
    # the other readers
    printf '{"id": "1", "question": "q", "choices": {"text": ["a", "b"], "label": ["A", "B"]}, "answerKey": "C"}\n' > "$T/arc.jsonl"
    bad_file arc_easy "$T/arc.jsonl" "arc.jsonl:1: label out of range"
    printf '{"question": "q", "passage": "p", "label": "maybe"}\n' > "$T/boolq.jsonl"
    bad_file boolq "$T/boolq.jsonl" "boolq.jsonl:1:"
    printf '{"sentence": "no blank here", "option1": "a", "option2": "b", "answer": "1"}\n' > "$T/wg.jsonl"
    bad_file winogrande "$T/wg.jsonl" "wg.jsonl:1: the sentence has no \"_\""
    printf 'ctx\n1\na\nb\nc\nd\nctx2\n7\na\nb\nc\nd\n' > "$T/hs.txt"
    bad_file hellaswag "$T/hs.txt" "hs.txt:8: label out of range"
    printf 'ctx\n1\na\nb\n' > "$T/hs2.txt"
    bad_file hellaswag "$T/hs2.txt" "hs2.txt:1: truncated"
    printf 'ID\tQuestion Stem\tChoices\tComplete Question\tAnswer Key\n1\tstem\t(A) a (B) b (C) c\tx\tA\n' > "$T/obqa.tsv"
    bad_file openbookqa "$T/obqa.tsv" "obqa.tsv:2: missing field: choice D"
    printf '{"goal": "g", "sol1": "a", "sol2": "b"}\n' > "$T/nolabels.jsonl"
    bad_file piqa "$T/nolabels.jsonl" "nolabels-labels.lst does not exist"
    bad_file piqa "$T/absent.jsonl" "absent.jsonl"
}

@test "eval tasks: bad options are usage errors" {
    run pare-eval -m x --tasks nope
    [ "$status" -eq 2 ]
    [[ "$output" == *"unknown task 'nope'"* ]]
    run pare-eval -m x --task-file piqa
    [ "$status" -eq 2 ]
    run pare-eval -m x --tasks piqa --shard 3/3
    [ "$status" -eq 2 ]
    run pare-eval -m x --tasks piqa --shard 1
    [ "$status" -eq 2 ]
    run pare-eval --merge
    [ "$status" -eq 2 ]
    run pare-eval --merge -m x a.pare
    [ "$status" -eq 2 ]
    run pare-eval -m x
    [ "$status" -eq 2 ]
    [[ "$output" == *"nothing to evaluate"* ]]
}

@test "eval generate: the paper's five prompts, 128 tokens with the prompt, deterministic in --seed" {
    need_data
    pare-eval -q -m "$MODEL" --tokenizer "$TOK" --generate --json > "$T/a.json"
    pare-eval -q -m "$MODEL" --tokenizer "$TOK" --generate --json > "$T/b.json"
    pare-eval -q -m "$MODEL" --tokenizer "$TOK" --generate --seed 7 --json > "$T/c.json"
    cmp "$T/a.json" "$T/b.json"
    ! cmp -s "$T/a.json" "$T/c.json"
    $PY - "$T/a.json" <<'EOF'
import json, sys
s = json.load(open(sys.argv[1]))["samples"]
assert len(s) == 5
assert s[0]["prompt"] == "I believe the meaning of life is"
assert s[2]["prompt"] == "Building a website can be done in 10 simple steps:\n"
assert "sea otter => loutre de mer" in s[4]["prompt"] and "menthe poivrée" in s[4]["prompt"]
assert "My day has been 👍" in s[3]["prompt"]
for x in s:
    p = x["protocol"]
    assert (p["top_k"], p["top_p"], p["temperature"], p["max_length"], p["seed"]) == (50, 0.95, 1.0, 128, 42)
    # at least one token, as Hugging Face generates even when the prompt fills max_length
    assert x["prompt_tokens"] + x["tokens"] <= 128 or x["tokens"] == 1
    assert x["tokens"] >= 1
    assert len(x["text"]) > 0
EOF
    # --prompt replaces them; --max-length counts the prompt (with BOS)
    pare-eval -q -m "$MODEL" --tokenizer "$TOK" --prompt "Once upon a time" --prompt "Lily" --max-length 20 --json > "$T/d.json"
    $PY -c 'import json,sys; s=json.load(open(sys.argv[1]))["samples"]; assert [x["prompt"] for x in s]==["Once upon a time","Lily"]; assert all(x["prompt_tokens"]+x["tokens"]<=20 for x in s)' "$T/d.json"
    # a prompt that is not UTF-8 is recorded with U+FFFD in place of the bad byte
    pare-eval -q -m "$MODEL" --tokenizer "$TOK" --prompt "$(printf 'Lily \377')" --max-length 12 --json > "$T/e.json"
    $PY -c 'import json,sys; assert json.load(open(sys.argv[1]))["samples"][0]["prompt"] == "Lily \ufffd"' "$T/e.json"
}

@test "eval stats: parameters, MACs as test_speedup.py counts them, memory, speed" {
    need_data
    pare-eval -q -m "$MODEL" --tokenizer "$TOK" --stats --json > "$T/s.json"
    $PY - "$T/s.json" "$MODEL" <<'EOF'
import json, struct, sys
st = json.load(open(sys.argv[1]))["stats"]
dim, hidden, L, H, KV, V, seq = struct.unpack("7i", open(sys.argv[2], "rb").read(28))
hd, T = dim // H, 64
params = V * dim + L * (2 * dim + dim * dim * 2 + 2 * dim * KV * hd + 3 * dim * hidden) + dim
# ptflops with LLM-Pruner's hooks: linear maps, rotary, QK^T + softmax + PV, RMSNorm 2*numel, SiLU numel
macs = L * (T * dim * (2 * dim + 2 * KV * hd) + 2 * (T * H * hd) * 2 + H * (2 * T * T * hd + T * T)
            + 3 * T * dim * hidden + T * hidden + 2 * 2 * T * dim) + 2 * T * dim + T * dim * V
assert st["params"] == params, (st["params"], params)
assert st["macs"] == macs and st["macs_tokens"] == 64, (st["macs"], macs)
assert st["bytes"] == 4 * params and st["bytes_f16"] == 2 * params
assert st["peak_rss"] > 0 and st["latency_s"] > 0 and st["tokens_per_s"] > 0 and st["decode_tokens_per_s"] > 0
EOF
    pare-eval -m "$MODEL" --tokenizer "$TOK" --stats -o "$T/s.pare" 2> "$T/table"
    grep -q "MACs" "$T/table"
    pare show "$T/s.pare" | grep -q '"t":"stats"'
}

@test "eval tasks: the table on stderr prints value ± stderr and marks the paper's metrics" {
    need_data
    run pare-eval -m "$MODEL" --tokenizer "$TOK" --data-dir "$DATA" --tasks piqa,hellaswag --limit 6 -o "$T/r.pare"
    [ "$status" -eq 0 ]
    [[ "$output" == *"piqa: acc"*"items/s"* ]]
    echo "$output" | grep -E '^piqa +acc +0\.[0-9]{4} ± 0\.[0-9]{4} +6 \*$'
    echo "$output" | grep -E '^hellaswag +acc_norm +0\.[0-9]{4} ± 0\.[0-9]{4} +6 \*$'
    echo "$output" | grep -E '^average +paper '
    pare show "$T/r.pare" | grep '"task":"piqa"' | grep -q '"bos":"none"'
}

@test "examples: the Slurm array script runs locally, one shard per task id, and merges" {
    need_data
    for i in 0 1 2; do
        SLURM_ARRAY_TASK_ID=$i SLURM_ARRAY_TASK_COUNT=3 PARE_DATA="$DATA" OUT="$T/sweep" MODEL="$MODEL" TOKENIZER="$TOK" \
            TASKS=piqa,openbookqa LIMIT=9 sh "$ROOT/examples/eval-array.sbatch"
    done
    ls "$T/sweep"
    pare-eval -q --merge "$T"/sweep/shard-*.pare --json > "$T/merged.json"
    pare-eval -q -m "$MODEL" --tokenizer "$TOK" --data-dir "$DATA" --tasks piqa,openbookqa --limit 9 --json > "$T/whole.json"
    cmp "$T/whole.json" "$T/merged.json"
}

@test "examples: the sweep Makefile runs discover, score, prune, lora, eval with make -j, one report per point" {
    need_data
    head -c 20000 "$STORIES" > "$T/train.txt"
    make -s -j2 -C "$ROOT/examples" -f sweep.mk OUT="$T/sweep" MODEL="$MODEL" TOKENIZER="$TOK" PARE_DATA="$DATA" \
        RATIOS="0.1 0.2" CRITERIA="element1 l2" TASKS=piqa LIMIT=4 SHARDS=2 TRAIN="$T/train.txt"
    ls "$T/sweep"
    for r in 0.1 0.2; do for c in element1 l2; do
        pare show "$T/sweep/r$r-$c/report.pare" | grep -q '"task":"piqa"'
        # recovered: the merged model's provenance names the training, not a copy of the pruned one
        ! cmp -s "$T/sweep/r$r-$c/pruned.pare" "$T/sweep/r$r-$c/tuned.pare"
        pare show "$T/sweep/r$r-$c/tuned.pare" | head -1 | grep -q '"pare-lora'
    done; done
    [ -f "$T/sweep/summary.tsv" ]
    [ "$(wc -l < "$T/sweep/summary.tsv")" -eq 5 ]
}

@test "examples: iterative.mk prunes in STEPS rounds beside one shot, each round's streams cached" {
    need_data
    make -s -C "$ROOT/examples" -f iterative.mk OUT="$T/it" MODEL="$MODEL" TOKENIZER="$TOK" PARE_DATA="$DATA" \
        STEPS=2 TARGET=0.1 LIMIT=2 > "$T/out.txt"
    for k in 1 2; do for f in groups scores pruned report; do [ -s "$T/it/step-$k/$f.pare" ]; done; done
    [ -s "$T/it/oneshot/report.pare" ]
    $PY - "$T/it/summary.tsv" <<'PY'
import sys
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1])]
assert rows[0][:4] == ["model", "params", "wikitext2", "heldout"], rows[0]
names = [r[0] for r in rows[1:]]
assert names == ["step-0", "oneshot", "step-1", "step-2"], names
p = {r[0]: r[1] for r in rows[1:]}
base = 260032
# round K goes K/2 of the way to 10% of the original removed: both reach it
assert int(p["step-1"]) < base and int(p["step-2"]) < int(p["step-1"]), p
assert int(p["step-2"]) <= 0.9 * base and int(p["oneshot"]) <= 0.9 * base, p
assert all(float(x) > 1 for r in rows[1:] for x in r[2:4]), rows
PY
    # cached: a second run makes nothing
    before=$(stat -c %Y "$T/it/step-2/pruned.pare")
    make -s -C "$ROOT/examples" -f iterative.mk OUT="$T/it" MODEL="$MODEL" TOKENIZER="$TOK" PARE_DATA="$DATA" \
        STEPS=2 TARGET=0.1 LIMIT=2 > /dev/null
    [ "$(stat -c %Y "$T/it/step-2/pruned.pare")" = "$before" ]
}

@test "examples: quality.sh tables criteria x selection x size, the automatic recipe and the rank check" {
    need_data
    run env PARE_DATA="$DATA" OUT="$T/q" RATIOS=0.2 CRITERIA="element1 l2" SELECTS="local adaptive" LIMIT=2 \
        STATS=all,ablation ABLATE=2 "$ROOT/examples/quality.sh"
    [ "$status" -eq 0 ]
    [ "$(grep -cE '^0\.2	(element1|l2)	(local|adaptive)	[0-9]+	[0-9.]+	[0-9.]+$' <<<"$output")" -eq 4 ]
    grep -qE '^0\.2	auto: [a-z0-9]+	(local|global|adaptive)	[0-9]+	' <<<"$output"
    [[ "$output" == *"rank check: Spearman"* ]]
}

@test "eval generate: ids of a vocabulary padded past the tokenizer's decode to nothing, as Hugging Face drops them" {
    need_data
    # 2048 rows of logits for tok512's 512 pieces (Qwen pads 151,669 tokens to 151,936):
    # a random model draws mostly ids that no piece has
    pare-mkmodel --vocab 2048 --tokenizer "$TOK" -o "$T/padded" > /dev/null
    run pare-eval -q -m "$T/padded" --prompt "Once upon a time" --max-length 64 --json
    [ "$status" -eq 0 ] || { echo "$output"; false; }
    echo "$output" > "$T/g.json"
    $PY - "$T/g.json" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))["samples"][0]
assert s["tokens"] == 64 - s["prompt_tokens"], s
PY
}
