"""The embedded engine the schema tests execute against, built once per session."""

from collections.abc import AsyncIterator

import pytest

from backends.local import LocalBackend
from settings import load_settings


@pytest.fixture(scope="session")
async def backend() -> AsyncIterator[LocalBackend]:
    async with LocalBackend.open(load_settings().local) as local:
        yield local
