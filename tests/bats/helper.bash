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

# relative difference of two numbers is below a tolerance
close() {
    awk -v a="$1" -v b="$2" -v tol="$3" 'BEGIN { d = a - b; if (d < 0) d = -d; m = b < 0 ? -b : b; if (m < 1) m = 1; exit !(d <= tol * m) }'
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
