#!/usr/bin/env bats
# Today's models end to end on random models of their shape (tests/configs) with
# their real tokenizers (shared/data/tokenizers: Llama 3's, and Qwen3's, which
# Qwen2/2.5 share): Llama 3 (grouped-query attention, llama3 rope scaling with
# original_max_position_embeddings 64, so 128-token windows feel it; tied, as Llama
# 3.2), Qwen2 (q/k/v biases) and Qwen3 (q_norm/k_norm, head_dim 16 over a hidden
# size of 32) run discover -> score -> prune -> recovery distilled from the unpruned
# model (Llama 3: LoRA from the live teacher; Qwen2: every weight; Qwen3: LoRA from
# its dumped logits) -> eval (a zero-shot request starts with Llama 3's BOS, with
# none for Qwen) -> GGUF (llama-perplexity gives the perplexity pare-eval
# --ppl-protocol llama.cpp gives) and leave as Hugging Face folders; bad configs are
# refused naming the file and the key.
load helper

# a random model of family $1 (llama3, qwen2, qwen3) in $T/$1, with its tokenizer and
# vocabulary (Llama 3's 128256; Qwen's 151936, its tokenizer's 151669 ids padded);
# prints its fingerprint
family() {
    local tok=qwen3 vocab=151936
    [ "$1" = llama3 ] && tok=llama3 vocab=128256
    pare-mkmodel --config "$ROOT/tests/configs/tiny-$1.json" --tokenizer "$DATA/tokenizers/$tok" --vocab $vocab \
        --seed 11 -o "$T/$1"
}

# "PPL" of pare-eval on the first 8 windows of $T/text.txt, any extra options after the model
ppl() {
    pare-eval -q -m "$@" --ppl "$T/text.txt" --limit 8 --json | jq -r '.metrics[0].value'
}

# recover ROUTE: $T/p.pare, pruned from $m (fingerprint $fp), distilled from $m on
# $T/text.txt into $T/merged.pare by route ROUTE: "lora" (a live teacher, LoRA; the
# adapter $T/a.pare and its merge), "full" (a live teacher, every weight, half the
# loss the cross-entropy) or "logits" (the teacher's top-k dumped once by pare-lora
# --dump-logits, LoRA trained from them). The curve gives KL and CE apart, the
# student moves towards the teacher on the validation window, the teacher is
# recorded by its fingerprint.
recover() {
    local w=1 from=model kd=(--teacher "$m")
    [ "$(pare show "$T/p.pare" | head -1 | jq -r .provenance.base_fingerprint)" = "$fp" ]
    if [ "$1" = logits ]; then
        pare-lora -q --teacher "$m" --data "$T/text.txt" --text --cutoff 32 --top-k 16 --dump-logits -o "$T/l.pare"
        pare show "$T/l.pare" | head -1 | jq -e --arg fp "$fp" '.pare == "logits" and .model.fingerprint == $fp and .top_k == 16'
        kd=(--teacher-logits "$T/l.pare") from=logits
    fi
    local opts=(-m "$T/p.pare" --data "$T/text.txt" --text --cutoff 32 --batch 4 --micro-batch 2 --epochs 1
                --val-size 2 --warmup 0 --lr 2e-3 -t 1 "${kd[@]}")
    if [ "$1" = full ]; then
        w=0.5
        pare-lora "${opts[@]}" --kd-weight $w --full --log-every 1 -o "$T/merged.pare" 2> "$T/err"
        progress_mixes "$T/err" $w
        pare show "$T/merged.pare" | head -1 | jq '.provenance.full.training' > "$T/tr.json"
        # every weight moved: the biases and norms too
        digests() { pare show "$1" | jq -r 'select(.t == "tensor") | .name + " " + .data.xxh64' | sort; }
        [ "$(comm -12 <(digests "$T/p.pare") <(digests "$T/merged.pare") | wc -l)" -eq 0 ]
    else
        pare-lora -q "${opts[@]}" --rank 2 -o "$T/a.pare"
        pare show "$T/a.pare" | head -1 > "$T/h.json"
        jq -e '.targets == ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]' "$T/h.json"
        jq '.training' "$T/h.json" > "$T/tr.json"
        # KL and CE apart at every point of the curve; the student nearer the teacher at its end
        jq -e --argjson w $w '.loss_curve | (.[0] | has("val_kl") and has("val_ce")) and
            ([.[] | select(has("loss")) | has("kl") and has("ce") and (.loss - ($w * .kl + (1 - $w) * .ce) | fabs) < 1e-6 * .loss] | all) and
            .[-1].val_kl < .[0].val_kl' "$T/h.json"
        pare-lora -q "${opts[@]}" --rank 2 --merge -o "$T/merged.pare"
        pare show "$T/merged.pare" | head -1 | jq -e --slurpfile t "$T/tr.json" '.provenance.lora.training == $t[0]'
        a=$(ppl "$T/p.pare" -a "$T/a.pare")
        b=$(ppl "$T/merged.pare")
        echo "$f: pruned + adapter $a, merged $b"
        close "$a" "$b" 1e-4
    fi
    jq -e --arg fp "$fp" --arg from $from --argjson w $w '.loss | .name == "distillation" and .kd_weight == $w and
        .teacher.fingerprint == $fp and .teacher.from == $from' "$T/tr.json"
    jq -e '.best_val_loss < .first_val_loss' "$T/tr.json"
    echo "$f ($1): val loss $(jq -c '[.first_val_loss, .best_val_loss]' "$T/tr.json")"
}

