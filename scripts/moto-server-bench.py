"""moto's server for the scheduler fan-out bench, without moto's per-message scans of a queue.

`make bench-fanout` installs this file as `.tools/venv/bin/moto_server_bench` (run by the venv's
Python) and points ITDR_MOTO_SERVER at it; it takes moto_server's arguments. Only that bench
uses it: `make test` runs moto as released.

moto 5.2's SQS reads every message a queue holds several times for each message it is sent:
each send builds all of the queue's attributes (three of them count the queue's messages, with
two clock reads per message) only to look up `ContentBasedDeduplication`, and a FIFO send
compares its deduplication id with every message in the queue. Sending the 30,000 jobs of
10,000 tenants therefore costs time in the square of the queue's depth (hours), and the figure
would be moto's. Its server also lists moto's package directory on disk for every request.
This launcher replaces, before the server starts:

- `Queue.attributes`: the same names and values, each computed when it is read, so a lookup
  of `ContentBasedDeduplication` no longer counts messages (GetQueueAttributes still does);
- the FIFO deduplication in `Queue.add_message`: a map from deduplication id (with the group
  when `DeduplicationScope` is `messageGroup`) to when it was last accepted, so a message
  whose id was accepted in the last 5 minutes is dropped, as SQS documents, without a scan;
- `moto.core.utils.unix_time` without an argument: the clock as a float, without building
  two datetimes (the same value);
- `moto.backends.list_of_moto_modules`: listed once.

Each replacement is checked against the installed moto: if a name it replaces is missing the
launcher says so on stderr and runs moto unchanged (the bench is then slow, not wrong).
"""

import json
import sys
import time
from collections.abc import Mapping


def _patch():
    import moto
    import moto.backends as backends
    import moto.core.utils as core_utils
    from moto.sqs import models

    queue = models.Queue
    needed = [
        (queue, "attributes"),
        (queue, "add_message"),
        (queue, "BASE_ATTRIBUTES"),
        (queue, "FIFO_ATTRIBUTES"),
        (queue, "KMS_ATTRIBUTES"),
        (core_utils, "unix_time"),
        (core_utils, "camelcase_to_underscores"),
        (backends, "list_of_moto_modules"),
        (models, "DEDUPLICATION_TIME_IN_SECONDS"),
    ]
    missing = [f"{getattr(o, '__name__', o)}.{n}" for o, n in needed if not hasattr(o, n)]
    if missing:
        print(
            f"moto_server_bench: moto {moto.__version__} lacks {', '.join(missing)}; "
            "running moto unchanged",
            file=sys.stderr,
        )
        return

    to_field = core_utils.camelcase_to_underscores

    class LazyAttributes(Mapping):
        """A queue's attributes, each computed when read (moto's names and values)."""

        def __init__(self, q):
            self._q = q
            names = list(q.BASE_ATTRIBUTES)
            if q.fifo_queue:
                names += q.FIFO_ATTRIBUTES
            if q.kms_master_key_id:
                names += q.KMS_ATTRIBUTES
            if q.policy:
                names.append("Policy")
            if q.redrive_policy:
                names.append("RedrivePolicy")
            self._names = list(dict.fromkeys(names))

        def __getitem__(self, name):
            if name not in self._names:
                raise KeyError(name)
            if name == "Policy":
                value = self._q.policy
            elif name == "RedrivePolicy":
                value = json.dumps(self._q.redrive_policy)
            else:
                value = getattr(self._q, to_field(name))
            if isinstance(value, bool):
                value = str(value).lower()
            return value

        def __iter__(self):
            return iter(self._names)

        def __len__(self):
            return len(self._names)

    queue.attributes = property(LazyAttributes)

    window = float(models.DEDUPLICATION_TIME_IN_SECONDS)
    original_add = queue.add_message

    def add_message(self, message):
        # moto's own path for standard queues and for queues that feed a Lambda function.
        if not self.fifo_queue or self.lambda_event_source_mappings:
            return original_add(self, message)
        if self.content_based_deduplication in (True, "true") or message.deduplication_id:
            seen = self.__dict__.setdefault("_bench_dedup", {})
            key = message.deduplication_id
            if getattr(self, "deduplication_scope", "queue") == "messageGroup":
                key = (message.group_id, key)
            now = message.sent_timestamp / 1000.0
            last = seen.get(key)
            if last is not None and now - last < window:
                return None
            seen[key] = now
        with self._messages_lock:
            self._messages.append(message)
            self._messages_lock.notify_all()
        return None

    queue.add_message = add_message

    original_unix_time = core_utils.unix_time

    def unix_time(dt=None):
        if dt is None:
            return time.time()
        return original_unix_time(dt)

    core_utils.unix_time = unix_time
    for module in list(sys.modules.values()):
        if getattr(module, "unix_time", None) is original_unix_time:
            module.unix_time = unix_time

    modules = list(backends.list_of_moto_modules())
    backends.list_of_moto_modules = lambda: iter(modules)


def main():
    from moto.server import main as server_main

    _patch()
    return server_main(sys.argv[1:])


if __name__ == "__main__":
    sys.exit(main())
