"""Deployment test for infra/template.yaml.

Transforms the SAM template with aws-sam-translator, creates the stack in a moto server that this
module starts on a free loopback port, and checks what moto really creates (tables, queues and
their redrive policies, event source mappings, IAM policies, the dashboard body after
substitution). moto ignores schedules, point-in-time recovery, encryption, log retention, the
architecture and CloudWatch alarms, so those are asserted from the transformed template itself.

The functions' code is a placeholder zip: this test checks the stack, not the code.
"""

import ast
import fnmatch
import io
import json
import math
import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
import zipfile
from pathlib import Path

import pytest

# Dummy credentials and no instance metadata: boto3 must never look beyond the moto server.
os.environ.update(
    {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_EC2_METADATA_DISABLED": "true",
    }
)
os.environ.pop("AWS_PROFILE", None)
os.environ.pop("AWS_ENDPOINT_URL", None)

import boto3  # noqa: E402
from samtranslator.public.translator import ManagedPolicyLoader  # noqa: E402
from samtranslator.translator.transform import transform  # noqa: E402
from samtranslator.yaml_helper import yaml_parse  # noqa: E402

INFRA = Path(__file__).resolve().parent.parent
TEMPLATE_PATH = INFRA / "template.yaml"
TEMPLATE_TEXT = TEMPLATE_PATH.read_text()

FUNCTIONS = {
    # logical id -> contract name (cargo-lambda output directory)
    "SchedulerFunction": "scheduler",
    "PollerFunction": "poller",
    "PollerGcchFunction": "poller-gcch",
    # The report functions (the Identity Security Assessment on AWS).
    "ReportFunction": "report",
    "ReportGcchFunction": "report-gcch",
    "ActionsFunction": "actions",
    "ActionsGcchFunction": "actions-gcch",
}
COMMON_ENV = {"ITDR_REGISTRY_TABLE", "RUST_LOG"}
SCHEDULER_ENV = COMMON_ENV | {
    "ITDR_JOBS_QUEUE_COMMERCIAL_URL",
    "ITDR_JOBS_QUEUE_USGOV_URL",
    "ITDR_SCHEDULE_SLOT_SECS",
    "ITDR_QUIET_AFTER_SECS",
    "ITDR_MAX_STALENESS_SECS",
}
POLLER_ENV = COMMON_ENV | {
    "ITDR_CLOUD_GROUP",
    "ITDR_CURSOR_TABLE",
    "ITDR_EVENTS_QUEUE_URL",
    "ITDR_DEAD_LETTERS_QUEUE_URL",
    "ITDR_SECRET_PREFIX",
    "ITDR_SECRET_TTL_SECS",
    "ITDR_APP_REQUESTS_PER_10S",
    "ITDR_PUBLISHER_ID",
}
ACTIONS_ENV = COMMON_ENV | {
    "ITDR_CLOUD_GROUP",
    "ITDR_CURSOR_TABLE",
    "ITDR_EVENTS_QUEUE_URL",
    "ITDR_SECRET_PREFIX",
    "ITDR_SECRET_TTL_SECS",
    "ITDR_WRITE_APP",
    "ITDR_PROTECTED_ACCOUNTS",
    "ITDR_ACTION_TIMEOUT_SECS",
}
ENV_BY_NAME = {"scheduler": SCHEDULER_ENV, "actions": ACTIONS_ENV, "actions-gcch": ACTIONS_ENV}

REPORT_ENV = COMMON_ENV | {
    "ITDR_CLOUD_GROUP",
    "ITDR_CURSOR_TABLE",
    "ITDR_EVENTS_QUEUE_URL",
    "ITDR_SECRET_PREFIX",
    "ITDR_SECRET_TTL_SECS",
    "ITDR_REPORTS_BUCKET",
    "ITDR_REPORTS_KMS_KEY",
    "ITDR_REPORT_SENDER",
    "ITDR_REPORT_INTERVAL_DAYS",
    "ITDR_REPORT_LINK_EXPIRY_SECS",
}

# The IAM actions each function's role may hold (documented in infra/README.md).
EXPECTED_ACTIONS = {
    "SchedulerRole": {
        "dynamodb:GetItem",
        "dynamodb:Query",
        "dynamodb:Scan",
        "sqs:SendMessage",
        "kms:Decrypt",
        "kms:GenerateDataKey",
        "logs:CreateLogStream",
        "logs:PutLogEvents",
    },
    "PollerRole": {
        "secretsmanager:GetSecretValue",
        "dynamodb:GetItem",
        "dynamodb:PutItem",
        "dynamodb:UpdateItem",
        "dynamodb:DeleteItem",
        "dynamodb:Query",
        "dynamodb:BatchWriteItem",
        "sqs:ReceiveMessage",
        "sqs:DeleteMessage",
        "sqs:GetQueueAttributes",
        "sqs:SendMessage",
        "kms:Decrypt",
        "kms:GenerateDataKey",
        "logs:CreateLogStream",
        "logs:PutLogEvents",
    },
    "ScheduleRole": {"lambda:InvokeFunction"},
}
EXPECTED_ACTIONS["PollerGcchRole"] = EXPECTED_ACTIONS["PollerRole"]
# The actions functions: the action log and request ids (GetItem, PutItem on the cursor
# table), the registry (GetItem), their own queue, the events queue, their group's secrets.
EXPECTED_ACTIONS["ActionsRole"] = {
    "secretsmanager:GetSecretValue",
    "dynamodb:GetItem",
    "dynamodb:PutItem",
    "sqs:ReceiveMessage",
    "sqs:DeleteMessage",
    "sqs:GetQueueAttributes",
    "sqs:SendMessage",
    "kms:Decrypt",
    "kms:GenerateDataKey",
    "logs:CreateLogStream",
    "logs:PutLogEvents",
}
EXPECTED_ACTIONS["ActionsGcchRole"] = EXPECTED_ACTIONS["ActionsRole"]

GRAPH_APP_LIMIT_PER_10S = 122


# ------------------------------------------------------------------------------------ moto server


