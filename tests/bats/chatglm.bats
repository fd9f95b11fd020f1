#!/usr/bin/env bats
# ChatGLM-6B and ChatGLM2 end to end on tiny random models: discover -> score (and
# two shards merged) -> prune -> lora, and distillation from the unpruned model ->
# eval, the checkpoint's config keys, and GGUF refused. The
# pipeline's models use the tok512 tokenizer (Llama-style SentencePiece, 512
# pieces) with a vocabulary of 512; the zero-shot tests train ChatGLM tokenizers
# (python3-sentencepiece) for the [gMASK] <sop> prompt forms.
load helper

# a tiny random model of kind $1 in $T/$1 (tokenizer $2, default tok512); prints its fingerprint
mk() {
    pare-mkmodel --model-type "$1" --dim 16 --layers 3 --heads 4 --kv-heads 2 --ffn 24 --vocab 512 --head-dim 4 \
        --qkv-bias --tokenizer "${2:-$TOK}" -o "$T/$1"
}

# distil KIND: the pruned $T/p.pare distilled from the unpruned $T/KIND (fingerprint
# $fp, the pruned checkpoint's base): ChatGLM-6B by LoRA (the curve's KL and CE
# apart, the KL to the teacher lower at the end), ChatGLM2 every weight with half
# the loss the cross-entropy (KL and CE apart in the progress lines); the teacher
# recorded by its fingerprint, the validation loss lower, pare-eval runs the result.
# Then a teacher of another vocabulary is refused, the message naming both: for
# ChatGLM-6B a ChatGLM2 of 600 tokens, for ChatGLM2 one of the same 512 tokens
# but a tokenizer with two pieces swapped.
distil() {
    local opts=(-m "$T/p.pare" --data "$T/t.txt" --text --cutoff 32 --batch 8 --micro-batch 2 --epochs 1 --warmup 0
                --lr 2e-3 --eval-every 100 -t 1)
    [ "$(pare show "$T/p.pare" | head -1 | jq -r .provenance.base_fingerprint)" = "$fp" ]
    if [ "$1" = chatglm ]; then
        pare-lora -q "${opts[@]}" --teacher "$T/$1" -o "$T/k.pare"
        pare show "$T/k.pare" | head -1 > "$T/h.json"
        jq -e '.loss_curve | (.[0] | has("val_kl") and has("val_ce")) and
            ([.[] | select(has("loss")) | has("kl") and has("ce") and .loss == .kl] | all) and
            .[-1].val_kl < .[0].val_kl' "$T/h.json"
        jq '.training' "$T/h.json" > "$T/tr.json"
        pare-eval -q -m "$T/p.pare" -a "$T/k.pare" --ppl "$T/t.txt" --limit 4 --json > "$T/r.json"
    else
        pare-lora "${opts[@]}" --teacher "$T/$1" --kd-weight 0.5 --full --log-every 1 -o "$T/k.pare" 2> "$T/err"
        progress_mixes "$T/err" 0.5
        pare show "$T/k.pare" | head -1 | jq -e '.config.model_type == "chatglm" and .config.multi_query_group_num == 1'
        pare show "$T/k.pare" | head -1 | jq '.provenance.full.training' > "$T/tr.json"
        pare-eval -q -m "$T/k.pare" --ppl "$T/t.txt" --limit 4 --json > "$T/r.json"
    fi
    jq -e --arg fp "$fp" '.loss | .name == "distillation" and .teacher.fingerprint == $fp and .teacher.from == "model"' \
        "$T/tr.json"
    jq -e '.best_val_loss < .first_val_loss' "$T/tr.json"
    echo "$1 distilled: val loss $(jq -c '[.first_val_loss, .best_val_loss]' "$T/tr.json"), ppl $(jq '.metrics[0].value' "$T/r.json")"
    jq -e '.metrics[0].value | . > 1 and . < 1e5' "$T/r.json"
    if [ "$1" = chatglm ]; then
        pare-mkmodel --model-type chatglm2 --dim 16 --layers 2 --heads 4 --kv-heads 2 --ffn 24 --vocab 600 --tokenizer "$TOK" \
            -o "$T/other" >/dev/null
        want="$T/other: the teacher's vocabulary has 600 tokens, the model's 512: a teacher must share the model's vocabulary"
    else
        mkdir -p "$T/swap"
        $PY - "$TOK" "$T/swap/tok512.bin" <<'PY'
import struct, sys
b = open(sys.argv[1], "rb").read()
o, at = 4, []   # llama2.c's tok*.bin: max piece length, then (score, length, bytes) a piece
for i in range(512):
    n = struct.unpack_from("<i", b, o + 4)[0]
    at.append((o, o + 8 + n))
    o += 8 + n
(a0, a1), (b0, b1) = at[300], at[301]
open(sys.argv[2], "wb").write(b[:a0] + b[b0:b1] + b[a0:a1] + b[b1:])
PY
        mv "$T/$1" "$T/student-teacher"
        mk "$1" "$T/swap/tok512.bin" >/dev/null
        mv "$T/$1" "$T/other" && mv "$T/student-teacher" "$T/$1"
        want="$T/other: token 300 is ' S' in the teacher's vocabulary and ' ha' in the model's: a teacher must share the model's vocabulary"
    fi
    run pare-lora -q "${opts[@]}" --teacher "$T/other" -o "$T/x.pare"
    [ "$status" -eq 1 ]
    [ "$output" = "pare-lora: error: $want" ] || { echo "$output"; false; }
    [ ! -e "$T/x.pare" ]
}

