#!/usr/bin/env bats
# ChatGLM-6B and ChatGLM2 end to end on tiny random models: discover -> score ->
# prune -> lora -> eval, the checkpoint's config keys, and GGUF refused. The
# models use the tok512 tokenizer (Llama-style SentencePiece, 512 pieces) with a
# vocabulary of 512: ChatGLM's own tokenizer is another matter (issue 12, part 3).
load helper

mk() {
    pare-mkmodel --model-type "$1" --dim 16 --layers 3 --heads 4 --kv-heads 2 --ffn 24 --vocab 512 --head-dim 4 \
        --qkv-bias --tokenizer "$TOK" -o "$T/$1" >/dev/null
}

pipeline() {
    need_data
    mk "$1"
    head -c 12000 "$STORIES" > "$T/t.txt"
    pare-discover -q -m "$T/$1" -o "$T/g.pare"
    pare-score -q -m "$T/$1" --calib "$T/t.txt" -o "$T/s.pare" "$T/g.pare"
    pare-prune -q -m "$T/$1" --ratio 0.5 --layers 0-2 -o "$T/p.pare" "$T/s.pare"
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
}

@test "chatglm: ChatGLM-6B discover | score | prune | lora | eval on a tiny random model" {
    pipeline chatglm
    # 4 heads of 4: 2 go in each layer at 0.5 (12 of 24 MLP channels)
    pare show "$T/p.pare" | head -1 | jq -e '.config.num_attention_heads == 2 and .config.inner_hidden_size == 12'
}

@test "chatglm: ChatGLM2 discover | score | prune | lora | eval on a tiny random model" {
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