# pipeline FAMILY ARCH ROUTE: every stage on a random model of FAMILY, recovered by
# distillation by ROUTE (recover), the pruned and recovered model as a GGUF of
# llama.cpp's architecture ARCH
pipeline() {
    local f=$1 m="$T/$1" fp
    fp=$(family "$f")
    head -c 2000 "$STORIES" > "$T/text.txt"
    pare-discover -q -m "$m" -o "$T/g.pare"
    pare-score -q -m "$m" --calib "$STORIES" --samples 4 --seq-len 32 --stats element1 -o "$T/s.pare" "$T/g.pare"
    pare-prune -q -m "$m" --ratio 0.5 --criterion element1 -o "$T/p.pare" "$T/s.pare"
    # the pruned checkpoint keeps the family: its model_type, rope scaling and norms
    pare show "$T/p.pare" | head -1 | jq -c '.config' > "$T/p.json"
    jq -e --arg t "$(jq -r .model_type "$ROOT/tests/configs/tiny-$f.json")" '.model_type == $t' "$T/p.json"
    jq -e --argjson r "$(jq -c '.rope_scaling' "$ROOT/tests/configs/tiny-$f.json")" \
        '(.rope_scaling // null) == $r' "$T/p.json"
    # recovery by distillation from the unpruned model (its fingerprint the pruned
    # checkpoint's base), by route $3
    recover "$3"
    # perplexity and a zero-shot task on the recovered model, each request with the
    # model's own BOS rule: Llama 3's <|begin_of_text|> (128000) first, nothing for Qwen
    pare-eval -q -m "$T/merged.pare" --ppl "$T/text.txt" --limit 8 --data-dir "$DATA" --tasks piqa --limit 8 \
        --items --json > "$T/r.json"
    jq -e '[.metrics[] | .task] | index("piqa") != null' "$T/r.json"
    q=$(printf 'Question' | pare tokenize -m "$T/merged.pare")
    if [ "$f" = llama3 ]; then want="[128000,$q]"; else want="[$q]"; fi
    jq -e --argjson w "$want" '[.items[].context_ids[][0:($w | length)]] | unique == [$w]' "$T/r.json"
    # the recovered model leaves as GGUF (its tokenizer as llama.cpp's gpt2), and
    # llama-perplexity gives the perplexity pare-eval --ppl-protocol llama.cpp gives
    head -c 8000 "$STORIES" | tr -d '\r' > "$T/text.txt"
    agrees "$T/merged.pare" f32 "$2"
    # the unpruned model leaves as a Hugging Face folder that computes the same
    pare convert -m "$m" --to hf -o "$T/hf"
    jq -e --arg t "$(jq -r .model_type "$ROOT/tests/configs/tiny-$f.json")" '.model_type == $t' "$T/hf/config.json"
    head -c 2000 "$STORIES" > "$T/text.txt"
    [ "$(ppl "$m")" = "$(ppl "$T/hf")" ]
}

@test "today: Llama 3 (GQA, llama3 rope scaling, tied) discover, score, prune, distil, eval, GGUF, HF out" {
    need_data
    pipeline llama3 llama lora
    # the scaling reaches the output folder and is applied: without it another perplexity
    jq -e '.rope_scaling.rope_type == "llama3" and .rope_scaling.original_max_position_embeddings == 64' \
        "$T/hf/config.json"
    jq 'del(.rope_scaling)' "$T/hf/config.json" > "$T/c.json" && mv "$T/c.json" "$T/hf/config.json"
    [ "$(ppl "$T/llama3")" != "$(ppl "$T/hf")" ]
}

