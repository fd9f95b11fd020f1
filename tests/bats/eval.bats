#!/usr/bin/env bats
# pare-eval: perplexity against an independent reference, protocol details, errors.
load helper

@test "eval: --help lists the options of the man page" {
    run pare-eval --help
    [ "$status" -eq 0 ]
    help_lists_man_options "$output" "$ROOT/man/pare-eval.1"
}

@test "eval: ppl on WikiText rows equals an independent numpy implementation (1e-4)" {
    need_data
    head -c 6000 "$WIKI" > "$T/wiki.test.raw"
    ref=$($PY "$ROOT/tests/ref/ppl_reference.py" "$MODEL" "$TOK" "$T/wiki.test.raw" wikitext 128)
    run pare-eval -q -m "$MODEL" --tokenizer "$TOK" --ppl "$T/wiki.test.raw" --json
    [ "$status" -eq 0 ]
    got=$(echo "$output" | $PY -c 'import json,sys; m=json.load(sys.stdin)["metrics"][0]; print(m["value"], m["n"], m["protocol"]["tokens"])')
    echo "pare: $got  reference: $ref"
    close "${got%% *}" "${ref%% *}" 1e-4
    [ "$(echo $got | cut -d' ' -f2-)" = "$(echo $ref | cut -d' ' -f2-)" ]  # same tokens, same count
}

@test "eval: ppl on PTB rows and on plain text equal the reference (1e-4)" {
    need_data
    head -n 60 "$PTB" > "$T/ptb.valid.txt"
    head -c 5000 "$STORIES" > "$T/stories.txt"
    for pair in "ptb.valid.txt ptb" "stories.txt text"; do
        set -- $pair
        ref=$($PY "$ROOT/tests/ref/ppl_reference.py" "$MODEL" "$TOK" "$T/$1" "$2" 64)
        got=$(pare-eval -q -m "$MODEL" --tokenizer "$TOK" --ppl "$T/$1" --seq-len 64 --batch 3 --json |
              $PY -c 'import json,sys; m=json.load(sys.stdin)["metrics"][0]; print(m["value"], m["n"], m["protocol"]["tokens"])')
        echo "$1: pare $got reference $ref"
        close "${got%% *}" "${ref%% *}" 1e-4
        [ "$(echo $got | cut -d' ' -f2-)" = "$(echo $ref | cut -d' ' -f2-)" ]
    done
}

@test "eval: batch size and threads do not change the result" {
    need_data
    head -c 8000 "$STORIES" > "$T/s.txt"
    a=$(pare-eval -q -m "$MODEL" --tokenizer "$TOK" --ppl "$T/s.txt" --batch 1 -t 1 --json | $PY -c 'import json,sys; print(json.load(sys.stdin)["metrics"][0]["value"])')
    b=$(pare-eval -q -m "$MODEL" --tokenizer "$TOK" --ppl "$T/s.txt" --batch 7 -t 2 --json | $PY -c 'import json,sys; print(json.load(sys.stdin)["metrics"][0]["value"])')
    close "$a" "$b" 1e-6
}

@test "eval: compressed input gives the same ppl as plain" {
    need_data
    head -c 5000 "$STORIES" > "$T/s.txt"
    gzip -c "$T/s.txt" > "$T/s.txt.gz"
    xz -c "$T/s.txt" > "$T/s.txt.xz"
    a=$(pare-eval -q -m "$MODEL" --tokenizer "$TOK" --ppl "$T/s.txt" --json | $PY -c 'import json,sys; print(json.load(sys.stdin)["metrics"][0]["value"])')
    for f in s.txt.gz s.txt.xz; do
        b=$(pare-eval -q -m "$MODEL" --tokenizer "$TOK" --ppl "$T/$f" --json | $PY -c 'import json,sys; print(json.load(sys.stdin)["metrics"][0]["value"])')
        [ "$a" = "$b" ]
    done
}

@test "eval: the report stream reads back with pare show, protocol included" {
    need_data
    head -c 5000 "$STORIES" > "$T/s.txt"
    pare-eval -q -m "$MODEL" --tokenizer "$TOK" --ppl "$T/s.txt" -o "$T/r.pare"
    run pare show "$T/r.pare"
    [ "$status" -eq 0 ]
    [[ "${lines[0]}" == *'"pare":"report"'* ]]
    [[ "${lines[1]}" == *'"metric":"ppl"'* ]]
    [[ "${lines[1]}" == *'"window":128'* ]]
    [[ "${lines[2]}" == *'"t":"end"'* ]]
}

@test "eval: a checkpoint from pare convert gives the identical ppl" {
    need_data
    head -c 6000 "$STORIES" > "$T/s.txt"
    pare convert -m "$MODEL" --tokenizer "$TOK" -o "$T/m.pare"
    a=$(pare-eval -q -m "$MODEL" --tokenizer "$TOK" --ppl "$T/s.txt" --json | $PY -c 'import json,sys; print(json.load(sys.stdin)["metrics"][0]["value"])')
    b=$(pare-eval -q -m "$T/m.pare" --ppl "$T/s.txt" --json | $PY -c 'import json,sys; print(json.load(sys.stdin)["metrics"][0]["value"])')
    c=$(cat "$T/m.pare" | pare-eval -q -m - --ppl "$T/s.txt" --json | $PY -c 'import json,sys; print(json.load(sys.stdin)["metrics"][0]["value"])')
    [ "$a" = "$b" ]
    [ "$a" = "$c" ]
}

