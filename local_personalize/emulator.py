"""A Personalize Runtime (and Events) HTTP emulator: the engine behind the wire protocol.

Speaks rest-json like the real endpoints (POST /recommendations, POST
/personalize-ranking, and personalize-events' POST /events), so aioboto3 — or any AWS
SDK — works with ``endpoint_url`` pointed here. SigV4 headers are accepted and ignored
unless signing secrets are given. Errors carry the code in
``x-amzn-ErrorType`` and ``{"message": ...}`` in the body, which is how botocore
finds them; unexpected exceptions become 500 InternalFailure without a traceback.

Test controls live under ``/_emulator/``: call and fault counters, the latest request
bodies, the events PutEvents took, reset, and fault injection. What can go wrong with a
call is modelled in ``faults``; this module draws each call's fate from the app's seeded
RNG and puts it on the wire: the delay, then a throttle, a 5xx, a hang, or a half-sent
response. The delay is a response time counted from the call's arrival; reads are
answered inside it.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
import uuid
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from .engine import Engine
from .errors import ERRORS_BY_CODE, PersonalizeError
from .faults import FAULT_COUNTERS, FaultConfig, FaultConfigError, FaultKind, FaultProfile
from .sigv4 import signature_problem

logger = logging.getLogger(__name__)

OPERATIONS = ("GetRecommendations", "GetPersonalizedRanking")
"""Operations always listed in ``calls``; PutEvents is listed once it has been called."""

# 5xx faults alternate between these two, the codes botocore treats as transient.
SERVER_ERRORS = (("InternalFailure", 500), ("ServiceUnavailable", 503))
# Throttling answers 429, as AWS's rest-json front doors do (API Gateway-style services,
# Personalize's runtime included); JSON-protocol services such as DynamoDB use 400 instead.
# botocore's standard retry mode decides by the ThrottlingException code alone, so either
# status retries as a throttle; 429 also matches the legacy mode's status-based check.
THROTTLE_STATUS = 429


class ConnectionDropped(Exception):
    """Raised after half a response went out, so the server closes the connection."""


class _QuietDrops(logging.Filter):
    """Keep injected drops out of the server's error log; real failures still show."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.exc_info and isinstance(record.exc_info[1], ConnectionDropped))


_QUIET_DROPS = _QuietDrops()


