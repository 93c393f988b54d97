"""No client wears the service down through its connections (`[connections]`), and every
refusal at the connection level is the coded JSON error the rest of the service answers.

Real `python server.py` processes on loopback, with short deadlines set through the
environment so that the tests are quick, and raw sockets playing the slow clients.
"""

import contextlib
import functools
import http.client
import json
import signal
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import Emulator
from tests.servers import free_port, python, running

HEADER_TIMEOUT = 1.0
BODY_GRACE = 1.0
BODY_MIN_RATE = 200  # bytes/s
KEEP_ALIVE = 1
MAX_CONNECTIONS = 20
# How late a deadline may act on a loaded 2-core machine and still pass.
MARGIN = 1.5
QUERY = {"query": "{ popularItems(numResults: 2) { items { itemId } } }"}


def deadline_env(port: int, emulator: Emulator, **extra: str) -> dict[str, str]:
    return {
        "SUBGRAPH_SERVER__PORT": str(port),
        "SUBGRAPH_BACKEND": "personalize",
        "SUBGRAPH_PERSONALIZE__ENDPOINT_URL": emulator.url,
        "SUBGRAPH_CONNECTIONS__HEADER_TIMEOUT": str(HEADER_TIMEOUT),
        "SUBGRAPH_CONNECTIONS__BODY_GRACE": str(BODY_GRACE),
        "SUBGRAPH_CONNECTIONS__BODY_MIN_RATE": str(BODY_MIN_RATE),
        "SUBGRAPH_CONNECTIONS__KEEP_ALIVE_TIMEOUT": str(KEEP_ALIVE),
        "SUBGRAPH_CONNECTIONS__MAX_CONNECTIONS": str(MAX_CONNECTIONS),
        "LOG_LEVEL": "INFO",
        **extra,
    }


@dataclass
class Server:
    port: int
    log: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@pytest.fixture(scope="module")
def server(logs: Path, emulator: Emulator) -> Iterator[Server]:
    port = free_port()
    log = logs / "subgraph-deadlines.log"
    env = deadline_env(port, emulator)
    with running(python("server.py"), f"http://127.0.0.1:{port}/healthz", log, env=env):
        yield Server(port, log)


@dataclass
class Outcome:
    """What a raw client saw: the bytes the server sent, and when the connection ended."""

    data: bytes = b""
    closed_after: float | None = None
    error: str | None = None

    @property
    def status(self) -> int:
        return int(self.data.split(b" ", 2)[1])

    @property
    def body(self) -> Any:
        return json.loads(self.data.partition(b"\r\n\r\n")[2])

    def codes(self) -> list[str]:
        return [e["extensions"]["code"] for e in self.body["errors"]]


def raw_client(
    port: int, talk: Callable[[socket.socket], None]
) -> tuple[threading.Thread, Outcome]:
    """A thread that connects, runs `talk` (which may dawdle) and reads until the end."""
    outcome = Outcome()

    def run() -> None:
        with socket.create_connection(("127.0.0.1", port)) as sock:
            start = time.monotonic()
            reader = threading.Thread(target=read_all, args=(sock, outcome, start), daemon=True)
            reader.start()
            # The server may close while we are still sending: the point.
            with contextlib.suppress(OSError):
                talk(sock)
            reader.join(timeout=30)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, outcome


def read_all(sock: socket.socket, outcome: Outcome, start: float) -> None:
    sock.settimeout(30)
    try:
        while chunk := sock.recv(65536):
            outcome.data += chunk
    except OSError as exc:
        outcome.error = repr(exc)
    outcome.closed_after = time.monotonic() - start


def silent(sock: socket.socket) -> None:
    pass


def slow_headers(sock: socket.socket, sent: threading.Event | None = None) -> None:
    sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
    if sent is not None:
        sent.set()
    for _ in range(50):  # a header line every 0.2 s: 10 s if nobody stops it
        sock.sendall(b"X-Slow: 1\r\n")
        time.sleep(0.2)


def slow_body(sock: socket.socket, sent: threading.Event | None = None) -> None:
    sock.sendall(
        b"POST /graphql HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Content-Length: 1000\r\n\r\n"
    )
    if sent is not None:
        sent.set()
    for _ in range(50):  # 5 bytes/s, far under the minimum rate
        sock.sendall(b" ")
        time.sleep(0.2)


def idle_after_answer(sock: socket.socket) -> None:
    sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")


def assert_timed_out(outcome: Outcome, within: float) -> None:
    assert outcome.closed_after is not None, "the connection was never closed"
    assert outcome.closed_after < within + MARGIN, outcome
    assert outcome.status == 408, outcome
    assert outcome.codes() == ["REQUEST_TIMEOUT"]