pipeline() {
    need_data
    local fp
    fp=$(mk "$1")
    head -c 12000 "$STORIES" > "$T/t.txt"
    pare-discover -q -m "$T/$1" -o "$T/g.pare"
    pare-score -q -m "$T/$1" --calib "$T/t.txt" -o "$T/s.pare" "$T/g.pare"
    pare-prune -q -m "$T/$1" --ratio 0.5 --layers 0-2 -o "$T/p.pare" "$T/s.pare"
    # two shards merged: the unsharded header, and the same units pruned
    for i in 0 1; do
        pare-score -q -m "$T/$1" --calib "$T/t.txt" --shard $i/2 -o "$T/part$i.pare" "$T/g.pare"
    done
    pare-score -q --merge "$T/part1.pare" "$T/part0.pare" -o "$T/merged.pare"
    diff <(pare show "$T/merged.pare" | head -1 | jq -S 'del(.argv)') <(pare show "$T/s.pare" | head -1 | jq -S 'del(.argv)')
    pare-prune -q -m "$T/$1" --ratio 0.5 --layers 0-2 -o "$T/pm.pare" "$T/merged.pare"
    diff <(pare show "$T/pm.pare" | head -1 | jq -c .provenance.groups) <(pare show "$T/p.pare" | head -1 | jq -c .provenance.groups)
    pare-lora -q -m "$T/p.pare" --data "$T/t.txt" --text --cutoff 32 --batch 8 --micro-batch 2 --warmup 2 \
        --epochs 1 --eval-every 5 -t 1 -o "$T/a.pare"
    pare-eval -q -m "$T/p.pare" -a "$T/a.pare" --ppl "$T/t.txt" --limit 4 --json > "$T/r.json"
    ppl=$(jq '.metrics[0].value' "$T/r.json")
    awk -v p="$ppl" 'BEGIN { exit !(p > 1 && p < 1e5) }'
    # the scores name the fused tensors; the pruned checkpoint keeps ChatGLM's keys and names
    pare show "$T/s.pare" | grep -q 'query_key_value.weight'
    pare show "$T/p.pare" | head -1 | jq -e '.config.model_type == "chatglm"'
    pare show "$T/p.pare" | jq -r 'select(.t == "tensor") | .name' | grep -q '^transformer\.'
    pare show "$T/a.pare" | jq -r 'select(.t == "tensor") | .name' | grep -q 'dense_4h_to_h.weight.lora_A'
    distil "$1"
}

@test "chatglm: ChatGLM-6B discover | score | prune | lora | distil | eval on a tiny random model" {
    pipeline chatglm
    # 4 heads of 4: 2 go in each layer at 0.5 (12 of 24 MLP channels)
    pare show "$T/p.pare" | head -1 | jq -e '.config.num_attention_heads == 2 and .config.inner_hidden_size == 12'
}

@test "chatglm: ChatGLM2 discover | score | prune | lora | distil | eval on a tiny random model" {
    pipeline chatglm2
    # 2 key/value groups of 2 query heads: one group goes at 0.5
    pare show "$T/p.pare" | head -1 | jq -e '.config.multi_query_group_num == 1 and .config.num_attention_heads == 2'
}

