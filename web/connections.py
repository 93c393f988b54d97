"""Deadlines and a cap on client connections, and the coded JSON answers of a refusal.

uvicorn bounds none of these by itself: a connection that never sends its request
headers (or sends them a line a second) is held for ever, a body may arrive a byte a
second, and a process accepts connections until its file descriptors run out, after
which every new request fails without a line in the log. Held connections also hold a
graceful shutdown until its timeout, which then cancels their requests with tracebacks.

`web/uvicorn_internals.py` applies the limits below to each connection (it is the only
module that touches uvicorn's internals); this module holds the rest: the limits, the
bytes of a refusal, the answer given beyond the cap, and the log lines that count the
refusals (rate-limited: a flood of refusals is a few lines, each with its count).
"""

import asyncio
import logging
import math
import resource
from dataclasses import dataclass
from http import HTTPStatus

import orjson
from starlette.types import Receive, Scope, Send

from backends.redis_store import REDIS_MAX_CONNECTIONS
from domain.errors import ErrorCode
from settings import ConnectionSettings, Settings

log = logging.getLogger(__name__)

# uvicorn's parser (httptools' parse_url) keeps URL offsets in 16 bits and refuses a
# longer URL: such a request is answered 414 before the app sees it.
PARSER_URL_LIMIT = 65_535
# The request line and header fields of one request. httptools has no limit of its own
# (it buffers a header's value whole), so without this a client could fill the memory.
MAX_HEAD_BYTES = 128 * 1024
# File descriptors kept for what is not a client connection (listening sockets, logs,
# the engine's files), besides the pools of `outbound_connections`.
FD_RESERVE = 64
# Beyond the cap, the request's body is read and dropped within these bounds before the
# 503, so that a client sending it whole reads the answer rather than a reset.
REFUSED_DRAIN_BYTES = 64 * 1024
REFUSED_DRAIN_SECONDS = 1.0
# At most one log line per refusal code in this many seconds; it carries the count.
LOG_EVERY_S = 10.0


@dataclass(frozen=True)
class ConnectionLimits:
    """What each connection of a process is held to (from `[connections]`)."""

    header_timeout: float
    body_grace: float
    body_min_rate: int
    max_connections: int
    # At shutdown, a body still arriving has this long at most, whatever its rate.
    shutdown_grace: float
    max_head_bytes: int = MAX_HEAD_BYTES
    url_limit: int = PARSER_URL_LIMIT


def outbound_connections(settings: Settings) -> int:
    """The most connections a process opens itself: the Personalize pool, the PutEvents
    client's (one per sender) and the Redis cache's pool, as configured."""
    total = settings.personalize.max_concurrency
    if settings.events.tracking_id is not None and (
        settings.backend != "local" or settings.local.engine_url is not None
    ):
        total += settings.events.max_in_flight
    if settings.cache.enabled and settings.cache.backend == "redis":
        total += REDIS_MAX_CONNECTIONS
    if settings.events.tracking_id is not None and settings.events.outbox == "redis":
        total += 1
    return total


def connection_limits(
    settings: ConnectionSettings, pool_size: int, shutdown_timeout: float
) -> ConnectionLimits:
    """The limits, with the cap lowered to fit the process's file descriptor limit.

    At shutdown a body still arriving gets `body_grace`, but at most half the graceful
    timeout: past that timeout uvicorn cancels the request, with a traceback.
    """
    cap = settings.max_connections
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY:
        fitting = max(1, soft - FD_RESERVE - pool_size)
        if fitting < cap:
            log.warning(
                "connections.max_connections lowered from %d to %d: the file descriptor "
                "limit is %d (%d kept for outbound connections and the process)",
                cap,
                fitting,
                soft,
                FD_RESERVE + pool_size,
            )
            cap = fitting
    return ConnectionLimits(
        header_timeout=settings.header_timeout,
        body_grace=settings.body_grace,
        body_min_rate=settings.body_min_rate,
        max_connections=cap,
        shutdown_grace=min(settings.body_grace, shutdown_timeout / 2),
    )


