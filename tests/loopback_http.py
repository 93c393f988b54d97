"""Scripted HTTP/1.1 servers on loopback, for the clients we wrote ourselves."""

import asyncio
import ssl
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

OK = b'{"itemList":[]}'


def answer(body: bytes = OK, status: int = 200, extra: bytes = b"") -> bytes:
    reason = b"OK" if status == 200 else b"Error"
    return b"HTTP/1.1 %d %s\r\ncontent-type: application/json\r\ncontent-length: %d\r\n%s\r\n%s" % (
        status,
        reason,
        len(body),
        extra,
        body,
    )


class Server:
    """A loopback server: `reply(n, request)` gives the bytes to send for the n-th request
    overall (None: say nothing), and `after(n)` whether to close the connection then."""

    def __init__(
        self,
        reply: Callable[[int, bytes], bytes | None],
        after: Callable[[int], bool] = lambda n: False,
    ) -> None:
        self.reply, self.after = reply, after
        self.connections = 0
        self.hung_up = 0  # connections the client closed
        self.requests: list[bytes] = []

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = next(
                    int(line.split(b":", 1)[1])
                    for line in head.split(b"\r\n")
                    if line.lower().startswith(b"content-length:")
                )
                request = head + await reader.readexactly(length)
                n = len(self.requests)
                self.requests.append(request)
                data = self.reply(n, request)
                if data is not None:
                    writer.write(data)
                    await writer.drain()
                if self.after(n):
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            self.hung_up += 1
        finally:
            writer.close()


@asynccontextmanager
async def serving(server: Server, tls: ssl.SSLContext | None = None) -> AsyncIterator[str]:
    listener = await asyncio.start_server(server.handle, "127.0.0.1", 0, ssl=tls)
    port = listener.sockets[0].getsockname()[1]
    try:
        yield f"{'https' if tls else 'http'}://127.0.0.1:{port}"
    finally:
        listener.close()
