#!/usr/bin/env bats
# pare-prune: the paper's counts from a config alone, pipelines on stories260K in
# every mode and criterion that needs no scores, the checkpoint it writes, and
# its errors.
load helper

CFG7B="$DATA/configs/llama-7b.json"

# The groups of LLaMA-7B from its config alone, found once for the whole file.
setup_file() {
    pare-discover -q -m "$CFG7B" -o "$BATS_FILE_TMPDIR/g7.pare"
}

small() {
    pare-mkmodel --dim 16 --layers 3 --heads 4 --kv-heads 2 --ffn 24 --vocab 512 --head-dim 4 "$@"
}

@test "prune: --help lists the options of the man page" {
    run pare-prune --help
    [ "$status" -eq 0 ]
    help_lists_man_options "$output" "$ROOT/man/pare-prune.1"
}

@test "prune: LLaMA-7B block 0.25 on layers 4-29 leaves 5,422,977,024 parameters (dry run, config alone)" {
    run pare-prune -m "$CFG7B" --mode block --ratio 0.25 --layers 4-29 --dry-run "$BATS_FILE_TMPDIR/g7.pare"
    [ "$status" -eq 0 ]
    [[ "$output" == *"parameters: 6738415616 -> 5422977024 "* ]]
    # 8 of 32 heads and 2752 of 11008 MLP channels go in layers 4..29, nothing elsewhere
    [[ "$(grep -E '^ +4 ' <<<"$output")" == *"24/32"*"8256/11008"* ]]
    [[ "$(grep -E '^ +29 ' <<<"$output")" == *"24/32"*"8256/11008"* ]]
    [[ "$(grep -E '^ +3 ' <<<"$output")" == *"32/32"*"11008/11008"* ]]
    [[ "$(grep -E '^ +30 ' <<<"$output")" == *"32/32"*"11008/11008"* ]]
    [[ "$output" == *"MACs (128 tokens)"* ]]
    # the default layers are the same for 32 layers
    run pare-prune -m "$CFG7B" --ratio 0.25 --dry-run "$BATS_FILE_TMPDIR/g7.pare"
    [[ "$output" == *"layers 4-29"* && "$output" == *"-> 5422977024 "* ]]
}

@test "prune: LLaMA-7B channel 0.2 leaves 5,389,416,396 parameters, hidden size 3276 (dry run)" {
    run sh -c "pare-prune -m '$CFG7B' --mode channel --ratio 0.2 --dry-run < '$BATS_FILE_TMPDIR/g7.pare'"
    [ "$status" -eq 0 ]
    [[ "$output" == *"hidden size: 4096 -> 3276"* ]]
    [[ "$output" == *"parameters: 6738415616 -> 5389416396 "* ]]
}

@test "prune: --target-params solves for the ratio" {
    run pare-prune -m "$CFG7B" --target-params 0.2 --dry-run "$BATS_FILE_TMPDIR/g7.pare"
    [ "$status" -eq 0 ]
    after=$(sed -n 's/^parameters: 6738415616 -> \([0-9]*\) .*/\1/p' <<<"$output")
    [ -n "$after" ]
    # at least 20% removed, and not more than one MLP channel of 26 layers too many
    [ "$after" -le $((6738415616 * 8 / 10)) ]
    [ "$after" -gt $((6738415616 * 8 / 10 - 26 * 3 * 4096)) ]
    [[ "$output" == *"solved for --target-params 0.2"* ]]
    run pare-prune -m "$CFG7B" --target-params 0.9 --dry-run "$BATS_FILE_TMPDIR/g7.pare"
    [ "$status" -eq 1 ]
    [[ "$output" == *"can remove at most"* ]]
}

