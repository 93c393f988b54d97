"""A Personalize Runtime HTTP emulator: the engine behind the service's wire protocol.

Speaks rest-json like the real endpoint (POST /recommendations, POST
/personalize-ranking), so aioboto3 — or any AWS SDK — works with ``endpoint_url``
pointed here. SigV4 headers are accepted and ignored. Errors carry the code in
``x-amzn-ErrorType`` and ``{"message": ...}`` in the body, which is how botocore
finds them; unexpected exceptions become 500 InternalFailure without a traceback.

Test controls live under ``/_emulator/``: call and fault counters, the latest request
bodies, reset, and fault injection. A fault config (``FaultConfig``) gives every call a
seeded, reproducible fate: a lognormal latency with spikes, then either an answer or a
throttle, a 5xx, a hang past the client's read timeout, or a connection dropped
mid-response; per-ARN overrides and match rules refine it.
"""

from __future__ import annotations

import asyncio
import logging
import math
import random
import re
import uuid
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from .engine import Engine
from .errors import ERRORS_BY_CODE, PersonalizeError

logger = logging.getLogger(__name__)

OPERATIONS = ("GetRecommendations", "GetPersonalizedRanking")

FaultKind = Literal["throttle", "error", "timeout", "drop"]
FAULT_KINDS: tuple[FaultKind, ...] = ("throttle", "error", "timeout", "drop")
# What the stats count: the random kinds, rule hits, and latency spikes.
FAULT_COUNTERS = (*FAULT_KINDS, "rule", "spike")

# Upper bound for every duration in a config: larger values are a unit mistake, not a test.
MAX_DURATION_MS = 3_600_000.0
# exp(sigma * z) must stay finite; a sigma this wide is no longer a latency distribution.
MAX_SIGMA = 10.0
DEFAULT_HANG_MS = 30_000.0
# 5xx faults alternate between these two, the codes botocore treats as transient.
SERVER_ERRORS = (("InternalFailure", 500), ("ServiceUnavailable", 503))
# Throttling answers 429, as AWS's rest-json front doors do (API Gateway-style services,
# Personalize's runtime included); JSON-protocol services such as DynamoDB use 400 instead.
# botocore's standard retry mode decides by the ThrottlingException code alone, so either
# status retries as a throttle; 429 also matches the legacy mode's status-based check.
THROTTLE_STATUS = 429

_ARN = re.compile(r"arn:[^:]+:personalize:[^:]*:[^:]*:(?:campaign|recommender)/.+")


class FaultConfigError(ValueError):
    """A fault config that cannot be used; the message names the offending field."""


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

    def to_json(self) -> dict[str, Any]:
        return {"match": dict(self.match), "error": self.error, "status": self.status}


@dataclass(frozen=True)
class Latency:
    """A lognormal delay (``median_ms``, shape ``sigma``; 0 = fixed) capped at ``max_ms``,
    plus ``spike_ms`` with probability ``spike_rate``."""

    median_ms: float = 0.0
    sigma: float = 0.0
    max_ms: float | None = None
    spike_rate: float = 0.0
    spike_ms: float = 0.0

    def sample(self, z: float, u: float) -> tuple[float, bool]:
        """The delay for normal draw ``z`` and uniform draw ``u``, and whether it spiked."""
        delay = self.median_ms * math.exp(self.sigma * z) if self.median_ms > 0 else 0.0
        if self.max_ms is not None:
            delay = min(delay, self.max_ms)
        spiked = u < self.spike_rate
        return (delay + self.spike_ms if spiked else delay), spiked

    def to_json(self) -> dict[str, Any]:
        return {
            "median_ms": self.median_ms,
            "sigma": self.sigma,
            "max_ms": self.max_ms,
            "spike_rate": self.spike_rate,
            "spike_ms": self.spike_ms,
        }


