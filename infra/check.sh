#!/usr/bin/env bash
# Offline checks of the IaC: cfn-lint, checkov, and the moto deployment test.
# Uses the Python tools that `make tools` installs into .tools/venv; contacts nothing outside
# 127.0.0.0/8 (checkov runs with --skip-download, moto listens on loopback).
set -euo pipefail
cd "$(dirname "$0")/.."

VENV="${VENV:-.tools/venv}"
for tool in cfn-lint checkov python moto_server; do
  if [[ ! -x "$VENV/bin/$tool" ]]; then
    echo "infra/check.sh: $VENV/bin/$tool is missing: run \`make tools\` first" >&2
    exit 1
  fi
done

step() {
  local name=$1
  shift
  local start=$SECONDS
  echo "== infra: $name"
  "$@"
  echo "== infra: $name ok ($((SECONDS - start)) s)"
}

shopt -s nullglob
templates=(infra/*.yaml)
if ((${#templates[@]} == 0)); then
  echo "infra/check.sh: no templates in infra/" >&2
  exit 1
fi

# Zero errors, warnings and informational findings: any finding makes cfn-lint exit non-zero.
step "cfn-lint ${templates[*]}" "$VENV/bin/cfn-lint" --non-zero-exit-code informational -- "${templates[@]}"
# Zero failed checks; every skip carries its reason in the resource's Metadata. No update
# check against PyPI, and a template checkov cannot parse fails instead of being skipped.
export CKV_SKIP_PACKAGE_UPDATE_CHECK=true CKV_PARSE_ERROR_FAIL=true
step "checkov" "$VENV/bin/checkov" -d infra/ --framework cloudformation --skip-download --compact --quiet
step "deployment test (moto)" "$VENV/bin/python" -m pytest infra/tests -q -p no:cacheprovider
