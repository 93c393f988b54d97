"""One test per use of uvicorn's internals in web/uvicorn_internals.py: after an upgrade,
a failure here names the access that moved, before a slow client finds it."""

import asyncio
import inspect
import socket
from collections.abc import Callable, Iterator
from typing import Any

import httptools
import pytest
import uvicorn
from uvicorn.config import Config
from uvicorn.protocols.http.auto import AutoHTTPProtocol
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.server import ServerState

from tests.protocol_sockets import no_content, on_socketpair
from web.uvicorn_internals import DeadlineProtocols

MOVED = "uvicorn moved {}: web/uvicorn_internals.py relies on it"


@pytest.fixture
def connected() -> Iterator[tuple[HttpToolsProtocol, socket.socket, asyncio.AbstractEventLoop]]:
    """uvicorn's own protocol on a real connected socket (no server around it)."""
    with on_socketpair(
        lambda config, loop: HttpToolsProtocol(
            config=config, server_state=ServerState(), app_state={}, _loop=loop
        )
    ) as made:
        yield made


def test_httptools_protocol_is_what_uvicorn_runs() -> None:
    assert AutoHTTPProtocol is HttpToolsProtocol, MOVED.format(
        "`uvicorn.protocols.http.httptools_impl.HttpToolsProtocol` (no longer `auto`'s)"
    )


def test_server_builds_the_protocol_with_these_keywords() -> None:
    params = inspect.signature(HttpToolsProtocol.__init__).parameters
    assert list(params)[1:] == ["config", "server_state", "app_state", "_loop"], MOVED.format(
        "`HttpToolsProtocol.__init__(config, server_state, app_state, _loop)`"
    )
    source = inspect.getsource(uvicorn.Server.startup)
    for keyword in ("config=config", "server_state=self.server_state", "app_state=", "_loop="):
        assert keyword in source, MOVED.format(f"the keyword `{keyword}` of Server.startup")
    factory = DeadlineProtocols.__new__(DeadlineProtocols)
    config = Config(no_content, http=factory)  # type: ignore[arg-type]
    config.load()
    loaded: object = config.http_protocol_class
    assert loaded is factory, MOVED.format("`Config(http=<callable>)`")


@pytest.mark.parametrize(
    "callback",
    [
        "on_message_begin",
        "on_url",
        "on_header",
        "on_headers_complete",
        "on_body",
        "on_message_complete",
    ],
)
def test_parser_callbacks(callback: str) -> None:
    assert callback in vars(HttpToolsProtocol), MOVED.format(f"`HttpToolsProtocol.{callback}`")
    heard: list[str] = []

    class Recorder:
        def __getattr__(self, name: str) -> Any:
            if not name.startswith("on_"):
                raise AttributeError(name)
            return lambda *args: heard.append(name)

    httptools.HttpRequestParser(Recorder()).feed_data(
        b"POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n\r\n."
    )
    assert callback in heard, MOVED.format(f"httptools' call of `{callback}`")


@pytest.mark.parametrize("method", ["data_received", "connection_made", "connection_lost"])
def test_protocol_methods(method: str) -> None:
    assert method in vars(HttpToolsProtocol), MOVED.format(f"`HttpToolsProtocol.{method}`")


def test_send_400_response_answers_what_the_parser_refuses() -> None:
    assert list(inspect.signature(HttpToolsProtocol.send_400_response).parameters) == [
        "self",
        "msg",
    ], MOVED.format("`HttpToolsProtocol.send_400_response(msg)`")
    assert "self.send_400_response(" in inspect.getsource(HttpToolsProtocol.data_received), (
        MOVED.format("the call of `send_400_response` in `HttpToolsProtocol.data_received`")
    )


def test_server_calls_shutdown_on_each_connection() -> None:
    assert "shutdown" in vars(HttpToolsProtocol), MOVED.format("`HttpToolsProtocol.shutdown`")
    assert "connection.shutdown()" in inspect.getsource(uvicorn.Server.shutdown), MOVED.format(
        "the call of `connection.shutdown()` in `Server.shutdown`"
    )


def test_app_is_what_on_headers_complete_runs() -> None:
    assert "app = self.app" in inspect.getsource(HttpToolsProtocol.on_headers_complete), (
        MOVED.format("`HttpToolsProtocol.app`, read by `on_headers_complete`")
    )


@pytest.mark.parametrize("attribute", ["connections", "transport", "loop", "flow.read_paused"])
def test_connection_attributes(
    connected: tuple[HttpToolsProtocol, socket.socket, asyncio.AbstractEventLoop],
    attribute: str,
) -> None:
    protocol, _, loop = connected
    expected: dict[str, Callable[[Any], bool]] = {
        "connections": lambda value: protocol in value,
        "transport": lambda value: isinstance(value, asyncio.Transport),
        "loop": lambda value: value is loop,
        "flow.read_paused": lambda value: value is False,
    }
    check = expected[attribute]
    value: Any = protocol
    for part in attribute.split("."):
        assert hasattr(value, part), MOVED.format(f"`HttpToolsProtocol.{attribute}`")
        value = getattr(value, part)
    assert check(value), MOVED.format(f"`HttpToolsProtocol.{attribute}` ({value!r})")


def test_server_state_default_headers(
    connected: tuple[HttpToolsProtocol, socket.socket, asyncio.AbstractEventLoop],
) -> None:
    protocol, _, _ = connected
    headers = protocol.server_state.default_headers
    assert isinstance(headers, list), MOVED.format("`ServerState.default_headers`")


@pytest.mark.parametrize("attribute", ["response_started", "response_complete"])
def test_cycle_attributes(
    connected: tuple[HttpToolsProtocol, socket.socket, asyncio.AbstractEventLoop],
    attribute: str,
) -> None:
    protocol, theirs, loop = connected
    assert protocol.cycle is None, MOVED.format("`HttpToolsProtocol.cycle` (None before)")
    protocol.data_received(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    assert getattr(protocol.cycle, attribute, None) is False, MOVED.format(
        f"`HttpToolsProtocol.cycle.{attribute}` (False before the app answers)"
    )
    for _ in range(10):
        loop.run_until_complete(asyncio.sleep(0.01))
    assert getattr(protocol.cycle, attribute) is True, MOVED.format(
        f"`HttpToolsProtocol.cycle.{attribute}` (True once the app answered)"
    )
    assert theirs.recv(1024).startswith(b"HTTP/1.1 204 ")
