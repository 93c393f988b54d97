"""Bodies over `limits.max_body_bytes`: the 413 reaches clients that send the body whole.

Such clients (urllib, httpx, Node's fetch; no `Expect: 100-continue`) read the answer
only after writing the body. Closing with bytes unread makes the kernel reset the
connection, so the subgraph reads the rest first, within `web.graphql_http`'s drain bounds;
beyond them it answers at once and uvicorn drops the rest.
"""

import json
import socket
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from tests.conftest import Subgraph, codes
from web.graphql_http import DRAIN_BYTES, DRAIN_SECONDS

LIMIT = 1_000_000  # the default `limits.max_body_bytes`
# Past the limit, within the drain bound, and more than loopback's socket buffers hold:
# without the drain, a client that asked to close is still writing when the server does.
OVERSIZED = 8 * 1024 * 1024
QUERY = "{ popularItems(numResults: 1) { source } }"


@dataclass
class Answer:
    """A response read off a raw socket."""

    status: int
    headers: dict[str, str]
    body: dict[str, Any]


def _connect(subgraph: Subgraph) -> socket.socket:
    address = urlsplit(subgraph.url)
    return socket.create_connection((address.hostname, address.port), timeout=30)


def _head(framing: str, length: int, *extra: str) -> bytes:
    lines = [
        "POST /graphql HTTP/1.1",
        "Host: 127.0.0.1",
        "Content-Type: application/json",
        "Transfer-Encoding: chunked" if framing == "chunked" else f"Content-Length: {length}",
        *extra,
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def _chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


def _read_answer(sock: socket.socket) -> Answer:
    received = b""
    while b"\r\n\r\n" not in received:
        data = sock.recv(65536)
        assert data, f"the connection ended before a response: {received!r}"
        received += data
    head, _, body = received.partition(b"\r\n\r\n")
    status_line, *lines = head.decode().split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines)}
    while len(body) < int(headers["content-length"]):
        data = sock.recv(65536)
        assert data, "the connection ended mid-response"
        body += data
    return Answer(int(status_line.split()[1]), headers, json.loads(body))


def _assert_413(answer: Answer) -> None:
    assert answer.status == 413
    assert answer.headers["content-type"] == "application/json; charset=utf-8"
    assert codes(answer.body) == ["PAYLOAD_TOO_LARGE"]


def _still_serves(subgraph: Subgraph) -> None:
    assert subgraph.query(QUERY) == {"data": {"popularItems": {"source": "LOCAL"}}}


def test_urllib_sending_the_whole_body_reads_the_413(local_subgraph: Subgraph) -> None:
    # urllib sends `Connection: close`: the server closes right after answering.
    request = urllib.request.Request(
        f"{local_subgraph.url}/graphql",
        data=b"x" * OVERSIZED,
        headers={"Content-Type": "application/json"},
    )
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=30)
    assert refused.value.code == 413
    assert codes(json.loads(refused.value.read())) == ["PAYLOAD_TOO_LARGE"]
    _still_serves(local_subgraph)


def test_httpx_sending_the_whole_body_reads_the_413(local_subgraph: Subgraph) -> None:
    with httpx.Client(timeout=30) as client:
        response = client.post(
            f"{local_subgraph.url}/graphql",
            content=b"x" * OVERSIZED,
            headers={"content-type": "application/json"},
        )
        assert response.status_code == 413
        assert codes(response.json()) == ["PAYLOAD_TOO_LARGE"]
        # Read to its end, the body leaves the connection fit for the next request.
        assert "connection" not in response.headers
        again = client.post(f"{local_subgraph.url}/graphql", json={"query": QUERY})
        assert again.json() == {"data": {"popularItems": {"source": "LOCAL"}}}
    _still_serves(local_subgraph)


