"""Shared fixtures: one demo engine per test session (building it takes about a second),
and the emulator serving it on 127.0.0.1."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import httpx
import pytest

from local_personalize import Engine
from local_personalize.emulator import create_app
from tests.servers import serving_in_thread


@pytest.fixture(scope="session")
def engine() -> Engine:
    return Engine.demo(seed=7)


@pytest.fixture(scope="module")
def base_url(engine: Engine) -> Iterator[str]:
    """The emulator in a uvicorn thread on a free loopback port, one per test module."""
    with serving_in_thread(create_app(engine), "emulator") as served:
        yield served


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
