#!/usr/bin/env bats
# pare-score: the scores stream on stories260K (header, statistics, activations),
# determinism, calibration file forms, shards and their merge, the pipeline on to
# pare-prune (every criterion, FLAP's biases) and pare-eval, progress, errors.
load helper

small() {
    pare-mkmodel --dim 16 --layers 3 --heads 4 --kv-heads 2 --ffn 24 --vocab 512 --head-dim 4 "$@"
}

# the stories260K groups, once per test
groups() {
    pare-discover -q -m "$MODEL" -o "$T/g.pare"
}

score() {
    pare-score -q -m "$MODEL" --tokenizer "$TOK" --calib "$STORIES" "$@"
}

@test "score: --help lists the options of the man page" {
    run pare-score --help
    [ "$status" -eq 0 ]
    help_lists_man_options "$output" "$ROOT/man/pare-score.1"
}

@test "score: stories260K scores stream: header, every statistic, activations" {
    need_data
    groups
    score -o "$T/s.pare" "$T/g.pare"
    pare show "$T/s.pare" > "$T/s.jsonl"
    $PY - "$T/s.jsonl" <<'PY'
import json, sys
lines = [json.loads(l) for l in open(sys.argv[1])]
h = lines[0]
assert h["pare"] == "scores" and h["model"]["fingerprint"] == "9e148dffbcfbf67b", h
assert h["stats"] == ["vector", "element1", "element2", "mix", "l1", "l2"], h["stats"]
c = h["calibration"]
assert c["samples"] == 10 and c["seq_len"] == 64 and c["seed"] == 42 and c["format"] == "text", c
assert len(c["starts"]) == 10 and len(set(c["starts"])) == 10, c
assert all(0 <= s <= c["tokens"] - 64 for s in c["starts"]) and len(c["xxh64"]) == 16, c
groups = [r for r in lines[1:] if r.get("t") == "group"]
assert len(groups) == 16
for g in groups:
    assert set(g["scores"]) == set(h["stats"]), g
    for s in g["scores"].values():
        assert s["bytes"] == 4 * len(g["members"]) * g["units"]
acts = [r for r in lines[1:] if r.get("t") == "activations"]
# q, k, v, o, gate, up, down per layer and the (tied) LM head
assert len(acts) == 5 * 7 + 1, len(acts)
assert acts[-1]["tensor"] == "model.embed_tokens.weight" and all(a["tokens"] == 640 for a in acts)
assert acts[0]["tensor"] == "model.layers.0.self_attn.q_proj.weight" and acts[0]["channels"] == 64
assert acts[6]["tensor"] == "model.layers.0.mlp.down_proj.weight" and acts[6]["channels"] == 172
PY
}

@test "score: the same inputs give a byte-identical stream on 1, 2 or 3 threads; another seed other windows" {
    need_data
    groups
    for run in 1 2 3; do
        PARE_THREADS=$run score -o "$T/out" "$T/g.pare"
        mv "$T/out" "$T/$run"
    done
    cmp "$T/1" "$T/2"
    cmp "$T/1" "$T/3"
    mv "$T/1" "$T/a"
    score --seed 7 -o "$T/out" "$T/g.pare"
    pare show "$T/a" | head -1 | jq -c .calibration.starts > "$T/sa"
    pare show "$T/out" | head -1 | jq -c .calibration.starts > "$T/s7"
    ! cmp -s "$T/sa" "$T/s7"
}

