#!/usr/bin/env bash
# Smoke test of the three Lambda functions under the Lambda runtime emulation of
# `cargo lambda watch`, invoked with `cargo lambda invoke`, against moto (DynamoDB, SQS,
# Secrets Manager) and the Microsoft simulator (`itdr sim`), everything on 127.0.0.1. Checks
# the responses, then measures the poller's cold-start init time and its peak resident memory
# on a job whose Graph page holds 1,000 events. See infra/README.md, "Smoke test of the
# functions".
#
# Needs `make tools` (moto_server and cargo-lambda in .tools/venv). Settings (environment):
#   SMOKE_PROFILE      release (default: the optimised profile the Lambda zips are built with),
#                      bench-run (optimised without fat LTO: `make bench`) or debug
#   SMOKE_NO_BUILD     1: build nothing, run the binaries already in $CARGO_TARGET_DIR/<profile>
#                      (and SMOKE_ITDR, default the debug itdr, as the simulator)
#   SMOKE_ITDR         the itdr binary that runs the simulator; when set and present, the
#                      debug itdr is not built (`make bench-poller` passes the bench-run one)
#   SMOKE_BENCH_JSON   if set, the poller's figures (init_ms, peak RSS) are written there in the
#                      bench results format (`make bench-poller`)
#   SMOKE_COLD_STARTS  poller cold starts measured (default 5)
#   SMOKE_OUT          logs, events and summary (default out/lambda-smoke)
#   SMOKE_INVOKE_TIMEOUT  seconds one invocation may take (default 600)
#   CARGO_TARGET_DIR   as for cargo (default target/)
# Exits non-zero when a check fails; always stops every process it started.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
VENV="${VENV:-.tools/venv}"
VENV_ABS="$(cd "$(dirname "$VENV")" 2>/dev/null && pwd)/$(basename "$VENV")"
PY="$VENV_ABS/bin/python"
PROFILE="${SMOKE_PROFILE:-release}"
COLD_STARTS="${SMOKE_COLD_STARTS:-5}"
OUT="${SMOKE_OUT:-out/lambda-smoke}"
PAGE_EVENTS=1000
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
export PATH="$VENV_ABS/bin:$PATH"
# Nothing here may reach a real AWS endpoint or the instance metadata service.
export AWS_EC2_METADATA_DISABLED=true

case "$PROFILE" in
  release) PROFILE_FLAG=(--release) ;;
  bench-run) PROFILE_FLAG=(--profile bench-run) ;;
  debug) PROFILE_FLAG=() ;;
  *) echo "SMOKE_PROFILE must be release, bench-run or debug" >&2; exit 2 ;;
esac
[[ "$COLD_STARTS" =~ ^[1-9][0-9]*$ ]] || { echo "SMOKE_COLD_STARTS must be a positive number" >&2; exit 2; }
for tool in moto_server cargo-lambda python; do
  [[ -x "$VENV_ABS/bin/$tool" ]] || { echo "$VENV/bin/$tool is missing: run \`make tools\` first" >&2; exit 2; }
done

STARTED=$SECONDS
rm -rf "$OUT"
mkdir -p "$OUT/events"
chmod 700 "$OUT"
OUT="$(cd "$OUT" && pwd)"

PIDS=()
FAILED=0

log() { printf '[smoke %3ds] %s\n' "$((SECONDS - STARTED))" "$*"; }
fail() { log "FAIL: $*"; FAILED=1; }
die() { log "FAIL: $*"; exit 1; }

# A process and all its descendants, deepest first.
descendants() {
  local p
  for p in $(pgrep -P "$1" 2>/dev/null || true); do
    descendants "$p"
  done
  echo "$1"
}

# Stops a process this script started, with everything it spawned.
stop_tree() {
  local pid="$1" procs p i alive
  kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null || true; return 0; }
  procs=$(descendants "$pid")
  for p in $procs; do kill -TERM "$p" 2>/dev/null || true; done
  for ((i = 0; i < 50; i++)); do
    alive=0
    for p in $procs; do kill -0 "$p" 2>/dev/null && alive=1; done
    ((alive)) || break
    sleep 0.1
  done
  for p in $procs; do kill -KILL "$p" 2>/dev/null || true; done
  wait "$pid" 2>/dev/null || true
}

