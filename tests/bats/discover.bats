#!/usr/bin/env bats
# pare-discover: groups of real models and of configs alone; filters; errors.
load helper

@test "discover: --help lists the options of the man page" {
    run pare-discover --help
    [ "$status" -eq 0 ]
    help_lists_man_options "$output" "$ROOT/man/pare-discover.1"
}

@test "discover: stories260K (GQA 8 heads / 4 kv heads, tied) groups" {
    need_data
    pare-discover -q -m "$MODEL" -o "$T/g.pare"
    pare show "$T/g.pare" > "$T/g.jsonl"
    $PY - "$T/g.jsonl" <<'PY'
import json, sys
lines = [json.loads(l) for l in open(sys.argv[1])]
h, groups = lines[0], lines[1:-1]
assert h["pare"] == "groups" and h["model"]["weights"] is True
kinds = [g["kind"] for g in groups]
assert kinds == ["attn", "ffn"] * 5 + ["hidden"] + ["layer"] * 5, kinds
a = groups[0]
assert a["units"] == 4 and a["unit_params"] == 3072
m = {(x["tensor"].split(".")[-2], x["axis"]): (x["start"], x["stride"], x["width"]) for x in a["members"]}
assert m[("q_proj", 0)] == (0, 16, 16) and m[("k_proj", 0)] == (0, 8, 8) and m[("o_proj", 1)] == (0, 16, 16), m
hid = groups[10]
assert hid["units"] == 64 and hid["layer"] == -1
names = {x["tensor"] for x in hid["members"]}
assert "lm_head.weight" not in names and "model.embed_tokens.weight" in names and "model.norm.weight" in names
PY
}

@test "discover: --kinds filters; unknown kind is a usage error" {
    need_data
    run sh -c "pare-discover -q -m '$MODEL' --kinds attn,ffn | pare show | grep -c '\"t\":\"group\"'"
    [ "$output" -eq 10 ]
    run pare-discover -m "$MODEL" --kinds attn,heads
    [ "$status" -eq 2 ]
    [[ "$output" == *"unknown kind 'heads'"* ]]
}

@test "discover: works from a config.json alone (LLaMA-7B), marked as planning only" {
    run sh -c "pare-discover -m '$DATA/configs/llama-7b.json' 2>&1 >'$T/7b.pare'"
    [ "$status" -eq 0 ]
    [[ "$output" == *"32 attn, 32 ffn, 1 hidden, 32 layer"* ]]
    [[ "$output" == *"planning only"* ]]
    pare show "$T/7b.pare" | head -1 | grep -q '"weights":false'
    # one MHA head of 128 channels; 291 hidden members (2 + 1 + 32*9)
    pare show "$T/7b.pare" | sed -n 2p | grep -q '"units":32,"unit_params":2097152'
    pare show "$T/7b.pare" | grep '"kind":"hidden"' | $PY -c 'import json,sys; g=json.load(sys.stdin); assert len(g["members"]) == 291 and g["unit_params"] == 1645121'
}

@test "discover: same input gives byte-identical output; a checkpoint gives the same groups" {
    need_data
    pare-discover -q -m "$MODEL" > "$T/a"
    pare-discover -q -m "$MODEL" > "$T/b"
    cmp "$T/a" "$T/b"
    pare convert -m "$MODEL" --tokenizer "$TOK" -o "$T/m.pare"
    pare-discover -q -m "$T/m.pare" | pare show | sed 1d > "$T/c"
    pare show "$T/a" | sed 1d > "$T/d"
    cmp "$T/c" "$T/d"
}

@test "discover: bad usage and bad models" {
    run pare-discover
    [ "$status" -eq 2 ]
    run pare-discover -m "$T/none.json"
    [ "$status" -eq 1 ]
    [[ "$output" == *"none.json"* ]]
    echo '{"model_type": "gpt2", "hidden_size": 8}' > "$T/config.json"
    run pare-discover -m "$T/config.json"
    [ "$status" -eq 1 ]
    [[ "$output" == *"config.json"* ]]
}