@test "score: JSON lines, JSON arrays, Alpaca records and compressed files give the same windows" {
    need_data
    groups
    head -c 30000 "$STORIES" > "$T/c.txt"
    $PY - "$T/c.txt" "$T" <<'PY'
import json, sys
text = open(sys.argv[1], encoding="utf-8").read()
parts = text.split("\n\n")
d = sys.argv[2]
with open(d + "/c.jsonl", "w") as f:
    for p in parts:
        f.write(json.dumps({"text": p}) + "\n")
json.dump([{"text": p} for p in parts], open(d + "/c.json", "w"))
# Alpaca: instruction + "\n" + output, empty input left out
with open(d + "/a.jsonl", "w") as f:
    for p in parts:
        first, _, rest = p.partition("\n")
        f.write(json.dumps({"instruction": first, "input": "", "output": rest} if rest else {"text": p}) + "\n")
PY
    gzip -k "$T/c.txt"
    xz -k "$T/c.jsonl"
    zstd -q "$T/c.json" -o "$T/c.json.zst"
    tar -C "$T" -cf "$T/c.tar" c.txt
    want=$(score --stats l1 --samples 4 --seq-len 32 --calib "$T/c.txt" "$T/g.pare" | pare show | head -1 | jq -r .calibration.xxh64)
    [ -n "$want" ]
    for f in c.txt.gz c.jsonl c.jsonl.xz c.json c.json.zst c.tar a.jsonl; do
        got=$(score --stats l1 --samples 4 --seq-len 32 --calib "$T/$f" "$T/g.pare" | pare show | head -1 | jq -r .calibration.xxh64)
        [ "$got" = "$want" ] || { echo "$f: $got != $want"; false; }
    done
    fmt=$(score --stats l1 --samples 4 --seq-len 32 --calib "$T/c.json" "$T/g.pare" | pare show | head -1 | jq -r .calibration.format)
    [ "$fmt" = json ]
}

@test "score: three shards merged give the unsharded statistics, in any order" {
    need_data
    groups
    score -o "$T/whole.pare" "$T/g.pare"
    for i in 0 1 2; do
        score --shard $i/3 -o "$T/p$i.pare" "$T/g.pare"
    done
    pare show "$T/p1.pare" | head -1 | jq -e '.pare == "partial" and .shard.index == 1 and .shard.samples == [1, 4, 7]'
    pare-score -q --merge "$T/p2.pare" "$T/p0.pare" "$T/p1.pare" -o "$T/merged.pare"
    pare show "$T/merged.pare" > "$T/m.jsonl"
    pare show "$T/whole.pare" > "$T/w.jsonl"
    # the same header apart from argv, the same groups and activation records
    diff <(head -1 "$T/m.jsonl" | jq -S 'del(.argv)') <(head -1 "$T/w.jsonl" | jq -S 'del(.argv)')
    [ "$(grep -c '"t":"group"' "$T/m.jsonl")" -eq 16 ]
    [ "$(grep -c '"t":"activations"' "$T/m.jsonl")" -eq 36 ]
    # pruning by any criterion removes the same units
    for crit in vector element1 element2 mix l1 l2 flap wanda; do
        a=$(pare-prune -m "$MODEL" --criterion $crit --ratio 0.5 --layers 1-3 --dry-run "$T/merged.pare" | md5sum)
        pare-prune -q -m "$MODEL" --tokenizer "$TOK" --criterion $crit --ratio 0.5 --layers 1-3 -o "$T/a" "$T/merged.pare"
        pare-prune -q -m "$MODEL" --tokenizer "$TOK" --criterion $crit --ratio 0.5 --layers 1-3 -o "$T/b" "$T/whole.pare"
        diff <(pare show "$T/a" | head -1 | jq -c .provenance.groups) <(pare show "$T/b" | head -1 | jq -c .provenance.groups)
    done
}

