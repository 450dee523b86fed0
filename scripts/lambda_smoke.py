#!/usr/bin/env python3
"""Helper of scripts/lambda-smoke.sh: the AWS side (on moto) and the Graph side (on the
Microsoft simulator) of the Lambda smoke test.

Subcommands (each prints one JSON object on stdout, or fails with exit code 1):
  setup          tables, queues and secrets as tests/aws/src/lib.rs creates them, and the
                 simulator's tenants registered in the registry item format of
                 shared/src/aws/dynamo.rs
  schedule-event an EventBridge Scheduler event (tests/aws/events/scheduler-eventbridge.json)
                 with the current time
  jobs           receives the jobs the scheduler sent, checks them against the jobs expected
                 from the registry (shared/src/aws/jobs.rs) and writes the SQS events the
                 pollers are invoked with
  pick-window    the initial lookback whose window holds at least N sign-ins of a tenant
  check-batch    checks an SqsBatchResponse against the expected failures
  drain-events   receives (and deletes) every envelope of the events queue and counts events
  verify-page    reads a tenant's cursor and re-runs its Graph query on the simulator
  runtime-relay  relays the Lambda runtime API of `cargo lambda watch`, giving the functions an
                 absolute deadline (see cmd_runtime_relay)

The simulated tenants are the ones `itdr sim` lists on its standard output (in the order of
its --cloud flags); their app, one per cloud group, is in the configuration it writes
(--config-out), the client secret in a file beside it. Secrets never reach stdout, stderr or
the state file: they go only to Secrets Manager (moto) and to the simulator.
"""

import argparse
import datetime as dt
import http.client
import http.server
import select
import socket
import threading
import json
import math
import os
import re
import sys
import time
import tomllib
import urllib.error
import urllib.parse
import urllib.request
import uuid

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

REGISTRY_TABLE = "itdr-registry"
CURSOR_TABLE = "itdr-cursors"
SECRET_PREFIX = "itdr"
# The app reference of every simulated tenant: secret `itdr/<cloud group>/sim`.
APP_REF = "sim"
QUEUES = {
    "jobs_commercial": "itdr-jobs-commercial.fifo",
    "jobs_usgov": "itdr-jobs-usgov.fifo",
    "events": "itdr-events",
    "dead_letters": "itdr-dead-letters",
}
STREAMS = ["signins", "directory_audits"]
GROUP = {"global": "commercial", "gcc": "commercial", "china": "commercial",
         "gcc_high": "usgov", "dod": "usgov"}
LOGIN_HOST = {"global": "login.microsoftonline.com", "gcc": "login.microsoftonline.com",
              "gcc_high": "login.microsoftonline.us", "dod": "login.microsoftonline.us"}
GRAPH_HOST = {"global": "graph.microsoft.com", "gcc": "graph.microsoft.com",
              "gcc_high": "graph.microsoft.us", "dod": "dod-graph.microsoft.us"}
REGION = "us-east-1"
ACCOUNT = "123456789012"


def fail(msg):
    print(f"lambda_smoke.py: {msg}", file=sys.stderr)
    sys.exit(1)


def out(obj):
    print(json.dumps(obj, sort_keys=True))


