#!/usr/bin/env bats
# pare-lora: the adapter stream, determinism, kill -9 and resume byte for byte,
# SIGTERM, refused states, NaN, merged = base + adapter through pare-eval -a,
# Alpaca file forms, the validation split, errors.
load helper

small() {
    pare-mkmodel --dim 16 --layers 2 --heads 4 --kv-heads 2 --ffn 24 --vocab 512 --head-dim 4 "$@"
}

# a short run on the small model and 12 kB of TinyStories (162 + 17 windows of 32);
# run in the background as "pare-lora ${args[@]}" so that $! is pare-lora itself
lora_args() {
    args=(-q -m "$T/m" --tokenizer "$TOK" --data "$T/t.txt" --text --cutoff 32 --batch 8 --micro-batch 2
          --warmup 3 --lr 1e-3 --eval-every 5 -t 1 "$@")
}
lora() {
    lora_args "$@"
    pare-lora "${args[@]}"
}

setup_small() {
    small --seed 3 -o "$T/m" >/dev/null
    head -c 12000 "$STORIES" > "$T/t.txt"
}

@test "lora: --help lists the options of the man page" {
    run pare-lora --help
    [ "$status" -eq 0 ]
    help_lists_man_options "$output" "$ROOT/man/pare-lora.1"
}

@test "lora: the adapter stream: header, summary, loss curve, one A and B per adapted map" {
    need_data
    setup_small
    lora --epochs 1 --log-every 4 -o "$T/a.pare"
    pare show "$T/a.pare" > "$T/a.jsonl"
    fp=$(pare-mkmodel --dim 16 --layers 2 --heads 4 --kv-heads 2 --ffn 24 --vocab 512 --head-dim 4 --seed 3 -o "$T/m2")
    $PY - "$T/a.jsonl" "$fp" <<'PY'
import json, sys
lines = [json.loads(l) for l in open(sys.argv[1])]
h = lines[0]
assert h["pare"] == "adapter" and h["model"]["fingerprint"] == sys.argv[2], h["model"]
assert h["rank"] == 8 and h["alpha"] == 16.0 and h["dropout"] == 0.05, h
assert h["targets"] == ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
t = h["training"]
d = t["data"]
assert d["mode"] == "text" and d["samples"] == 179 and d["train"] == 162 and d["val"] == 17, d
assert t["steps"] == 21 and t["steps_per_epoch"] == 21 and t["batch"] == 8 and t["micro_batch"] == 2, t
assert t["optimizer"] == {"name": "adamw", "beta1": 0.9, "beta2": 0.999, "eps": 1e-8, "weight_decay": 0.0}
assert t["selected"] == "best" and 1 <= t["best_step"] <= 21 and t["tokens"] == 162 * 32, t
assert t["best_val_loss"] < t["first_val_loss"], t
curve = h["loss_curve"]
assert curve[0] == {"step": 0, "epoch": 0.0, "val_loss": t["first_val_loss"]}, curve[0]
assert [p["step"] for p in curve] == [0, 4, 5, 8, 10, 12, 15, 16, 20, 21], curve
assert all("val_loss" in p for p in curve if p["step"] in (5, 10, 15, 20, 21))
assert curve[-1]["lr"] > 0 and curve[-1]["loss"] < curve[1]["loss"], curve
recs = [r for r in lines[1:] if r["t"] == "tensor"]
assert len(recs) == 2 * 7 * 2, len(recs)
cfg = h["model"]["config"]
D, F = cfg["hidden_size"], cfg["intermediate_size"]
shape = {"q_proj": (16, 16), "k_proj": (8, 16), "v_proj": (8, 16), "o_proj": (16, 16),
         "gate_proj": (F, D), "up_proj": (F, D), "down_proj": (D, F)}
for r in recs:
    name = r["name"]
    base, which = name.rsplit(".", 1)
    out, inp = shape[base.split(".")[-2]]
    assert r["dtype"] == "f32" and r["shape"] == ([8, inp] if which == "lora_A" else [out, 8]), r
PY
}

