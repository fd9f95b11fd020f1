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