def rfc3339_millis(t):
    return t.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.") + \
        f"{t.microsecond // 1000:03d}Z"


def parse_time(s):
    return dt.datetime.fromisoformat(s.replace("Z", "+00:00"))


def client(service, endpoint):
    return boto3.client(
        service, endpoint_url=endpoint, region_name=REGION,
        aws_access_key_id="test", aws_secret_access_key="test",
        config=Config(retries={"max_attempts": 3, "mode": "standard"}))


def load_json(path):
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def write_json(path, obj):
    with open(path, "w", encoding="utf-8") as f:
        json.dump(obj, f, indent=2, sort_keys=True)
        f.write("\n")


# ---------------------------------------------------------------------------------------------
# setup


def create_table(ddb, name, keys):
    ddb.create_table(
        TableName=name,
        BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[{"AttributeName": k, "AttributeType": "S"} for k in keys],
        KeySchema=[{"AttributeName": k, "KeyType": "HASH" if i == 0 else "RANGE"}
                   for i, k in enumerate(keys)])


def create_queue(sqs, name):
    attrs = {"VisibilityTimeout": "60"}
    if name.endswith(".fifo"):
        attrs.update({"FifoQueue": "true", "ContentBasedDeduplication": "false"})
    return sqs.create_queue(QueueName=name, Attributes=attrs)["QueueUrl"]


def registry_item(tenant, streams, include_noninteractive, created_at):
    """One registry item as DynamoRegistry::insert writes it (dynamo.rs `encode`, rev 1)."""
    health = {"state": "pending", "last_success": None, "last_error_kind": None,
              "last_error_at": None, "consecutive_failures": 0, "last_event_at": None}
    return {
        "tenant_id": {"S": tenant["tenant_id"].lower()},
        "cloud": {"S": tenant["cloud"]},
        "cloud_group": {"S": GROUP[tenant["cloud"]]},
        "app_ref": {"S": APP_REF},
        "streams": {"L": [{"S": s} for s in streams]},
        "include_noninteractive": {"BOOL": include_noninteractive},
        "enabled": {"BOOL": True},
        "domain": {"S": tenant["domain"].lower()},
        "created_at": {"S": created_at},
        "health": {"S": json.dumps(health, separators=(",", ":"))},
        "health_state": {"S": "pending"},
        "rev": {"N": "1"},
    }


GUID = re.compile(r"\b([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})\s+(\S+)")


def sim_tenants(sim_log, clouds):
    """The tenants `itdr sim` printed (`<name> <tenant id> <domain> <cloud label>`), in the
    order of its --cloud flags, which give their clouds."""
    clouds = clouds.split(",")
    found = []
    with open(sim_log, encoding="utf-8") as f:
        for line in f:
            m = GUID.search(line)
            if m and line.startswith(" "):
                found.append({"tenant_id": m.group(1), "domain": m.group(2)})
    if len(found) != len(clouds):
        fail(f"the simulator listed {len(found)} tenants, {len(clouds)} were asked for")
    for t, c in zip(found, clouds):
        if c not in GROUP:
            fail(f"unknown cloud {c}")
        if (GROUP[c] == "usgov") != t["domain"].endswith(".us"):
            fail(f"tenant {t['tenant_id']} is not in cloud {c}")
        t["cloud"] = c
    return found


def sim_app(sim_config, group):
    """The simulated app of a cloud group: (client id, client secret)."""
    with open(sim_config, "rb") as f:
        cfg = tomllib.load(f)
    app = cfg.get("apps", {}).get(group)
    if not app:
        fail(f"no {group} app in the simulator's configuration")
    path = app["client_secret_file"]
    if not os.path.isabs(path):
        path = os.path.join(os.path.dirname(os.path.abspath(sim_config)), os.path.basename(path))
    with open(path, encoding="utf-8") as f:
        return app["client_id"], f.read().strip()


def cmd_setup(a):
    creds = sim_tenants(a.sim_log, a.clouds)
    commercial = [t for t in creds if GROUP[t["cloud"]] == "commercial"]
    usgov = [t for t in creds if GROUP[t["cloud"]] == "usgov"]
    if len(commercial) < 2 or not usgov:
        fail("the simulator must play two commercial tenants and one US Government tenant")
    # Roles: the first commercial tenant and the US Government tenant take part in the
    # functional check (both streams, non-interactive sign-ins too); the second commercial
    # tenant is the measured one (interactive sign-ins only: one Graph source, so its pages
    # are one query's pages).
    roles = {"functional": commercial[0], "measured": commercial[1], "usgov": usgov[0]}
    ddb = client("dynamodb", a.aws)
    sqs = client("sqs", a.aws)
    sm = client("secretsmanager", a.aws)
    create_table(ddb, REGISTRY_TABLE, ["tenant_id"])
    create_table(ddb, CURSOR_TABLE, ["tenant_id", "stream"])
    queues = {role: create_queue(sqs, name) for role, name in QUEUES.items()}
    created_at = rfc3339_millis(dt.datetime.now(dt.timezone.utc))
    for group in sorted({GROUP[t["cloud"]] for t in roles.values()}):
        client_id, secret = sim_app(a.sim_config, group)
        sm.create_secret(Name=f"{SECRET_PREFIX}/{group}/{APP_REF}", SecretString=json.dumps(
            {"client_id": client_id, "client_secret": secret}))
    tenants = {}
    for role, t in roles.items():
        measured = role == "measured"
        streams = ["signins"] if measured else STREAMS
        ddb.put_item(
            TableName=REGISTRY_TABLE,
            Item=registry_item(t, streams, not measured, created_at),
            ConditionExpression="attribute_not_exists(tenant_id)")
        tenants[role] = {"tenant_id": t["tenant_id"].lower(), "cloud": t["cloud"],
                         "streams": streams}
    state = {"aws": a.aws, "queues": queues, "tenants": tenants,
             "registry_table": REGISTRY_TABLE, "cursor_table": CURSOR_TABLE,
             "secret_prefix": SECRET_PREFIX}
    write_json(a.state, state)
    out({"tenants": {r: t["tenant_id"] for r, t in tenants.items()}, "queues": queues})


# ---------------------------------------------------------------------------------------------
# scheduler event and jobs


def cmd_schedule_event(a):
    ev = load_json(a.template)
    now = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
    ev["id"] = str(uuid.uuid4())
    ev["time"] = now.strftime("%Y-%m-%dT%H:%M:%SZ")
    write_json(a.out, ev)
    out({"time": ev["time"]})


def receive_all(sqs, url):
    """Receives and deletes every message of a queue (with attributes), like the harness."""
    msgs, empty = [], 0
    while empty < 2:
        r = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10,
                                MessageAttributeNames=["All"],
                                MessageSystemAttributeNames=["All"], WaitTimeSeconds=0)
        batch = r.get("Messages", [])
        if not batch:
            empty += 1
            continue
        for m in batch:
            sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
        msgs.extend(batch)
    return msgs


