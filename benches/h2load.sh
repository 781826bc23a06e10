#!/usr/bin/env bash
# HTTP/2 load benchmark: `weft echo` on each runtime against hyper 1.x's HTTP/2 server
# (benches/peers/hyper --h2), with h2load over cleartext prior knowledge (h2c) on /plaintext.
# Loopback only; every h2load run is bounded in time.
#
# As in load.sh, the server is pinned to one core and h2load (one thread) to the other
# (taskset), weft runs with --workers 1, and beside req/s the script reports the server's CPU
# time per request (user+system from /proc/PID/stat over the run): on a 2-core machine the
# client can saturate its own core before a good server does, so µs/req is the figure to
# compare, and "× hyper" is it over hyper's in this run.
#
# Each server first gets WARMUP seconds of unrecorded load; its rate there sets the measured
# run's request count (-n), so that run lasts about DURATION seconds, but never more than
# MAX_PER_CONNECTION requests per connection: weft ends a connection with GOAWAY after
# Http2Limits::max_streams_per_connection streams (100 000), and h2load does not reconnect, so
# the requests past it would count as failed. A fast server's run is then shorter.
#
# Usage: benches/h2load.sh                  (everything: about 2 minutes of h2load, plus builds)
#   RUNTIMES="mio tokio" DURATION=5 benches/h2load.sh
# Environment (defaults in brackets):
#   RUNTIMES     weft runtimes to measure, in order            [smol async-std tokio threadpool mio poll]
#   PEERS        peers to measure, run first ("" for none)     [hyper]
#   CONNS        h2load -c: connections                        [16]
#   STREAMS      h2load -m: concurrent streams per connection  [32]
#   DURATION     seconds the measured run should last          [10]
#   WARMUP       seconds of unrecorded load per server, which also sizes -n  [2]
#   MIN_REQUESTS the least -n, however slow the warm-up        [10000]
#   MAX_PER_CONNECTION  the most -n per connection (weft's max_streams_per_connection)  [100000]
#   SERVER_CPU / CLIENT_CPU  cores for the server and h2load   [0 / 1]
#   HYPER_FLAVOR current (tokio current-thread) or multi (multi-thread, 1 worker)  [current]
#   BUILD        0 to use the binaries already built           [1]
#   OUT          where h2load's and the servers' output go     [target/h2load/DATE-TIME]
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
RUNTIMES=${RUNTIMES-smol async-std tokio threadpool mio poll}
PEERS=${PEERS-hyper}
CONNS=${CONNS:-16}
STREAMS=${STREAMS:-32}
DURATION=${DURATION:-10}
WARMUP=${WARMUP:-2}
MIN_REQUESTS=${MIN_REQUESTS:-10000}
MAX_PER_CONNECTION=${MAX_PER_CONNECTION:-100000}
SERVER_CPU=${SERVER_CPU:-0}
CLIENT_CPU=${CLIENT_CPU:-1}
HYPER_FLAVOR=${HYPER_FLAVOR:-current}
BUILD=${BUILD:-1}
OUT=${OUT:-$ROOT/target/h2load/$(date +%Y%m%d-%H%M%S)}

CLK_TCK=$(getconf CLK_TCK)

die() { echo "h2load.sh: $*" >&2; exit 1; }
for tool in h2load taskset timeout awk; do
    command -v "$tool" >/dev/null || die "needs $tool (apt-get install -y nghttp2-client util-linux coreutils gawk)"
done
[[ $(nproc) -ge 2 ]] || echo "h2load.sh: only $(nproc) core: server and h2load share it, figures mean little" >&2
[[ $WARMUP -gt 0 ]] || die "WARMUP must be at least 1: its rate sizes the measured run"

# shellcheck source=benches/common.sh
source "$ROOT/benches/common.sh"
build_binaries

# hyper serves HTTP/2 (h2c prior knowledge) here.
HYPER_MODE=--h2

# run_h2load FILE SECONDS ARGS...: h2load pinned to CLIENT_CPU on SERVER_URL/plaintext, killed
# after SECONDS (+30 of slack); its output in FILE; its exit status, never fatal here.
run_h2load() {
    local file=$1 seconds=$2 rc=0
    shift 2
    timeout -k 5 $((seconds + 30)) taskset -c "$CLIENT_CPU" \
        h2load -c "$CONNS" -m "$STREAMS" "$@" "$SERVER_URL/plaintext" >"$file" 2>&1 || rc=$?
    return $rc
}

# The req/s of an h2load output ("finished in 10.00s, 12345.67 req/s, ..."), 0 when absent.
rate_of() {
    awk '/^finished in/ { sub(",", "", $4); r = $4 } END { printf "%.0f", r + 0 }' "$1"
}

RESULTS=$OUT/results.tsv
: >"$RESULTS"
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
echo "== $(date -u +%FT%TZ), load average $LOAD_BEFORE, output in $OUT" >&2

