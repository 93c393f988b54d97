"""The head limit holds however the bytes arrive: CI once saw a 200 KB header answered
200 because the whole head came in one read, which the per-read count never saw."""

import asyncio
import socket
from collections.abc import Iterator

import orjson
import pytest
from uvicorn.server import ServerState

from tests.protocol_sockets import on_socketpair
from web.connections import ConnectionLimits, Refusals
from web.uvicorn_internals import DeadlineProtocol

LIMIT = 4096


@pytest.fixture
def protocol() -> Iterator[tuple[DeadlineProtocol, socket.socket, asyncio.AbstractEventLoop]]:
    """Our protocol on a real connected socket, fed by the test instead of the loop."""
    limits = ConnectionLimits(
        header_timeout=30,
        body_grace=30,
        body_min_rate=1,
        max_connections=100,
        shutdown_grace=1,
        max_head_bytes=LIMIT,
    )
    with on_socketpair(
        lambda config, loop: DeadlineProtocol(
            config, ServerState(), {}, loop, limits=limits, refusals=Refusals()
        )
    ) as made:
        yield made


def answer(theirs: socket.socket, loop: asyncio.AbstractEventLoop) -> bytes:
    loop.run_until_complete(asyncio.sleep(0.05))
    theirs.settimeout(2)
    received = b""
    while chunk := theirs.recv(65536):
        received += chunk
    return received


def head_of(size: int) -> bytes:
    return b"GET /x HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * size + b"\r\n\r\n"


@pytest.mark.parametrize("chunk", [None, 100], ids=["one-read", "many-reads"])
def test_a_head_over_the_limit_is_refused_431(
    protocol: tuple[DeadlineProtocol, socket.socket, asyncio.AbstractEventLoop],
    chunk: int | None,
) -> None:
    made, theirs, loop = protocol
    data = head_of(LIMIT)
    step = chunk or len(data)
    for start in range(0, len(data), step):
        if made.transport.is_closing():
            break
        made.data_received(data[start : start + step])
    received = answer(theirs, loop)
    assert received.startswith(b"HTTP/1.1 431 "), received[:200]
    body = orjson.loads(received.split(b"\r\n\r\n", 1)[1])
    assert [e["extensions"]["code"] for e in body["errors"]] == ["REQUEST_HEADER_FIELDS_TOO_LARGE"]


def test_a_head_under_the_limit_reaches_the_app(
    protocol: tuple[DeadlineProtocol, socket.socket, asyncio.AbstractEventLoop],
) -> None:
    made, theirs, loop = protocol
    made.data_received(head_of(LIMIT - 200))
    theirs.shutdown(socket.SHUT_WR)
    loop.run_until_complete(asyncio.sleep(0.05))
    theirs.settimeout(2)
    assert theirs.recv(65536).startswith(b"HTTP/1.1 204 ")