@test "score: merge refuses missing, doubled and foreign shards" {
    need_data
    groups
    score --stats l1,element1 --samples 4 --shard 0/2 -o "$T/p0.pare" "$T/g.pare"
    score --stats l1,element1 --samples 4 --shard 1/2 -o "$T/p1.pare" "$T/g.pare"
    score --stats l1,element1 --samples 4 --seed 9 --shard 1/2 -o "$T/q1.pare" "$T/g.pare"
    run pare-score --merge "$T/p0.pare"
    [ "$status" -eq 1 ]
    [[ "$output" == "pare-score: error: --merge: 1 partial given for 2 shards" ]]
    run pare-score --merge "$T/p0.pare" "$T/p0.pare"
    [ "$status" -eq 1 ]
    [[ "$output" == *"shard 1 is missing"* ]]
    run pare-score --merge "$T/p0.pare" "$T/q1.pare"
    [ "$status" -eq 1 ]
    [[ "$output" == *"another calibration"* ]]
    run pare-score --merge "$T/g.pare"
    [ "$status" -eq 1 ]
    [[ "$output" == *"partial"* ]]
    run pare-score -q --merge "$T/p1.pare" "$T/p0.pare" -o "$T/s.pare"
    [ "$status" -eq 0 ]
    run pare-score --merge -m "$MODEL" "$T/p0.pare" "$T/p1.pare"
    [ "$status" -eq 2 ]
}

@test "score: discover | score | prune (every criterion) | eval" {
    need_data
    groups
    score -o "$T/s.pare" "$T/g.pare"
    for crit in element1 element2 mix vector l2 random flap wanda; do
        run sh -c "pare-prune -q -m '$MODEL' --tokenizer '$TOK' --criterion $crit --ratio 0.5 --layers 1-3 '$T/s.pare' |
                   pare-eval -q -m - --ppl '$STORIES' --limit 8 --json"
        [ "$status" -eq 0 ] || { echo "$crit: $output"; false; }
        ppl=$(jq '.metrics[0].value' <<<"$output" 2>/dev/null || grep -o '"value": *[0-9.e+]*' <<<"$output" | head -1 | sed 's/.*: *//')
        awk -v p="$ppl" 'BEGIN { exit !(p > 1 && p < 1e5) }' || { echo "$crit: ppl $ppl"; false; }
    done
}

@test "score: FLAP's bias compensation writes o_proj and down_proj biases" {
    need_data
    groups
    score -o "$T/s.pare" "$T/g.pare"
    run pare-prune -m "$MODEL" --tokenizer "$TOK" --criterion flap --ratio 0.5 --layers 1-3 -o "$T/f.pare" "$T/s.pare"
    [ "$status" -eq 0 ]
    [[ "$output" == *"criterion flap with bias compensation"* ]]
    pare show "$T/f.pare" > "$T/f.jsonl"
    head -1 "$T/f.jsonl" | jq -e '.config.o_proj_bias == true and .config.down_proj_bias == true and .provenance.bias_compensation == true'
    [ "$(grep -c '"name":"model.layers.[0-4].self_attn.o_proj.bias"' "$T/f.jsonl")" -eq 5 ]
    [ "$(grep -c '"name":"model.layers.[0-4].mlp.down_proj.bias"' "$T/f.jsonl")" -eq 5 ]
    pare-prune -q -m "$MODEL" --tokenizer "$TOK" --criterion flap --no-compensation --ratio 0.5 --layers 1-3 -o "$T/n.pare" "$T/s.pare"
    ! pare show "$T/n.pare" | grep -q 'o_proj.bias'
    # flap and wanda need activations: a groups stream, or scores without them, are refused
    run pare-prune -m "$MODEL" --criterion wanda --ratio 0.5 "$T/g.pare"
    [ "$status" -eq 1 ]
    score --stats element1 -o "$T/e.pare" "$T/g.pare"
    run pare-prune -m "$MODEL" --criterion flap --ratio 0.5 "$T/e.pare"
    [ "$status" -eq 1 ]
    [[ "$output" == *"no activation statistics"* ]]
    run pare-prune -m "$MODEL" --criterion mix --ratio 0.5 "$T/e.pare"
    [ "$status" -eq 1 ]
    [[ "$output" == *"no 'mix' statistic"* ]]
}

