"""A small HTTP/1.1 keep-alive client for the direct Personalize client's signed POSTs.

aiohttp builds request and response objects, multidicts, cookie and trace hooks and a
stream reader per body; this client writes one prebuilt request and parses the answer
with httptools (the C parser uvicorn serves with). Every call of the subgraph's hot path
is one such POST, so the difference shows in a page's CPU: `python -m bench.libraries`
measures both side by side (ARCHITECTURE.md, "Hand-written where a library exists").

What it does, and all it does:

- a pool of keep-alive connections to one origin (http or https), reused last-in
  first-out, so the busiest connections stay warm; an idle connection is dropped after
  `idle_timeout` (servers close theirs: Personalize's load balancers after 60 s);
- a connect timeout and a read timeout (the whole answer, from the end of the request);
- TLS with the system's trust store, or `AWS_CA_BUNDLE` as the AWS SDKs read it;
- a request written on a kept connection that the server had already closed (the race
  every keep-alive client has) is sent once more on a new connection, when nothing of an
  answer had arrived; the callers' requests are reads, safe to repeat;
- chunked and content-length bodies, `Connection: close`, a bound on the body's size;
- a connection that failed, timed out or was abandoned mid-answer is closed, never
  reused.

No redirects, proxies, compression or cookies: Personalize's API uses none of them.
"""

import asyncio
import os
import ssl
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

import httptools

MAX_BODY_BYTES = 16 * 1024 * 1024
_DEFAULT_PORTS = {"http": 80, "https": 443}


class ConnectionFailed(ConnectionError):
    """The connection could not be made, broke, or carried something that is not HTTP."""


@dataclass(frozen=True, slots=True)
class Response:
    status: int
    # Lower-case names; the last value of a repeated header.
    headers: dict[str, str]
    body: bytes


