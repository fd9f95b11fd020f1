#!/bin/sh
# quality.sh - which units go, measured: every criterion x selection (local,
# global, adaptive) x size (0.2, 0.5 and 0.7 of the parameters removed, block
# mode, default layers) on stories260K, each pruned model's WikiText-2 and
# held-out TinyStories perplexity; the automatic recipe (--criterion auto
# --validate) at each size; and the rank check of every criterion against
# ablation. Tab-separated tables on stdout, progress on stderr.
#
#   PATH=$PWD/build/bin:$PATH examples/quality.sh > quality.tsv
#
# Text: the TinyStories sample cut in three disjoint parts: lines 1-1000 to
# score on (calibration), 1001-1990 to validate the automatic recipe's candidates
# on, 1992-2502 held out for the perplexity. Perplexity: the first LIMIT windows
# of 128 tokens of each text (160: all of the held-out text, 20K tokens of
# WikiText-2's test split). Files go to OUT (default quality/); each is made once,
# so a second run only prints.
set -eu
D=${PARE_DATA:-../shared/data}
M=${MODEL:-$D/models/stories260K/stories260K.bin}
T=${TOKENIZER:-$D/models/stories260K/tok512.bin}
OUT=${OUT:-quality}
LIMIT=${LIMIT:-160}
RATIOS=${RATIOS:-0.2 0.5 0.7}
CRITERIA=${CRITERIA:-vector element1 element2 mix flap wanda ablation l1 l2 random}
SELECTS=${SELECTS:-local global adaptive}
STATS=${STATS:-all,ablation,influence}
ABLATE=${ABLATE:-}   # N: ablate a sample of N units per group (rank check only; no 'ablation' in CRITERIA)
STORIES=$D/text/tinystories/tinystories_train_sample.txt
WIKI=$D/eval/wikitext-2-raw/wiki.test.raw
mkdir -p "$OUT"
[ -s "$OUT/calib.txt" ] || sed -n '1,1000p' "$STORIES" > "$OUT/calib.txt"
[ -s "$OUT/valid.txt" ] || sed -n '1001,1990p' "$STORIES" > "$OUT/valid.txt"
[ -s "$OUT/heldout.txt" ] || tail -n +1992 "$STORIES" > "$OUT/heldout.txt"
[ -s "$OUT/groups.pare" ] || pare-discover -q -m "$M" -o "$OUT/groups.pare"
[ -s "$OUT/scores.pare" ] || pare-score -q -m "$M" --tokenizer "$T" --calib "$OUT/calib.txt" \
    --stats "$STATS" ${ABLATE:+--ablate "$ABLATE"} -o "$OUT/scores.pare" "$OUT/groups.pare"

# ppl MODEL [--tokenizer T]: "wikitext2<TAB>heldout" perplexities
ppl() {
    r="$1.report"
    [ -s "$r" ] || pare-eval -q -m "$@" --ppl "$WIKI" --ppl "$OUT/heldout.txt" --limit "$LIMIT" -o "$r"
    pare show "$r" | grep '"metric":"ppl"' | sed 's/.*"value":\([0-9.e+-]*\).*/\1/' | tr '\n' '\t' | sed 's/\t$//'
}

# prov CHECKPOINT EXPR: a Python expression of its provenance p
prov() {
    pare show "$1" | head -1 | python3 -c "import json, sys; p = json.load(sys.stdin)['provenance']; print($2)"
}

printf 'ratio\tcriterion\tselection\tparams\twikitext2\theldout\n'
[ -s "$OUT/base.pare" ] || pare convert -m "$M" --tokenizer "$T" -o "$OUT/base.pare"
printf '0\tbase\t-\t-\t%s\n' "$(ppl "$OUT/base.pare")"
for R in $RATIOS; do
    for C in $CRITERIA auto; do
        for S in $SELECTS; do
            if [ "$C" = auto ]; then
                [ "$S" = "${SELECTS%% *}" ] || continue
                set -- --criterion auto --validate "$OUT/valid.txt"
                f="$OUT/r$R-auto.pare"
            else
                set -- --criterion "$C" --select "$S"
                f="$OUT/r$R-$C-$S.pare"
            fi
            if [ ! -s "$f" ] && ! pare-prune -q -m "$M" --tokenizer "$T" --target-params "$R" "$@" -o "$f" \
                "$OUT/scores.pare" 2> "$f.err"; then
                printf '%s\t%s\t%s\t-\t-\t-\n' "$R" "$C" "$S"
                continue
            fi
            lc=$C
            ls=$S
            if [ "$C" = auto ]; then
                lc="auto: $(prov "$f" 'p["auto"]["candidates"][p["auto"]["winner"]]["criterion"]')"
                ls=$(prov "$f" 'p["auto"]["candidates"][p["auto"]["winner"]]["selection"]')
            fi
            printf '%s\t%s\t%s\t%s\t%s\n' "$R" "$lc" "$ls" "$(prov "$f" 'p["params_after"]')" "$(ppl "$f")"
            echo "quality.sh: $R $lc $ls" >&2
        done
    done
done
case "$STATS" in
*ablation*)
    echo
    pare-prune -m "$M" --target-params 0.2 --dry-run --rank-check "$OUT/scores.pare" | sed -n '/^rank check/,$p'
    ;;
esac
