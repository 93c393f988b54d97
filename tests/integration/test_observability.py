"""Metrics, traces, logs and readiness of a real subgraph process.

The traced subgraph runs on the direct Personalize path against the emulator and exports
OTLP/HTTP to a small receiver started here (http.server on loopback), whose payloads are
decoded with `opentelemetry-proto`. Others point at a port nothing listens on, or at an
emulator that stops and comes back.
"""

import gzip
import json
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import Emulator, Subgraph, codes
from tests.servers import free_port, python, running

USER = "user-0042"
ITEM = "item-0077"  # used by the span test alone: related items are cached for 5 minutes
TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT_ID = "00f067aa0ba902b7"


def home(user: str, item: str) -> str:
    """A user's and an item's recommendations, in one `_entities` batch."""
    return f"""
    query HomePage {{
      _entities(representations: [
        {{ __typename: "User", id: "{user}" }}
        {{ __typename: "Item", id: "{item}" }}
      ]) {{
        ... on User {{ recommendations(numResults: 3) {{ items {{ itemId }} }} }}
        ... on Item {{ related(numResults: 3) {{ items {{ itemId }} }} }}
      }}
    }}
    """


@dataclass
class Receiver:
    """An OTLP/HTTP trace receiver: keeps every raw payload and every span it is sent."""

    url: str
    payloads: list[bytes] = field(default_factory=list)
    requests: list[ExportTraceServiceRequest] = field(default_factory=list)

    def spans(self) -> list[tuple[dict[str, Any], Span]]:
        """(resource attributes, span) of everything received so far."""
        found: list[tuple[dict[str, Any], Span]] = []
        for request in list(self.requests):
            for resource_spans in request.resource_spans:
                resource = attributes(resource_spans.resource.attributes)
                for scope_spans in resource_spans.scope_spans:
                    found.extend((resource, span) for span in scope_spans.spans)
        return found

    def wait_for(
        self, name: str, trace_id: str | None = None, timeout: float = 15.0
    ) -> tuple[dict[str, Any], Span]:
        """The first span named `name` (in trace `trace_id`, if given), once it arrives."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for resource, span in self.spans():
                if span.name == name and trace_id in (None, span.trace_id.hex()):
                    return resource, span
            time.sleep(0.05)
        raise AssertionError(f"no span {name!r}; got {[s.name for _, s in self.spans()]}")


def _value(value: AnyValue) -> Any:
    kind = value.WhichOneof("value")
    if kind == "array_value":
        return [_value(v) for v in value.array_value.values]
    return getattr(value, kind) if kind else None


def attributes(pairs: Any) -> dict[str, Any]:
    return {pair.key: _value(pair.value) for pair in pairs}


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    port = free_port()
    state = Receiver(f"http://127.0.0.1:{port}")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length", "0")))
            if self.headers.get("content-encoding") == "gzip":
                body = gzip.decompress(body)
            request = ExportTraceServiceRequest()
            request.ParseFromString(body)
            state.payloads.append(body)
            state.requests.append(request)
            answer = ExportTraceServiceResponse().SerializeToString()
            self.send_response(200 if self.path == "/v1/traces" else 404)
            self.send_header("content-type", "application/x-protobuf")
            self.send_header("content-length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()


@dataclass
class Traced:
    subgraph: Subgraph
    log: Path


@pytest.fixture(scope="module")
def traced(logs: Path, emulator: Emulator, receiver: Receiver) -> Iterator[Traced]:
    """A subgraph on the direct Personalize path, tracing to the receiver, logging JSON."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = logs / "subgraph-traced.log"
    env = {
        "SUBGRAPH_SERVER__PORT": str(port),
        "SUBGRAPH_BACKEND": "personalize",
        "AWS_ENDPOINT_URL_PERSONALIZE_RUNTIME": emulator.url,
        "OTEL_SERVICE_NAME": "recs-under-test",
        "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.url,
        "OTEL_BSP_SCHEDULE_DELAY": "50",
        "LOG_LEVEL": "INFO",
        "LOG_FORMAT": "json",
    }
    with running(python("server.py"), f"{url}/healthz", log, env=env):
        yield Traced(Subgraph(url), log)