@test "prune: stories260K pipelines in every mode with l1, l2 and random, then perplexity" {
    need_data
    pare-discover -q -m "$MODEL" -o "$T/g.pare"
    for mode in block channel layer; do
        for crit in l1 l2 random; do
            run sh -c "pare-prune -q -m '$MODEL' --tokenizer '$TOK' --mode $mode --criterion $crit --ratio 0.5 < '$T/g.pare' |
                       pare-eval -q -m - --ppl '$WIKI' --limit 4 --json"
            [ "$status" -eq 0 ] || { echo "$mode $crit: $output"; false; }
            ppl=$(grep -o '"value": *[0-9.e+]*' <<<"$output" | head -1 | sed 's/.*: *//')
            [ -n "$ppl" ] || { echo "$mode $crit: no ppl in $output"; false; }
            awk -v p="$ppl" 'BEGIN { exit !(p > 1 && p < 1e6) }'
        done
    done
}

@test "prune: the checkpoint has per-layer sizes, provenance and the tokenizer" {
    need_data
    pare-discover -q -m "$MODEL" | pare-prune -q -m "$MODEL" --tokenizer "$TOK" --ratio 0.5 --layers 1-3 \
        --criterion l1 -o "$T/p.ckpt"
    pare show "$T/p.ckpt" > "$T/p.jsonl"
    $PY - "$T/p.jsonl" <<'PY'
import json, sys
lines = [json.loads(l) for l in open(sys.argv[1])]
h = lines[0]
c, p = h["config"], h["provenance"]
assert c["num_attention_heads"] == [8, 4, 4, 4, 8], c
assert c["num_key_value_heads"] == [4, 2, 2, 2, 4], c
assert c["intermediate_size"] == [172, 86, 86, 86, 172], c
assert p["base_fingerprint"] == "9e148dffbcfbf67b" and p["mode"] == "block" and p["criterion"] == "l1"
assert p["aggregate"] == "sum" and p["layers"] == [1, 3] and p["ratio"] == 0.5
gs = p["groups"]
assert [(g["kind"], g["layer"]) for g in gs] == [(k, l) for l in (1, 2, 3) for k in ("attn", "ffn")]
for g in gs:
    assert len(g["removed"]) == g["units"] // 2 and g["removed"] == sorted(set(g["removed"]))
assert any(r["t"] == "tokenizer" for r in lines[1:-1])
PY
}

@test "prune: random is deterministic in --seed; output is byte-identical" {
    need_data
    pare-discover -q -m "$MODEL" -o "$T/g.pare"
    # argv is part of the header: write to one name, then move
    for run in 1a 1b 2; do
        pare-prune -q -m "$MODEL" --criterion random --seed ${run%[ab]} --ratio 0.3 -o "$T/out" "$T/g.pare"
        mv "$T/out" "$T/r$run"
    done
    cmp "$T/r1a" "$T/r1b"
    ! cmp -s "$T/r1a" "$T/r2"
    pare-prune -q -m "$MODEL" --ratio 0.3 "$T/g.pare" > "$T/a"
    pare-prune -q -m "$MODEL" --ratio 0.3 "$T/g.pare" > "$T/b"
    cmp "$T/a" "$T/b"
    [ "$(ls -A "$T" | sort | tr '\n' ' ')" = "a b g.pare r1a r1b r2 " ]   # -o leaves no temporary file
}

@test "prune: --allow-empty removes whole sub-blocks, the checkpoint loads and evaluates" {
    need_data
    small --seed 3 -o "$T/m" >/dev/null
    pare-discover -q -m "$T/m" -o "$T/g.pare"
    run pare-prune -m "$T/m" --ratio 0.99 --layers 0-2 -o "$T/c.ckpt" "$T/g.pare"
    [ "$status" -eq 0 ]
    [[ "$output" == *"warning"*"each keeps one"* ]]
    pare show "$T/c.ckpt" | head -1 | grep -q '"num_attention_heads":2'
    pare-prune -q -m "$T/m" --ratio 0.99 --layers 1-1 --allow-empty -o "$T/e.ckpt" "$T/g.pare"
    pare show "$T/e.ckpt" | head -1 > "$T/h.json"
    grep -q '"num_attention_heads":\[4,0,4\]' "$T/h.json"
    grep -q '"intermediate_size":\[24,0,24\]' "$T/h.json"
    ! pare show "$T/e.ckpt" | grep -q 'layers.1.input_layernorm'
    ! pare show "$T/e.ckpt" | grep -q 'layers.1.post_attention_layernorm'
    run pare-eval -q -m "$T/e.ckpt" --tokenizer "$TOK" --ppl "$WIKI" --limit 2 --json
    [ "$status" -eq 0 ]
}