@dataclass(frozen=True)
class FaultProfile:
    """What can happen to one call: its latency and the probability of each fault kind."""

    latency: Latency = field(default_factory=Latency)
    throttle_rate: float = 0.0
    error_rate: float = 0.0
    timeout_rate: float = 0.0
    drop_rate: float = 0.0
    hang_ms: float = DEFAULT_HANG_MS

    def fault(self, u: float) -> FaultKind | None:
        """The fault for uniform draw ``u``: each kind owns a slice of [0, 1) its rate wide."""
        edge = 0.0
        for kind, rate in zip(FAULT_KINDS, self._rates(), strict=True):
            edge += rate
            if u < edge:
                return kind
        return None

    def _rates(self) -> tuple[float, float, float, float]:
        return (self.throttle_rate, self.error_rate, self.timeout_rate, self.drop_rate)

    def to_json(self) -> dict[str, Any]:
        return {
            "latency": self.latency.to_json(),
            "throttle_rate": self.throttle_rate,
            "error_rate": self.error_rate,
            "timeout_rate": self.timeout_rate,
            "drop_rate": self.drop_rate,
            "hang_ms": self.hang_ms,
        }


PROFILE_KEYS = frozenset(
    {"delay_ms", "latency", "throttle_rate", "error_rate", "timeout_rate", "drop_rate", "hang_ms"}
)
CONFIG_KEYS = PROFILE_KEYS | {"seed", "per_arn", "rules"}
LATENCY_KEYS = frozenset({"median_ms", "sigma", "max_ms", "spike_rate", "spike_ms"})


@dataclass(frozen=True)
class FaultConfig:
    """The whole fault injection setup; ``parse`` reads the JSON of POST /_emulator/faults.

    ``per_arn`` holds complete profiles: each override already merged over ``profile``.
    """

    seed: int = 0
    profile: FaultProfile = field(default_factory=FaultProfile)
    per_arn: Mapping[str, FaultProfile] = field(default_factory=dict)
    rules: tuple[FaultRule, ...] = ()

    @classmethod
    def parse(cls, raw: Any) -> FaultConfig:
        """Validate ``raw`` (decoded JSON); raises ``FaultConfigError`` naming the bad field."""
        obj = _object(raw, "the config", CONFIG_KEYS)
        seed = obj.get("seed", 0)
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise FaultConfigError(f"seed must be an integer, got {seed!r}")
        profile = _profile(obj, FaultProfile(), "")
        per_arn: dict[str, FaultProfile] = {}
        for arn, override in _object(obj.get("per_arn", {}), "per_arn", None).items():
            if not _ARN.fullmatch(arn):
                raise FaultConfigError(
                    f"per_arn key {arn!r} is not a Personalize campaign or recommender ARN"
                )
            where = f"per_arn[{arn!r}]."
            per_arn[arn] = _profile(_object(override, where[:-1], PROFILE_KEYS), profile, where)
        rules = obj.get("rules", [])
        if not isinstance(rules, list):
            raise FaultConfigError("rules must be a list")
        return cls(seed, profile, per_arn, tuple(_rule(r, i) for i, r in enumerate(rules)))

    @classmethod
    def load(cls, path: str | Path) -> FaultConfig:
        """Read and parse a JSON file; raises ``FaultConfigError`` (also for I/O problems)."""
        try:
            raw = orjson.loads(Path(path).read_bytes())
        except OSError as exc:
            raise FaultConfigError(f"cannot read {path}: {exc.strerror or exc}") from exc
        except orjson.JSONDecodeError as exc:
            raise FaultConfigError(f"{path} is not valid JSON: {exc}") from exc
        try:
            return cls.parse(raw)
        except FaultConfigError as exc:
            raise FaultConfigError(f"{path}: {exc}") from exc

    def profile_for(self, body: Mapping[str, Any]) -> FaultProfile:
        """The profile of the ARN a request targets (recommenderArn or campaignArn)."""
        if self.per_arn:
            for key in ("recommenderArn", "campaignArn"):
                arn = body.get(key)
                if isinstance(arn, str) and arn in self.per_arn:
                    return self.per_arn[arn]
        return self.profile

    def to_json(self) -> dict[str, Any]:
        return {
            "seed": self.seed,
            **self.profile.to_json(),
            "per_arn": {arn: p.to_json() for arn, p in self.per_arn.items()},
            "rules": [r.to_json() for r in self.rules],
        }