# kill9_resumes MS: runs "pare-lora ${args[@]}" (writing $T/out.pare, its state in
# $T/st) in the background and kills it with SIGKILL at random moments within MS
# (an uninterrupted run's milliseconds), again and again, until a kill has come
# and a run finishes (or four kills); the output must be $T/ref.pare byte for byte.
kill9_resumes() {
    local ms=$1 kills=0 i pid status
    rm -rf "$T/st" "$T/out.pare"
    for i in $(seq 1 25); do
        pare-lora "${args[@]}" 2>/dev/null &
        pid=$!
        sleep "$(awk -v r=$RANDOM -v ms=$ms 'BEGIN { printf "%.3f", (0.1 + 0.8 * r / 32768) * ms / 1000 }')"
        kill -9 $pid 2>/dev/null || true
        status=0
        wait $pid || status=$?
        [ $status -eq 137 ] && kills=$((kills + 1))
        if [ -f "$T/out.pare" ] && [ $kills -eq 0 ]; then
            rm -rf "$T/st" "$T/out.pare"   # finished before the first kill: start again
            continue
        fi
        [ -f "$T/out.pare" ] && break
        [ $kills -ge 4 ] && break
    done
    echo "uninterrupted ${ms} ms, $kills kills"
    [ $kills -ge 1 ]
    [ -f "$T/out.pare" ] || pare-lora "${args[@]}" 2>/dev/null
    cmp "$T/ref.pare" "$T/out.pare"
    ! ls -A "$T/st" | grep -q tmp   # no temporary file left behind
}

# the same run twice gives the same bytes; then killed and resumed, them too
same_after_kills() {
    rm -rf "$T/st"
    lora_args "$@" --save-every 1 --state "$T/st" -o "$T/out.pare"
    start=$(date +%s%N)
    pare-lora "${args[@]}"
    ms=$(( ($(date +%s%N) - start) / 1000000 ))
    mv "$T/out.pare" "$T/ref.pare"
    rm -rf "$T/st"
    pare-lora "${args[@]}"
    cmp "$T/ref.pare" "$T/out.pare"
    kill9_resumes $ms
}

@test "lora: the same command gives the same bytes; kill -9 at random moments and resume gives them too" {
    need_data
    setup_small
    same_after_kills --epochs 2
}

@test "lora: SIGTERM saves the state and exits 1; the same command continues to the same adapter" {
    need_data
    setup_small
    # --progress, a line per step: sigterm_resumes signals after the first
    lora_args --epochs 3 --save-every 100 --state "$T/st" -o "$T/out.pare" --progress
    args=("${args[@]:1}")
    [ "${args[0]}" = -m ]
    pare-lora "${args[@]}" 2>/dev/null
    mv "$T/out.pare" "$T/ref.pare"
    rm -rf "$T/st"
    sigterm_resumes 3 pare-lora "${args[@]}"
    [ -f "$T/out.pare" ] || pare-lora "${args[@]}" 2>/dev/null
    cmp "$T/ref.pare" "$T/out.pare"
    # a finished state writes the output again at once
    rm "$T/out.pare"
    run pare-lora -m "$T/m" --tokenizer "$TOK" --data "$T/t.txt" --text --cutoff 32 --batch 8 --micro-batch 2 \
        --warmup 3 --lr 1e-3 --eval-every 5 -t 1 --epochs 3 --save-every 100 --state "$T/st" -o "$T/out.pare"
    [ "$status" -eq 0 ]
    [[ "$output" == *"resuming from '$T/st': step 63 of 63 (finished)"* ]]
    # the same adapter (the argv differs: no --progress)
    cmp <(pare show "$T/ref.pare" | jq -c 'del(.argv)') <(pare show "$T/out.pare" | jq -c 'del(.argv)')
}