def lambda_record(queue_url, m):
    """The record the SQS event source mapping delivers for a received message."""
    name = queue_url.rstrip("/").rsplit("/", 1)[-1]
    attrs = {}
    for k, v in (m.get("MessageAttributes") or {}).items():
        attrs[k] = {"stringValue": v.get("StringValue"), "stringListValues": [],
                    "binaryListValues": [], "dataType": v.get("DataType")}
    return {
        "messageId": m["MessageId"],
        "receiptHandle": m["ReceiptHandle"],
        "body": m["Body"],
        "attributes": m.get("Attributes", {}),
        "messageAttributes": attrs,
        "md5OfBody": m.get("MD5OfBody"),
        "eventSource": "aws:sqs",
        "eventSourceARN": f"arn:aws:sqs:{REGION}:{ACCOUNT}:{name}",
        "awsRegion": REGION,
    }


def expected_jobs(ddb, scheduled_at, slot_secs):
    """The jobs shared/src/aws/jobs.rs `plan` makes of the registry, per cloud group."""
    at = parse_time(scheduled_at)
    slot = int(at.timestamp()) // slot_secs
    exp = {"commercial": set(), "usgov": set()}
    items = ddb.scan(TableName=REGISTRY_TABLE, ConsistentRead=True)["Items"]
    for it in items:
        if not it["enabled"]["BOOL"] or it["health_state"]["S"] == "offboarded":
            continue
        for s in sorted({x["S"] for x in it["streams"]["L"]}):
            job = {"v": 1, "tenant_id": it["tenant_id"]["S"], "cloud": it["cloud"]["S"],
                   "stream": s, "slot": slot, "scheduled_at": at.isoformat()}
            exp[GROUP[it["cloud"]["S"]]].add(json.dumps(job, sort_keys=True))
    return exp, slot


