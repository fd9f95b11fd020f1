#!/usr/bin/env bats
# bench/memcap, the memory-cap harness of make bench-7b MEMCAP=...: a command's
# peak anonymous memory, the bytes it read from disk, the cap enforced, the cgroup
# removed. It needs a memory cgroup it may make (root, cgroup v1's memory
# controller or v2's): elsewhere every test skips, saying why.
load helper

MEMCAP="$ROOT/bench/memcap"

setup() {
    T="$BATS_TEST_TMPDIR"
    local why
    why=$("$MEMCAP" -- true 2>&1 >/dev/null | grep 'error' || true)
    [ -z "$why" ] || skip "no memory cgroup here: $why"
}

# the number after KEY= in FILE
val() { sed -n "s/^$1=//p" "$2"; }

# the memcap cgroups left behind under this shell's memory cgroup
leftovers() {
    find /sys/fs/cgroup -maxdepth 6 -type d -name 'pare-memcap.*' 2>/dev/null | wc -l
}

@test "memcap: 300 MB of anonymous memory are reported, not a 64 MB file's page cache" {
    head -c 67108864 /dev/urandom > "$T/f"
    sync "$T/f"
    local before
    before=$(leftovers)
    run "$MEMCAP" -o "$T/m" --cold "$T/f" -- "$PY" -c '
import sys, time
data = open(sys.argv[1], "rb").read()    # 64 MB read from disk (dropped from the cache first)
x = bytearray(300 << 20)                  # 300 MB of anonymous memory, touched
x[::4096] = b"1" * len(x[::4096])
time.sleep(0.5)                           # longer than the sampling interval
print(len(data))' "$T/f"
    [ "$status" -eq 0 ]
    [[ "$output" == *"67108864"* ]]
    [[ "$output" == *"memcap: no cap"*"GiB peak anonymous"*"GiB read from disk, exit 0"* ]]
    # anonymous: the 300 MB array and the 64 MB bytes object, and python itself; not more than that
    [ "$(val peak_anon_bytes "$T/m")" -ge $((300 << 20)) ]
    [ "$(val peak_anon_bytes "$T/m")" -le $((450 << 20)) ]
    # read: the file, once
    [ "$(val read_bytes "$T/m")" -ge $((64 << 20)) ]
    [ "$(val read_bytes "$T/m")" -le $((80 << 20)) ]
    [ "$(val status "$T/m")" -eq 0 ]
    [ "$(leftovers)" -eq "$before" ]
}

@test "memcap: a cap below what the command needs ends it (exit 137), and says so" {
    run "$MEMCAP" -m 128M -o "$T/m" -- "$PY" -c 'x = bytearray(400 << 20); x[::4096] = b"1" * len(x[::4096])'
    [ "$status" -eq 137 ]
    [[ "$output" == *"memcap: 0.12 GiB cap"*"killed by the cap (out of memory)"* ]]
    [ "$(val oom_kills "$T/m")" -ge 1 ]
    [ "$(val cap_bytes "$T/m")" -eq $((128 << 20)) ]
    # within the cap, the same command completes
    run "$MEMCAP" -m 1G -- "$PY" -c 'x = bytearray(400 << 20); x[::4096] = b"1" * len(x[::4096])'
    [ "$status" -eq 0 ]
}

@test "memcap: under a cap smaller than a file read twice, it is read from disk twice" {
    # (the cap leaves room for what the kernel charges besides the file's pages: a
    # machine of 2026-12-06 killed a plain cat at 96M, not at 160M)
    head -c $((384 << 20)) /dev/urandom > "$T/f"
    sync "$T/f"
    run "$MEMCAP" -m 192M -o "$T/m" --cold "$T/f" -- sh -c 'cat "$1" > /dev/null; cat "$1" > /dev/null' sh "$T/f"
    [ "$status" -eq 0 ]
    [ "$(val read_bytes "$T/m")" -ge $((2 * 384 << 20)) ]
    # without the cap, the second read comes from the page cache
    run "$MEMCAP" -o "$T/m" --cold "$T/f" -- sh -c 'cat "$1" > /dev/null; cat "$1" > /dev/null' sh "$T/f"
    [ "$status" -eq 0 ]
    [ "$(val read_bytes "$T/m")" -lt $((2 * 384 << 20)) ]
}

@test "memcap: usage errors, and stdin reaches the command" {
    run "$MEMCAP" -m 12Q -- true
    [ "$status" -eq 1 ]
    [[ "$output" == "memcap: error: bad size '12Q'" ]]
    run "$MEMCAP"
    [ "$status" -eq 2 ]
    run sh -c 'echo through | "$1" -- cat' sh "$MEMCAP"
    [ "$status" -eq 0 ]
    [[ "$output" == through* ]]
}