@test "lora: a state made with other options, data or model is refused" {
    need_data
    setup_small
    lora --epochs 1 --state "$T/st" -o "$T/a.pare"
    run lora --epochs 1 --state "$T/st" --lr 2e-3 -o "$T/b.pare"
    [ "$status" -eq 1 ]
    [[ "$output" == *"$T/st: the state there was made with other options or inputs: --lr was 0.001, this run has 0.002"* ]]
    run lora --epochs 2 --state "$T/st" -o "$T/b.pare"
    [[ "$output" == *"--epochs was 1, this run has 2"* ]]
    head -c 11000 "$STORIES" > "$T/t.txt"
    run lora --epochs 1 --state "$T/st" -o "$T/b.pare"
    [ "$status" -eq 1 ]
    [[ "$output" == *"the data (token digest) was"* || "$output" == *"training samples was"* ]]
    head -c 12000 "$STORIES" > "$T/t.txt"
    small --seed 4 -o "$T/m" >/dev/null
    run lora --epochs 1 --state "$T/st" -o "$T/b.pare"
    [ "$status" -eq 1 ]
    [[ "$output" == *"the model (fingerprint) was"* ]]
    [ ! -e "$T/b.pare" ]
    # options that do not change the result may differ
    small --seed 3 -o "$T/m" >/dev/null
    lora --epochs 1 --state "$T/st" --save-every 7 -t 2 -o "$T/b.pare"
    cmp <(pare show "$T/a.pare" | tail -n +2) <(pare show "$T/b.pare" | tail -n +2)
}

@test "lora: a loss that is not finite stops the run and keeps the state of the step's start" {
    need_data
    setup_small
    run lora --epochs 1 --warmup 0 --lr 1e9 --max-grad-norm 0 --state "$T/st" -o "$T/a.pare"
    [ "$status" -eq 1 ]
    [[ "$output" == *"pare-lora: error: step "*" of 21, micro-batch "*": the loss is nan; stopped (the state of the start of this step is in '$T/st')"* ]]
    [ ! -e "$T/a.pare" ]
    pare show "$T/st/state.pare" | head -1 | jq -e '.micro == 0 and .step >= 1 and .done == false'
}

@test "lora: --merge equals base + adapter (pare-eval -a), and recovery lowers a pruned model's perplexity" {
    need_data
    pare-discover -q -m "$MODEL" | pare-score -q -m "$MODEL" --tokenizer "$TOK" --calib "$STORIES" --samples 4 |
        pare-prune -q -m "$MODEL" --tokenizer "$TOK" --criterion element1 --ratio 0.5 --layers 1-3 -o "$T/p.pare"
    head -n 399 "$STORIES" > "$T/train.txt"
    tail -n +1992 "$STORIES" | head -c 8000 > "$T/held.txt"
    opts=(-m "$T/p.pare" --data "$T/train.txt" --text --cutoff 64 --batch 8 --micro-batch 4 --epochs 1 --warmup 2
          --lr 2e-3 --eval-every 10 --val-size 40 -t 1)
    pare-lora -q "${opts[@]}" -o "$T/a.pare"
    pare-lora -q "${opts[@]}" --merge -o "$T/merged.pare"
    pare show "$T/merged.pare" | head -1 | jq -e '.provenance.lora.rank == 8 and .provenance.base_fingerprint != null'
    ppl() { pare-eval -q "$@" --ppl "$T/held.txt" --seq-len 64 --json | jq '.metrics[0].value'; }
    before=$(ppl -m "$T/p.pare")
    with=$(ppl -m "$T/p.pare" -a "$T/a.pare")
    merged=$(ppl -m "$T/merged.pare")
    echo "held-out ppl: pruned $before, + adapter $with, merged $merged"
    close "$with" "$merged" 1e-5
    awk -v a="$with" -v b="$before" 'BEGIN { exit !(a < 0.9 * b) }'
    # the adapter belongs to its base model
    run pare-eval -m "$MODEL" --tokenizer "$TOK" -a "$T/a.pare" --ppl "$T/held.txt"
    [ "$status" -eq 1 ]
    [[ "$output" == *"the adapter was made for model"* ]]
}