def cmd_jobs(a):
    state = load_json(a.state)
    ddb = client("dynamodb", state["aws"])
    sqs = client("sqs", state["aws"])
    sched = load_json(a.schedule_event)
    exp, slot = expected_jobs(ddb, sched["time"], a.slot_secs)
    got = {}
    problems = []
    for group in ("commercial", "usgov"):
        url = state["queues"][f"jobs_{group}"]
        msgs = receive_all(sqs, url)
        got[group] = [(url, m) for m in msgs]
        seen = set()
        for m in msgs:
            body = json.loads(m["Body"])
            if set(body) != {"v", "tenant_id", "cloud", "stream", "slot", "scheduled_at"}:
                problems.append(f"{group}: job with fields {sorted(body)}")
                continue
            key = json.dumps({**body, "scheduled_at": parse_time(body["scheduled_at"]).isoformat()},
                             sort_keys=True)
            seen.add(key)
            sys_attrs = m.get("Attributes", {})
            # The streams of one per-tenant reporting limit share a message group.
            key = "reports" if body["stream"] in ("signins", "directory_audits") else body["stream"]
            gid = f"{body['tenant_id']}#{key}"
            if sys_attrs.get("MessageGroupId") != gid:
                problems.append(f"{group}: MessageGroupId is not {gid}")
            did = f"{body['tenant_id']}#{body['stream']}#{body['slot']}"
            if sys_attrs.get("MessageDeduplicationId") != did:
                problems.append(f"{group}: MessageDeduplicationId is not {did}")
        if len(seen) != len(msgs):
            problems.append(f"{group}: duplicate jobs")
        if seen != exp[group]:
            problems.append(f"{group}: jobs differ from the registry's: "
                            f"missing {sorted(exp[group] - seen)}, extra {sorted(seen - exp[group])}")
    if problems:
        fail("scheduler jobs: " + "; ".join(problems))

    t = state["tenants"]

    def pick(group, role, stream=None):
        return [(u, m) for u, m in got[group]
                if json.loads(m["Body"])["tenant_id"] == t[role]["tenant_id"]
                and (stream is None or json.loads(m["Body"])["stream"] == stream)]

    def event(pairs):
        return {"Records": [lambda_record(u, m) for u, m in pairs]}

    own_c = pick("commercial", "functional")
    own_u = pick("usgov", "usgov")
    # One job of the other group goes to each poller: it must come back in batchItemFailures.
    foreign_to_c = pick("usgov", "usgov", "signins")
    foreign_to_u = pick("commercial", "functional", "signins")
    measured = pick("commercial", "measured", "signins")
    if len(own_c) != 2 or len(own_u) != 2 or len(foreign_to_c) != 1 or len(foreign_to_u) != 1 \
            or len(measured) != 1:
        fail("scheduler jobs: unexpected job counts for the simulated tenants")
    os.makedirs(a.out_dir, exist_ok=True)
    write_json(os.path.join(a.out_dir, "poller-commercial.json"), event(own_c + foreign_to_c))
    write_json(os.path.join(a.out_dir, "poller-usgov.json"), event(own_u + foreign_to_u))
    write_json(os.path.join(a.out_dir, "poller-measured.json"), event(measured))
    write_json(os.path.join(a.out_dir, "poller-empty.json"), {"Records": []})
    expect = {
        "poller-commercial": {"ok": [m["MessageId"] for _, m in own_c],
                              "fail": [m["MessageId"] for _, m in foreign_to_c]},
        "poller-usgov": {"ok": [m["MessageId"] for _, m in own_u],
                         "fail": [m["MessageId"] for _, m in foreign_to_u]},
        "poller-measured": {"ok": [m["MessageId"] for _, m in measured], "fail": []},
        "poller-empty": {"ok": [], "fail": []},
    }
    write_json(os.path.join(a.out_dir, "expected-failures.json"), expect)
    out({"slot": slot, "commercial_jobs": len(got["commercial"]),
         "usgov_jobs": len(got["usgov"])})


