#!/usr/bin/env bats
# Hugging Face tokenizer.json (byte-level BPE: Llama 3, Qwen3): ids against
# Hugging Face's JavaScript port of the tokenizers library (tests/oracle, through
# the test tool pare-tok-lines) on WikiText-2 test, PTB valid and the Unicode
# torture file; the published ids through pare tokenize; a folder carried by a
# checkpoint and written back; files it refuses, with the key named.
load helper

LLAMA3="$DATA/tokenizers/llama3"
QWEN3="$DATA/tokenizers/qwen3"
ORACLE="$ROOT/tests/oracle"

tok_lines() {
    command -v pare-tok-lines || echo "$ROOT/${BUILD:-build}/tests/pare-tok-lines"
}

need_tokenizers() {
    [ -f "$LLAMA3/tokenizer.json" ] && [ -f "$QWEN3/tokenizer.json" ] || { echo "data missing: $DATA/tokenizers"; return 1; }
    [ -f "$WIKI" ] && [ -f "$PTB" ] || { echo "data missing under $DATA"; return 1; }
}

need_oracle() {
    need_tokenizers
    command -v node >/dev/null || { echo "node is missing (tools/install-deps)"; return 1; }
    [ -f "$ORACLE/node_modules/@huggingface/tokenizers/package.json" ] ||
        { echo "the oracle is not installed in $ORACLE (tools/install-deps)"; return 1; }
}

@test "hf_tokenizer: ids equal @huggingface/tokenizers' on WikiText-2, PTB, the torture file and random texts, with added-token flags set, and with other pre-tokenizers and normalizers" {
    need_oracle
    run node "$ORACLE/hf_oracle.mjs" --tool "$(tok_lines)" --data "$DATA" --torture "$ORACLE/unicode-torture.txt"
    echo "$output"
    [ "$status" -eq 0 ]
    for t in llama3 qwen3; do
        [[ "$output" == *"$t wikitext-2 test whole: 1 texts, 0 differ"* ]]
        [[ "$output" == *"$t wikitext-2 test lines: 4358 texts, 0 differ"* ]]
        [[ "$output" == *"$t ptb valid whole: 1 texts, 0 differ"* ]]
        [[ "$output" == *"$t ptb valid lines: 3370 texts, 0 differ"* ]]
        [[ "$output" == *"$t unicode torture whole: 1 texts, 0 differ"* ]]
        [[ "$output" == *"$t unicode torture: 110 texts, 0 differ"* ]]
        [[ "$output" == *"$t unicode torture +special: 110 texts, 0 differ"* ]]
        [[ "$output" == *"$t unicode torture decoded: 110 texts, 0 differ"* ]]
        [[ "$output" == *"$t random: 2000 texts, 0 differ"* ]]
    done
    [[ "$output" == *"qwen3 with added-token flags: 2007 texts, 0 differ"* ]]
    [[ "$output" == *"qwen3 with added-token flags, unicode torture: 110 texts, 0 differ"* ]]
    for v in "GPT-2 ByteLevel" "GPT-2 ByteLevel, no prefix space" NFKC NFD "Split Removed" "Split invert"; do
        [[ "$output" == *"llama3 with $v, unicode torture: 110 texts, 0 differ"* ]]
        [[ "$output" == *"qwen3 with $v, wikitext-2 test (200 kB) whole: 1 texts, 0 differ"* ]]
    done
    [[ "$output" == *"hf_oracle: "*" comparisons, 0 differ"* ]]
}

@test "hf_tokenizer: without Qwen3's NFC normalizer, pare's ids differ from the library's (the comparison can fail)" {
    need_oracle
    # Qwen3's folder without its NFC normalizer: the torture file's combining marks tokenize otherwise
    mkdir "$T/qwen"
    jq -c '.normalizer = null' "$QWEN3/tokenizer.json" >"$T/qwen/tokenizer.json"
    run node - "$T/qwen" "$(tok_lines)" "$ORACLE" "$QWEN3" <<'JS'
const [dir, tool, oracle, real] = process.argv.slice(2);
const { Tokenizer } = await import(oracle + "/node_modules/@huggingface/tokenizers/dist/tokenizers.mjs");
const fs = await import("node:fs");
const { execFileSync } = await import("node:child_process");
const js = new Tokenizer(JSON.parse(fs.readFileSync(real + "/tokenizer.json")), {});
const text = "e\u0301 a\u0323\u0307 \u1100\u1161\u11a8";
const mine = execFileSync(tool, ["--whole", dir], { input: text, stdio: ["pipe", "pipe", "ignore"] }).toString().trim();
const want = js.encode(text, { add_special_tokens: false }).ids.join(" ");
console.log(mine === want ? "same" : "differ");
JS
    [ "$status" -eq 0 ]
    [ "$output" = "differ" ]
}