def _free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def moto_url(tmp_path_factory):
    server = os.environ.get("ITDR_MOTO_SERVER") or str(Path(sys.executable).parent / "moto_server")
    if not Path(server).exists():
        pytest.fail(f"moto_server not found at {server}: run `make tools`")
    port = _free_port()
    log = open(tmp_path_factory.mktemp("moto") / "moto.log", "wb")
    proc = subprocess.Popen(
        [server, "-H", "127.0.0.1", "-p", str(port)], stdout=log, stderr=subprocess.STDOUT
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            urllib.request.urlopen(f"{url}/moto-api/", timeout=1).read()
            break
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                pytest.fail(f"moto_server did not start on {url}")
            time.sleep(0.1)
    yield url
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    log.close()


def client(moto_url, service, region):
    return boto3.client(service, region_name=region, endpoint_url=moto_url)


# ------------------------------------------------------------------------------------ helpers


def raw_template():
    return yaml_parse(TEMPLATE_TEXT)


def bucket(region):
    return f"itdr-artifacts-{region}"


def with_s3_code(tpl, region):
    """samtranslator needs an S3 CodeUri (the deploy step uploads the cargo-lambda zips)."""
    for logical_id, name in FUNCTIONS.items():
        tpl["Resources"][logical_id]["Properties"]["CodeUri"] = f"s3://{bucket(region)}/{name}.zip"
    return tpl


def sam_transform(moto_url, region, params):
    """The template as CloudFormation sees it after the SAM transform."""
    tpl = with_s3_code(raw_template(), region)
    old_region = os.environ["AWS_DEFAULT_REGION"]
    os.environ["AWS_DEFAULT_REGION"] = region  # samtranslator reads the region from here
    try:
        loader = ManagedPolicyLoader(client(moto_url, "iam", region))
        return transform(tpl, dict(params), loader)
    finally:
        os.environ["AWS_DEFAULT_REGION"] = old_region


def upload_placeholder_code(moto_url, region):
    s3 = client(moto_url, "s3", region)
    if region == "us-east-1":
        s3.create_bucket(Bucket=bucket(region))
    else:
        s3.create_bucket(
            Bucket=bucket(region), CreateBucketConfiguration={"LocationConstraint": region}
        )
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("bootstrap", "#!/bin/sh\n# placeholder: the deployment test checks the stack\n")
    for name in FUNCTIONS.values():
        s3.put_object(Bucket=bucket(region), Key=f"{name}.zip", Body=buf.getvalue())


class Stack:
    def __init__(self, moto_url, region, name, transformed):
        self.url, self.region, self.name, self.template = moto_url, region, name, transformed
        cfn = client(moto_url, "cloudformation", region)
        self.description = cfn.describe_stacks(StackName=name)["Stacks"][0]
        self.outputs = {o["OutputKey"]: o["OutputValue"] for o in self.description.get("Outputs", [])}
        # moto also lists incomplete entries (e.g. for AWS::Scheduler::Schedule): keep the real ones.
        self.physical = {
            r["LogicalResourceId"]: r["PhysicalResourceId"]
            for r in cfn.list_stack_resources(StackName=name)["StackResourceSummaries"]
            if r.get("LogicalResourceId")
        }

    def client(self, service):
        return client(self.url, service, self.region)


def deploy(moto_url, region, name, params):
    upload_placeholder_code(moto_url, region)
    transformed = sam_transform(moto_url, region, params)
    assert "Transform" not in transformed
    assert not any(r["Type"].startswith("AWS::Serverless::") for r in transformed["Resources"].values())
    cfn = client(moto_url, "cloudformation", region)
    cfn.create_stack(
        StackName=name,
        TemplateBody=json.dumps(transformed),
        Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in params.items()],
        Capabilities=["CAPABILITY_IAM", "CAPABILITY_AUTO_EXPAND"],
    )
    deadline = time.monotonic() + 60
    while True:
        status = cfn.describe_stacks(StackName=name)["Stacks"][0]["StackStatus"]
        if not status.endswith("IN_PROGRESS") or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert status == "CREATE_COMPLETE", (status, cfn.describe_stack_events(StackName=name))
    return Stack(moto_url, region, name, transformed)


def queue_attrs(stack, logical_id):
    sqs = stack.client("sqs")
    url = stack.physical[logical_id]
    return sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]


def role_statements(stack, logical_id):
    iam = stack.client("iam")
    role = stack.physical[logical_id]
    statements = []
    for policy in iam.list_role_policies(RoleName=role)["PolicyNames"]:
        doc = iam.get_role_policy(RoleName=role, PolicyName=policy)["PolicyDocument"]
        if isinstance(doc, str):  # moto returns the inline document as a Python literal
            doc = ast.literal_eval(doc)
        statements += doc["Statement"]
    assert statements, f"{logical_id} has no inline policy"
    return statements


def as_list(v):
    return v if isinstance(v, list) else [v]


def actions_of(statements):
    return {a for s in statements for a in as_list(s["Action"])}


def allows(statements, action, arn):
    return any(
        s["Effect"] == "Allow"
        and action in as_list(s["Action"])
        and any(fnmatch.fnmatchcase(arn, r) for r in as_list(s["Resource"]))
        for s in statements
    )


def function_config(stack, logical_id):
    return stack.client("lambda").get_function_configuration(FunctionName=stack.physical[logical_id])


def esm_for(stack, logical_id):
    mappings = stack.client("lambda").list_event_source_mappings(
        FunctionName=stack.physical[logical_id]
    )["EventSourceMappings"]
    assert len(mappings) == 1, mappings
    return mappings[0]


def resources_of_type(template, type_):
    return {k: v for k, v in template["Resources"].items() if v["Type"] == type_}


# ------------------------------------------------------------------------------------ stacks

FULL_PARAMS = {
    "Deployment": "full",
    "AlarmEmail": "secops@example.com",
    "PublisherId": "3f2a9c61-0b7e-4d25-9a18-c6e5d4f3b2a1",
}
USGOV_PARAMS = {"Deployment": "usgov", "ScheduleTrigger": "rule", "PollerMaxConcurrency": "4"}
GOV_REGION = "us-gov-west-1"


@pytest.fixture(scope="module")
def full(moto_url):
    return deploy(moto_url, "us-east-1", "itdr-full", FULL_PARAMS)


@pytest.fixture(scope="module")
def usgov(moto_url):
    return deploy(moto_url, GOV_REGION, "itdr-usgov", USGOV_PARAMS)


# ------------------------------------------------------------------------------------ template


def test_function_contract():
    resources = raw_template()["Resources"]
    globals_ = raw_template()["Globals"]["Function"]
    assert globals_["Runtime"] == "provided.al2023"
    assert globals_["Architectures"] == ["arm64"]
    assert globals_["Handler"] == "bootstrap"
    for logical_id, name in FUNCTIONS.items():
        props = resources[logical_id]["Properties"]
        assert props["CodeUri"] == f"../target/lambda/{name}/bootstrap.zip"
        # JSON logs come from LoggingConfig, which sets AWS_LAMBDA_LOG_FORMAT for the runtime.
        assert props["LoggingConfig"]["LogFormat"] == "JSON"
        expected = {**ENV_BY_NAME, "report": REPORT_ENV, "report-gcch": REPORT_ENV}.get(name, POLLER_ENV)
        assert set(props["Environment"]["Variables"]) == expected
    assert resources["PollerFunction"]["Properties"]["Environment"]["Variables"]["ITDR_CLOUD_GROUP"] == "commercial"
    assert resources["PollerGcchFunction"]["Properties"]["Environment"]["Variables"]["ITDR_CLOUD_GROUP"] == "usgov"
    assert resources["ActionsFunction"]["Properties"]["Environment"]["Variables"]["ITDR_CLOUD_GROUP"] == "commercial"
    assert resources["ActionsGcchFunction"]["Properties"]["Environment"]["Variables"]["ITDR_CLOUD_GROUP"] == "usgov"


