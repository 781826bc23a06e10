#!/usr/bin/env bash
# WebSocket echo benchmark: `weft echo`'s /ws on each runtime against a tokio-tungstenite echo
# server (benches/peers/tungstenite), driven by weft-ws-load (the same peer workspace): C
# connections, each keeping D messages of S bytes in flight, every echo checked byte for byte.
# Loopback only; every client run is bounded in time.
#
# As in load.sh and h2load.sh, the server is pinned to one core and the client to the other
# (taskset), weft runs with --workers 1, and beside messages/s the script reports the server's
# CPU time per message (user+system from /proc/PID/stat over the run): on a 2-core machine the
# client can saturate its own core before a good server does, so µs/msg is the figure to
# compare, and "× tokio-tungstenite" is it over the peer's in this run. No compression: the
# client offers no extension (tungstenite has no permessage-deflate).
#
# Usage: benches/ws.sh                    (everything: about 2 minutes of load, plus builds)
#   RUNTIMES="mio tokio" DURATION=3 benches/ws.sh
#   SCENARIOS=small RUNTIMES=mio BUILD=0 benches/ws.sh
# Environment (defaults in brackets):
#   RUNTIMES     weft runtimes to measure, in order            [smol async-std tokio threadpool mio poll]
#   WS_PEERS     peers to measure, run first ("" for none)     [tungstenite]
#   SCENARIOS    from: small (64 connections × 8 in flight × 125 B binary),
#                large (16 × 2 × 16 KiB binary), text (64 × 8 × 125 B text)  [small large]
#   DURATION     seconds of each measured client run           [5]
#   WARMUP       seconds of unrecorded load per server and scenario  [1]
#   SERVER_CPU / CLIENT_CPU  cores for the server and the client  [0 / 1]
#   BUILD        0 to use the binaries already built           [1]
#   WS_PEER_TARGET  cargo target directory of the peer workspace  [target/peers]
#   OUT          where the client's and the servers' output go [target/ws/DATE-TIME]
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
RUNTIMES=${RUNTIMES-smol async-std tokio threadpool mio poll}
WS_PEERS=${WS_PEERS-tungstenite}
SCENARIOS=${SCENARIOS:-small large}
DURATION=${DURATION:-5}
WARMUP=${WARMUP:-1}
SERVER_CPU=${SERVER_CPU:-0}
CLIENT_CPU=${CLIENT_CPU:-1}
BUILD=${BUILD:-1}
OUT=${OUT:-$ROOT/target/ws/$(date +%Y%m%d-%H%M%S)}

CLK_TCK=$(getconf CLK_TCK)

die() { echo "ws.sh: $*" >&2; exit 1; }
for tool in taskset timeout awk; do
    command -v "$tool" >/dev/null || die "needs $tool (apt-get install -y util-linux coreutils gawk)"
done
[[ $(nproc) -ge 2 ]] || echo "ws.sh: only $(nproc) core: server and client share it, figures mean little" >&2

# shellcheck source=benches/common.sh
source "$ROOT/benches/common.sh"
# common.sh's build_binaries builds the hyper peer when PEERS is set: not wanted here.
# shellcheck disable=SC2034 # both are read by common.sh
PEERS='' HYPER_FLAVOR=current
build_binaries

# The peer workspace holds both the tokio-tungstenite server and the load client; it builds into
# target/peers as the hyper peer does, or WS_PEER_TARGET.
PEER_TARGET=${WS_PEER_TARGET:-$PEER_TARGET}
PEER_MANIFEST=$ROOT/benches/peers/tungstenite/Cargo.toml
TUNGSTENITE_BIN=$PEER_TARGET/release/weft-peer-tungstenite
LOAD_BIN=$PEER_TARGET/release/weft-ws-load
if [[ $BUILD != 0 ]]; then
    echo "== building the tokio-tungstenite peer and the load client" >&2
    cargo build --release --quiet --manifest-path "$PEER_MANIFEST" --target-dir "$PEER_TARGET"
fi
[[ -x $LOAD_BIN ]] || die "$LOAD_BIN is missing (run with BUILD=1)"
[[ -z $WS_PEERS || -x $TUNGSTENITE_BIN ]] || die "$TUNGSTENITE_BIN is missing (run with BUILD=1)"

# scenario_args NAME: the client's arguments for a scenario.
scenario_args() {
    case $1 in
        small) echo "--connections 64 --depth 8 --size 125" ;;
        large) echo "--connections 16 --depth 2 --size 16384" ;;
        text) echo "--connections 64 --depth 8 --size 125 --text" ;;
        *) die "unknown scenario $1 (small, large, text)" ;;
    esac
}

# start_ws_server NAME: the tokio-tungstenite peer, or `weft echo` on runtime NAME (common.sh),
# pinned to SERVER_CPU; sets SERVER_PID, SERVER_URL and WS_URL.
start_ws_server() {
    local name=$1
    if [[ $name == tungstenite ]]; then
        taskset -c "$SERVER_CPU" "$TUNGSTENITE_BIN" --listen 127.0.0.1:0 \
            >"$OUT/$name.server.log" 2>&1 </dev/null &
        SERVER_PID=$! # taskset execs the server: same pid
        wait_for_address "$name" "$OUT/$name.server.log"
    else
        start_server "$name"
    fi
    WS_URL="ws://${SERVER_URL#http://}/ws"
}