def _object(raw: Any, where: str, allowed: frozenset[str] | None) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise FaultConfigError(f"{where} must be a JSON object")
    if allowed is not None:
        unknown = sorted(set(raw) - allowed)
        if unknown:
            raise FaultConfigError(
                f"unknown field {unknown[0]!r} in {where}; expected some of {sorted(allowed)}"
            )
    return raw


def _number(raw: Any, where: str, high: float) -> float:
    if isinstance(raw, bool) or not isinstance(raw, int | float) or not 0 <= raw <= high:
        bound = f"{high:g}" if high < 1000 else f"{high:.0f}"
        raise FaultConfigError(f"{where} must be a number in [0, {bound}], got {raw!r}")
    return float(raw)


def _rate(raw: Any, where: str) -> float:
    return _number(raw, where, 1.0)


def _ms(raw: Any, where: str) -> float:
    return _number(raw, where, MAX_DURATION_MS)


def _latency(raw: Any, where: str) -> Latency:
    obj = _object(raw, where, LATENCY_KEYS)
    max_ms = obj.get("max_ms")
    latency = Latency(
        median_ms=_ms(obj.get("median_ms", 0.0), f"{where}.median_ms"),
        sigma=_number(obj.get("sigma", 0.0), f"{where}.sigma", MAX_SIGMA),
        max_ms=None if max_ms is None else _ms(max_ms, f"{where}.max_ms"),
        spike_rate=_rate(obj.get("spike_rate", 0.0), f"{where}.spike_rate"),
        spike_ms=_ms(obj.get("spike_ms", 0.0), f"{where}.spike_ms"),
    )
    if latency.max_ms is not None and latency.max_ms < latency.median_ms:
        raise FaultConfigError(f"{where}.max_ms must be >= {where}.median_ms")
    if latency.spike_rate > 0 and latency.spike_ms == 0:
        raise FaultConfigError(f"{where}.spike_rate needs {where}.spike_ms > 0")
    return latency


def _profile(obj: Mapping[str, Any], base: FaultProfile, where: str) -> FaultProfile:
    """``base`` with the profile fields ``obj`` gives replaced (``latency`` as a whole)."""
    changes: dict[str, Any] = {}
    if "delay_ms" in obj and "latency" in obj:
        raise FaultConfigError(f"give {where}delay_ms or {where}latency, not both")
    if "delay_ms" in obj:
        changes["latency"] = Latency(median_ms=_ms(obj["delay_ms"], f"{where}delay_ms"))
    if "latency" in obj:
        changes["latency"] = _latency(obj["latency"], f"{where}latency")
    for name in ("throttle_rate", "error_rate", "timeout_rate", "drop_rate"):
        if name in obj:
            changes[name] = _rate(obj[name], f"{where}{name}")
    if "hang_ms" in obj:
        changes["hang_ms"] = _ms(obj["hang_ms"], f"{where}hang_ms")
    profile = replace(base, **changes)
    total = sum(profile._rates())
    if total > 1.0 + 1e-9:
        label = where.rstrip(".") or "the config"
        raise FaultConfigError(
            f"the fault rates of {label} add up to {total:g}; their sum must be <= 1"
        )
    if profile.timeout_rate > 0 and profile.hang_ms == 0:
        raise FaultConfigError(f"{where}timeout_rate needs {where}hang_ms > 0")
    return profile


