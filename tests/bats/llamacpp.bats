#!/usr/bin/env bats
# GGUF files pare writes, run by llama.cpp's own llama-perplexity (an independent
# consumer): its perplexity equals pare-eval --ppl-protocol llama.cpp on the same
# text, for stories260K and pruned stories260K (llama and deci architectures);
# GGUF read back; refusals; Hugging Face folders out.
load helper

setup() {
    T="$BATS_TEST_TMPDIR"
    [ -x "$LLAMA_PPL" ] || { echo "missing: $LLAMA_PPL" >&2; return 1; }
    need_data
    # the README's text: the first 30,000 bytes of the TinyStories sample, CR removed
    head -c 30000 "$STORIES" | tr -d '\r' > "$T/text.txt"
}

# today_agrees MODEL DTYPE ARCH: the random MODEL (today) agrees with llama.cpp as
# ARCH in f32 and DTYPE, and its groups are in $T/g.pare
today_agrees() {
    today "$1"
    agrees "$T/$1" f32 "$3"
    agrees "$T/$1" "$2" "$3"
    pare-discover -q -m "$T/$1" -o "$T/g.pare"
}

# halve MODEL LAYERS OUT [ARCH]: pare-prune at ratio 0.5 over LAYERS with $T/g.pare,
# into $T/OUT; with ARCH, the pruned model agrees with llama.cpp as ARCH in f32
halve() {
    pare-prune -q -m "$T/$1" --ratio 0.5 --layers "$2" -o "$T/$3" "$T/g.pare"
    [ -z "$4" ] || agrees "$T/$3" f32 "$4"
}

@test "llamacpp: stories260K as GGUF: llama-perplexity's PPL equals pare-eval --ppl-protocol llama.cpp" {
    pare convert -m "$MODEL" --tokenizer "$TOK" -o "$T/s.pare"
    agrees "$T/s.pare" f32 llama
    # the README's numbers: 111 windows of 128, 6,993 scored tokens, PPL 4.0954 +/- 0.08954
    run pare-eval -q -m "$T/s.pare" --ppl "$T/text.txt" --ppl-protocol llama.cpp --json
    [ "$(jq '.metrics[0].n' <<<"$output")" -eq 6993 ]
    [ "$(jq '.metrics[0].protocol.windows' <<<"$output")" -eq 111 ]
    close "$(jq '.metrics[0].value' <<<"$output")" 4.0954 2e-5
    # the Hugging Face layout (q/k rows permuted on writing), f16 and bf16
    pare convert -m "$DATA/models/stories260K-hf" --tokenizer "$TOK" -o "$T/h.pare"
    agrees "$T/h.pare" f16 llama
    agrees "$T/h.pare" bf16 llama
}

@test "llamacpp: WikiText-2's raw file (CRLF, blank lines) with Llama 2's tokenizer: read as llama-perplexity reads it" {
    # llama-perplexity tokenizes the file's bytes; the Hugging Face rows joined with
    # "\n\n" (LLM-Pruner's text) are another token stream: 0.7% apart here, 2% on
    # the 8-layer LLaMA-7B slice of make bench
    pare-mkmodel --dim 64 --layers 1 --heads 4 --ffn 96 --vocab 32000 --seed 3 \
        --tokenizer "$DATA/tokenizers/llama2/tokenizer.model" -o "$T/l2" >/dev/null
    pare convert -m "$T/l2" --to gguf --dtype f32 -o "$T/m.gguf"
    head -c 30000 "$WIKI" > "$T/wiki.test.raw"
    read -r lp le arch <<<"$(llama_ppl "$T/m.gguf" "$T/wiki.test.raw")"
    read -r pp pe <<<"$(pare_ppl "$T/m.gguf" "$T/wiki.test.raw")"
    echo "llama.cpp: $lp +/- $le   pare: $pp +/- $pe"
    close "$pp" "$lp" 1e-4
    close "$pe" "$le" 1e-3
    # still WikiText-2 by name, the file's text; an explicit format is kept
    run pare-eval -q -m "$T/m.gguf" --ppl "$T/wiki.test.raw" --ppl-protocol llama.cpp --json
    jq -e '.metrics[0] | .task == "wikitext2" and .protocol.format == "text"' <<<"$output"
    run pare-eval -q -m "$T/m.gguf" --ppl "$T/wiki.test.raw" --ppl-protocol llama.cpp --ppl-format wikitext --json
    jq -e '.metrics[0].protocol.format == "wikitext"' <<<"$output"
    ! close "$(jq '.metrics[0].value' <<<"$output")" "$lp" 1e-3
}

