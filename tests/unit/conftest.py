"""Shared fixtures: one demo engine per test session (building it takes about a second)."""

from __future__ import annotations

import pytest

from local_personalize import Engine


@pytest.fixture(scope="session")
def engine() -> Engine:
    return Engine.demo(seed=7)
