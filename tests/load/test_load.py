"""A bounded load test on loopback with faults injected: nothing but data or coded errors.

The emulator throttles 20% of calls and adds latency spikes, 5xx, hangs and dropped
connections; a mix of page-shaped operations runs at a fixed concurrency for
LOAD_SECONDS (8 in `make test`, longer in `make soak`). Every response must be a 200
with data or coded errors, and the subgraph's memory must stay flat after warm-up.
"""

import asyncio
import os
import random
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from settings import DEMO_CONFIG
from tests.conftest import Emulator
from tests.servers import free_port, python, running

SECONDS = float(os.environ.get("LOAD_SECONDS", "8"))
CONCURRENCY = int(os.environ.get("LOAD_CONCURRENCY", "16"))
PREFIX = "arn:aws:personalize:us-east-1:000000000000:"
FAULTS = {
    "seed": 5,
    "throttle_rate": 0.2,
    "error_rate": 0.02,
    "timeout_rate": 0.005,
    "drop_rate": 0.005,
    "hang_ms": 3000,
    "latency": {"median_ms": 8, "sigma": 0.6, "max_ms": 1500, "spike_rate": 0.03, "spike_ms": 400},
}
# Fallbacks on two use cases, so the degraded path is part of the load too.
EXTRA = """
[use_cases.homeFeed]
arn = "arn:aws:personalize:us-east-1:000000000000:recommender/recommended-for-you"
field = "recommendations"
input = "user"
fallback = ["bestSellersForUser"]
fallback_items = ["item-0001", "item-0002", "item-0003", "item-0004"]

# A campaign that is gone: every home page's shelf comes from the fallback chain, so the
# degraded path is exercised in every run whatever the random faults do.
[use_cases.retiredShelf]
arn = "arn:aws:personalize:us-east-1:000000000000:campaign/retired-shelf"
field = "recommendations"
input = "user"
fallback = ["bestSellersForUser"]
fallback_items = ["item-0005", "item-0006"]

[use_cases.bestSellersForUser]
arn = "arn:aws:personalize:us-east-1:000000000000:recommender/best-sellers"
field = "popularItems"
input = "none"
"""


@dataclass
class Tally:
    """What the clients saw."""

    statuses: Counter[int] = field(default_factory=Counter)
    codes: Counter[str] = field(default_factory=Counter)
    sources: Counter[str] = field(default_factory=Counter)
    problems: list[str] = field(default_factory=list)
    operations: int = 0


def _operations(rng: random.Random) -> dict[str, Any]:
    user = f"user-{rng.randint(1, 400):04d}"
    item = f"item-{rng.randint(1, 800):04d}"
    kind = rng.choice(["home", "product", "batch", "popular"])
    if kind == "home":
        query = """query Home($u: ID!) {
          _entities(representations: [{__typename: "User", id: $u}]) {
            ... on User {
              feed: recommendations(useCase: HOME_FEED, numResults: 12) { source items { itemId } }
              shelf: recommendations(useCase: RETIRED_SHELF, numResults: 6) { source }
              picks: recommendations(numResults: 8, filter: {excludePurchased: true}) {
                source items { itemId } } } } }"""
        return {"query": query, "variables": {"u": user}}
    if kind == "product":
        query = """query Product($i: ID!, $u: ID!) {
            _entities(representations: [
                {__typename: "Item", id: $i}, {__typename: "User", id: $u}]) {
              ... on Item { related(numResults: 10) { source items { itemId } } }
              ... on User { rankedItems(itemIds: ["item-0001", "item-0002", "item-0003"]) {
                source items { itemId } } } } }"""
        return {"query": query, "variables": {"i": item, "u": user}}
    if kind == "batch":
        reps = [{"__typename": "User", "id": f"user-{rng.randint(1, 400):04d}"} for _ in range(20)]
        query = """query Batch($r: [_Any!]!) { _entities(representations: $r) {
            ... on User { recommendations(numResults: 5) { source items { itemId } } } } }"""
        return {"query": query, "variables": {"r": reps}}
    query = "{ popularItems(numResults: 10) { source items { itemId } } }"
    return {"query": query}


