#!/usr/bin/env bash
# Runs `itdr normalize` once on a file and reports its wall time and peak RSS, for the
# normalize bench (tests/integration/benches/normalize.rs), which generates the input.
#
#   scripts/bench-normalize.sh ITDR_BIN INPUT STREAM
#
# Prints `wall_secs=`, `max_rss_kib=`, `events=`, `errors=` lines. Peak RSS comes from
# GNU time (`/usr/bin/time -v`) when installed, else from sampling VmHWM in /proc.
set -euo pipefail

if [[ $# -ne 3 ]]; then
  echo "usage: $0 ITDR_BIN INPUT STREAM" >&2
  exit 64
fi
bin=$1 input=$2 stream=$3
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

start=$(date +%s.%N)
if [[ -x /usr/bin/time ]]; then
  /usr/bin/time -v -o "$work/time" "$bin" normalize --stream "$stream" --json \
    <"$input" >/dev/null 2>"$work/stderr" || rc=$?
  rss=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$work/time")
else
  "$bin" normalize --stream "$stream" --json <"$input" >/dev/null 2>"$work/stderr" &
  pid=$!
  rss=0
  while kill -0 "$pid" 2>/dev/null; do
    hwm=$(awk '/^VmHWM:/ {print $2}' "/proc/$pid/status" 2>/dev/null || true)
    [[ -n "$hwm" && "$hwm" -gt "$rss" ]] && rss=$hwm
    sleep 0.02
  done
  wait "$pid" || rc=$?
fi
end=$(date +%s.%N)

# Exit 2 means some records failed; the summary says how many.
if [[ ${rc:-0} -ne 0 && ${rc:-0} -ne 2 ]]; then
  echo "itdr normalize failed with exit ${rc}" >&2
  cat "$work/stderr" >&2
  exit 1
fi
summary=$(tail -n 1 "$work/stderr")
echo "wall_secs=$(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.3f", b - a }')"
echo "max_rss_kib=$rss"
echo "events=$(echo "$summary" | sed -n 's/.*"events":\([0-9]*\).*/\1/p')"
echo "errors=$(echo "$summary" | sed -n 's/.*"errors":\([0-9]*\).*/\1/p')"