# measure NAME: the warm-up, then one measured h2load run; appends a row to RESULTS.
measure() {
    local name=$1 file=$OUT/$1.h2load
    local rate requests t0 t1 c0 c1 w0 w1 b0 b1 rc=0
    run_h2load "$OUT/$name.warmup.h2load" "$WARMUP" -D "$WARMUP" || true
    rate=$(rate_of "$OUT/$name.warmup.h2load")
    requests=$((rate * DURATION))
    ((requests >= MIN_REQUESTS)) || requests=$MIN_REQUESTS
    ((requests <= CONNS * MAX_PER_CONNECTION)) || requests=$((CONNS * MAX_PER_CONNECTION))
    c0=$(cpu_ticks "$SERVER_PID")
    b0=$(cores_busy)
    children_cpu >"$OUT/w0"
    t0=$(date +%s.%N)
    # Bounded at 6 × DURATION: a server far slower than in its warm-up shows as a timeout.
    run_h2load "$file" $((DURATION * 6)) -n "$requests" || rc=$?
    t1=$(date +%s.%N)
    b1=$(cores_busy)
    children_cpu >"$OUT/w1"
    w0=$(<"$OUT/w0") w1=$(<"$OUT/w1")
    if ! kill -0 "$SERVER_PID" 2>/dev/null; then
        printf '%s\t-\t-\t-\t-\t-\t-\t-\tserver died (see %s)\t-\n' "$name" "$OUT/$name.server.log" >>"$RESULTS"
        echo "   $name: the server died" >&2
        return 1
    fi
    c1=$(cpu_ticks "$SERVER_PID")
    # One row: name req/s requests-succeeded µs/req server-CPU% h2load-CPU% mean-ms max-ms problems others-CPU%
    awk -v name="$name" -v rc="$rc" -v asked="$requests" -v ticks=$((c1 - c0)) -v hz="$CLK_TCK" \
        -v t0="$t0" -v t1="$t1" -v w0="$w0" -v w1="$w1" -v busy=$((b1 - b0)) '
        function ms(v) {
            if (v ~ /us$/) { sub("us", "", v); return v / 1000 }
            if (v ~ /ms$/) { sub("ms", "", v); return v + 0 }
            if (v ~ /s$/)  { sub("s", "", v); return v * 1000 }
            return v + 0
        }
        /^finished in/ { sub(",", "", $4); rps = $4 }
        /^requests:/ {
            for (i = 2; i <= NF; i++) { n = $i + 0; w = $(i + 1); sub(",", "", w); count[w] = n; i++ }
        }
        /^status codes:/ { sub(",", "", $3); ok = $3 + 0 }
        /^time for request:/ { mean = ms($6); max = ms($5) }
        END {
            problems = ""
            if (rc != 0) problems = problems "h2load exit " rc "; "
            if (count["succeeded"] + 0 != asked) problems = problems count["succeeded"] + 0 " of " asked " succeeded; "
            if (count["failed"] + 0) problems = problems count["failed"] " failed; "
            if (count["errored"] + 0) problems = problems count["errored"] " errored; "
            if (count["timeout"] + 0) problems = problems count["timeout"] " timed out; "
            if (ok != count["succeeded"] + 0) problems = problems (count["succeeded"] - ok) " non-2xx; "
            done = count["succeeded"] + 0
            if (done == 0) { printf "%s\t0\t0\t-\t-\t-\t-\t-\t%sno response\t-\n", name, problems; exit }
            secs = ticks / hz; wall = t1 - t0; wcpu = w1 - w0
            others = 100 * (busy / hz - secs - wcpu) / wall
            printf "%s\t%.0f\t%d\t%.3f\t%.0f\t%.0f\t%.2f\t%.2f\t%s\t%.0f\n", name, rps, done,
                secs * 1e6 / done, 100 * secs / wall, 100 * wcpu / wall, mean, max, problems,
                others < 0 ? 0 : others
        }' "$file" >>"$RESULTS"
    tail -n1 "$RESULTS" | awk -F'\t' '{ printf "   %-9s %9s req/s  %9s requests  %7s µs/req  server %s%%  h2load %s%%  others %s%%  mean %s ms  max %s ms  %s\n",
        $1, $2, $3, $4, $5, $6, $10, $7, $8, $9 }' >&2
}

for name in $PEERS $RUNTIMES; do
    echo "== $name" >&2
    start_server "$name"
    measure "$name" || true
    stop_server
done
LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)

# The table: hyper's row first, then each runtime with its µs/req over hyper's.
{
    echo
    echo "HTTP/2 load benchmark, $(date -u +%F), weft $COMMIT"
    echo "h2load -c $CONNS -m $STREAMS (h2c prior knowledge, GET /plaintext, one thread) on CPU $CLIENT_CPU," \
        "server on CPU $SERVER_CPU (weft --workers 1; hyper $HYPER_FLAVOR-thread), about ${DURATION} s a run" \
        "(at most $MAX_PER_CONNECTION requests a connection) after ${WARMUP} s of warm-up;" \
        "load average $LOAD_BEFORE before, $LOAD_AFTER after"
    echo
    echo "| server | req/s | requests | mean ms | max ms | server CPU % | h2load CPU % | others CPU % | µs/req | × hyper µs/req | problems |"
    echo "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |"
    awk -F'\t' -v order="$PEERS $RUNTIMES" '
        { row[$1] = $0; us[$1] = $4 }
        END {
            n = split(order, names, " ")
            for (i = 1; i <= n; i++) {
                if (!(names[i] in row)) continue
                split(row[names[i]], f, "\t")
                ratio = (("hyper" in us) && us["hyper"] + 0 > 0 && f[4] + 0 > 0) ? sprintf("%.2f", f[4] / us["hyper"]) : "-"
                sub(/; $/, "", f[9])
                printf "| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n",
                    names[i], f[2], f[3], f[7], f[8], f[5], f[6], f[10], f[4], ratio, f[9]
            }
        }' "$RESULTS"
} | tee "$OUT/table.md"