@test "lora: --merge keeps a bf16 base's dtype; --dtype f32 merges to fp32, which rounds to the same model" {
    need_data
    small --seed 3 --dtype bf16 -o "$T/m" >/dev/null
    head -c 12000 "$STORIES" > "$T/t.txt"
    lora --epochs 1 --merge -o "$T/b.pare"
    lora --epochs 1 --merge --dtype f32 -o "$T/f.pare"
    dtypes() { pare show "$1" | jq -rs '[.[] | select(.t == "tensor") | .dtype] | unique | join(",")'; }
    [ "$(dtypes "$T/b.pare")" = bf16 ]
    [ "$(dtypes "$T/f.pare")" = f32 ]
    fp() { pare show "$1" | head -1 | jq -r .fingerprint; }
    [ "$(fp "$T/b.pare")" != "$(fp "$T/f.pare")" ]   # the fp32 merge keeps what bf16 rounds away
    pare convert -m "$T/f.pare" --dtype bf16 -o "$T/fb.pare"
    [ "$(fp "$T/fb.pare")" = "$(fp "$T/b.pare")" ]
    run pare-lora -m "$T/m" --data "$T/t.txt" --text --dtype f32 -o "$T/x.pare"
    [ "$status" -eq 2 ]
    [[ "$output" == *"--dtype is for --merge"* ]]
    run pare-lora -m "$T/m" --data "$T/t.txt" --text --merge --dtype f64 -o "$T/x.pare"
    [ "$status" -eq 2 ]
}

@test "lora: Alpaca as a JSON array, JSON lines and gzip give the same adapter; prompts are masked" {
    need_data
    small --seed 5 -o "$T/m" >/dev/null
    $PY - "$DATA/calib/alpaca/alpaca_small_2000.json" "$T" <<'PY'
import json, sys
recs = json.load(open(sys.argv[1]))[:60]
d = sys.argv[2]
json.dump(recs, open(d + "/a.json", "w"), indent=1)
with open(d + "/a.jsonl", "w") as f:
    for r in recs:
        f.write(json.dumps(r) + "\n")
PY
    gzip -c "$T/a.jsonl" > "$T/a.jsonl.gz"
    for f in a.json a.jsonl a.jsonl.gz; do
        pare-lora -q -m "$T/m" --tokenizer "$TOK" --data "$T/$f" --batch 8 --epochs 1 --warmup 1 -t 1 \
            -o "$T/$f.pare"
        pare show "$T/$f.pare" > "$T/$f.jsonl"
    done
    for f in a.jsonl a.jsonl.gz; do
        cmp <(tail -n +2 "$T/a.json.jsonl") <(tail -n +2 "$T/$f.jsonl")
        [ "$(head -1 "$T/a.json.jsonl" | jq -c '.training.data | del(.source)')" = "$(head -1 "$T/$f.jsonl" | jq -c '.training.data | del(.source)')" ]
    done
    head -1 "$T/a.json.jsonl" | jq -e '.training.data | .mode == "alpaca" and .records == 60 and .samples + .skipped == 60 and .val == ((.samples / 10) | floor)'
    # training on the inputs scores more tokens
    pare-lora -q -m "$T/m" --tokenizer "$TOK" --data "$T/a.json" --batch 8 --epochs 1 --warmup 1 -t 1 \
        --train-on-inputs -o "$T/i.pare"
    a=$(pare show "$T/a.json.pare" | head -1 | jq .training.data.scored)
    b=$(pare show "$T/i.pare" | head -1 | jq .training.data.scored)
    [ "$b" -gt "$a" ]
}