cleanup() {
  local rc=$? i
  trap - EXIT INT TERM
  # Newest first: the functions before the runtime API they talk to.
  for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do stop_tree "${PIDS[i]}"; done
  if ((rc != 0 || FAILED)); then
    log "smoke test FAILED (logs in ${SMOKE_OUT:-out/lambda-smoke})"
    exit 1
  fi
  exit 0
}
trap cleanup EXIT
trap 'exit 130' INT TERM

helper() { "$PY" scripts/lambda_smoke.py "$@"; }

free_port() {
  "$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# wait_for DESCRIPTION SECONDS COMMAND...: polls COMMAND until it succeeds.
wait_for() {
  local what="$1" limit="$2" i
  shift 2
  for ((i = 0; i < limit * 10; i++)); do
    "$@" >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  die "$what did not come up within ${limit}s"
}

# json_get PATH < JSON: a (dotted) field of a JSON document.
json_get() {
  "$PY" -c 'import json, sys
v = json.load(sys.stdin)
for k in sys.argv[1].split("."):
    v = v[k]
print(json.dumps(v, separators=(",", ":")) if isinstance(v, (dict, list)) else v)' "$1"
}

# log_field LOG MESSAGE FIELD: FIELD of every JSON log line with that message, one per line.
log_field() {
  "$PY" - "$@" <<'EOF'
import json, sys
path, message, field = sys.argv[1:]
for line in open(path, encoding="utf-8", errors="replace"):
    line = line.strip()
    if not line.startswith("{"):
        continue
    try:
        fields = json.loads(line).get("fields", {})
    except ValueError:
        continue
    if fields.get("message") == message and field in fields:
        v = fields[field]
        print(json.dumps(v) if isinstance(v, bool) else v)
EOF
}

# ---------------------------------------------------------------------------------------------
ITDR="${SMOKE_ITDR:-$CARGO_TARGET_DIR/debug/itdr}"
BIN_DIR="$CARGO_TARGET_DIR/$PROFILE"
if [[ "${SMOKE_NO_BUILD:-0}" == 1 ]]; then
  log "SMOKE_NO_BUILD=1: the binaries already in $BIN_DIR, the simulator from $ITDR"
  for b in "$ITDR" "$BIN_DIR/scheduler" "$BIN_DIR/poller" "$BIN_DIR/poller-gcch"; do
    [[ -x "$b" ]] || die "$b is missing (SMOKE_NO_BUILD=1 builds nothing)"
  done
else
  if [[ -n "${SMOKE_ITDR:-}" && -x "$ITDR" ]]; then
    log "building the functions ($PROFILE); the simulator from $ITDR"
  else
    log "building the simulator CLI (debug) and the functions ($PROFILE)"
    cargo build -q -p itdr-cli
  fi
  cargo build -q "${PROFILE_FLAG[@]}" -p scheduler -p poller -p poller-gcch
fi

# ---------------------------------------------------------------------------------------------
MOTO_PORT=$(free_port)
MOTO="http://127.0.0.1:$MOTO_PORT"
"$VENV_ABS/bin/moto_server" -H 127.0.0.1 -p "$MOTO_PORT" >"$OUT/moto.log" 2>&1 &
PIDS+=($!)
wait_for "moto_server" 30 "$PY" -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=2)' "$MOTO/moto-api/"
log "moto on $MOTO"

# Two commercial tenants (one for the functional checks, one measured) and one GCC High tenant.
# The simulated apps' secrets are written beside sim.toml, in the output folder (mode 700).
SIM_CLOUDS=global,global,gcc_high
"$ITDR" sim --port 0 --seed 7 --cloud global --cloud global --cloud gcc_high \
  --config-out "$OUT/sim.toml" >"$OUT/sim.log" 2>&1 &
PIDS+=($!)
wait_for "the simulator" 30 grep -q '^configuration for the other commands: ' "$OUT/sim.log"
SIM=$(sed -n 's/^simulator listening on \(http:\/\/127\.[0-9.]*:[0-9]*\).*/\1/p' "$OUT/sim.log")
[[ -n "$SIM" ]] || die "the simulator's address is not a loopback URL"
log "simulator on $SIM"

