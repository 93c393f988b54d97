"""backends.http1 against real servers on loopback, each scripted to misbehave in one way."""

import asyncio
import ssl

import pytest
import trustme

from backends.http1 import MAX_BODY_BYTES, ConnectionFailed, Pool
from tests.loopback_http import Server, answer, serving


def pool(url: str, **kwargs: object) -> Pool:
    options: dict[str, object] = {"max_idle": 4, "connect_timeout": 1.0, "read_timeout": 1.0}
    options.update(kwargs)
    return Pool(url, **options)  # type: ignore[arg-type]


HEADERS = {"Host": "127.0.0.1", "Content-Type": "application/json"}


async def hung_up(server: Server, count: int, within: float = 5.0) -> None:
    """Wait until the server saw `count` connections closed by the client; fail after
    `within` seconds (a connection left open would never be)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while server.hung_up < count:
        assert loop.time() < deadline, f"{server.hung_up} connection(s) closed, not {count}"
        await asyncio.sleep(0.01)
    assert server.hung_up == count


async def test_one_connection_carries_request_after_request() -> None:
    server = Server(lambda n, req: answer(b'{"n":%d}' % n))
    async with serving(server) as url:
        http = pool(url)
        bodies = [(await http.post("/recommendations", HEADERS, b"{}")).body for _ in range(5)]
        await http.aclose()
    assert bodies == [b'{"n":%d}' % n for n in range(5)]
    assert server.connections == http.opened == 1
    first = server.requests[0]
    assert first.startswith(b"POST /recommendations HTTP/1.1\r\n")
    assert b"\r\nContent-Length: 2\r\n" in first
    assert first.endswith(b"\r\n\r\n{}")


async def test_concurrent_requests_get_a_connection_each_and_keep_them() -> None:
    server = Server(lambda n, req: answer())
    async with serving(server) as url:
        http = pool(url)
        for _ in range(3):
            answers = await asyncio.gather(
                *(http.post("/recommendations", HEADERS, b"{}") for _ in range(4))
            )
            assert [a.status for a in answers] == [200] * 4
        await http.aclose()
    assert server.connections == 4


async def test_status_headers_and_a_chunked_body() -> None:
    chunked = (
        b"HTTP/1.1 400 Bad Request\r\nx-amzn-ErrorType: InvalidInputException:http://x/\r\n"
        b'transfer-encoding: chunked\r\n\r\n5\r\n{"mes\r\n10\r\nsage":"bad arn"}\r\n0\r\n\r\n'
    )
    server = Server(lambda n, req: chunked)
    async with serving(server) as url:
        http = pool(url)
        response = await http.post("/recommendations", HEADERS, b"{}")
        again = await http.post("/recommendations", HEADERS, b"{}")
        await http.aclose()
    assert response.status == 400
    assert response.headers["x-amzn-errortype"] == "InvalidInputException:http://x/"
    assert response.body == b'{"message":"bad arn"}'
    assert again.body == response.body
    assert server.connections == 1


async def test_connection_close_is_honoured() -> None:
    server = Server(lambda n, req: answer(extra=b"connection: close\r\n"), after=lambda n: True)
    async with serving(server) as url:
        http = pool(url)
        for _ in range(3):
            assert (await http.post("/recommendations", HEADERS, b"{}")).status == 200
        await http.aclose()
    assert server.connections == 3


async def test_a_kept_connection_the_server_dropped_is_replaced_without_an_error() -> None:
    # The server closes after each answer without saying so: the next request finds the
    # kept connection dead (or writes into it just as it dies) and goes on a new one.
    server = Server(lambda n, req: answer(), after=lambda n: True)
    async with serving(server) as url:
        http = pool(url)
        for _ in range(4):
            assert (await http.post("/recommendations", HEADERS, b"{}")).status == 200
            await asyncio.sleep(0.05)
        await http.aclose()
    assert len(server.requests) == 4
    assert server.connections == 4


async def test_a_request_the_server_swallowed_on_a_kept_connection_is_sent_once_more() -> None:
    # Request 1 (the second) arrives on the kept connection, which then closes unanswered.
    server = Server(lambda n, req: None if n == 1 else answer(), after=lambda n: n == 1)
    async with serving(server) as url:
        http = pool(url)
        assert (await http.post("/recommendations", HEADERS, b"{}")).status == 200
        assert (await http.post("/recommendations", HEADERS, b"{}")).status == 200
        await http.aclose()
    assert len(server.requests) == 3
    assert server.connections == 2


async def test_a_new_connection_closed_unanswered_fails_without_a_retry() -> None:
    server = Server(lambda n, req: None, after=lambda n: True)
    async with serving(server) as url:
        http = pool(url)
        with pytest.raises(ConnectionFailed, match="connection closed"):
            await http.post("/recommendations", HEADERS, b"{}")
        await http.aclose()
    assert len(server.requests) == 1


async def test_half_an_answer_then_a_close_fails_and_is_not_retried() -> None:
    whole = answer(b'{"itemList":[{"itemId":"1"}]}')
    server = Server(
        lambda n, req: answer() if n == 0 else whole[: len(whole) - 8], after=lambda n: n == 1
    )
    async with serving(server) as url:
        http = pool(url)
        await http.post("/recommendations", HEADERS, b"{}")
        # On the kept connection, but part of an answer had arrived: not repeated.
        with pytest.raises(ConnectionFailed):
            await http.post("/recommendations", HEADERS, b"{}")
        await http.aclose()
    assert len(server.requests) == 2


async def test_no_answer_in_the_read_timeout_is_a_timeout_and_the_connection_is_dropped() -> None:
    server = Server(lambda n, req: None if n == 0 else answer())
    async with serving(server) as url:
        http = pool(url, read_timeout=0.2)
        loop = asyncio.get_running_loop()
        started = loop.time()
        with pytest.raises(TimeoutError, match=r"no answer in 0\.2 s"):
            await http.post("/recommendations", HEADERS, b"{}")
        assert 0.2 <= loop.time() - started < 1.0
        await hung_up(server, 1)  # closed at once, not left open
        # The late answer must never be read as the next request's.
        assert (await http.post("/recommendations", HEADERS, b"{}")).status == 200
        await http.aclose()
    assert server.connections == 2


async def test_a_cancelled_request_leaves_no_connection_behind_to_reuse() -> None:
    server = Server(lambda n, req: None if n == 0 else answer(b'{"n":%d}' % n))
    async with serving(server) as url:
        http = pool(url)
        task = asyncio.ensure_future(http.post("/recommendations", HEADERS, b"{}"))
        await asyncio.sleep(0.1)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await hung_up(server, 1)
        assert (await http.post("/recommendations", HEADERS, b"{}")).body == b'{"n":1}'
        await http.aclose()
    assert server.connections == 2


async def test_refused_connections_and_oversized_or_garbled_answers_fail() -> None:
    listener = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = listener.sockets[0].getsockname()[1]
    listener.close()
    await listener.wait_closed()
    with pytest.raises(ConnectionFailed, match="cannot connect"):
        await pool(f"http://127.0.0.1:{port}").post("/x", HEADERS, b"{}")

    huge = Server(lambda n, req: answer(b"x" * (MAX_BODY_BYTES + 1)))
    async with serving(huge) as url:
        with pytest.raises(ConnectionFailed, match="larger than"):
            await pool(url).post("/x", HEADERS, b"{}")

    garbled = Server(lambda n, req: b"SMTP ready\r\n\r\n")
    async with serving(garbled) as url:
        with pytest.raises(ConnectionFailed, match="malformed"):
            await pool(url).post("/x", HEADERS, b"{}")


async def test_idle_connections_past_their_timeout_are_not_reused() -> None:
    server = Server(lambda n, req: answer())
    async with serving(server) as url:
        http = pool(url, idle_timeout=0.1)
        await http.post("/x", HEADERS, b"{}")
        await asyncio.sleep(0.2)
        await http.post("/x", HEADERS, b"{}")
        await http.aclose()
    assert server.connections == 2


async def test_closed_pool_refuses() -> None:
    server = Server(lambda n, req: answer())
    async with serving(server) as url:
        http = pool(url)
        await http.post("/x", HEADERS, b"{}")
        await http.aclose()
        with pytest.raises(ConnectionFailed, match="closed"):
            await http.post("/x", HEADERS, b"{}")


async def test_https_with_a_verified_certificate_and_refusal_of_an_unknown_one() -> None:
    authority = trustme.CA()
    served = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    authority.issue_cert("127.0.0.1").configure_cert(served)
    trusted = ssl.create_default_context()
    authority.configure_trust(trusted)
    server = Server(lambda n, req: answer(b'{"tls":true}'))
    async with serving(server, tls=served) as url:
        assert url.startswith("https://")
        http = pool(url, ssl_context=trusted)
        for _ in range(2):
            assert (await http.post("/x", HEADERS, b"{}")).body == b'{"tls":true}'
        await http.aclose()
        assert server.connections == 1
        # The system's trust store does not know this authority.
        with pytest.raises(ConnectionFailed, match="cannot connect"):
            await pool(url).post("/x", HEADERS, b"{}")


async def test_an_answer_nobody_asked_for_never_becomes_the_next_ones() -> None:
    # The first answer arrives together with the start of another (a confused proxy):
    # the connection is dropped, and the next request gets its own answer.
    stray = b'HTTP/1.1 200 OK\r\ncontent-length: 30\r\n\r\n{"stale":'
    server = Server(lambda n, req: answer(b'{"n":%d}' % n) + (stray if n == 0 else b""))
    async with serving(server) as url:
        http = pool(url)
        first = await http.post("/x", HEADERS, b"{}")
        second = await http.post("/x", HEADERS, b"{}")
        await http.aclose()
    assert (first.status, first.body) == (200, b'{"n":0}')
    assert (second.status, second.body) == (200, b'{"n":1}')
    assert server.connections == 2


async def test_an_interim_answer_is_skipped() -> None:
    server = Server(lambda n, req: b"HTTP/1.1 100 Continue\r\n\r\n" + answer(b'{"final":1}'))
    async with serving(server) as url:
        http = pool(url)
        response = await http.post("/x", HEADERS, b"{}")
        again = await http.post("/x", HEADERS, b"{}")
        await http.aclose()
    assert (response.status, response.body) == (200, b'{"final":1}')
    assert again.body == b'{"final":1}'


async def test_a_line_break_in_a_header_is_refused_before_sending() -> None:
    server = Server(lambda n, req: answer())
    async with serving(server) as url:
        http = pool(url)
        for value in ("token\r\nx-evil: 1", "token\nx", "token\r"):
            with pytest.raises(ValueError, match="line break"):
                await http.post("/x", {**HEADERS, "X-Amz-Security-Token": value}, b"{}")
        await http.aclose()
    assert server.requests == []
