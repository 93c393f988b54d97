"""Shared fixtures: one demo engine per test session (building it takes about a second),
and the emulator serving it on 127.0.0.1."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
import uvicorn

from local_personalize import Engine
from local_personalize.emulator import create_app


@pytest.fixture(scope="session")
def engine() -> Engine:
    return Engine.demo(seed=7)


@pytest.fixture(scope="module")
def base_url(engine: Engine) -> Iterator[str]:
    """The emulator in a uvicorn thread on a free loopback port, one per test module."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(create_app(engine), log_level="warning", access_log=False)
    )
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "emulator did not start"
        time.sleep(0.01)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)
    sock.close()


@pytest.fixture
def clean_emulator(base_url: str) -> Iterator[None]:
    """The emulator's counters, fault config and recorded events reset around a test."""
    httpx.post(f"{base_url}/_emulator/reset").raise_for_status()
    yield
    httpx.post(f"{base_url}/_emulator/reset").raise_for_status()


@pytest.fixture
async def control(base_url: str) -> AsyncIterator[httpx.AsyncClient]:
    """A client for the emulator's /_emulator/ controls."""
    async with httpx.AsyncClient(base_url=f"{base_url}/_emulator", timeout=10.0) as c:
        yield c