@test "chatglm: layer mode keeps ChatGLM-6B's residual scale; the folder loads back to its fingerprint" {
    need_data
    fp=$(pare-mkmodel --model-type chatglm --dim 16 --layers 3 --heads 4 --ffn 24 --vocab 512 --tokenizer "$TOK" -o "$T/m")
    pare-discover -q -m "$T/m" | pare show | head -1 | grep -q "\"fingerprint\":\"$fp\""
    pare-discover -q -m "$T/m" --kinds layer -o "$T/g.pare"
    pare-prune -q -m "$T/m" --mode layer --ratio 0.34 --layers 0-2 -o "$T/p.pare" "$T/g.pare"
    pare show "$T/p.pare" | head -1 | jq -e '.config.num_layers == 2 and .config.residual_scale_layers == 3'
    pare-eval -q -m "$T/p.pare" --ppl "$STORIES" --limit 2 --json | jq -e '.metrics[0].value > 1'
}

@test "chatglm: GGUF is refused with a reason" {
    need_data
    mk chatglm
    run pare convert -m "$T/chatglm" -o "$T/x.gguf"
    [ "$status" -eq 1 ]
    [[ "$output" == *"llama.cpp has no ChatGLM-6B architecture"* ]]
    [ ! -e "$T/x.gguf" ]
}

# Three PIQA items for the zero-shot tests.
piqa_file() {
    cat > "$1" <<'JSON'
{"goal": "How do I ready a guinea pig cage?", "sol1": "Provide bedding.", "sol2": "Provide jeans.", "label": 0}
{"goal": "To open a jar,", "sol1": "twist the lid.", "sol2": "paint the lid.", "label": 0}
{"goal": "Keep a dog warm", "sol1": "with a blanket", "sol2": "with ice", "label": 0}
JSON
}

@test "chatglm: zero-shot on ChatGLM-6B reads context [gMASK] <sop> continuation by default, --glm-mask causal the plain form" {
    need_data
    "$PY" -c 'import sentencepiece' || { echo "python3-sentencepiece missing for $PY"; return 1; }
    make_glm "$T/glm" unigram
    pare-mkmodel --model-type chatglm --dim 16 --layers 2 --heads 4 --ffn 24 --vocab 700 -o "$T/m" >/dev/null
    piqa_file "$T/piqa.jsonl"
    pare-eval -q -m "$T/m" --tokenizer "$T/glm" --task-file piqa="$T/piqa.jsonl" --items --json > "$T/p.json"
    pare-eval -q -m "$T/m" --tokenizer "$T/glm" --task-file piqa="$T/piqa.jsonl" --items --glm-mask causal --json > "$T/c.json"
    pare-eval -q -m "$T/m" --tokenizer "$T/glm" --task-file piqa="$T/piqa.jsonl" --glm-mask prefix --json > "$T/p2.json"
    jq -e '.metrics[0].protocol | .mask == "prefix" and (.prompt_form | startswith("context [gMASK] <sop> continuation"))' "$T/p.json"
    jq -e '.metrics[0].protocol | .mask == "causal" and (.prompt_form | contains("not ChatGLM-6B'"'"'s native"))' "$T/c.json"
    jq -e '.metrics[0].protocol.mask == "prefix"' "$T/p2.json"
    # the two forms give other log-likelihoods of the same token ids
    [ "$(jq -c '[.items[].context_ids]' "$T/p.json")" = "$(jq -c '[.items[].context_ids]' "$T/c.json")" ]
    $PY - "$T/p.json" "$T/c.json" <<'PY'
import json, sys
p, c = (json.load(open(f))["items"] for f in sys.argv[1:3])
d = max(abs(a - b) for x, y in zip(p, c) for a, b in zip(x["ll"], y["ll"]))
assert d > 1e-4, d
PY
    # perplexity stays causal, and says so
    head -c 3000 "$STORIES" > "$T/t.txt"
    pare-eval -q -m "$T/m" --tokenizer "$T/glm" --ppl "$T/t.txt" --limit 2 --json |
        jq -e '.metrics[0].protocol | .mask == "causal" and (.prompt_form | contains("[gMASK] <sop>"))'
    # without ChatGLM-6B's tokenizer the prompt form cannot be built; the causal form can
    run pare-eval -q -m "$T/m" --tokenizer "$TOK" --task-file piqa="$T/piqa.jsonl" --json
    [ "$status" -eq 1 ]
    [[ "$output" == *"needs ChatGLM-6B's tokenizer (ice_text.model)"* ]]
    pare-eval -q -m "$T/m" --tokenizer "$TOK" --task-file piqa="$T/piqa.jsonl" --glm-mask causal --json |
        jq -e '.metrics[0].protocol.mask == "causal"'
    # a bad value is refused in one line (and the usual pointer to --help)
    run pare-eval -q -m "$T/m" --tokenizer "$T/glm" --task-file piqa="$T/piqa.jsonl" --glm-mask bidir
    [ "$status" -eq 2 ]
    [ "${lines[0]}" = "pare-eval: error: --glm-mask: unknown mask 'bidir' (prefix, causal)" ]
    [ "$(grep -c 'error:' <<<"$output")" -eq 1 ]
}