def test_slow_and_silent_connections_are_closed_while_queries_answer(server: Server) -> None:
    clients = {
        name: raw_client(server.port, talk)
        for name, talk in [
            ("silent", silent),
            ("slow_headers", slow_headers),
            ("slow_body", slow_body),
            ("idle", idle_after_answer),
        ]
    }
    # Meanwhile, normal queries keep being answered.
    answered = 0
    with httpx.Client(timeout=10) as client:
        until = time.monotonic() + HEADER_TIMEOUT + MARGIN
        while time.monotonic() < until:
            response = client.post(f"{server.url}/graphql", json=QUERY)
            assert response.status_code == 200, response.text
            assert len(response.json()["data"]["popularItems"]["items"]) == 2
            answered += 1
    assert answered >= 5
    for thread, _ in clients.values():
        thread.join(timeout=15)
    assert_timed_out(clients["silent"][1], HEADER_TIMEOUT)
    assert_timed_out(clients["slow_headers"][1], HEADER_TIMEOUT)
    # At 5 bytes/s the body is late once the grace is over (plus the few bytes' credit).
    slow = clients["slow_body"][1]
    assert_timed_out(slow, BODY_GRACE + 1.0)
    assert "the body did not arrive" in slow.body["errors"][0]["message"]
    # An idle keep-alive connection is closed after its answer, silently.
    idle = clients["idle"][1]
    assert idle.data.startswith(b"HTTP/1.1 200 ")
    assert idle.closed_after is not None
    assert idle.closed_after < KEEP_ALIVE + MARGIN
    text = server.log.read_text()
    assert "refused 1 connection(s) with REQUEST_TIMEOUT" in text
    assert "Traceback" not in text
    assert refused(server, "REQUEST_TIMEOUT") >= 3


def refused(server: Server, code: str) -> float:
    """The server's `connections_refused_total` for `code`, from /metrics."""
    metrics = httpx.get(f"{server.url}/metrics", timeout=10).text
    prefix = f'personalize_subgraph_connections_refused_total{{code="{code}"}} '
    line = next(line for line in metrics.splitlines() if line.startswith(prefix))
    return float(line.removeprefix(prefix))


def test_a_connection_over_the_cap_gets_a_coded_503(server: Server) -> None:
    # The client of the 21st connection is built first: once the held connections are
    # open, it only has to connect before their header timeout (1 s) closes them. The
    # server accepts connections in the order they were made, so it counts that one last.
    client = httpx.Client(timeout=5)
    held = []
    try:
        held = [
            socket.create_connection(("127.0.0.1", server.port)) for _ in range(MAX_CONNECTIONS)
        ]
        over = client.get(f"{server.url}/healthz")
        assert over.status_code == 503
        assert over.headers["connection"] == "close"
        assert [e["extensions"]["code"] for e in over.json()["errors"]] == ["TOO_MANY_CONNECTIONS"]
    finally:
        for sock in held:
            sock.close()
        client.close()
    # Once they are gone, the server answers again.
    deadline = time.monotonic() + 5
    while (status := httpx.get(f"{server.url}/healthz", timeout=5).status_code) != 200:
        assert time.monotonic() < deadline, status
        time.sleep(0.05)
    assert httpx.post(f"{server.url}/graphql", json=QUERY, timeout=10).status_code == 200
    text = server.log.read_text()
    assert "with TOO_MANY_CONNECTIONS" in text
    assert f"over the cap of {MAX_CONNECTIONS}" in text
    assert refused(server, "TOO_MANY_CONNECTIONS") >= 1


def get_query_of(size: int) -> str:
    """A GET /graphql path whose query string is `size` bytes, holding a valid query."""
    start = "query=%7B__typename%7D"
    return "/graphql?" + start + "+" * (size - len(start))


