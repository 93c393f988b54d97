"""The compiled path on the shipped call stack (cache, coalescer, guard, direct client)
against the emulator: what concurrency does to operations that share calls."""

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from backends.cache import CachedBackend
from backends.guard import Breakers, GuardedBackend
from backends.personalize_direct import DirectPersonalizeBackend
from backends.store import open_store
from loaders.recommendations import operation_loaders
from observability.call_metrics import CallMetrics
from resolvers.context import Context
from schema.build import build_schema
from settings import Settings, load_settings
from tests.conftest import Emulator
from tests.servers import AWS_TEST_ENV

QUERY = """query Page($representations: [_Any!]!) {
  _entities(representations: $representations) {
    ... on User { recommendations(numResults: 3) { items { itemId } } } } }"""
VARIABLES = {"representations": [{"__typename": "User", "id": "user-0021"}]}

Stack = tuple[Settings, CachedBackend]


@pytest.fixture
async def stack(fresh_emulator: Emulator, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Stack]:
    for name, value in AWS_TEST_ENV.items():
        monkeypatch.setenv(name, value)
    settings = load_settings()
    # A read timeout well past the test's 1 s delay: the call must answer, not time out.
    personalize = settings.personalize.model_copy(
        update={"endpoint_url": fresh_emulator.url, "read_timeout": 5.0, "deadline": 6.0}
    )
    settings = settings.model_copy(update={"personalize": personalize})
    async with (
        DirectPersonalizeBackend.open(settings.personalize) as direct,
        open_store(settings.cache) as store,
    ):
        guarded = GuardedBackend(direct, settings.personalize, Breakers(settings.breaker))
        metrics = CallMetrics(CollectorRegistry(), settings.use_cases)
        cached = CachedBackend(guarded, store, settings.cache, settings.use_cases, metrics, None)
        try:
            yield settings, cached
        finally:
            await cached.aclose()


def _context(stack: Stack) -> Context:
    settings, backend = stack
    return Context(
        loaders=operation_loaders(backend, max_calls=10, deadline_s=5.0), settings=settings
    )


async def test_a_cancelled_operation_leaves_its_shared_call_to_the_others(
    stack: Stack, fresh_emulator: Emulator
) -> None:
    schema = build_schema(stack[0])
    plans = schema.compiled
    assert plans is not None
    # graphql-core answers the document once; from then on its plan does.
    await schema.execute(QUERY, variable_values=VARIABLES, context_value=_context(stack))
    fresh_emulator.reset()
    # In flight far longer than the test's pauses below, on a busy machine too.
    fresh_emulator.faults(delay_ms=1000)
    first = asyncio.ensure_future(plans.execute(QUERY, VARIABLES, None, _context(stack)))
    await asyncio.sleep(0.1)
    # The same call, joined while the first operation's is in flight.
    second = asyncio.ensure_future(plans.execute(QUERY, VARIABLES, None, _context(stack)))
    await asyncio.sleep(0.05)
    first.cancel()
    answered = await second
    assert answered is not None
    result: Any = answered
    assert result.errors is None
    assert len(result.data["_entities"][0]["recommendations"]["items"]) == 3
    # The call went on for the operation that joined it: no second call.
    assert fresh_emulator.calls() == 1
    with pytest.raises(asyncio.CancelledError):
        await first
