"""A uvicorn HTTP protocol on one end of a real socket pair, with no server around it:
the test feeds it (or the loop does) and reads its answers from the other end."""

import asyncio
import socket
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from uvicorn.config import Config

P = TypeVar("P", bound=asyncio.Protocol)


async def no_content(scope: Any, receive: Any, send: Any) -> None:
    """An ASGI app answering every request 204."""
    await send({"type": "http.response.start", "status": 204, "headers": []})
    await send({"type": "http.response.body", "body": b""})


@contextmanager
def on_socketpair(
    make: Callable[[Config, asyncio.AbstractEventLoop], P],
) -> Iterator[tuple[P, socket.socket, asyncio.AbstractEventLoop]]:
    """`make(config, loop)`'s protocol, connected; yields it, the peer socket and the loop."""
    loop = asyncio.new_event_loop()
    config = Config(no_content, log_level="warning")
    config.load()
    protocol = make(config, loop)
    ours, theirs = socket.socketpair()
    loop.run_until_complete(loop.connect_accepted_socket(lambda: protocol, ours))
    try:
        yield protocol, theirs, loop
    finally:
        transport = getattr(protocol, "transport", None)
        if transport is not None:
            transport.close()
        loop.run_until_complete(asyncio.sleep(0))
        theirs.close()
        loop.close()