@test "chatglm: zero-shot on ChatGLM2 is causal after [gMASK] sop; the prefix form is refused" {
    need_data
    "$PY" -c 'import sentencepiece' || { echo "python3-sentencepiece missing for $PY"; return 1; }
    make_glm2 "$T/glm2"
    pare-mkmodel --model-type chatglm2 --dim 16 --layers 2 --heads 4 --kv-heads 2 --ffn 24 --vocab 605 -o "$T/m" >/dev/null
    piqa_file "$T/piqa.jsonl"
    pare-eval -q -m "$T/m" --tokenizer "$T/glm2" --task-file piqa="$T/piqa.jsonl" --items --json > "$T/r.json"
    jq -e '.metrics[0].protocol | .mask == "causal" and (.bos | startswith("[gMASK] sop"))' "$T/r.json"
    # every context starts with [gMASK] sop, ids 601 and 603 after the 600 pieces
    jq -e '[.items[].context_ids[][0:2] == [601, 603]] | all' "$T/r.json"
    run pare-eval -q -m "$T/m" --tokenizer "$T/glm2" --task-file piqa="$T/piqa.jsonl" --glm-mask prefix
    [ "$status" -eq 1 ]
    [[ "$output" == *"the prefix mask ([gMASK] <sop> prompt form) is ChatGLM-6B's; this is a chatglm2 model"* ]]
}

@test "chatglm: a teacher needs the model's tokenizer: ChatGLM2's beside ChatGLM-6B's is refused at one vocabulary size; the same serves across kinds" {
    need_data
    "$PY" -c 'import sentencepiece' || { echo "python3-sentencepiece missing for $PY"; return 1; }
    make_glm "$T/glm" unigram
    make_glm2 "$T/glm2"
    head -c 3000 "$STORIES" > "$T/t.txt"
    glm() { pare-mkmodel --model-type "$1" --dim 16 --layers 2 --heads 4 --kv-heads 2 --ffn 24 --vocab 700 --tokenizer "$2" -o "$3"; }
    glm chatglm "$T/glm" "$T/m" >/dev/null
    glm chatglm2 "$T/glm2" "$T/t2" >/dev/null
    opts=(-q -m "$T/m" --data "$T/t.txt" --text --cutoff 32 --batch 8 --micro-batch 2 --epochs 1 -t 1)
    run pare-lora "${opts[@]}" --teacher "$T/t2" -o "$T/x.pare"
    [ "$status" -eq 1 ]
    [ "$output" = "pare-lora: error: $T/t2: the teacher's tokenizer has 605 tokens, the model's 700: a teacher must share the model's vocabulary" ]
    [ ! -e "$T/x.pare" ]
    # a ChatGLM2 with ChatGLM-6B's tokenizer teaches the ChatGLM-6B model
    fp=$(glm chatglm2 "$T/glm" "$T/t6")
    pare-lora "${opts[@]}" --teacher "$T/t6" -o "$T/a.pare"
    pare show "$T/a.pare" | head -1 | jq -e --arg fp "$fp" '.training.loss.teacher.fingerprint == $fp'
}

# pare-lora on a ChatGLM model of kind $1 with adapters on the fused maps, then
# "$@" (after the kind)
fused_lora() {
    local kind=$1
    shift
    pare-lora -q -m "$T/$kind" --data "$T/t.txt" --text --cutoff 32 --batch 8 --micro-batch 2 --warmup 2 --lr 1e-3 \
        --eval-every 5 -t 1 --targets query_key_value,dense_h_to_4h "$@"
}

