#!/usr/bin/env bats
# Every input the fuzzers of tests/fuzz found a crash, hang or sanitizer report
# with (tests/fuzz/crashes/, named FORMAT-what) goes through the real program that
# reads that format: exit 1, exactly one line on stderr ("PROG: error: ..."), no
# signal (under make check-asan: no sanitizer report, which would add lines).
load helper

CRASHES="$ROOT/tests/fuzz/crashes"

# replay FILE: run the program for FILE's format; sets status and err (stderr)
replay() {
    local f="$1" name
    name=$(basename "$f")
    case "$name" in
    stream-*) cmd=(pare show "$f") ;;
    show-data-*) cmd=(pare show --data "$f") ;;
    checkpoint-*) cmd=(pare convert -m "$f" -o "$T/out.pare") ;;
    groups-* | scores-*) cmd=(pare-prune -m "$MODEL" --ratio 0.1 --dry-run "$f") ;;
    partial-*) cmd=(pare-score --merge "$f" -o "$T/out.pare") ;;
    report-*) cmd=(pare-eval --merge "$f" "$f") ;;
    safetensors-*)
        mkdir -p "$T/hf" && cp "$S260/../stories260K-hf/config.json" "$T/hf/" && cp "$f" "$T/hf/model.safetensors"
        cmd=(pare convert -m "$T/hf" -o "$T/out.pare") ;;
    config-*) cp "$f" "$T/config.json" && cmd=(pare-discover -m "$T/config.json" -o "$T/out.pare") ;;
    index-*)
        mkdir -p "$T/hf" && cp "$S260/../stories260K-hf/config.json" "$T/hf/" &&
            cp "$f" "$T/hf/model.safetensors.index.json"
        cmd=(pare convert -m "$T/hf" -o "$T/out.pare") ;;
    llama2c-*) cmd=(pare convert -m "$f" -o "$T/out.pare") ;;
    gguf-*) cp "$f" "$T/m.gguf" && cmd=(pare convert -m "$T/m.gguf" -o "$T/out.pare") ;;
    pytorch-*)
        mkdir -p "$T/pt" && cp "$S260/../stories260K-torch/config.json" "$T/pt/" && cp "$f" "$T/pt/pytorch_model.bin"
        cmd=(pare convert -m "$T/pt" -o "$T/out.pare") ;;
    tokenizer-*) cmd=(pare tokenize --tokenizer "$f" "$S260/../../eval/ptb/ptb.valid.txt") ;;
    hf_tokenizer-*) cmd=(pare tokenize --tokenizer "$f" "$S260/../../eval/ptb/ptb.valid.txt") ;;
    tasks-*)
        local task="${name#tasks-}"
        task="${task%%-*}"
        cmd=(pare-eval -m "$MODEL" --tokenizer "$TOK" --task-file "$task=$f" --limit 2) ;;
    calib-*)
        pare-discover -q -m "$MODEL" -o "$T/g.pare"
        cmd=(pare-score -m "$MODEL" --tokenizer "$TOK" --calib "$f" --samples 2 --seq-len 8 -o "$T/out.pare" "$T/g.pare") ;;
    state-*)
        # made by pare-lora on this model and text with these options, then changed and re-sealed
        # (build/tests/pare-reseal), so that its identity matches and the resume reads it whole
        mkdir -p "$T/state" && cp "$f" "$T/state/state.pare" &&
            head -c 4000 "$DATA/text/tinystories/tinystories_train_sample.txt" > "$T/text.txt"
        cmd=(pare-lora -q -m "$MODEL" --tokenizer "$TOK" --data "$T/text.txt" --text --cutoff 16 --batch 4 --micro-batch 2
             --warmup 1 --epochs 1 --rank 2 --targets q_proj -t 1 --state "$T/state" -o "$T/out.pare") ;;
    instruct-*) cmd=(pare-lora -m "$MODEL" --tokenizer "$TOK" --data "$f" --cutoff 32 --epochs 1 -o "$T/out.pare") ;;
    *) echo "no program for $name"; return 1 ;;
    esac
    status=0
    timeout 60 "${cmd[@]}" > /dev/null 2> "$T/err" || status=$?
    err=$(cat "$T/err")
}

@test "fuzz: every crash input is refused with one line and exit 1 (a valid one, *-accepted, runs)" {
    need_data
    local f n=0 lines
    for f in "$CRASHES"/*; do
        replay "$f" || return 1
        lines=$(wc -l < "$T/err")
        if [[ "$f" == *-accepted ]]; then # a valid input that made a sanitizer report: it must work
            [ "$status" -eq 0 ] && [ "$lines" -eq 0 ] && { n=$((n + 1)); continue; }
            echo "$(basename "$f"): ${cmd[*]}: exit $status:"
            head -20 "$T/err"
            return 1
        fi
        if [ "$status" -ne 1 ] || [ "$lines" -ne 1 ] || ! [[ "$err" =~ ^pare(-[a-z]+)?(\ [a-z]+)?:\ error:\  ]]; then
            echo "$(basename "$f"): ${cmd[*]}: exit $status, $lines lines on stderr:"
            head -20 "$T/err"
            return 1
        fi
        n=$((n + 1))
    done
    [ "$n" -gt 0 ]
}

@test "fuzz: the 18-byte stream whose kind is not UTF-8 (issue 13)" {
    printf '\x82\xa4pare\xa2\xff\xff\xa7version\x01' > "$T/s"
    run pare show "$T/s"
    [ "$status" -eq 1 ]
    [[ "$output" == "pare show: error: "* ]]
    [ "${#lines[@]}" -eq 1 ]
}
