# shellcheck shell=bash
# Shared by benches/load.sh and benches/idle.sh (sourced, not run). The caller sets ROOT, BUILD,
# RUNTIMES, PEERS, OUT and defines die(); this file provides the binaries, the server's
# lifecycle (SERVER_PID, SERVER_URL) and the commit being measured (COMMIT).

WEFT_BIN=$ROOT/target/release/weft
PEER_TARGET=$ROOT/target/peers
HYPER_BIN=$PEER_TARGET/release/weft-peer-hyper

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

# Builds weft (release) and, when a peer is asked for, the hyper peer; checks both exist.
build_binaries() {
    if [[ $BUILD != 0 ]]; then
        echo "== building weft (release) and the hyper peer" >&2
        cargo build --release --quiet --manifest-path "$ROOT/Cargo.toml" -p weft-cli
        # The peer is its own workspace; its build lands in target/peers, outside the source tree.
        [[ -z $PEERS ]] || cargo build --release --quiet \
            --manifest-path "$ROOT/benches/peers/hyper/Cargo.toml" --target-dir "$PEER_TARGET"
    fi
    [[ -z $RUNTIMES || -x $WEFT_BIN ]] || die "$WEFT_BIN is missing (run with BUILD=1)"
    [[ -z $PEERS || -x $HYPER_BIN ]] || die "$HYPER_BIN is missing (run with BUILD=1)"
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