@test "hf_tokenizer: the published ids through pare tokenize, with and without BOS" {
    need_tokenizers
    printf 'Hello world, the theory of relativity' >"$T/text"
    run pare tokenize --bos --tokenizer "$LLAMA3" "$T/text"
    [ "$status" -eq 0 ]
    [ "$output" = "128000 9906 1917 11 279 10334 315 1375 44515" ]
    run pare tokenize --tokenizer "$LLAMA3" "$T/text"
    [ "$output" = "9906 1917 11 279 10334 315 1375 44515" ]
    run pare tokenize --bos --tokenizer "$QWEN3" "$T/text"
    [ "$output" = "9707 1879 11 279 10126 315 1351 43415" ]
    # the file alone, without the folder's tokenizer_config.json
    run pare tokenize --tokenizer "$QWEN3/tokenizer.json" "$T/text"
    [ "$output" = "9707 1879 11 279 10126 315 1351 43415" ]
    run "$(tok_lines)" --info "$LLAMA3"
    [ "$output" = "128256 128000 128009 -1 hf-json" ]
    run "$(tok_lines)" --info "$QWEN3"
    [ "$output" = "151669 -1 151645 -1 hf-json" ]
    run "$(tok_lines)" --info "$QWEN3/tokenizer.json"
    [ "$output" = "151669 -1 -1 -1 hf-json" ]
}

@test "hf_tokenizer: a checkpoint carries tokenizer.json and tokenizer_config.json; an HF folder gets them back" {
    need_tokenizers
    need_data
    printf 'Qwen3 <|im_start|>user\nhi<|im_end|>' >"$T/text"
    want=$(pare tokenize --tokenizer "$QWEN3" "$T/text")
    pare convert -m "$MODEL" --tokenizer "$QWEN3" -o "$T/m.pare"
    pare show "$T/m.pare" | grep -q '"t":"tokenizer","format":"hf-json"'
    run pare tokenize -m "$T/m.pare" "$T/text"
    [ "$status" -eq 0 ]
    [ "$output" = "$want" ]
    pare convert -m "$T/m.pare" --to hf -o "$T/hf"
    cmp "$T/hf/tokenizer.json" "$QWEN3/tokenizer.json"
    cmp "$T/hf/tokenizer_config.json" "$QWEN3/tokenizer_config.json"
    [ ! -e "$T/hf/tokenizer.model" ]
    run pare tokenize -m "$T/hf" "$T/text"
    [ "$output" = "$want" ]
}

@test "hf_tokenizer: a bad tokenizer.json is one error line naming the file and the key" {
    need_tokenizers
    printf 'x' >"$T/text"
    mkdir "$T/a" "$T/b" "$T/c" "$T/d"
    jq -c '.model.merges[5] = "nosuch token"' "$LLAMA3/tokenizer.json" >"$T/a/tokenizer.json"
    run pare tokenize --tokenizer "$T/a" "$T/text"
    [ "$status" -eq 1 ]
    [ "$output" = "pare tokenize: error: $T/a/tokenizer.json: model.merges[5]: 'nosuch' is not a byte-level token of model.vocab" ]
    jq -c '.model.type = "WordPiece"' "$QWEN3/tokenizer.json" >"$T/b/tokenizer.json"
    run pare tokenize --tokenizer "$T/b" "$T/text"
    [ "$status" -eq 1 ]
    [ "$output" = "pare tokenize: error: $T/b/tokenizer.json: model.type: model 'WordPiece' is not supported (BPE)" ]
    head -c 5000 "$QWEN3/tokenizer.json" >"$T/c/tokenizer.json"
    run pare tokenize --tokenizer "$T/c" "$T/text"
    [ "$status" -eq 1 ]
    [[ "$output" == "pare tokenize: error: $T/c/tokenizer.json:"* ]]
    [ "${#lines[@]}" -eq 1 ]
    cp "$QWEN3/tokenizer.json" "$T/d/"
    printf '{"eos_token": "<|nosuch|>"}' >"$T/d/tokenizer_config.json"
    run pare tokenize --tokenizer "$T/d" "$T/text"
    [ "$status" -eq 1 ]
    [ "$output" = "pare tokenize: error: $T/d/tokenizer_config.json: eos_token: '<|nosuch|>' is not a token of the tokenizer" ]
}

