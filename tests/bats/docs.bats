#!/usr/bin/env bats
# Help and man pages cannot drift (git's t0450-txt-doc-vs-help.sh): each
# program's --help against its man page, usage and options and their stated
# defaults (tests/doc_vs_help.py); pare's verbs against pare(1)'s synopsis;
# pare --help and pare(1) name every program.
load helper

# the programs: every cmd/ folder but the front end
programs() {
    ls "$ROOT/cmd" | grep -v '^pare$'
}

@test "docs: every program has a man page, and the man page a program" {
    for p in $(programs); do
        [ -f "$ROOT/man/pare-$p.1" ] || { echo "no man/pare-$p.1"; return 1; }
    done
    for f in "$ROOT"/man/pare-*.1; do
        p=$(basename "$f" .1); p=${p#pare-}
        [ "$p" = pare ] || [ -d "$ROOT/cmd/$p" ] || { echo "$f documents no program"; return 1; }
    done
}

@test "docs: each program's --help states the options and defaults of its man page" {
    for p in $(programs); do
        pare-$p --help > "$T/help"
        run $PY "$ROOT/tests/doc_vs_help.py" "$ROOT/man/pare-$p.1" "$T/help"
        [ "$status" -eq 0 ] || { echo "pare-$p: $output"; return 1; }
    done
}

@test "docs: pare's verbs say what pare(1) says; pare --help and pare(1) name every program" {
    pare --help > "$T/help"
    run $PY "$ROOT/tests/doc_vs_help.py" "$ROOT/man/pare.1" "$T/help" "pare VERB"
    [ "$status" -eq 0 ] || { echo "pare: $output"; return 1; }
    for v in show compare convert tokenize; do
        grep -q "^  $v " "$T/help" || { echo "pare --help lacks the verb $v"; return 1; }
        pare $v --help > "$T/vhelp"
        run $PY "$ROOT/tests/doc_vs_help.py" "$ROOT/man/pare.1" "$T/vhelp" "pare $v"
        [ "$status" -eq 0 ] || { echo "pare $v: $output"; return 1; }
    done
    for p in $(programs); do
        grep -q "^  $p " "$T/help" || { echo "pare --help lacks the program $p"; return 1; }
        grep -q "^\.BR pare-$p (1)" "$ROOT/man/pare.1" || { echo "pare(1) does not name pare-$p(1)"; return 1; }
    done
}

@test "docs: the checker finds a drifted default, a missing option and a changed usage" {
    pare-score --help | sed 's/(default 42)/(default 43)/; s/--merge  /--mergex /; s/\[INPUT\]/[FILE]/' > "$T/help"
    run $PY "$ROOT/tests/doc_vs_help.py" "$ROOT/man/pare-score.1" "$T/help"
    [ "$status" -eq 1 ]
    [[ "$output" == *"--seed: default '43' in --help, '42' in the man page"* ]]
    [[ "$output" == *"--merge: in the man page, not in --help"* ]]
    [[ "$output" == *"--mergex: in --help, not in the man page"* ]]
    [[ "$output" == *"usage differs"* ]]
}