@test "prune: layer mode drops whole blocks and renumbers the rest" {
    need_data
    run sh -c "pare-discover -q -m '$MODEL' | pare-prune -q -m '$MODEL' --mode layer --ratio 0.5 --layers 0-4 | pare show | head -1"
    [ "$status" -eq 0 ]
    [[ "$output" == *'"num_hidden_layers":3'* ]]
    [[ "$output" == *'"mode":"layer"'* ]]
}

@test "prune: a stream from another model is refused" {
    need_data
    small --seed 1 -o "$T/a" >/dev/null
    small --seed 2 -o "$T/b" >/dev/null
    pare-discover -q -m "$T/a" -o "$T/ga.pare"
    run pare-prune -m "$T/b" --ratio 0.5 "$T/ga.pare"
    [ "$status" -eq 1 ]
    [ "${#lines[@]}" -eq 1 ]
    [[ "$output" == "pare-prune: error: "*"made for model"* ]]
    # a stream from a bare config serves only --dry-run
    run pare-prune -m "$T/a" --ratio 0.5 "$BATS_FILE_TMPDIR/g7.pare"
    [ "$status" -eq 1 ]
    [[ "$output" == *"made for model"* ]]
    run pare-prune -m "$CFG7B" --ratio 0.5 "$BATS_FILE_TMPDIR/g7.pare"
    [ "$status" -eq 1 ]
    [[ "$output" == "pare-prune: error: "*"bare config"*"--dry-run"* ]]
}

@test "prune: a ratio outside [0, 1) is a usage error" {
    need_data
    pare-discover -q -m "$MODEL" -o "$T/g.pare"
    for r in 1 1.5 -0.1 abc; do
        run pare-prune -m "$MODEL" --ratio "$r" "$T/g.pare"
        [ "$status" -eq 2 ]
        [ "${lines[0]}" = "pare-prune: error: --ratio: invalid value '$r' (expected a number in [0, 1))" ]
    done
    run pare-prune -m "$MODEL" "$T/g.pare"
    [ "$status" -eq 2 ]
    [[ "$output" == *"--ratio"*"--target-params"* ]]
}

@test "prune: --select adaptive ranks heads and MLP channels together; its provenance says so" {
    need_data
    pare-discover -q -m "$MODEL" -o "$T/g.pare"
    pare-prune -q -m "$MODEL" --tokenizer "$TOK" --criterion l2 --select adaptive --target-params 0.2 \
        -o "$T/a.pare" "$T/g.pare"
    pare show "$T/a.pare" | head -1 > "$T/a.json"
    $PY - "$T/a.json" <<'PY'
import json, sys
h = json.load(open(sys.argv[1]))
p, c = h["provenance"], h["config"]
assert p["selection"] == "adaptive" and p["global"] is False, p
assert 1 - p["params_after"] / p["params_before"] >= 0.2, p
# the fractions differ across layers and between attention and MLP
fr = [1 - f / 172 for f in c["intermediate_size"]] + [1 - h / 8 for h in c["num_attention_heads"]]
assert len(set(round(x, 6) for x in fr)) > 1, c
PY
    run pare-prune -m "$MODEL" --target-params 0.2 --select adaptive --dry-run "$T/g.pare"
    [ "$status" -eq 0 ]
    [[ "$output" == *", adaptive"* ]]
    # local and global stay what they were: --global is --select global
    a=$(pare-prune -m "$MODEL" --ratio 0.3 --global --dry-run "$T/g.pare")
    b=$(pare-prune -m "$MODEL" --ratio 0.3 --select global --dry-run "$T/g.pare")
    [ "$a" == "$b" ]
}

