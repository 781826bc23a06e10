#!/usr/bin/env bash
# Instruction counts of the hot paths (benches/benches/instructions.rs) under valgrind's callgrind,
# through gungraun (iai-callgrind's current name), each next to its peer: the HTTP/1.1 head
# exchange and a pipelined batch of 16 against httparse, a WebSocket frame against tungstenite,
# an HPACK request block against the hpack crate and h2. A count is the same on a busy machine,
# so a change of one percent shows; it is not a time (a cache miss or an atomic operation counts
# as one instruction).
#
# Installs gungraun's runner (the version of the gungraun library in Cargo.lock: they must
# match) into target/tools when it is missing, runs `cargo bench --bench instructions`, and
# prints a Markdown table: instructions per operation, weft's and the peer's, and their ratio.
#
# Usage: benches/instructions.sh            (everything: about a minute once built)
#        benches/instructions.sh hpack      (a gungraun filter: benchmarks whose path matches)
# Environment: CARGO_TARGET_DIR (where cargo builds), OUT (the raw output, default
# target/instructions/DATE-TIME.txt).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
TOOLS=$ROOT/target/tools
OUT=${OUT:-$TARGET/instructions/$(date +%Y%m%d-%H%M%S).txt}

die() { echo "instructions.sh: $*" >&2; exit 1; }
command -v valgrind >/dev/null || die "needs valgrind (apt-get install -y valgrind)"

# The runner must be the library's version exactly.
VERSION=$(awk '/^name = "gungraun"$/ { getline; gsub(/version = |"/, ""); print; exit }' "$ROOT/Cargo.lock")
[[ -n $VERSION ]] || die "gungraun is not in Cargo.lock"
RUNNER=$TOOLS/bin/gungraun-runner
# cargo install records what it installed in $TOOLS/.crates.toml.
if [[ ! -x $RUNNER ]] || ! grep -q "\"gungraun-runner $VERSION " "$TOOLS/.crates.toml" 2>/dev/null; then
    echo "== installing gungraun-runner $VERSION into $TOOLS" >&2
    cargo install --locked --quiet --root "$TOOLS" gungraun-runner --version "=$VERSION"
fi
export PATH=$TOOLS/bin:$PATH

mkdir -p "$(dirname "$OUT")"
echo "== cargo bench --bench instructions (output in $OUT)" >&2
# No baseline comparison: each run stands alone (the counts of the last run are in
# target/gungraun/ all the same).
cargo bench --quiet --manifest-path "$ROOT/Cargo.toml" -p weft-benches --bench instructions \
    -- "$@" 2>&1 | tee "$OUT" >&2

# gungraun prints each benchmark as `instructions::GROUP::FUNCTION CASE:...` followed by its
# counts; FUNCTION is `<workload>_weft` or `<workload>_<peer>`.
echo
COMMIT="$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')"
git -C "$ROOT" diff --quiet HEAD 2>/dev/null || COMMIT="$COMMIT + uncommitted changes"
echo "Instruction counts, $(date -u +%F), weft $COMMIT, gungraun $VERSION, $(valgrind --version)"
echo
echo "| workload | case | weft | peer | peer instructions | weft ÷ peer |"
echo "| --- | --- | ---: | --- | ---: | ---: |"
sed 's/\x1b\[[0-9;]*m//g' "$OUT" | awk '
    /^instructions::/ {
        split($1, path, "::"); fn = path[3]; split($2, c, ":"); kase = c[1]
        next
    }
    fn != "" && $1 == "Instructions:" {
        split($2, n, "|"); count[fn " " kase] = n[1]
        if (!((fn " " kase) in seen)) { seen[fn " " kase] = 1; order[++rows] = fn " " kase }
        fn = ""
    }
    END {
        for (i = 1; i <= rows; i++) {
            split(order[i], k, " ")
            if (k[1] !~ /_weft$/) continue
            work = k[1]; sub(/_weft$/, "", work)
            peers = 0
            for (j = 1; j <= rows; j++) {
                split(order[j], p, " ")
                if (p[2] != k[2] || p[1] == k[1] || index(p[1], work "_") != 1) continue
                peer = substr(p[1], length(work) + 2)
                printf "| %s | %s | %d | %s | %d | %.3g |\n", work, k[2], count[order[i]], peer,
                    count[order[j]], count[order[i]] / count[order[j]]
                peers++
            }
            if (peers == 0) printf "| %s | %s | %d | - | - | - |\n", work, k[2], count[order[i]]
        }
    }'