@test "lora: validation is a tenth of a small data set at most; none gives the last adapter" {
    need_data
    setup_small
    run lora --epochs 1 --val-size 5 -o "$T/a.pare"
    [ "$status" -eq 0 ]
    pare show "$T/a.pare" | head -1 | jq -e '.training.data.val == 5 and .training.data.train == 174'
    lora --epochs 1 --val-size 0 --targets q,v --rank 2 --alpha 4 -o "$T/b.pare"
    pare show "$T/b.pare" | head -1 | jq -e '.training.selected == "last" and (.training | has("best_step") | not)'
    pare show "$T/b.pare" | head -1 | jq -e '.targets == ["q_proj", "v_proj"] and .rank == 2 and .alpha == 4'
    [ "$(pare show "$T/b.pare" | grep -c '"t":"tensor"')" -eq 8 ]
}

@test "lora: errors" {
    need_data
    setup_small
    run pare-lora -m "$T/m" --tokenizer "$TOK"
    [ "$status" -eq 2 ]
    [[ "$output" == *"--data"* ]]
    run pare-lora -m "$T/m" --tokenizer "$TOK" --data "$T/t.txt" --text --targets q,lm_head -o "$T/x"
    [ "$status" -eq 2 ]
    run pare-lora -m "$T/m" --tokenizer "$TOK" --data "$T/t.txt" --text --batch 10 --micro-batch 4 -o "$T/x"
    [ "$status" -eq 2 ]
    [[ "$output" == *"not a multiple of --micro-batch"* ]]
    run pare-lora -m "$T/m" --tokenizer "$TOK" --data "$T/t.txt" --text --dropout 1 -o "$T/x"
    [ "$status" -eq 2 ]
    run pare-lora -m "$T/m" --tokenizer "$TOK" --data "$T/nope.txt" --text -o "$T/x"
    [ "$status" -eq 1 ]
    [[ "$output" == *"cannot read '$T/nope.txt'"* ]]
    run pare-lora -m "$T/m" --tokenizer "$TOK" --data "$T/t.txt" -o "$T/x"
    [ "$status" -eq 1 ]
    [[ "$output" == *"not Alpaca JSON"*"use --text"* ]]
    printf '[{"instruction": "a", "output": "b"}, {"instruction": "c"}]' > "$T/bad.json"
    run pare-lora -m "$T/m" --tokenizer "$TOK" --data "$T/bad.json" -o "$T/x"
    [ "$status" -eq 1 ]
    [[ "$output" == *"$T/bad.json: record 2: no \"instruction\" and \"output\" strings"* ]]
    printf 'Once upon a time.' > "$T/short.txt"
    run pare-lora -m "$T/m" --tokenizer "$TOK" --data "$T/short.txt" --text -o "$T/x"
    [ "$status" -eq 1 ]
    [[ "$output" == *"fewer than one window of 256"* ]]
    run pare-lora -m "$T/m" --data "$T/t.txt" --text -o "$T/x"
    [ "$status" -eq 1 ]
    [[ "$output" == *"no tokenizer"* ]]
    [ ! -e "$T/x" ]
    # a truncated adapter is refused
    lora --epochs 1 -o "$T/a.pare"
    head -c 3000 "$T/a.pare" > "$T/cut.pare"
    run pare-eval -m "$T/m" --tokenizer "$TOK" -a "$T/cut.pare" --ppl "$T/t.txt"
    [ "$status" -eq 1 ]
    [[ "$output" == *"truncated"* ]]
}

# ---- distillation and every weight ----

setup_teacher() {
    setup_small
    small --seed 9 -o "$T/teach" >/dev/null
}

