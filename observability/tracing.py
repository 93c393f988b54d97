"""OpenTelemetry traces: a span per GraphQL operation and a child span per Personalize call.

Configured from the standard variables only (`OTEL_SERVICE_NAME`, `OTEL_TRACES_EXPORTER`,
`OTEL_EXPORTER_OTLP_ENDPOINT` / `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`, `OTEL_TRACES_SAMPLER`,
`OTEL_BSP_*`...). With `OTEL_TRACES_EXPORTER=none`, `OTEL_SDK_DISABLED=true` or no OTLP
endpoint there is no tracer at all: the code paths test `tracer is None` and never touch
OpenTelemetry, so tracing off costs a branch. With a tracer, attributes are built only
for spans that record (sampled).

User and item ids never appear in clear: a call span carries a salted HMAC of them
(`observability.id_salt`, or a random per-process salt when unset), enough to tell
whether two spans concern the same user and nothing more.
"""

import contextvars
import hashlib
import hmac
import logging
import os
import secrets
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field

from opentelemetry import trace
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SpanExporter
from opentelemetry.trace import SpanKind, Status, StatusCode, Tracer

from domain.request import RecommendationRequest

log = logging.getLogger(__name__)

DEFAULT_SERVICE_NAME = "personalize-subgraph"
_HTTP_PROTOBUF = "http/protobuf"


class IdHasher:
    """A salted, keyed hash of ids: stable within one salt, useless without it."""

    def __init__(self, salt: bytes | None = None) -> None:
        self._salt = salt or secrets.token_bytes(16)

    def __call__(self, value: str) -> str:
        return hmac.new(self._salt, value.encode(), hashlib.sha256).hexdigest()[:16]


@dataclass
class Tracing:
    """The app's tracer (None: tracing off) and what ends it."""

    tracer: Tracer | None = None
    provider: TracerProvider | None = None
    ids: IdHasher = field(default_factory=IdHasher)

    def shutdown(self) -> None:
        """Export what is buffered and stop the exporter thread (blocking; at shutdown)."""
        if self.provider is not None:
            self.provider.shutdown()


def _exporters(environ: Mapping[str, str]) -> list[SpanExporter]:
    names = {
        name.strip().lower()
        for name in environ.get("OTEL_TRACES_EXPORTER", "otlp").split(",")
        if name.strip()
    }
    if not names or "none" in names:
        return []
    exporters: list[SpanExporter] = []
    if "otlp" in names:
        endpoint = environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or environ.get(
            "OTEL_EXPORTER_OTLP_ENDPOINT"
        )
        protocol = environ.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL") or environ.get(
            "OTEL_EXPORTER_OTLP_PROTOCOL", _HTTP_PROTOBUF
        )
        if endpoint and protocol != _HTTP_PROTOBUF:
            log.warning("OTLP protocol %r is not supported (only %s)", protocol, _HTTP_PROTOBUF)
        elif endpoint:
            # Imported only when used: it pulls in protobuf and an HTTP client.
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

            # Reads the endpoint, headers, timeout and compression from the environment.
            exporters.append(OTLPSpanExporter())
    if "console" in names:
        exporters.append(ConsoleSpanExporter())
    unknown = names - {"otlp", "console"}
    if unknown:
        log.warning("ignoring unsupported OTEL_TRACES_EXPORTER %s", ", ".join(sorted(unknown)))
    return exporters


def configure_tracing(
    salt: bytes | None = None, environ: Mapping[str, str] | None = None
) -> Tracing:
    """A tracer exporting as the OTEL_* variables say, or none when nothing would export."""
    environ = os.environ if environ is None else environ
    ids = IdHasher(salt)
    if environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return Tracing(ids=ids)
    exporters = _exporters(environ)
    if not exporters:
        return Tracing(ids=ids)
    named = environ.get("OTEL_SERVICE_NAME") or "service.name=" in environ.get(
        "OTEL_RESOURCE_ATTRIBUTES", ""
    )
    # Attributes given here win over the environment's, so the default only when unnamed.
    resource = Resource.create({} if named else {SERVICE_NAME: DEFAULT_SERVICE_NAME})
    # The sampler comes from OTEL_TRACES_SAMPLER (default: parent-based, always on).
    provider = TracerProvider(resource=resource)
    for exporter in exporters:
        provider.add_span_processor(BatchSpanProcessor(exporter))
    return Tracing(tracer=provider.get_tracer("personalize_subgraph"), provider=provider, ids=ids)


@dataclass(slots=True)
class CallRecord:
    """What one Personalize call did, filled in while it runs."""

    outcome: str = "ok"
    attempts: int = 0


# The call in progress in this task, for `CallSpans.attempt`.
_CALL: contextvars.ContextVar[CallRecord | None] = contextvars.ContextVar(
    "personalize_call", default=None
)


class CallSpans:
    """A CLIENT span per Personalize call (retries included), child of the operation span.

    Has the shape of `backends.telemetry.CallTracer`, without importing it: server.py
    hands it to the cached backend, and its `attempt` to `backends.attempts`.
    """

    def __init__(self, tracer: Tracer, ids: IdHasher) -> None:
        self._tracer = tracer
        self._ids = ids

    @contextmanager
    def call(self, request: RecommendationRequest) -> Iterator[CallRecord]:
        record = CallRecord()
        operation = request.operation.value
        with self._tracer.start_as_current_span(
            f"PersonalizeRuntime/{operation}",
            kind=SpanKind.CLIENT,
            record_exception=False,
            set_status_on_exception=False,
        ) as span:
            token = _CALL.set(record)
            try:
                yield record
            finally:
                _CALL.reset(token)
                if span.is_recording():
                    self._describe(span, request, record)

    def attempt(self) -> None:
        """One more attempt of the call in progress in this task, if one is traced."""
        record = _CALL.get()
        if record is not None:
            record.attempts += 1

    def note(self, event: str, use_case: str) -> None:
        """An event on the current span (the operation's), if it records: cache_hit..."""
        span = trace.get_current_span()
        if span.is_recording():
            span.add_event(event, {"personalize.use_case": use_case})

    def _describe(
        self, span: trace.Span, request: RecommendationRequest, record: CallRecord
    ) -> None:
        attributes: dict[str, str | int] = {
            "rpc.system": "aws-api",
            "rpc.service": "PersonalizeRuntime",
            "rpc.method": request.operation.value,
            "personalize.use_case": request.use_case,
            "personalize.operation": request.operation.value,
            "personalize.outcome": record.outcome,
            "personalize.attempts": record.attempts,
        }
        if request.num_results is not None:
            attributes["personalize.num_results"] = request.num_results
        if request.input_list:
            attributes["personalize.input_count"] = len(request.input_list)
        if request.filter_arn is not None:
            attributes["personalize.filtered"] = 1
        if request.user_id is not None:
            attributes["personalize.user_id_hash"] = self._ids(request.user_id)
        if request.item_id is not None:
            attributes["personalize.item_id_hash"] = self._ids(request.item_id)
        span.set_attributes(attributes)
        if record.outcome != "ok":
            span.set_status(Status(StatusCode.ERROR, record.outcome))
