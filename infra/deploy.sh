#!/usr/bin/env bash
# Deploys infra/template.yaml with `sam deploy` (see infra/README.md). Called by `make deploy`
# after `make package`; every setting comes from the environment:
#
#   REGION            required (or AWS_REGION); a us-gov-* region is AWS GovCloud (US)
#   STACK             stack name (default itdr, or itdr-usgov in GovCloud)
#   DEPLOYMENT        full | commercial | usgov (default full, or usgov in GovCloud)
#   MAX_CONCURRENCY   PollerMaxConcurrency (template default 5)
#   SCHEDULE_MINUTES  ScheduleRateMinutes (template default 5)
#   SCHEDULE_TRIGGER  scheduler | rule (default scheduler, or rule in GovCloud)
#   ALARM_EMAIL       e-mail subscribed to the alarm topic (optional)
#   PARAMS            extra "Key=Value ..." parameter overrides (optional)
#   S3_BUCKET         artifact bucket (default: SAM's managed bucket, --resolve-s3)
#
# Needs AWS credentials for the target account. The SAM CLI is not part of `make tools`: if
# `sam` is not on PATH it is installed once into .tools/sam (PyPI aws-sam-cli).
set -euo pipefail
cd "$(dirname "$0")/.."

REGION="${REGION:-${AWS_REGION:-}}"
if [[ -z "$REGION" ]]; then
  echo "infra/deploy.sh: set REGION (e.g. make deploy REGION=us-east-1)" >&2
  exit 2
fi
if [[ "$REGION" == us-gov-* ]]; then
  govcloud=1
  DEPLOYMENT="${DEPLOYMENT:-usgov}"
  SCHEDULE_TRIGGER="${SCHEDULE_TRIGGER:-rule}"
  STACK="${STACK:-itdr-usgov}"
else
  govcloud=0
  DEPLOYMENT="${DEPLOYMENT:-full}"
  SCHEDULE_TRIGGER="${SCHEDULE_TRIGGER:-scheduler}"
  STACK="${STACK:-itdr}"
fi
if [[ $govcloud == 1 && "$DEPLOYMENT" != usgov ]]; then
  echo "infra/deploy.sh: $REGION is a GovCloud region; only DEPLOYMENT=usgov belongs there" >&2
  exit 2
fi

for f in scheduler poller poller-gcch; do
  if [[ ! -s "target/lambda/$f/bootstrap.zip" ]]; then
    echo "infra/deploy.sh: target/lambda/$f/bootstrap.zip is missing: run \`make package\`" >&2
    exit 1
  fi
done

SAM="$(command -v sam || true)"
if [[ -z "$SAM" ]]; then
  SAM=.tools/sam/bin/sam
  if [[ ! -x "$SAM" ]]; then
    echo "== installing the SAM CLI into .tools/sam (once)"
    python3 -m venv .tools/sam
    .tools/sam/bin/pip install -q --upgrade pip
    .tools/sam/bin/pip install -q aws-sam-cli
  fi
fi
export SAM_CLI_TELEMETRY=0

overrides=("Deployment=$DEPLOYMENT" "ScheduleTrigger=$SCHEDULE_TRIGGER")
[[ -n "${MAX_CONCURRENCY:-}" ]] && overrides+=("PollerMaxConcurrency=$MAX_CONCURRENCY")
[[ -n "${SCHEDULE_MINUTES:-}" ]] && overrides+=("ScheduleRateMinutes=$SCHEDULE_MINUTES")
[[ -n "${ALARM_EMAIL:-}" ]] && overrides+=("AlarmEmail=$ALARM_EMAIL")
if [[ -n "${PARAMS:-}" ]]; then
  read -r -a extra <<<"$PARAMS"
  overrides+=("${extra[@]}")
fi

if [[ -n "${S3_BUCKET:-}" ]]; then
  bucket=(--s3-bucket "$S3_BUCKET")
else
  bucket=(--resolve-s3)
fi

echo "== sam deploy: stack $STACK, region $REGION, ${overrides[*]}"
"$SAM" deploy \
  --template-file infra/template.yaml \
  --stack-name "$STACK" \
  --region "$REGION" \
  "${bucket[@]}" \
  --capabilities CAPABILITY_IAM CAPABILITY_AUTO_EXPAND \
  --no-confirm-changeset \
  --no-fail-on-empty-changeset \
  --parameter-overrides "${overrides[@]}"