def test_no_hard_coded_partition():
    assert not re.search(r"arn:aws[-a-z]*:", TEMPLATE_TEXT), "use arn:${AWS::Partition}:"
    assert "${AWS::Partition}" in TEMPLATE_TEXT


def _subs(node):
    if isinstance(node, dict):
        for k, v in node.items():
            if k == "Fn::Sub":
                yield v if isinstance(v, str) else v[0]
            else:
                yield from _subs(v)
    elif isinstance(node, list):
        for v in node:
            yield from _subs(v)


def test_every_built_arn_uses_the_partition_parameter():
    tpl = with_s3_code(raw_template(), "us-gov-west-1")
    os.environ["AWS_DEFAULT_REGION"] = "us-gov-west-1"
    try:
        transformed = transform(tpl, {}, None)
    finally:
        os.environ["AWS_DEFAULT_REGION"] = "us-east-1"
    built = [s for s in _subs(transformed) if "arn:" in s]
    assert built, "expected ARNs built with Fn::Sub"
    for s in built:
        assert all(part.startswith("${AWS::Partition}:") for part in s.split("arn:")[1:]), s
    assert not re.search(r"arn:aws[-a-z]*:", json.dumps(transformed))


def test_app_rate_mapping_follows_the_formula():
    tpl = raw_template()
    allowed = tpl["Parameters"]["PollerMaxConcurrency"]["AllowedValues"]
    mapping = tpl["Mappings"]["AppRateByConcurrency"]
    assert set(mapping) == set(allowed)
    for c in allowed:
        n = int(c)
        assert int(mapping[c]["full"]) == math.floor(0.8 * GRAPH_APP_LIMIT_PER_10S / (2 * n))
        assert int(mapping[c]["single"]) == math.floor(0.8 * GRAPH_APP_LIMIT_PER_10S / n)
        assert int(mapping[c]["full"]) >= 1


def test_visibility_is_six_times_the_poller_timeout():
    tpl = raw_template()
    allowed = tpl["Parameters"]["PollerTimeoutSeconds"]["AllowedValues"]
    mapping = tpl["Mappings"]["VisibilityByTimeout"]
    assert set(mapping) == set(allowed)
    for t in allowed:
        assert mapping[t]["Seconds"] == 6 * int(t)
        assert int(t) <= 900 and mapping[t]["Seconds"] <= 43200


def test_schedule_slot_matches_rate():
    tpl = raw_template()
    for minutes, row in tpl["Mappings"]["ScheduleByMinutes"].items():
        assert int(row["SlotSecs"]) == 60 * int(minutes)
        unit = "minute" if minutes == "1" else "minutes"
        assert row["Expression"] == f"rate({minutes} {unit})"


# ------------------------------------------------------------------------------------ full stack


