"""The bench's load generator: HTTP/1.1 keep-alive POSTs at the lowest CPU cost we can get.

The load generator shares the machine's cores with the servers it measures, so whatever
it spends per request turns up as their queueing. httpx spent about 1.9 ms of CPU per
home-page query here (a third of a core at 160 q/s); this client writes one prebuilt
request and parses the answer with httptools (uvicorn's C parser), about a tenth of that.

One `Connection` carries one request at a time, as a browser connection or a gateway's
pooled connection does; a worker of the bench owns one. Anything but a complete answer
(reset, early close, a malformed response) raises `LoadError`.
"""

import asyncio
from urllib.parse import urlsplit

import httptools


class LoadError(Exception):
    """The connection failed or the server answered something that is not HTTP."""


class _Protocol(asyncio.Protocol):
    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.waiter: asyncio.Future[tuple[int, bytes]] | None = None
        self.chunks: list[bytes] = []
        self.closed = False

    # asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's is no subclass

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(LoadError(f"malformed response: {exc}"))

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._fail(LoadError(f"connection closed: {exc or 'by the server'}"))

    # httptools callbacks
    def on_message_begin(self) -> None:
        self.chunks = []

    def on_body(self, body: bytes) -> None:
        self.chunks.append(body)

    def on_message_complete(self) -> None:
        waiter, self.waiter = self.waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result((self.parser.get_status_code(), b"".join(self.chunks)))

    def _fail(self, exc: Exception) -> None:
        waiter, self.waiter = self.waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_exception(exc)
        # At once, not at connection_lost: the next post must open a new connection.
        self.closed = True
        if self.transport is not None:
            self.transport.close()


class Connection:
    """One keep-alive connection to ``url`` (``http://host:port/path``) for POSTs of JSON."""

    def __init__(self, url: str, *, timeout: float = 60.0) -> None:
        parts = urlsplit(url)
        if parts.scheme != "http" or parts.hostname is None or parts.port is None:
            raise ValueError(f"want http://host:port/path, got {url!r}")
        self.host, self.port, self.timeout = parts.hostname, parts.port, timeout
        self._head = (
            f"POST {parts.path or '/'} HTTP/1.1\r\nhost: {parts.netloc}\r\n"
            "content-type: application/json\r\naccept: application/json\r\n"
            "content-length: "
        ).encode()
        self._protocol: _Protocol | None = None

    async def _open(self) -> _Protocol:
        if self._protocol is None or self._protocol.closed:
            loop = asyncio.get_running_loop()
            _, protocol = await loop.create_connection(_Protocol, self.host, self.port)
            self._protocol = protocol
        return self._protocol

    async def post(self, body: bytes) -> tuple[int, bytes]:
        """Send ``body``; the answer's status and body (transfer encoding undone)."""
        protocol = await self._open()
        if protocol.waiter is not None:
            raise RuntimeError("one request at a time per Connection")
        protocol.waiter = asyncio.get_running_loop().create_future()
        assert protocol.transport is not None
        protocol.transport.write(self._head + b"%d\r\n\r\n" % len(body) + body)
        try:
            return await asyncio.wait_for(protocol.waiter, self.timeout)
        except TimeoutError:
            protocol._fail(LoadError(f"no answer in {self.timeout} s"))
            raise LoadError(f"no answer in {self.timeout} s") from None
        except BaseException as exc:  # cancelled, or the connection failed
            protocol._fail(LoadError(str(exc)))
            raise

    def close(self) -> None:
        if self._protocol is not None and self._protocol.transport is not None:
            self._protocol.transport.close()