@test "lora: distillation from a live teacher: the loss named, KL and CE apart in the curve; --kd-weight mixes them" {
    need_data
    setup_teacher
    lora --epochs 1 --log-every 4 --teacher "$T/teach" -o "$T/a.pare"
    lora --epochs 1 --log-every 4 --teacher "$T/teach" --kd-weight 0.25 --kd-temp 2 -o "$T/b.pare"
    lora --epochs 1 --log-every 4 -o "$T/c.pare"
    fp=$(pare-mkmodel --dim 16 --layers 2 --heads 4 --kv-heads 2 --ffn 24 --vocab 512 --head-dim 4 --seed 9 -o "$T/t2")
    for f in a b c; do pare show "$T/$f.pare" | head -1 > "$T/$f.json"; done
    $PY - "$T" "$fp" <<'PY'
import json, sys
d, fp = sys.argv[1], sys.argv[2]
a, b, c = (json.load(open(d + "/%s.json" % f)) for f in "abc")
la, lb, lc = (x["training"]["loss"] for x in (a, b, c))
assert la == {"name": "distillation", "kd_weight": 1.0, "kd_temp": 1.0,
              "teacher": {"fingerprint": fp, "from": "model"}}, la
assert lb["kd_weight"] == 0.25 and lb["kd_temp"] == 2.0, lb
assert lc == {"name": "cross-entropy", "kd_weight": 0.0, "kd_temp": 1.0}, lc
assert a["training"]["trained"] == "lora"
for x, w in ((a, 1.0), (b, 0.25)):
    curve = x["loss_curve"]
    assert set(curve[0]) == {"step", "epoch", "val_loss", "val_kl", "val_ce"}, curve[0]
    for p in curve:
        if "loss" in p:
            assert abs(p["loss"] - (w * p["kl"] + (1 - w) * p["ce"])) < 1e-7 * p["loss"], p
        if "val_loss" in p:
            assert abs(p["val_loss"] - (w * p["val_kl"] + (1 - w) * p["val_ce"])) < 1e-7 * p["val_loss"], p
    assert x["training"]["best_val_loss"] < x["training"]["first_val_loss"], x["training"]
    assert curve[-1]["val_kl"] < curve[0]["val_kl"], curve   # the student moves towards the teacher
assert all("kl" not in p and "val_kl" not in p for p in c["loss_curve"])
PY
}

@test "lora: --dump-logits writes the teacher's top-k; --teacher-logits trains from them as the live teacher does" {
    need_data
    setup_teacher
    pare-lora -q --teacher "$T/teach" --tokenizer "$TOK" --data "$T/t.txt" --text --cutoff 32 --dump-logits \
        --top-k 511 -o "$T/l511.pare"
    pare-lora -q --teacher "$T/teach" --tokenizer "$TOK" --data "$T/t.txt" --text --cutoff 32 --dump-logits \
        -o "$T/l64.pare"
    pare show "$T/l64.pare" > "$T/l64.jsonl"
    head -1 "$T/l64.jsonl" | jq -e '.pare == "logits" and .top_k == 64 and .temperature == 1 and
        .data.samples == 179 and .positions == .data.scored and .model.config.vocab_size == 512'
    [ "$(grep -c '"t":"logits"' "$T/l64.jsonl")" -eq 179 ]
    [ "$(sed -n 2p "$T/l64.jsonl" | jq '.data.bytes')" -eq $((31 * 129 * 4)) ]
    lora --epochs 1 --teacher "$T/teach" -o "$T/live.pare"
    lora --epochs 1 --teacher-logits "$T/l511.pare" -o "$T/f511.pare"
    lora --epochs 1 --teacher-logits "$T/l64.pare" -o "$T/f64.pare"
    v() { pare show "$1" | head -1 | jq .training.best_val_loss; }
    echo "best val: live $(v "$T/live.pare"), top-511 $(v "$T/f511.pare"), top-64 $(v "$T/f64.pare")"
    close "$(v "$T/f511.pare")" "$(v "$T/live.pare")" 1e-4     # k = V - 1: one token in the rest, the same KL
    pare show "$T/f64.pare" | head -1 | jq -e '.training.loss.teacher.from == "logits" and .training.loss.teacher.top_k == 64'
    # the adapter merges as any other: merged = base + adapter
    lora --epochs 1 --teacher-logits "$T/l64.pare" --merge -o "$T/m64.pare"
    ppl() { pare-eval -q "$@" --ppl "$T/t.txt" --seq-len 32 --limit 20 --json | jq '.metrics[0].value'; }
    close "$(ppl -m "$T/m" --tokenizer "$TOK" -a "$T/f64.pare")" "$(ppl -m "$T/m64.pare")" 1e-5
    # read from a pipe: the same adapter
    cat "$T/l64.pare" | pare-lora -q -m "$T/m" --tokenizer "$TOK" --data "$T/t.txt" --text --cutoff 32 --batch 8 \
        --micro-batch 2 --warmup 3 --lr 1e-3 --eval-every 5 -t 1 --epochs 1 --teacher-logits - -o "$T/p64.pare"
    cmp <(pare show "$T/f64.pare" | tail -n +2) <(pare show "$T/p64.pare" | tail -n +2)
}

