"""The bench's load generator reads answers as the servers under test send them."""

import asyncio

import pytest

from bench.loadgen import Connection, LoadError
from tests.loopback_http import Server, answer, serving


async def test_keep_alive_content_length_and_chunked_answers() -> None:
    chunked = (
        b'HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n3\r\n{"a\r\n4\r\n":1}\r\n0\r\n\r\n'
    )
    server = Server(lambda n, req: answer(b'{"n":%d}' % n) if n % 2 == 0 else chunked)
    async with serving(server) as url:
        conn = Connection(url + "/graphql")
        got = [await conn.post(b'{"query":"{ a }"}') for _ in range(4)]
        conn.close()
    assert got == [(200, b'{"n":0}'), (200, b'{"a":1}'), (200, b'{"n":2}'), (200, b'{"a":1}')]
    assert server.connections == 1
    assert server.requests[0].startswith(b"POST /graphql HTTP/1.1\r\n")
    assert server.requests[0].endswith(b'\r\n\r\n{"query":"{ a }"}')


async def test_a_closed_connection_or_no_answer_is_a_load_error() -> None:
    server = Server(lambda n, req: None, after=lambda n: True)
    async with serving(server) as url:
        with pytest.raises(LoadError, match="connection closed"):
            await Connection(url + "/graphql").post(b"{}")
    silent = Server(lambda n, req: None)
    async with serving(silent) as url:
        conn = Connection(url + "/graphql", timeout=0.2)
        with pytest.raises(LoadError, match="no answer"):
            await conn.post(b"{}")
        # The next query goes out at once on a new connection (and is not answered either).
        with pytest.raises(LoadError, match="no answer"):
            await conn.post(b"{}")
        await asyncio.sleep(0.05)
    assert silent.connections == 2
    assert silent.hung_up == 2
