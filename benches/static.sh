#!/usr/bin/env bash
# Static-file benchmark: `weft serve` against nginx (the Debian package), both serving the same
# temporary folder on loopback, wrk asking each for a 1 KiB and a 1 MiB file in one run.
#
# Equal footing: nginx with one worker process and weft with --workers 1, each pinned to
# SERVER_CPU (taskset), wrk pinned to CLIENT_CPU with one thread; no access log on either
# (nginx `access_log off`, weft WEFT_LOG=warn); nginx with sendfile, tcp_nopush, tcp_nodelay and
# open_file_cache (weft serve has its own, on by default). Reported per server and file: req/s,
# the server's CPU time per request (user + system from /proc/PID/stat over the run, every nginx
# process summed: the master is idle), the ratios weft/nginx, and wrk's own CPU per request. The goal: weft ≥ 1.0× nginx's req/s and ≤ 1.0× its µs/req on both.
#
# Not run by CI. Needs root or sudo the first time, to install nginx and wrk (apt-get).
#
# Usage: benches/static.sh                 (about 1 minute of wrk, plus the release build)
#   DURATION=5 BUILD=0 benches/static.sh
# Environment (defaults in brackets):
#   DURATION    seconds per wrk run                           [10]
#   WARMUP      seconds of unrecorded load per server and file [2]
#   CONNECTIONS wrk's connections                             [64]
#   RUNTIME     weft's runtime (mio is `weft serve`'s default) [mio]
#   SERVER_CPU / CLIENT_CPU  cores for the servers and wrk    [0 / 1]
#   BUILD       0 to use the weft binary already built        [1]
#   OUT         where wrk's and the servers' output go        [target/static/DATE-TIME]
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DURATION=${DURATION:-10}
WARMUP=${WARMUP:-2}
CONNECTIONS=${CONNECTIONS:-64}
RUNTIME=${RUNTIME:-mio}
SERVER_CPU=${SERVER_CPU:-0}
CLIENT_CPU=${CLIENT_CPU:-1}
BUILD=${BUILD:-1}
OUT=${OUT:-$ROOT/target/static/$(date +%Y%m%d-%H%M%S)}
# common.sh's build: weft only, no peer.
RUNTIMES=$RUNTIME
PEERS=
CLK_TCK=$(getconf CLK_TCK)
NGINX=${NGINX:-/usr/sbin/nginx}

die() { echo "static.sh: $*" >&2; exit 1; }