@test "lora: kill -9 and resume with a teacher, live or from logits, and with --full, give the same bytes" {
    need_data
    setup_teacher
    same_after_kills --epochs 2 --teacher "$T/teach" --kd-weight 0.5 --kd-temp 2
    pare-lora -q --teacher "$T/teach" --tokenizer "$TOK" --data "$T/t.txt" --text --cutoff 32 --dump-logits \
        --kd-temp 2 -o "$T/l.pare"
    same_after_kills --epochs 2 --teacher-logits "$T/l.pare" --kd-temp 2
    same_after_kills --epochs 2 --full --lr 1e-4 --teacher-logits "$T/l.pare" --kd-temp 2
}

@test "lora: --full trains every weight and writes the checkpoint, in the base's dtype, its provenance naming the base" {
    need_data
    fp=$(small --seed 3 --dtype bf16 -o "$T/m")
    head -c 12000 "$STORIES" > "$T/t.txt"
    lora --epochs 1 --full --lr 5e-4 -o "$T/f.pare"
    lora --epochs 1 --full --lr 5e-4 --dtype f32 -o "$T/f32.pare"
    pare show "$T/f.pare" | head -1 > "$T/h.json"
    jq -e --arg fp "$fp" '.pare == "checkpoint" and .provenance.base_fingerprint == $fp and
        .provenance.full.training.trained == "full" and .provenance.full.training.loss.name == "cross-entropy"' "$T/h.json"
    jq -e '.provenance.full.training.best_val_loss < .provenance.full.training.first_val_loss' "$T/h.json"
    dtypes() { pare show "$1" | jq -rs '[.[] | select(.t == "tensor") | .dtype] | unique | join(",")'; }
    [ "$(dtypes "$T/f.pare")" = bf16,f32 ] || [ "$(dtypes "$T/f.pare")" = bf16 ]
    [ "$(dtypes "$T/f32.pare")" = f32 ]
    # every tensor moved (norms and embedding too), and the file's fingerprint is its values'
    pare convert -m "$T/m" --dtype f32 -o "$T/base.pare"
    digests() { pare show "$1" | jq -r 'select(.t == "tensor") | .name + " " + .data.xxh64' | sort; }
    [ "$(digests "$T/base.pare" | wc -l)" -eq "$(digests "$T/f32.pare" | wc -l)" ]
    [ "$(comm -12 <(digests "$T/base.pare") <(digests "$T/f32.pare") | wc -l)" -eq 0 ]
    pare convert -m "$T/f.pare" -o "$T/f2.pare"
    [ "$(pare show "$T/f2.pare" | head -1 | jq -r .fingerprint)" = "$(jq -r .fingerprint "$T/h.json")" ]
    ppl() { pare-eval -q "$@" --ppl "$T/t.txt" --seq-len 32 --limit 20 --json | jq '.metrics[0].value'; }
    before=$(ppl -m "$T/m" --tokenizer "$TOK")
    after=$(ppl -m "$T/f32.pare")
    echo "ppl of the training text: before $before, after --full $after"
    awk -v a="$after" -v b="$before" 'BEGIN { exit !(a < b) }'
}