@test "prune: a bad --select is a usage error; adaptive needs block mode" {
    need_data
    pare-discover -q -m "$MODEL" -o "$T/g.pare"
    run pare-prune -m "$MODEL" --ratio 0.3 --select everything --dry-run "$T/g.pare"
    [ "$status" -eq 2 ]
    [[ "$output" == *"--select: unknown selection 'everything'"* ]]
    run pare-prune -m "$MODEL" --ratio 0.3 --mode layer --select adaptive --dry-run "$T/g.pare"
    [ "$status" -eq 1 ]
    [[ "$output" == *"block mode only"* ]]
}

@test "prune: --criterion auto --validate keeps the candidate with the lowest loss; table and provenance" {
    need_data
    head -n 1990 "$STORIES" > "$T/calib.txt"
    sed -n '1000,1990p' "$STORIES" > "$T/valid.txt"
    pare-discover -q -m "$MODEL" -o "$T/g.pare"
    pare-score -q -m "$MODEL" --tokenizer "$TOK" --calib "$T/calib.txt" --stats element1,activations \
        -o "$T/s.pare" "$T/g.pare"
    run sh -c "pare-prune -m '$MODEL' --tokenizer '$TOK' --target-params 0.2 --criterion auto \
               --validate '$T/valid.txt' -o '$T/auto.pare' '$T/s.pare' 2>&1"
    [ "$status" -eq 0 ]
    # element1, flap, wanda, l1, l2, random x local, global, adaptive
    [ "$(grep -cE '^[ *] (element1|flap|wanda|l1|l2|random) +(local|global|adaptive) ' <<<"$output")" -eq 18 ]
    [[ "$output" == *"winner: "* ]]
    pare show "$T/auto.pare" | head -1 > "$T/h.json"
    $PY - "$T/h.json" "$output" <<'PY'
import json, sys
p = json.load(open(sys.argv[1]))["provenance"]
a = p["auto"]
c = a["candidates"]
w = c[a["winner"]]
assert len(c) == 18 and w["loss"] == min(x["loss"] for x in c), a
assert p["criterion"] == w["criterion"], (p["criterion"], w)
assert p.get("selection", "global" if p["global"] else "local") == w["selection"], p
assert a["validation"]["samples"] == 16 and a["validation"]["seq_len"] == 128
assert 1 - p["params_after"] / p["params_before"] >= 0.2
line = [l for l in sys.argv[2].splitlines() if l.startswith("*")]
assert len(line) == 1 and w["criterion"] in line[0] and w["selection"] in line[0], line
PY
    # the same command gives the same bytes
    mv "$T/auto.pare" "$T/auto1.pare"
    pare-prune -m "$MODEL" --tokenizer "$TOK" --target-params 0.2 --criterion auto --validate "$T/valid.txt" \
        -o "$T/auto.pare" "$T/s.pare" 2>/dev/null
    cmp "$T/auto.pare" "$T/auto1.pare"
}

@test "prune: --rank-check prints each criterion's rank correlation with ablation per kind" {
    need_data
    pare-discover -q -m "$MODEL" -o "$T/g.pare"
    pare-score -q -m "$MODEL" --tokenizer "$TOK" --calib "$STORIES" --samples 4 --seq-len 32 \
        --stats element1,l2,ablation --ablate 4 -o "$T/s.pare" "$T/g.pare"
    run pare-prune -m "$MODEL" --ratio 0.3 --dry-run --rank-check "$T/s.pare"
    [ "$status" -eq 0 ]
    [[ "$output" == *"rank check: Spearman"* ]]
    [[ "$(grep -E '^criterion ' <<<"$output")" == *"attn"*"ffn"*"hidden"*"layer"* ]]
    grep -qE '^element1 +(-?[01]\.[0-9]{3}|-) ' <<<"$output"
    grep -qE '^random +' <<<"$output"
    # units: 4 of each attn group (4 heads), 4 of each ffn group, 4 hidden, 5 layers
    [[ "$(grep -E '^units +[0-9]' <<<"$output")" =~ ^units\ +20\ +20\ +4\ +5$ ]] || { grep units <<<"$output"; false; }
}