helper setup --aws "$MOTO" --sim-log "$OUT/sim.log" --sim-config "$OUT/sim.toml" \
  --clouds "$SIM_CLOUDS" --state "$OUT/state.json" >"$OUT/setup.json"
MEASURED=$(json_get tenants.measured.tenant_id <"$OUT/state.json")
log "tables, queues and secrets created, 3 tenants registered (measured tenant $MEASURED)"

# The runtime API: `cargo lambda watch` without starting functions (this script starts each
# function binary itself, so every start is a cold start with a known process id), behind the
# relay that turns the emulator's constant deadline into an absolute one.
WATCH_PORT=$(free_port)
cargo lambda watch --only-lambda-apis --invoke-address 127.0.0.1 --invoke-port "$WATCH_PORT" \
  >"$OUT/watch.log" 2>&1 &
PIDS+=($!)
wait_for "cargo lambda watch" 60 grep -q 'starting Runtime server' "$OUT/watch.log"
helper runtime-relay --upstream "http://127.0.0.1:$WATCH_PORT" >"$OUT/relay.log" 2>&1 &
PIDS+=($!)
wait_for "the runtime API relay" 30 grep -q '^runtime relay on ' "$OUT/relay.log"
RELAY=$(sed -n 's/^runtime relay on \(http:\/\/127\.0\.0\.1:[0-9]*\)$/\1/p' "$OUT/relay.log")
log "cargo lambda watch runtime API on 127.0.0.1:$WATCH_PORT, relayed at $RELAY"

q() { json_get "queues.$1" <"$OUT/state.json"; }

# Environment of the functions: what infra/template.yaml sets, with moto and the simulator as
# endpoints, static test credentials and JSON logs as deployed. One KEY=VALUE per line.
common_env() {
  cat <<EOF
AWS_ENDPOINT_URL=$MOTO
AWS_REGION=us-east-1
AWS_DEFAULT_REGION=us-east-1
AWS_ACCESS_KEY_ID=test
AWS_SECRET_ACCESS_KEY=test
AWS_EC2_METADATA_DISABLED=true
AWS_LAMBDA_LOG_FORMAT=JSON
RUST_LOG=info
ITDR_REGISTRY_TABLE=itdr-registry
EOF
}
scheduler_env() {
  common_env
  cat <<EOF
AWS_LAMBDA_FUNCTION_MEMORY_SIZE=128
ITDR_JOBS_QUEUE_COMMERCIAL_URL=$(q jobs_commercial)
ITDR_JOBS_QUEUE_USGOV_URL=$(q jobs_usgov)
ITDR_SCHEDULE_SLOT_SECS=300
EOF
}
# poller_env GROUP POLL_CONFIG_JSON
poller_env() {
  common_env
  cat <<EOF
AWS_LAMBDA_FUNCTION_MEMORY_SIZE=256
ITDR_CLOUD_GROUP=$1
ITDR_CURSOR_TABLE=itdr-cursors
ITDR_EVENTS_QUEUE_URL=$(q events)
ITDR_DEAD_LETTERS_QUEUE_URL=$(q dead_letters)
ITDR_SECRET_PREFIX=itdr
ITDR_SECRET_TTL_SECS=300
ITDR_APP_REQUESTS_PER_10S=48
ITDR_POLL_CONFIG=$2
ITDR_ENDPOINT_OVERRIDE=$SIM
ITDR_PUBLISHER_ID=3f2a9c61-0b7e-4d25-9a18-c6e5d4f3b2a1
EOF
}