def error_body(code: ErrorCode, message: str) -> bytes:
    """The JSON error contract of every refusal: one error with its `extensions.code`."""
    return orjson.dumps({"errors": [{"message": message, "extensions": {"code": code}}]})


def refusal(
    status: int, code: ErrorCode, message: str, headers: list[tuple[bytes, bytes]]
) -> bytes:
    """A whole HTTP/1.1 response (then the connection closes), written by the protocol."""
    body = error_body(code, message)
    lines = [f"HTTP/1.1 {status} {HTTPStatus(status).phrase}\r\n".encode()]
    lines.extend(name + b": " + value + b"\r\n" for name, value in headers)
    lines.append(b"content-type: application/json; charset=utf-8\r\n")
    lines.append(b"content-length: %d\r\nconnection: close\r\n\r\n" % len(body))
    lines.append(body)
    return b"".join(lines)


TOO_MANY_MESSAGE = "the server holds too many connections; retry shortly"


async def too_many_connections(scope: Scope, receive: Receive, send: Send) -> None:
    """The ASGI app a connection beyond the cap is handed: 503 TOO_MANY_CONNECTIONS."""
    size = 0
    more = True
    try:
        async with asyncio.timeout(REFUSED_DRAIN_SECONDS):
            while more and size <= REFUSED_DRAIN_BYTES:
                message = await receive()
                if message["type"] == "http.disconnect":
                    return
                size += len(message.get("body", b""))
                more = message.get("more_body", False)
    except TimeoutError:
        pass
    body = error_body(ErrorCode.TOO_MANY_CONNECTIONS, TOO_MANY_MESSAGE)
    await send(
        {
            "type": "http.response.start",
            "status": 503,
            "headers": [
                (b"content-type", b"application/json; charset=utf-8"),
                (b"content-length", str(len(body)).encode()),
                (b"retry-after", b"1"),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


class Refusals:
    """Counts a process's refusals by code and logs them, one line per code per period.

    The first refusal of a period is logged at once; later ones are counted and logged
    together when the period ends, so a flood costs a line every `LOG_EVERY_S` seconds.
    """

    def __init__(self, every_s: float = LOG_EVERY_S) -> None:
        self._every = every_s
        self.totals: dict[str, int] = {}
        self._unreported: dict[str, int] = {}
        self._latest: dict[str, str] = {}
        self._last: dict[str, float] = {}
        self._scheduled: set[str] = set()

    def note(self, code: ErrorCode, detail: str, loop: asyncio.AbstractEventLoop) -> None:
        """Count one refusal (`detail` says why) and log it, or schedule its report."""
        self.totals[code] = self.totals.get(code, 0) + 1
        self._unreported[code] = self._unreported.get(code, 0) + 1
        self._latest[code] = detail
        now = loop.time()
        wait = self._last.get(code, -math.inf) + self._every - now
        if wait <= 0:
            self._report(code, now)
        elif code not in self._scheduled:
            self._scheduled.add(code)
            loop.call_later(wait, self._flush, code, loop)

    def _flush(self, code: str, loop: asyncio.AbstractEventLoop) -> None:
        self._scheduled.discard(code)
        if self._unreported.get(code):
            self._report(code, loop.time())

    def _report(self, code: str, now: float) -> None:
        count = self._unreported.pop(code, 0)
        self._last[code] = now
        log.warning(
            "refused %d connection(s) with %s (%d since start); latest: %s",
            count,
            code,
            self.totals[code],
            self._latest[code],
            extra={"code": code, "refused": count, "refused_total": self.totals[code]},
        )


# The process's refusals (each worker process has its own); /metrics reads them.
REFUSALS = Refusals()
# The codes a connection can be refused with: the metric has each from start-up.
REFUSAL_CODES = (
    ErrorCode.REQUEST_TIMEOUT,
    ErrorCode.TOO_MANY_CONNECTIONS,
    ErrorCode.REQUEST_HEADER_FIELDS_TOO_LARGE,
    ErrorCode.URI_TOO_LONG,
    ErrorCode.BAD_REQUEST,
)
