# Shared set-up for the bats tests. The data folder is PARE_DATA (default
# ../shared/data from the repository root); tests that need it fail, not skip,
# when it is missing, so that CI can never pass without running them.
ROOT="$(cd "$BATS_TEST_DIRNAME/../.." && pwd)"
DATA="${PARE_DATA:-$ROOT/../shared/data}"
case "$DATA" in /*) ;; *) DATA="$ROOT/$DATA" ;; esac
S260="$DATA/models/stories260K"
MODEL="$S260/stories260K.bin"
TOK="$S260/tok512.bin"
WIKI="$DATA/eval/wikitext-2-raw/wiki.test.raw"
PTB="$DATA/eval/ptb/ptb.valid.txt"
STORIES="$DATA/text/tinystories/tinystories_train_sample.txt"
PY=/usr/bin/python3

need_data() {
    [ -f "$MODEL" ] || { echo "data missing: $MODEL (set PARE_DATA)" >&2; return 1; }
}

setup() {
    T="$BATS_TEST_TMPDIR"
}

# A ChatGLM-6B tokenizer folder in $1: ice_text.model, a SentencePiece model of
# type $2 (unigram, bpe) with ChatGLM-6B's user-defined pieces (<n>, <|tab|>,
# <|blank_N|>, [gMASK], <sop>, ...) trained on TinyStories, and the published
# tokenizer_config.json.
make_glm() {
    mkdir -p "$1"
    "$PY" - "$ROOT/tests" "$1" "$2" "$STORIES" <<'PY'
import sys, sentencepiece as spm
sys.path.insert(0, sys.argv[1])
from tokenizer_oracle import GLM_SPECIALS, GLM_MAX_BLANK
user = ["<n>", "<|tab|>"] + ["<|blank_%d|>" % i for i in range(2, GLM_MAX_BLANK + 1)] + GLM_SPECIALS
spm.SentencePieceTrainer.train(input=sys.argv[4], model_prefix=sys.argv[2] + "/ice_text", model_type=sys.argv[3],
                               vocab_size=700, user_defined_symbols=user, pad_id=3, byte_fallback=True,
                               remove_extra_whitespaces=False, minloglevel=2, num_threads=2)
PY
    cp "$DATA/configs/chatglm-6b/tokenizer_config.json" "$1/"
}

# A ChatGLM2 tokenizer folder in $1: tokenizer.model, a BPE SentencePiece model of
# 600 pieces trained on TinyStories ([MASK] [gMASK] [sMASK] sop eop follow them),
# and a tokenizer_config.json naming ChatGLMTokenizer.
make_glm2() {
    mkdir -p "$1"
    "$PY" - "$1" "$STORIES" <<'PY'
import sys, sentencepiece as spm
spm.SentencePieceTrainer.train(input=sys.argv[2], model_prefix=sys.argv[1] + "/tokenizer", model_type="bpe",
                               vocab_size=600, byte_fallback=True, minloglevel=2, num_threads=2)
PY
    printf '{"tokenizer_class": "ChatGLMTokenizer", "remove_space": false}\n' >"$1/tokenizer_config.json"
}

# relative difference of two numbers is below a tolerance
close() {
    awk -v a="$1" -v b="$2" -v tol="$3" 'BEGIN { d = a - b; if (d < 0) d = -d; m = b < 0 ? -b : b; if (m < 1) m = 1; exit !(d <= tol * m) }'
}

# progress_mixes FILE W: pare-lora's progress line of step 1 in FILE (its stderr
# with --log-every 1) gives the KL and the CE apart, the loss W * kl + (1 - W) * ce
progress_mixes() {
    local loss kl ce
    read -r loss kl ce < <(sed -n 's|.* step 1/[0-9]* .*: loss \([0-9.]*\) (kl \([0-9.]*\), ce \([0-9.]*\)).*|\1 \2 \3|p' "$1") ||
        { cat "$1"; return 1; }
    close "$loss" "$(awk -v w="$2" -v k="$kl" -v c="$ce" 'BEGIN { print w * k + (1 - w) * c }')" 1e-3
}

# The long options a man page documents in its OPTIONS section.
man_options() {
    sed 's/\\-/-/g' "$1" | awk '/^\.SH OPTIONS/ { on = 1; next } /^\.SH / { on = 0 } on' |
        grep '^\.B' | grep -o -- '--[a-z][a-z-]*' | sort -u
}

# Every option the man page documents appears in the program's --help.
help_lists_man_options() {
    local help="$1" man="$2" opt
    [ -n "$(man_options "$man")" ] || { echo "no options found in $man"; return 1; }
    for opt in $(man_options "$man"); do
        [[ "$help" == *"$opt"* ]] || { echo "--help lacks $opt documented in $man"; return 1; }
    done
}

# sigterm_resumes MAX CMD...: runs CMD, a pare-lora run of 63 steps with --progress
# that writes $T/out.pare and keeps its state in $T/st, up to six times, each time
# sending SIGTERM after its first step line (when the handler is surely installed)
# and a random few milliseconds later. Every stopped run must exit 1 saying where
# its state is saved. A run that finishes before the first stop starts over; the
# loop ends after MAX saves or when a run finishes, and needs one save at least.
sigterm_resumes() {
    local max=$1 i w pid status
    shift
    saves=0
    for i in 1 2 3 4 5 6; do
        : > "$T/err"
        "$@" 2> "$T/err" &
        pid=$!
        for w in $(seq 1 3000); do
            grep -q ': step [0-9]*/63 ' "$T/err" && break
            kill -0 $pid 2>/dev/null || break
            sleep 0.01
        done
        sleep 0.0$((RANDOM % 5))
        kill -TERM $pid 2>/dev/null || true
        status=0
        wait $pid || status=$?
        if [ -f "$T/out.pare" ] && [ $saves -eq 0 ]; then
            rm -rf "$T/st" "$T/out.pare" # finished before the signal: start again
            continue
        fi
        [ -f "$T/out.pare" ] && break
        [ "$status" -eq 1 ] || { echo "stopped run exited $status"; return 1; }
        grep -q "terminated (SIGTERM) .*: the state is saved in '$T/st'; run the same command again" "$T/err" ||
            { cat "$T/err"; return 1; }
        [ -f "$T/st/state.pare" ] || { echo "no state saved"; return 1; }
        saves=$((saves + 1))
        [ $saves -ge "$max" ] && break
    done
    [ $saves -ge 1 ]
}