@test "score: --stats picks statistics; Fisher chunks; progress on stderr" {
    need_data
    groups
    run pare-score -m "$MODEL" --tokenizer "$TOK" --calib "$STORIES" --stats mix --fisher-memory 100K \
        --progress -o "$T/m.pare" "$T/g.pare"
    [ "$status" -eq 0 ]
    [[ "$output" == *"tok/s"* ]]
    [[ "$output" == *"121 passes in 11 chunks"* ]]   # 1 MB of F in chunks of 100 KiB, 11 passes each
    pare show "$T/m.pare" | head -1 | jq -e '.stats == ["mix"]'
    ! pare show "$T/m.pare" | grep -q '"t":"activations"'
    # a scores stream scored again keeps nothing of its old statistics
    score -o "$T/all.pare" "$T/g.pare"
    score --stats element1 -o "$T/again.pare" "$T/all.pare"
    pare show "$T/again.pare" | head -1 | jq -e '.stats == ["element1"]'
    ! pare show "$T/again.pare" | grep -q '"t":"activations"'
    ! pare show "$T/again.pare" | grep -q '"mix"'
    run pare-score -m "$MODEL" --tokenizer "$TOK" --calib "$STORIES" --stats l1,l2 -o "$T/l.pare" "$T/g.pare"
    [ "$status" -eq 0 ]
    [[ "$output" == *"0 passes"* ]]
}

@test "score: --stats ablation,influence: per-unit statistics, --ablate samples, layer criteria" {
    need_data
    groups
    score --samples 4 --seq-len 32 --stats element1,ablation,influence --ablate 2 -o "$T/a.pare" "$T/g.pare"
    pare show --data "$T/a.pare" > "$T/a.jsonl"
    $PY - "$T/a.jsonl" <<'PY'
import json, sys
lines = [json.loads(l) for l in open(sys.argv[1])]
assert lines[0]["stats"] == ["element1", "ablation", "ablated", "influence"], lines[0]["stats"]
def vals(b, n):
    assert len(b) == n
    return b
for g in (r for r in lines if r.get("t") == "group"):
    sc, U, M = g["scores"], g["units"], len(g["members"])
    a = vals(sc["ablation"], M * U)
    assert all(a[k * U + u] == a[u] for k in range(M) for u in range(U)), g["id"]
    if U > 2:
        f = vals(sc["ablated"], M * U)[:U]
        assert sorted(f) == [0.0] * (U - 2) + [1.0, 1.0], (g["id"], f)
        assert all(a[u] == 0 for u in range(U) if f[u] == 0)
    else:
        assert "ablated" not in sc
    assert ("influence" in sc) == (g["kind"] == "layer"), g["id"]
    if g["kind"] == "layer":
        assert 0 < vals(sc["influence"], M)[0] < 1 and a[0] > 0, g
PY
    # layer mode by either layer criterion, from the same run
    for crit in influence ablation; do
        run pare-prune -m "$MODEL" --mode layer --ratio 0.4 --criterion $crit --dry-run "$T/a.pare"
        [ "$status" -eq 0 ]
        [[ "$output" == *"criterion $crit"*"layers: 5 -> 3"* ]]
    done
    # a sample serves the rank check, not pruning by ablation
    run pare-prune -m "$MODEL" --ratio 0.3 --criterion ablation --dry-run "$T/a.pare"
    [ "$status" -eq 1 ]
    [[ "$output" == *"was not ablated"* ]]
}

@test "score: ablation and influence errors" {
    need_data
    groups
    run pare-score -m "$MODEL" --tokenizer "$TOK" --calib "$STORIES" --ablate 3 "$T/g.pare"
    [ "$status" -eq 2 ]
    [[ "$output" == *"--ablate"*"ablation"* ]]
    run pare-score -m "$MODEL" --tokenizer "$TOK" --calib "$STORIES" --stats ablation --ablate 0 "$T/g.pare"
    [ "$status" -eq 2 ]
    run pare-score -m "$MODEL" --tokenizer "$TOK" --calib "$STORIES" --stats ablation --ablate x "$T/g.pare"
    [ "$status" -eq 2 ]
    run pare-score -m "$MODEL" --tokenizer "$TOK" --calib "$STORIES" --stats influence --shard 0/2 "$T/g.pare"
    [ "$status" -eq 2 ]
    [[ "$output" == *"not sharded"* ]]
    run pare-score -m "$MODEL" --tokenizer "$TOK" --calib "$STORIES" --stats ablations "$T/g.pare"
    [ "$status" -eq 2 ]
    [[ "$output" == *"unknown statistic 'ablations'"* ]]
}

