"""A burst of concurrent recordEvents is held to `events.queue_size` like a sequence is:
each refused with EVENTS_QUEUE_FULL once the queue is full, never accepted past it."""

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from local_personalize.resources import DEMO_TRACKING_ID
from tests.conftest import Emulator, Subgraph, codes, start_subgraph

QUEUE = 3
BURST = 40
RECORD = """mutation Record($session: String!, $events: [EventInput!]!) {
  recordEvents(userId: "user-0321", sessionId: $session, events: $events) { accepted } }"""


@pytest.fixture(scope="module")
def queued(logs: Path, emulator: Emulator) -> Iterator[Subgraph]:
    yield from start_subgraph(
        logs,
        "subgraph-event-burst",
        {
            "SUBGRAPH_BACKEND": "personalize",
            "SUBGRAPH_PERSONALIZE__ENDPOINT_URL": emulator.url,
            "SUBGRAPH_EVENTS__TRACKING_ID": DEMO_TRACKING_ID,
            "SUBGRAPH_EVENTS__ENDPOINT_URL": emulator.url,
            "SUBGRAPH_EVENTS__QUEUE_SIZE": str(QUEUE),
            "SUBGRAPH_EVENTS__WAIT_MS": "0",
            "SUBGRAPH_EVENTS__RETRY_BASE": "0.05",
            "SUBGRAPH_EVENTS__RETRY_CAP": "0.2",
        },
    )


async def burst(url: str) -> list[Any]:
    limits = httpx.Limits(max_connections=BURST)
    async with httpx.AsyncClient(limits=limits, timeout=30) as client:

        async def one(n: int) -> Any:
            variables = {
                # One session: its batches go one at a time, so at most one is in
                # delivery and the rest wait in the queue.
                "session": "session-burst",
                "events": [{"eventType": "View", "itemId": f"item-{n + 1:04d}"}],
            }
            answer = await client.post(url, json={"query": RECORD, "variables": variables})
            return answer.json()

        return await asyncio.gather(*(one(n) for n in range(BURST)))


def test_a_burst_is_refused_past_the_queue_not_accepted(
    queued: Subgraph, fresh_emulator: Emulator
) -> None:
    fresh_emulator.faults(
        rules=[{"match": {"trackingId": DEMO_TRACKING_ID}, "error": "ThrottlingException"}]
    )
    try:
        outcomes = asyncio.run(burst(queued.url + "/graphql"))
        accepted = [o for o in outcomes if "errors" not in o]
        refused = [o for o in outcomes if "errors" in o]
        assert {c for o in refused for c in codes(o)} == {"EVENTS_QUEUE_FULL"}, refused[:3]
        # The queue's batches, plus the one its sender may have taken into delivery.
        assert QUEUE <= len(accepted) <= QUEUE + 1, len(accepted)
    finally:
        fresh_emulator.faults()