def cmd_check_batch(a):
    try:
        resp = json.loads(a.response.read())
    except json.JSONDecodeError:
        fail(f"{a.event}: the response is not JSON")
    expect = load_json(a.expected)[a.event]
    if not isinstance(resp, dict) or "batchItemFailures" not in resp:
        fail(f"{a.event}: not an SqsBatchResponse")
    failed = sorted(f.get("itemIdentifier") for f in resp["batchItemFailures"])
    if failed != sorted(expect["fail"]):
        fail(f"{a.event}: batchItemFailures {failed}, expected {sorted(expect['fail'])}")
    out({"event": a.event, "batch_item_failures": len(failed), "acknowledged": len(expect["ok"])})


# ---------------------------------------------------------------------------------------------
# events queue


def cmd_drain_events(a):
    state = load_json(a.state)
    sqs = client("sqs", state["aws"])
    msgs = receive_all(sqs, state["queues"]["events"])
    per = {}
    events = 0
    for m in msgs:
        env = json.loads(m["Body"])
        n = len(env.get("events", []))
        attrs = m.get("MessageAttributes", {})
        if attrs.get("tenant_id", {}).get("StringValue") != env.get("tenant_id"):
            fail("an envelope's tenant_id attribute differs from its body")
        for ev in env.get("events", []):
            if ev.get("metadata", {}).get("tenant_uid") != env.get("tenant_id"):
                fail("an event's metadata.tenant_uid differs from its envelope's tenant")
        key = f"{env.get('tenant_id')}#{env.get('stream')}"
        per[key] = per.get(key, 0) + n
        events += n
    out({"envelopes": len(msgs), "events": events, "per_tenant_stream": per})


# ---------------------------------------------------------------------------------------------
# Graph on the simulator


class SimGraph:
    """A minimal Graph client for the simulator: requests go to the loopback address with the
    Microsoft host in the Host header, as the functions' endpoint override sends them."""

    def __init__(self, base, tenant, sim_config):
        self.base = base.rstrip("/")
        self.tenant = tenant
        self.client_id, self.secret = sim_app(sim_config, GROUP[tenant["cloud"]])
        self.token = None
        self.requests = 0

    def _send(self, host, path_query, data=None, headers=None):
        url = self.base + path_query
        if not url.startswith(("http://127.", "http://localhost")):
            fail("the simulator is not on a loopback address")
        req = urllib.request.Request(url, data=data, headers=dict(headers or {}))
        req.add_header("Host", host)
        for attempt in range(8):
            try:
                self.requests += 1
                with urllib.request.urlopen(req, timeout=60) as r:
                    return json.loads(r.read())
            except urllib.error.HTTPError as e:
                if e.code == 429 and attempt < 7:
                    time.sleep(float(e.headers.get("Retry-After") or 2))
                    continue
                fail(f"simulator answered {e.code} on {host}")
        return None

    def login(self):
        cloud = self.tenant["cloud"]
        form = urllib.parse.urlencode({
            "client_id": self.client_id,
            "client_secret": self.secret,
            "scope": f"https://{GRAPH_HOST[cloud]}/.default",
            "grant_type": "client_credentials",
        }).encode()
        r = self._send(LOGIN_HOST[cloud], f"/{self.tenant['tenant_id']}/oauth2/v2.0/token", form,
                       {"Content-Type": "application/x-www-form-urlencoded"})
        self.token = r["access_token"]

    def pages(self, path, flt, top):
        """Yields the pages of a query, following @odata.nextLink."""
        host = GRAPH_HOST[self.tenant["cloud"]]
        pq = f"/{path}?" + urllib.parse.urlencode({"$filter": flt, "$top": str(top)})
        while pq:
            page = self._send(host, pq, headers={"Authorization": f"Bearer {self.token}"})
            yield page.get("value", [])
            nxt = page.get("@odata.nextLink")
            if not nxt:
                break
            u = urllib.parse.urlsplit(nxt)
            if u.hostname != host:
                fail("nextLink to another host")
            pq = u.path + "?" + u.query


def state_tenant(state, tenant_id):
    for t in load_json(state)["tenants"].values():
        if t["tenant_id"] == tenant_id.lower():
            return t
    fail(f"tenant {tenant_id} is not registered")
    return None


