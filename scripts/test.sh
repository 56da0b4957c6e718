#!/usr/bin/env bash
# The whole test suite: every Rust test and doc test of the workspace, then the official
# Python SDK driven against onceonly-server. Installs what it needs; safe to run repeatedly.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== cargo test (workspace: unit, integration, UI and doc tests; Redis and SQLite stores)"
# The Redis tests start their own redis-server (Debian package `redis-server`).
cargo test --workspace --locked --features onceonly-runtime/redis,onceonly-runtime/sqlite

echo "== official Python SDK against onceonly-server"
bash tests/python/run.sh