FN_PID=""
FN_LOG=""
FN_ROUTE=""
# fn_start FUNCTION ENV_FILE LOG_NAME: a new process of the function binary (a cold start),
# with only the function's environment, as Lambda starts it.
fn_start() {
  local vars
  mapfile -t vars <"$2"
  FN_LOG="$OUT/$3.log"
  FN_ROUTE="$1"
  env -i PATH=/usr/bin:/bin "${vars[@]}" AWS_LAMBDA_FUNCTION_NAME="$1" \
    AWS_LAMBDA_FUNCTION_VERSION=1 AWS_LAMBDA_RUNTIME_API="$RELAY/.rt/$FN_ROUTE" \
    "$BIN_DIR/$1" >"$FN_LOG" 2>&1 &
  FN_PID=$!
  PIDS+=("$FN_PID")
}
fn_stop() { stop_tree "$FN_PID"; }
# runs_binary PID PATH: whether the process runs PATH.
runs_binary() { [[ "$(readlink "/proc/$1/exe" 2>/dev/null)" == "$2" ]]; }
# invoke EVENT_FILE RESPONSE_FILE: invokes the function process started last.
invoke() {
  timeout "${SMOKE_INVOKE_TIMEOUT:-600}" cargo lambda invoke "$FN_ROUTE" \
    --invoke-address 127.0.0.1 --invoke-port "$WATCH_PORT" \
    --data-file "$1" --output-format json >"$2" 2>"$2.err"
}
check_batch() {
  helper check-batch --expected "$OUT/events/expected-failures.json" --event "$1" "$2"
}
# emitted LOG: the sum of `emitted` over the "poll completed" log lines.
emitted() { log_field "$1" "poll completed" emitted | awk '{s += $1} END {print s + 0}'; }

# ---------------------------------------------------------------------------------------------
log "scheduler"
scheduler_env >"$OUT/scheduler.env"
helper schedule-event --template tests/aws/events/scheduler-eventbridge.json \
  --out "$OUT/events/scheduler.json" >/dev/null
fn_start scheduler "$OUT/scheduler.env" scheduler
if invoke "$OUT/events/scheduler.json" "$OUT/scheduler.response.json"; then
  SUMMARY=$(cat "$OUT/scheduler.response.json")
  log "scheduler answered $(tr -d ' \n' <<<"$SUMMARY")"
  # Commercial: functional (2 streams) + measured (signins); GCC High: 2 streams.
  got=$(json_get commercial_jobs <<<"$SUMMARY")/$(json_get usgov_jobs <<<"$SUMMARY")/$(json_get tenants <<<"$SUMMARY")
  [[ "$got" == "3/2/3" ]] || fail "scheduler: commercial/usgov jobs/tenants $got, expected 3/2/3"
else
  fail "scheduler invocation failed: $(head -c 400 "$OUT/scheduler.response.json.err")"
fi
fn_stop

helper jobs --state "$OUT/state.json" --schedule-event "$OUT/events/scheduler.json" \
  --out-dir "$OUT/events" >"$OUT/jobs.json" || die "the jobs on the queues are not the registry's"
log "the jobs on the FIFO queues are the registry's: $(cat "$OUT/jobs.json")"