def test_full_stack_tables(full):
    ddb = full.client("dynamodb")
    registry = ddb.describe_table(TableName=full.physical["RegistryTable"])["Table"]
    assert registry["KeySchema"] == [{"AttributeName": "tenant_id", "KeyType": "HASH"}]
    assert registry["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"
    # One cursor table per cloud group: each poller's role names only its own.
    assert full.physical["CursorTable"] != full.physical["CursorTableUsgov"]
    for table in ("CursorTable", "CursorTableUsgov"):
        cursors = ddb.describe_table(TableName=full.physical[table])["Table"]
        assert cursors["KeySchema"] == [
            {"AttributeName": "tenant_id", "KeyType": "HASH"},
            {"AttributeName": "stream", "KeyType": "RANGE"},
        ]
        assert {a["AttributeName"]: a["AttributeType"] for a in cursors["AttributeDefinitions"]} == {
            "tenant_id": "S",
            "stream": "S",
        }
        assert cursors["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"


def test_full_stack_queues(full):
    for jobs, dlq in [("JobsCommercialQueue", "JobsCommercialDLQ"), ("JobsUsgovQueue", "JobsUsgovDLQ")]:
        a = queue_attrs(full, jobs)
        assert full.physical[jobs].endswith(".fifo")
        assert a["FifoQueue"] == "true"
        assert a["ContentBasedDeduplication"] == "false"
        assert int(a["VisibilityTimeout"]) == 6 * 300
        redrive = json.loads(a["RedrivePolicy"])
        assert int(redrive["maxReceiveCount"]) == 5
        d = queue_attrs(full, dlq)
        assert d["FifoQueue"] == "true"
        assert redrive["deadLetterTargetArn"] == d["QueueArn"]
    events = queue_attrs(full, "EventsQueue")
    assert "FifoQueue" not in events or events["FifoQueue"] == "false"
    assert json.loads(events["RedrivePolicy"])["deadLetterTargetArn"] == queue_attrs(full, "EventsDLQ")["QueueArn"]
    dead_letters = queue_attrs(full, "DeadLettersQueue")
    assert "FifoQueue" not in dead_letters or dead_letters["FifoQueue"] == "false"


def test_full_stack_functions_and_event_sources(full):
    for logical_id, group, jobs in [
        ("PollerFunction", "commercial", "JobsCommercialQueue"),
        ("PollerGcchFunction", "usgov", "JobsUsgovQueue"),
    ]:
        cfg = function_config(full, logical_id)
        assert cfg["Runtime"] == "provided.al2023"
        assert cfg["Handler"] == "bootstrap"
        assert cfg["MemorySize"] == 256 and cfg["Timeout"] == 300
        env = cfg["Environment"]["Variables"]
        assert env["ITDR_CLOUD_GROUP"] == group
        assert env["ITDR_CURSOR_TABLE"] == full.physical["CursorTable" if group == "commercial" else "CursorTableUsgov"]
        assert env["ITDR_SECRET_PREFIX"] == "itdr"
        assert env["ITDR_PUBLISHER_ID"] == FULL_PARAMS["PublisherId"]
        # two pollers at concurrency 5: floor(0.8 * 122 / 10)
        assert env["ITDR_APP_REQUESTS_PER_10S"] == "9"
        assert env["ITDR_EVENTS_QUEUE_URL"] == full.outputs["EventsQueueUrl"]
        assert env["ITDR_DEAD_LETTERS_QUEUE_URL"] == full.outputs["DeadLettersQueueUrl"]
        esm = esm_for(full, logical_id)
        assert esm["EventSourceArn"] == queue_attrs(full, jobs)["QueueArn"]
        assert esm["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
        assert esm["BatchSize"] == 5
        assert esm["ScalingConfig"] == {"MaximumConcurrency": 5}
    env = function_config(full, "SchedulerFunction")["Environment"]["Variables"]
    assert env["ITDR_JOBS_QUEUE_COMMERCIAL_URL"] == full.outputs["JobsQueueCommercialUrl"]
    assert env["ITDR_JOBS_QUEUE_USGOV_URL"] == full.outputs["JobsQueueUsgovUrl"]
    assert env["ITDR_SCHEDULE_SLOT_SECS"] == "300"
    assert str(env["ITDR_QUIET_AFTER_SECS"]) == "7200"
    assert str(env["ITDR_MAX_STALENESS_SECS"]) == "1800"


def test_full_stack_iam_least_privilege(full):
    account = full.description["StackId"].split(":")[4]
    secret = "arn:aws:secretsmanager:us-east-1:{}:secret:itdr/{}/default-AbC123"
    queue_arn = {q: queue_attrs(full, q)["QueueArn"] for q in ("JobsCommercialQueue", "JobsUsgovQueue", "EventsQueue", "DeadLettersQueue")}
    policies = {role: role_statements(full, role) for role in EXPECTED_ACTIONS}
    for role, statements in policies.items():
        assert actions_of(statements) == EXPECTED_ACTIONS[role], role
        # Metrics are Embedded Metric Format log lines: no PutMetricData, no "*" resource.
        assert not any(a.startswith("cloudwatch:") for a in actions_of(statements)), role
        for s in statements:
            assert "*" not in as_list(s["Resource"]), (role, s)

    commercial, usgov, scheduler = policies["PollerRole"], policies["PollerGcchRole"], policies["SchedulerRole"]
    assert allows(commercial, "secretsmanager:GetSecretValue", secret.format(account, "commercial"))
    assert not allows(commercial, "secretsmanager:GetSecretValue", secret.format(account, "usgov"))
    assert allows(usgov, "secretsmanager:GetSecretValue", secret.format(account, "usgov"))
    assert not allows(usgov, "secretsmanager:GetSecretValue", secret.format(account, "commercial"))
    assert not any("secretsmanager" in a for a in actions_of(scheduler))

    assert allows(commercial, "sqs:ReceiveMessage", queue_arn["JobsCommercialQueue"])
    assert not allows(commercial, "sqs:ReceiveMessage", queue_arn["JobsUsgovQueue"])
    assert allows(usgov, "sqs:ReceiveMessage", queue_arn["JobsUsgovQueue"])
    assert not allows(usgov, "sqs:ReceiveMessage", queue_arn["JobsCommercialQueue"])
    for poller in (commercial, usgov):
        assert allows(poller, "sqs:SendMessage", queue_arn["EventsQueue"])
        assert allows(poller, "sqs:SendMessage", queue_arn["DeadLettersQueue"])
        assert not allows(poller, "sqs:SendMessage", queue_arn["JobsCommercialQueue"])
    # DynamoDB: each poller reads and writes only its own group's cursor table.
    ddb = full.client("dynamodb")
    table_arn = {
        t: ddb.describe_table(TableName=full.physical[t])["Table"]["TableArn"]
        for t in ("CursorTable", "CursorTableUsgov", "RegistryTable")
    }
    for poller, own, other in [(commercial, "CursorTable", "CursorTableUsgov"), (usgov, "CursorTableUsgov", "CursorTable")]:
        for action in ("dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:Query", "dynamodb:BatchWriteItem"):
            assert allows(poller, action, table_arn[own]), (own, action)
            assert not allows(poller, action, table_arn[other]), (other, action)
        # The registry: read, and only the health attributes updated.
        assert allows(poller, "dynamodb:GetItem", table_arn["RegistryTable"])
        update = [s for s in poller if "dynamodb:UpdateItem" in as_list(s["Action"]) and table_arn["RegistryTable"] in [
            r for r in as_list(s["Resource"]) if fnmatch.fnmatchcase(table_arn["RegistryTable"], r)]]
        assert len(update) == 1, update
        assert set(update[0]["Condition"]["ForAllValues:StringEquals"]["dynamodb:Attributes"]) == {
            "tenant_id", "health", "health_state", "rev"}
        assert not allows(poller, "dynamodb:PutItem", table_arn["RegistryTable"])
        assert not allows(poller, "dynamodb:DeleteItem", table_arn["RegistryTable"])
    assert allows(scheduler, "sqs:SendMessage", queue_arn["JobsCommercialQueue"])
    assert allows(scheduler, "sqs:SendMessage", queue_arn["JobsUsgovQueue"])
    assert not allows(scheduler, "sqs:SendMessage", queue_arn["EventsQueue"])

    # Each function role is the one its function runs with.
    iam = full.client("iam")
    for fn, role in [("SchedulerFunction", "SchedulerRole"), ("PollerFunction", "PollerRole"), ("PollerGcchFunction", "PollerGcchRole"), ("ActionsFunction", "ActionsRole"), ("ActionsGcchFunction", "ActionsGcchRole")]:
        assert function_config(full, fn)["Role"] == iam.get_role(RoleName=full.physical[role])["Role"]["Arn"]


def test_full_stack_actions_functions(full):
    """Per cloud group: its own queue (KMS, DLQ, redrive), function, role and event source;
    the role reads only its group's secrets and sends only to the events queue."""
    account = full.description["StackId"].split(":")[4]
    secret = "arn:aws:secretsmanager:us-east-1:{}:secret:itdr/{}/usgov-write-AbC123"
    queues = {q: queue_attrs(full, q) for q in ("ActionsCommercialQueue", "ActionsUsgovQueue", "ActionsCommercialDLQ", "ActionsUsgovDLQ", "EventsQueue", "DeadLettersQueue", "JobsCommercialQueue")}
    for fn, role, group, queue, dlq, other in [
        ("ActionsFunction", "ActionsRole", "commercial", "ActionsCommercialQueue", "ActionsCommercialDLQ", "usgov"),
        ("ActionsGcchFunction", "ActionsGcchRole", "usgov", "ActionsUsgovQueue", "ActionsUsgovDLQ", "commercial"),
    ]:
        q = queues[queue]
        assert "FifoQueue" not in q or q["FifoQueue"] == "false"
        redrive = json.loads(q["RedrivePolicy"])
        assert redrive["deadLetterTargetArn"] == queues[dlq]["QueueArn"]
        assert int(redrive["maxReceiveCount"]) == 3
        cfg = function_config(full, fn)
        assert cfg["Timeout"] == 150 and int(q["VisibilityTimeout"]) == 6 * cfg["Timeout"]
        env = cfg["Environment"]["Variables"]
        assert env["ITDR_CLOUD_GROUP"] == group
        assert env["ITDR_EVENTS_QUEUE_URL"] == full.outputs["EventsQueueUrl"]
        assert env["ITDR_WRITE_APP"] == "" and env["ITDR_PROTECTED_ACCOUNTS"] == "{}"
        assert int(env["ITDR_ACTION_TIMEOUT_SECS"]) < cfg["Timeout"]
        esm = esm_for(full, fn)
        assert esm["EventSourceArn"] == q["QueueArn"]
        assert esm["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
        assert esm["BatchSize"] == 1
        statements = role_statements(full, role)
        assert allows(statements, "secretsmanager:GetSecretValue", secret.format(account, group))
        assert not allows(statements, "secretsmanager:GetSecretValue", secret.format(account, other))
        assert allows(statements, "sqs:ReceiveMessage", q["QueueArn"])
        other_queue = "ActionsUsgovQueue" if group == "commercial" else "ActionsCommercialQueue"
        assert not allows(statements, "sqs:ReceiveMessage", queues[other_queue]["QueueArn"])
        assert allows(statements, "sqs:SendMessage", queues["EventsQueue"]["QueueArn"])
        for q_ in ("DeadLettersQueue", "JobsCommercialQueue", "ActionsCommercialQueue", "ActionsUsgovQueue"):
            assert not allows(statements, "sqs:SendMessage", queues[q_]["QueueArn"]), q_
    assert full.outputs["ActionsQueueCommercialUrl"].endswith("-actions-commercial")
    assert full.outputs["ActionsQueueUsgovUrl"].endswith("-actions-usgov")
    assert full.outputs["ActionsGcchFunctionName"] == full.physical["ActionsGcchFunction"]


def test_full_stack_alarm_topic(full):
    topic = full.outputs["AlarmTopicArn"]
    assert full.client("sns").get_topic_attributes(TopicArn=topic)["Attributes"]["TopicArn"] == topic


# ------------------------------------------------------------------------------------ what moto ignores


def test_template_settings_moto_ignores(full):
    res = full.template["Resources"]
    schedules = resources_of_type(full.template, "AWS::Scheduler::Schedule")
    assert len(schedules) == 1
    (schedule,) = schedules.values()
    expression = schedule["Properties"]["ScheduleExpression"]
    assert expression == {"Fn::FindInMap": ["ScheduleByMinutes", {"Ref": "ScheduleRateMinutes"}, "Expression"]}
    assert full.template["Mappings"]["ScheduleByMinutes"]["5"]["Expression"] == "rate(5 minutes)"
    assert full.template["Parameters"]["ScheduleRateMinutes"]["Default"] == "5"
    assert schedule["Properties"]["Target"]["Arn"] == {"Fn::GetAtt": ["SchedulerFunction", "Arn"]}
    # The scheduler reads `time` to pick the slot: retries must carry the scheduled time.
    assert json.loads(schedule["Properties"]["Target"]["Input"]) == {
        "time": "<aws.scheduler.scheduled-time>"
    }

    for table in ("RegistryTable", "CursorTable", "CursorTableUsgov"):
        p = res[table]["Properties"]
        assert p["BillingMode"] == "PAY_PER_REQUEST"
        assert p["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
        assert p["SSESpecification"] == {"SSEEnabled": True, "SSEType": "KMS", "KMSMasterKeyId": {"Fn::GetAtt": ["Key", "Arn"]}}
    for name, q in resources_of_type(full.template, "AWS::SQS::Queue").items():
        assert q["Properties"]["KmsMasterKeyId"] == {"Ref": "Key"}, name
    assert res["Key"]["Properties"]["EnableKeyRotation"] is True
    assert res["AlarmTopic"]["Properties"]["KmsMasterKeyId"] == {"Ref": "Key"}

    functions = resources_of_type(full.template, "AWS::Lambda::Function")
    assert set(functions) == set(FUNCTIONS)
    for name, fn in functions.items():
        p = fn["Properties"]
        assert p["Architectures"] == ["arm64"], name
        assert p["Runtime"] == "provided.al2023"
        assert p["KmsKeyArn"] == {"Fn::GetAtt": ["Key", "Arn"]}
        log_group = p["LoggingConfig"]["LogGroup"]["Ref"]
        assert res[log_group]["Properties"]["RetentionInDays"] == {"Ref": "LogRetentionDays"}
        assert res[log_group]["Properties"]["KmsKeyId"] == {"Fn::GetAtt": ["Key", "Arn"]}
    assert full.template["Parameters"]["LogRetentionDays"]["Default"] == 365

    esms = resources_of_type(full.template, "AWS::Lambda::EventSourceMapping")
    assert len(esms) == 4
    for esm in esms.values():
        fn = esm["Properties"]["FunctionName"]["Ref"]
        if fn.startswith("Actions"):
            # One action per invocation; low, fixed concurrency (2 is SQS's minimum).
            assert esm["Properties"]["ScalingConfig"] == {"MaximumConcurrency": 2}
            assert esm["Properties"]["BatchSize"] == 1
        else:
            assert esm["Properties"]["ScalingConfig"] == {"MaximumConcurrency": {"Ref": "PollerMaxConcurrency"}}
        assert esm["Properties"]["FunctionResponseTypes"] == ["ReportBatchItemFailures"]

    assert not re.search(r"arn:aws[-a-z]*:", json.dumps(full.template))


def test_alarms(full):
    """moto's CloudFormation creates neither CloudWatch alarms nor SNS subscriptions."""
    res = full.template["Resources"]
    alarms = resources_of_type(full.template, "AWS::CloudWatch::Alarm")
    for name, a in alarms.items():
        p = a["Properties"]
        assert p["AlarmActions"] == [{"Ref": "AlarmTopic"}], name
        assert p["OKActions"] == [{"Ref": "AlarmTopic"}], name
        assert p["TreatMissingData"] == "notBreaching", name
        assert p["ComparisonOperator"] == "GreaterThanThreshold", name
        # What it means and what to check, within CloudWatch's 1024 characters.
        assert 60 <= len(p["AlarmDescription"]) <= 1024, name
        # Either one metric or one query, never both.
        assert ("Metrics" in p) != ("MetricName" in p), name
    sub = res["AlarmEmailSubscription"]
    assert sub["Condition"] == "HasAlarmEmail"
    assert sub["Properties"]["Protocol"] == "email"
    assert sub["Properties"]["Endpoint"] == {"Ref": "AlarmEmail"}
    dlqs = {
        q["Properties"]["RedrivePolicy"]["deadLetterTargetArn"]["Fn::GetAtt"][0]
        for q in resources_of_type(full.template, "AWS::SQS::Queue").values()
        if "RedrivePolicy" in q["Properties"]
    } | {"DeadLettersQueue"}
    watched = {
        a["Properties"]["Dimensions"][0]["Value"]["Fn::GetAtt"][0]
        for a in alarms.values()
        if a["Properties"].get("MetricName") == "ApproximateNumberOfMessagesVisible"
    }
    assert dlqs == watched
    metrics = {(a["Properties"]["Namespace"], a["Properties"]["MetricName"]) for a in alarms.values() if "MetricName" in a["Properties"]}
    assert {("AWS/Lambda", "Errors"), ("AWS/Lambda", "Throttles"), ("AWS/SQS", "ApproximateAgeOfOldestMessage"), ("ITDR", "TenantsUnhealthy")} <= metrics
    assert "Dashboard" in res


# ------------------------------------------------------------------------------------ telemetry

# The pollers' metrics (shared/src/telemetry.rs; the Rust test shared/tests/telemetry_infra.rs
# checks every name and dimension set below against what the code emits).
GROUPS = {"commercial": ("Commercial", "HasCommercial"), "usgov": ("Usgov", "HasUsgov")}
ALARM_PERIOD = {"Fn::FindInMap": ["ScheduleByMinutes", {"Ref": "ScheduleRateMinutes"}, "AlarmPeriod"]}
SUSTAINED_PERIODS = {"Fn::FindInMap": ["ScheduleByMinutes", {"Ref": "ScheduleRateMinutes"}, "SustainedPeriods"]}
# alarm prefix -> (Metrics Insights function, metric, dimension set, threshold, sustained)
TELEMETRY_ALARMS = {
    "JobsRefused": ("SUM", "JobsRefused", "CloudGroup, Reason", 0, False),
    "SourceFailures": ("SUM", "SourceFailures", "CloudGroup, Kind", {"Ref": "SourceFailuresAlarmThreshold"}, True),
    "Throttled": ("SUM", "Throttled", "CloudGroup, Stream", {"Ref": "ThrottledAlarmThreshold"}, True),
    "FreshnessP99": ("MAX", "FreshnessP99Seconds", "CloudGroup, Stream", {"Ref": "FreshnessP99AlarmSeconds"}, True),
    "DeadLetters": ("SUM", "DeadLetters", "CloudGroup, Stream", 0, False),
    "LinksRefused": ("SUM", "LinksRefused", "CloudGroup, Stream", 0, False),
    "ContentLost": ("SUM", "ContentLost", "CloudGroup, Stream", 0, False),
    "JobsDeferred": ("SUM", "JobsDeferred", "CloudGroup, Kind", {"Ref": "JobsDeferredAlarmThreshold"}, True),
    # The actions functions: any action that did not complete.
    "ActionsFailed": ("SUM", "ActionsFailed", "CloudGroup, Reason", 0, False),
}
MI_QUERY = re.compile(r"^SELECT (SUM|MAX|MIN|AVG|COUNT)\((\w+)\) FROM SCHEMA\(ITDR, ([\w, ]+)\) WHERE CloudGroup = '(\w+)'$")
# Every figure of a poll, per cloud group: (metric, dimension set, statistic).
DASHBOARD_SEARCHES = {
    ("EventsEmitted", "CloudGroup,Stream", "Sum"),
    ("DuplicatesFiltered", "CloudGroup,Stream", "Sum"),
    ("DeadLetters", "CloudGroup,Stream", "Sum"),
    ("Requests", "CloudGroup,Stream", "Sum"),
    ("Throttled", "CloudGroup,Stream", "Sum"),
    ("LinksRefused", "CloudGroup,Stream", "Sum"),
    ("ContentLost", "CloudGroup,Stream", "Sum"),
    # Per-poll percentiles: the median poll's median lag, and the worst poll's p99 (what the
    # freshness alarm evaluates).
    ("FreshnessP50Seconds", "CloudGroup,Stream", "p50"),
    ("FreshnessP99Seconds", "CloudGroup,Stream", "Maximum"),
    ("PollDurationMs", "CloudGroup,Stream", "p50"),
    ("PollDurationMs", "CloudGroup,Stream", "p99"),
    ("CursorConflicts", "CloudGroup,Stream", "Sum"),
    ("PollFailures", "CloudGroup,Kind", "Sum"),
    ("SourceFailures", "CloudGroup,Kind", "Sum"),
    ("JobsDeferred", "CloudGroup,Kind", "Sum"),
    ("JobsRefused", "CloudGroup,Reason", "Sum"),
    ("TenantsUnhealthy", "CloudGroup", "Sum"),
    # The report function and the pollers' sign-in digest.
    ("ReportsWritten", "CloudGroup", "Sum"),
    ("ReportsWithoutContact", "CloudGroup", "Sum"),
    ("ReportFailures", "CloudGroup", "Sum"),
    ("DigestWriteFailures", "CloudGroup", "Sum"),
    ("ActionsCompleted", "CloudGroup,Outcome", "Sum"),
    ("ActionsFailed", "CloudGroup,Reason", "Sum"),
}
SEARCH = re.compile(r"SEARCH\('\{ITDR,([\w,]+)\} MetricName=\"(\w+)\" CloudGroup=\"(\w+)\"', '(\w+)', 300\)")


def test_telemetry_alarms(full):
    """Each group has every telemetry alarm, on the metric and dimensions the pollers emit."""
    res = full.template["Resources"]
    params = full.template["Parameters"]
    for group, (suffix, condition) in GROUPS.items():
        for prefix, (fn, metric, dims, threshold, sustained) in TELEMETRY_ALARMS.items():
            name = f"{prefix}{suffix}Alarm"
            alarm = res[name]
            assert alarm["Condition"] == condition, name
            p = alarm["Properties"]
            assert not {"Namespace", "MetricName", "Statistic", "Dimensions", "Period"} & set(p), name
            (query,) = p["Metrics"]
            assert query["ReturnData"] is True
            assert MI_QUERY.match(query["Expression"]).groups() == (fn, metric, dims, group), name
            assert p["Threshold"] == threshold, name
            if isinstance(threshold, dict):
                param = params[threshold["Ref"]]
                assert param["Type"] == "Number" and param["Default"] >= 0, name
            if sustained:
                assert query["Period"] == ALARM_PERIOD, name
                assert p["EvaluationPeriods"] == SUSTAINED_PERIODS, name
                assert p["DatapointsToAlarm"] == SUSTAINED_PERIODS, name
            else:
                # Any occurrence is an operator action.
                assert query["Period"] == 300 and p["EvaluationPeriods"] == 1, name
                assert threshold == 0
            assert metric in p["AlarmDescription"], name
    # The existing health alarm keeps its metric, now with schedule-aware periods.
    for group, (suffix, condition) in GROUPS.items():
        p = res[f"TenantsUnhealthy{suffix}Alarm"]["Properties"]
        assert (p["Namespace"], p["MetricName"], p["Statistic"]) == ("ITDR", "TenantsUnhealthy", "Maximum")
        assert p["Dimensions"] == [{"Name": "CloudGroup", "Value": group}]
        assert p["Period"] == ALARM_PERIOD and p["EvaluationPeriods"] == SUSTAINED_PERIODS
        assert p["Threshold"] == 0
    itdr = [
        a for name, a in resources_of_type(full.template, "AWS::CloudWatch::Alarm").items()
        if (a["Properties"].get("Namespace") == "ITDR" or "Metrics" in a["Properties"])
        and not name.startswith("ReportFailures")  # the report functions' (test_report_stack)
    ]
    assert len(itdr) == len(GROUPS) * (len(TELEMETRY_ALARMS) + 1)


def test_alarm_periods_follow_the_schedule():
    """A sustained alarm needs a poll of every job in each of its periods, and Metrics
    Insights alarms evaluate at most the last 3 hours."""
    for minutes, row in raw_template()["Mappings"]["ScheduleByMinutes"].items():
        slot = 60 * int(minutes)
        assert row["AlarmPeriod"] == max(300, slot), minutes
        assert row["AlarmPeriod"] % 60 == 0
        assert 2 <= row["SustainedPeriods"] and row["AlarmPeriod"] * row["SustainedPeriods"] <= 3 * 3600, minutes
    assert raw_template()["Mappings"]["ScheduleByMinutes"]["5"]["SustainedPeriods"] == 3


@pytest.fixture(scope="module")
def commercial(moto_url):
    return deploy(moto_url, "us-west-2", "itdr-commercial", {"Deployment": "commercial"})


def _dashboard(stack):
    name = stack.outputs["DashboardName"]
    return json.loads(stack.client("cloudwatch").get_dashboard(DashboardName=name)["DashboardBody"])


@pytest.mark.parametrize("stack_name", ["full", "commercial", "usgov"])
def test_dashboard_as_deployed(stack_name, request):
    """The body moto stores after substitution: valid JSON, every figure per cloud group."""
    stack = request.getfixturevalue(stack_name)
    body = _dashboard(stack)
    groups = {"full": {"commercial", "usgov"}, "commercial": {"commercial"}, "usgov": {"usgov"}}[stack_name]
    found = {}
    for w in body["widgets"]:
        assert {"type", "width", "height", "properties"} <= set(w)
        assert w["width"] <= 24
        if w["type"] != "metric":
            continue
        assert w["properties"]["region"] == stack.region
        for row in w["properties"]["metrics"]:
            # ITDR metrics only through SEARCH: dimension sets exactly as emitted.
            assert "ITDR" not in [x for x in row if isinstance(x, str)], row
            for item in row:
                if isinstance(item, dict) and "expression" in item:
                    assert re.fullmatch(r"[a-z][a-zA-Z0-9_]*", item["id"])
                    for dims, metric, group, stat in SEARCH.findall(item["expression"]):
                        found.setdefault(group, set()).add((metric, dims, stat))
    assert set(found) == groups
    for group in groups:
        assert found[group] == DASHBOARD_SEARCHES, group
    titles = [w["properties"].get("title") for w in body["widgets"]]
    assert ("Commercial poller" in titles) == ("commercial" in groups)
    assert ("US Government poller" in titles) == ("usgov" in groups)
    text = json.dumps(body)
    assert "${" not in text.replace("${PROP(", "")  # only dynamic labels are left
    # The freshness graph marks the alarm threshold (default).
    marks = [a["value"] for w in body["widgets"] for a in w["properties"].get("annotations", {}).get("horizontal", [])]
    assert marks == [3600] * len(groups)
    # The per-group Lambda and jobs widgets name this stack's function and queues.
    for group in groups:
        fn = "PollerFunction" if group == "commercial" else "PollerGcchFunction"
        assert stack.physical[fn] in text
        jobs = "JobsCommercialQueue" if group == "commercial" else "JobsUsgovQueue"
        assert stack.physical[jobs].rsplit("/", 1)[-1] in text


def test_dashboard_group_blocks_are_one_text():
    """Both groups' widgets come from the same text, so they cannot drift apart."""
    parts = raw_template()["Resources"]["Dashboard"]["Properties"]["DashboardBody"]["Fn::Join"][1]
    blocks = {}
    for part in parts:
        if isinstance(part, dict) and "Fn::If" in part:
            cond, yes, no = part["Fn::If"]
            assert no == ""
            text, variables = yes["Fn::Sub"]
            blocks.setdefault(cond, []).append((text, variables))
    assert set(blocks) == {"HasCommercial", "HasUsgov"}
    # The pollers' block, then the actions functions' block, in each group.
    assert len(blocks["HasCommercial"]) == len(blocks["HasUsgov"]) == 2
    for (ctext, cvars), (utext, uvars) in zip(blocks["HasCommercial"], blocks["HasUsgov"]):
        assert ctext == utext
        assert cvars["CloudGroup"] == "commercial"
        assert uvars["CloudGroup"] == "usgov"


# ------------------------------------------------------------------------------------ US Government stack


def test_usgov_stack_deploys_alone_in_govcloud(usgov):
    assert usgov.outputs["Deployment"] == "usgov"
    present = set(usgov.physical)
    assert {"JobsUsgovQueue", "JobsUsgovDLQ", "PollerGcchFunction", "PollerGcchRole", "SchedulerFunction"} <= present
    assert not present & {"JobsCommercialQueue", "JobsCommercialDLQ", "PollerFunction", "PollerRole"}
    assert {"ActionsUsgovQueue", "ActionsUsgovDLQ", "ActionsGcchFunction", "ActionsGcchRole"} <= present
    assert not present & {"ActionsCommercialQueue", "ActionsCommercialDLQ", "ActionsFunction", "ActionsRole"}
    assert "ActionsQueueCommercialUrl" not in usgov.outputs and "ActionsQueueUsgovUrl" in usgov.outputs
    assert "JobsQueueCommercialUrl" not in usgov.outputs

    env = function_config(usgov, "SchedulerFunction")["Environment"]["Variables"]
    assert env["ITDR_JOBS_QUEUE_COMMERCIAL_URL"] == ""
    assert env["ITDR_JOBS_QUEUE_USGOV_URL"] == usgov.outputs["JobsQueueUsgovUrl"]
    poller = function_config(usgov, "PollerGcchFunction")
    assert poller["Environment"]["Variables"]["ITDR_CLOUD_GROUP"] == "usgov"
    # one poller at concurrency 4: floor(0.8 * 122 / 4)
    assert poller["Environment"]["Variables"]["ITDR_APP_REQUESTS_PER_10S"] == "24"
    esm = esm_for(usgov, "PollerGcchFunction")
    assert esm["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert esm["EventSourceArn"] == queue_attrs(usgov, "JobsUsgovQueue")["QueueArn"]

    # Partition-aware: the ARNs of this stack's resources are in the GovCloud partition. moto
    # resolves the AWS::Partition pseudo parameter to "aws" in every region, so the secret ARN
    # (built with ${AWS::Partition}) is checked for region and prefix here, and for the
    # partition in test_every_built_arn_uses_the_partition_parameter.
    account = usgov.description["StackId"].split(":")[4]
    for role in ("SchedulerRole", "PollerGcchRole", "ActionsGcchRole"):
        for s in role_statements(usgov, role):
            for r in as_list(s["Resource"]):
                if s["Action"] == "secretsmanager:GetSecretValue":
                    assert r.split(":", 2)[2] == f"secretsmanager:{GOV_REGION}:{account}:secret:itdr/usgov/*"
                else:
                    assert r == "*" or r.startswith("arn:aws-us-gov:"), (role, r)
    statements = role_statements(usgov, "PollerGcchRole")
    gov_secret = f"arn:aws:secretsmanager:{GOV_REGION}:{account}:secret:itdr/usgov/default-AbC123"
    assert allows(statements, "secretsmanager:GetSecretValue", gov_secret)
    assert not allows(statements, "secretsmanager:GetSecretValue", gov_secret.replace("/usgov/", "/commercial/"))

    # EventBridge rule fallback instead of EventBridge Scheduler.
    assert not resources_of_type(usgov.template, "AWS::Scheduler::Schedule") or all(
        v.get("Condition") == "UseEventBridgeScheduler"
        for v in resources_of_type(usgov.template, "AWS::Scheduler::Schedule").values()
    )
    assert "ScheduleRule" in present and "ScheduleRole" not in present
    rule = usgov.client("events").describe_rule(Name=usgov.physical["ScheduleRule"])
    assert rule["ScheduleExpression"] == "rate(5 minutes)"


def test_commercial_only_stack_deploys(commercial):
    stack = commercial
    present = set(stack.physical)
    assert {"JobsCommercialQueue", "PollerFunction"} <= present
    assert not present & {"JobsUsgovQueue", "JobsUsgovDLQ", "PollerGcchFunction", "PollerGcchRole", "CursorTableUsgov"}
    assert {"ActionsCommercialQueue", "ActionsFunction"} <= present
    assert not present & {"ActionsUsgovQueue", "ActionsUsgovDLQ", "ActionsGcchFunction", "ActionsGcchRole"}
    env = function_config(stack, "SchedulerFunction")["Environment"]["Variables"]
    assert env["ITDR_JOBS_QUEUE_USGOV_URL"] == ""
    assert function_config(stack, "PollerFunction")["Environment"]["Variables"]["ITDR_APP_REQUESTS_PER_10S"] == "19"
    assert actions_of(role_statements(stack, "SchedulerRole")) == EXPECTED_ACTIONS["SchedulerRole"]


def test_sam_conditions_reach_generated_resources():
    """SAM must carry a function's Condition to the event source mapping it generates."""
    out = transform(with_s3_code(raw_template(), "us-east-1"), {}, None)
    esms = resources_of_type(out, "AWS::Lambda::EventSourceMapping")
    conditions = {v["Properties"]["FunctionName"]["Ref"]: v.get("Condition") for v in esms.values()}
    assert conditions == {
        "PollerFunction": "HasCommercial",
        "PollerGcchFunction": "HasUsgov",
        "ActionsFunction": "HasCommercial",
        "ActionsGcchFunction": "HasUsgov",
    }

# ------------------------------------------------------------------------------------ report function

REPORT_PARAMS = {"Deployment": "full", "ReportSender": "reports@itdr.example", "ReportIntervalDays": "5"}
REPORT_ACTIONS = {
    "secretsmanager:GetSecretValue",
    "dynamodb:GetItem",
    "dynamodb:Scan",
    "dynamodb:UpdateItem",
    "dynamodb:Query",
    "sqs:SendMessage",
    "s3:PutObject",
    "s3:GetObject",
    "ses:SendEmail",
    "kms:Decrypt",
    "kms:GenerateDataKey",
    "logs:CreateLogStream",
    "logs:PutLogEvents",
}


@pytest.fixture(scope="module")
def reports(moto_url):
    return deploy(moto_url, "eu-west-1", "itdr-reports", REPORT_PARAMS)


def test_report_stack(reports):
    stack = reports
    present = set(stack.physical)
    assert {"ReportsBucketCommercial", "ReportsBucketUsgov", "ReportFunction", "ReportGcchFunction"} <= present
    s3 = stack.client("s3")
    buckets = {g: stack.physical[f"ReportsBucket{g}"] for g in ("Commercial", "Usgov")}
    assert buckets["Commercial"] != buckets["Usgov"]
    for b in buckets.values():
        enc = s3.get_bucket_encryption(Bucket=b)["ServerSideEncryptionConfiguration"]["Rules"][0]
        assert enc["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "aws:kms"
    # Each group's function writes into its own bucket, with its own secrets and the settings.
    account = stack.description["StackId"].split(":")[4]
    secret = "arn:aws:secretsmanager:eu-west-1:{}:secret:itdr/{}/default-AbC123"
    for fn, role, group, own, other in [
        ("ReportFunction", "ReportRole", "commercial", "Commercial", "Usgov"),
        ("ReportGcchFunction", "ReportGcchRole", "usgov", "Usgov", "Commercial"),
    ]:
        env = function_config(stack, fn)["Environment"]["Variables"]
        assert env["ITDR_CLOUD_GROUP"] == group
        assert env["ITDR_REPORTS_BUCKET"] == buckets[own]
        assert env["ITDR_REPORT_SENDER"] == "reports@itdr.example"
        assert str(env["ITDR_REPORT_INTERVAL_DAYS"]) == "5"
        assert str(env["ITDR_REPORT_LINK_EXPIRY_SECS"]) == "604800"
        statements = role_statements(stack, role)
        assert actions_of(statements) == REPORT_ACTIONS, role
        for st in statements:
            assert "*" not in as_list(st["Resource"]), (role, st)
        own_key = f"arn:aws:s3:::{buckets[own]}/reports/t/2026-06-01/assessment.html"
        assert allows(statements, "s3:PutObject", own_key)
        assert not allows(statements, "s3:PutObject", own_key.replace(buckets[own], buckets[other]))
        assert allows(statements, "secretsmanager:GetSecretValue", secret.format(account, group))
        other_group = "usgov" if group == "commercial" else "commercial"
        assert not allows(statements, "secretsmanager:GetSecretValue", secret.format(account, other_group))
        update = [st for st in statements if "dynamodb:UpdateItem" in as_list(st["Action"])]
        assert update and all(
            st["Condition"]["ForAllValues:StringEquals"]["dynamodb:Attributes"] == ["tenant_id", "report_state"]
            for st in update
        )
    # moto's CloudFormation applies neither a bucket's public access block, nor its bucket
    # policy, nor its lifecycle rules: from the template.
    for g in buckets:
        rules = stack.template["Resources"][f"ReportsBucket{g}"]["Properties"]["LifecycleConfiguration"]["Rules"]
        assert any(r.get("ExpirationInDays") == {"Ref": "ReportRetentionDays"} for r in rules), rules
        policy = stack.template["Resources"][f"ReportsBucket{g}Policy"]["Properties"]
        assert policy["Bucket"] == {"Ref": f"ReportsBucket{g}"}
        assert any(
            st["Effect"] == "Deny" and st["Condition"]["Bool"]["aws:SecureTransport"] == "false"
            for st in policy["PolicyDocument"]["Statement"]
        )
        block = stack.template["Resources"][f"ReportsBucket{g}"]["Properties"]["PublicAccessBlockConfiguration"]
        assert block == dict.fromkeys(
            ["BlockPublicAcls", "BlockPublicPolicy", "IgnorePublicAcls", "RestrictPublicBuckets"], True
        )
    rules = resources_of_type(stack.template, "AWS::Events::Rule")
    daily = [r for r in rules.values() if r["Properties"].get("ScheduleExpression") == "rate(1 day)"]
    assert len(daily) == 2
    ttl = stack.template["Resources"]["CursorTable"]["Properties"]["TimeToLiveSpecification"]
    assert ttl == {"AttributeName": "ttl", "Enabled": True}
