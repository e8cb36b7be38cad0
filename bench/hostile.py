"""What a hostile or careless client can do to a running evalapp: runaway filters (backtracking LIKE, thousands of
ORs, deep nesting, numbers at the end of time), chunked and oddly compressed bodies, re-sent and concurrent
batches. Every case goes over real HTTP to gunicorn (the server we deploy; it reads chunked bodies), with tasks
run inline (EVALAPP_Q_SYNC) so a judge's filter is applied inside the ingest request; then model endpoints at
addresses only the server can reach, and guessed tokens and passwords. Prints one row per category:

    tried       requests sent
    4xx         refused (--verbose prints what each refusal said)
    503         answered "unavailable" in the deliberate outage categories (database down, overload), as they must be
    5xx         other server errors, timeouts (the --timeout) and dropped connections
    lost        answered 2xx without storing every trace sent, or refused after storing some of them; for
                "experiment deletion", also rows a refused deletion took or a finished one left behind; for SSRF
                endpoints and brute force: an address accepted, or guesses not refused past the limit
    duplicated  a trace or span stored more often than sent
    slowest     the slowest request, in ms

    .venv/bin/python bench/hostile.py
    .venv/bin/python bench/hostile.py --db postgres   # scratch database evalapp_bench_hostile on 127.0.0.1

Expected today: 5xx, lost and duplicated all 0; every slowest well under a second; "database down" answers 503
(with Retry-After) to everything sent to the server whose database is gone, and 200 to the same bodies sent again;
"overload" answers 503 with Retry-After to what a server allowing one ingest request at a time can't take yet,
and every batch is stored once it is sent again after that wait.
"""

from __future__ import annotations

import argparse
import gzip
import http.client
import json
import os
import secrets
import signal
import subprocess
import sys
import tempfile
import threading
import time
import zlib
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

MAX_BODY_BYTES = 1024 * 1024  # the server's EVALAPP_MAX_BODY_BYTES here, so "too large" is cheap to send
MAX_TIMESTAMP_MS = 253_402_300_799_999
BACKTRACKING = "%a%a%a%a%a%a%a%a%a%a%a%a%b"
LONG_NAME = "a" * 299
START_NS = 1_795_176_000_000_000_000


@dataclass
class Outcome:
    status: int  # 0: no answer (timeout, dropped connection)
    ms: float
    sent: set[str] = field(default_factory=set)  # trace ids the request carried
    spans_per_trace: int = 1


@dataclass
class Tally:
    tried: int = 0
    refused: int = 0
    unavailable: int = 0  # 503 in the deliberate outage categories: the answer they must give
    failed: int = 0
    lost: int = 0
    duplicated: int = 0
    slowest_ms: float = 0.0
    notes: list[str] = field(default_factory=list)


class Server:
    def __init__(self, port: int, token: str, timeout: float):
        self.port, self.token, self.timeout = port, token, timeout
        self.last_retry_after = ""

    def request(self, method: str, path: str, body: bytes | Iterable[bytes] | None = None, headers: dict[str, str] | None = None) -> tuple[int, bytes, float]:
        headers = {"Authorization": f"Token {self.token}", **(headers or {})}
        began = time.perf_counter()
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=self.timeout)
        try:
            chunked = body is not None and not isinstance(body, bytes)
            connection.request(method, path, body=body, headers=headers, encode_chunked=chunked)
            response = connection.getresponse()
            self.last_retry_after = response.getheader("Retry-After") or ""
            return response.status, response.read(), (time.perf_counter() - began) * 1000
        except (OSError, http.client.HTTPException):
            return 0, b"", (time.perf_counter() - began) * 1000
        finally:
            connection.close()

    def get_json(self, path: str, **params: str) -> dict:
        status, body, _ = self.request("GET", f"{path}?{urlencode(params)}" if params else path)
        return json.loads(body) if status == 200 else {}


# --- bodies -------------------------------------------------------------------------------------------------

_counter = iter(range(1, 10**9))


def fresh_ids(count: int) -> list[str]:
    return [f"{next(_counter):032x}" for _ in range(count)]


def otlp_body(ids: list[str], *, name: str = "agent") -> bytes:
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
    from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span

    spans = [
        Span(trace_id=bytes.fromhex(trace_id), span_id=bytes.fromhex(trace_id[16:]), name=name, start_time_unix_nano=START_NS, end_time_unix_nano=START_NS + 10**9)
        for trace_id in ids
    ]
    return ExportTraceServiceRequest(resource_spans=[ResourceSpans(scope_spans=[ScopeSpans(spans=spans)])]).SerializeToString()