@test "chatglm: LoRA on the fused maps of both kinds: the adapters' names and shapes, --merge = base + adapter" {
    need_data
    head -c 12000 "$STORIES" > "$T/t.txt"
    for kind in chatglm chatglm2; do
        mk "$kind"
        fused_lora "$kind" --epochs 1 -o "$T/a.pare"
        pare show "$T/a.pare" > "$T/a.jsonl"
        # the model's own names: 3 layers x (query_key_value, dense_h_to_4h) x (A, B); the
        # fused maps whole (6B: q/k/v of 4 heads of 4; ChatGLM2: 4 query heads and 2
        # key/value groups; its dense_h_to_4h gate and up rows, 2 x 24)
        $PY - "$T/a.jsonl" "$kind" <<'PY'
import json, sys
lines = [json.loads(l) for l in open(sys.argv[1])]
glm2 = sys.argv[2] == "chatglm2"
assert lines[0]["targets"] == ["query_key_value", "dense_h_to_4h"], lines[0]["targets"]
pre, att = ("transformer.encoder.layers.", "self_attention.") if glm2 else ("transformer.layers.", "attention.")
qkv, h4h = (32, 48) if glm2 else (48, 24)
want = []
for l in range(3):
    for name, out in ((att + "query_key_value", qkv), ("mlp.dense_h_to_4h", h4h)):
        want += [(f"{pre}{l}.{name}.weight.lora_A", [8, 16]), (f"{pre}{l}.{name}.weight.lora_B", [out, 8])]
got = [(r["name"], r["shape"]) for r in lines[1:] if r["t"] == "tensor"]
assert got == want, got
PY
        fused_lora "$kind" --epochs 1 --merge -o "$T/merged.pare"
        pare show "$T/merged.pare" | head -1 |
            jq -e '.provenance.lora.targets == ["query_key_value", "dense_h_to_4h"] and .config.model_type == "chatglm"'
        ppl() { pare-eval -q "$@" --ppl "$T/t.txt" --limit 4 --json | jq '.metrics[0].value'; }
        base=$(ppl -m "$T/$kind")
        with=$(ppl -m "$T/$kind" -a "$T/a.pare")
        merged=$(ppl -m "$T/merged.pare")
        echo "$kind ppl: base $base, + adapter $with, merged $merged"
        close "$with" "$merged" 1e-5
        if close "$with" "$base" 1e-3; then false; fi   # the adapters changed the model
    done
}

@test "chatglm: fused-map LoRA stopped by SIGTERM resumes to the same adapter" {
    need_data
    head -c 12000 "$STORIES" > "$T/t.txt"
    mk chatglm2
    fused_lora chatglm2 --epochs 3 --save-every 100 --state "$T/st" -o "$T/ref.pare"
    rm -rf "$T/st"
    sigterm_resumes 2 pare-lora -m "$T/chatglm2" --data "$T/t.txt" --text --cutoff 32 --batch 8 --micro-batch 2 \
        --warmup 2 --lr 1e-3 --eval-every 5 -t 1 --targets query_key_value,dense_h_to_4h --epochs 3 --save-every 100 \
        --state "$T/st" -o "$T/out.pare" --progress
    [ -f "$T/out.pare" ] || fused_lora chatglm2 --epochs 3 --save-every 100 --state "$T/st" -o "$T/out.pare"
    # the same adapter (the argv differs: --progress)
    cmp <(pare show "$T/ref.pare" | jq -c 'del(.argv)') <(pare show "$T/out.pare" | jq -c 'del(.argv)')
}

@test "chatglm: --targets takes the model's own names, all four by default; another model's are refused" {
    need_data
    head -c 12000 "$STORIES" > "$T/t.txt"
    mk chatglm
    pare-lora -q -m "$T/chatglm" --data "$T/t.txt" --text --cutoff 32 --batch 8 --micro-batch 2 --epochs 1 -t 1 \
        -o "$T/a.pare"
    pare show "$T/a.pare" | head -1 |
        jq -e '.targets == ["query_key_value", "dense", "dense_h_to_4h", "dense_4h_to_h"]'
    [ "$(pare show "$T/a.pare" | jq -r 'select(.t == "tensor") | .name' | grep -c 'lora_A$')" -eq 12 ]
    for bad in q_proj o_proj query_key_value,up_proj qkv; do
        run pare-lora -m "$T/chatglm" --data "$T/t.txt" --text --targets "$bad" -o "$T/b.pare"
        [ "$status" -eq 2 ]
        [[ "$output" == *"--targets '$bad': a chatglm model's targets are query_key_value,dense,dense_h_to_4h,dense_4h_to_h (or all)"* ]]
    done
    mk chatglm2
    run pare-lora -m "$T/chatglm2" --data "$T/t.txt" --text --targets q -o "$T/b.pare"
    [ "$status" -eq 2 ]
    [[ "$output" == *"a chatglm2 model's targets are query_key_value,dense,dense_h_to_4h,dense_4h_to_h"* ]]
    run pare-lora -m "$MODEL" --tokenizer "$TOK" --data "$T/t.txt" --text --targets query_key_value -o "$T/b.pare"
    [ "$status" -eq 2 ]
    [[ "$output" == *"a llama model's targets are q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj (or all)"* ]]
    [ ! -e "$T/b.pare" ]
    # an adapter belongs to its base model
    run pare-eval -m "$T/chatglm2" -a "$T/a.pare" --ppl "$T/t.txt" --limit 1
    [ "$status" -eq 1 ]
    [[ "$output" == *"the adapter was made for model"* ]]
}

