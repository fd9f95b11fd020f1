#!/usr/bin/env bats
# The Slurm examples under a real scheduler: a private single-node Slurm (Debian's
# slurm-wlm: slurmctld and slurmd as root, no munge, state and spool in this
# file's temporary folder, ports found free) runs examples/score-array.sbatch and
# examples/eval-array.sbatch as job arrays, each merged by a job that depends on
# its array; the merged streams must equal the unsharded runs'. Where the daemons
# cannot start (not root, slurm-wlm missing, a daemon that does not come up) every
# test skips, saying why. The daemons are stopped by their pids in teardown_file,
# also after a failure; every wait is bounded.
load helper

# the reason the cluster is not there, or nothing
cluster_missing() {
    cat "$BATS_FILE_TMPDIR/no-slurm" 2>/dev/null
}

free_port() {
    "$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

start_slurm() {
    local sl="$1" node p1 p2 i
    [ "$(id -u)" -eq 0 ] || { echo "not root: slurmd starts jobs as root here"; return 1; }
    for p in slurmctld slurmd sbatch sinfo scancel; do
        command -v "$p" >/dev/null || { echo "no $p: slurm-wlm is not installed (tools/install-deps installs it)"; return 1; }
    done
    node=$(hostname -s)
    p1=$(free_port) && p2=$(free_port) || { echo "no free port"; return 1; }
    [ "$p1" != "$p2" ] || p2=$(free_port)
    mkdir -p "$sl/state" "$sl/spool" "$sl/log"
    cat > "$SLURM_CONF" <<EOF
ClusterName=pare-test
SlurmctldHost=$node(127.0.0.1)
SlurmctldPort=$p1
SlurmdPort=$p2
SlurmUser=root
SlurmdUser=root
AuthType=auth/none
CredType=cred/none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
MpiDefault=none
SwitchType=switch/none
SchedulerType=sched/builtin
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
MessageTimeout=5
StateSaveLocation=$sl/state
SlurmdSpoolDir=$sl/spool
SlurmctldPidFile=$sl/slurmctld.pid
SlurmdPidFile=$sl/slurmd.pid
SlurmctldLogFile=$sl/log/slurmctld.log
SlurmdLogFile=$sl/log/slurmd.log
NodeName=$node NodeAddr=127.0.0.1 CPUs=$(nproc) RealMemory=1024 State=UNKNOWN
PartitionName=pare Nodes=ALL Default=YES MaxTime=10 State=UP
EOF
    # both daemonize and write their pid files; teardown_file stops them by those pids
    timeout 20 slurmctld -c -f "$SLURM_CONF" || { echo "slurmctld did not start: $(tail -3 "$sl/log/slurmctld.log" 2>&1)"; return 1; }
    timeout 20 slurmd -c -f "$SLURM_CONF" || { echo "slurmd did not start: $(tail -3 "$sl/log/slurmd.log" 2>&1)"; return 1; }
    for i in $(seq 40); do
        [ "$(timeout 5 sinfo -h -o %t 2>/dev/null)" = idle ] && return 0
        sleep 0.5
    done
    echo "the node did not come up within 20 s: $(tail -3 "$sl/log/slurmctld.log" "$sl/log/slurmd.log" 2>&1 | tr '\n' ' ')"
    return 1
}

setup_file() {
    export SL="$BATS_FILE_TMPDIR/slurm"
    export SLURM_CONF="$SL/slurm.conf"
    mkdir -p "$SL"
    local why
    why=$(start_slurm "$SL") || echo "${why:-the daemons did not start}" > "$BATS_FILE_TMPDIR/no-slurm"
}

teardown_file() {
    local f pid i pids=""
    [ -f "$SLURM_CONF" ] && timeout 10 scancel --user="$(id -un)" 2>/dev/null
    for f in "$SL/slurmd.pid" "$SL/slurmctld.pid"; do
        pid=$(cat "$f" 2>/dev/null) || continue
        [ -n "$pid" ] && kill "$pid" 2>/dev/null && pids="$pids $pid"
    done
    for i in $(seq 20); do
        for pid in $pids; do kill -0 "$pid" 2>/dev/null && break; pid=""; done
        [ -z "$pid" ] && return 0
        sleep 0.5
    done
    for pid in $pids; do kill -9 "$pid" 2>/dev/null; done
    return 0
}

setup() {
    T="$BATS_TEST_TMPDIR"
    local why
    why=$(cluster_missing) && skip "no Slurm cluster: $why"
    cd "$T"
}

# submit ARGS...: sbatch for this one-node cluster (one CPU, little memory: the
# examples' 8 CPUs and 32G would pend forever), output in $T; prints the job id
submit() {
    timeout 30 sbatch --parsable --chdir="$T" --cpus-per-task=1 --mem=256M --time=5 -o "$T/%x-%A_%a.out" "$@"
}

# wait_merge JOBID COMMAND: the merge job, which depends on array JOBID, waited for
# (bounded); every task of the array and the merge must have completed (sbatch
# --wait exits 0 for a merge cancelled because a task failed)
wait_merge() {
    local mid states
    mid=$(timeout 120 sbatch --parsable --wait --kill-on-invalid-dep=yes --dependency=afterok:"$1" --chdir="$T" \
        --cpus-per-task=1 --mem=256M --time=5 --job-name=merge -o "$T/merge-%j.out" --wrap "$2") || true
    states=$( (timeout 10 scontrol -o show job "$1"; timeout 10 scontrol -o show job "${mid:-none}") 2>&1 |
        grep -o 'JobState=[A-Z_]*' | sort | uniq -c | tr -s ' ')
    if [ "$states" != " 4 JobState=COMPLETED" ]; then
        echo "array $1, merge ${mid:-not submitted}: $states"
        tail -n 5 "$T"/*.out
        return 1
    fi
}

@test "slurm: score-array.sbatch as a 3-task array and a dependent merge gives the unsharded scores" {
    need_data
    jid=$(MODEL="$MODEL" TOKENIZER="$TOK" PARE_DATA="$DATA" CALIB="$STORIES" OUT="$T/shards" \
        submit --array=0-2 "$ROOT/examples/score-array.sbatch")
    wait_merge "$jid" "pare-score -q --merge $T/shards/shard-0.pare $T/shards/shard-1.pare $T/shards/shard-2.pare -o $T/merged.pare"
    pare show "$T/shards/shard-1.pare" | head -1 | jq -e '.pare == "partial" and .shard.index == 1 and .shard.count == 3'
    pare-discover -q -m "$MODEL" | pare-score -q -m "$MODEL" --tokenizer "$TOK" --calib "$STORIES" -o "$T/whole.pare" -
    # the same records (header apart from argv, groups, activations), every statistic
    # equal up to float rounding (the shards add their sums in another order)
    diff <(pare show "$T/merged.pare" | jq -c 'del(.argv, .scores, .data, .xxh64)') \
        <(pare show "$T/whole.pare" | jq -c 'del(.argv, .scores, .data, .xxh64)')
    numbers() {
        pare show --data "$1" | jq -c 'select(.t == "group" or .t == "activations") | (.scores // {}), (.data // []) | .. | numbers'
    }
    paste <(numbers "$T/merged.pare") <(numbers "$T/whole.pare") > "$T/pairs"
    [ "$(wc -l < "$T/pairs")" -gt 30000 ]
    awk '{ d = $1 - $2; if (d < 0) d = -d; m = $2 < 0 ? -$2 : $2; if (NF != 2 || d > 1e-3 * m + 1e-7) { print; bad++ } }
         END { exit bad > 0 }' "$T/pairs"
    # and prune the same units
    for crit in element1 l2; do
        pare-prune -q -m "$MODEL" --tokenizer "$TOK" --criterion $crit --ratio 0.5 -o "$T/a" "$T/merged.pare"
        pare-prune -q -m "$MODEL" --tokenizer "$TOK" --criterion $crit --ratio 0.5 -o "$T/b" "$T/whole.pare"
        diff <(pare show "$T/a" | head -1 | jq -c .provenance.groups) <(pare show "$T/b" | head -1 | jq -c .provenance.groups)
    done
}

@test "slurm: eval-array.sbatch as a 3-task array and a dependent merge gives the unsharded report" {
    need_data
    jid=$(MODEL="$MODEL" TOKENIZER="$TOK" PARE_DATA="$DATA" OUT="$T/shards" TASKS=piqa,openbookqa LIMIT=9 \
        submit --array=0-2 "$ROOT/examples/eval-array.sbatch")
    wait_merge "$jid" "pare-eval -q --merge $T/shards/shard-0.pare $T/shards/shard-1.pare $T/shards/shard-2.pare -o $T/merged.pare"
    pare-eval -q -m "$MODEL" --tokenizer "$TOK" --data-dir "$DATA" --tasks piqa,openbookqa --limit 9 -o "$T/whole.pare"
    pare show "$T/merged.pare" | jq -c 'del(.argv, .xxh64)' > "$T/m.jsonl"
    pare show "$T/whole.pare" | jq -c 'del(.argv, .xxh64)' > "$T/w.jsonl"
    grep -q '"task":"openbookqa"' "$T/w.jsonl"
    diff "$T/m.jsonl" "$T/w.jsonl"
}