def _walk(value: Any, tally: Tally) -> None:
    if isinstance(value, dict):
        if "source" in value:
            tally.sources[value["source"]] += 1
        for child in value.values():
            _walk(child, tally)
    elif isinstance(value, list):
        for child in value:
            _walk(child, tally)


async def _client(url: str, seed: int, stop: float, tally: Tally) -> None:
    rng = random.Random(seed)
    async with httpx.AsyncClient(timeout=30) as client:
        while time.monotonic() < stop:
            response = await client.post(url, json=_operations(rng))
            tally.operations += 1
            tally.statuses[response.status_code] += 1
            if response.status_code != 200:
                tally.problems.append(f"{response.status_code}: {response.text[:200]}")
                continue
            body = response.json()
            if "data" not in body or body["data"] is None:
                tally.problems.append(f"no data: {response.text[:200]}")
            for error in body.get("errors") or []:
                code = (error.get("extensions") or {}).get("code")
                if not code or code == "INTERNAL_SERVER_ERROR":
                    tally.problems.append(f"uncoded or internal: {error}")
                tally.codes[str(code)] += 1
            _walk(body.get("data"), tally)


async def _drive(url: str, seconds: float, seed: int, tally: Tally) -> None:
    stop = time.monotonic() + seconds
    await asyncio.gather(*(_client(url, seed * 1000 + n, stop, tally) for n in range(CONCURRENCY)))


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


@pytest.fixture
def loaded_subgraph(logs: Path, fresh_emulator: Emulator) -> Iterator[tuple[str, int]]:
    config = logs / "load.toml"
    config.write_text(DEMO_CONFIG.read_text() + EXTRA)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {
        "SUBGRAPH_CONFIG": str(config),
        "SUBGRAPH_SERVER__PORT": str(port),
        "SUBGRAPH_BACKEND": "personalize",
        "SUBGRAPH_PERSONALIZE__ENDPOINT_URL": fresh_emulator.url,
        "SUBGRAPH_PERSONALIZE__READ_TIMEOUT": "0.5",
        "SUBGRAPH_PERSONALIZE__MAX_ATTEMPTS": "3",
        "SUBGRAPH_PERSONALIZE__DEADLINE": "1.5",
        "LOG_LEVEL": "ERROR",
    }
    with running(
        python("server.py"), f"{url}/healthz", logs / "subgraph-load.log", env=env
    ) as proc:
        fresh_emulator.faults(**FAULTS)
        yield f"{url}/graphql", proc.pid


def test_under_faults_every_response_is_data_or_coded_errors(
    loaded_subgraph: tuple[str, int], fresh_emulator: Emulator, logs: Path
) -> None:
    url, pid = loaded_subgraph
    warmup = Tally()
    asyncio.run(_drive(url, max(2.0, SECONDS / 4), 1, warmup))
    before = rss_mb(pid)
    tally = Tally()
    started = time.monotonic()
    asyncio.run(_drive(url, SECONDS, 2, tally))
    elapsed = time.monotonic() - started
    after = rss_mb(pid)
    stats = httpx.get(f"{fresh_emulator.url}/_emulator/stats").json()
    print(
        f"\nload: {tally.operations} operations in {elapsed:.1f} s at concurrency {CONCURRENCY} "
        f"({tally.operations / elapsed:.0f}/s); statuses {dict(tally.statuses)}; "
        f"errors by code {dict(tally.codes)}; sources {dict(tally.sources)}; "
        f"Personalize calls {stats['total']}, faults injected {stats.get('faults')}; "
        f"RSS {before:.1f} -> {after:.1f} MB"
    )
    assert not tally.problems, tally.problems[:5]
    assert set(tally.statuses) == {200}
    assert tally.operations > 50
    # The faults really happened and were really absorbed: retries and fallbacks answered.
    assert stats["faults"]["throttle"] > 0
    assert tally.sources["FALLBACK"] > 0
    assert tally.sources["PERSONALIZE"] > tally.sources["FALLBACK"]
    # Flat memory: growth after warm-up within 10% (or 15 MB, whichever is larger).
    assert after - before < max(15.0, before * 0.10), (before, after)
    assert "Traceback" not in (logs / "subgraph-load.log").read_text()
