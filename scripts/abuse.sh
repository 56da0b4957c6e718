#!/usr/bin/env bash
# Abuse run against onceonly-server on 127.0.0.1: connection floods (silent, slowloris, idle
# keep-alive, slow bodies) with /healthz probed meanwhile, fuzzed bodies, large bodies, many
# keys. Bounded in count and time (a minute once built); see onceonly-server/BENCHMARKS.md.
# Options go to the run: --silent N --slowloris N --idle N --slow-bodies N --fuzz N --keys N.
set -euo pipefail
cd "$(dirname "$0")/.."

# The run holds about 2,000 sockets on each side, plus the server's own files.
want=8192
if [ "$(ulimit -n)" != unlimited ] && [ "$(ulimit -n)" -lt "$want" ]; then
    hard=$(ulimit -Hn)
    if [ "$hard" = unlimited ] || [ "$hard" -ge "$want" ]; then
        ulimit -n "$want"
    else
        ulimit -n "$hard"
    fi
fi
echo "== ulimit -n: $(ulimit -n)"

cargo build --release -p onceonly-server --bin onceonly-server --example abuse
target="${CARGO_TARGET_DIR:-target}/release"
exec "$target/examples/abuse" --server "$target/onceonly-server" "$@"