# run_client FILE SECONDS SCENARIO: the load client pinned to CLIENT_CPU for SECONDS (it gives
# itself 30 s more to drain, and is killed 40 s after SECONDS); its exit status, never fatal.
run_client() {
    local file=$1 seconds=$2 rc=0
    # shellcheck disable=SC2046 # the scenario's arguments are words
    timeout -k 5 $((seconds + 40)) taskset -c "$CLIENT_CPU" "$LOAD_BIN" --url "$WS_URL" \
        --seconds "$seconds" $(scenario_args "$3") >"$file" 2>&1 || rc=$?
    return $rc
}

RESULTS=$OUT/results.tsv
: >"$RESULTS"
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
echo "== $(date -u +%FT%TZ), load average $LOAD_BEFORE, output in $OUT" >&2

# measure NAME SCENARIO: the warm-up, then one measured client run; appends a row to RESULTS.
measure() {
    local name=$1 scenario=$2 file=$OUT/$1.$2.load
    local t0 t1 c0 c1 w0 w1 b0 b1 rc=0
    run_client "$OUT/$name.$scenario.warmup.load" "$WARMUP" "$scenario" || true
    c0=$(cpu_ticks "$SERVER_PID")
    b0=$(cores_busy)
    children_cpu >"$OUT/w0"
    t0=$(date +%s.%N)
    run_client "$file" "$DURATION" "$scenario" || rc=$?
    t1=$(date +%s.%N)
    b1=$(cores_busy)
    children_cpu >"$OUT/w1"
    w0=$(<"$OUT/w0") w1=$(<"$OUT/w1")
    if ! kill -0 "$SERVER_PID" 2>/dev/null; then
        printf '%s\t%s\t-\t-\t-\t-\t-\tserver died (see %s)\t-\n' "$name" "$scenario" \
            "$OUT/$name.server.log" >>"$RESULTS"
        echo "   $name: the server died" >&2
        return 1
    fi
    c1=$(cpu_ticks "$SERVER_PID")
    # One row: name scenario msgs/s messages µs/msg server-CPU% client-CPU% problems others-CPU%
    awk -v name="$name" -v scenario="$scenario" -v rc="$rc" -v ticks=$((c1 - c0)) -v hz="$CLK_TCK" \
        -v t0="$t0" -v t1="$t1" -v w0="$w0" -v w1="$w1" -v busy=$((b1 - b0)) '
        /^ws-load:/ {
            for (i = 2; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] }
            seen = 1
        }
        END {
            problems = ""
            if (rc != 0) problems = problems "client exit " rc "; "
            if (v["mismatches"] + 0) problems = problems v["mismatches"] " mismatched; "
            if (v["errors"] + 0) problems = problems v["errors"] " connection errors; "
            if (v["timed_out"] + 0) problems = problems "timed out; "
            done = v["messages"] + 0
            if (!seen || done == 0) { printf "%s\t%s\t0\t0\t-\t-\t-\t%sno echo\t-\n", name, scenario, problems; exit }
            secs = ticks / hz; wall = t1 - t0; wcpu = w1 - w0
            others = 100 * (busy / hz - secs - wcpu) / wall
            printf "%s\t%s\t%.0f\t%d\t%.3f\t%.0f\t%.0f\t%s\t%.0f\n", name, scenario, v["msgs_per_s"],
                done, secs * 1e6 / done, 100 * secs / wall, 100 * wcpu / wall, problems,
                others < 0 ? 0 : others
        }' "$file" >>"$RESULTS"
    tail -n1 "$RESULTS" | awk -F'\t' '{ printf "   %-12s %-6s %9s msgs/s  %9s messages  %7s µs/msg  server %s%%  client %s%%  others %s%%  %s\n",
        $1, $2, $3, $4, $5, $6, $7, $9, $8 }' >&2
}

for name in $WS_PEERS $RUNTIMES; do
    echo "== $name" >&2
    start_ws_server "$name"
    for scenario in $SCENARIOS; do
        measure "$name" "$scenario" || break
    done
    stop_server
done
LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)

# The table: per scenario, the peer's row first, then each runtime with its µs/msg over the
# peer's (the goal of issue 5 is weft at 0.66 or below).
{
    echo
    echo "WebSocket echo benchmark, $(date -u +%F), weft $COMMIT"
    echo "weft-ws-load (one thread) on CPU $CLIENT_CPU, server on CPU $SERVER_CPU" \
        "(weft --workers 1; tokio-tungstenite on a current-thread runtime), ${DURATION} s a run" \
        "after ${WARMUP} s of warm-up; no compression; load average $LOAD_BEFORE before, $LOAD_AFTER after"
    echo
    echo "| scenario | server | msgs/s | messages | server CPU % | client CPU % | others CPU % | µs/msg | × tokio-tungstenite µs/msg | problems |"
    echo "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |"
    awk -F'\t' -v order="$WS_PEERS $RUNTIMES" -v scenarios="$SCENARIOS" '
        { row[$1, $2] = $0; us[$1, $2] = $5 }
        END {
            n = split(order, names, " "); m = split(scenarios, scens, " ")
            for (j = 1; j <= m; j++) {
                s = scens[j]
                for (i = 1; i <= n; i++) {
                    if (!((names[i], s) in row)) continue
                    split(row[names[i], s], f, "\t")
                    base = us["tungstenite", s] + 0
                    ratio = (base > 0 && f[5] + 0 > 0) ? sprintf("%.2f", f[5] / base) : "-"
                    label = names[i] == "tungstenite" ? "tokio-tungstenite" : "weft " names[i]
                    sub(/; $/, "", f[8])
                    printf "| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n",
                        s, label, f[3], f[4], f[6], f[7], f[9], f[5], ratio, f[8]
                }
            }
        }' "$RESULTS"
} | tee "$OUT/table.md"