def json_body(ids: list[str], *, name: str = "agent", pad: int = 0) -> bytes:
    traces = [
        {
            "trace_id": trace_id,
            "name": name,
            "metadata": {"pad": "x" * pad} if pad else {},
            "spans": [{"span_id": "root", "name": name, "start_time": "2026-11-20T12:00:00+00:00", "end_time": "2026-11-20T12:00:01+00:00"}],
        }
        for trace_id in ids
    ]
    return json.dumps({"traces": traces}).encode()


def in_pieces(body: bytes, size: int = 4096) -> Iterable[bytes]:
    return (body[start : start + size] for start in range(0, len(body), size))


# --- the cases ----------------------------------------------------------------------------------------------


class Bench:
    def __init__(self, server: Server, experiments: dict[str, int], *, verbose: bool = False, dead: Server | None = None, busy: Server | None = None):
        self.verbose = verbose
        self.server = server
        self.dead = dead  # the same app on a database that can't be reached
        self.busy = busy  # the same app and database, taking one ingest request at a time
        self.experiments = experiments
        self.tallies: dict[str, Tally] = {}
        self.unchecked_endpoints: list[int] = []

    def record(self, category: str, outcome: Outcome, body: bytes = b"") -> None:
        tally = self.tallies.setdefault(category, Tally())
        tally.tried += 1
        tally.slowest_ms = max(tally.slowest_ms, outcome.ms)
        if outcome.status == 503 and category in OUTAGES:
            tally.unavailable += 1
            if self.verbose:
                tally.notes.append(f"503: {body[:160]!r}")
        elif outcome.status == 0 or outcome.status >= 500:
            tally.failed += 1
            tally.notes.append(f"{outcome.status or 'no answer'} after {outcome.ms:.0f} ms: {body[:120]!r}")
        elif outcome.status >= 400:
            tally.refused += 1
            if self.verbose:
                tally.notes.append(f"{outcome.status}: {body[:160]!r}")
        if outcome.sent and outcome.status:  # no answer: whatever was stored, the client can't know
            stored = self.stored(outcome.sent)
            ok = 200 <= outcome.status < 300
            if (ok and len(stored) < len(outcome.sent)) or (not ok and stored):
                tally.lost += 1
                tally.notes.append(f"{outcome.status}: {len(stored)} of {len(outcome.sent)} traces stored")
            doubled = sum(1 for spans in stored.values() if spans > outcome.spans_per_trace)
            if doubled:
                tally.duplicated += doubled

    @staticmethod
    def stored(ids: set[str]) -> dict[str, int]:
        from django.db.models import Count

        from traces.models import Trace

        rows = Trace.objects.filter(trace_id__in=ids).annotate(spans_stored=Count("spans")).values_list("trace_id", "spans_stored")
        return dict(rows)

    def send(self, category: str, path: str, body, headers: dict[str, str], ids: list[str], spans_per_trace: int = 1) -> Outcome:
        status, answer, ms = self.server.request("POST", path, body, headers)
        outcome = Outcome(status, ms, set(ids), spans_per_trace)
        self.record(category, outcome, answer)
        return outcome

    def otlp(self, category: str, body, ids: list[str], *, encoding: str = "", experiment: str = "ingest") -> Outcome:
        headers = {"Content-Type": "application/x-protobuf", "x-evalapp-experiment-id": str(self.experiments[experiment])}
        if encoding:
            headers["Content-Encoding"] = encoding
        return self.send(category, "/v1/traces", body, headers, ids)

    def batch(self, category: str, body, ids: list[str], *, encoding: str = "", experiment: str = "ingest") -> Outcome:
        headers = {"Content-Type": "application/json"}
        if encoding:
            headers["Content-Encoding"] = encoding
        return self.send(category, f"/api/v1/experiments/{self.experiments[experiment]}/traces", body, headers, ids)

    def search(self, category: str, filter_string: str, experiment: str = "names") -> None:
        path = f"/api/v1/experiments/{self.experiments[experiment]}/traces?" + urlencode({"filter_string": filter_string})
        status, answer, ms = self.server.request("GET", path)
        self.record(category, Outcome(status, ms), answer)

    def judge(self, category: str, name: str, filter_string: str, experiment: str = "judged") -> int:
        body = {"name": name, "instructions": "Is {{ outputs }} helpful?", "endpoint": "nowhere", "active": True, "filter_string": filter_string}
        status, answer, ms = self.server.request(
            "POST", f"/api/v1/experiments/{self.experiments[experiment]}/judges", json.dumps(body).encode(), {"Content-Type": "application/json"}
        )
        self.record(category, Outcome(status, ms), answer)
        return status

    # 1. LIKE that backtracks
    def like_filters(self) -> None:
        category = "LIKE filters"
        for text in (
            f"trace.name LIKE '{BACKTRACKING}'",
            f"trace.name ILIKE '{BACKTRACKING.upper()}'",
            f"span.name LIKE '{BACKTRACKING}'",
            f"metadata.note LIKE '{BACKTRACKING}'",
            "trace.name LIKE '" + "%_" * 10 + "b'",
            "trace.name LIKE '" + "x" * 300 + "'",  # past the pattern length limit
            "trace.name LIKE '" + "%a" * 40 + "'",  # past the wildcard limit
        ):
            self.search(category, text)
        # Saved as a judge's filter, it runs on every ingest (inline here).
        if self.judge(category, "b_enders", f"trace.name LIKE '{BACKTRACKING}'") < 300:
            for _ in range(3):
                ids = fresh_ids(20)
                self.batch(category, json_body(ids, name=LONG_NAME), ids, experiment="judged")

    # 2. huge and deep filters
    def filter_size(self) -> None:
        category = "filter size"
        texts = [
            " OR ".join(f"trace.name = 'n{n}'" for n in range(3000)),
            " OR ".join(f"tags.t='{n}'" for n in range(150)),
            "(" * 400 + "trace.status = 'OK'" + ")" * 400,
            "NOT " * 900 + "trace.status = 'OK'",
            "trace.user_id IN (" + ", ".join(f"'{n}'" for n in range(1000)) + ")",
            "trace.name = '" + "x" * 10_000 + "'",
        ]
        for text in texts:
            self.search(category, text)
        for index, text in enumerate(texts):
            self.judge(category, f"huge_{index}", text)

    # 6. numbers at and past the ends of their range
    def filter_numbers(self) -> None:
        category = "filter numbers"
        for op in ("=", "!=", "<", "<=", ">", ">="):
            for value in (0, MAX_TIMESTAMP_MS):
                self.search(category, f"trace.timestamp_ms {op} {value}")
        for text in (
            f"trace.timestamp_ms > {MAX_TIMESTAMP_MS + 1}",
            "trace.timestamp_ms < -1",
            "trace.timestamp_ms = 1.5",
            "trace.execution_time_ms > 1e16",
            "trace.execution_time_ms > 1e999",
            "trace.execution_time_ms > -1e308",
            "trace.execution_time_ms > " + "9" * 3000,
            "trace.execution_time_ms = 0.000000000000000000000000001",
        ):
            self.search(category, text)

    # 3. chunked bodies
    def chunked(self) -> None:
        category = "chunked bodies"
        ids = fresh_ids(50)
        self.otlp(category, in_pieces(otlp_body(ids), 100), ids)
        ids = fresh_ids(50)
        self.batch(category, in_pieces(json_body(ids)), ids)
        ids = fresh_ids(50)
        self.batch(category, in_pieces(gzip.compress(json_body(ids))), ids, encoding="gzip")
        ids = fresh_ids(20)
        self.batch(category, in_pieces(json_body(ids, pad=60_000), 65536), ids)  # over the 1 MiB limit: a 413
        ids = fresh_ids(20)
        self.batch(category, in_pieces(gzip.compress(json_body(ids, pad=60_000))), ids, encoding="gzip")  # 413 once inflated

    # 4. compressed bodies; fresh traces in every request, so a refusal that stored part of its body shows as lost
    def compressed(self) -> None:
        category = "gzip / deflate"
        empty_members = gzip.compress(b"", mtime=0) * 40_000  # 800 KB
        # (Content-Encoding, the body made from two batches, how many of the batches it carries)
        broken: list[tuple[str, Callable[[bytes, bytes], bytes], int]] = [
            ("gzip", lambda body, other: gzip.compress(body) + b"junk", 1),
            ("gzip", lambda body, other: gzip.compress(body) + b"\0" * 16, 1),
            ("gzip", lambda body, other: gzip.compress(body) + gzip.compress(other), 2),  # a second member
            ("gzip", lambda body, other: gzip.compress(body) + empty_members, 1),
            ("gzip", lambda body, other: gzip.compress(body)[:-1], 1),
            ("gzip", lambda body, other: gzip.compress(body)[:-4], 1),  # no length in the trailer
            ("gzip", lambda body, other: gzip.compress(body)[:-8], 1),  # no trailer at all
            ("gzip", lambda body, other: gzip.compress(body)[: len(gzip.compress(body)) // 2], 1),
            ("gzip", lambda body, other: b"", 0),
            ("deflate", lambda body, other: zlib.compress(body) + b"junk", 1),
            ("deflate", lambda body, other: zlib.compress(body) + zlib.compress(other), 2),  # a second stream
            ("deflate", lambda body, other: zlib.compress(body)[:-2], 1),
            ("br", lambda body, other: body, 1),
        ]
        whole = [("gzip", gzip.compress), ("x-gzip", gzip.compress), ("deflate", zlib.compress)]
        for make_body, sender in ((otlp_body, self.otlp), (json_body, self.batch)):
            for encoding, damage, batches in broken:
                ids, more = fresh_ids(5), fresh_ids(5)
                sender(category, damage(make_body(ids), make_body(more)), (ids + more)[: 5 * batches], encoding=encoding)
            for encoding, compress in whole:
                ids = fresh_ids(5)
                sender(category, compress(make_body(ids)), ids, encoding=encoding)

    # Cheap extras: the same traces sent again, and at once.
    def resends(self) -> None:
        category = "re-sent batches"
        ids = fresh_ids(30)
        body = otlp_body(ids)
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(lambda _: self.otlp(category, body, ids), range(8)))
        ids = fresh_ids(30)
        body = json_body(ids)
        for _ in range(3):
            self.batch(category, body, ids)
        ids = fresh_ids(1)
        self.batch(category, json.dumps({"traces": [json.loads(json_body(ids))["traces"][0]] * 2}).encode(), ids)

    # Cheap extras: bodies that are not what they say.
    def odd_bodies(self) -> None:
        category = "odd bodies"
        self.batch(category, b"[" * 100_000, [])
        self.batch(category, b'{"traces": [' + b'{"a": ' * 5000 + b"1" + b"}" * 5000 + b"]}", [])
        self.batch(category, b"\xff\xfe not utf-8", [])
        self.otlp(category, b"\x0a\xff\xff\xff\xff\x0f", [])
        self.otlp(category, b"\x0a" * 10_000, [])
        status, answer, ms = self.server.request("GET", "/api/v1/experiments/1/traces?filter_string=trace.name%20%3D%20%27a%00%27")
        self.record(category, Outcome(status, ms), answer)
        headers = {"Content-Type": "application/x-protobuf", "x-evalapp-experiment-id": "x" * 10_000}
        status, answer, ms = self.server.request("POST", "/v1/traces", otlp_body(fresh_ids(1)), headers)
        self.record(category, Outcome(status, ms), answer)


    def api(self, category: str, method: str, path: str, body: dict | None = None) -> tuple[int, dict]:
        data = json.dumps(body).encode() if body is not None else b""
        status, answer, ms = self.server.request(method, path, data, {"Content-Type": "application/json"} if body is not None else {})
        self.record(category, Outcome(status, ms), answer)
        try:
            return status, json.loads(answer or b"{}")
        except ValueError:
            return status, {}

    # 8. a stored key must not follow an endpoint to another address; the server's keys stay the server's
    def endpoint_keys(self) -> None:
        category = "endpoint keys"
        status, endpoint = self.api(category, "POST", "/api/v1/endpoints", {"name": "keyed", "model": "openai/x", "api_base": "http://127.0.0.1:9/v1", "api_key": "sk-bench-secret-123456"})
        if status == 201:
            path = f"/api/v1/endpoints/{endpoint['id']}"
            for port, change in ((10, {"api_base": "http://127.0.0.1:10/v1"}), (11, {"model": "anthropic/x"})):
                self.api(category, "PATCH", path, {"api_key": "sk-bench-secret-123456"})  # a key for where it points now
                status, after = self.api(category, "PATCH", path, change if "model" in change else {"api_base": f"http://127.0.0.1:{port}/v1"})
                if after.get("has_api_key"):  # the key went along to the new address or provider
                    self.tallies[category].lost += 1
                    self.tallies[category].notes.append("the stored key survived a change of address")
        self.api(category, "POST", "/api/v1/endpoints", {"name": "env", "model": "openai/x", "use_server_key": True})  # an editor: 400

    # 10. inputs that must be refused, leaving nothing behind
    def refused_inputs(self) -> None:
        category = "refused inputs"
        judges = f"/api/v1/experiments/{self.experiments['judged']}/judges"
        base = {"name": "refused", "instructions": "Is {{ outputs }} helpful?", "endpoint": "nowhere"}
        for change in (
            {"instructions": "Is {{ outputs }} helpful? " + "x" * (100 * 1024)},  # past the 64 KiB limit, within the body limit
            {"name": {"text": "a name"}},
            {"instructions": {"text": "Is {{ outputs }} helpful?"}},
            {"filter_string": ["trace.status = 'OK'"]},
            {"daily_cost_cap_usd": "-0"},
            {"sample_rate": "-1"},
        ):
            status, _ = self.api(category, "POST", judges, {**base, **change})
            if status < 400:
                self.tallies[category].lost += 1
                self.tallies[category].notes.append(f"accepted: {sorted(change)}")
        for moment in ("2100-01-01T00:00:00Z", "2100-06-01T00:00:00Z"):
            ids = fresh_ids(1)
            trace = {"trace_id": ids[0], "spans": [{"span_id": "root", "name": "agent", "start_time": moment, "end_time": moment}]}
            self.batch(category, json.dumps({"traces": [trace]}).encode(), ids)

    # +. deleting an experiment (2,000 traces) while another one ingests: wrong names first, then the deletion
    def experiment_deletion(self) -> None:
        from traces.models import Experiment, Trace

        category = "experiment deletion"
        doomed = self.experiments["doomed"]
        for _ in range(10):
            ids = fresh_ids(200)
            self.batch("setup", json_body(ids), ids, experiment="doomed")
        assert self.tallies.pop("setup").lost == 0
        path = f"/api/v1/experiments/{doomed}"
        for wrong in ({"confirm_name": "hostile"}, {}, {"confirm_name": ["hostile-doomed"]}, {"confirm_name": "HOSTILE-DOOMED"}):
            self.api(category, "DELETE", path, wrong)
        if (left := Trace.objects.filter(experiment_id=doomed).count()) != 2000:
            self.tallies[category].lost += 2000 - left
            self.tallies[category].notes.append(f"a refused deletion took {2000 - left} traces")
        stop = threading.Event()

        def ingest_elsewhere() -> None:
            while not stop.is_set():
                ids = fresh_ids(50)
                self.batch("ingest meanwhile", json_body(ids), ids)  # another experiment: its slowest is the figure

        with ThreadPoolExecutor(1) as pool:
            elsewhere = pool.submit(ingest_elsewhere)
            time.sleep(0.5)
            self.api(category, "DELETE", path, {"confirm_name": "hostile-doomed"})  # tasks run inline here: until done
            for _ in range(3):
                ids = fresh_ids(5)
                self.batch(category, json_body(ids), ids, experiment="doomed")  # refused: 410 while deleting, then 404
            time.sleep(0.5)
            stop.set()
            elsewhere.result()
        left = Trace.objects.filter(experiment_id=doomed).count() + Experiment.all_objects.filter(pk=doomed).count()
        if left:
            self.tallies[category].lost += left
            self.tallies[category].notes.append(f"{left} rows left after the deletion")


    # 11. SSRF: model endpoints at addresses only the server can reach (127.0.0.1 alone is allowed here)
    def endpoint_addresses(self) -> None:
        category = "SSRF endpoints"
        for number, api_base in enumerate(REFUSED_BASES):
            status, _ = self.api(category, "POST", "/api/v1/endpoints", {"name": f"ssrf-{number}", "model": "openai/x", "api_base": api_base})
            if status < 400:
                self.tallies[category].lost += 1
                self.tallies[category].notes.append(f"accepted: {api_base}")
        # Saved before the rule (straight into the table): Test connection must refuse it without calling.
        for endpoint_id in self.unchecked_endpoints:
            status, answer = self.api(category, "POST", f"/api/v1/endpoints/{endpoint_id}/test", {})
            if answer.get("ok") or "Configuration problem" not in answer.get("message", ""):
                self.tallies[category].lost += 1
                self.tallies[category].notes.append(f"test connection: {answer}")

    # 12. guessing API tokens and passwords: refused (429) past the limits, a valid token still accepted
    def brute_force(self) -> None:
        category = "brute force"
        statuses = []
        for number in range(TOKEN_LIMIT + 5):
            status, answer, ms = self.server.request("GET", "/api/v1/experiments", headers={"Authorization": f"Token ea_guess{number:04d}"})
            self.record(category, Outcome(status, ms), answer)
            statuses.append(status)
        if statuses.count(429) != 5:
            self.tallies[category].lost += 1
            self.tallies[category].notes.append(f"token guesses answered {statuses}")
        status, answer, ms = self.server.request("GET", "/api/v1/experiments")  # the bench's own token, same address
        self.record(category, Outcome(status, ms), answer)
        if status != 200:
            self.tallies[category].notes.append(f"the valid token was refused: {status}")
        statuses = [self.login("bench", f"guess-{number}") for number in range(LOGIN_LIMIT + 5)]
        if statuses.count(429) != 5:
            self.tallies[category].lost += 1
            self.tallies[category].notes.append(f"password guesses answered {statuses}")

    def login(self, username: str, password: str) -> int:
        """One try at the login page, with its CSRF cookie and token, as a browser sends it."""
        connection = http.client.HTTPConnection("127.0.0.1", self.server.port, timeout=self.server.timeout)
        began = time.perf_counter()
        try:
            connection.request("GET", "/login/")
            response = connection.getresponse()
            page = response.read().decode()
            cookie = response.getheader("Set-Cookie", "").split(";", 1)[0]
            token = page.split('name="csrfmiddlewaretoken" value="', 1)[1].split('"', 1)[0]
            body = urlencode({"username": username, "password": password, "csrfmiddlewaretoken": token})
            connection.request("POST", "/login/", body, {"Content-Type": "application/x-www-form-urlencoded", "Cookie": cookie})
            response = connection.getresponse()
            status, answer = response.status, response.read()
        except (OSError, http.client.HTTPException, IndexError):
            status, answer = 0, b""
        finally:
            connection.close()
        self.record("brute force", Outcome(status, (time.perf_counter() - began) * 1000), answer)
        return status


# Endpoint addresses that must be refused when saved.
REFUSED_BASES = (
    "http://169.254.169.254/latest/meta-data",
    "http://[fd00:ec2::254]/latest",
    "http://10.0.0.5:8080/v1",
    "http://192.168.1.1/v1",
    "http://127.0.0.2:6379/v1",
    "http://2130706434/v1",
    "http://0x7f000002/v1",
    "http://[::ffff:10.0.0.1]/v1",
    "http://[fe80::1]/v1",
    "http://[::1]:5432/v1",
    "http://0.0.0.0:8000/v1",
)
# The server's limits here (its defaults). A run that crosses a window's end (every 15 minutes on the clock) starts
# counting afresh and reports it in the notes.
TOKEN_LIMIT, LOGIN_LIMIT = 20, 10

def database_down(bench: Bench) -> None:
    """Exports and batches sent while the database is down (a second gunicorn on a closed port, or a SQLite file in
    a folder that does not exist) must be 503 with Retry-After and store nothing; the same bodies sent again to
    the running server (the exporter's retry) are stored whole."""
    category = "database down"
    if bench.dead is None:
        return
    live, sent = bench.server, []
    bench.server = bench.dead
    try:
        for _ in range(10):
            ids = fresh_ids(10)
            outcome = bench.otlp(category, otlp_body(ids), ids)
            sent.append(("otlp", ids))
            ids = fresh_ids(10)
            bench.batch(category, json_body(ids), ids)
            sent.append(("batch", ids))
            if outcome.status == 503 and not bench.dead.last_retry_after:
                bench.tallies[category].notes.append("a 503 without Retry-After")
                bench.tallies[category].failed += 1
        status, answer, ms = bench.dead.request("GET", "/healthz")
        bench.record(category, Outcome(status, ms), answer)
    finally:
        bench.server = live
    for kind, ids in sent:  # the retry, once the database answers
        (bench.otlp if kind == "otlp" else bench.batch)(category, otlp_body(ids) if kind == "otlp" else json_body(ids), ids)


def overload(bench: Bench) -> None:
    """More ingest at once than a server allows (a third gunicorn, 3 workers, EVALAPP_INGEST_WRITERS=1): each
    request beyond the limit must be a 503 with Retry-After that stored nothing; sent again after that wait, as an
    exporter does, every batch ends up stored whole."""
    category = "overload"
    if bench.busy is None:
        return
    port, token, timeout = bench.busy.port, bench.busy.token, bench.busy.timeout

    def exporter(number: int) -> None:
        server = Server(port, token, timeout)  # its own last_retry_after
        for _ in range(4):
            ids = fresh_ids(20)
            json_api = number % 2 == 1
            body = json_body(ids) if json_api else otlp_body(ids)
            path = f"/api/v1/experiments/{bench.experiments['ingest']}/traces" if json_api else "/v1/traces"
            headers = {"Content-Type": "application/json" if json_api else "application/x-protobuf"}
            if not json_api:
                headers["x-evalapp-experiment-id"] = str(bench.experiments["ingest"])
            for _attempt in range(20):
                status, answer, ms = server.request("POST", path, body, headers)
                bench.record(category, Outcome(status, ms, set(ids)), answer)
                if status != 503:
                    break
                if not server.last_retry_after:
                    bench.tallies[category].notes.append("a 503 without Retry-After")
                    bench.tallies[category].failed += 1
                    break
                time.sleep(float(server.last_retry_after))
            else:
                bench.tallies[category].lost += 1
                bench.tallies[category].notes.append("still refused after 20 tries")

    with ThreadPoolExecutor(6) as pool:
        list(pool.map(exporter, range(6)))


OUTAGES = {"database down", "overload"}

# In the order they run; the number is the hostile probe's (+: found cheap while writing this).
CATEGORIES: list[Callable[[Bench], None]] = [
    Bench.like_filters, Bench.filter_size, Bench.filter_numbers, Bench.chunked, Bench.compressed, Bench.endpoint_keys, Bench.refused_inputs,
    Bench.resends, Bench.odd_bodies, Bench.experiment_deletion, database_down, overload, Bench.endpoint_addresses, Bench.brute_force,  # brute force last: it locks the address for logins
]
NUMBERS = {
    "LIKE filters": "1", "filter size": "2", "filter numbers": "6", "chunked bodies": "3", "gzip / deflate": "4", "endpoint keys": "8",
    "refused inputs": "10", "SSRF endpoints": "11", "brute force": "12",
}


def closed_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_for(port: int, seconds: float = 30, status: int = 200) -> None:
    deadline = time.time() + seconds
    while time.time() < deadline:
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            connection.request("GET", "/healthz")
            if connection.getresponse().status == status:
                return
        except OSError:
            time.sleep(0.2)
    raise SystemExit("gunicorn did not come up")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--port", type=int, default=8766)
    parser.add_argument("--timeout", type=float, default=20, help="seconds a request may take before it counts as a 5xx")
    parser.add_argument("--verbose", action="store_true", help="also print what each refusal said")
    parser.add_argument("--postgres-url", default="postgres://postgres@127.0.0.1:5432/evalapp_bench_hostile")
    args = parser.parse_args()

    env = {key: value for key, value in os.environ.items() if key not in ("DATABASE_URL", "REDIS_URL")}
    env.update(
        EVALAPP_VAR_DIR=tempfile.mkdtemp(prefix="evalapp-bench-hostile-"),
        EVALAPP_LOG_LEVEL="ERROR",
        EVALAPP_MAX_BODY_BYTES=str(MAX_BODY_BYTES),
        EVALAPP_Q_SYNC="true",
        EVALAPP_Q_LOG_LEVEL="ERROR",
        EVALAPP_ENDPOINT_ALLOWED_HOSTS="127.0.0.1",  # the endpoints here point at closed loopback ports
        EVALAPP_TOKEN_FAILURES_PER_ADDRESS=str(TOKEN_LIMIT),
        EVALAPP_LOGIN_FAILURES_PER_ACCOUNT=str(LOGIN_LIMIT),
    )
    env.setdefault("SECRET_KEY", secrets.token_urlsafe(50))  # settings refuse to start without one (DEBUG is off)
    if args.db == "postgres":
        import psycopg

        database = args.postgres_url.rsplit("/", 1)[1]
        with psycopg.connect(args.postgres_url.rsplit("/", 1)[0] + "/postgres", autocommit=True) as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
            connection.execute(f'CREATE DATABASE "{database}"')
        env["DATABASE_URL"] = args.postgres_url
    python = sys.executable
    subprocess.run([python, "manage.py", "migrate", "--noinput"], cwd=ROOT, env=env, check=True, capture_output=True)
    token = subprocess.run(
        [python, "manage.py", "create_token", "bench", "--create-user"], cwd=ROOT, env=env, check=True, capture_output=True, text=True
    ).stdout.strip()
    for key in ("DATABASE_URL", "REDIS_URL"):
        os.environ.pop(key, None)
    os.environ.update(env, DJANGO_SETTINGS_MODULE="evalapp.settings")
    import django

    django.setup()
    from django.contrib.auth.models import Group, User

    from accounts.roles import EDITORS_GROUP
    from judges.endpoint_actions import create_endpoint
    from traces.actions import create_experiment

    User.objects.get(username="bench").groups.add(Group.objects.get_or_create(name=EDITORS_GROUP)[0])  # may save judges

    experiments = {name: create_experiment(f"hostile-{name}", "").pk for name in ("ingest", "names", "judged", "doomed")}
    create_endpoint(name="nowhere", model="openai/none", api_base="http://127.0.0.1:9/v1", timeout_seconds=1, max_retries=0)
    from judges.models import ModelEndpoint

    unchecked = [  # as if saved before the egress rule existed
        ModelEndpoint.objects.create(name=f"old-{number}", model="openai/x", api_base=api_base, timeout_seconds=1, max_retries=0).pk
        for number, api_base in enumerate(("http://169.254.169.254/v1", "http://10.1.2.3/v1"))
    ]

    server_log = Path(env["EVALAPP_VAR_DIR"]) / "gunicorn.log"
    server_process = subprocess.Popen(
        [python, "-m", "gunicorn", "evalapp.wsgi:application", "--bind", f"127.0.0.1:{args.port}", "--workers", "2",
         "--timeout", str(int(args.timeout) + 10)],
        cwd=ROOT, env=env, stdout=server_log.open("w"), stderr=subprocess.STDOUT, start_new_session=True,
    )
    # The same app on a database that can't be reached: a closed port, or a SQLite file in a missing folder.
    dead_env = {**env, "DATABASE_URL": f"postgres://postgres@127.0.0.1:{closed_port()}/evalapp" if args.db == "postgres"
                else f"sqlite:///{env['EVALAPP_VAR_DIR']}/no-such-folder/evalapp.sqlite3"}
    dead_process = subprocess.Popen(
        [python, "-m", "gunicorn", "evalapp.wsgi:application", "--bind", f"127.0.0.1:{args.port + 1}", "--workers", "1"],
        cwd=ROOT, env=dead_env, stdout=(Path(env["EVALAPP_VAR_DIR"]) / "gunicorn-dead.log").open("w"), stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    # The same app and database, allowing one ingest request at a time (design note 44), with 3 workers to send more.
    busy_process = subprocess.Popen(
        [python, "-m", "gunicorn", "evalapp.wsgi:application", "--bind", f"127.0.0.1:{args.port + 2}", "--workers", "3"],
        cwd=ROOT, env={**env, "EVALAPP_INGEST_WRITERS": "1"}, stdout=(Path(env["EVALAPP_VAR_DIR"]) / "gunicorn-busy.log").open("w"),
        stderr=subprocess.STDOUT, start_new_session=True,
    )
    try:
        wait_for(args.port)
        wait_for(args.port + 1, status=503)
        wait_for(args.port + 2)
        server = Server(args.port, token, args.timeout)
        bench = Bench(
            server, experiments, verbose=args.verbose, dead=Server(args.port + 1, token, args.timeout), busy=Server(args.port + 2, token, args.timeout)
        )
        bench.unchecked_endpoints = unchecked
        ids = fresh_ids(20)  # long names for the LIKE filters to chew on
        bench.batch("setup", json_body(ids, name=LONG_NAME), ids, experiment="names")
        assert bench.tallies.pop("setup").lost == 0
        for run in CATEGORIES:
            run(bench)
    finally:
        dead_process.terminate()
        dead_process.wait(15)
        busy_process.terminate()
        busy_process.wait(15)
        server_process.terminate()
        try:
            server_process.wait(15)
        except subprocess.TimeoutExpired:  # a worker still busy with a runaway request
            os.killpg(server_process.pid, signal.SIGKILL)
            server_process.wait()

    print(f"database: {args.db}; gunicorn, 2 workers; body limit {MAX_BODY_BYTES // 1024} KiB; request timeout {args.timeout:g} s; "
          f"server log {server_log}")
    header = f"{'':2} {'category':<20} {'tried':>6} {'4xx':>5} {'503':>5} {'5xx':>5} {'lost':>5} {'duplicated':>11} {'slowest':>9}"
    print(header)
    print("-" * len(header))
    for name, tally in bench.tallies.items():
        print(
            f"{NUMBERS.get(name, '+'):2} {name:<20} {tally.tried:>6} {tally.refused:>5} {tally.unavailable:>5} {tally.failed:>5} {tally.lost:>5} "
            f"{tally.duplicated:>11} {tally.slowest_ms:>7.0f}ms"
        )
    for name, tally in bench.tallies.items():
        for note in tally.notes if args.verbose else tally.notes[:5]:
            print(f"   {name}: {note}")


if __name__ == "__main__":
    main()
