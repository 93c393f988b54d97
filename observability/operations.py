"""One GraphQL operation seen from outside: its span, its counter and its latency.

`OperationObserver.observe` wraps everything /graphql does for a request. The endpoint
fills in the outcome and error codes, and hands `OperationRecord.operation` to the
request's context, where the schema reports the operation's name and type once it has
parsed the document (`schema.operation_info`).
"""

import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass

from opentelemetry.trace import SpanKind, Status, StatusCode, Tracer
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from domain.errors import CLIENT_CODES
from observability.metrics import OperationMetrics, is_operation_name

_W3C = TraceContextTextMapPropagator()


@dataclass(slots=True)
class OperationRecord:
    """What the endpoint and the schema learnt about one request."""

    name: str | None = None
    type: str | None = None
    # ok | errors (some fields failed) | request_error (nothing was executed)
    outcome: str = "request_error"
    codes: tuple[str, ...] = ()
    status: int = 0
    # Not an operation at all (the GraphiQL page): neither counted nor traced.
    skip: bool = False

    def operation(self, name: str | None, kind: str | None) -> None:
        """The parsed operation's name and type (query, mutation)."""
        self.name, self.type = name, kind


class OperationObserver:
    """Counts, times and (when a tracer is given) traces each /graphql request."""

    def __init__(self, metrics: OperationMetrics, tracer: Tracer | None) -> None:
        self._metrics = metrics
        self._tracer = tracer

    @contextmanager
    def observe(self, headers: Mapping[str, str], request_id: str) -> Iterator[OperationRecord]:
        record = OperationRecord()
        started = time.perf_counter()
        try:
            if self._tracer is None:
                yield record
            else:
                with self._traced(record, headers, request_id):
                    yield record
        finally:
            if not record.skip:
                self._metrics.observe(record.name, record.outcome, time.perf_counter() - started)

    @contextmanager
    def _traced(
        self, record: OperationRecord, headers: Mapping[str, str], request_id: str
    ) -> Iterator[None]:
        assert self._tracer is not None
        # The gateway's `traceparent` makes this span a child of its fetch.
        parent = _W3C.extract(headers)
        with self._tracer.start_as_current_span(
            "graphql",
            context=parent,
            kind=SpanKind.SERVER,
            record_exception=False,
            set_status_on_exception=False,
        ) as span:
            try:
                yield
            finally:
                if span.is_recording():
                    kind = record.type or "graphql"
                    name = record.name if is_operation_name(record.name) else None
                    span.update_name(f"{kind} {name}" if name else kind)
                    attributes: dict[str, str | int | list[str]] = {
                        "graphql.operation.type": record.type or "unknown",
                        "subgraph.outcome": record.outcome,
                        "subgraph.request_id": request_id,
                        "http.response.status_code": record.status,
                    }
                    if name:
                        attributes["graphql.operation.name"] = name
                    if record.codes:
                        attributes["subgraph.error_codes"] = list(record.codes)
                    span.set_attributes(attributes)
                    if any(code not in CLIENT_CODES for code in record.codes):
                        span.set_status(Status(StatusCode.ERROR, ",".join(record.codes)))
