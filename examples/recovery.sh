#!/usr/bin/env bash
# recovery.sh - recovery of pruned models, measured: for each model (stories260K,
# salty260K), prune a fifth and a half of its parameters (element1, the paper's
# criterion, and the automatic recipe), then recover each pruned model four ways
# at equal tokens and steps: LoRA on the cross-entropy (CE-LoRA, the paper's),
# LoRA by distillation from the unpruned model (KD-LoRA), every weight by
# distillation (KD-full), every weight on the cross-entropy (CE-full, to tell the
# loss's part from the parameters'); held-out TinyStories perplexity of each,
# with the dense and pruned baselines and the share of the pruned-to-dense gap
# each closes. A tab-separated table on stdout, progress on stderr.
#
#   PATH=$PWD/build/bin:$PATH examples/recovery.sh > recovery.tsv
#
# Text: the TinyStories sample cut in four disjoint parts by line: 1-500 to score
# on (calibration, pare-score), 501-1000 to validate (the automatic recipe's
# candidates, and the distillation weight: each KD run is made at every weight of
# WEIGHTS and the one of the lowest validation perplexity is reported), 1001-1990
# to train on (windows of 128 tokens; a tenth of them pare-lora's own validation
# split), 1992-2502 held out: only the reported perplexities read it.
# Perplexity: the first LIMIT windows of 128 tokens (160: all of the held-out
# text). The teacher is the dense model; its top-64 distributions over the
# training windows are dumped once per model (pare-lora --dump-logits) and
# every distillation run reads them (--teacher-logits).
#
# Training, the same for every run: EPOCHS epochs of batches of 16 windows
# (micro-batches of 8), warm-up 5 steps, seed 42, one thread each (JOBS runs at
# once); LoRA rank 8, alpha 16, every map, lr LORA_LR; every weight at lr FULL_LR.
# Files go to OUT (default recovery/); each is made once, so a second run only
# prints.
set -euo pipefail
D=${PARE_DATA:-../shared/data}
OUT=${OUT:-recovery}
MODELS=${MODELS:-stories260K salty260K}
RATIOS=${RATIOS:-0.2 0.5}
RECIPES=${RECIPES:-element1 auto}
WEIGHTS=${WEIGHTS:-0.25 0.5 1}
EPOCHS=${EPOCHS:-4}
LORA_LR=${LORA_LR:-1e-2}
FULL_LR=${FULL_LR:-1e-3}
LIMIT=${LIMIT:-160}
JOBS=${JOBS:-2}
STORIES=$D/text/tinystories/tinystories_train_sample.txt
export PARE_THREADS=1

mkdir -p "$OUT"
[ -s "$OUT/calib.txt" ] || sed -n '1,500p' "$STORIES" > "$OUT/calib.txt"
[ -s "$OUT/valid.txt" ] || sed -n '501,1000p' "$STORIES" > "$OUT/valid.txt"
[ -s "$OUT/train.txt" ] || sed -n '1001,1990p' "$STORIES" > "$OUT/train.txt"
[ -s "$OUT/heldout.txt" ] || tail -n +1992 "$STORIES" > "$OUT/heldout.txt"

TRAIN=(--data "$OUT/train.txt" --text --cutoff 128 --batch 16 --micro-batch 8 --epochs "$EPOCHS" --warmup 5
       --eval-every 17 --seed 42 -q)

# ppl MODEL_ARGS...: "validation<TAB>held-out" perplexities, the report kept beside
# the model (the first argument after -m names it)
ppl() {
    local r="$2.report"
    [ "${3:-}" = -a ] && r="$4.report"
    [ -s "$r" ] || pare-eval -q "$@" --ppl "$OUT/valid.txt" --ppl "$OUT/heldout.txt" --limit "$LIMIT" -o "$r"
    pare show "$r" | jq -r 'select(.t == "metric") | .value' | paste -s -d '\t'
}

# header STREAM: its header as JSON (pare show cut short by head is no failure)
header() { { pare show "$1" || :; } | head -1; }