class _Connection(asyncio.Protocol):
    """One connection; one request at a time."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.waiter: asyncio.Future[Response] | None = None
        self.closed = False
        self.received = False  # any byte of the current answer
        self.keep_alive = False
        self.idle_since = 0.0
        self._headers: dict[str, str] = {}
        self._body: list[bytes] = []
        self._size = 0

    # --- asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's is no subclass

    def data_received(self, data: bytes) -> None:
        if self.waiter is None:
            # Nobody asked: a server that talks out of turn is not to be trusted again.
            self.close()
            return
        self.received = True
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(ConnectionFailed(f"malformed HTTP answer: {exc}"))

    def eof_received(self) -> bool:
        return False  # close our side too

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._fail(ConnectionFailed(f"connection closed{': ' + str(exc) if exc else ''}"))

    # --- httptools callbacks
    def on_message_begin(self) -> None:
        if self.waiter is None:
            # A second answer in the same read as the first: never to be taken for the
            # next request's. (Data in a later read is caught by data_received.)
            self.close()
        self._headers = {}
        self._body = []
        self._size = 0

    def on_header(self, name: bytes, value: bytes) -> None:
        self._headers[name.decode("latin-1").lower()] = value.decode("latin-1")

    def on_body(self, body: bytes) -> None:
        self._size += len(body)
        if self._size > MAX_BODY_BYTES:
            self._fail(ConnectionFailed(f"answer larger than {MAX_BODY_BYTES} bytes"))
            return
        self._body.append(body)

    def on_message_complete(self) -> None:
        if 100 <= self.parser.get_status_code() < 200:
            return  # an interim answer (100 Continue): the real one follows
        waiter, self.waiter = self.waiter, None
        self.keep_alive = self.parser.should_keep_alive()
        if waiter is not None and not waiter.done():
            body = self._body[0] if len(self._body) == 1 else b"".join(self._body)
            waiter.set_result(Response(self.parser.get_status_code(), self._headers, body))

    # --- ours
    def send(self, request: bytes, waiter: "asyncio.Future[Response]") -> None:
        assert self.transport is not None
        self.waiter = waiter
        self.received = False
        self.transport.write(request)

    def _fail(self, exc: Exception) -> None:
        waiter, self.waiter = self.waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_exception(exc)
        self.close()

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()


def _ssl_context() -> ssl.SSLContext:
    # AWS_CA_BUNDLE is where the AWS SDKs look for a private trust store; else the system's.
    return ssl.create_default_context(cafile=os.environ.get("AWS_CA_BUNDLE") or None)


class Pool:
    """Keep-alive connections to the origin of `url`, for POSTs."""

    def __init__(
        self,
        url: str,
        *,
        max_idle: int,
        connect_timeout: float,
        read_timeout: float,
        idle_timeout: float = 30.0,
        ssl_context: ssl.SSLContext | None = None,
        user_agent: str = "personalize-subgraph",
    ) -> None:
        parts = urlsplit(url)
        if parts.scheme not in _DEFAULT_PORTS or parts.hostname is None:
            raise ValueError(f"want an http or https URL, got {url!r}")
        self._host = parts.hostname
        self._port = parts.port or _DEFAULT_PORTS[parts.scheme]
        self._ssl = (ssl_context or _ssl_context()) if parts.scheme == "https" else None
        self._max_idle = max_idle
        self._connect_timeout = connect_timeout
        self._read_timeout = read_timeout
        self._idle_timeout = idle_timeout
        self._idle: list[_Connection] = []
        self._all: set[_Connection] = set()
        self._closed = False
        self._agent = f"User-Agent: {user_agent}\r\n".encode()
        self.opened = 0  # connections made, for tests and metrics

    async def post(self, path: str, headers: dict[str, str], body: bytes) -> Response:
        """POST `body` to `path` with `headers` (Content-Length is added).

        Raises TimeoutError (connect or read timeout) or ConnectionFailed.
        """
        head = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
        if head.count("\n") != len(headers) or head.count("\r") != len(headers):
            raise ValueError("a header name or value contains a line break")
        request = (
            f"POST {path} HTTP/1.1\r\n{head}Content-Length: {len(body)}\r\n".encode()
            + self._agent
            + b"\r\n"
            + body
        )
        conn, reused = self._take()
        if conn is None:
            conn = await self._open()
        try:
            return await self._exchange(conn, request)
        except ConnectionFailed:
            if not reused or conn.received:
                raise
        # The kept connection had been closed by the server before our request reached
        # it: nothing was answered, so once more on a new connection.
        return await self._exchange(await self._open(), request)

    async def _exchange(self, conn: _Connection, request: bytes) -> Response:
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[Response] = loop.create_future()
        timer = loop.call_later(self._read_timeout, _expire, waiter, self._read_timeout)
        try:
            conn.send(request, waiter)
            response = await waiter
        except BaseException:
            # Failed, timed out or cancelled mid-answer: the connection is in no state to reuse.
            conn.close()
            self._all.discard(conn)
            raise
        finally:
            timer.cancel()
        self._release(conn)
        return response

    def _take(self) -> tuple[_Connection | None, bool]:
        now = time.monotonic()
        while self._idle:
            conn = self._idle.pop()
            if not conn.closed and now - conn.idle_since < self._idle_timeout:
                return conn, True
            conn.close()
            self._all.discard(conn)
        return None, False

    def _release(self, conn: _Connection) -> None:
        if len(self._idle) >= self._max_idle:
            # Connections the servers closed while idle make no room for live ones.
            self._idle = [idle for idle in self._idle if not idle.closed]
        if conn.closed or not conn.keep_alive or self._closed or len(self._idle) >= self._max_idle:
            conn.close()
            self._all.discard(conn)
            return
        conn.idle_since = time.monotonic()
        self._idle.append(conn)

    async def _open(self) -> _Connection:
        if self._closed:
            raise ConnectionFailed("the pool is closed")
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(self._connect_timeout):
                _, conn = await loop.create_connection(
                    _Connection,
                    self._host,
                    self._port,
                    ssl=self._ssl,
                    server_hostname=self._host if self._ssl is not None else None,
                )
        except TimeoutError:
            raise TimeoutError(f"no connection in {self._connect_timeout} s") from None
        except OSError as exc:  # refused, unreachable, DNS, TLS (ssl.SSLError is an OSError)
            raise ConnectionFailed(f"cannot connect: {exc}") from exc
        self.opened += 1
        self._all.add(conn)
        return conn

    async def aclose(self) -> None:
        """Close every connection, idle or busy; later posts fail."""
        self._closed = True
        for conn in list(self._all):
            conn.close()
        self._all.clear()
        self._idle.clear()
        await asyncio.sleep(0)  # let the transports finish closing


def _expire(waiter: "asyncio.Future[Response]", seconds: float) -> None:
    if not waiter.done():
        waiter.set_exception(TimeoutError(f"no answer in {seconds} s"))