def long_get(port: int, path: str) -> tuple[int, str, Any]:
    """GET with http.client: httpx refuses to send a URL over 64 KiB."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        return response.status, response.getheader("content-type", ""), json.loads(response.read())
    finally:
        connection.close()


def test_a_get_over_the_parser_limit_gets_the_coded_414(server: Server) -> None:
    status, media, body = long_get(server.port, get_query_of(70_000))
    assert status == 414
    assert media.startswith("application/json")
    assert [e["extensions"]["code"] for e in body["errors"]] == ["URI_TOO_LONG"]


def test_the_app_limit_on_the_query_string_is_below_the_parser_s(server: Server) -> None:
    limit = 32_768  # the default `limits.max_query_bytes`
    under = httpx.get(server.url + get_query_of(limit), timeout=10)
    assert under.status_code == 200, under.text
    assert under.json() == {"data": {"__typename": "Query"}}
    over = httpx.get(server.url + get_query_of(limit + 1), timeout=10)
    assert over.status_code == 414
    assert [e["extensions"]["code"] for e in over.json()["errors"]] == ["URI_TOO_LONG"]
    assert str(limit) in over.json()["errors"][0]["message"]


@pytest.mark.parametrize(
    ("request_bytes", "status", "code"),
    [
        (b"HELLO WORLD\r\n\r\n", 400, "BAD_REQUEST"),
        (
            b"GET /healthz HTTP/1.1\r\nX-Big: " + b"a" * 200_000 + b"\r\n\r\n",
            431,
            "REQUEST_HEADER_FIELDS_TOO_LARGE",
        ),
    ],
    ids=["malformed", "headers-too-large"],
)
def test_what_the_parser_refuses_is_answered_in_json(
    server: Server, request_bytes: bytes, status: int, code: str
) -> None:
    thread, outcome = raw_client(server.port, lambda sock: sock.sendall(request_bytes))
    thread.join(timeout=15)
    assert outcome.status == status, outcome
    assert b"content-type: application/json" in outcome.data
    assert outcome.codes() == [code]


def test_sigterm_does_not_wait_on_slow_clients(logs: Path, emulator: Emulator) -> None:
    port = free_port()
    log = logs / "subgraph-deadlines-sigterm.log"
    # Deadlines far away: only the shutdown may end these connections.
    env = deadline_env(
        port,
        emulator,
        SUBGRAPH_CONNECTIONS__HEADER_TIMEOUT="30",
        SUBGRAPH_CONNECTIONS__BODY_MIN_RATE="1",
        SUBGRAPH_SERVER__SHUTDOWN_TIMEOUT="20",
    )
    with running(python("server.py"), f"http://127.0.0.1:{port}/healthz", log, env=env) as proc:
        talking = [threading.Event() for _ in range(3)]
        talks: list[Callable[[socket.socket], None]] = [
            lambda sock: talking[0].set(),  # silent: connected is all it does
            functools.partial(slow_headers, sent=talking[1]),
            functools.partial(slow_body, sent=talking[2]),
        ]
        clients = [raw_client(port, talk) for talk in talks]
        # All three connected, and the two talkers have sent their first bytes.
        for event in talking:
            assert event.wait(timeout=30)
        start = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        status = proc.wait(timeout=15)
        took = time.monotonic() - start
        for thread, _ in clients:
            thread.join(timeout=5)
    assert status == 0
    # The body still arriving gets `body_grace` (1 s), not the 20 s graceful timeout.
    assert took < BODY_GRACE + 2.0 + MARGIN, took
    slow = clients[2][1]
    assert slow.status == 408
    assert "shutting down" in slow.body["errors"][0]["message"]
    text = log.read_text()
    assert "Traceback" not in text
    assert "Application shutdown complete" in text


def test_workers_hold_the_same_limits(logs: Path, emulator: Emulator) -> None:
    port = free_port()
    log = logs / "subgraph-deadlines-workers.log"
    env = deadline_env(port, emulator, WORKERS="2")
    with running(python("server.py"), f"http://127.0.0.1:{port}/healthz", log, env=env):
        # Several of each, so that both workers (the kernel spreads connections) see some.
        clients = [raw_client(port, silent) for _ in range(4)]
        for thread, _ in clients:
            thread.join(timeout=15)
        for _, outcome in clients:
            assert_timed_out(outcome, HEADER_TIMEOUT)
        for _ in range(4):
            status, _, body = long_get(port, get_query_of(70_000))
            assert status == 414
            assert [e["extensions"]["code"] for e in body["errors"]] == ["URI_TOO_LONG"]
    assert "Traceback" not in log.read_text()


def test_a_flood_of_idle_connections_under_a_low_descriptor_limit(
    logs: Path, emulator: Emulator
) -> None:
    # 256 descriptors, 300 idle connections: before the deadlines and the cap, every new
    # request failed for as long as they stayed, and nothing was logged. Now the cap
    # leaves room for the Personalize pool, the idle connections go at their header
    # deadline, and the refusals are logged. (While all descriptors are taken, the event
    # loop accepts a new connection and closes it at once: a transport error here.)
    port = free_port()
    log = logs / "subgraph-deadlines-fds.log"
    limited = (
        "import resource, runpy, sys; "
        "resource.setrlimit(resource.RLIMIT_NOFILE, (256, 256)); "
        "sys.argv = ['server.py']; runpy.run_path('server.py', run_name='__main__')"
    )
    env = deadline_env(port, emulator, SUBGRAPH_CONNECTIONS__MAX_CONNECTIONS="1000")
    with running(python("-c", limited), f"http://127.0.0.1:{port}/healthz", log, env=env):
        flood = [socket.create_connection(("127.0.0.1", port)) for _ in range(300)]
        try:
            start = time.monotonic()
            seen: list[int] = []
            while True:
                try:
                    response = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5)
                except httpx.TransportError:
                    seen.append(0)
                else:
                    seen.append(response.status_code)
                    if response.status_code == 200:
                        break
                    assert response.status_code == 503, response.text
                    assert [e["extensions"]["code"] for e in response.json()["errors"]] == [
                        "TOO_MANY_CONNECTIONS"
                    ]
                # The idle ones are closed at their header deadline, and the server answers.
                assert time.monotonic() - start < HEADER_TIMEOUT + 2 * MARGIN, seen
                time.sleep(0.1)
        finally:
            for sock in flood:
                sock.close()
    text = log.read_text()
    # 256 descriptors, less 64 for the process, the Personalize pool (64) and the
    # PutEvents client's (16 senders).
    assert "connections.max_connections lowered from 1000 to 112" in text
    assert "with TOO_MANY_CONNECTIONS" in text
    assert "Traceback" not in text