@test "score: errors" {
    need_data
    groups
    run pare-score -m "$MODEL" --tokenizer "$TOK" --calib "$T/none.txt" "$T/g.pare"
    [ "$status" -eq 1 ]
    [[ "$output" == "pare-score: error: cannot read '$T/none.txt'"* ]]
    printf 'Once upon a time.' > "$T/short.txt"
    run pare-score -m "$MODEL" --tokenizer "$TOK" --calib "$T/short.txt" "$T/g.pare"
    [ "$status" -eq 1 ]
    [[ "$output" == "pare-score: error: $T/short.txt: "*"too few for 10 distinct windows of 64 tokens"* ]]
    printf '{"text": "a"}\n{"txt": "b"}\n' > "$T/bad.jsonl"
    run pare-score -m "$MODEL" --tokenizer "$TOK" --calib "$T/bad.jsonl" "$T/g.pare"
    [ "$status" -eq 1 ]
    [[ "$output" == "pare-score: error: $T/bad.jsonl: line 2: no \"text\""* ]]
    # groups of another model, groups of a bare config
    small --seed 1 -o "$T/a" >/dev/null
    pare-discover -q -m "$T/a" -o "$T/ga.pare"
    run pare-score -m "$MODEL" --tokenizer "$TOK" --calib "$STORIES" "$T/ga.pare"
    [ "$status" -eq 1 ]
    [[ "$output" == "pare-score: error: "*"made for model"* ]]
    pare-discover -q -m "$T/a/config.json" -o "$T/gc.pare"
    run pare-score -m "$T/a" --tokenizer "$TOK" --calib "$STORIES" "$T/gc.pare"
    [ "$status" -eq 1 ]
    [[ "$output" == "pare-score: error: "*"bare config"* ]]
    run pare-score -m "$T/a/config.json" --tokenizer "$TOK" --calib "$STORIES" "$T/gc.pare"
    [ "$status" -eq 1 ]
    [[ "$output" == *"no weights"* ]]
    # a groups stream of this model without groups (the header and end of pare-discover's, re-sealed)
    run pare-score -m "$MODEL" --tokenizer "$TOK" --calib "$STORIES" "$ROOT/tests/fuzz/crashes/groups-none"
    [ "$status" -eq 1 ]
    [[ "$output" == "pare-score: error: "*"groups-none: the stream holds no groups: nothing to score" ]]
    # usage
    run pare-score -m "$MODEL" "$T/g.pare"
    [ "$status" -eq 2 ]
    [[ "$output" == *"--calib"* ]]
    run pare-score -m "$MODEL" --calib "$STORIES" --stats element3 "$T/g.pare"
    [ "$status" -eq 2 ]
    run pare-score -m "$MODEL" --calib "$STORIES" --shard 3/20 "$T/g.pare"
    [ "$status" -eq 2 ]
    run pare-score -m "$MODEL" --calib "$STORIES" --fisher-memory 12Q "$T/g.pare"
    [ "$status" -eq 2 ]
    run pare-score --bogus
    [ "$status" -eq 2 ]
}

@test "score: a random HF model with a tokenizer file scores and prunes" {
    need_data
    small --seed 4 -o "$T/m" >/dev/null
    pare-discover -q -m "$T/m" | pare-score -q -m "$T/m" --tokenizer "$TOK" --calib "$WIKI" --samples 4 --seq-len 16 \
        -o "$T/s.pare"
    run sh -c "pare-prune -q -m '$T/m' --tokenizer '$TOK' --criterion mix --ratio 0.5 --layers 0-2 '$T/s.pare' | pare show | head -1"
    [ "$status" -eq 0 ]
    [[ "$output" == *'"num_key_value_heads":1'* ]]
}