def _rule(raw: Any, index: int = 0) -> FaultRule:
    if not isinstance(raw, dict):
        raise FaultConfigError(f"rules[{index}] must be an object")
    match = raw.get("match", {})
    error = raw.get("error")
    if not isinstance(match, dict) or not isinstance(error, str) or not error:
        raise FaultConfigError("a rule needs a 'match' object and an 'error' code")
    status = raw.get("status")
    if status is not None and (
        isinstance(status, bool) or not isinstance(status, int) or not 400 <= status <= 599
    ):
        raise FaultConfigError("a rule's status must be an HTTP error status (400-599)")
    return FaultRule(dict(match), error, status)


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
        self.configure(self.initial)

    def decide(self, body: Mapping[str, Any]) -> tuple[FaultProfile, float, bool, FaultKind | None]:
        """Draw one call's fate: profile, delay in ms, spike or not, and random fault.

        Every call takes the same three draws whatever its profile, so a seed gives the
        same sequence of fates for the same sequence of calls.
        """
        z, spike_u, fault_u = self.rng.gauss(0.0, 1.0), self.rng.random(), self.rng.random()
        profile = self.config.profile_for(body)
        delay, spiked = profile.latency.sample(z, spike_u)
        self.faults["spike"] += spiked
        self.delay_sum_ms += delay
        self.delay_max_ms = max(self.delay_max_ms, delay)
        return profile, delay, spiked, profile.fault(fault_u)

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


async def _sleep_unless_gone(request: Request, ms: float) -> bool:
    """Sleep ``ms``; False as soon as the client hangs up, so no hang outlives its caller
    (a 30 s hang would otherwise also hold up the server's shutdown)."""
    if ms <= 0:
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
    engine: Engine, *, delay_ms: float = 0.0, faults: FaultConfig | None = None
) -> Starlette:
    """Build the emulator app around ``engine``.

    ``faults`` is the start-up fault config (``delay_ms`` is its shorthand: a fixed delay
    for every call); reset restores it.
    """
    if faults is not None and delay_ms:
        raise ValueError("give delay_ms or faults, not both")
    initial = faults if faults is not None else FaultConfig.parse({"delay_ms": delay_ms})
    state = EmulatorState(initial=initial)
    state.configure(initial)
    logging.getLogger("uvicorn.error").addFilter(_QUIET_DROPS)

    def operation(
        name: str, handler: Callable[[Mapping[str, Any]], dict[str, Any]]
    ) -> Callable[[Request], Awaitable[Response]]:
        def answer(body: Mapping[str, Any]) -> Response:
            try:
                result = handler(body)
            except PersonalizeError as exc:
                return error_response(exc.code, exc.status, exc.message)
            except Exception:
                logger.exception("%s failed", name)
                return error_response("InternalFailure", 500, "An internal error occurred")
            return _json(200, result)

        async def faulted(request: Request, body: dict[str, Any]) -> Response:
            profile, delay, spiked, fault = state.decide(body)
            rule = next((r for r in state.config.rules if r.matches(body)), None)
            kind = "rule" if rule is not None else fault
            if kind is not None:
                state.faults[kind] += 1
            state.recent.append(
                {
                    "operation": name,
                    "body": body,
                    "delay_ms": round(delay, 3),
                    "spike": spiked,
                    "fault": kind,
                }
            )
            # Latency comes first, for faulted calls too: a real failure also takes time.
            if not await _sleep_unless_gone(request, delay):
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
            response = answer(body)
            if kind == "drop":
                return DroppedResponse(response.body, response.status_code, dict(response.headers))
            return response

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
            state.in_flight += 1
            try:
                return await faulted(request, body)
            finally:
                state.in_flight -= 1

        return endpoint

    async def stats(request: Request) -> Response:
        return _json(200, state.stats())

    async def requests(request: Request) -> Response:
        return _json(200, {"requests": list(state.recent)})

    async def reset(request: Request) -> Response:
        state.reset()
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
        Route("/_emulator/faults", faults_endpoint, methods=["GET", "POST"]),
        Route("/_emulator/health", health, methods=["GET"]),
        Route("/{path:path}", unknown, methods=["GET", "POST", "PUT", "DELETE", "PATCH"]),
    ]
    app = Starlette(routes=routes)
    app.state.emulator = state
    app.state.engine = engine
    return app