def post(subgraph: Subgraph, query: str, headers: dict[str, str] | None = None) -> dict[str, Any]:
    response = httpx.post(
        f"{subgraph.url}/graphql", json={"query": query}, headers=headers or {}, timeout=30
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def samples(subgraph: Subgraph) -> list[Any]:
    response = httpx.get(f"{subgraph.url}/metrics")
    assert response.status_code == 200
    return [s for f in text_string_to_metric_families(response.text) for s in f.samples]


def metric(found: list[Any], name: str, **labels: str) -> float:
    for sample in found:
        if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
            return float(sample.value)
    raise AssertionError(f"/metrics has no {name} {labels}")


# Metrics


def test_metrics_after_a_query(traced: Traced) -> None:
    body = post(traced.subgraph, home("user-0001", "item-0001"))
    assert "errors" not in body, body
    post(traced.subgraph, "{ popularItems(numResults: 2) { items { itemId } } }")
    post(traced.subgraph, "{ popularItems(")  # a parse error: nothing executed
    found = samples(traced.subgraph)

    operations = "personalize_subgraph_graphql_operations_total"
    assert metric(found, operations, operation="HomePage", outcome="ok") >= 1
    assert metric(found, operations, operation="anonymous", outcome="ok") >= 1
    assert metric(found, operations, operation="anonymous", outcome="request_error") >= 1
    latency = "personalize_subgraph_graphql_operation_seconds"
    assert metric(found, f"{latency}_count", operation="HomePage", outcome="ok") >= 1
    assert metric(found, f"{latency}_bucket", operation="HomePage", outcome="ok", le="+Inf") >= 1

    calls = "personalize_subgraph_personalize_call_seconds"
    assert metric(found, f"{calls}_count", use_case="recommendedForYou", outcome="ok") >= 1
    assert metric(found, f"{calls}_sum", use_case="recommendedForYou", outcome="ok") > 0
    assert metric(found, f"{calls}_count", use_case="similarItems", outcome="ok") >= 1

    # The user's and the item's requests went out in one batch of two.
    batches = "personalize_subgraph_loader_batch_size"
    assert metric(found, f"{batches}_count") >= 1
    assert metric(found, f"{batches}_bucket", le="2.0") >= 1
    assert metric(found, f"{batches}_bucket", le="1.0") < metric(found, f"{batches}_count")

    breaker = "personalize_subgraph_breaker_state"
    assert metric(found, breaker, use_case="recommendedForYou") == 0
    assert metric(found, breaker, use_case="personalizedRanking") == 0


# Traces


def test_spans_of_a_query(traced: Traced, receiver: Receiver) -> None:
    headers = {"traceparent": f"00-{TRACE_ID}-{PARENT_ID}-01", "x-request-id": "trace-test-1"}
    body = post(traced.subgraph, home(USER, ITEM), headers)
    assert "errors" not in body, body

    resource, operation = receiver.wait_for("query HomePage", TRACE_ID)
    assert resource["service.name"] == "recs-under-test"
    # The gateway's span is the parent: same trace, its span id.
    assert operation.trace_id.hex() == TRACE_ID
    assert operation.parent_span_id.hex() == PARENT_ID
    assert operation.kind == Span.SPAN_KIND_SERVER
    op = attributes(operation.attributes)
    assert op["graphql.operation.name"] == "HomePage"
    assert op["graphql.operation.type"] == "query"
    assert op["subgraph.outcome"] == "ok"
    assert op["subgraph.request_id"] == "trace-test-1"
    assert "subgraph.error_codes" not in op

    # One child per Personalize call; the batch may be exported a moment later.
    deadline = time.monotonic() + 10
    children: list[Span] = []
    while time.monotonic() < deadline and len(children) < 2:
        children = [
            s
            for _, s in receiver.spans()
            if s.trace_id.hex() == TRACE_ID and s.parent_span_id == operation.span_id
        ]
        time.sleep(0.05)
    calls = {attributes(s.attributes)["personalize.use_case"]: s for s in children}
    assert set(calls) == {"recommendedForYou", "similarItems"}, calls.keys()
    for use_case, span in calls.items():
        assert span.name == "PersonalizeRuntime/GetRecommendations"
        assert span.kind == Span.SPAN_KIND_CLIENT
        call = attributes(span.attributes)
        assert call["personalize.operation"] == "GetRecommendations"
        assert call["personalize.outcome"] == "ok"
        assert call["personalize.attempts"] == 1
        assert call["personalize.num_results"] == 3, use_case
    user_hash = attributes(calls["recommendedForYou"].attributes)["personalize.user_id_hash"]
    item_hash = attributes(calls["similarItems"].attributes)["personalize.item_id_hash"]
    assert len(user_hash) == len(item_hash) == 16
    assert user_hash != item_hash

    # Asked again: the item's answer comes from the cache, an event on the operation span.
    again = "0af7651916cd43dd8448eb211c80319c"
    headers = {"traceparent": f"00-{again}-{PARENT_ID}-01"}
    assert "errors" not in post(traced.subgraph, home("user-0043", ITEM), headers)
    _, repeated = receiver.wait_for("query HomePage", again)
    hits = [e for e in repeated.events if e.name == "cache_hit"]
    assert [attributes(e.attributes) for e in hits] == [{"personalize.use_case": "similarItems"}]

    # Ids never travel in clear, in any payload sent so far.
    assert receiver.payloads
    for payload in receiver.payloads:
        assert USER.encode() not in payload
        assert ITEM.encode() not in payload


def test_failed_fields_are_on_the_operation_span(traced: Traced, receiver: Receiver) -> None:
    body = post(
        traced.subgraph,
        "query TooMany { popularItems(numResults: 9999) { items { itemId } } }",
    )
    assert codes(body) == ["BAD_USER_INPUT"]
    _, operation = receiver.wait_for("query TooMany")
    op = attributes(operation.attributes)
    assert op["subgraph.outcome"] == "errors"
    assert op["subgraph.error_codes"] == ["BAD_USER_INPUT"]
    # No traceparent: a trace of its own; no call was made, so no child.
    assert not operation.parent_span_id
    assert not [s for _, s in receiver.spans() if s.parent_span_id == operation.span_id]


# Logs and readiness


def complete_json_lines(log: Path) -> list[dict[str, Any]]:
    """Each complete line of a log still being written, parsed as JSON (a line without its
    newline yet may be cut in the middle; it is read on the next poll)."""
    text = log.read_text()
    complete = text[: text.rfind("\n") + 1]
    return [json.loads(line) for line in complete.splitlines() if line.strip()]


def test_log_lines_are_json_with_the_request_id(traced: Traced) -> None:
    post(traced.subgraph, "{ popularItems(numResults: 1) { items { itemId } } }")
    httpx.post(
        f"{traced.subgraph.url}/graphql",
        json={"query": "{ popularItems(numResults: 1) { items { itemId } } }"},
        headers={"x-request-id": "log-test-7"},
    )
    deadline = time.monotonic() + 5
    mine: list[dict[str, Any]] = []
    while not mine and time.monotonic() < deadline:
        records = complete_json_lines(traced.log)  # every line, uvicorn's included
        mine = [r for r in records if r.get("request_id") == "log-test-7"]
        time.sleep(0.05)
    assert mine, "no line carries the request id"
    access = next(r for r in mine if r["logger"] == "uvicorn.access")
    assert access["method"] == "POST"
    assert access["path"] == "/graphql"
    assert access["status"] == 200
    for record in records:
        assert {"time", "level", "logger", "message", "request_id"} <= record.keys()
    assert any(r["logger"] == "uvicorn.error" for r in records)  # "Application startup..."


def test_ready_when_the_endpoint_answers(traced: Traced) -> None:
    response = httpx.get(f"{traced.subgraph.url}/readyz")
    assert response.status_code == 200
    assert response.json() == {"status": "ready"}
    assert httpx.get(f"{traced.subgraph.url}/healthz").status_code == 200
    found = samples(traced.subgraph)
    assert metric(found, "personalize_subgraph_personalize_endpoint_up") == 1
    checked = metric(found, "personalize_subgraph_personalize_endpoint_checked_timestamp_seconds")
    assert time.time() - 60 < checked <= time.time()


def endpoint_up(subgraph: Subgraph) -> float:
    return metric(samples(subgraph), "personalize_subgraph_personalize_endpoint_up")


def wait_for_endpoint(subgraph: Subgraph, up: float) -> None:
    deadline = time.monotonic() + 10
    while endpoint_up(subgraph) != up:
        assert time.monotonic() < deadline, f"personalize_endpoint_up never became {up}"
        time.sleep(0.05)


def emulator_on(port: int, log: Path) -> Any:
    return running(
        python("-m", "local_personalize", "serve", "--host", "127.0.0.1", "--port", str(port)),
        f"http://127.0.0.1:{port}/_emulator/health",
        log,
    )


NEW_ARRIVALS = "{ popularItems(useCase: NEW_ARRIVALS, numResults: 3) { source items { itemId } } }"


def test_an_unreachable_endpoint_keeps_readiness_and_shows_in_metrics(logs: Path) -> None:
    # Readiness is what this process controls: every replica shares the endpoint, and a
    # 503 here would take the whole fleet out of the load balancer while the fallbacks
    # could answer. The endpoint's health is a gauge and log lines instead.
    port, upstream = free_port(), free_port()
    url = f"http://127.0.0.1:{port}"
    env = {
        "SUBGRAPH_SERVER__PORT": str(port),
        "SUBGRAPH_BACKEND": "personalize",
        "SUBGRAPH_PERSONALIZE__ENDPOINT_URL": f"http://127.0.0.1:{upstream}",
        "SUBGRAPH_OBSERVABILITY__READY_TTL": "0.2",
        "LOG_LEVEL": "INFO",
    }
    log = logs / "subgraph-endpoint-health.log"
    emulator = ExitStack()
    emulator.enter_context(emulator_on(upstream, logs / "emulator-down-up-1.log"))
    with emulator, running(python("server.py"), f"{url}/healthz", log, env=env):
        subgraph = Subgraph(url)
        wait_for_endpoint(subgraph, 1)
        assert httpx.get(f"{url}/readyz").status_code == 200

        emulator.close()  # Personalize goes away
        wait_for_endpoint(subgraph, 0)
        response = httpx.get(f"{url}/readyz")
        assert response.status_code == 200
        assert response.json() == {"status": "ready"}
        # The fallback chain answers: best sellers fail too, the static list stands in.
        body = subgraph.query(NEW_ARRIVALS)
        assert "errors" not in body
        assert body["data"]["popularItems"]["source"] == "FALLBACK"
        assert body["data"]["popularItems"]["items"][0] == {"itemId": "item-0001"}

        with emulator_on(upstream, logs / "emulator-down-up-2.log"):  # and comes back
            wait_for_endpoint(subgraph, 1)
            assert httpx.get(f"{url}/readyz").status_code == 200
    records = [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
    changes = [r for r in records if r["logger"] == "observability.endpoint"]
    # Up, down, up again (and down once more when the second emulator stops first).
    assert [r["level"] for r in changes][:3] == ["INFO", "WARNING", "INFO"]
    assert "personalize endpoint down" in changes[1]["message"]


def test_dead_endpoint_opens_the_breaker(logs: Path) -> None:

    port, dead = free_port(), free_port()
    url = f"http://127.0.0.1:{port}"
    env = {
        "SUBGRAPH_SERVER__PORT": str(port),
        "SUBGRAPH_BACKEND": "personalize",
        "SUBGRAPH_PERSONALIZE__ENDPOINT_URL": f"http://127.0.0.1:{dead}",
        "SUBGRAPH_BREAKER__FAILURES": "1",
        "SUBGRAPH_BREAKER__RESET_AFTER": "600",
        "LOG_LEVEL": "WARNING",
    }
    log = logs / "subgraph-dead.log"
    with running(python("server.py"), f"{url}/healthz", log, env=env):
        subgraph = Subgraph(url)
        # Ready all the same: the endpoint's health is the metric's, not readiness's.
        assert httpx.get(f"{url}/readyz").status_code == 200
        assert endpoint_up(subgraph) == 0

        body = httpx.post(
            f"{url}/graphql",
            json={"query": "{ popularItems(numResults: 2) { items { itemId } } }"},
            headers={"x-request-id": "dead-1"},
        ).json()
        assert codes(body) == ["UPSTREAM_UNAVAILABLE"]
        found = samples(subgraph)
        assert metric(found, "personalize_subgraph_breaker_state", use_case="bestSellers") == 2
        assert metric(found, "personalize_subgraph_breaker_state", use_case="mostViewed") == 0
        calls = "personalize_subgraph_personalize_call_seconds_count"
        assert metric(found, calls, use_case="bestSellers", outcome="upstream_unavailable") == 1
        assert (
            metric(
                found,
                "personalize_subgraph_graphql_operations_total",
                operation="anonymous",
                outcome="errors",
            )
            == 1
        )
    # The breaker's warning is a JSON line with the fields passed via `extra=`.
    records = [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
    opened = next(r for r in records if r["message"] == "breaker open")
    assert opened["logger"] == "backends.guard"
    assert opened["level"] == "WARNING"
    assert opened["request_id"] == "dead-1"
    assert opened["failures"] == 1


def test_every_worker_logs_json(logs: Path) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {
        "SUBGRAPH_SERVER__PORT": str(port),
        "SUBGRAPH_BACKEND": "personalize",
        "SUBGRAPH_PERSONALIZE__ENDPOINT_URL": f"http://127.0.0.1:{free_port()}",
        "WORKERS": "2",
        "LOG_LEVEL": "INFO",
    }
    log = logs / "subgraph-json-workers.log"
    with running(python("server.py"), f"{url}/healthz", log, env=env):
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            records = complete_json_lines(log)
            ready = [r for r in records if r["message"].startswith("backend PERSONALIZE ready")]
            if len(ready) == 2:
                break
            time.sleep(0.1)
    # The parent and both workers, our loggers and uvicorn's: JSON every line.
    assert len(ready) == 2, [r["message"] for r in records]
    started = {r["message"] for r in records if r["message"].startswith("Started server process")}
    assert len(started) >= 2
    assert any(r["logger"] == "uvicorn.error" for r in records)
