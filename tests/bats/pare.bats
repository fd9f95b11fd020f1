#!/usr/bin/env bats
# The front end: dispatch, show, convert, tokenize.
load helper

@test "pare: --help lists the verbs and the man page's options" {
    run pare --help
    [ "$status" -eq 0 ]
    [[ "$output" == *"show"* && "$output" == *"convert"* && "$output" == *"tokenize"* ]]
    help_lists_man_options "$output" "$ROOT/man/pare.1"
}

@test "pare: 'pare eval' runs pare-eval" {
    run pare eval --version
    [ "$status" -eq 0 ]
    [[ "$output" == "pare-eval "* ]]
}

@test "pare: unknown verb is a usage error" {
    run pare frobnicate
    [ "$status" -eq 2 ]
    [[ "$output" == *"not a pare verb"* ]]
    run pare
    [ "$status" -eq 2 ]
}

@test "pare convert: refuses to write a stream to a terminal" {
    need_data
    # script(1) gives the command a terminal on stdout
    command -v script >/dev/null || skip "script(1) not installed"
    run script -qec "pare convert -m '$MODEL' --tokenizer '$TOK'" /dev/null
    [[ "$output" == *"terminal"* ]]
}

@test "pare convert + show: every record summarised, end verified" {
    need_data
    pare convert -m "$MODEL" --tokenizer "$TOK" -o "$T/m.pare"
    run pare show "$T/m.pare"
    [ "$status" -eq 0 ]
    [[ "${lines[0]}" == *'"pare":"checkpoint"'* ]]
    [[ "${lines[0]}" == *'"num_key_value_heads":4'* ]]
    [[ "${lines[0]}" == *'"rope_style":"interleaved"'* ]]
    # 2 + 9*5 tensors (tied: no lm_head), one tokenizer, the end line
    n_tensor=$(printf '%s\n' "${lines[@]}" | grep -c '"t":"tensor"')
    [ "$n_tensor" -eq 47 ]
    printf '%s\n' "${lines[@]}" | grep -q '"t":"tokenizer","format":"llama2c"'
    [[ "${lines[-1]}" == *'"t":"end"'* ]]
    printf '%s\n' "${lines[@]}" | grep '"model.norm.weight"' | grep -q '"xxh64"'
}

@test "pare show --data decodes tensor values" {
    need_data
    pare convert -m "$MODEL" --tokenizer "$TOK" -o "$T/m.pare"
    run pare show --data "$T/m.pare"
    [ "$status" -eq 0 ]
    line=$(printf '%s\n' "${lines[@]}" | grep '"name":"model.norm.weight"')
    n=$(echo "$line" | $PY -c 'import json,sys; print(len(json.loads(sys.stdin.read())["data"]))')
    [ "$n" -eq 64 ]
}

@test "pare show: reads stdin, refuses garbage and truncation with exit 1" {
    need_data
    pare convert -m "$MODEL" --tokenizer "$TOK" -o "$T/m.pare"
    pare show < "$T/m.pare" > /dev/null
    head -c 1000 "$T/m.pare" > "$T/t.pare"
    run pare show "$T/t.pare"
    [ "$status" -eq 1 ]
    [[ "$output" == *"truncated"* ]]
    echo "hello" > "$T/g.pare"
    run pare show "$T/g.pare"
    [ "$status" -eq 1 ]
    [[ "$output" == *"not a pare stream"* ]]
}

@test "pare convert: byte-identical output for the same input; fingerprints agree across formats" {
    need_data
    pare convert -m "$MODEL" --tokenizer "$TOK" > "$T/a.pare"
    pare convert -m "$MODEL" --tokenizer "$TOK" > "$T/b.pare"
    cmp "$T/a.pare" "$T/b.pare"
    # a checkpoint converted again keeps the fingerprint
    pare convert -m "$T/a.pare" > "$T/c.pare"
    fa=$(pare show "$T/a.pare" | head -1 | $PY -c 'import json,sys; print(json.load(sys.stdin)["fingerprint"])')
    fc=$(pare show "$T/c.pare" | head -1 | $PY -c 'import json,sys; print(json.load(sys.stdin)["fingerprint"])')
    [ "$fa" = "$fc" ]
}

@test "pare convert: the HF safetensors folders load and convert" {
    need_data
    pare convert -m "$DATA/models/stories260K-hf" -o "$T/hf.pare"
    pare convert -m "$DATA/models/stories260K-hf-bf16-sharded" -o "$T/bf.pare"
    pare show "$T/bf.pare" | grep -q '"model.layers.4.mlp.down_proj.weight"'
}

