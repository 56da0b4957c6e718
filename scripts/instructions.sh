#!/usr/bin/env bash
# Instructions per request of each in-process route variant of onceonly-tower's `in_process`
# benchmark, counted by valgrind's callgrind: the same figure on a quiet or a busy machine, so
# two builds of the layer or the engine can be compared without timing noise. Each variant runs
# twice (a small and a large number of requests) and the difference is divided by the extra
# requests, so start-up work cancels out.
#
#   scripts/instructions.sh [variants, default "0 1 2 3 4 5 check-lock lease"]
#
# A number is a route variant; `check-lock` and `lease` are the embedded engine alone (one
# check-lock, or one lease and completion of what replay mode stores), called through its
# backend with no HTTP at all.
#
# Needs valgrind (Debian: apt-get install valgrind).
set -euo pipefail
cd "$(dirname "$0")/.."
variants=${*:-0 1 2 3 4 5 check-lock lease}
small=2000
large=12000
bin=$(cargo bench -p onceonly-tower --bench in_process --no-run --message-format=json 2>/dev/null |
  python3 -c 'import json,sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m["target"]["name"] == "in_process" and m.get("executable"):
        print(m["executable"])')
# The command-line options that select a variant.
options_for() {
  case $1 in
    [0-9]*) echo --only "$1" ;;
    *) echo --engine "$1" ;;
  esac
}
count() {
  # shellcheck disable=SC2046 # `options_for` prints two words on purpose
  valgrind --tool=callgrind --callgrind-out-file=/dev/null "$bin" $(options_for "$1") --rounds 1 --requests "$2" 2>&1 >/dev/null |
    sed -n 's/.*Collected : \([0-9]*\).*/\1/p'
}
echo "| variant | instructions per request |"
echo "|---|---:|"
for v in $variants; do
  # shellcheck disable=SC2046
  name=$("$bin" $(options_for "$v") --rounds 1 --requests 1 | sed -n 's/^| \([^|]*[a-z)]\) | [0-9].*/\1/p' | head -1)
  a=$(count "$v" "$small")
  b=$(count "$v" "$large")
  echo "| $name | $(( (b - a) / (large - small) )) |"
done