@test "llamacpp: block-pruned stories260K (per-layer widths) runs as deci" {
    pare-discover -q -m "$MODEL" -o "$T/g.pare"
    pare-prune -q -m "$MODEL" --tokenizer "$TOK" --ratio 0.5 --layers 1-3 --criterion l1 -o "$T/b.pare" "$T/g.pare"
    agrees "$T/b.pare" f32 deci
}

@test "llamacpp: channel pruning of a block-pruned model (smaller hidden size, per-layer widths)" {
    pare-discover -q -m "$MODEL" -o "$T/g.pare"
    pare-prune -q -m "$MODEL" --tokenizer "$TOK" --ratio 0.5 --layers 1-3 -o "$T/b.pare" "$T/g.pare"
    pare-discover -q -m "$T/b.pare" -o "$T/g2.pare"
    pare-prune -q -m "$T/b.pare" --mode channel --ratio 0.25 -o "$T/c.pare" "$T/g2.pare"
    pare show "$T/c.pare" | head -1 | jq -e '.config.hidden_size == 48'
    agrees "$T/c.pare" f32 deci
    # channel pruning alone keeps the layers alike: llama
    pare-prune -q -m "$MODEL" --tokenizer "$TOK" --mode channel --ratio 0.25 -o "$T/c1.pare" "$T/g.pare"
    agrees "$T/c1.pare" f16 llama
}

@test "llamacpp: layers pruned to one key/value head, a layer of one head, a layer without attention" {
    pare-discover -q -m "$MODEL" -o "$T/g.pare"
    pare-prune -q -m "$MODEL" --tokenizer "$TOK" --ratio 0.99 --layers 1-3 -o "$T/o.pare" "$T/g.pare" 2>/dev/null
    pare show "$T/o.pare" | head -1 | jq -e '.config.num_key_value_heads == [4,1,1,1,4]'
    agrees "$T/o.pare" f32 deci
    # multi-head attention (no GQA): layer 1 keeps exactly one head
    pare-mkmodel --dim 32 --layers 3 --heads 4 --ffn 48 --vocab 512 --tied --seed 5 --tokenizer "$TOK" \
        -o "$T/mha" >/dev/null
    pare-discover -q -m "$T/mha" -o "$T/gm.pare"
    pare-prune -q -m "$T/mha" --ratio 0.99 --layers 1-1 -o "$T/m1.pare" "$T/gm.pare" 2>/dev/null
    pare show "$T/m1.pare" | head -1 | jq -e '.config.num_attention_heads == [4,1,4]'
    agrees "$T/m1.pare" f32 deci
    # a layer whose attention is gone entirely (deci's attention-free layer)
    pare-mkmodel --dim 32 --layers 3 --heads 4,0,4 --kv-heads 2,0,2 --ffn 48 --vocab 512 --tied --seed 9 \
        --tokenizer "$TOK" -o "$T/af" >/dev/null
    agrees "$T/af" f32 deci
}

@test "llamacpp: FLAP's output biases reach llama.cpp" {
    pare-discover -q -m "$MODEL" -o "$T/g.pare"
    pare-score -q -m "$MODEL" --tokenizer "$TOK" --calib "$STORIES" -o "$T/s.pare" "$T/g.pare"
    pare-prune -q -m "$MODEL" --tokenizer "$TOK" --criterion flap --ratio 0.5 --layers 1-3 -o "$T/f.pare" "$T/s.pare"
    pare show "$T/f.pare" | head -1 | jq -e '.config.o_proj_bias == true and .config.down_proj_bias == true'
    agrees "$T/f.pare" f32 deci
    # without them llama.cpp would compute another function
    pare-prune -q -m "$MODEL" --tokenizer "$TOK" --criterion flap --no-compensation --ratio 0.5 --layers 1-3 \
        -o "$T/n.pare" "$T/s.pare"
    a=$(pare_ppl "$T/f.pare"); b=$(pare_ppl "$T/n.pare")
    ! close "${a%% *}" "${b%% *}" 1e-3
}

# a random model of family $1 (tests/configs/tiny-$1.json) in $T/$1, TinyStories' tokenizer
today() {
    pare-mkmodel --config "$ROOT/tests/configs/tiny-$1.json" --tokenizer "$TOK" --seed 13 -o "$T/$1" >/dev/null
}

