# shellcheck shell=bash
# Shared by benches/load.sh, benches/idle.sh and benches/h2load.sh (sourced, not run). The caller
# sets ROOT, BUILD, RUNTIMES, PEERS, OUT and defines die(); this file provides the binaries, the
# server's lifecycle (SERVER_PID, SERVER_URL), the commit being measured (COMMIT), and the CPU
# accounting of a run (cpu_ticks, children_cpu, cores_busy).

# Where `cargo build` puts weft: CARGO_TARGET_DIR when set (the build below honours it too).
WEFT_BIN=${CARGO_TARGET_DIR:-$ROOT/target}/release/weft
PEER_TARGET=$ROOT/target/peers
HYPER_BIN=$PEER_TARGET/release/weft-peer-hyper
MAY_BIN=$PEER_TARGET/release/weft-peer-may-minihttp
# The framework benchmark's servers (load.sh's FRAMEWORKS), one binary each.
FRAMEWORKS_DIR=$PEER_TARGET/release

# Every server started is stopped on exit, however the script ends.
SERVER_PID=
stop_server() {
    local pid=$SERVER_PID
    SERVER_PID=
    [[ -n $pid ]] || return 0
    kill -TERM "$pid" 2>/dev/null || return 0
    for _ in $(seq 50); do
        kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null || true; return 0; }
        sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}
trap stop_server EXIT
trap 'exit 130' INT TERM

# has_peer NAME...: whether PEERS names one of them.
has_peer() {
    local peer
    for peer in "$@"; do
        [[ " $PEERS " == *" $peer "* ]] && return 0
    done
    return 1
}

# Builds weft (release) and the peers PEERS asks for; checks they exist.
build_binaries() {
    if [[ $BUILD != 0 ]]; then
        echo "== building weft (release) and the peers ($PEERS)" >&2
        cargo build --release --quiet --manifest-path "$ROOT/Cargo.toml" -p weft-cli
        # Each peer is its own workspace; its build lands in target/peers, outside the source tree.
        ! has_peer hyper hyper-noflush || cargo build --release --quiet \
            --manifest-path "$ROOT/benches/peers/hyper/Cargo.toml" --target-dir "$PEER_TARGET"
        ! has_peer may_minihttp || cargo build --release --quiet \
            --manifest-path "$ROOT/benches/peers/may_minihttp/Cargo.toml" --target-dir "$PEER_TARGET"
        [[ -z ${FRAMEWORKS:-} ]] || cargo build --release --quiet \
            --manifest-path "$ROOT/benches/peers/frameworks/Cargo.toml" --target-dir "$PEER_TARGET"
    fi
    [[ -z $RUNTIMES || -x $WEFT_BIN ]] || die "$WEFT_BIN is missing (run with BUILD=1)"
    ! has_peer hyper hyper-noflush || [[ -x $HYPER_BIN ]] || die "$HYPER_BIN is missing (run with BUILD=1)"
    ! has_peer may_minihttp || [[ -x $MAY_BIN ]] || die "$MAY_BIN is missing (run with BUILD=1)"
    mkdir -p "$OUT"
    # The commit the binaries were built from (with BUILD=0: the commit checked out now).
    COMMIT="$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')"
    git -C "$ROOT" diff --quiet HEAD 2>/dev/null || COMMIT="$COMMIT + uncommitted changes"
}

# wait_for_address NAME LOG: after starting server NAME in the background (SERVER_PID set) with
# its output in LOG, waits up to 10 s for its "listening on" line and sets SERVER_URL.
wait_for_address() {
    local name=$1 log=$2
    SERVER_URL=
    for _ in $(seq 100); do
        SERVER_URL=$(grep -o -m1 'listening on http://[^ ]*' "$log" | sed 's/^listening on //') || true
        [[ -n $SERVER_URL ]] && return 0
        kill -0 "$SERVER_PID" 2>/dev/null || break
        sleep 0.1
    done
    cat "$log" >&2
    die "$name did not print its address within 10 s"
}

# The server's user+system CPU time so far, in clock ticks (fields 14 and 15 of /proc/PID/stat,
# counted after the parenthesised command name, which may hold spaces). Includes every thread,
# those that have exited too. (benches/h2load.sh uses it; load.sh has its own copy.)
cpu_ticks() {
    local stat
    stat=$(<"/proc/$1/stat")
    stat=${stat##*) }
    # shellcheck disable=SC2086
    set -- $stat
    echo $((${12} + ${13}))
}

# The CPU time (seconds, user+system) of the calling shell's waited-for children (the load
# client, through timeout and taskset), from `times`, which must run in that shell, not in a
# $(...) subshell: call it as `children_cpu >FILE`. Needs OUT.
children_cpu() {
    times >"$OUT/times"
    awk 'NR == 2 {
        n = split($0, f, " "); s = 0
        for (i = 1; i <= n; i++) { split(f[i], ms, "m"); sub("s", "", ms[2]); s += ms[1] * 60 + ms[2] }
        printf "%.3f", s }' "$OUT/times"
}

# Busy ticks (user, nice, system, irq, softirq, steal) of the server's and the client's cores
# together, from /proc/stat. Needs SERVER_CPU and CLIENT_CPU.
cores_busy() {
    awk -v a="cpu$SERVER_CPU" -v b="cpu$CLIENT_CPU" '
        $1 == a || $1 == b { s += $2 + $3 + $4 + $7 + $8 + $9 } END { print s }' /proc/stat
}

# start_server NAME: starts `weft echo --runtime NAME --workers 1`, the hyper peer (with
# $HYPER_MODE, e.g. --h2) for NAME=hyper, hyper without `pipeline_flush` for NAME=hyper-noflush,
# the may_minihttp peer (one worker) for NAME=may_minihttp, or a framework benchmark server
# (axum, actix, weft-app, weft-service: benches/peers/frameworks), pinned to SERVER_CPU; sets
# SERVER_PID and SERVER_URL. Needs OUT, WEFT_BIN, HYPER_BIN, MAY_BIN, HYPER_FLAVOR.
start_server() {
    local name=$1 log=$OUT/$1.server.log
    case $name in
        axum | actix | weft-app | weft-service)
            local bin=$FRAMEWORKS_DIR/peer_$name
            [[ $name == weft-* ]] && bin=$FRAMEWORKS_DIR/${name//-/_}
            [[ -x $bin ]] || die "$bin is missing (run with BUILD=1)"
            taskset -c "$SERVER_CPU" "$bin" --listen 127.0.0.1:0 >"$log" 2>&1 </dev/null & ;;
        # shellcheck disable=SC2086 # HYPER_MODE is empty or one word
        hyper) taskset -c "$SERVER_CPU" "$HYPER_BIN" ${HYPER_MODE:-} --listen 127.0.0.1:0 \
            --flavor "$HYPER_FLAVOR" >"$log" 2>&1 </dev/null & ;;
        hyper-noflush) taskset -c "$SERVER_CPU" "$HYPER_BIN" --no-pipeline-flush --listen 127.0.0.1:0 \
            --flavor "$HYPER_FLAVOR" >"$log" 2>&1 </dev/null & ;;
        may_minihttp) taskset -c "$SERVER_CPU" "$MAY_BIN" --listen 127.0.0.1:0 >"$log" 2>&1 </dev/null & ;;
        *) taskset -c "$SERVER_CPU" "$WEFT_BIN" echo --runtime "$name" --listen 127.0.0.1:0 \
            --workers 1 >"$log" 2>&1 </dev/null & ;;
    esac
    SERVER_PID=$! # taskset execs the server: same pid
    wait_for_address "$name" "$log"
}
