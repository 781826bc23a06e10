#!/usr/bin/env bash
# Load benchmark: `weft echo` on each runtime against a hyper 1.x hello world (benches/peers/hyper),
# with wrk on /plaintext. Loopback only; every wrk run is bounded by DURATION (+30 s of slack).
#
# The server is pinned to one core and wrk to the other (taskset), weft runs with --workers 1, and
# beside req/s and p99 the script reports the server's CPU time per request (user+system from
# /proc/PID/stat over the run): on a 2-core machine wrk can saturate its own core before a good
# server does, so µs/req is the figure to compare, and "×hyper" is it over hyper's in this run.
#
# The framework benchmark (scenario json, servers in FRAMEWORKS, benches/peers/frameworks): POST
# /users/42 with a JSON body through a route with a path parameter and two middlewares, on weft's
# App, a bare weft Service, axum and actix-web; its "×" column is over axum's µs/req.
#
# Usage: benches/load.sh                  (everything: about 4 minutes of wrk, plus the builds)
#   RUNTIMES="mio tokio" DURATION=5 benches/load.sh
#   PEERS="hyper hyper-noflush may_minihttp" RUNTIMES=mio DURATION=3 benches/load.sh
#   FRAMEWORKS="axum actix weft-app weft-service" RUNTIMES= PEERS= DURATION=5 benches/load.sh
# Environment (defaults in brackets):
#   RUNTIMES    weft runtimes to measure, in order            [smol async-std tokio threadpool mio poll]
#   PEERS       peers to measure, run first ("" for none)     [hyper]
#               any of hyper (pipeline_flush on), hyper-noflush (hyper's default, off) and
#               may_minihttp (benches/peers/may_minihttp, one may worker)
#   SCENARIOS   any of c64 c256 pipe16                        [c64 c256 pipe16]
#   FRAMEWORKS  framework servers, each run on scenario json only (wrk -t1 -c64, POST)
#               any of axum actix weft-app weft-service, run after the others    [""]
#   DURATION    seconds per wrk run                           [10]
#   WARMUP      seconds of unrecorded -c64 load per server before its runs (0: none)  [2]
#   PIPE_DEPTH  requests per write in pipe16                  [16]
#   PIPE_CONNS  connections in pipe16                         [256]
#   SERVER_CPU / CLIENT_CPU  cores for the server and wrk     [0 / 1]
#   HYPER_FLAVOR  current (tokio current-thread) or multi (multi-thread, 1 worker)  [current]
#   BUILD       0 to use the binaries already built           [1]
#   OUT         where wrk's and the servers' output go        [target/load/DATE-TIME]
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
RUNTIMES=${RUNTIMES-smol async-std tokio threadpool mio poll}
PEERS=${PEERS-hyper}
FRAMEWORKS=${FRAMEWORKS-}
SCENARIOS=${SCENARIOS:-c64 c256 pipe16}
DURATION=${DURATION:-10}
WARMUP=${WARMUP:-2}
PIPE_DEPTH=${PIPE_DEPTH:-16}
PIPE_CONNS=${PIPE_CONNS:-256}
SERVER_CPU=${SERVER_CPU:-0}
CLIENT_CPU=${CLIENT_CPU:-1}
HYPER_FLAVOR=${HYPER_FLAVOR:-current}
BUILD=${BUILD:-1}
OUT=${OUT:-$ROOT/target/load/$(date +%Y%m%d-%H%M%S)}

PIPELINE_LUA=$ROOT/benches/peers/pipeline.lua
POST_JSON_LUA=$ROOT/benches/peers/post_json.lua
CLK_TCK=$(getconf CLK_TCK)

die() { echo "load.sh: $*" >&2; exit 1; }
for tool in wrk taskset timeout awk; do
    command -v "$tool" >/dev/null || die "needs $tool (apt-get install -y wrk util-linux coreutils gawk)"
done
[[ $(nproc) -ge 2 ]] || echo "load.sh: only $(nproc) core: server and wrk share it, figures mean little" >&2
for s in $SCENARIOS; do
    case $s in c64 | c256 | pipe16) ;; *) die "unknown scenario $s (c64 c256 pipe16)" ;; esac