@test "prune: --criterion auto, --validate and --rank-check errors" {
    need_data
    pare-discover -q -m "$MODEL" -o "$T/g.pare"
    run pare-prune -m "$MODEL" --ratio 0.3 --criterion auto "$T/g.pare"
    [ "$status" -eq 2 ]
    [[ "$output" == *"--criterion auto and --validate FILE go together"* ]]
    run pare-prune -m "$MODEL" --ratio 0.3 --validate "$STORIES" "$T/g.pare"
    [ "$status" -eq 2 ]
    run pare-prune -m "$MODEL" --ratio 0.3 --rank-check "$T/g.pare"
    [ "$status" -eq 2 ]
    [[ "$output" == *"--rank-check: only with --dry-run"* ]]
    run pare-prune -m "$MODEL" --ratio 0.3 --dry-run --rank-check "$T/g.pare"
    [ "$status" -eq 1 ]
    [[ "$output" == *"no group has the 'ablation' statistic"* ]]
    run pare-prune -m "$MODEL" --tokenizer "$TOK" --ratio 0.3 --criterion auto --validate "$T/none.txt" -o "$T/x.pare" \
        "$T/g.pare"
    [ "$status" -eq 1 ]
    [[ "$output" == *"cannot read"* ]]
    [ ! -e "$T/x.pare" ]
    printf 'Once upon a time.' > "$T/short.txt"
    run pare-prune -m "$MODEL" --tokenizer "$TOK" --ratio 0.3 --criterion auto --validate "$T/short.txt" "$T/g.pare"
    [ "$status" -eq 1 ]
    [[ "$output" == *"too few"* ]]
}

@test "prune: layers out of range are an error" {
    need_data
    pare-discover -q -m "$MODEL" -o "$T/g.pare"
    run pare-prune -m "$MODEL" --ratio 0.5 --layers 2-5 "$T/g.pare"
    [ "$status" -eq 1 ]
    [ "${#lines[@]}" -eq 1 ]
    [[ "$output" == "pare-prune: error: --layers 2-5: out of range (the model has layers 0-4)" ]]
    run pare-prune -m "$MODEL" --ratio 0.5 --layers 3-1 "$T/g.pare"
    [ "$status" -eq 2 ]
    run pare-prune -m "$MODEL" --ratio 0.5 --mode channel --layers 1-2 "$T/g.pare"
    [ "$status" -eq 2 ]
}

@test "prune: a criterion the stream lacks is an error" {
    need_data
    pare-discover -q -m "$MODEL" -o "$T/g.pare"
    for c in vector element1 element2 mix; do
        run pare-prune -m "$MODEL" --ratio 0.5 --criterion $c "$T/g.pare"
        [ "$status" -eq 1 ]
        [ "${#lines[@]}" -eq 1 ]
        [[ "$output" == "pare-prune: error: $T/g.pare: a groups stream has no '$c' scores"* ]]
    done
    run pare-prune -m "$MODEL" --ratio 0.5 --criterion taylor "$T/g.pare"
    [ "$status" -eq 2 ]
    [[ "$output" == *"unknown criterion 'taylor'"* ]]
    # a stream without the groups the mode needs
    pare-discover -q -m "$MODEL" --kinds attn,ffn -o "$T/b.pare"
    run pare-prune -m "$MODEL" --ratio 0.5 --mode channel "$T/b.pare"
    [ "$status" -eq 1 ]
    [[ "$output" == *"no hidden group"* ]]
}

@test "prune: the man page's example runs" {
    need_data
    # EXAMPLES: pare-discover -m M | pare-prune -m M --criterion l2 --ratio 0.5 -o small.pare
    run sh -c "cd '$T' && pare-discover -q -m '$MODEL' | pare-prune -q -m '$MODEL' --tokenizer '$TOK' --criterion l2 --ratio 0.5 -o small.pare && pare-eval -q -m small.pare --ppl '$STORIES' --limit 2 --json"
    [ "$status" -eq 0 ]
}