@pytest.mark.parametrize("framing", ["content-length", "chunked"])
def test_a_raw_client_sending_the_whole_body_reads_the_413(
    local_subgraph: Subgraph, framing: str
) -> None:
    body = b"x" * OVERSIZED
    with _connect(local_subgraph) as sock:
        sock.sendall(_head(framing, len(body), "Connection: close"))
        if framing == "chunked":
            for start in range(0, len(body), 65536):
                sock.sendall(_chunk(body[start : start + 65536]))
            sock.sendall(b"0\r\n\r\n")
        else:
            sock.sendall(body)
        _assert_413(_read_answer(sock))
        # Everything was read: the server's close is a clean end, not a reset.
        assert sock.recv(65536) == b""
    _still_serves(local_subgraph)


def _reusable(sock: socket.socket) -> None:
    """The connection carries another request: the server read the last one to its end."""
    payload = json.dumps({"query": QUERY}).encode()
    sock.sendall(_head("content-length", len(payload)) + payload)
    answer = _read_answer(sock)
    assert answer.status == 200
    assert answer.body == {"data": {"popularItems": {"source": "LOCAL"}}}


def test_a_declared_length_past_the_bound_is_answered_unread(local_subgraph: Subgraph) -> None:
    length = LIMIT + DRAIN_BYTES + 1
    with _connect(local_subgraph) as sock:
        started = time.monotonic()
        sock.sendall(_head("content-length", length))
        # Answered before any of the body is sent: beyond the bound nothing waits for it.
        answer = _read_answer(sock)
        assert time.monotonic() - started < DRAIN_SECONDS - 1
        _assert_413(answer)
        # No `Connection: close`: the server goes on dropping the body, so a client
        # sending it whole is not reset.
        assert "connection" not in answer.headers
        sock.sendall(b"x" * length)
        _reusable(sock)
    _still_serves(local_subgraph)


def test_a_client_expecting_100_continue_is_refused_before_sending(
    local_subgraph: Subgraph,
) -> None:
    with _connect(local_subgraph) as sock:
        sock.sendall(_head("content-length", LIMIT + 1, "Expect: 100-continue"))
        answer = _read_answer(sock)
        _assert_413(answer)
        # The body was never sent: the connection cannot carry another request.
        assert answer.headers["connection"] == "close"
        assert sock.recv(65536) == b""
    _still_serves(local_subgraph)


def test_a_chunked_body_growing_past_the_bound_is_answered_there(
    local_subgraph: Subgraph,
) -> None:
    piece = _chunk(b"x" * 65536)
    with _connect(local_subgraph) as sock:
        started = time.monotonic()
        sock.sendall(_head("chunked", 0))
        for _ in range((LIMIT + DRAIN_BYTES) // 65536 + 2):
            sock.sendall(piece)
        # The body has not ended: only the byte bound can answer before the time bound.
        answer = _read_answer(sock)
        assert time.monotonic() - started < DRAIN_SECONDS - 1
        _assert_413(answer)
        assert "connection" not in answer.headers
        sock.sendall(piece + b"0\r\n\r\n")
        _reusable(sock)
    _still_serves(local_subgraph)


@pytest.mark.parametrize("framing", ["content-length", "chunked"])
def test_a_stalled_body_is_answered_after_the_time_bound(
    local_subgraph: Subgraph, framing: str
) -> None:
    # Chunked: over the limit once the bytes pass it. Declared: over it from the start,
    # though only a little of the body comes.
    sent = b"x" * (LIMIT + 1) if framing == "chunked" else b"x" * 10
    with _connect(local_subgraph) as sock:
        if framing == "chunked":
            sock.sendall(_head("chunked", 0) + _chunk(sent))
        else:
            sock.sendall(_head("content-length", 2 * LIMIT) + sent)
        started = time.monotonic()
        answer = _read_answer(sock)
        waited = time.monotonic() - started
        _assert_413(answer)
        assert "connection" not in answer.headers
        assert DRAIN_SECONDS - 1 < waited < DRAIN_SECONDS + 10
        # The client may still finish the body it started.
        sock.sendall(b"0\r\n\r\n" if framing == "chunked" else b"x" * (2 * LIMIT - 10))
        _reusable(sock)
    _still_serves(local_subgraph)