class DroppedResponse(Response):
    """Headers with the full Content-Length, half the body, then an aborted connection.

    Raising after the response started is ASGI's way to abort it: the server (uvicorn,
    hypercorn, ...) must close the connection, and the client sees a truncated payload.
    """

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send(
            {"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers}
        )
        half = bytes(self.body)[: len(self.body) // 2]
        await send({"type": "http.response.body", "body": half, "more_body": True})
        raise ConnectionDropped("injected fault: connection dropped mid-response")


RECENT_REQUESTS = 500
RECEIVED_EVENTS = 100_000


class EngineTurns:
    """Runs the engine's work one call per event-loop turn, in arrival order.

    A read is answered inside its delay, so its work is done on arrival. Done right in
    each request's task, a burst of arrivals would be worked through in one loop turn,
    and answers falling due meanwhile (their timers fire between turns) would wait for
    the whole burst: under load that made the emulator's delays several ms late. Taking
    turns, a due answer waits for at most one call's work.
    """

    def __init__(self) -> None:
        self._queue: deque[tuple[Callable[[], Response], asyncio.Future[Response]]] = deque()
        self._worker: asyncio.Task[None] | None = None

    async def run(self, work: Callable[[], Response]) -> Response:
        future: asyncio.Future[Response] = asyncio.get_running_loop().create_future()
        self._queue.append((work, future))
        if self._worker is None:
            self._worker = asyncio.ensure_future(self._drain())
        return await future

    async def _drain(self) -> None:
        try:
            while self._queue:
                work, future = self._queue.popleft()
                if future.cancelled():
                    continue
                try:
                    future.set_result(work())
                except Exception as exc:  # answer() turns engine errors into responses
                    future.set_exception(exc)
                # Due timers and new arrivals get their turn before the next call's work.
                await asyncio.sleep(0)
        finally:
            self._worker = None


@dataclass
class EmulatorState:
    """Mutable test-control state of one app: the fault config, its RNG, and counters."""

    initial: FaultConfig = field(default_factory=FaultConfig)
    config: FaultConfig = field(default_factory=FaultConfig)
    rng: random.Random = field(default_factory=lambda: random.Random(0))
    calls: dict[str, int] = field(default_factory=lambda: dict.fromkeys(OPERATIONS, 0))
    faults: dict[str, int] = field(default_factory=lambda: dict.fromkeys(FAULT_COUNTERS, 0))
    delay_sum_ms: float = 0.0
    delay_max_ms: float = 0.0
    in_flight: int = 0
    # The latest request bodies, so tests can see what a client actually sent.
    recent: deque[dict[str, Any]] = field(default_factory=lambda: deque(maxlen=RECENT_REQUESTS))
    # Every event PutEvents took (the latest RECEIVED_EVENTS), with its session and id,
    # so tests can count what arrived and how often.
    received: deque[dict[str, Any]] = field(default_factory=lambda: deque(maxlen=RECEIVED_EVENTS))

    def configure(self, config: FaultConfig) -> None:
        """Replace the fault config and restart its random sequence from the seed."""
        self.config = config
        self.rng = random.Random(config.seed)

    def reset(self) -> None:
        """Zero the counters and restore the fault config the app was created with."""
        self.calls = dict.fromkeys(OPERATIONS, 0)
        self.faults = dict.fromkeys(FAULT_COUNTERS, 0)
        self.delay_sum_ms = self.delay_max_ms = 0.0
        self.recent.clear()
        self.received.clear()
        self.configure(self.initial)

    def decide(self, body: Mapping[str, Any]) -> tuple[FaultProfile, float, bool, FaultKind | None]:
        """Draw one call's fate (see ``FaultConfig.draw``) and count its latency."""
        profile, delay, spiked, fault = self.config.draw(self.rng, body)
        self.faults["spike"] += spiked
        self.delay_sum_ms += delay
        self.delay_max_ms = max(self.delay_max_ms, delay)
        return profile, delay, spiked, fault

    def stats(self) -> dict[str, Any]:
        return {
            "calls": dict(self.calls),
            "total": sum(self.calls.values()),
            "faults": dict(self.faults),
            "delay_ms": {"sum": round(self.delay_sum_ms, 3), "max": round(self.delay_max_ms, 3)},
            "in_flight": self.in_flight,
        }


def _json(status: int, payload: Any, headers: Mapping[str, str] | None = None) -> Response:
    all_headers = {"x-amzn-RequestId": str(uuid.uuid4())}
    if headers:
        all_headers.update(headers)
    return Response(
        orjson.dumps(payload),
        status_code=status,
        media_type="application/json",
        headers=all_headers,
    )


def error_response(code: str, status: int, message: str) -> Response:
    """An AWS rest-json error: code in ``x-amzn-ErrorType``, message in the body."""
    return _json(status, {"message": message}, {"x-amzn-ErrorType": code})


def _status_of(code: str) -> int:
    cls = ERRORS_BY_CODE.get(code)
    return cls.status if cls is not None else 400


def _gone() -> Response:
    # The client hung up during an injected wait; the server discards whatever we answer.
    return error_response("RequestTimeout", 408, "The client went away")


# Waits shorter than this are slept through without watching for the client to hang up.
WATCHED_WAIT_MS = 1_000.0


async def _sleep_unless_gone(request: Request, ms: float) -> bool:
    """Sleep ``ms``; False as soon as the client hangs up, so no hang outlives its caller
    (a 30 s hang would otherwise also hold up the server's shutdown).

    Only waits of a second or more are watched. Watching takes a task and a wait of
    its own for every delayed call (1,300 calls/s under a bench's load), and its
    cancellation a loop turn before each answer; for a shorter wait, all it could save
    is under a second of a task when a caller leaves early.
    """
    if ms <= 0:
        return True
    if ms < WATCHED_WAIT_MS:
        await asyncio.sleep(ms / 1000.0)
        return True

    async def disconnect() -> None:
        # The body has been read, so the next message is http.disconnect.
        while (await request.receive())["type"] != "http.disconnect":
            pass

    watcher = asyncio.ensure_future(disconnect())
    try:
        done, _ = await asyncio.wait({watcher}, timeout=ms / 1000.0)
    finally:
        watcher.cancel()
    return not done


def create_app(
    engine: Engine,
    *,
    delay_ms: float = 0.0,
    faults: FaultConfig | None = None,
    signing_secrets: Mapping[str, str] | None = None,
) -> Starlette:
    """Build the emulator app around ``engine``.

    ``faults`` is the start-up fault config (``delay_ms`` is its shorthand: a fixed delay
    for every call); reset restores it. With ``signing_secrets`` (access key -> secret),
    every operation call must carry a valid SigV4 signature, else 403 as AWS answers.
    """
    if faults is not None and delay_ms:
        raise ValueError("give delay_ms or faults, not both")
    initial = faults if faults is not None else FaultConfig.parse({"delay_ms": delay_ms})
    state = EmulatorState(initial=initial)
    state.configure(initial)
    turns = EngineTurns()
    logging.getLogger("uvicorn.error").addFilter(_QUIET_DROPS)

    def operation(
        name: str, handler: Callable[[Mapping[str, Any]], dict[str, Any]], *, reads: bool
    ) -> Callable[[Request], Awaitable[Response]]:
        """``reads``: the handler changes nothing, so it may run before the injected wait."""

        def answer(body: Mapping[str, Any]) -> Response:
            try:
                result = handler(body)
            except PersonalizeError as exc:
                return error_response(exc.code, exc.status, exc.message)
            except Exception:
                logger.exception("%s failed", name)
                return error_response("InternalFailure", 500, "An internal error occurred")
            return _json(200, result)

        async def faulted(
            request: Request, body: dict[str, Any], arrived: float, entry: dict[str, Any]
        ) -> Response:
            profile, delay, spiked, fault = state.decide(body)
            rule = state.config.rule_for(body)
            kind = "rule" if rule is not None else fault
            if kind is not None:
                state.faults[kind] += 1
            entry.update(
                operation=name, body=body, delay_ms=round(delay, 3), spike=spiked, fault=kind
            )
            state.recent.append(entry)
            # The delay is the call's response time, counted from its arrival, as a real
            # endpoint's latency includes its own work: a read is answered inside it (only
            # an engine slower than the delay adds to it). A write waits first, so that a
            # caller who hangs up during the wait has changed nothing.
            response = None
            if reads and kind in (None, "drop", "timeout"):
                response = await turns.run(lambda: answer(body))
            waited_ms = (time.monotonic() - arrived) * 1000.0
            if not await _sleep_unless_gone(request, delay - waited_ms):
                return _gone()
            if rule is not None:
                status = rule.status or _status_of(rule.error)
                return error_response(rule.error, status, f"Injected fault: {rule.error}")
            if kind == "throttle":
                return error_response("ThrottlingException", THROTTLE_STATUS, "Rate exceeded")
            if kind == "error":
                code, status = SERVER_ERRORS[(state.faults["error"] - 1) % len(SERVER_ERRORS)]
                return error_response(code, status, f"Injected fault: {code}")
            if kind == "timeout" and not await _sleep_unless_gone(request, profile.hang_ms):
                return _gone()
            if response is None:
                response = answer(body)
            if kind == "drop":
                return DroppedResponse(response.body, response.status_code, dict(response.headers))
            return response

        async def endpoint(request: Request) -> Response:
            arrived = time.monotonic()
            # Counted before anything can fail, so tests see every call that arrived.
            state.calls[name] = state.calls.get(name, 0) + 1
            raw = await request.body()
            if signing_secrets is not None:
                problem = signature_problem(
                    request.method,
                    request.url.path,
                    request.url.query,
                    {k.lower(): v for k, v in request.headers.items()},
                    raw,
                    signing_secrets,
                )
                if problem is not None:
                    return error_response("InvalidSignatureException", 403, problem)
            try:
                body = orjson.loads(raw) if raw.strip() else {}
            except orjson.JSONDecodeError:
                return error_response(
                    "SerializationException", 400, "Request body is not valid JSON"
                )
            if not isinstance(body, dict):
                return error_response(
                    "SerializationException", 400, "Request body must be a JSON object"
                )
            state.in_flight += 1
            # When the call arrived and was answered, in seconds on the emulator's
            # monotonic clock: tests see which calls overlapped.
            entry: dict[str, Any] = {"arrived": round(arrived, 6)}
            try:
                return await faulted(request, body, arrived, entry)
            finally:
                state.in_flight -= 1
                entry["answered"] = round(time.monotonic(), 6)

        return endpoint

    def put_events(body: Mapping[str, Any]) -> dict[str, Any]:
        # PutEvents has no output shape: the service answers 200 with an empty object.
        engine.put_events(body)
        for event in body.get("eventList") or []:
            state.received.append(
                {
                    "sessionId": body.get("sessionId"),
                    "eventId": event.get("eventId"),
                    "itemId": event.get("itemId"),
                    "eventType": event.get("eventType"),
                    "eventAttributionSource": (event.get("metricAttribution") or {}).get(
                        "eventAttributionSource"
                    ),
                }
            )
        return {}

    async def stats(request: Request) -> Response:
        return _json(200, state.stats())

    async def requests(request: Request) -> Response:
        return _json(200, {"requests": list(state.recent)})

    async def received(request: Request) -> Response:
        # `attributed`: every event the engine recorded, by attribution source and type.
        return _json(200, {"events": list(state.received), "attributed": engine.events.attributed})

    async def reset(request: Request) -> Response:
        state.reset()
        engine.events.clear()
        return _json(200, {"ok": True})

    async def faults_endpoint(request: Request) -> Response:
        if request.method == "POST":
            try:
                config = FaultConfig.parse(orjson.loads(await request.body()))
            except orjson.JSONDecodeError as exc:
                return error_response("InvalidInputException", 400, f"Bad fault config: {exc}")
            except FaultConfigError as exc:
                return error_response("InvalidInputException", 400, f"Bad fault config: {exc}")
            state.configure(config)
        config = state.config
        return _json(
            200,
            {
                "delay_ms": config.profile.latency.median_ms,
                "rules": len(config.rules),
                "config": config.to_json(),
            },
        )

    async def health(request: Request) -> Response:
        return _json(200, {"status": "ok"})

    async def unknown(request: Request) -> Response:
        return error_response(
            "UnknownOperationException", 404, f"No operation at {request.method} {request.url.path}"
        )

    routes = [
        Route(
            "/recommendations",
            operation("GetRecommendations", engine.get_recommendations, reads=True),
            methods=["POST"],
        ),
        Route(
            "/personalize-ranking",
            operation("GetPersonalizedRanking", engine.get_personalized_ranking, reads=True),
            methods=["POST"],
        ),
        Route("/events", operation("PutEvents", put_events, reads=False), methods=["POST"]),
        Route("/_emulator/stats", stats, methods=["GET"]),
        Route("/_emulator/requests", requests, methods=["GET"]),
        Route("/_emulator/events", received, methods=["GET"]),
        Route("/_emulator/reset", reset, methods=["POST"]),
        Route("/_emulator/faults", faults_endpoint, methods=["GET", "POST"]),
        Route("/_emulator/health", health, methods=["GET"]),
        Route("/{path:path}", unknown, methods=["GET", "POST", "PUT", "DELETE", "PATCH"]),
    ]
    app = Starlette(routes=routes)
    app.state.emulator = state
    app.state.engine = engine
    return app