done

# shellcheck source=benches/common.sh
source "$ROOT/benches/common.sh"
build_binaries

# wrk_args SCENARIO: wrk's arguments for it, URL placed by the caller at the end.
wrk_args() {
    case $1 in
        c64) echo "-t1 -c64" ;;
        c256) echo "-t1 -c256" ;;
        pipe16) echo "-t1 -c$PIPE_CONNS -s $PIPELINE_LUA" ;;
        json) echo "-t1 -c64 -s $POST_JSON_LUA" ;;
    esac
}

# target SCENARIO: the path wrk asks for.
target() {
    case $1 in
        json) echo /users/42 ;;
        *) echo /plaintext ;;
    esac
}

# scenarios NAME: what server NAME runs (framework servers: json; the others: SCENARIOS).
scenarios() {
    case " $FRAMEWORKS " in
        *" $1 "*) echo json ;;
        *) echo "$SCENARIOS" ;;
    esac
}

RESULTS=$OUT/results.tsv
: >"$RESULTS"
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
echo "== $(date -u +%FT%TZ), load average $LOAD_BEFORE, output in $OUT" >&2

# measure NAME SCENARIO: one wrk run against the server started for NAME; appends to RESULTS.
measure() {
    local name=$1 scn=$2 file=$OUT/$1.$2.wrk
    local -a args extra=()
    read -r -a args <<<"$(wrk_args "$scn")"
    [[ $scn == pipe16 ]] && extra=(-- "$PIPE_DEPTH")
    local t0 t1 c0 c1 w0 w1 b0 b1 rc=0
    c0=$(cpu_ticks "$SERVER_PID")
    b0=$(cores_busy)
    children_cpu >"$OUT/w0"
    t0=$(date +%s.%N)
    timeout -k 5 $((DURATION + 30)) taskset -c "$CLIENT_CPU" \
        wrk "${args[@]}" -d"${DURATION}s" --latency "$SERVER_URL$(target "$scn")" "${extra[@]}" \
        >"$file" 2>&1 || rc=$?
    t1=$(date +%s.%N)
    b1=$(cores_busy)
    children_cpu >"$OUT/w1"
    w0=$(<"$OUT/w0") w1=$(<"$OUT/w1")
    if ! kill -0 "$SERVER_PID" 2>/dev/null; then
        printf '%s\t%s\t-\t-\t-\t-\t-\tserver died (see %s)\t-\t-\n' "$name" "$scn" "$OUT/$name.server.log" >>"$RESULTS"
        echo "   $name $scn: the server died" >&2
        return 1
    fi
    c1=$(cpu_ticks "$SERVER_PID")
    # One row: name scenario req/s p99(ms) µs/req server-CPU% wrk-CPU% problems max(ms) others-CPU%
    # wrk's percentiles are wrong when pipelined: its coordinated-omission correction assumes one
    # request per write (wg/wrk#236), so pipe16 reports no p99; its max is a real sample.
    awk -v name="$name" -v scn="$scn" -v rc="$rc" -v ticks=$((c1 - c0)) -v hz="$CLK_TCK" \
        -v t0="$t0" -v t1="$t1" -v w0="$w0" -v w1="$w1" -v busy=$((b1 - b0)) '
        function ms(v) {
            if (v ~ /us$/) { sub("us", "", v); return v / 1000 }
            if (v ~ /ms$/) { sub("ms", "", v); return v + 0 }
            if (v ~ /m$/)  { sub("m", "", v); return v * 60000 }
            if (v ~ /s$/)  { sub("s", "", v); return v * 1000 }
            return v + 0
        }
        /requests in/ { reqs = $1 }
        /^Requests\/sec:/ { rps = $2 }
        /^ +99%/ { p99 = ms($2) }
        /^ +Latency +[0-9]/ { max = ms($4) }
        /Socket errors:/ { sub(/^ *Socket errors: */, ""); problems = problems "socket errors: " $0 "; " }
        /Non-2xx or 3xx responses:/ { problems = problems $NF " non-2xx/3xx; " }
        END {
            if (rc != 0) problems = problems "wrk exit " rc "; "
            if (reqs + 0 == 0) { printf "%s\t%s\t0\t-\t-\t-\t-\t%sno response\t-\t-\n", name, scn, problems; exit }
            secs = ticks / hz; wall = t1 - t0; wcpu = w1 - w0
            others = 100 * (busy / hz - secs - wcpu) / wall
            printf "%s\t%s\t%.0f\t%s\t%.3f\t%.0f\t%.0f\t%s\t%.2f\t%.0f\n", name, scn, rps,
                scn == "pipe16" ? "-" : sprintf("%.2f", p99),
                secs * 1e6 / reqs, 100 * secs / wall, 100 * wcpu / wall, problems, max,
                others < 0 ? 0 : others
        }' "$file" >>"$RESULTS"
    tail -n1 "$RESULTS" | awk -F'\t' '{ printf "   %-9s %-7s %9s req/s  p99 %6s ms  max %7s ms  %7s µs/req  server %s%%  wrk %s%%  others %s%%  %s\n",
        $1, $2, $3, $4, $9, $5, $6, $7, $10, $8 }' >&2
}

