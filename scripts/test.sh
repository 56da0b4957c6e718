#!/usr/bin/env bash
# The whole test suite: every Rust test and doc test of the workspace, then the official
# Python SDK driven against onceonly-server. Installs what it needs; safe to run repeatedly.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== services the tests start themselves"
if ! command -v redis-server >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends redis-server >/dev/null
    # Each Redis test runs its own server on a free port: the packaged service is not needed.
    service redis-server stop >/dev/null 2>&1 || true
  else
    echo "redis-server is not installed (Debian: apt-get install redis-server): the Redis tests" \
      "will be skipped, and fail under CI=true" >&2
  fi
fi
command -v redis-server >/dev/null 2>&1 && redis-server --version

echo "== cargo test (workspace: unit, integration, UI and doc tests; Redis and SQLite stores; rig and rmcp guards)"
# The Redis tests start their own redis-server (Debian package `redis-server`).
cargo test --workspace --locked \
  --features onceonly-runtime/redis,onceonly-runtime/sqlite,onceonly-runtime/rig,onceonly-runtime/rmcp

echo "== official Python SDK against onceonly-server"
bash tests/python/run.sh
