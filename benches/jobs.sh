#!/usr/bin/env bash
# Job-queue benchmark: jobs per second through weft's queue (weft::queue::{Queue, Worker}) and
# through apalis 1.0, on the same SQLite file, the same Redis server and in memory, in one run
# (benches/peers/jobs, the `jobs-bench` binary).
#
# Per store (memory, sqlite, redis), mode (phased: enqueue N, then process N; mixed: enqueue N
# while the consumers run) and consumer count (1, 8), each library runs RUNS times, alternating;
# the table gives the medians in jobs/s and the ratio weft/apalis. The goal: ≥ 1.0× apalis on
# the SQLite and Redis rows (the memory row is extra: apalis's MemoryStorage is a channel).
#
# Not run by CI. Installs redis-server (apt-get, as root or through sudo) when it is missing;
# starts its own on a free loopback port in a temporary folder and stops it on exit.
#
# Usage: benches/jobs.sh                    (a few minutes, plus the release build)
#   RUNS=1 JOBS_SQLITE=2000 BUILD=0 benches/jobs.sh
# Environment (defaults in brackets):
#   RUNS         runs per library and scenario (the median is kept)  [3]
#   JOBS_MEMORY  jobs per run in memory                              [20000]
#   JOBS_REDIS   jobs per run on Redis (apalis-redis fails above ~8000)  [5000]
#   JOBS_SQLITE  jobs per run on SQLite                              [5000]
#   STORES       stores, comma-separated                             [memory,sqlite,redis]
#   CONSUMERS    consumer counts, comma-separated                    [1,8]
#   MODES        modes, comma-separated                              [phased,mixed]
#   BUILD        0 to use the binary already built                   [1]
#   OUT          where the table, the runs' log and redis's log go   [target/jobs/DATE-TIME]
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
RUNS=${RUNS:-3}
JOBS_MEMORY=${JOBS_MEMORY:-20000}
JOBS_REDIS=${JOBS_REDIS:-5000}
JOBS_SQLITE=${JOBS_SQLITE:-5000}
STORES=${STORES:-memory,sqlite,redis}
CONSUMERS=${CONSUMERS:-1,8}
MODES=${MODES:-phased,mixed}
BUILD=${BUILD:-1}
OUT=${OUT:-$ROOT/target/jobs/$(date +%Y%m%d-%H%M%S)}
# The peers are their own workspaces; their builds land in target/peers, as common.sh's do.
PEER_TARGET=$ROOT/target/peers
BIN=$PEER_TARGET/release/jobs-bench

die() { echo "jobs.sh: $*" >&2; exit 1; }

# Installs redis-server with apt-get when it is missing, as root or through sudo.
if ! command -v redis-server >/dev/null; then
    sudo_cmd=
    [[ $(id -u) -eq 0 ]] || sudo_cmd=sudo
    echo "== installing redis-server" >&2
    $sudo_cmd apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq --no-install-recommends redis-server
fi
for tool in redis-server redis-cli python3 timeout; do
    command -v "$tool" >/dev/null || die "needs $tool"
done

if [[ $BUILD != 0 ]]; then
    echo "== building the job benchmark (release: weft from this checkout, apalis 1.0)" >&2
    cargo build --release --quiet --manifest-path "$ROOT/benches/peers/jobs/Cargo.toml" \
        --target-dir "$PEER_TARGET"
fi
[[ -x $BIN ]] || die "$BIN is missing (run with BUILD=1)"
mkdir -p "$OUT"
COMMIT="$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')"
git -C "$ROOT" diff --quiet HEAD 2>/dev/null || COMMIT="$COMMIT + uncommitted changes"

# One temporary folder for redis's files and the SQLite file, removed on exit with the server.
WORK=$(mktemp -d "${TMPDIR:-/tmp}/weft-jobs-bench.XXXXXX")
REDIS_PID=
cleanup() {
    if [[ -n $REDIS_PID ]]; then
        kill -TERM "$REDIS_PID" 2>/dev/null || true
        for _ in $(seq 50); do
            kill -0 "$REDIS_PID" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$REDIS_PID" 2>/dev/null || true
        wait "$REDIS_PID" 2>/dev/null || true
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# A free loopback port: bound to port 0 and released (redis cannot take port 0 itself).
PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')
# No persistence (neither library needs it to run, and a snapshot mid-run would skew one).
redis-server --bind 127.0.0.1 --port "$PORT" --dir "$WORK" --save '' --appendonly no \
    --daemonize no --logfile "$OUT/redis.log" &
REDIS_PID=$!
for _ in $(seq 100); do
    redis-cli -p "$PORT" ping 2>/dev/null | grep -q PONG && break
    kill -0 "$REDIS_PID" 2>/dev/null || die "redis-server exited (see $OUT/redis.log)"
    sleep 0.1
done
redis-cli -p "$PORT" ping 2>/dev/null | grep -q PONG || die "redis-server did not answer within 10 s"

echo "== measuring (commit $COMMIT, $RUNS runs each; per-run figures in $OUT/runs.log)" >&2
# Every phase is bounded inside the binary (10 minutes); this bounds the whole run as well.
timeout 7200 "$BIN" \
    --sqlite-file "$WORK/jobs.db" \
    --redis-url "redis://127.0.0.1:$PORT/0" \
    --runs "$RUNS" \
    --jobs-memory "$JOBS_MEMORY" --jobs-redis "$JOBS_REDIS" --jobs-sqlite "$JOBS_SQLITE" \
    --stores "$STORES" --consumers "$CONSUMERS" --modes "$MODES" \
    >"$OUT/table.md" 2> >(tee "$OUT/runs.log" >&2)

echo
echo "Job queue: weft ($COMMIT) against apalis 1.0, medians of $RUNS runs (jobs/s)"
echo
cat "$OUT/table.md"
