#!/usr/bin/env bats
# pare-mkmodel: the fixture generator other tests build their models with.

setup() {
    TMP="$(mktemp -d)"
}

teardown() {
    rm -rf "$TMP"
}

small() {
    pare-mkmodel --dim 16 --layers 2 --heads 4 --kv-heads 2 --ffn 24 --vocab 32 "$@"
}

@test "pare-mkmodel: the same seed gives the same bytes and fingerprint" {
    run small --seed 5 -o "$TMP/a"
    [ "$status" -eq 0 ]
    [[ "$output" =~ ^[0-9a-f]{16}$ ]]
    fp="$output"
    run small --seed 5 -o "$TMP/b"
    [ "$status" -eq 0 ]
    [ "$output" = "$fp" ]
    cmp "$TMP/a/model.safetensors" "$TMP/b/model.safetensors"
    cmp "$TMP/a/config.json" "$TMP/b/config.json"
    run small --seed 6 -o "$TMP/c"
    [ "$output" != "$fp" ]
}

@test "pare-mkmodel: sharding does not change the model" {
    run small --seed 5 -o "$TMP/a"
    fp="$output"
    run small --seed 5 --shards 3 -o "$TMP/s"
    [ "$status" -eq 0 ]
    [ "$output" = "$fp" ]
    [ -f "$TMP/s/model.safetensors.index.json" ]
    [ -f "$TMP/s/model-00003-of-00003.safetensors" ]
    [ ! -e "$TMP/s/model.safetensors" ]
}

@test "pare-mkmodel: per-layer sizes reach config.json as arrays" {
    run pare-mkmodel --dim 16 --layers 3 --heads 4,2,0 --kv-heads 2,1,0 --ffn 24,0,8 \
        --head-dim 4 --vocab 32 --dtype bf16 --qkv-bias --tied -o "$TMP/h"
    [ "$status" -eq 0 ]
    grep -q '"torch_dtype": "bfloat16"' "$TMP/h/config.json"
    grep -q '"tie_word_embeddings": true' "$TMP/h/config.json"
    tr -d ' \n' < "$TMP/h/config.json" | grep -q '"num_attention_heads":\[4,2,0\]'
}

@test "pare-mkmodel: bad values are usage errors" {
    run small --heads 3,3,3 -o "$TMP/x"
    [ "$status" -eq 2 ]
    [[ "$output" == *"--heads"* ]]
    run small --dtype f64 -o "$TMP/x"
    [ "$status" -eq 2 ]
    run small --heads 4 --kv-heads 3 -o "$TMP/x"
    [ "$status" -eq 1 ]
    [[ "$output" == *"does not divide"* ]]
    run small
    [ "$status" -eq 2 ]
}

@test "pare-mkmodel: --help lists the options" {
    run pare-mkmodel --help
    [ "$status" -eq 0 ]
    for o in --dim --layers --heads --kv-heads --ffn --vocab --head-dim --tied --untied \
             --qkv-bias --rope --dtype --seed --shards --tokenizer -o; do
        [[ "$output" == *"$o"* ]]
    done
}