# ---------------------------------------------------------------------------------------------
SMALL_POLL='{"cursor":{"initial_lookback_secs":3600}}'
TOTAL_EMITTED=0
for fn in poller:commercial poller-gcch:usgov; do
  name=${fn%%:*} group=${fn##*:}
  log "$name: its own cloud's jobs and one job of the other cloud group"
  poller_env "$group" "$SMALL_POLL" >"$OUT/$name.env"
  fn_start "$name" "$OUT/$name.env" "$name"
  if invoke "$OUT/events/poller-$group.json" "$OUT/$name.response.json"; then
    if check_batch "poller-$group" "$OUT/$name.response.json" >"$OUT/$name.check.json"; then
      log "$name answered as expected: $(cat "$OUT/$name.check.json")"
    else
      fail "$name: unexpected response $(tr -d ' \n' <"$OUT/$name.response.json")"
    fi
  else
    fail "$name invocation failed: $(head -c 400 "$OUT/$name.response.json.err")"
  fi
  fn_stop
  grep -q '"reason":"cloud_group_mismatch"' "$FN_LOG" || fail "$name: no cloud_group_mismatch refusal logged"
  polled=$(log_field "$FN_LOG" "poll completed" emitted | wc -l)
  [[ "$polled" -eq 2 ]] || fail "$name: $polled jobs polled, expected 2"
  TOTAL_EMITTED=$((TOTAL_EMITTED + $(emitted "$FN_LOG")))
done
EV=$(helper drain-events --state "$OUT/state.json")
log "events queue: $EV"
[[ "$(json_get events <<<"$EV")" -eq "$TOTAL_EMITTED" && "$TOTAL_EMITTED" -gt 0 ]] \
  || fail "the events queue holds $(json_get events <<<"$EV") events, the pollers emitted $TOTAL_EMITTED"

# ---------------------------------------------------------------------------------------------
# The measured job: the measured tenant's first sign-ins poll (interactive only: one Graph
# source), page_size 1000. A first poll reads the last lookback_secs (30 min) as its regular
# pass, then backfills to initial_lookback_secs: here one slice over a window holding at least
# PAGE_EVENTS sign-ins, so its query's first page holds 1,000 events.
PICK=$(helper pick-window --state "$OUT/state.json" --sim "$SIM" --sim-config "$OUT/sim.toml" \
  --tenant "$MEASURED" --target $((PAGE_EVENTS + 50)))
LOOKBACK=$(json_get initial_lookback_secs <<<"$PICK")
SLICE=$((LOOKBACK + 600))
MEASURE_POLL="{\"page_size\":1000,\"cursor\":{\"initial_lookback_secs\":$LOOKBACK,\"slice_secs\":$SLICE,\"horizon_secs\":$SLICE,\"sweep_interval_secs\":$SLICE}}"
poller_env commercial "$MEASURE_POLL" >"$OUT/poller-measured.env"
log "measured window: the last ${LOOKBACK}s ($PICK)"
# The simulator counted those requests against the tenant's 5 per 10 s.
sleep 10

INIT_MS=()
IDLE_KB=()
for ((i = 1; i <= COLD_STARTS; i++)); do
  if ((i == 1)); then ev=poller-measured; else ev=poller-empty; fi
  fn_start poller "$OUT/poller-measured.env" "poller-cold-$i"
  # The measured process is the function binary itself (env has exec'd it).
  wait_for "the poller process" 10 runs_binary "$FN_PID" "$BIN_DIR/poller"
  if ! invoke "$OUT/events/$ev.json" "$OUT/poller-cold-$i.response.json"; then
    fail "poller cold start $i: invocation failed: $(head -c 400 "$OUT/poller-cold-$i.response.json.err")"
    fn_stop
    continue
  fi
  check_batch "$ev" "$OUT/poller-cold-$i.response.json" >/dev/null \
    || fail "poller cold start $i: unexpected response $(tr -d ' \n' <"$OUT/poller-cold-$i.response.json")"
  # Peak resident set size of the process so far (it waits for its next event meanwhile).
  hwm=$(awk '/^VmHWM:/ {print $2}' "/proc/$FN_PID/status")
  fn_stop
  init=$(log_field "$FN_LOG" "poller initialised" init_ms)
  [[ "$init" =~ ^[0-9]+$ ]] || { fail "poller cold start $i: no init_ms logged"; continue; }
  INIT_MS+=("$init")
  if ((i == 1)); then
    PEAK_KB=$hwm
    FETCHED=$(log_field "$FN_LOG" "poll completed" fetched)
    SLICES=$(log_field "$FN_LOG" "poll completed" slices)
    COMPLETE=$(log_field "$FN_LOG" "poll completed" pass_complete)
    MEASURED_EMITTED=$(log_field "$FN_LOG" "poll completed" emitted)
    log "cold start 1: init_ms=$init; measured job: fetched=${FETCHED:-?} slices=${SLICES:-?} emitted=${MEASURED_EMITTED:-?} elapsed_ms=$(log_field "$FN_LOG" "poll completed" elapsed_ms); VmHWM ${hwm} kB"
  else
    IDLE_KB+=("$hwm")
    log "cold start $i: init_ms=$init; VmHWM after an empty batch ${hwm} kB"
  fi
done

[[ "${FETCHED:-}" =~ ^[0-9]+$ && "$FETCHED" -ge "$PAGE_EVENTS" ]] \
  || fail "the measured job fetched ${FETCHED:-nothing}, fewer than $PAGE_EVENTS events"
[[ "${COMPLETE:-}" == "true" ]] || fail "the measured job did not finish its passes (pass_complete=${COMPLETE:-?})"
PAGE=$(helper verify-page --state "$OUT/state.json" --sim "$SIM" --sim-config "$OUT/sim.toml" \
  --tenant "$MEASURED") || die "the measured query could not be re-run"
log "the measured job's query re-run on the simulator: $PAGE"
PAGES=$(json_get page_sizes <<<"$PAGE")
FIRST_PAGE=$("$PY" -c 'import json, sys; print(next((n for n in json.loads(sys.argv[1]) if n), 0))' "$PAGES")
[[ "$FIRST_PAGE" -eq "$PAGE_EVENTS" ]] || fail "the measured query's first page holds $FIRST_PAGE events, not $PAGE_EVENTS"
EV=$(helper drain-events --state "$OUT/state.json")
[[ "$(json_get events <<<"$EV")" -eq "${MEASURED_EMITTED:-0}" && "${MEASURED_EMITTED:-0}" -gt 0 ]] \
  || fail "the events queue holds $(json_get events <<<"$EV") events of the measured job, it emitted ${MEASURED_EMITTED:-0}"
log "events queue after the measured job: $EV"
RELAYED=$(grep -c '^deadline rewritten' "$OUT/relay.log" || true)

# ---------------------------------------------------------------------------------------------
# stats UNIT VALUE...: min / median / max.
stats() {
  local unit="$1"
  shift
  printf '%s\n' "$@" | sort -n | awk -v u="$unit" '{v[NR] = $1} END {
    m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
    printf "min %s / median %s / max %s %s over %d cold starts", v[1], m, v[NR], u, NR }'
}
mib() { awk -v k="$1" 'BEGIN {printf "%.1f", k / 1024}'; }
{
  echo "functions: $PROFILE build ($BIN_DIR), run under $(cargo lambda --version 2>/dev/null | head -1) watch --only-lambda-apis; $RELAYED deadlines made absolute by the relay"
  if ((${#INIT_MS[@]})); then echo "poller init_ms: $(stats ms "${INIT_MS[@]}")"; fi
  echo "poller peak RSS (VmHWM) on the measured job: $(mib "${PEAK_KB:-0}") MiB (${PEAK_KB:-?} kB);" \
    "fetched ${FETCHED:-?} events (emitted ${MEASURED_EMITTED:-?}) in ${SLICES:-?} slices;" \
    "its backfill query re-run pages as $PAGES"
  if ((${#IDLE_KB[@]})); then
    echo "poller VmHWM after a cold start and an empty batch: $(stats kB "${IDLE_KB[@]}")"
  fi
  echo "wall time: $((SECONDS - STARTED)) s"
} | tee "$OUT/summary.txt"

((FAILED == 0)) || exit 1
if [[ -n "${SMOKE_BENCH_JSON:-}" ]]; then
  # The figures of `make bench` (target/bench-poller.json): median init over the cold starts,
  # peak RSS of the process that polled the 1,000-event page.
  "$PY" - "$SMOKE_BENCH_JSON" "$PROFILE" "$COLD_STARTS" "${PEAK_KB:-}" "${FETCHED:-}" "${INIT_MS[@]}" <<'EOF'
import json, statistics, sys
path, profile, cold, peak_kb, fetched, *inits = sys.argv[1:]
prebuilt = " SMOKE_NO_BUILD=1" if __import__("os").environ.get("SMOKE_NO_BUILD") == "1" else ""
cmd = f"SMOKE_PROFILE={profile}{prebuilt} SMOKE_COLD_STARTS={cold} scripts/lambda-smoke.sh"
inits = [float(v) for v in inits]
figs = []
if inits:
    med = statistics.median(inits)
    figs.append({"name": "poller.init_ms", "value": med, "unit": "ms",
                 "command": cmd + f" (median of {len(inits)} cold starts, {profile} build)",
                 "target": "<= 20 ms", "meets": med <= 20})
    figs.append({"name": "poller.init_ms_max", "value": max(inits), "unit": "ms", "command": cmd})
if peak_kb:
    mib = int(peak_kb) / 1024
    figs.append({"name": "poller.peak_rss_mib", "value": round(mib, 1), "unit": "MiB",
                 "command": cmd + f" (VmHWM of the poller process after a job fetching {fetched} events, {profile} build)",
                 "target": "<= 64 MiB", "meets": mib <= 64})
with open(path, "w", encoding="utf-8") as f:
    json.dump(figs, f, indent=2)
print(f"figures written to {path}")
EOF
fi
log "smoke test passed"