@test "prune: a bf16 model gives a bf16 checkpoint; --dtype f32 its exact widening, one fingerprint" {
    small --seed 5 --dtype bf16 -o "$T/h" >/dev/null
    pare-discover -q -m "$T/h" -o "$T/g.pare"
    pare-prune -q -m "$T/h" --criterion l2 --ratio 0.5 -o "$T/b.ckpt" "$T/g.pare"
    pare-prune -q -m "$T/h" --criterion l2 --ratio 0.5 --dtype f32 -o "$T/f.ckpt" "$T/g.pare"
    pare show "$T/b.ckpt" > "$T/b.json"
    pare show "$T/f.ckpt" > "$T/f.json"
    # matrices keep bf16, vectors too (written in the dtype they were read in)
    [ "$(grep -c '"t":"tensor"' "$T/b.json")" -eq "$(grep '"t":"tensor"' "$T/b.json" | grep -c '"dtype":"bf16"')" ]
    [ "$(grep -c '"t":"tensor"' "$T/f.json")" -eq "$(grep '"t":"tensor"' "$T/f.json" | grep -c '"dtype":"f32"')" ]
    fb=$(head -1 "$T/b.json" | grep -o '"fingerprint":"[0-9a-f]*"')
    ff=$(head -1 "$T/f.json" | grep -o '"fingerprint":"[0-9a-f]*"')
    [ -n "$fb" ] && [ "$fb" = "$ff" ]
    # and back: pare convert --dtype bf16 of the f32 checkpoint is the bf16 one
    pare convert -m "$T/f.ckpt" --dtype bf16 -o "$T/c.ckpt"
    [ "$(pare show "$T/c.ckpt" | head -1 | grep -o '"fingerprint":"[0-9a-f]*"')" = "$fb" ]
    cmp <(pare show --data "$T/b.ckpt" | grep '"t":"tensor"') <(pare show --data "$T/c.ckpt" | grep '"t":"tensor"')
    run pare-prune -m "$T/h" --ratio 0.5 --dtype f64 "$T/g.pare"
    [ "$status" -eq 2 ]
    [[ "$output" == *"--dtype: expected f32, f16 or bf16, got 'f64'"* ]]
}

# ChatGLM-6B by hand. A layer: 2 LayerNorms (2 x 2 x 4096 = 16384), query_key_value
# 12288 x 4096 + 12288, dense 4096 x 4096 + 4096, dense_h_to_4h 16384 x 4096 + 16384,
# dense_4h_to_h 4096 x 16384 + 4096: 201,379,840. Outside the layers: the embedding
# and the untied LM head 2 x 130528 x 4096 and the final LayerNorm 8192: 1,069,293,568.
# Whole: 28 x 201,379,840 + 1,069,293,568 = 6,707,929,088.
# At 0.2: floor(4096 x 0.8) = 3276 of 4096 attention channels stay, so floor(820 / 128) = 6
# heads go (26 stay); floor(16384 x 0.8) = 13107 MLP channels stay. A pruned layer: 16384
# + 26 x 384 x (4096 + 1) + 4096 x 26 x 128 + 4096 + 13107 x (4096 + 1) + 4096 x 13107 + 4096
# = 161,946,163. Layers 4-23 pruned: 8 x 201,379,840 + 20 x 161,946,163 + 1,069,293,568
# = 5,919,255,548.
@test "prune: ChatGLM-6B block 0.2 on layers 4-23 leaves 5,919,255,548 parameters (dry run, config alone)" {
    CFG="$DATA/configs/chatglm-6b/config.json"
    pare-discover -q -m "$CFG" -o "$T/g.pare"
    run pare-prune -m "$CFG" --mode block --ratio 0.2 --layers 4-23 --dry-run "$T/g.pare"
    [ "$status" -eq 0 ]
    [[ "$output" == *"parameters: 6707929088 -> 5919255548 "* ]]
    [[ "$(grep -E '^ +4 ' <<<"$output")" == *"26/32"*"13107/16384"*" 201379840 "*" 161946163 "* ]]
    [[ "$(grep -E '^ +23 ' <<<"$output")" == *"26/32"*"13107/16384"* ]]
    [[ "$(grep -E '^ +3 ' <<<"$output")" == *"32/32"*"16384/16384"* ]]
    [[ "$(grep -E '^ +24 ' <<<"$output")" == *"32/32"*"16384/16384"* ]]
    [[ "$output" == *"units removed: 65660 from 40 groups"* ]]
    # ChatGLM2-6B (6,243,584,000 parameters) at 0.5: one of the two key/value groups goes
    # with its 16 query heads, and half of the 13696 SwiGLU channels
    G2="$ROOT/tests/configs/chatglm2-6b.json"
    pare-discover -q -m "$G2" -o "$T/g2.pare"
    run pare-prune -m "$G2" --ratio 0.5 --layers 4-23 --dry-run "$T/g2.pare"
    [ "$status" -eq 0 ]
    [[ "$output" == *"parameters: 6243584000 -> "* ]]
    [[ "$(grep -E '^ +4 ' <<<"$output")" == *"16/32"*"1/2"*"6848/13696"* ]]
}