@test "lora: a teacher of another vocabulary, logits made for other data or temperature, a state of another teacher are refused" {
    need_data
    setup_teacher
    pare-mkmodel --dim 16 --layers 2 --heads 4 --kv-heads 2 --ffn 24 --vocab 600 --head-dim 4 --seed 9 -o "$T/t600" >/dev/null
    run lora --epochs 1 --teacher "$T/t600" -o "$T/x.pare"
    [ "$status" -eq 1 ]
    [[ "$output" == *"$T/t600: the teacher's vocabulary has 600 tokens, the model's 512: a teacher must share the model's vocabulary"* ]]
    pare-lora -q --teacher "$T/teach" --tokenizer "$TOK" --data "$T/t.txt" --text --cutoff 32 --dump-logits -o "$T/l.pare"
    run pare-lora -m "$T/m" --tokenizer "$TOK" --data "$T/t.txt" --text --cutoff 40 --teacher-logits "$T/l.pare" -o "$T/x.pare"
    [ "$status" -eq 1 ]
    [[ "$output" == *"$T/l.pare: made for other data: 179 samples"*"this run's data"*"has 143 samples"* ]]
    run lora --epochs 1 --teacher-logits "$T/l.pare" --kd-temp 2 -o "$T/x.pare"
    [ "$status" -eq 1 ]
    [[ "$output" == *"the teacher's logits are at temperature 1, this run's is 2"* ]]
    head -c 20000 "$T/l.pare" > "$T/cut.pare"
    run lora --epochs 1 --teacher-logits "$T/cut.pare" -o "$T/x.pare"
    [ "$status" -eq 1 ]
    [[ "$output" == *"truncated"* ]]
    # a stream whose checksum holds but whose probabilities do not (re-sealed): the first
    # position's first log-probability made 0.5, then its second token id made its first's
    for edit in logp id; do
        $PY - "$T/l.pare" "$T/bad.pare" "$edit" <<'PY'
import struct, sys
b = bytearray(open(sys.argv[1], "rb").read())
i = b.index(b"\xa4data", b.index(b"\xa1t\xa6logits"))   # the first record's payload key
n = {0xc4: 1, 0xc5: 2, 0xc6: 4}[b[i + 5]]
at = i + 6 + n   # the payload: k ids, k log-probabilities, the rest
if sys.argv[3] == "logp":
    b[at + 64 * 4:at + 64 * 4 + 4] = struct.pack("<f", 0.5)
else:
    b[at + 4:at + 8] = b[at:at + 4]
open(sys.argv[2], "wb").write(b)
PY
        pare-reseal "$T/bad.pare" "$T/bad2.pare"
        run lora --epochs 1 --teacher-logits "$T/bad2.pare" -o "$T/x.pare"
        [ "$status" -eq 1 ]
        want="a log-probability that is not finite or above 0"
        [ $edit = id ] && want="a token id twice"
        [[ "$output" == *"$T/bad2.pare: sample 0, position 0: $want"* ]]
    done
    # a state made with one teacher, resumed with another or with its logits
    lora --epochs 1 --teacher "$T/teach" --state "$T/st" -o "$T/a.pare"
    run lora --epochs 1 --teacher "$T/m" --state "$T/st" -o "$T/x.pare"
    [ "$status" -eq 1 ]
    [[ "$output" == *"the teacher (--teacher or --teacher-logits) was"* ]]
    run lora --epochs 1 --teacher "$T/teach" --kd-weight 0.5 --state "$T/st" -o "$T/x.pare"
    [[ "$output" == *"--kd-weight was 1.0, this run has 0.5"* ]]
    run lora --epochs 1 --state "$T/st" -o "$T/x.pare"
    [ "$status" -eq 0 ]   # a state with a teacher, resumed without: the teacher keys are this run's to check
    [ ! -e "$T/x.pare" ] || true
    # usage
    for bad in "--teacher $T/teach --teacher-logits $T/l.pare" "--kd-weight 0.5" "--full --merge" "--full --targets q" \
               "--kd-weight 2" "--dump-logits"; do
        run lora --epochs 1 $bad -o "$T/x.pare"
        [ "$status" -eq 2 ] || { echo "$bad: status $status"; return 1; }
    done
}