# ---- llama.cpp's llama-perplexity beside pare-eval (llamacpp.bats, today.bats) ----
# The GGUF is $T/m.gguf, the text $T/text.txt (the caller writes it).
LLAMA_PPL="$DATA/../tools/llama.cpp/llama-perplexity"

# "PPL ERR ARCH" of llama-perplexity on a GGUF and a text (default $T/text.txt; one
# thread: its pool spins). Its logger runs in a thread of its own and now and then
# loses its last lines when the program exits (status 0, no "Final estimate"), more often on a loaded machine:
# such a run is repeated, five times at most.
llama_ppl() {
    local try rc arch ppl
    for try in 1 2 3 4 5 6; do
        rc=0
        "$LLAMA_PPL" -m "$1" -f "${2:-$T/text.txt}" -c 128 -b 128 -t 1 -lv 4 > "$T/llama.log" 2>&1 || rc=$?
        [ "$rc" -eq 0 ] || { echo "llama-perplexity failed with status $rc:" >&2; tail -15 "$T/llama.log" >&2; return 1; }
        arch=$(sed -n 's/.*print_info: arch *= *\([a-z0-9]*\).*/\1/p' "$T/llama.log" | head -1)
        ppl=$(sed -n 's/.*Final estimate: PPL = \([0-9.]*\) +\/- \([0-9.]*\).*/\1 \2/p' "$T/llama.log")
        [ -n "$ppl" ] && [ -n "$arch" ] && { echo "$ppl $arch"; return 0; }
        echo "llama-perplexity run $try: no final estimate in its log" >&2
    done
    return 1
}

# "PPL ERR" of pare-eval with llama.cpp's protocol on a GGUF and a text (default $T/text.txt)
pare_ppl() {
    pare-eval -q -m "$1" --ppl "${2:-$T/text.txt}" --ppl-protocol llama.cpp --json |
        jq -r '.metrics[0] | "\(.value) \(.stderr)"'
}

# a GGUF of model $1 (dtype $2) runs in llama-perplexity with architecture $3 and
# the perplexity pare-eval computes for the same model (1e-3 relative)
agrees() {
    pare convert -m "$1" --to gguf --dtype "$2" -o "$T/m.gguf"
    read -r lp le arch <<<"$(llama_ppl "$T/m.gguf")"
    read -r pp pe <<<"$(pare_ppl "$T/m.gguf")"
    echo "llama.cpp: $lp +/- $le ($arch)   pare: $pp +/- $pe"
    [ "$arch" = "$3" ]
    close "$pp" "$lp" 1e-3
    close "$pe" "$le" 1e-2
}