# pare-prune --ratio 0.25 --dry-run of shared/data/configs/$1.json (its groups found
# by pare-discover) into $output: the default layers $2, parameters $3 -> $4
plan_quarter() {
    CFG="$DATA/configs/$1.json"
    pare-discover -q -m "$CFG" -o "$T/g.pare"
    run pare-prune -m "$CFG" --ratio 0.25 --dry-run "$T/g.pare"
    [ "$status" -eq 0 ]
    [[ "$output" == *"layers $2"* ]]
    [[ "$output" == *"parameters: $3 -> $4 "* ]]
}

# Today's models from their published configs (shared/data/configs), by hand. With
# grouped-query attention a unit is one key/value head with its query heads, so at
# 0.25 floor(0.75 x KV) key/value heads stay (6 of 8, or 3 of 4) and the MLP keeps
# floor(0.75 x F) channels; the default layers are all but the first eighth and the
# last sixteenth (3-26 of 28, 4-29 of 32, 4-33 of 36).
#
# Llama-3.1-8B (D 4096, 32 layers, 32 heads of 128 over 8 kv heads, F 14336, V 128256,
# untied): a layer is q and o 2 x 4096 x 4096 + k and v 2 x 1024 x 4096 (41,943,040),
# the MLP 3 x 4096 x 14336 (176,160,768) and two norms 8192: 218,112,000; outside, the
# embedding and LM head 2 x 128256 x 4096 and the final norm 4096: 1,050,677,248.
# Whole: 32 x 218,112,000 + 1,050,677,248 = 8,030,261,248. Pruned, 24 heads over 6
# kv heads: 2 x 3072 x 4096 + 2 x 768 x 4096 + 3 x 4096 x 10752 + 8192 = 163,586,048;
# layers 4-29: 6 x 218,112,000 + 26 x 163,586,048 + 1,050,677,248 = 6,612,586,496.
@test "prune: Llama-3.1-8B (rope_scaling llama3) block 0.25 leaves 6,612,586,496 of 8,030,261,248 (dry run)" {
    plan_quarter llama-3.1-8b 4-29 8030261248 6612586496
    [[ "$(grep -E '^ +4 ' <<<"$output")" == *"24/32"*"6/8"*"10752/14336"*" 218112000 "*" 163586048 "* ]]
    [[ "$(grep -E '^ +30 ' <<<"$output")" == *"32/32"*"8/8"*"14336/14336"* ]]
}