@test "eval: bad usage exits 2 with a message" {
    run pare-eval --ppl x
    [ "$status" -eq 2 ]
    [[ "$output" == *"no model given"* ]]
    run pare-eval -m x
    [ "$status" -eq 2 ]
    run pare-eval -m x --ppl y --seq-len 0
    [ "$status" -eq 2 ]
    [[ "$output" == *"--seq-len"* ]]
    run pare-eval --bogus
    [ "$status" -eq 2 ]
}

@test "eval: bad models and files give one-line errors and exit 1" {
    need_data
    run pare-eval -m "$T/missing.bin" --tokenizer "$TOK" --ppl "$STORIES"
    [ "$status" -eq 1 ]
    [[ "$output" == *"missing.bin"* ]]
    run pare-eval -m "$MODEL" --tokenizer "$TOK" --ppl "$T/nope.txt"
    [ "$status" -eq 1 ]
    [[ "$output" == *"nope.txt"* ]]
    run pare-eval -m "$MODEL" --ppl "$STORIES"
    [ "$status" -eq 1 ]
    [[ "$output" == *"tokenizer"* ]]
    echo "tiny" > "$T/tiny.txt"
    run pare-eval -m "$MODEL" --tokenizer "$TOK" --ppl "$T/tiny.txt"
    [ "$status" -eq 1 ]
    [[ "$output" == *"less than one window"* ]]
}

@test "eval: truncated, corrupted and wrong-kind checkpoints are refused with one line, exit 1" {
    need_data
    head -c 3000 "$STORIES" > "$T/s.txt"
    pare convert -m "$MODEL" --tokenizer "$TOK" -o "$T/m.pare"
    size=$(stat -c %s "$T/m.pare")
    head -c $((size - 1)) "$T/m.pare" > "$T/trunc.pare"
    run pare-eval -m "$T/trunc.pare" --ppl "$T/s.txt"
    [ "$status" -eq 1 ]
    [ "${#lines[@]}" -eq 1 ]
    [[ "$output" == *"truncated"* ]]
    cp "$T/m.pare" "$T/flip.pare"
    printf '\x55' | dd of="$T/flip.pare" bs=1 seek=$((size / 2)) conv=notrunc 2>/dev/null
    run pare-eval -m "$T/flip.pare" --ppl "$T/s.txt"
    [ "$status" -eq 1 ]
    [ "${#lines[@]}" -eq 1 ]
    [[ "$output" == *"digest mismatch"* ]]
    pare-eval -q -m "$T/m.pare" --ppl "$T/s.txt" -o "$T/r.pare"
    run pare-eval -m "$T/r.pare" --ppl "$T/s.txt"
    [ "$status" -eq 1 ]
    [ "${#lines[@]}" -eq 1 ]
    [[ "$output" == *"expected a checkpoint stream, got a report stream"* ]]
}

@test "eval: -o leaves no file behind when the run fails" {
    need_data
    run pare-eval -m "$MODEL" --tokenizer "$TOK" --ppl "$T/nope.txt" -o "$T/out.pare"
    [ "$status" -eq 1 ]
    [ ! -e "$T/out.pare" ]
    [ -z "$(ls -A "$T" | grep tmp)" ]
}

@test "eval: a safetensors file whose header has an odd length (every tensor misaligned) is the same model" {
    need_data
    head -c 4000 "$STORIES" > "$T/s.txt"
    for dt in f32 bf16; do
        pare-mkmodel --dim 64 --layers 2 --heads 4 --ffn 96 --vocab 512 --dtype "$dt" --seed 4 --tokenizer "$TOK" \
            -o "$T/a-$dt" > /dev/null
        # the same folder with one more space in the header: every payload at an odd offset
        cp -r "$T/a-$dt" "$T/o-$dt"
        $PY - "$T/a-$dt/model.safetensors" "$T/o-$dt/model.safetensors" <<'PY'
import struct, sys
raw = open(sys.argv[1], "rb").read()
n = struct.unpack("<Q", raw[:8])[0]
open(sys.argv[2], "wb").write(struct.pack("<Q", n + 1) + raw[8:8 + n] + b" " + raw[8 + n:])
PY
        a=$(pare-eval -q -m "$T/a-$dt" --ppl "$T/s.txt" --seq-len 64 --json)
        o=$(pare-eval -q -m "$T/o-$dt" --ppl "$T/s.txt" --seq-len 64 --json)
        echo "$dt aligned: $(jq -c '[.model.fingerprint, .metrics[0].value]' <<<"$a") odd: $(jq -c '[.model.fingerprint, .metrics[0].value]' <<<"$o")"
        [ "$(jq '.metrics[0].value > 1' <<<"$a")" = true ]
        [ "$(jq '.metrics[0].value' <<<"$a")" = "$(jq '.metrics[0].value' <<<"$o")" ]
        [ "$(jq -r '.model.fingerprint | length' <<<"$a")" -eq 16 ]
        [ "$(jq -r '.model.fingerprint' <<<"$a")" = "$(jq -r '.model.fingerprint' <<<"$o")" ]
    done
}
