#!/usr/bin/env bash
# Runs the official Python SDK (PyPI: onceonly-sdk), unmodified, against onceonly-server.
#
# Builds the server, starts it on a free loopback port with two test keys (one unlimited,
# one on a small plan) and tool calls allowed to 127.0.0.1 (where the governance tests serve
# their tools), runs tests/python/test_official_sdk*.py with pytest in a virtualenv under the
# cargo target directory, and stops the server. Needs python3 (with venv) and pip
# access to PyPI. Exit code: pytest's.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
TARGET="${CARGO_TARGET_DIR:-$ROOT/target}"
VENV="$TARGET/python-sdk-venv"

if [ ! -x "$VENV/bin/python" ]; then
  python3 -m venv "$VENV"
fi
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check \
  "onceonly-sdk>=3.0.4,<4" "pytest>=7"
echo "official SDK: $("$VENV/bin/python" -m pip show onceonly-sdk | sed -n 's/^Version: /onceonly-sdk /p')"

cargo build --quiet -p onceonly-server --bin onceonly-server
BIN="$TARGET/debug/onceonly-server"

WORK="$(mktemp -d)"
SERVER_PID=""
cleanup() {
  if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
    kill "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
  fi
  rm -rf "$WORK"
}
trap cleanup EXIT

KEY="once_test_$("$VENV/bin/python" -c 'import secrets; print(secrets.token_hex(12))')"
FREE_KEY="once_test_free_$("$VENV/bin/python" -c 'import secrets; print(secrets.token_hex(12))')"
printf '%s\n%s plan=free make=2 ai=1\n' "$KEY" "$FREE_KEY" > "$WORK/keys.txt"

"$BIN" --listen 127.0.0.1:0 --api-keys-file "$WORK/keys.txt" --allow-tool-host 127.0.0.1 \
  > "$WORK/stdout" 2> "$WORK/stderr" &
SERVER_PID=$!

BASE_URL=""
for _ in $(seq 1 300); do
  BASE_URL="$(sed -n 's/^onceonly-server listening on //p' "$WORK/stdout")"
  [ -n "$BASE_URL" ] && break
  if ! kill -0 "$SERVER_PID" 2>/dev/null; then
    echo "onceonly-server exited early:" >&2
    cat "$WORK/stderr" >&2
    exit 1
  fi
  sleep 0.1
done
if [ -z "$BASE_URL" ]; then
  echo "onceonly-server did not start within 30 s" >&2
  cat "$WORK/stderr" >&2
  exit 1
fi
echo "onceonly-server: $BASE_URL"

status=0
ONCEONLY_TEST_BASE_URL="$BASE_URL" ONCEONLY_TEST_API_KEY="$KEY" ONCEONLY_TEST_FREE_KEY="$FREE_KEY" \
  "$VENV/bin/python" -m pytest -q -p no:cacheprovider "$ROOT"/tests/python/test_official_sdk*.py "$@" \
  || status=$?
if [ "$status" -ne 0 ]; then
  echo "--- server log ---" >&2
  cat "$WORK/stderr" >&2
fi
exit "$status"
