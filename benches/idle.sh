#!/usr/bin/env bash
# Idle keep-alive memory: CONNS (10 000) connections to `weft echo` on each runtime (and to the
# hyper peer), one request on each, then held idle; reports the server's RSS (VmRSS) with them
# open. Goals: the mio runtime within 64 MiB (issue 3); at most 2 KiB a connection on the async
# runtimes (issue 15; the "per connection" column). Loopback only, bounded in time (about 15 s
# a server: the connections stay until weft's 5 s keep-alive timeout closes them).
#
# Usage: benches/idle.sh
#   RUNTIMES=mio PEERS= benches/idle.sh
# Environment (defaults in brackets):
#   RUNTIMES   weft runtimes, in order                [mio smol async-std tokio threadpool poll]
#   PEERS      peers ("" for none)                    [hyper]
#   CONNS      connections per server                 [10000]
#   WORKERS    weft's --workers ("" for its default, one per CPU)  [""]
#   GOAL_MIB   the RSS a weft runtime must stay within, flagged in the table  [64]
#   BUILD      0 to use the binaries already built    [1]
#   OUT        where the servers' and client's output go  [target/idle/DATE-TIME]
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
RUNTIMES=${RUNTIMES-mio smol async-std tokio threadpool poll}
PEERS=${PEERS-hyper}
CONNS=${CONNS:-10000}
WORKERS=${WORKERS:-}
GOAL_MIB=${GOAL_MIB:-64}
BUILD=${BUILD:-1}
OUT=${OUT:-$ROOT/target/idle/$(date +%Y%m%d-%H%M%S)}

CLIENT=$ROOT/benches/peers/idle_clients.py

die() { echo "idle.sh: $*" >&2; exit 1; }
command -v python3 >/dev/null || die "needs python3"
# The server and the client each need CONNS descriptors and more; both inherit this limit.
ulimit -n "$(ulimit -Hn)"
[[ $(ulimit -n) == unlimited || $(ulimit -n) -gt $((CONNS + 100)) ]] ||
    die "RLIMIT_NOFILE hard limit $(ulimit -Hn) is too low for $CONNS connections"

# shellcheck source=benches/common.sh
source "$ROOT/benches/common.sh"
build_binaries

start_server() {
    local name=$1 log=$OUT/$1.server.log
    local -a workers=()
    [[ -z $WORKERS ]] || workers=(--workers "$WORKERS")
    case $name in
        hyper) "$HYPER_BIN" --listen 127.0.0.1:0 >"$log" 2>&1 </dev/null & ;;
        *) "$WEFT_BIN" echo --runtime "$name" --listen 127.0.0.1:0 "${workers[@]}" \
            >"$log" 2>&1 </dev/null & ;;
    esac
    SERVER_PID=$!
    wait_for_address "$name" "$log"
}

RESULTS=$OUT/results.txt
: >"$RESULTS"
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
echo "== $(date -u +%FT%TZ), load average $LOAD_BEFORE, output in $OUT" >&2
for name in $PEERS $RUNTIMES; do
    echo "== $name" >&2
    start_server "$name"
    sleep 0.3 # let it settle before the baseline
    # The client's own limit on time: 10 s to connect each, 20 s for the responses, 12 s to close.
    timeout -k 5 120 python3 "$CLIENT" --pid "$SERVER_PID" --url "$SERVER_URL" --conns "$CONNS" \
        2>&1 | tee "$OUT/$name.client.log" >&2 || true
    line=$(grep '^RESULT ' "$OUT/$name.client.log" || true)
    if [[ -z $line ]]; then
        echo "$name RESULT failed" >>"$RESULTS"
    else
        echo "$name $line" >>"$RESULTS"
    fi
    kill -0 "$SERVER_PID" 2>/dev/null || echo "$name died" >>"$RESULTS"
    stop_server
done

{
    echo
    echo "Idle keep-alive connections, $(date -u +%F), weft $COMMIT"
    echo "$CONNS connections, one GET /plaintext each, then idle; weft --workers ${WORKERS:-default};" \
        "load average $LOAD_BEFORE before"
    echo
    echo "| server | answered | still open | RSS before | RSS with them open | peak (VmHWM) | RSS after they close | per connection | within $GOAL_MIB MiB (the goal is for mio) |"
    echo "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |"
    awk -v goal="$GOAL_MIB" '
        $2 != "RESULT" { printf "| %s | - | - | - | - | - | - | - | %s |\n", $1, $2 " " $3; next }
        {
            delete v
            for (i = 3; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] }
            mib = v["rss_open_kib"] / 1024
            per = (v["rss_open_kib"] - v["rss_base_kib"]) * 1024 / v["conns"]
            verdict = ($1 == "hyper") ? "-" : (mib <= goal && v["held"] == v["conns"] ? "yes" : "no")
            printf "| %s | %d/%d | %d | %.1f MiB | %.1f MiB | %.1f MiB | %.1f MiB (%d closed) | %.0f B | %s |\n",
                $1, v["ok"], v["conns"], v["held"], v["rss_base_kib"] / 1024, mib, v["hwm_kib"] / 1024,
                v["rss_after_kib"] / 1024, v["closed"], per, verdict
        }' "$RESULTS"
} | tee "$OUT/table.md"