@test "today: Qwen2 (q/k/v biases) discover, score, prune, distil, eval, GGUF, HF out" {
    need_data
    pipeline qwen2 llama full
    pare show "$T/p.pare" | grep -q '"model.layers.1.self_attn.q_proj.bias"'
}

@test "today: Qwen3 (q_norm, k_norm) discover, score, prune, distil, eval, GGUF, HF out" {
    need_data
    pipeline qwen3 qwen3 logits
    # heads go, the norms shared by the heads stay whole (16 = head_dim); a layer
    # group holds them, no head group does
    pare show "$T/p.pare" | jq -se '[.[] | select(.t == "tensor" and .name == "model.layers.1.self_attn.q_norm.weight")] |
        .[0].shape == [16]'
    pare show "$T/g.pare" | jq -se '[.[] | select(.t == "group" and .kind == "attn") | .members[].tensor |
        select(test("_norm"))] == []'
    pare show "$T/g.pare" | jq -se '[.[] | select(.t == "group" and .kind == "layer" and .layer == 0) |
        .members[].tensor] | index("model.layers.0.self_attn.k_norm.weight") != null'
    # the unpruned model as a GGUF teaches as its folder does: Qwen's added tokens
    # that are not special (<|fim_prefix|>, ...), which GGUF can only type control,
    # are the same tokens
    pare convert -m "$T/qwen3" --to gguf -o "$T/t.gguf"
    pare-lora -q -m "$T/p.pare" --teacher "$T/t.gguf" --data "$T/text.txt" --text --cutoff 32 --batch 4 \
        --micro-batch 2 --epochs 1 --val-size 0 -t 1 --rank 2 -o "$T/g.pare"
    pare show "$T/g.pare" | head -1 | jq -e --arg fp "$(pare-discover -q -m "$T/t.gguf" | pare show | head -1 | jq -r .model.fingerprint)" \
        '.training.loss.teacher.fingerprint == $fp'
    # a norm is not a linear map for LoRA
    run pare-lora -m "$T/qwen3" --data "$T/text.txt" --text --targets q_norm -o "$T/x"
    [ "$status" -eq 2 ]
    [[ "$output" == *"q_proj"* ]]
}

@test "today: bad rope_scaling and Qwen keys are refused, naming the file and the key" {
    need_data
    family llama3 >/dev/null
    for v in '{"rope_type": "yarn", "factor": 4.0, "original_max_position_embeddings": 32768}' \
             '{"type": "dynamic", "factor": 2.0}'; do
        jq ".rope_scaling = $v" "$T/llama3/config.json" > "$T/c.json" && cp "$T/c.json" "$T/llama3/config.json"
        run pare-discover -q -m "$T/llama3" -o "$T/g.pare"
        [ "$status" -eq 1 ]
        [[ "$output" == "pare-discover: error: $T/llama3/config.json: \"rope_scaling."*"type\" is \""*"\", which pare does not implement (it reads llama3 and linear)" ]]
    done
    jq '.rope_scaling = {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0}' \
        "$ROOT/tests/configs/tiny-llama3.json" > "$T/c.json"
    run pare-prune -m "$T/c.json" --ratio 0.2 --dry-run /dev/null
    [ "$status" -eq 1 ]
    [[ "$output" == *"c.json: \"rope_scaling\" has no \"original_max_position_embeddings\""* ]]
    jq '.rope_scaling.factor = "8"' "$ROOT/tests/configs/tiny-llama3.json" > "$T/c.json"
    run pare-discover -q -m "$T/c.json" -o "$T/g.pare"
    [[ "$output" == *"c.json: \"rope_scaling.factor\" must be a number"* ]]
    jq '.use_sliding_window = true' "$ROOT/tests/configs/tiny-qwen3.json" > "$T/c.json"
    run pare-discover -q -m "$T/c.json" -o "$T/g.pare"
    [ "$status" -eq 1 ]
    [[ "$output" == *"c.json: use_sliding_window true is not supported"* ]]
    jq '.model_type = "qwen3_moe"' "$ROOT/tests/configs/tiny-qwen3.json" > "$T/c.json"
    run pare-discover -q -m "$T/c.json" -o "$T/g.pare"
    [[ "$output" == *"c.json: unsupported model_type \"qwen3_moe\""* ]]
}
