#!/usr/bin/env bats
# tools/check-layers: lib/README.md's map against the tree, and the include rule.

setup() {
    T=$(mktemp -d)
    mkdir -p "$T/tools" && cp tools/check-layers "$T/tools/" && cp -r lib "$T/lib"
}
teardown() { rm -rf "$T"; }

@test "layers: the tree follows lib/README.md (folders, files, includes downwards, no cycles)" {
    run tools/check-layers
    [ "$status" -eq 0 ] || { echo "$output"; false; }
}

@test "layers: an include upwards, an unqualified include and a cycle are each found" {
    sed -i '0,/#include "base\/util.h"/s//#include "base\/util.h"\n#include "format\/stream.h"/' "$T/lib/model/tensor.c"
    echo '#include "util.h"' >> "$T/lib/base/rng.c"
    echo '#include "base/rng.h"' >> "$T/lib/base/util.h"
    echo '#include "base/util.h"' >> "$T/lib/base/rng.h"
    run "$T/tools/check-layers" "$T"
    [ "$status" -eq 1 ]
    [[ "$output" == *"lib/model/tensor.c (model, layer 1) includes format/stream.h (format, layer 3)"* ]]
    [[ "$output" == *'lib/base/rng.c: #include "util.h" does not name its folder'* ]]
    [[ "$output" == *"include cycle: base/"*"rng"*"util"* ]]
}

@test "layers: a file missing from the map, and a mapped file that is gone, are found" {
    touch "$T/lib/eval/newthing.c"
    rm "$T/lib/base/arena.c"
    run "$T/tools/check-layers" "$T"
    [ "$status" -eq 1 ]
    [[ "$output" == *"lib/eval/newthing.c is not described in lib/README.md"* ]]
    [[ "$output" == *"lib/README.md names lib/base/arena.c, which does not exist"* ]]
}