# Installs what is missing (nginx, wrk) with apt-get, as root or through sudo.
install_missing() {
    local -a missing=()
    [[ -x $NGINX ]] || missing+=(nginx)
    command -v wrk >/dev/null || missing+=(wrk)
    [[ ${#missing[@]} -eq 0 ]] && return 0
    local sudo_cmd=
    [[ $(id -u) -eq 0 ]] || sudo_cmd=sudo
    echo "== installing ${missing[*]}" >&2
    $sudo_cmd apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq --no-install-recommends "${missing[@]}"
    # The package's own nginx (a systemd unit, where there is one) is not the one measured.
    $sudo_cmd systemctl stop nginx 2>/dev/null || true
}
install_missing
for tool in wrk taskset timeout awk python3 pgrep curl; do
    command -v "$tool" >/dev/null || die "needs $tool"
done
[[ -x $NGINX ]] || die "$NGINX is missing"
[[ $(nproc) -ge 2 ]] || echo "static.sh: only $(nproc) core: servers and wrk share it" >&2

# shellcheck source=benches/common.sh
source "$ROOT/benches/common.sh"
build_binaries

# The folder both serve: random bytes, so nothing is compressible.
SITE=$OUT/site
mkdir -p "$SITE"
head -c 1024 /dev/urandom >"$SITE/1k.bin"
head -c $((1024 * 1024)) /dev/urandom >"$SITE/1m.bin"
# nginx's worker may run as another user (when started as root): it must read the folder.
chmod -R a+rX "$OUT"

# A free loopback port (closed again at once; nginx takes it right after).
free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# Writes nginx's configuration for PORT: one worker, the usual static-file settings.
nginx_conf() {
    local port=$1 user_line=
    [[ $(id -u) -eq 0 ]] && user_line="user $(id -un);"
    cat <<EOF
$user_line
worker_processes 1;
pid $OUT/nginx.pid;
error_log $OUT/nginx.error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    sendfile on;
    tcp_nopush on;
    tcp_nodelay on;
    keepalive_requests 1000000;
    keepalive_timeout 75s;
    open_file_cache max=1000 inactive=60s;
    open_file_cache_valid 60s;
    types { application/octet-stream bin; }
    default_type application/octet-stream;
    client_body_temp_path $OUT/nginx-tmp/body;
    proxy_temp_path $OUT/nginx-tmp/proxy;
    fastcgi_temp_path $OUT/nginx-tmp/fastcgi;
    uwsgi_temp_path $OUT/nginx-tmp/uwsgi;
    scgi_temp_path $OUT/nginx-tmp/scgi;
    server {
        listen 127.0.0.1:$port;
        root $SITE;
    }
}
EOF
}

# start_nginx: nginx (master and its one worker) pinned to SERVER_CPU; sets SERVER_PID, SERVER_URL.
start_nginx() {
    local port
    port=$(free_port)
    mkdir -p "$OUT/nginx-tmp"
    nginx_conf "$port" >"$OUT/nginx.conf"
    taskset -c "$SERVER_CPU" "$NGINX" -p "$OUT" -c "$OUT/nginx.conf" -g 'daemon off;' \
        >"$OUT/nginx.server.log" 2>&1 </dev/null &
    SERVER_PID=$!
    SERVER_URL=http://127.0.0.1:$port
    wait_until_serving nginx "$OUT/nginx.server.log"
}

# start_weft: `weft serve --workers 1` pinned to SERVER_CPU; sets SERVER_PID and SERVER_URL.
start_weft() {
    local log=$OUT/weft.server.log
    WEFT_LOG=warn taskset -c "$SERVER_CPU" "$WEFT_BIN" serve "$SITE" --runtime "$RUNTIME" \
        --workers 1 --listen 127.0.0.1:0 >"$log" 2>&1 </dev/null &
    SERVER_PID=$!
    SERVER_URL=
    for _ in $(seq 100); do
        SERVER_URL=$(grep -o -m1 ' on http://[^ ]*' "$log" | sed 's/^ on //; s#/$##') || true
        [[ -n $SERVER_URL ]] && break
        sleep 0.1
    done
    [[ -n $SERVER_URL ]] || { cat "$log" >&2; die "weft did not print its address within 10 s"; }
    wait_until_serving weft "$log"
}

# wait_until_serving NAME LOG: up to 10 s for the server to answer the 1 KiB file.
wait_until_serving() {
    for _ in $(seq 100); do
        curl -fsS -o /dev/null --max-time 2 "$SERVER_URL/1k.bin" 2>/dev/null && return 0
        kill -0 "$SERVER_PID" 2>/dev/null || break
        sleep 0.1
    done
    cat "$2" >&2
    die "$1 does not answer on $SERVER_URL"
}

# The CPU ticks of the server: its process and its children (nginx's worker).
server_ticks() {
    local total=0 pid
    for pid in "$SERVER_PID" $(pgrep -P "$SERVER_PID"); do
        [[ -r /proc/$pid/stat ]] && total=$((total + $(cpu_ticks "$pid")))
    done
    echo "$total"
}

RESULTS=$OUT/results.tsv
: >"$RESULTS"
echo "== $(date -u +%FT%TZ), load average $(cut -d' ' -f1-3 /proc/loadavg), output in $OUT" >&2

# measure NAME FILE: one wrk run; appends `name file req/s µs/req problems wrk-µs/req` to
# RESULTS. wrk's own CPU per request (user + system, from the shell's `times` around the run)
# tells whether the client, not the server, set the pace.
measure() {
    local name=$1 file=$2 log=$OUT/$1.$2.wrk c0 c1 rc=0
    c0=$(server_ticks)
    children_cpu >"$OUT/client0"
    timeout -k 5 $((DURATION + 30)) taskset -c "$CLIENT_CPU" \
        wrk -t1 -c"$CONNECTIONS" -d"${DURATION}s" "$SERVER_URL/$file" >"$log" 2>&1 || rc=$?
    children_cpu >"$OUT/client1"
    kill -0 "$SERVER_PID" 2>/dev/null || die "$name died during $file (see $OUT)"
    c1=$(server_ticks)
    awk -v name="$name" -v file="$file" -v rc="$rc" -v ticks=$((c1 - c0)) -v hz="$CLK_TCK" \
        -v client="$(awk 'NR == FNR { a = $1; next } { print $1 - a }' "$OUT/client0" "$OUT/client1")" '
        /requests in/ { reqs = $1 }
        /^Requests\/sec:/ { rps = $2 }
        /Socket errors:/ { sub(/^ *Socket errors: */, ""); problems = problems "socket errors: " $0 "; " }
        /Non-2xx or 3xx responses:/ { problems = problems $NF " non-2xx/3xx; " }
        END {
            if (rc != 0) problems = problems "wrk exit " rc "; "
            if (reqs + 0 == 0) { printf "%s\t%s\t0\t-\t%sno response\t-\n", name, file, problems; exit }
            printf "%s\t%s\t%.0f\t%.2f\t%s\t%.2f\n", name, file, rps, ticks / hz * 1e6 / reqs,
                problems, client * 1e6 / reqs
        }' "$log" >>"$RESULTS"
    tail -n1 "$RESULTS" | awk -F'\t' '{ printf "   %-6s %-7s %9s req/s  %8s µs/req  wrk %8s µs/req  %s\n", $1, $2, $3, $4, $6, $5 }' >&2
}

for name in nginx weft; do
    echo "== $name" >&2
    "start_$name"
    for file in 1k.bin 1m.bin; do
        [[ $WARMUP == 0 ]] || timeout -k 5 $((WARMUP + 30)) taskset -c "$CLIENT_CPU" \
            wrk -t1 -c"$CONNECTIONS" -d"${WARMUP}s" "$SERVER_URL/$file" >/dev/null 2>&1 || true
        measure "$name" "$file"
    done
    stop_server
done

{
    echo
    echo "Static files, $(date -u +%F), weft $COMMIT ($RUNTIME, --workers 1) vs $("$NGINX" -v 2>&1 | sed 's/.*: //') (1 worker)"
    echo "servers on CPU $SERVER_CPU, wrk -t1 -c$CONNECTIONS on CPU $CLIENT_CPU, ${DURATION} s a run"
    echo
    echo "| file | nginx req/s | weft req/s | weft/nginx req/s | nginx µs/req | weft µs/req | weft/nginx µs/req | wrk µs/req (nginx / weft) |"
    echo "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
    awk -F'\t' '
        { rps[$1, $2] = $3; us[$1, $2] = $4; client[$1, $2] = $6 }
        function ratio(a, b) { return (b + 0 > 0 && a + 0 > 0) ? sprintf("%.2f", a / b) : "-" }
        END {
            split("1k.bin 1m.bin", files, " ")
            for (i = 1; i <= 2; i++) {
                f = files[i]
                printf "| %s | %s | %s | %s | %s | %s | %s | %s / %s |\n", f, rps["nginx", f],
                    rps["weft", f], ratio(rps["weft", f], rps["nginx", f]), us["nginx", f],
                    us["weft", f], ratio(us["weft", f], us["nginx", f]), client["nginx", f],
                    client["weft", f]
            }
        }' "$RESULTS"
} | tee "$OUT/table.md"