@test "llamacpp: Llama 3 with llama3 rope scaling as llama (rope_freqs), and deci when pruned" {
    today llama3
    agrees "$T/llama3" f32 llama
    agrees "$T/llama3" bf16 llama
    # llama.cpp applied the factors: pare without the scaling computes another perplexity
    read -r lp le arch <<<"$(llama_ppl "$T/m.gguf")"
    cp -r "$T/llama3" "$T/plain"
    jq 'del(.rope_scaling)' "$T/llama3/config.json" > "$T/plain/config.json"
    read -r pp pe <<<"$(pare_ppl "$T/plain")"
    echo "llama.cpp $lp, pare without rope scaling $pp"
    run close "$pp" "$lp" 1e-3
    [ "$status" -eq 1 ]
    pare-discover -q -m "$T/llama3" -o "$T/g.pare"
    halve llama3 1-1 b.pare deci
    # linear scaling through llama.cpp's own keys
    jq '.rope_scaling = {"rope_type": "linear", "factor": 4.0}' "$T/plain/config.json" > "$T/c.json"
    mv "$T/c.json" "$T/plain/config.json"
    agrees "$T/plain" f32 llama
}

@test "llamacpp: Qwen2 as qwen2, and as deci with its biases when pruned" {
    today_agrees qwen2 f16 qwen2
    halve qwen2 1-1 b.pare deci
    # every layer alike, but q_proj no longer hidden x hidden: llama (qwen2 holds it square)
    halve qwen2 0-2 u.pare llama
}

@test "llamacpp: Qwen3 as qwen3 (q/k norms), pruned alike in every layer; per-layer widths refused" {
    today_agrees qwen3 bf16 qwen3
    halve qwen3 0-2 u.pare qwen3
    halve qwen3 1-1 b.pare
    run pare convert -m "$T/b.pare" --to gguf -o "$T/b.gguf"
    [ "$status" -eq 1 ]
    [[ "$output" == *"the layers differ in width (a pruned Qwen3); llama.cpp's qwen3 architecture has one width"* ]]
    [[ "$output" == *"--layers 0-2"* ]]
    # GGUF -> checkpoint -> GGUF is byte-identical for the three
    for m in "$T/qwen3" "$T/u.pare"; do
        pare convert -m "$m" --to gguf --dtype bf16 -o "$T/a.gguf"
        pare convert -m "$T/a.gguf" -o "$T/a.pare"
        pare convert -m "$T/a.pare" --to gguf --dtype bf16 -o "$T/c.gguf"
        cmp "$T/a.gguf" "$T/c.gguf"
    done
}

@test "llamacpp: GGUF -> checkpoint -> GGUF is byte-identical (llama and deci, f32, f16, bf16)" {
    pare-discover -q -m "$MODEL" -o "$T/g.pare"
    pare-prune -q -m "$MODEL" --tokenizer "$TOK" --ratio 0.5 --layers 1-3 -o "$T/b.pare" "$T/g.pare"
    for src in "$MODEL" "$T/b.pare"; do
        for dt in f32 f16 bf16; do
            pare convert -m "$src" --tokenizer "$TOK" --to gguf --dtype $dt -o "$T/a.gguf"
            pare convert -m "$T/a.gguf" -o "$T/a.pare"
            pare convert -m "$T/a.pare" --to gguf --dtype $dt -o "$T/b.gguf"
            cmp "$T/a.gguf" "$T/b.gguf"
        done
    done
    # f32 GGUF in: the llama2.c model's own fingerprint (same layout, same values)
    pare convert -m "$MODEL" --tokenizer "$TOK" --to gguf -o "$T/s.gguf"
    pare convert -m "$T/s.gguf" -o "$T/s.pare"
    [ "$(pare show "$T/s.pare" | head -1 | jq -r .fingerprint)" = "9e148dffbcfbf67b" ]
    # and its tokenizer (rebuilt from tokenizer.ggml.*) gives the same ids
    head -c 3000 "$T/text.txt" > "$T/short.txt"
    [ "$(pare tokenize -m "$T/s.gguf" "$T/short.txt")" = "$(pare tokenize --tokenizer "$TOK" "$T/short.txt")" ]
}

@test "llamacpp: models llama.cpp could not run are refused with the rule" {
    pare-mkmodel --dim 16 --layers 3 --heads 4 --kv-heads 2 --ffn 24 --vocab 512 --seed 3 -o "$T/m" >/dev/null
    pare-discover -q -m "$T/m" -o "$T/g.pare"
    pare-prune -q -m "$T/m" --tokenizer "$TOK" --ratio 0.99 --layers 0-0 --allow-empty -o "$T/e0.pare" "$T/g.pare"
    run pare convert -m "$T/e0.pare" --to gguf -o "$T/x.gguf"
    [ "$status" -eq 1 ]
    [[ "$output" == *"layer 0 has no attention heads"* ]]
    pare-prune -q -m "$T/m" --tokenizer "$TOK" --ratio 0.99 --layers 1-1 --allow-empty -o "$T/e1.pare" "$T/g.pare"
    run pare convert -m "$T/e1.pare" --to gguf -o "$T/x.gguf"
    [ "$status" -eq 1 ]
    [[ "$output" == *"layer 1 has neither attention nor MLP"* ]]
    run pare convert -m "$T/m" --to gguf -o "$T/x.gguf"
    [ "$status" -eq 1 ]
    [[ "$output" == *"no tokenizer"* ]]
    [ ! -e "$T/x.gguf" ]
    run pare convert -m "$MODEL" --tokenizer "$TOK" --to gguf
    [ "$status" -eq 2 ]
}

