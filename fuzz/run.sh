#!/usr/bin/env bash
# `make fuzz`: installs what the fuzz targets need if it is missing (a nightly toolchain,
# cargo-fuzz), seeds each target's corpus from the repository's fixtures and fuzz/seeds/, runs
# every target for FUZZ_SECS seconds (default 60) and prints the executions of each.
#
#   FUZZ_SECS=300 make fuzz                # longer runs
#   FUZZ_TARGETS="normalize cursor_doc" make fuzz
#   FUZZ_TOOLCHAIN=stable make fuzz        # no nightly: stable with RUSTC_BOOTSTRAP=1
#
# Targets run with `--sanitizer none`: the code under test forbids `unsafe`, so AddressSanitizer
# adds build time and little else; panics, failed assertions and overflows (debug assertions
# are on) are what the targets look for. A crash leaves its input in fuzz/artifacts/<target>/.
set -uo pipefail
cd "$(dirname "$0")"
root=..
secs="${FUZZ_SECS:-60}"
targets="${FUZZ_TARGETS:-graph_page normalize retry_after cursor_doc config_toml poll_config lambda_env}"
toolchain="${FUZZ_TOOLCHAIN:-nightly}"

# A nightly toolchain (cargo fuzz passes -Z flags to rustc). Installed only when missing: an
# existing one is not updated (that would rebuild everything).
if [ "$toolchain" = nightly ] && ! rustup run nightly rustc --version >/dev/null 2>&1; then
  if ! rustup toolchain install nightly --profile minimal; then
    echo "nightly not installable: using stable with RUSTC_BOOTSTRAP=1" >&2
    toolchain=stable
  fi
fi
if [ "$toolchain" != nightly ]; then
  # Lets a stable rustc accept the -Z flags cargo fuzz passes (unsupported by the Rust project,
  # but works with --sanitizer none).
  export RUSTC_BOOTSTRAP=1
fi
if ! command -v cargo-fuzz >/dev/null 2>&1; then
  cargo install cargo-fuzz --locked || exit 1
fi

# Seed corpora: the repository's own fixtures, shaped into each target's input, plus
# fuzz/seeds/<target>/. The corpus directories keep what earlier runs found.
python3 - "$root" <<'PY' || exit 1
import glob, json, os, struct, sys
root = sys.argv[1]
def put(target, name, data):
    d = os.path.join("corpus", target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)
for src in glob.glob(os.path.join("seeds", "*", "*")):
    target = os.path.basename(os.path.dirname(src))
    with open(src, "rb") as f:
        put(target, "seed-" + os.path.basename(src), f.read())
streams = [("signins", 0), ("directory_audits", 1), ("management", 2)]
for sub, stream in streams:
    for path in sorted(glob.glob(os.path.join(root, "tests", "fixtures", "*", sub, "*.json"))
                       + sorted(glob.glob(os.path.join(root, "tests", "fixtures", sub, "*.json")))):
        with open(path, "rb") as f:
            text = f.read()
        name = sub + "-" + os.path.basename(path)
        # Plain, and with raw_data + the canary.
        put("normalize", name, bytes([stream]) + text)
        put("normalize", "raw-canary-" + name, bytes([stream | 0x0C]) + text)
        if stream != 2:
            record = json.loads(text)
            page = {"@odata.context": "https://graph.microsoft.com/v1.0/$metadata#auditLogs/" + sub,
                    "value": [record],
                    "@odata.nextLink": "https://graph.microsoft.com/v1.0/auditLogs/" + sub + "?$top=1&$skiptoken=abc"}
            put("graph_page", name, bytes([0]) + json.dumps(page).encode())
put("graph_page", "empty-page", b"\x02" + b'{"value":[]}')
put("graph_page", "graph-error", b"\x58" + b'{"error":{"code":"Authorization_RequestDenied","message":"Insufficient privileges"}}')
put("graph_page", "mgmt-error", b"\x80" + b'{"error":{"code":"AF20022","message":"No subscription found"}}')
for path in glob.glob(os.path.join(root, "config", "*.toml")):
    with open(path, "rb") as f:
        put("config_toml", os.path.basename(path), f.read())
now = struct.pack("<q", 1772366400)  # 2026-03-01T12:00:00Z
for i, v in enumerate(["7", " 2.5 ", "Sun, 01 Mar 2026 12:00:30 GMT", "100000", "1e20",
                       "Fri, 31 Dec 9999 23:59:59 GMT", "-5", "NaN", "18446744073709551616"]):
    put("retry_after", "value-%d" % i, now + v.encode())
PY

summary=()
failed=0
for t in $targets; do
  features=()
  # The AWS SDK builds into its own target dir (so the other targets' builds never wait for
  # it), with more codegen units (a much shorter first build).
  [ "$t" = lambda_env ] && features=(--features aws --target-dir target/aws --codegen-units 16)
  mkdir -p "corpus/$t"
  log="$(mktemp)"
  echo "=== $t: ${secs}s"
  cargo "+$toolchain" fuzz run --sanitizer none "${features[@]}" "$t" "corpus/$t" -- \
    -max_total_time="$secs" -print_final_stats=1 -timeout=10 -rss_limit_mb=2048 2>&1 | tee "$log" \
    | grep -E '^(#[0-9]+[[:space:]]+(INITED|DONE)|==[0-9]+== ERROR|thread .* panicked|SUMMARY|stat::number_of_executed_units)' 
  rc=${PIPESTATUS[0]}
  execs="$(grep -oE 'stat::number_of_executed_units: *[0-9]+' "$log" | grep -oE '[0-9]+$' | tail -1)"
  if [ "$rc" -ne 0 ]; then
    failed=1
    summary+=("$(printf '%-12s %12s executions  FAILED (exit %s; input in fuzz/artifacts/%s/)' "$t" "${execs:-?}" "$rc" "$t")")
    tail -40 "$log"
  else
    summary+=("$(printf '%-12s %12s executions in %ss' "$t" "${execs:-?}" "$secs")")
  fi
  rm -f "$log"
done
echo
echo "=== executions per target (FUZZ_SECS=$secs)"
printf '%s\n' "${summary[@]}"
exit "$failed"
