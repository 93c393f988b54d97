"""Wiring only: settings -> backend -> Starlette app (lifespan, routes, per-request context).

Run with `python server.py` (host and port from settings) or
`uvicorn --factory server:create_app`. Nothing happens at import time.
"""

import asyncio
import gc
import logging
import os
import signal
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager, suppress
from types import FrameType
from typing import TYPE_CHECKING, Any, cast

import uvicorn
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    GCCollector,
    PlatformCollector,
    ProcessCollector,
    generate_latest,
)
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from backends.attempts import CountedAttempts
from backends.base import RecommendationBackend
from backends.cache import CachedBackend
from backends.guard import Breakers, GuardedBackend
from backends.store import open_store
from domain.errors import ConfigurationError
from loaders.recommendations import operation_loaders
from observability.call_metrics import CallMetrics
from observability.endpoint import EndpointCollector, EndpointHealth
from observability.experiments import ExperimentMetrics
from observability.logs import configure_logging, log_config
from observability.metrics import (
    BreakerCollector,
    EventsCollector,
    OperationMetrics,
    RefusalsCollector,
)
from observability.operations import OperationObserver
from observability.readiness import Readiness, personalize_check
from observability.tracing import CallSpans, configure_tracing
from resolvers.context import Context
from resolvers.scroll import open_scrolling
from schema.build import build_schema
from settings import Settings, load_settings
from web import graphiql
from web.connections import REFUSAL_CODES, REFUSALS
from web.graphql_http import GraphQLEndpoint
from web.request_id import RequestIdFilter, RequestIdMiddleware
from web.uvicorn_internals import uvicorn_options
from web.workers import Supervisor

if TYPE_CHECKING:
    from backends.events import EventSender, EventSink
    from local_personalize.engine import Engine
    from web.engine_process import EngineProcess

log = logging.getLogger("server")

# The cyclic collector's young-generation threshold once serving (CPython's default: 700).
GC_YOUNG_THRESHOLD = 10_000


def _local_engine(settings: Settings) -> "Engine | None":
    """The embedded engine, fitted now: a bad dataset stops start-up with one line.

    None on AWS, and in the workers of WORKERS > 1, which call the supervisor's engine.
    """
    if settings.backend != "local" or settings.local.engine_url is not None:
        return None
    # Imported here so that a deployment on AWS never loads the demo engine's code.
    from backends.local import build_engine

    return build_engine(settings.local)


def _check_outbox(settings: Settings) -> None:
    """The event journal's directory is usable, or start-up stops with one line."""
    if settings.events.tracking_id is None:
        return
    from backends.outbox import check_journal_dir

    check_journal_dir(settings.events)


@asynccontextmanager
async def _open_backend(
    settings: Settings, engine: "Engine | None"
) -> AsyncIterator[RecommendationBackend]:
    # Imported here so that a local run never creates a boto session.
    if settings.backend == "personalize":
        from backends.personalize_client import open_personalize

        async with open_personalize(settings.personalize) as personalize:
            yield personalize
    elif settings.local.engine_url is not None:
        # WORKERS > 1: every worker calls the supervisor's one engine process.
        from backends.engine_client import open_engine_process

        async with open_engine_process(settings) as process:
            yield process
    else:
        from backends.local import LocalBackend

        assert engine is not None, "create_app fits the engine when backend is local"
        async with LocalBackend.open(engine) as local:
            yield local