@test "llamacpp: Hugging Face folder out: same fingerprint back; per-layer widths point to GGUF" {
    pare convert -m "$DATA/models/stories260K-hf" --to hf -o "$T/hf"
    [ -f "$T/hf/config.json" ] && [ -f "$T/hf/model.safetensors" ]
    pare convert -m "$DATA/models/stories260K-hf" -o "$T/a.pare"
    pare convert -m "$T/hf" -o "$T/b.pare"
    [ "$(pare show "$T/a.pare" | head -1 | jq -r .fingerprint)" = "$(pare show "$T/b.pare" | head -1 | jq -r .fingerprint)" ]
    # the llama2.c model (interleaved rows) goes out in the half layout, same function
    pare convert -m "$MODEL" --tokenizer "$TOK" --to hf -o "$T/hf2"
    jq -e '.rope_style == "half"' "$T/hf2/config.json"
    [ -f "$T/hf2/tokenizer.model" ]
    a=$(pare_ppl "$T/hf2"); b=$(pare-eval -q -m "$MODEL" --tokenizer "$TOK" --ppl "$T/text.txt" --ppl-protocol llama.cpp --json | jq -r '.metrics[0].value')
    close "${a%% *}" "$b" 1e-5
    # a pruned model with per-layer widths
    pare-discover -q -m "$MODEL" -o "$T/g.pare"
    pare-prune -q -m "$MODEL" --tokenizer "$TOK" --ratio 0.5 --layers 1-3 -o "$T/p.pare" "$T/g.pare"
    run pare convert -m "$T/p.pare" --to hf -o "$T/hf3"
    [ "$status" -eq 1 ]
    [[ "$output" == *"write GGUF (--to gguf)"* ]]
}

@test "llamacpp: pare-prune -o FILE.gguf and pare-lora --merge -o FILE.gguf write GGUF for llama.cpp" {
    pare-discover -q -m "$MODEL" -o "$T/g.pare"
    pare-prune -q -m "$MODEL" --tokenizer "$TOK" --ratio 0.5 --layers 1-3 --criterion l1 -o "$T/p.gguf" "$T/g.pare"
    pare-prune -q -m "$MODEL" --tokenizer "$TOK" --ratio 0.5 --layers 1-3 --criterion l1 -o "$T/p.pare" "$T/g.pare"
    pare convert -m "$T/p.pare" --to gguf -o "$T/q.gguf"
    cmp "$T/p.gguf" "$T/q.gguf"
    read -r lp le arch <<<"$(llama_ppl "$T/p.gguf")"
    [ "$arch" = deci ]
    close "$(pare_ppl "$T/p.pare" | cut -d' ' -f1)" "$lp" 1e-3
    # the merged model of a LoRA run, as pare convert writes it
    head -n 399 "$STORIES" > "$T/train.txt"
    opts=(-m "$T/p.pare" --data "$T/train.txt" --text --cutoff 64 --batch 8 --micro-batch 4 --epochs 1 --warmup 2
          --lr 2e-3 --eval-every 10 --val-size 40 -t 1 --merge)
    pare-lora -q "${opts[@]}" -o "$T/m.gguf"
    pare-lora -q "${opts[@]}" -o "$T/m.pare"
    pare convert -m "$T/m.pare" --to gguf -o "$T/n.gguf"
    cmp "$T/m.gguf" "$T/n.gguf"
    # a bf16 model prunes to a bf16 GGUF, as pare convert --dtype bf16 writes it
    pare convert -m "$MODEL" --tokenizer "$TOK" --dtype bf16 -o "$T/b.pare"
    pare-discover -q -m "$T/b.pare" -o "$T/gb.pare"
    pare-prune -q -m "$T/b.pare" --ratio 0.5 --layers 1-3 --criterion l1 -o "$T/pb.gguf" "$T/gb.pare"
    pare-prune -q -m "$T/b.pare" --ratio 0.5 --layers 1-3 --criterion l1 -o "$T/pb.pare" "$T/gb.pare"
    pare convert -m "$T/pb.pare" --to gguf --dtype bf16 -o "$T/qb.gguf"
    cmp "$T/pb.gguf" "$T/qb.gguf"
    [ "$(stat -c %s "$T/pb.gguf")" -lt "$(stat -c %s "$T/p.gguf")" ]
}