# run FILE CMD...: CMD (which writes FILE) unless FILE is there; at most JOBS at once
run() {
    local f=$1
    shift
    [ -s "$f" ] && return 0
    while [ "$(jobs -rp | wc -l)" -ge "$JOBS" ]; do wait -n || :; done
    "$@" -o "$f" 2> "$f.err" &
}

# recovered PRUNED KIND: "validation<TAB>held-out" of a recovery (adapter or checkpoint)
recovered() {
    case "$2" in
    *lora*) ppl -m "$1" -a "${1%.pare}-$2.pare" ;;
    *) ppl -m "${1%.pare}-$2.pare" ;;
    esac
}

printf 'model\tratio\trecipe\tparams\tdense\tpruned\tCE-LoRA\tKD-LoRA w=1\tKD-LoRA best\tKD-full w=1\tKD-full best\tCE-full\n'
for name in $MODELS; do
    M=$D/models/$name/$name.bin
    T=$D/models/$name/tok512.bin
    O=$OUT/$name
    mkdir -p "$O"
    [ -s "$O/dense.pare" ] || pare convert -m "$M" --tokenizer "$T" -o "$O/dense.pare"
    [ -s "$O/scores.pare" ] || pare-discover -q -m "$O/dense.pare" |
        pare-score -q -m "$O/dense.pare" --calib "$OUT/calib.txt" -o "$O/scores.pare"
    [ -s "$O/teacher.pare" ] || pare-lora --teacher "$O/dense.pare" "${TRAIN[@]}" --dump-logits -o "$O/teacher.pare"
    dense=$(ppl -m "$O/dense.pare" | cut -f2)
    for R in $RATIOS; do
        for C in $RECIPES; do
            P=$O/r$R-$C.pare
            if [ "$C" = auto ]; then
                set -- --criterion auto --validate "$OUT/valid.txt"
            else
                set -- --criterion "$C"
            fi
            [ -s "$P" ] || pare-prune -q -m "$O/dense.pare" --target-params "$R" "$@" -o "$P" "$O/scores.pare"
            echo "recovery.sh: $name $R $C: training" >&2
            base=${P%.pare}
            run "$base-ce-lora.pare" pare-lora -m "$P" "${TRAIN[@]}" --lr "$LORA_LR"
            run "$base-ce-full.pare" pare-lora -m "$P" "${TRAIN[@]}" --lr "$FULL_LR" --full
            for W in $WEIGHTS; do
                run "$base-kd$W-lora.pare" pare-lora -m "$P" "${TRAIN[@]}" --lr "$LORA_LR" \
                    --teacher-logits "$O/teacher.pare" --kd-weight "$W"
                run "$base-kd$W-full.pare" pare-lora -m "$P" "${TRAIN[@]}" --lr "$FULL_LR" --full \
                    --teacher-logits "$O/teacher.pare" --kd-weight "$W"
            done
            wait
            # the distillation weight of the lowest validation perplexity, per kind
            best() {
                local W v bw= bv= bh=
                for W in $WEIGHTS; do
                    v=$(recovered "$P" "kd$W-$1")
                    if [ -z "$bv" ] || awk -v a="${v%%$'\t'*}" -v b="$bv" 'BEGIN { exit !(a < b) }'; then
                        bw=$W bv=${v%%$'\t'*} bh=${v##*$'\t'}
                    fi
                done
                printf '%s (w=%s)' "$bh" "$bw"
            }
            params=$(header "$P" | jq .provenance.params_after)
            [ "$C" = auto ] && C="auto: $(header "$P" |
                jq -r '.provenance.auto | .candidates[.winner] | .criterion + " " + .selection')"
            printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$name" "$R" "$C" "$params" "$dense" \
                "$(ppl -m "$P" | cut -f2)" "$(recovered "$P" ce-lora | cut -f2)" \
                "$(recovered "$P" kd1-lora | cut -f2)" "$(best lora)" \
                "$(recovered "$P" kd1-full | cut -f2)" "$(best full)" "$(recovered "$P" ce-full | cut -f2)"
        done
    done
done