@test "chatglm: generation on ChatGLM-6B in its prompt [gMASK] <sop> form by default, --glm-mask causal the causal reading; ChatGLM2 causal" {
    need_data
    "$PY" -c 'import sentencepiece' || { echo "python3-sentencepiece missing for $PY"; return 1; }
    make_glm "$T/glm" unigram
    pare-mkmodel --model-type chatglm --dim 16 --layers 2 --heads 4 --ffn 24 --vocab 700 -o "$T/m" >/dev/null
    pare-eval -q -m "$T/m" --tokenizer "$T/glm" --prompt "Once upon a time" --max-length 24 --json > "$T/p.json"
    pare-eval -q -m "$T/m" --tokenizer "$T/glm" --prompt "Once upon a time" --max-length 24 --glm-mask causal --json > "$T/c.json"
    jq -e '.samples[0].protocol | .mask == "prefix" and (.prompt_form | startswith("prompt [gMASK] <sop> generated (ChatGLM-6B'"'"'s)"))' "$T/p.json"
    jq -e '.samples[0].protocol | .mask == "causal" and (.prompt_form | contains("not ChatGLM-6B'"'"'s native"))' "$T/c.json"
    # the same prompt tokens (the text, then [gMASK] <sop>), read two ways: other draws
    n=$(printf %s "Once upon a time" | pare tokenize --tokenizer "$T/glm" | wc -w)
    jq -e --argjson n "$n" '.samples[0] | .prompt_tokens == $n + 2 and .tokens >= 1 and .prompt_tokens + .tokens <= 24' "$T/p.json"
    jq -e --argjson n "$n" '.samples[0].prompt_tokens == $n + 2' "$T/c.json"
    [ "$(jq -r '.samples[0].text' "$T/p.json")" != "$(jq -r '.samples[0].text' "$T/c.json")" ]
    # without ChatGLM-6B's tokenizer there is no [gMASK] <sop> to generate after; causal does without
    run pare-eval -q -m "$T/m" --tokenizer "$TOK" --prompt "Once upon a time" --max-length 24 --json
    [ "$status" -eq 1 ]
    [[ "$output" == *"needs ChatGLM-6B's tokenizer (ice_text.model)"* ]]
    pare-eval -q -m "$T/m" --tokenizer "$TOK" --prompt "Once upon a time" --max-length 24 --glm-mask causal --json |
        jq -e '.samples[0].protocol | .mask == "causal" and (.prompt_form | startswith("BOS prompt generated"))'
    # ChatGLM2: causal after [gMASK] sop; the prefix form is refused
    make_glm2 "$T/glm2"
    pare-mkmodel --model-type chatglm2 --dim 16 --layers 2 --heads 4 --kv-heads 2 --ffn 24 --vocab 605 -o "$T/m2" >/dev/null
    pare-eval -q -m "$T/m2" --tokenizer "$T/glm2" --prompt "Once upon a time" --max-length 24 --json |
        jq -e '.samples[0].protocol | .mask == "causal" and (.prompt_form | startswith("[gMASK] sop prompt generated, causal"))'
    run pare-eval -q -m "$T/m2" --tokenizer "$T/glm2" --prompt "Once upon a time" --glm-mask prefix
    [ "$status" -eq 1 ]
    [[ "$output" == *"the prefix mask ([gMASK] <sop> prompt form) is ChatGLM-6B's; this is a chatglm2 model"* ]]
}