@asynccontextmanager
async def _open_events(
    settings: Settings, backend: RecommendationBackend
) -> AsyncIterator["EventSender | None"]:
    """The event queue, sending to Personalize Events or into the embedded engine."""
    if settings.events.tracking_id is None:
        yield None
        return
    from backends.events import EventSender
    from backends.outbox import open_outbox

    async with open_outbox(settings.events, settings.cache) as outbox:
        if settings.backend == "local" and settings.local.engine_url is not None:
            # WORKERS > 1: events go into the supervisor's engine process.
            from backends.engine_client import open_engine_events

            async with (
                open_engine_events(settings) as engine,
                EventSender.open(engine, settings.events, outbox) as sender,
            ):
                yield sender
            return
        if settings.backend == "local":
            # The embedded engine takes PutEvents itself (LocalBackend.put_events).
            sink = cast("EventSink", backend)
            async with EventSender.open(sink, settings.events, outbox) as sender:
                yield sender
            return
        from backends.personalize_events import PersonalizeEvents

        async with (
            PersonalizeEvents.open(settings.personalize, settings.events) as events,
            EventSender.open(events, settings.events, outbox) as sender,
        ):
            yield sender


def _checked_settings(settings: Settings | None, *, warn: bool = True) -> Settings:
    """Load and check the configuration; any problem exits with one line on stderr.

    `warn=False` keeps the checks' warnings for the app's own check (`python server.py`
    checks first, then each process makes its app and checks again: said once).
    """
    try:
        if settings is None:
            settings = load_settings()
        # Before the checks below, so that what they warn of is logged in the
        # configured format (JSON by default), not as bare text.
        configure_logging(settings.log_format, settings.log_level, RequestIdFilter)
        if settings.backend == "local":
            from backends.local import with_local_filters

            settings = with_local_filters(settings, warn=warn)
    except ConfigurationError as exc:
        print(f"personalize-subgraph: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    return settings


def create_app(settings: Settings | None = None) -> Starlette:
    """Build the app; a bad configuration exits with one line on stderr."""
    # Logging is configured there too: every uvicorn worker process builds its own app.
    settings = _checked_settings(settings)
    try:
        schema = build_schema(settings)
        engine = _local_engine(settings)
        _check_outbox(settings)
    except ConfigurationError as exc:  # an unknown extension, a bad dataset row
        print(f"personalize-subgraph: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    salt = settings.observability.id_salt
    tracing = configure_tracing(salt.get_secret_value().encode() if salt else None)
    spans = CallSpans(tracing.tracer, tracing.ids) if tracing.tracer is not None else None
    # The app's own registry, not the process-wide default: several apps in one process
    # (tests) would otherwise register the same metrics twice.
    registry = _registry()
    metrics = CallMetrics(registry, settings.use_cases)
    operations = OperationMetrics(registry)
    experiments = ExperimentMetrics(registry, settings)
    # State only (no I/O, no event loop): made with the app, so its collector has it.
    breakers = Breakers(settings.breaker)
    registry.register(
        BreakerCollector({name: case.arn for name, case in settings.use_cases.items()}, breakers)
    )
    registry.register(RefusalsCollector(lambda: REFUSALS.totals, REFUSAL_CODES))
    readiness = Readiness()

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with AsyncExitStack() as stack:
            if tracing.provider is not None:
                # Last out: spans of the shutdown itself are exported too.
                stack.push_async_callback(asyncio.to_thread, tracing.shutdown)
            backend = await stack.enter_async_context(_open_backend(settings, engine))
            store = await stack.enter_async_context(open_store(settings.cache))
            # With tracing on, each attempt of a call is counted on the call's span.
            attempted = backend if spans is None else CountedAttempts(backend, spans.attempt)
            guarded = GuardedBackend(attempted, settings.personalize, breakers)
            cached = CachedBackend(
                guarded, store, settings.cache, settings.use_cases, metrics, spans
            )
            # Unwound first: calls still in flight end before the store and backend close.
            stack.push_async_callback(cached.aclose)
            app.state.backend = cached
            app.state.scrolling = open_scrolling(settings, store)
            # Entered after the backend, so it is closed (flushed) before the backend is.
            app.state.events = await stack.enter_async_context(_open_events(settings, backend))
            if app.state.events is not None:
                # Registered while the queue exists: /metrics reports it only then.
                events = EventsCollector(app.state.events)
                registry.register(events)
                stack.callback(registry.unregister, events)
            await _watch_endpoint(stack, registry, settings, backend)
            readiness.opened()
            stack.callback(readiness.drain)
            _drain_on_sigterm(readiness)
            log.info(
                "backend %s ready (%s; cache: %s)",
                backend.source,
                _engine_where(settings),
                _describe(settings, store.kind),
            )
            # Everything built so far (engine, schema, clients) lives as long as the
            # process: keep it out of the collector's scans, which the thousands of
            # short-lived objects of every answer trigger.
            gc.freeze()
            # An operation leaves no reference cycle behind (schema/graphql_core_internals
            # breaks graphql-core's), so its objects go by reference counting, and the
            # collector's default 700 net allocations only ever find the operations in
            # flight. A higher threshold keeps it from running under load (figures in
            # bench/README.md, "The collector").
            gc.set_threshold(GC_YOUNG_THRESHOLD, *gc.get_threshold()[1:])
            yield

    def context(
        request: Request, on_operation: Callable[[str | None, str | None], None]
    ) -> Context:
        return Context(
            loaders=operation_loaders(
                request.app.state.backend,
                max_calls=settings.limits.max_calls,
                deadline_s=settings.personalize.deadline,
                on_batch=operations.batch_sizes.observe,
            ),
            settings=settings,
            events=request.app.state.events,
            on_operation=on_operation,
            scrolling=request.app.state.scrolling,
            experiments=experiments,
        )

    async def healthz(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def readyz(request: Request) -> Response:
        verdict = readiness.verdict()
        if verdict.ready:
            return JSONResponse({"status": "ready"})
        return JSONResponse({"status": "unavailable", "reason": verdict.reason}, status_code=503)

    async def metrics_endpoint(request: Request) -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    middleware = [Middleware(RequestIdMiddleware, header=settings.server.request_id_header)]
    if settings.server.cors_origins:
        middleware.append(
            Middleware(
                CORSMiddleware,
                allow_origins=list(settings.server.cors_origins),
                allow_methods=["GET", "POST"],
                allow_headers=["content-type", "accept", settings.server.request_id_header],
                expose_headers=[settings.server.request_id_header],
                max_age=600,
            )
        )
    return Starlette(
        routes=[
            # No `methods`: the endpoint answers other methods itself, with a coded error.
            Route(
                "/graphql",
                GraphQLEndpoint(
                    schema,
                    context,
                    server=settings.server,
                    max_body_bytes=settings.limits.max_body_bytes,
                    max_query_bytes=settings.limits.max_query_bytes,
                    compiled=schema.compiled,
                    observer=OperationObserver(operations, tracing.tracer),
                ),
            ),
            Route("/healthz", healthz, methods=["GET"]),
            Route("/readyz", readyz, methods=["GET"]),
            Route("/metrics", metrics_endpoint, methods=["GET"]),
            # The files GraphiQL's page loads, from this origin: it works offline.
            *(
                [Route(graphiql.ROUTE, graphiql.GraphiQL().asset, methods=["GET"])]
                if settings.server.graphiql
                else []
            ),
        ],
        middleware=middleware,
        lifespan=lifespan,
    )


async def _watch_endpoint(
    stack: AsyncExitStack,
    registry: CollectorRegistry,
    settings: Settings,
    backend: RecommendationBackend,
) -> None:
    """For Personalize: the endpoint's reachability in /metrics and the logs, checked
    every `ready_ttl` while the app runs (not /readyz: observability/endpoint.py)."""
    target = getattr(backend, "target", None)
    if settings.backend != "personalize" or target is None:
        return
    if target.credentials is None:
        log.warning("no AWS credentials were found: Personalize calls fail, fallbacks answer")
    check = personalize_check(target, settings.personalize.connect_timeout)
    health = EndpointHealth(check, settings.observability.ready_ttl)
    await health.refresh()
    collector = EndpointCollector(health)
    registry.register(collector)
    stack.callback(registry.unregister, collector)
    await stack.enter_async_context(health.watching())


def _drain_on_sigterm(readiness: Readiness) -> None:
    """On SIGTERM, /readyz says 503 at once, then uvicorn's own handler shuts down."""
    previous = signal.getsignal(signal.SIGTERM)
    # Only in front of a handler (uvicorn's): never turn SIGTERM into a no-op.
    if not callable(previous):
        return

    def draining(signum: int, frame: FrameType | None) -> None:
        readiness.drain()
        previous(signum, frame)

    with suppress(ValueError):  # not the main thread: no signals here
        signal.signal(signal.SIGTERM, draining)


def _registry() -> CollectorRegistry:
    """A registry with the usual process, platform and GC metrics besides ours."""
    registry = CollectorRegistry()
    ProcessCollector(registry=registry)
    PlatformCollector(registry=registry)
    GCCollector(registry=registry)
    return registry


def _engine_where(settings: Settings) -> str:
    if settings.backend == "personalize":
        return "Amazon Personalize"
    if settings.local.engine_url is not None:
        return f"the engine process at {settings.local.engine_url}"
    return "the engine in this process"


def _describe(settings: Settings, store: str) -> str:
    if not settings.cache.enabled:
        return "off"
    cached = [n for n, u in settings.use_cases.items() if u.keeps_answers]
    return f"{store} for {', '.join(cached) or 'no use case'}"


def _engine_process(settings: Settings) -> "EngineProcess | None":
    """With WORKERS > 1 on the embedded engine: one engine process that every worker calls
    (read in each worker's settings as local.engine_url), so all see every event."""
    if settings.backend != "local" or settings.local.engine_url is not None:
        return None
    from web.engine_process import EngineProcess

    engine = EngineProcess(settings.local)
    # The spawned workers inherit this environment, so their settings carry the URL.
    os.environ["SUBGRAPH_LOCAL__ENGINE_URL"] = engine.url
    return engine


def main() -> None:
    """`python server.py`: serve on the configured host and port."""
    settings = _checked_settings(None, warn=False)
    workers = settings.workers
    config: dict[str, Any] = {
        "app": "server:create_app",
        "factory": True,
        "log_level": settings.log_level.lower(),
        # Applied by uvicorn in this process and in every worker: JSON (or LOG_FORMAT=text)
        # for uvicorn's own loggers too.
        "log_config": log_config(settings.log_format, settings.log_level, RequestIdFilter),
        # SIGTERM: stop accepting, let requests in flight finish, then close the backend.
        "timeout_graceful_shutdown": settings.server.shutdown_timeout,
        # Deadlines and a cap on client connections, coded JSON refusals ([connections]).
        **uvicorn_options(settings),
    }
    if workers > 1:
        # A listening socket per worker (SO_REUSEPORT): see web/workers.py for why.
        host, port = settings.server.host, settings.server.port
        engine = _engine_process(settings)
        try:
            supervisor = Supervisor(
                config,
                host=host,
                port=port,
                workers=workers,
                # A worker's shutdown: requests in flight, then its events' flush,
                # then giving its outbox batches up; a margin beyond, then SIGKILL.
                stop_timeout=settings.server.shutdown_timeout + settings.events.flush_timeout + 5.0,
                engine=engine,
            )
        except OSError as exc:
            print(f"personalize-subgraph: cannot listen on {host}:{port}: {exc}", file=sys.stderr)
            raise SystemExit(1) from None
        sys.exit(supervisor.run())
    # uvicorn raises the SIGTERM it handled again once shut down: a graceful stop exits 0.
    signal.signal(signal.SIGTERM, _stopped)
    uvicorn.run(**config, host=settings.server.host, port=settings.server.port)


def _stopped(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(0)


if __name__ == "__main__":
    main()
