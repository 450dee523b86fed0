#!/usr/bin/env bash
# Zip size per Lambda function for `make bench` (target/bench-zips.json): the arm64 packages
# `make build` writes to target/lambda/<function>/bootstrap.zip (cargo lambda build --release
# --arm64 --output-format zip).
#
# A zip is measured only when it is fresh: present and newer than every source it is built
# from (Cargo.toml, Cargo.lock, shared/, the function's crate). The functions named in
# BENCH_ZIPS_BUILD (default: all seven) are built first when their zip is stale or missing;
# the others are reported as not measured. A stale or missing zip is never given a size.
#
# Settings: VENV (the tools venv with cargo-lambda, default .tools/venv), CARGO_TARGET_DIR
# (default target/), BENCH_ZIPS_BUILD, BENCH_ZIPS_JSON (default $CARGO_TARGET_DIR/bench-zips.json).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
VENV="${VENV:-.tools/venv}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
OUT="${BENCH_ZIPS_JSON:-$CARGO_TARGET_DIR/bench-zips.json}"
FUNCTIONS=(scheduler poller poller-gcch report report-gcch actions actions-gcch)
BUILD="${BENCH_ZIPS_BUILD-${FUNCTIONS[*]}}"
LIMIT=5000000

zip_of() { echo "$CARGO_TARGET_DIR/lambda/$1/bootstrap.zip"; }

# fresh FUNCTION: the zip exists and no source it is built from is newer.
fresh() {
  local zip
  zip=$(zip_of "$1")
  [[ -s "$zip" ]] || return 1
  [[ -z "$(find Cargo.toml Cargo.lock shared "functions/$1" -newer "$zip" -type f -print -quit)" ]]
}

stale=()
for f in $BUILD; do
  fresh "$f" || stale+=("$f")
done
if ((${#stale[@]})); then
  VENV_ABS="$(cd "$(dirname "$VENV")" 2>/dev/null && pwd)/$(basename "$VENV")"
  [[ -x "$VENV_ABS/bin/cargo-lambda" ]] || { echo "$VENV/bin/cargo-lambda is missing: run \`make tools\` first" >&2; exit 2; }
  echo "building the arm64 zips of: ${stale[*]} (release, fat LTO)"
  started=$SECONDS
  args=()
  for f in "${stale[@]}"; do args+=(-p "$f"); done
  PATH="$VENV_ABS/bin:$PATH" cargo lambda build --release --arm64 --output-format zip "${args[@]}"
  echo "built in $((SECONDS - started)) s"
fi

entries=()
for f in "${FUNCTIONS[@]}"; do
  zip=$(zip_of "$f")
  if fresh "$f"; then
    bytes=$(stat -c %s "$zip")
    mb=$(awk -v b="$bytes" 'BEGIN {printf "%.3f", b / 1e6}')
    meets=false
    ((bytes <= LIMIT)) && meets=true
    printf 'zip %-13s %s MB (%s bytes)\n' "$f" "$mb" "$bytes"
    entries+=("{\"name\": \"zip.$f.size_mb\", \"value\": $mb, \"unit\": \"MB\", \"command\": \"cargo lambda build --release --arm64 --output-format zip -p $f; stat target/lambda/$f/bootstrap.zip (scripts/bench-zips.sh)\", \"target\": \"<= 5 MB\", \"meets\": $meets}")
  elif [[ -e "$zip" ]]; then
    echo "zip $f: not measured (older than its sources: run make build)"
  else
    echo "zip $f: not measured (not built: run make build)"
  fi
done
{
  echo "["
  for i in "${!entries[@]}"; do
    sep=","
    ((i == ${#entries[@]} - 1)) && sep=""
    echo "  ${entries[i]}$sep"
  done
  echo "]"
} >"$OUT"
echo "figures written to $OUT"