def cmd_pick_window(a):
    t = state_tenant(a.state, a.tenant)
    g = SimGraph(a.sim, t, a.sim_config)
    g.login()
    now = dt.datetime.now(dt.timezone.utc)
    lower = now - dt.timedelta(hours=a.max_hours)
    times = []
    for page in g.pages("v1.0/auditLogs/signIns",
                        f"createdDateTime ge {rfc3339_millis(lower)}", 1000):
        times.extend(parse_time(r["createdDateTime"]) for r in page)
        if len(times) >= a.target:
            break
    if len(times) < a.target:
        fail(f"only {len(times)} sign-ins in the last {a.max_hours} h; raise --max-hours")
    times.sort(reverse=True)
    oldest = times[a.target - 1]
    # Whole minutes, one extra for the bucket alignment of the window's lower bound.
    lookback = (math.ceil((now - oldest).total_seconds() / 60) + 1) * 60
    out({"initial_lookback_secs": lookback, "visible_in_window": len(times),
         "graph_requests": g.requests})


def cmd_verify_page(a):
    state = load_json(a.state)
    ddb = client("dynamodb", state["aws"])
    item = ddb.get_item(TableName=CURSOR_TABLE, ConsistentRead=True,
                        Key={"tenant_id": {"S": a.tenant.lower()}, "stream": {"S": a.stream}})
    if "Item" not in item:
        fail("no cursor was committed for the measured job")
    doc = json.loads(item["Item"]["doc"]["S"])
    sources = doc.get("sources", {})
    if list(sources) != ["signins.interactive"]:
        fail(f"the measured job read sources {sorted(sources)}, expected one")
    lower = parse_time(doc["origin"])
    upper = parse_time(sources["signins.interactive"]["high"])
    t = state_tenant(a.state, a.tenant)
    g = SimGraph(a.sim, t, a.sim_config)
    g.login()
    flt = f"createdDateTime ge {rfc3339_millis(lower)} and createdDateTime le {rfc3339_millis(upper)}"
    sizes = [len(p) for p in g.pages("v1.0/auditLogs/signIns", flt, a.page_size)]
    out({"window_lower": rfc3339_millis(lower), "window_upper": rfc3339_millis(upper),
         "window_secs": int((upper - lower).total_seconds()), "page_sizes": sizes,
         "records": sum(sizes), "graph_requests": g.requests})


# ---------------------------------------------------------------------------------------------
# runtime API relay


