#!/usr/bin/env bats
# The tokenizers: ids against python3-sentencepiece (tests/tokenizer_oracle.py,
# through the test tool pare-tok-lines; BPE and unigram models, ChatGLM's modes),
# goldens, ChatGLM tokenizer folders through pare tokenize, checkpoints and
# exported folders, and files that are not tokenizers.
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

@test "tokenize: ids equal python3-sentencepiece's on WikiText-2, PTB, odd inputs and trained BPE, unigram and ChatGLM models" {
    need_oracle
    run "$PY" "$ROOT/tests/tokenizer_oracle.py" --tool "$(tok_lines)" --data "$DATA"
    echo "$output"
    [ "$status" -eq 0 ]
    [[ "$output" == *"llama2 wikitext-2 test lines: 4358 texts, 0 differ"* ]]
    [[ "$output" == *"llama2 ptb valid lines: 3370 texts, 0 differ"* ]]
    [[ "$output" == *"llama2 whole wikitext-2 test"*"same"* ]]
    [[ "$output" == *"unigram nfkc+user: 3000 texts, 0 differ"* ]]
    [[ "$output" == *"unigram ties: 3000 texts, 0 differ"* ]]
    [[ "$output" == *"unigram tiny scores random: 2000 texts, 0 differ"* ]]
    [[ "$output" == *"chatglm-6b (unigram) +bos: 300 texts, 0 differ"* ]]
    [[ "$output" == *"chatglm-6b (bpe) prompt: 300 texts, 0 differ"* ]]
    [[ "$output" == *"chatglm2 prompt: 300 texts, 0 differ"* ]]
    [[ "$output" == *"chatglm-6b (bpe) decoded: "*" texts, 0 differ"* ]]
    [[ "$output" == *"chatglm2 random: 2000 texts, 0 differ"* ]]
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

# The ids ChatGLM-6B's tokenizer gives file $2 with the model in folder $1 (its
# substitutions, written out in tokenizer_oracle.py, then python3-sentencepiece),
# after [gMASK] <sop> when $3 is "bos"; space-separated.
glm_ids() {
    "$PY" - "$ROOT/tests" "$1" "$2" "${3:-}" <<'PY'
import sys, sentencepiece as spm
sys.path.insert(0, sys.argv[1])
from tokenizer_oracle import glm_preprocess
sp = spm.SentencePieceProcessor(model_file=sys.argv[2] + "/ice_text.model")
ids = sp.encode(glm_preprocess(open(sys.argv[3], "rb").read()))
if sys.argv[4] == "bos":
    ids = [sp.piece_to_id("[gMASK]"), sp.piece_to_id("<sop>")] + ids
print(" ".join(map(str, ids)))
PY
}

@test "tokenize: a ChatGLM-6B tokenizer folder, through pare tokenize, a checkpoint and an exported folder" {
    need_oracle
    need_data
    make_glm "$T/glm" unigram
    printf 'def f(x):\n    return x\n\n\tpass   ok  %82s|\n' "" >"$T/text"
    want=$(glm_ids "$T/glm" "$T/text" bos)
    [[ "$want" == *" "*" "* ]]
    run pare tokenize --bos --tokenizer "$T/glm" "$T/text"
    [ "$status" -eq 0 ]
    [ "$output" = "$want" ]
    run pare tokenize --tokenizer "$T/glm" "$T/text"
    [ "$output" = "$(glm_ids "$T/glm" "$T/text")" ]
    # the same model file read plainly: no substitutions, so other ids
    run pare tokenize --tokenizer "$T/glm/ice_text.model" "$T/text"
    [ "$status" -eq 0 ]
    [ "$output" != "$(glm_ids "$T/glm" "$T/text")" ]

    # carried by a checkpoint, and by the folder it is exported to
    pare convert -m "$MODEL" --tokenizer "$T/glm" -o "$T/m.pare"
    pare show "$T/m.pare" | grep -q '"t":"tokenizer","format":"chatglm"'
    run pare tokenize --bos -m "$T/m.pare" "$T/text"
    [ "$output" = "$want" ]
    pare convert -m "$T/m.pare" --to hf -o "$T/hf"
    [ -f "$T/hf/ice_text.model" ] && [ -f "$T/hf/tokenizer_config.json" ] && [ ! -e "$T/hf/tokenizer.model" ]
    run pare tokenize --bos -m "$T/hf" "$T/text"
    [ "$output" = "$want" ]
    # GGUF's llama tokenizer cannot hold it
    run pare convert -m "$T/m.pare" --to gguf -o "$T/m.gguf"
    [ "$status" -eq 1 ]
    [[ "$output" == *"error:"*"ChatGLM"* ]]
    [ ! -e "$T/m.gguf" ]
}

@test "tokenize: a ChatGLM2 tokenizer folder: [gMASK] sop appended after the model's pieces" {
    need_oracle
    make_glm2 "$T/glm2"
    printf 'Once upon a time\n\tthere  was' >"$T/text"
    want=$("$PY" -c 'import sys, sentencepiece as spm
sp = spm.SentencePieceProcessor(model_file=sys.argv[1])
n = sp.vocab_size()  # [MASK] [gMASK] [sMASK] sop eop follow
print(" ".join(map(str, [n + 1, n + 3] + sp.encode(open(sys.argv[2], "rb").read()))))' "$T/glm2/tokenizer.model" "$T/text")
    run pare tokenize --bos --tokenizer "$T/glm2" "$T/text"
    [ "$status" -eq 0 ]
    [ "$output" = "$want" ]
}

@test "tokenize: a unigram model's ids equal python3-sentencepiece's; GGUF refuses it" {
    need_oracle
    need_data
    "$PY" -c 'import sys, sentencepiece as spm
spm.SentencePieceTrainer.train(input=sys.argv[1], model_prefix=sys.argv[2], model_type="unigram",
                               vocab_size=300, minloglevel=2, num_threads=2)' "$STORIES" "$T/uni"
    printf 'The little dog ran to the park, and Lily laughed. Zebra quiz!' >"$T/text"
    want=$("$PY" -c 'import sys, sentencepiece as spm
sp = spm.SentencePieceProcessor(model_file=sys.argv[1])
print(" ".join(map(str, [sp.bos_id()] + sp.encode(open(sys.argv[2], "rb").read()))))' "$T/uni.model" "$T/text")
    run pare tokenize --bos --tokenizer "$T/uni.model" "$T/text"
    [ "$status" -eq 0 ]
    [ "$output" = "$want" ]
    run pare convert -m "$MODEL" --tokenizer "$T/uni.model" --to gguf -o "$T/m.gguf"
    [ "$status" -eq 1 ]
    [[ "$output" == *"error:"*"unigram"* ]]
}

@test "tokenize: a folder without a tokenizer, or with a ChatGLM config it cannot follow, is an error" {
    mkdir "$T/empty"
    run pare tokenize --tokenizer "$T/empty" </dev/null
    [ "$status" -eq 1 ]
    [[ "$output" == *"error: $T/empty: no tokenizer"* ]]
    printf '{"tokenizer_class": "ChatGLMTokenizer"}\n' >"$T/empty/tokenizer_config.json"
    run pare tokenize --tokenizer "$T/empty" </dev/null
    [ "$status" -eq 1 ]
    [[ "$output" == *"error: $T/empty: tokenizer_config.json names ChatGLMTokenizer"*"ice_text.model"* ]]
    printf '{"tokenizer_class": "ChatGLMTokenizer", "num_image_tokens": 20000}\n' >"$T/empty/tokenizer_config.json"
    run pare tokenize --tokenizer "$T/empty" </dev/null
    [ "$status" -eq 1 ]
    [[ "$output" == *"num_image_tokens"* ]]
}