for name in $PEERS $RUNTIMES $FRAMEWORKS; do
    echo "== $name" >&2
    start_server "$name"
    if [[ $WARMUP != 0 ]]; then
        # The framework servers warm up on their own scenario (they answer nothing else).
        warm=c64 warm_args=()
        [[ $(scenarios "$name") == json ]] && warm=json warm_args=(-s "$POST_JSON_LUA")
        timeout -k 5 $((WARMUP + 30)) taskset -c "$CLIENT_CPU" \
            wrk -t1 -c64 "${warm_args[@]}" -d"${WARMUP}s" "$SERVER_URL$(target "$warm")" \
            >"$OUT/$name.warmup.wrk" 2>&1 || true
    fi
    for scn in $(scenarios "$name"); do
        measure "$name" "$scn" || break
    done
    stop_server
done
LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)

# The table: per scenario, the peers' rows first, then each runtime with its µs/req over hyper's
# (and over may_minihttp's, when it ran); for json, axum's row first, then the other frameworks
# with their µs/req over axum's.
{
    echo
    echo "Load benchmark, $(date -u +%F), weft $COMMIT"
    echo "server on CPU $SERVER_CPU (weft --workers 1; hyper $HYPER_FLAVOR-thread; may_minihttp 1 worker), wrk -t1 on CPU $CLIENT_CPU," \
        "${DURATION} s a run; pipe16 = $PIPE_CONNS connections, $PIPE_DEPTH requests a write;" \
        "load average $LOAD_BEFORE before, $LOAD_AFTER after"
    echo
    echo "| scenario | server | req/s | p99 ms | max ms | server CPU % | wrk CPU % | others CPU % | µs/req | × hyper µs/req (json: × axum) | × may_minihttp µs/req | problems |"
    echo "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |"
    all_scenarios=$SCENARIOS
    [[ -z $FRAMEWORKS ]] || all_scenarios="$all_scenarios json"
    for scn in $all_scenarios; do
        base=hyper
        [[ $scn == json ]] && base=axum
        awk -F'\t' -v scn="$scn" -v base="$base" -v order="$PEERS $RUNTIMES $FRAMEWORKS" '
            function over(b, us_row) {
                return ((b in us) && us[b] + 0 > 0 && us_row + 0 > 0) ? sprintf("%.2f", us_row / us[b]) : "-"
            }
            $2 == scn { row[$1] = $0; us[$1] = $5 }
            END {
                n = split(order, names, " ")
                for (i = 1; i <= n; i++) {
                    if (!(names[i] in row)) continue
                    split(row[names[i]], f, "\t")
                    sub(/; $/, "", f[8])
                    printf "| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n",
                        scn, names[i], f[3], f[4], f[9], f[6], f[7], f[10], f[5], over(base, f[5]),
                        over("may_minihttp", f[5]), f[8]
                }
            }' "$RESULTS"
    done
} | tee "$OUT/table.md"