# The texts llama.cpp is compared on, each with a tail of 400 tokens or more so
# that llama-perplexity's whole chunks of 128 cover the text (llamacpp_ids.py):
# WikiText-2 test, PTB valid, and the torture file's texts that llama.cpp reads as
# the library does (well-formed UTF-8 already in NFC, no added token written in
# them: llama-perplexity does not look for special tokens, nor does llama.cpp's
# qwen2 pre-tokenizer normalize), joined by blank lines.
llamacpp_texts() {
    "$PY" - "$WIKI" "$PTB" "$ORACLE/unicode-torture.txt" "$T" <<'PY'
import sys, unicodedata
wiki, ptb, torture, out = sys.argv[1:]
tail = ("\n\n" + " ".join(["the"] * 400) + "\n").encode()
kept = []
for r in open(torture, "rb").read().split(b"\0"):
    try:
        s = r.decode("utf-8")
    except UnicodeDecodeError:
        continue
    if unicodedata.is_normalized("NFC", s) and "\0" not in s and not any(
            t in s for t in ("<|", "<think>", "</think>", "<tool_call>", "</tool_call>")):
        kept.append(r)
assert len(kept) >= 80, len(kept)
for name, data in (("wiki", open(wiki, "rb").read()), ("ptb", open(ptb, "rb").read()), ("torture", b"\n\n".join(kept))):
    open(f"{out}/{name}.txt", "wb").write(data + tail)
PY
}

# "N same" when the ids in file $1 (llama.cpp's) are the first ids in file $2 (pare's)
# and cover at least all but the tail's 400, else where they differ.
same_prefix() {
    "$PY" -c 'import sys
a, b = open(sys.argv[1]).read().split(), open(sys.argv[2]).read().split()
ok = a == b[:len(a)] and len(a) >= len(b) - 400
print(len(a), "same" if ok else "differ at %s" % next((i for i in range(len(a)) if a[i] != b[i]), len(a)))' "$1" "$2"
}

@test "hf_tokenizer: a GGUF holds it as llama.cpp's gpt2 tokenizer; llama.cpp's ids equal pare's on WikiText-2, PTB and the torture texts; it reads back to the same ids and bytes" {
    need_oracle
    LLAMA_PPL="$DATA/../tools/llama.cpp/llama-perplexity"
    [ -x "$LLAMA_PPL" ] || { echo "missing: $LLAMA_PPL"; return 1; }
    llamacpp_texts
    for spec in llama3:128256:llama-bpe qwen3:151936:qwen2; do
        name=${spec%%:*} rest=${spec#*:}
        V=${rest%%:*} pre=${rest#*:}
        pare-mkmodel --dim 16 --layers 1 --heads 2 --ffn 32 --vocab "$V" --tied -o "$T/$name" >/dev/null
        cp "$DATA/tokenizers/$name/tokenizer.json" "$DATA/tokenizers/$name/tokenizer_config.json" "$T/$name/"
        pare convert -m "$T/$name" --to gguf -o "$T/$name.gguf"
        grep -aq "tokenizer.ggml.pre" "$T/$name.gguf" && grep -aq "$pre" "$T/$name.gguf"
        for text in wiki ptb torture; do
            "$PY" "$ORACLE/llamacpp_ids.py" "$LLAMA_PPL" "$T/$name.gguf" "$T/$text.txt" >"$T/llama.ids"
            pare tokenize --bos -m "$T/$name" "$T/$text.txt" >"$T/pare.ids"
            run same_prefix "$T/llama.ids" "$T/pare.ids"
            echo "$name $text: $output"
            [[ "$output" == *" same" ]]
        done
        # read back: the same ids as the folder's tokenizer, and the same GGUF again
        pare tokenize --bos -m "$T/$name.gguf" "$T/torture.txt" >"$T/back.ids"
        cmp "$T/back.ids" "$T/pare.ids"
        pare convert -m "$T/$name.gguf" -o "$T/$name.pare"
        pare show "$T/$name.pare" | grep -q '"t":"tokenizer","format":"hf-json"'
        pare convert -m "$T/$name.pare" --to gguf -o "$T/$name.2.gguf"
        cmp "$T/$name.gguf" "$T/$name.2.gguf"
    done
}

@test "hf_tokenizer: GGUF refuses a tokenizer.json whose pre-tokenizer llama.cpp has no name for" {
    need_tokenizers
    pare-mkmodel --dim 16 --layers 1 --heads 2 --ffn 32 --vocab 128256 --tied -o "$T/m" >/dev/null
    jq -c '.pre_tokenizer.pretokenizers[0].pattern.Regex = "\\s+|\\S+"' "$LLAMA3/tokenizer.json" >"$T/m/tokenizer.json"
    run pare convert -m "$T/m" --to gguf -o "$T/m.gguf"
    [ "$status" -eq 1 ]
    [[ "$output" == *"error: $T/m.gguf: the model's tokenizer.json has a pre-tokenizer llama.cpp knows by no name"* ]]
    [ ! -e "$T/m.gguf" ]
}