@test "pare tokenize: ids of a text, with and without BOS" {
    need_data
    run sh -c "printf 'Hello world, the theory of relativity' | pare tokenize --tokenizer '$DATA/tokenizers/llama2/tokenizer.model'"
    [ "$status" -eq 0 ]
    [ "$output" = "15043 3186 29892 278 6368 310 14215 537" ]
    run sh -c "printf 'Hello world, the theory of relativity' | pare tokenize --bos --tokenizer '$DATA/tokenizers/llama2/tokenizer.model'"
    [ "$output" = "1 15043 3186 29892 278 6368 310 14215 537" ]
    pare convert -m "$MODEL" --tokenizer "$TOK" -o "$T/m.pare"
    a=$(printf 'Once upon a time' | pare tokenize -m "$T/m.pare")
    b=$(printf 'Once upon a time' | pare tokenize --tokenizer "$TOK")
    [ "$a" = "$b" ]
    run pare tokenize
    [ "$status" -eq 2 ]
    run pare tokenize --tokenizer "$MODEL"
    [ "$status" -eq 1 ]
}

fingerprint() {
    pare show "$1" | head -1 | jq -r .fingerprint
}

@test "pare convert: PyTorch checkpoints (zip, sharded, legacy) load without executing their pickle" {
    need_data
    pare convert -m "$DATA/models/stories260K-hf" -o "$T/hf.pare"
    pare convert -m "$DATA/models/stories260K-torch" -o "$T/pt.pare"
    [ "$(fingerprint "$T/pt.pare")" = "$(fingerprint "$T/hf.pare")" ]
    pare convert -m "$DATA/models/stories260K-hf-bf16-sharded" -o "$T/hbf.pare"
    pare convert -m "$DATA/models/stories260K-torch-bf16-sharded" -o "$T/pbf.pare"
    [ "$(fingerprint "$T/pbf.pare")" = "$(fingerprint "$T/hbf.pare")" ]
    pare convert -m "$DATA/models/stories260K-torch-legacy" -o "$T/leg.pare"
    pare show "$T/leg.pare" | grep -q '"model.layers.4.mlp.down_proj.weight"'
    # the file alone has no config
    run pare convert -m "$DATA/models/stories260K-torch/pytorch_model.bin"
    [ "$status" -eq 1 ]
    [[ "$output" == *"PyTorch checkpoint alone has no config; give its folder"* ]]
    # a shard missing from the folder
    mkdir "$T/broken"
    cp "$DATA/models/stories260K-torch-bf16-sharded/"{config.json,pytorch_model.bin.index.json,pytorch_model-00001-of-00002.bin} "$T/broken"
    run pare convert -m "$T/broken"
    [ "$status" -eq 1 ]
    [[ "$output" == *"pytorch_model-00002-of-00002.bin"* ]]
}

@test "pare compare: reports side by side, '-' where one lacks a metric, stats rows, refusals" {
    need_data
    head -c 20000 "$WIKI" > "$T/wiki.txt"
    head -c 20000 "$PTB" > "$T/ptb.txt"
    pare-eval -q -m "$MODEL" --tokenizer "$TOK" --ppl "$T/wiki.txt" --ppl "$T/ptb.txt" -o "$T/a.pare"
    pare-eval -q -m "$MODEL" --tokenizer "$TOK" --ppl "$T/wiki.txt" --stats -o "$T/b.pare"
    run pare compare -n dense "$T/a.pare" "$T/b.pare"
    [ "$status" -eq 0 ] || { echo "$output"; false; }
    echo "$output"
    [[ "${lines[0]}" =~ ^\ +dense\ +b\.pare$ ]]
    # the same model and text: the same perplexity in both columns, as pare show reads it
    ppl=$(pare show "$T/a.pare" | jq -r 'select(.t == "metric" and .task == "wikitext2") | .value')
    want=$(printf '%.2f' "$ppl")
    [[ "${lines[1]}" =~ ^wikitext2\ ppl\ +$want\ +$want$ ]]
    [[ "${lines[2]}" =~ ^ptb\ ppl\ +[0-9.]+\ +-$ ]]
    [[ "$output" == *$'\nparams (M) '*' -  '*'0.260'* ]]
    run pare compare -n a -n b -n c "$T/a.pare" "$T/b.pare"
    [ "$status" -eq 2 ] && [[ "$output" == *"3 names for 2 reports"* ]]
    run pare compare
    [ "$status" -eq 2 ]
    pare convert -m "$MODEL" --tokenizer "$TOK" -o "$T/m.pare"
    run pare compare "$T/a.pare" "$T/m.pare"
    [ "$status" -eq 1 ] && [[ "$output" == *"expected a report stream, got a checkpoint stream"* ]]
}
