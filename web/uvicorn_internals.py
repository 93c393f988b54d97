"""Every use of uvicorn's internals: its httptools protocol, held to web/connections.py's limits.

`uvicorn.Config(http=...)` takes the protocol to run on each connection; `python server.py`
(and each worker of web/workers.py, which gets the same keywords) passes a
`DeadlineProtocols` here. What it reads of uvicorn beyond the documented API, each with a
test in tests/unit/test_uvicorn_internals.py that names it when an upgrade moves it:

- `uvicorn.protocols.http.httptools_impl.HttpToolsProtocol`, the protocol uvicorn runs
  when httptools is installed, and the keywords `uvicorn.Server` builds it with
  (`config`, `server_state`, `app_state`, `_loop`);
- the httptools parser callbacks it implements and this class extends
  (`on_message_begin`, `on_url`, `on_header`, `on_headers_complete`, `on_body`,
  `on_message_complete`), and `data_received`, `connection_made`, `connection_lost`;
- `send_400_response(msg)`, which `data_received` calls when the parser refuses the
  bytes or a callback raises: here it writes the coded JSON refusal instead of text;
- `shutdown()`, which `uvicorn.Server` calls on each connection at shutdown;
- its attributes `app` (the ASGI app `on_headers_complete` hands the request to),
  `connections` (the server's open connections), `transport`, `loop`, `flow.read_paused`
  (uvicorn stopped reading: its buffer is full, the client is not slow), `cycle` and the
  cycle's `response_started` and `response_complete`, and `server_state.default_headers`.
"""

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from domain.errors import ErrorCode
from settings import Settings
from web.connections import (
    REFUSALS,
    REFUSED_DRAIN_SECONDS,
    ConnectionLimits,
    Refusals,
    connection_limits,
    outbound_connections,
    refusal,
    too_many_connections,
)


class _Refused(Exception):
    """Raised in a parser callback: the parser stops, and `send_400_response` answers."""


class DeadlineProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with deadlines, a head size limit and a cap."""

    def __init__(
        self,
        config: Any,
        server_state: Any,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
        *,
        limits: ConnectionLimits,
        refusals: Refusals,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self._limits = limits
        self._refusals = refusals
        self._header_timeout = limits.header_timeout
        self._header_timer: asyncio.TimerHandle | None = None
        self._body_timer: asyncio.TimerHandle | None = None
        # Between a request's first byte (or the connection's opening) and its headers.
        self._awaiting_head = True
        self._head_bytes = 0  # of chunks that ended with the head still incomplete
        self._url_bytes = 0
        self._field_bytes = 0  # of the header lines httptools has handed over
        self._heads = 0  # heads completed on this connection
        # Between the headers and the end of the body.
        self._receiving = False
        self._body_started = 0.0
        self._body_bytes = 0
        self._shutdown_cap = float("inf")
        # The answer `send_400_response` gives instead of a bare 400.
        self._refusal: tuple[int, ErrorCode, str] | None = None

    # The connection.

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        open_now = len(self.connections)
        if open_now > self._limits.max_connections:
            # Its request is read and answered 503, then it closes; it has a second at
            # most for its headers, so that a flood of them does not hold descriptors.
            self.app = too_many_connections
            self._refusals.note(
                ErrorCode.TOO_MANY_CONNECTIONS,
                f"{open_now} open connections, over the cap of {self._limits.max_connections}",
                self.loop,
            )
            self._header_timeout = min(self._header_timeout, REFUSED_DRAIN_SECONDS)
        self._arm_header_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        for timer in (self._header_timer, self._body_timer):
            if timer is not None:
                timer.cancel()
        self._header_timer = self._body_timer = None
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        heads = self._heads
        head_only = self._awaiting_head
        super().data_received(data)
        if self.transport.is_closing():
            return
        if head_only and self._heads == heads:
            # The chunk came and went with the head incomplete: it is all head (httptools
            # would buffer a header's value without end).
            self._head_bytes += len(data)
            if self._head_bytes > self._limits.max_head_bytes:
                self._refuse_head(
                    431,
                    ErrorCode.REQUEST_HEADER_FIELDS_TOO_LARGE,
                    f"the request line and headers exceed {self._limits.max_head_bytes} bytes",
                )
        elif self._receiving and self._body_timer is None:
            self._body_timer = self.loop.call_at(self._body_deadline(), self._body_check)

    def shutdown(self) -> None:
        super().shutdown()
        if self._receiving and not self.transport.is_closing():
            # However steady its rate, a body still arriving does not hold the shutdown.
            self._shutdown_cap = self.loop.time() + self._limits.shutdown_grace
            if self._body_timer is not None:
                self._body_timer.cancel()
            self._body_timer = self.loop.call_at(self._body_deadline(), self._body_check)

    # The parser's callbacks.

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._awaiting_head = True
        self._url_bytes = 0
        self._field_bytes = 0
        if self._header_timer is None:  # from the first byte after a keep-alive pause
            self._arm_header_timer()

    def on_url(self, url: bytes) -> None:
        self._url_bytes += len(url)
        if self._url_bytes > self._limits.url_limit:
            self._refusal = (
                414,
                ErrorCode.URI_TOO_LONG,
                f"the URL is longer than {self._limits.url_limit} bytes; use POST",
            )
            raise _Refused
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        # A head that completes in the chunk that carries it past the limit is never
        # counted by data_received; its lines are counted here (name, ": ", value, CRLF).
        self._field_bytes += len(name) + len(value) + 4
        limit = self._limits.max_head_bytes
        if self._url_bytes + self._field_bytes > limit:
            self._refusal = (
                431,
                ErrorCode.REQUEST_HEADER_FIELDS_TOO_LARGE,
                f"the request line and headers exceed {limit} bytes",
            )
            raise _Refused
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None
        self._awaiting_head = False
        self._head_bytes = 0
        self._heads += 1
        super().on_headers_complete()
        self._receiving = True
        self._body_started = self.loop.time()
        self._body_bytes = 0

    def on_body(self, body: bytes) -> None:
        self._body_bytes += len(body)
        super().on_body(body)

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._receiving = False
        self._awaiting_head = True
        if self._body_timer is not None:
            self._body_timer.cancel()
            self._body_timer = None

    def send_400_response(self, msg: str) -> None:
        # uvicorn's answer when the parser refuses the bytes (or a callback raised).
        status, code, message = self._refusal or (
            400,
            ErrorCode.BAD_REQUEST,
            "the request is not valid HTTP/1.1",
        )
        self._refuse_head(status, code, message)

    # Deadlines.

    def _arm_header_timer(self) -> None:
        self._header_timer = self.loop.call_later(self._header_timeout, self._head_late)

    def _head_late(self) -> None:
        self._header_timer = None
        if not self.transport.is_closing():
            self._refuse_head(
                408,
                ErrorCode.REQUEST_TIMEOUT,
                f"the request headers did not arrive within {self._header_timeout:g} s",
            )

    def _body_deadline(self) -> float:
        limits = self._limits
        steady = self._body_started + limits.body_grace + self._body_bytes / limits.body_min_rate
        return min(steady, self._shutdown_cap)

    def _body_check(self) -> None:
        self._body_timer = None
        if not self._receiving or self.transport.is_closing():
            return
        now = self.loop.time()
        if self.flow.read_paused:
            # uvicorn stopped reading (the app has not taken what came): not the
            # client's delay, so the measure starts again.
            self._body_started, self._body_bytes = now, 0
        deadline = self._body_deadline()
        if now < deadline:
            self._body_timer = self.loop.call_at(deadline, self._body_check)
            return
        limits = self._limits
        message = (
            f"the body did not arrive at {limits.body_min_rate} bytes/s after "
            f"{limits.body_grace:g} s"
            if self._shutdown_cap == float("inf")
            else "the server is shutting down and the body did not arrive in time"
        )
        # The app, waiting for the body, hears that the client went away.
        self._refuse(
            408, ErrorCode.REQUEST_TIMEOUT, message, answer=not self.cycle.response_started
        )

    # Refusals.

    def _refuse_head(self, status: int, code: ErrorCode, message: str) -> None:
        # A response in progress (a pipelined request's head is late): nothing can be
        # said in between, only closed.
        idle = self.cycle is None or self.cycle.response_complete
        self._refuse(status, code, message, answer=idle)

    def _refuse(self, status: int, code: ErrorCode, message: str, *, answer: bool) -> None:
        if answer:
            self.transport.write(refusal(status, code, message, self.server_state.default_headers))
        self.transport.close()
        self._refusals.note(code, message, self.loop)


class DeadlineProtocols:
    """What `uvicorn.Config(http=...)` calls to make each connection's protocol.

    Picklable (web/workers.py hands the config to worker processes); the refusals are
    counted in the process's `REFUSALS`, which /metrics reads.
    """

    def __init__(self, limits: ConnectionLimits) -> None:
        self.limits = limits

    def __call__(
        self,
        config: Any,
        server_state: Any,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> DeadlineProtocol:
        return DeadlineProtocol(
            config, server_state, app_state, _loop, limits=self.limits, refusals=REFUSALS
        )


def uvicorn_options(settings: Settings) -> dict[str, Any]:
    """The `uvicorn.Config` keywords that hold every connection to `[connections]`."""
    limits = connection_limits(
        settings.connections,
        outbound_connections(settings),
        settings.server.shutdown_timeout,
    )
    return {
        "http": DeadlineProtocols(limits),
        "timeout_keep_alive": settings.connections.keep_alive_timeout,
    }
