"""The embedded engine the schema tests execute against, built once per session."""

from collections.abc import AsyncIterator

import pytest

from backends.local import LocalBackend, build_engine
from settings import Settings, load_settings


@pytest.fixture(scope="session")
async def backend() -> AsyncIterator[LocalBackend]:
    async with LocalBackend.open(build_engine(load_settings().local)) as local:
        yield local


@pytest.fixture
def with_columns() -> tuple[Settings, str]:
    """Settings with a use case that returns item metadata, and a query asking for it."""
    settings = load_settings()
    cases = dict(settings.use_cases)
    cases["withColumns"] = cases["userPersonalization"].model_copy(
        update={"metadata_columns": ("CATEGORY", "PRICE")}
    )
    query = """{ _entities(representations: [{__typename: "User", id: "user-0005"}]) {
        ... on User { recommendations(useCase: WITH_COLUMNS, numResults: 3) {
          items { itemId metadata { __typename key v: value } } } } } }"""
    return settings.model_copy(update={"use_cases": cases}), query
