#!/usr/bin/env bats
# The tokenizers: ids against python3-sentencepiece (tests/tokenizer_oracle.py,
# through the test tool pare-tok-lines), goldens, and files that are not tokenizers.
load helper

LLAMA_TOK="$DATA/tokenizers/llama2/tokenizer.model"

tok_lines() {
    command -v pare-tok-lines || echo "$ROOT/${BUILD:-build}/tests/pare-tok-lines"
}

need_oracle() {
    [ -f "$LLAMA_TOK" ] || { echo "data missing: $LLAMA_TOK (set PARE_DATA)"; return 1; }
    [ -f "$WIKI" ] && [ -f "$PTB" ] && [ -f "$STORIES" ] || { echo "data missing under $DATA"; return 1; }
    "$PY" -c 'import sentencepiece' || { echo "python3-sentencepiece missing for $PY"; return 1; }
}

@test "tokenize: ids equal python3-sentencepiece's on WikiText-2, PTB, odd inputs and trained models" {
    need_oracle
    run "$PY" "$ROOT/tests/tokenizer_oracle.py" --tool "$(tok_lines)" --data "$DATA"
    echo "$output"
    [ "$status" -eq 0 ]
    [[ "$output" == *"llama2 wikitext-2 test lines: 4358 texts, 0 differ"* ]]
    [[ "$output" == *"llama2 ptb valid lines: 3370 texts, 0 differ"* ]]
    [[ "$output" == *"llama2 whole wikitext-2 test"*"same"* ]]
    [[ "$output" == *"tokenizer_oracle: "*" comparisons, 0 differ"* ]]
}

@test "tokenize: Llama-2 golden, with and without BOS" {
    need_oracle
    run "$(tok_lines)" "$LLAMA_TOK" <<<"Hello world, the theory of relativity"
    [ "$status" -eq 0 ]
    [ "$output" = "15043 3186 29892 278 6368 310 14215 537" ]
    run "$(tok_lines)" --bos "$LLAMA_TOK" <<<"Hello world, the theory of relativity"
    [ "$output" = "1 15043 3186 29892 278 6368 310 14215 537" ]
    run "$(tok_lines)" --info "$LLAMA_TOK"
    [ "$output" = "32000 1 2 0 sentencepiece" ]
}

@test "tokenize: llama2.c tok512.bin" {
    need_data
    run "$(tok_lines)" "$TOK" <<<"Once upon a time"
    [ "$status" -eq 0 ]
    [ "$output" = "403 407 261 378" ]
    run "$(tok_lines)" --info "$TOK"
    [ "$output" = "512 1 2 0 llama2c" ]
}

@test "tokenize: a file that is not a tokenizer is an error naming it" {
    need_oracle
    printf 'hello, world\n' >"$T/notes.txt"
    run "$(tok_lines)" "$T/notes.txt" </dev/null
    [ "$status" -eq 1 ]
    [[ "$output" == *"error: $T/notes.txt: not a tokenizer"* ]]
    head -c 100000 "$LLAMA_TOK" >"$T/cut.model"
    run "$(tok_lines)" "$T/cut.model" </dev/null
    [ "$status" -eq 1 ]
    [[ "$output" == *"$T/cut.model: not a tokenizer"* ]]
    head -c 6000 "$TOK" >"$T/cut.bin"
    run "$(tok_lines)" "$T/cut.bin" </dev/null
    [ "$status" -eq 1 ]
    [[ "$output" == *"$T/cut.bin: not a tokenizer"* ]]
    run "$(tok_lines)" "$T/missing.model" </dev/null
    [ "$status" -eq 1 ]
    [[ "$output" == *"$T/missing.model"* ]]
}