# Llama-3.2-3B (D 3072, 28 layers, 24 heads of 128 over 8 kv heads, F 8192, tied): a
# layer is 2 x 3072 x 3072 + 2 x 1024 x 3072 + 3 x 3072 x 8192 + 6144 = 100,669,440;
# outside, the one embedding 128256 x 3072 and the final norm: 394,005,504. Whole:
# 28 x 100,669,440 + 394,005,504 = 3,212,749,824. Pruned, 18 heads over 6 kv heads:
# 2 x 2304 x 3072 + 2 x 768 x 3072 + 3 x 3072 x 6144 + 6144 = 75,503,616; layers
# 3-26: 4 x 100,669,440 + 24 x 75,503,616 + 394,005,504 = 2,608,770,048.
@test "prune: Llama-3.2-3B (tied, head_dim 128) block 0.25 leaves 2,608,770,048 of 3,212,749,824 (dry run)" {
    plan_quarter llama-3.2-3b 3-26 3212749824 2608770048
    [[ "$(grep -E '^ +3 ' <<<"$output")" == *"18/24"*"6/8"*"6144/8192"*" 100669440 "*" 75503616 "* ]]
    [[ "$(grep -E '^ +2 ' <<<"$output")" == *"24/24"*"8/8"*"8192/8192"* ]]
}

# Qwen2.5-7B (D 3584, 28 layers, 28 heads of 128 over 4 kv heads, F 18944, V 152064,
# untied, q/k/v biases): a layer is q and o 2 x 3584 x 3584 + k and v 2 x 512 x 3584,
# biases 3584 + 2 x 512, the MLP 3 x 3584 x 18944 and norms 7168: 233,057,792; outside
# 2 x 152064 x 3584 + 3584 = 1,089,998,336. Whole: 28 x 233,057,792 + 1,089,998,336 =
# 7,615,616,512. Pruned, 21 heads over 3 kv heads (a unit is 7 query heads):
# 2 x 2688 x 3584 + 2688 + 2 x (384 x 3584 + 384) + 3 x 3584 x 14208 + 7168 =
# 174,795,136; layers 3-26: 4 x 233,057,792 + 24 x 174,795,136 + 1,089,998,336 =
# 6,217,312,768.
@test "prune: Qwen2.5-7B (q/k/v biases) block 0.25 leaves 6,217,312,768 of 7,615,616,512 (dry run)" {
    plan_quarter qwen2.5-7b 3-26 7615616512 6217312768
    [[ "$(grep -E '^ +3 ' <<<"$output")" == *"21/28"*"3/4"*"14208/18944"*" 233057792 "*" 174795136 "* ]]
}

# Qwen3-8B (D 4096, 36 layers, 32 heads of 128 over 8 kv heads, F 12288, V 151936,
# untied, q_norm and k_norm of 128 each): a layer is 41,943,040 of attention maps,
# 256 of q/k norms, 3 x 4096 x 12288 of MLP and 8192 of norms: 192,946,432; outside
# 2 x 151936 x 4096 + 4096 = 1,244,663,808. Whole: 36 x 192,946,432 + 1,244,663,808 =
# 8,190,735,360. Pruned, 24 heads over 6 kv heads, the q/k norms kept whole:
# 31,457,280 + 256 + 3 x 4096 x 9216 + 8192 = 144,711,936; layers 4-33: 6 x
# 192,946,432 + 30 x 144,711,936 + 1,244,663,808 = 6,743,700,480. Channel 0.2: 3276 of
# 4096 hidden channels stay in every tensor but the q/k norms (36 x 256 = 9216), each
# having one hidden axis: (8,190,735,360 - 9216) / 4096 x 3276 + 9216 = 6,550,990,380.
@test "prune: Qwen3-8B (q/k norms) block 0.25 leaves 6,743,700,480 of 8,190,735,360, channel 0.2 6,550,990,380 (dry run)" {
    plan_quarter qwen3-8b 4-33 8190735360 6743700480
    [[ "$(grep -E '^ +4 ' <<<"$output")" == *"24/32"*"6/8"*"9216/12288"*" 192946432 "*" 144711936 "* ]]
    [[ "$(grep -E '^ +34 ' <<<"$output")" == *"32/32"*"8/8"*"12288/12288"* ]]
    run pare-prune -m "$CFG" --mode channel --ratio 0.2 --dry-run "$T/g.pare"
    [ "$status" -eq 0 ]
    [[ "$output" == *"hidden size: 4096 -> 3276"* ]]
    [[ "$output" == *"parameters: 8190735360 -> 6550990380 "* ]]
}
