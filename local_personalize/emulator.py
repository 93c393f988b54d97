"""A Personalize Runtime HTTP emulator: the engine behind the service's wire protocol.

Speaks rest-json like the real endpoint (POST /recommendations, POST
/personalize-ranking), so aioboto3 — or any AWS SDK — works with ``endpoint_url``
pointed here. SigV4 headers are accepted and ignored. Errors carry the code in
``x-amzn-ErrorType`` and ``{"message": ...}`` in the body, which is how botocore
finds them; unexpected exceptions become 500 InternalFailure without a traceback.

Test controls live under ``/_emulator/``: call counters, the latest request bodies, reset,
and fault injection
(a delay for every call and rules that answer matching requests with an error).
"""

from __future__ import annotations

import asyncio
import logging
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

from .engine import Engine
from .errors import ERRORS_BY_CODE, PersonalizeError

logger = logging.getLogger(__name__)

OPERATIONS = ("GetRecommendations", "GetPersonalizedRanking")


@dataclass(frozen=True)
class FaultRule:
    """Answer requests whose body has every ``match`` member equal with error ``error``.

    ``status`` defaults to the error's usual HTTP status (400 for unknown codes).
    """

    match: Mapping[str, Any]
    error: str
    status: int | None = None

    def matches(self, body: Mapping[str, Any]) -> bool:
        return all(body.get(k) == v for k, v in self.match.items())


RECENT_REQUESTS = 500


@dataclass
class EmulatorState:
    """Mutable test-control state of one app: counters and faults."""

    default_delay_ms: float = 0.0
    delay_ms: float = 0.0
    rules: list[FaultRule] = field(default_factory=list)
    calls: dict[str, int] = field(default_factory=lambda: dict.fromkeys(OPERATIONS, 0))
    # The latest request bodies, so tests can see what a client actually sent.
    recent: deque[dict[str, Any]] = field(default_factory=lambda: deque(maxlen=RECENT_REQUESTS))

    def reset(self) -> None:
        """Zero the counters and restore the delay the app was created with."""
        self.calls = dict.fromkeys(OPERATIONS, 0)
        self.recent.clear()
        self.rules = []
        self.delay_ms = self.default_delay_ms


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


def create_app(engine: Engine, *, delay_ms: float = 0.0) -> Starlette:
    """Build the emulator app around ``engine``; ``delay_ms`` delays every operation call."""
    state = EmulatorState(default_delay_ms=delay_ms, delay_ms=delay_ms)

    def operation(
        name: str, handler: Callable[[Mapping[str, Any]], dict[str, Any]]
    ) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            # Counted before anything can fail, so tests see every call that arrived.
            state.calls[name] += 1
            raw = await request.body()
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
            state.recent.append({"operation": name, "body": body})
            if state.delay_ms > 0:
                await asyncio.sleep(state.delay_ms / 1000.0)
            for rule in state.rules:
                if rule.matches(body):
                    status = rule.status or _status_of(rule.error)
                    return error_response(rule.error, status, f"Injected fault: {rule.error}")
            try:
                result = handler(body)
            except PersonalizeError as exc:
                return error_response(exc.code, exc.status, exc.message)
            except Exception:
                logger.exception("%s failed", name)
                return error_response("InternalFailure", 500, "An internal error occurred")
            return _json(200, result)

        return endpoint

    async def stats(request: Request) -> Response:
        return _json(200, {"calls": dict(state.calls), "total": sum(state.calls.values())})

    async def requests(request: Request) -> Response:
        return _json(200, {"requests": list(state.recent)})

    async def reset(request: Request) -> Response:
        state.reset()
        return _json(200, {"ok": True})

    async def faults(request: Request) -> Response:
        try:
            body = orjson.loads(await request.body())
            rules = [_rule(r) for r in body.get("rules", [])]
            delay = float(body.get("delay_ms", state.delay_ms))
        except (orjson.JSONDecodeError, AttributeError, TypeError, ValueError) as exc:
            return error_response("InvalidInputException", 400, f"Bad fault config: {exc}")
        if delay < 0:
            return error_response("InvalidInputException", 400, "delay_ms must be >= 0")
        state.rules = rules
        state.delay_ms = delay
        return _json(200, {"delay_ms": delay, "rules": len(rules)})

    async def health(request: Request) -> Response:
        return _json(200, {"status": "ok"})

    async def unknown(request: Request) -> Response:
        return error_response(
            "UnknownOperationException", 404, f"No operation at {request.method} {request.url.path}"
        )

    routes = [
        Route(
            "/recommendations",
            operation("GetRecommendations", engine.get_recommendations),
            methods=["POST"],
        ),
        Route(
            "/personalize-ranking",
            operation("GetPersonalizedRanking", engine.get_personalized_ranking),
            methods=["POST"],
        ),
        Route("/_emulator/stats", stats, methods=["GET"]),
        Route("/_emulator/requests", requests, methods=["GET"]),
        Route("/_emulator/reset", reset, methods=["POST"]),
        Route("/_emulator/faults", faults, methods=["POST"]),
        Route("/_emulator/health", health, methods=["GET"]),
        Route("/{path:path}", unknown, methods=["GET", "POST", "PUT", "DELETE", "PATCH"]),
    ]
    app = Starlette(routes=routes)
    app.state.emulator = state
    app.state.engine = engine
    return app


def _rule(raw: Any) -> FaultRule:
    if not isinstance(raw, dict):
        raise TypeError("each rule must be an object")
    match = raw.get("match", {})
    error = raw.get("error")
    if not isinstance(match, dict) or not isinstance(error, str) or not error:
        raise ValueError("a rule needs a 'match' object and an 'error' code")
    status = raw.get("status")
    if status is not None and (not isinstance(status, int) or not 400 <= status <= 599):
        raise ValueError("a rule's status must be an HTTP error status (400-599)")
    return FaultRule(dict(match), error, status)