def cmd_runtime_relay(a):
    """Relays the runtime API of `cargo lambda watch` to a function process, unchanged but for
    one header. Lambda's `Lambda-Runtime-Deadline-Ms` is the invocation's deadline in
    milliseconds since the epoch; cargo lambda 1.9's emulator sends the constant 600000 (ten
    minutes as a duration), which a runtime reads as a deadline in January 1970, so a poller
    would find every job out of time. A value below 10^12 (before September 2001) is taken as
    a duration and sent on as now + that duration, the absolute deadline Lambda would send.

    When a function process goes away while it waits for its next event, the relay closes its
    upstream request too, as the process's own connection would have been closed: the emulator
    then drops that wait instead of handing the next invocation to a process that is gone.
    """
    up = urllib.parse.urlsplit(a.upstream)
    if up.scheme != "http" or up.hostname not in ("127.0.0.1", "localhost"):
        fail("the upstream runtime API must be on http://127.0.0.1")
    hop = {"connection", "keep-alive", "transfer-encoding", "content-length", "host",
           "date", "server"}
    rewrites = [0]

    class Relay(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):
            pass

        def _body(self):
            if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                data = b""
                while True:
                    size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                    if size == 0:
                        while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                            pass
                        return data
                    data += self.rfile.read(size)
                    self.rfile.readline()
            n = int(self.headers.get("Content-Length") or 0)
            return self.rfile.read(n) if n else None

        def _relay(self):
            body = self._body()
            headers = {k: v for k, v in self.headers.items() if k.lower() not in hop}
            conn = http.client.HTTPConnection(up.hostname, up.port, timeout=None)
            done = threading.Event()
            try:
                conn.request(self.command, self.path, body=body, headers=headers)
                threading.Thread(target=self._close_upstream_if_client_leaves,
                                 args=(conn, done), daemon=True).start()
                r = conn.getresponse()
                data = r.read()
            except (OSError, http.client.HTTPException):
                # The emulator or the function process is gone: close without an answer.
                self.close_connection = True
                return
            finally:
                done.set()
                conn.close()
            self.send_response(r.status)
            for k, v in r.getheaders():
                if k.lower() in hop:
                    continue
                if k.lower() == "lambda-runtime-deadline-ms" and v.isdigit() and int(v) < 10**12:
                    v = str(int(time.time() * 1000) + int(v))
                    rewrites[0] += 1
                    print(f"deadline rewritten: {rewrites[0]}", flush=True)
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(data)))
            try:
                self.end_headers()
                self.wfile.write(data)
            except (BrokenPipeError, ConnectionResetError):
                # The function process was stopped while it waited for its next event.
                self.close_connection = True

        def _close_upstream_if_client_leaves(self, conn, done):
            client = self.connection
            while not done.is_set():
                readable, _, _ = select.select([client], [], [], 0.2)
                if not readable:
                    continue
                try:
                    gone = client.recv(1, socket.MSG_PEEK) == b""
                except OSError:
                    gone = True
                if gone and not done.is_set() and conn.sock is not None:
                    try:
                        conn.sock.shutdown(socket.SHUT_RDWR)
                    except OSError:
                        pass
                return

        do_GET = do_POST = _relay

    server = http.server.ThreadingHTTPServer(("127.0.0.1", a.port), Relay)
    server.daemon_threads = True
    print(f"runtime relay on http://127.0.0.1:{server.server_address[1]}", flush=True)
    server.serve_forever()


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("setup")
    s.add_argument("--aws", required=True)
    s.add_argument("--sim-log", required=True)
    s.add_argument("--sim-config", required=True)
    s.add_argument("--clouds", required=True)
    s.add_argument("--state", required=True)
    s = sub.add_parser("schedule-event")
    s.add_argument("--template", required=True)
    s.add_argument("--out", required=True)
    s = sub.add_parser("jobs")
    s.add_argument("--state", required=True)
    s.add_argument("--schedule-event", required=True)
    s.add_argument("--slot-secs", type=int, default=300)
    s.add_argument("--out-dir", required=True)
    s = sub.add_parser("check-batch")
    s.add_argument("--expected", required=True)
    s.add_argument("--event", required=True)
    s.add_argument("response", type=argparse.FileType("r"))
    s = sub.add_parser("drain-events")
    s.add_argument("--state", required=True)
    s = sub.add_parser("pick-window")
    s.add_argument("--state", required=True)
    s.add_argument("--sim", required=True)
    s.add_argument("--sim-config", required=True)
    s.add_argument("--tenant", required=True)
    s.add_argument("--target", type=int, default=1000)
    s.add_argument("--max-hours", type=int, default=240)
    s = sub.add_parser("verify-page")
    s.add_argument("--state", required=True)
    s.add_argument("--sim", required=True)
    s.add_argument("--sim-config", required=True)
    s.add_argument("--tenant", required=True)
    s.add_argument("--stream", default="signins")
    s.add_argument("--page-size", type=int, default=1000)
    s = sub.add_parser("runtime-relay")
    s.add_argument("--upstream", required=True)
    s.add_argument("--port", type=int, default=0)
    a = p.parse_args()
    cmd = {"setup": cmd_setup, "schedule-event": cmd_schedule_event, "jobs": cmd_jobs,
           "check-batch": cmd_check_batch, "drain-events": cmd_drain_events,
           "pick-window": cmd_pick_window, "verify-page": cmd_verify_page,
           "runtime-relay": cmd_runtime_relay}[a.cmd]
    try:
        cmd(a)
    except (BotoCoreError, ClientError) as e:
        fail(f"{a.cmd}: AWS request to moto failed: {type(e).__name__}")
    except OSError as e:
        fail(f"{a.cmd}: {type(e).__name__}: {e.strerror or e}")


if __name__ == "__main__":
    main()
