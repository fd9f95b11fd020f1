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

@test "discover: ChatGLM-6B from its config alone: 384-row q/k/v heads, MLP channels, LayerNorm hidden channels" {
    pare-discover -q -m "$DATA/configs/chatglm-6b/config.json" -o "$T/glm.pare"
    pare show "$T/glm.pare" > "$T/glm.jsonl"
    $PY - "$T/glm.jsonl" "$DATA/configs/chatglm-6b/pytorch_model.bin.index.json" <<'PY'
import json, sys
lines = [json.loads(l) for l in open(sys.argv[1])]
h, groups = lines[0], lines[1:-1]
assert h["model"]["weights"] is False and h["model"]["config"]["inner_hidden_size"] == 16384
kinds = [g["kind"] for g in groups]
assert kinds == ["attn", "ffn"] * 28 + ["hidden"] + ["layer"] * 28, kinds
P = "transformer.layers.3."
a = groups[6]
assert a["layer"] == 3 and a["units"] == 32
m = {(x["tensor"], x["axis"]): (x["start"], x["stride"], x["width"]) for x in a["members"]}
# a head: its block of 384 rows [q_h | k_h | v_h] of query_key_value (and bias), 128 columns of dense
assert m == {(P + "attention.query_key_value.weight", 0): (0, 384, 384),
             (P + "attention.query_key_value.bias", 0): (0, 384, 384),
             (P + "attention.dense.weight", 1): (0, 128, 128)}, m
assert a["unit_params"] == 384 * 4096 + 384 + 4096 * 128
f = groups[7]
m = {(x["tensor"], x["axis"]): (x["start"], x["stride"], x["width"]) for x in f["members"]}
assert f["units"] == 16384 and m == {(P + "mlp.dense_h_to_4h.weight", 0): (0, 1, 1),
    (P + "mlp.dense_h_to_4h.bias", 0): (0, 1, 1), (P + "mlp.dense_4h_to_h.weight", 1): (0, 1, 1)}, m
hid = groups[56]
names = {(x["tensor"], x["axis"]) for x in hid["members"]}
# embedding column, final LayerNorm weight and bias, LM head column; per layer both LayerNorms'
# weight and bias, q/k/v and dense_h_to_4h columns, dense and dense_4h_to_h rows and biases
assert hid["units"] == 4096 and len(names) == 4 + 28 * 10
assert {("transformer.final_layernorm.bias", 0), (P + "input_layernorm.bias", 0),
        (P + "attention.dense.bias", 0), ("lm_head.weight", 1)} <= names
assert hid["unit_params"] == 2 * 130528 + 2 + 28 * (2 + 12288 + 4097 + 2 + 16384 + 16385)
# the tensors the groups name are the published checkpoint's, less its rotary buffers
index = {k for k in json.load(open(sys.argv[2]))["weight_map"] if not k.endswith("rotary_emb.inv_freq")}
named = {x["tensor"] for g in groups for x in g["members"]}
assert named == index, sorted(named ^ index)[:5]
PY
}

@test "discover: ChatGLM2-6B from its config alone: a key/value group with its 16 query heads, gate/up rows in pairs" {
    pare-discover -q -m "$ROOT/tests/configs/chatglm2-6b.json" -o "$T/glm2.pare"
    pare show "$T/glm2.pare" > "$T/glm2.jsonl"
    $PY - "$T/glm2.jsonl" <<'PY'
import json, sys
lines = [json.loads(l) for l in open(sys.argv[1])]
groups = lines[1:-1]
assert [g["kind"] for g in groups] == ["attn", "ffn"] * 28 + ["hidden"] + ["layer"] * 28
P = "transformer.encoder.layers.0."
a = groups[0]
ms = sorted((x["tensor"][len(P):], x["axis"], x["start"], x["stride"], x["width"]) for x in a["members"])
# fused rows [Q 4096 | K 256 | V 256]: group g has query rows 2048g.., key rows 4096+128g.., value rows 4352+128g..
qkv = [(0, 2048, 2048), (4096, 128, 128), (4352, 128, 128)]
assert a["units"] == 2 and ms == sorted([("self_attention.dense.weight", 1, 0, 2048, 2048)] +
    [("self_attention.query_key_value." + t, 0) + s for t in ("weight", "bias") for s in qkv]), ms
assert a["unit_params"] == 2304 * 4096 + 2304 + 4096 * 2048
f = groups[1]
ms = sorted((x["tensor"][len(P):], x["axis"], x["start"], x["stride"], x["width"]) for x in f["members"])
# channel i: gate row i and up row 13696 + i of dense_h_to_4h, column i of dense_4h_to_h
assert f["units"] == 13696 and ms == [("mlp.dense_4h_to_h.weight", 1, 0, 1, 1),
    ("mlp.dense_h_to_4h.weight", 0, 0, 1, 1), ("mlp.dense_h_to_4h.weight", 0, 13696, 1, 1)], ms
hid = groups[56]
names = {x["tensor"] for x in hid["members"]}
assert {"transformer.embedding.word_embeddings.weight", "transformer.output_layer.weight",
        "transformer.encoder.final_layernorm.weight"} <= names and len(hid["members"]) == 3 + 28 * 6
PY
}
