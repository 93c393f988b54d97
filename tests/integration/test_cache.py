"""Fewer Personalize calls: cached answers, stale answers on failure, and shared calls.

Subgraphs run as real processes on the aioboto3 path against the emulator, whose
counters tell how many calls really went out; the Redis tests start a real redis-server
(from the dev dependencies) and share it between two subgraph processes.
"""

import asyncio
import dataclasses
import os
import socket
import subprocess
import sys
import time
import tomllib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from pydantic import ValidationError

from backends.cache_codec import cache_key, decode, encode
from backends.coalesce import Coalescer
from backends.entry import Entry
from domain.errors import DeadlineSpent, UpstreamThrottled, UpstreamUnavailable
from domain.request import Operation, Promotion, RecommendationRequest
from domain.result import RecommendationResult, ResultItem
from settings import DEMO_CONFIG, CacheSettings, Settings
from tests.conftest import Emulator, Subgraph, codes, start_subgraph
from tests.redis_server import RedisServer, running_redis
from tests.servers import REPO_ROOT, free_port, python, running

PREFIX = "arn:aws:personalize:us-east-1:000000000000:"
MOST_VIEWED = PREFIX + "recommender/most-viewed"

EXTRA = f"""
[use_cases.briefPopular]
arn = "{PREFIX}campaign/popularity"
field = "popularItems"
input = "none"
cache_ttl = 1.0

[use_cases.resilientPopular]
arn = "{MOST_VIEWED}"
field = "popularItems"
input = "none"
cache_ttl = 0.3
stale_ttl = 1.0
"""

# One attempt per call and no breaker, so the emulator's counts are the calls asked for.
UPSTREAM = {
    "SUBGRAPH_BACKEND": "personalize",
    "SUBGRAPH_PERSONALIZE__MAX_ATTEMPTS": "1",
    "SUBGRAPH_BREAKER__FAILURES": "0",
}


def popular(use_case: str, n: int) -> str:
    return (
        f"{{ popularItems(useCase: {use_case}, numResults: {n}) "
        "{ source recommendationId items { itemId score } } }"
    )


def for_user(user: str, n: int) -> str:
    return (
        f'{{ _entities(representations: [{{__typename: "User", id: "{user}"}}]) {{ ... on User '
        f"{{ recommendations(numResults: {n}) {{ recommendationId items {{ itemId }} }} }} }} }}"
    )


def metric(subgraph: Subgraph, name: str, **labels: str) -> float:
    """A sample from the subgraph's /metrics, read with Prometheus' own parser; it must exist."""
    response = httpx.get(f"{subgraph.url}/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return float(sample.value)
    raise AssertionError(f"/metrics has no {name} {labels}")


@contextmanager
def subgraph_running(logs: Path, name: str, env: dict[str, str]) -> Iterator[Subgraph]:
    """A subgraph for the length of a `with` block, stopped even when the block fails."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {"SUBGRAPH_SERVER__PORT": str(port), "LOG_LEVEL": "WARNING", **env}
    with running(python("server.py"), f"{url}/healthz", logs / f"{name}.log", env=env):
        yield Subgraph(url)


@pytest.fixture(scope="module")
def cached(logs: Path, emulator: Emulator) -> Iterator[Subgraph]:
    """The demo use cases plus a short-lived and a stale-tolerant one; memory cache."""
    config = logs / "cache.toml"
    config.write_text(DEMO_CONFIG.read_text() + EXTRA)
    yield from start_subgraph(
        logs,
        "subgraph-cache",
        {
            **UPSTREAM,
            "SUBGRAPH_CONFIG": str(config),
            "SUBGRAPH_PERSONALIZE__ENDPOINT_URL": emulator.url,
            # Room for the 2 s call that concurrent operations share.
            "SUBGRAPH_PERSONALIZE__READ_TIMEOUT": "5",
            "SUBGRAPH_PERSONALIZE__DEADLINE": "6",
        },
    )


def test_a_popular_answer_is_served_from_the_cache(
    cached: Subgraph, fresh_emulator: Emulator
) -> None:
    first = cached.query(popular("BEST_SELLERS", 6))
    assert "errors" not in first, first
    assert fresh_emulator.calls() == 1
    again = cached.query(popular("BEST_SELLERS", 6))
    assert again == first
    assert again["data"]["popularItems"]["source"] == "PERSONALIZE"
    assert fresh_emulator.calls() == 1
    # Another question (here numResults) is another entry.
    assert "errors" not in cached.query(popular("BEST_SELLERS", 7))
    assert fresh_emulator.calls() == 2

    related = (
        '{ _entities(representations: [{__typename: "Item", id: "item-0042"}]) '
        "{ ... on Item { related(numResults: 5) { recommendationId items { itemId } } } } }"
    )
    first = cached.query(related)
    assert "errors" not in first, first
    assert cached.query(related) == first
    assert fresh_emulator.calls() == 3


def test_per_user_answers_are_not_cached_by_default(
    cached: Subgraph, fresh_emulator: Emulator
) -> None:
    first = cached.query(for_user("user-0031", 5))
    again = cached.query(for_user("user-0031", 5))
    assert "errors" not in first
    assert "errors" not in again
    assert fresh_emulator.calls() == 2


def test_answers_expire_after_their_ttl(cached: Subgraph, fresh_emulator: Emulator) -> None:
    cached.query(popular("BRIEF_POPULAR", 3))
    cached.query(popular("BRIEF_POPULAR", 3))
    assert fresh_emulator.calls() == 1
    time.sleep(1.1)  # cache_ttl is 1.0 s
    assert "errors" not in cached.query(popular("BRIEF_POPULAR", 3))
    assert fresh_emulator.calls() == 2


def test_a_stale_answer_stands_in_when_personalize_fails(
    cached: Subgraph, fresh_emulator: Emulator
) -> None:
    query = popular("RESILIENT_POPULAR", 4)  # cache_ttl 0.3 s, stale_ttl 1.0 s
    stale_before = metric(
        cached,
        "personalize_subgraph_cache_lookups_total",
        use_case="resilientPopular",
        outcome="stale",
    )
    good = cached.query(query)
    stored = time.monotonic()
    assert "errors" not in good
    time.sleep(0.4)
    throttle = {"match": {"recommenderArn": MOST_VIEWED}, "error": "ThrottlingException"}
    fresh_emulator.faults(rules=[throttle])
    # Expired, Personalize throttles: the expired answer is served, as it was.
    assert cached.query(query) == good
    assert fresh_emulator.calls() == 2
    assert (
        metric(
            cached,
            "personalize_subgraph_cache_lookups_total",
            use_case="resilientPopular",
            outcome="stale",
        )
        == stale_before + 1
    )
    # A rejection is the client's business: never answered with a stale list.
    fresh_emulator.faults(
        rules=[{"match": {"recommenderArn": MOST_VIEWED}, "error": "InvalidInputException"}]
    )
    assert codes(cached.query(query)) == ["BAD_USER_INPUT"]
    # Past cache_ttl + stale_ttl the failure shows.
    fresh_emulator.faults(rules=[throttle])
    time.sleep(max(0.0, stored + 1.4 - time.monotonic()))
    body = cached.query(query)
    assert body["data"]["popularItems"] is None
    assert codes(body) == ["UPSTREAM_THROTTLED"]


def test_identical_concurrent_operations_share_one_call(
    cached: Subgraph, fresh_emulator: Emulator
) -> None:
    labels = {"use_case": "recommendedForYou"}
    coalesced = metric(
        cached, "personalize_subgraph_calls_saved_total", reason="coalesced", **labels
    )
    # The first call is in flight this long: time enough for the other nine to join it.
    fresh_emulator.faults(delay_ms=2000)

    async def ask_together() -> list[dict[str, Any]]:
        async with httpx.AsyncClient(timeout=10) as client:
            responses = await asyncio.gather(
                *(
                    client.post(f"{cached.url}/graphql", json={"query": for_user("user-0077", 5)})
                    for _ in range(10)
                )
            )
        return [r.json() for r in responses]

    bodies = asyncio.run(ask_together())
    assert all("errors" not in b for b in bodies), bodies
    assert all(b == bodies[0] for b in bodies)
    assert fresh_emulator.calls() == 1
    saved = metric(cached, "personalize_subgraph_calls_saved_total", reason="coalesced", **labels)
    assert saved == coalesced + 9
    # Shared while in flight only: the next operation asks again.
    fresh_emulator.faults()
    cached.query(for_user("user-0077", 5))
    assert fresh_emulator.calls() == 2


def test_metrics_count_hits_misses_savings_and_calls(cached: Subgraph) -> None:
    def lookups(outcome: str) -> float:
        return metric(
            cached,
            "personalize_subgraph_cache_lookups_total",
            use_case="mostViewed",
            outcome=outcome,
        )

    hits, misses = lookups("hit"), lookups("miss")
    saved = metric(
        cached, "personalize_subgraph_calls_saved_total", use_case="mostViewed", reason="cache"
    )
    calls = metric(
        cached, "personalize_subgraph_personalize_calls_total", use_case="mostViewed", outcome="ok"
    )
    cached.query(popular("MOST_VIEWED", 11))
    cached.query(popular("MOST_VIEWED", 11))
    assert (lookups("hit"), lookups("miss")) == (hits + 1, misses + 1)
    assert (
        metric(
            cached, "personalize_subgraph_calls_saved_total", use_case="mostViewed", reason="cache"
        )
        == saved + 1
    )
    assert (
        metric(
            cached,
            "personalize_subgraph_personalize_calls_total",
            use_case="mostViewed",
            outcome="ok",
        )
        == calls + 1
    )
    # Every configured use case has its series from the start; process metrics too.
    saved_by_ranking = metric(
        cached, "personalize_subgraph_calls_saved_total", use_case="personalizedRanking"
    )
    assert saved_by_ranking == 0
    assert metric(cached, "process_resident_memory_bytes") > 0


# Redis: shared by replicas, and never a reason for a request to fail.


@pytest.fixture(scope="module")
def redis_server(logs: Path) -> Iterator[RedisServer]:
    with running_redis(logs / "redis.log") as server:
        yield server


def redis_env(emulator: Emulator, server_url: str) -> dict[str, str]:
    return {
        **UPSTREAM,
        "SUBGRAPH_PERSONALIZE__ENDPOINT_URL": emulator.url,
        "SUBGRAPH_CACHE__BACKEND": "redis",
        "SUBGRAPH_CACHE__REDIS_URL": server_url,
        "SUBGRAPH_CACHE__KEY_PREFIX": "test-cache:",
    }


@pytest.fixture(scope="module")
def replicas(
    logs: Path, emulator: Emulator, redis_server: RedisServer
) -> Iterator[tuple[Subgraph, Subgraph]]:
    env = redis_env(emulator, redis_server.url)
    with (
        subgraph_running(logs, "subgraph-replica-a", env) as first,
        subgraph_running(logs, "subgraph-replica-b", env) as second,
    ):
        yield first, second


def test_replicas_share_answers_through_redis(
    replicas: tuple[Subgraph, Subgraph], redis_server: RedisServer, fresh_emulator: Emulator
) -> None:
    one, other = replicas
    first = one.query(popular("BEST_SELLERS", 8))
    assert "errors" not in first, first
    assert fresh_emulator.calls() == 1
    # The write is made after the answer, off the request's path: wait until it landed.
    client = redis_server.client()
    deadline = time.monotonic() + 2
    while not (keys := client.keys("test-cache:v1:bestSellers:*")) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert len(keys) == 1
    assert 290_000 < client.pttl(keys[0]) <= 300_000  # the default cache_ttl for input "none"
    assert other.query(popular("BEST_SELLERS", 8)) == first
    assert fresh_emulator.calls() == 1
    client.close()


def test_a_redis_outage_never_fails_or_stalls_a_request(
    logs: Path, emulator: Emulator, fresh_emulator: Emulator
) -> None:
    with running_redis(logs / "redis-doomed.log") as server:
        env = {**redis_env(emulator, server.url), "SUBGRAPH_CACHE__REDIS_TIMEOUT": "0.1"}
        with subgraph_running(logs, "subgraph-redis-outage", env) as subgraph:
            assert "errors" not in subgraph.query(popular("BEST_SELLERS", 9))
            assert subgraph.query(popular("BEST_SELLERS", 9))["data"]
            assert fresh_emulator.calls() == 1
            server.stop()
            slowest = 0.0
            for n in (9, 10, 9):
                started = time.perf_counter()
                body = subgraph.query(popular("BEST_SELLERS", n))
                slowest = max(slowest, time.perf_counter() - started)
                assert "errors" not in body, body
            # Every answer came from Personalize, none waited on the dead Redis.
            assert fresh_emulator.calls() == 4
            assert slowest < 1.0
            # Redis comes back as a black hole: connections are accepted, never answered.
            with socket.create_server(("127.0.0.1", server.port), backlog=64):
                time.sleep(1.1)  # past the pause after a failure: Redis is tried again
                for n in (9, 11, 12):
                    started = time.perf_counter()
                    body = subgraph.query(popular("BEST_SELLERS", n))
                    slowest = max(slowest, time.perf_counter() - started)
                    assert "errors" not in body, body
            assert fresh_emulator.calls() == 7
            # At most one Redis timeout (0.1 s) per request, and only one of them: a
            # request left waiting on the black hole would never come back under 1 s.
            assert slowest < 1.0
    # One warning for the whole outage, not one per request.
    log = (logs / "subgraph-redis-outage.log").read_text()
    assert log.count("redis cache at") == 1, log


# The pieces on their own: settings, keys, stored form, and sharing calls.


def test_cache_ttl_follows_the_input_unless_set() -> None:
    demo = Settings(**tomllib.loads(DEMO_CONFIG.read_text()))
    ttl = {name: case.cache_ttl for name, case in demo.use_cases.items()}
    assert ttl["bestSellers"] == ttl["similarItems"] == 300
    assert ttl["recommendedForYou"] == ttl["customersWhoViewed"] == 0
    assert ttl["personalizedRanking"] == 0
    extra = Settings(**tomllib.loads(DEMO_CONFIG.read_text() + EXTRA))
    assert extra.use_cases["resilientPopular"].cache_ttl == 0.3
    with pytest.raises(ValidationError, match="Redis URL"):
        CacheSettings(redis_url="http://127.0.0.1:6379")
    with pytest.raises(ValidationError, match="key prefix"):
        CacheSettings(key_prefix="has space")


def _request() -> RecommendationRequest:
    return RecommendationRequest(
        operation=Operation.GET_RECOMMENDATIONS,
        arn=PREFIX + "recommender/best-sellers",
        use_case="bestSellers",
        user_id="user-0001",
        item_id="item-0001",
        num_results=10,
        input_list=("item-0002",),
        filter_arn=PREFIX + "filter/by-category",
        filter_values=(("CATEGORY", '"shoes"'),),
        context=(("DEVICE", "mobile"),),
        promotion=Promotion("deals", 10, PREFIX + "filter/deals", (("P", '"x"'),)),
        metadata_columns=("TITLE",),
    )


def test_cache_keys_name_every_field_and_agree_across_processes() -> None:
    request = _request()
    changed: dict[str, Any] = {
        "operation": Operation.GET_PERSONALIZED_RANKING,
        "arn": PREFIX + "recommender/most-viewed",
        "use_case": "mostViewed",
        "user_id": "user-0002",
        "item_id": None,
        "num_results": 11,
        "input_list": ("item-0003",),
        "filter_arn": None,
        "filter_values": (("CATEGORY", '"bags"'),),
        "context": (("DEVICE", "desktop"),),
        "promotion": Promotion("deals", 20, PREFIX + "filter/deals", (("P", '"x"'),)),
        "metadata_columns": ("PRICE",),
    }
    assert set(changed) == {f.name for f in dataclasses.fields(RecommendationRequest)}
    keys = {
        cache_key(dataclasses.replace(request, **{name: value})) for name, value in changed.items()
    }
    keys.add(cache_key(request))
    assert len(keys) == len(changed) + 1
    # Another process with another hash seed derives the same key (replicas share Redis).
    script = (
        "from tests.integration.test_cache import _request; "
        "from backends.cache_codec import cache_key; print(cache_key(_request(), 'p:'))"
    )
    other = subprocess.run(
        [sys.executable, "-c", script],
        cwd=REPO_ROOT,
        env={**os.environ, "PYTHONHASHSEED": "12345", "PYTHONPATH": str(REPO_ROOT)},
        capture_output=True,
        text=True,
        check=True,
    )
    assert other.stdout.strip() == cache_key(request, "p:")


def test_stored_answers_read_back_as_they_were() -> None:
    result = RecommendationResult(
        recommendation_id="rid-1",
        items=(
            ResultItem("item-1", 0.25, "deals", ("popular",), (("TITLE", "A"),)),
            ResultItem("item-2"),
        ),
    )
    entry = Entry(result, 1_700_000_000.5)
    assert decode(encode(entry)) == entry
    with pytest.raises(ValueError, match="not a cached answer"):
        decode(b'{"id": null}')


class _Counted:
    """A call that counts how often it was made: `seconds` long, then `fails` or an answer
    naming its count."""

    def __init__(self, seconds: float, fails: Exception | None = None) -> None:
        self.seconds, self.fails, self.made = seconds, fails, 0

    async def __call__(self) -> str:
        self.made += 1
        made = self.made
        await asyncio.sleep(self.seconds)
        if self.fails is not None:
            raise self.fails
        return f"answer {made}"


async def test_a_joiner_waits_no_longer_than_its_own_deadline() -> None:
    calls: Coalescer[str, str] = Coalescer()

    async def slow() -> str:
        await asyncio.sleep(1.5)
        return "answer"

    async def never() -> str:
        raise AssertionError("a joiner must not make its own call")

    leader = asyncio.ensure_future(calls.run("k", slow, time.monotonic() + 5))
    await asyncio.sleep(0)
    started = time.monotonic()
    with pytest.raises(DeadlineSpent):
        await calls.run("k", never, time.monotonic() + 0.1)
    # Gave up at its own deadline, long before the leader's answer at 1.5 s.
    assert time.monotonic() - started < 1.0
    # The joiner's giving up did not cancel the call for the others.
    assert await leader == ("answer", False)
    assert len(calls) == 0


async def test_failures_reach_the_waiters_of_the_moment_only() -> None:
    calls: Coalescer[str, str] = Coalescer()
    throttled = _Counted(0.05, UpstreamThrottled("throttled"))
    deadline = time.monotonic() + 5
    outcomes = await asyncio.gather(
        *(calls.run("k", throttled, deadline) for _ in range(3)), return_exceptions=True
    )
    assert all(isinstance(o, UpstreamThrottled) for o in outcomes)
    assert throttled.made == 1
    with pytest.raises(UpstreamThrottled):
        await calls.run("k", throttled, deadline)
    assert throttled.made == 2


async def test_a_joiner_with_time_left_asks_again_when_the_call_ran_out_of_its_makers() -> None:
    calls: Coalescer[str, str] = Coalescer()

    async def out_of_time() -> str:
        await asyncio.sleep(0.05)
        raise DeadlineSpent("the maker's deadline passed")

    async def answer() -> str:
        return "answer"

    leader = asyncio.ensure_future(calls.run("k", out_of_time, time.monotonic() + 0.05))
    await asyncio.sleep(0)
    assert await calls.run("k", answer, time.monotonic() + 5) == ("answer", False)
    with pytest.raises(DeadlineSpent):
        await leader


async def test_joiners_of_a_cancelled_maker_make_the_call_again() -> None:
    calls: Coalescer[str, str] = Coalescer()
    slow = _Counted(0.2)
    maker = asyncio.ensure_future(calls.run("k", slow, time.monotonic() + 5))
    await asyncio.sleep(0)
    joiners = [asyncio.ensure_future(calls.run("k", slow, time.monotonic() + 5)) for _ in range(2)]
    await asyncio.sleep(0.05)
    maker.cancel()
    outcomes = await asyncio.gather(*joiners)
    # One joiner made the second call, the other joined it.
    assert sorted(outcomes) == [("answer 2", False), ("answer 2", True)]
    assert slow.made == 2
    assert maker.cancelled()
    assert len(calls) == 0


async def test_closing_ends_every_call_in_flight_joiners_included() -> None:
    calls: Coalescer[str, str] = Coalescer()
    slow = _Counted(1.0)
    deadline = time.monotonic() + 5
    maker = asyncio.ensure_future(calls.run("k", slow, deadline))
    await asyncio.sleep(0)
    joiner = asyncio.ensure_future(calls.run("k", slow, deadline))
    await asyncio.sleep(0.01)
    await calls.aclose()
    # Nothing is left running, and the joiner did not make the call again.
    assert len(calls) == 0
    assert slow.made == 1
    for caller in (maker, joiner):
        with pytest.raises(asyncio.CancelledError):
            await caller
    # Nor does anyone after: a call that was about to start when closing began.
    with pytest.raises(UpstreamUnavailable, match="shutting down"):
        await calls.run("k", slow, deadline)
    assert slow.made == 1


async def test_a_maker_wakes_one_loop_turn_after_its_answer_and_a_joiner_one_more() -> None:
    # No task or shield between the call and its callers: the maker goes on in the turn
    # after the answer arrived and hands it to the joiner, who goes on in the next.
    calls: Coalescer[str, str] = Coalescer()
    answer: asyncio.Future[str] = asyncio.get_running_loop().create_future()
    turns = 0
    woke: dict[str, int] = {}

    async def call() -> str:
        return await answer

    async def caller(name: str) -> None:
        await calls.run("k", call, time.monotonic() + 5)
        woke[name] = turns

    maker = asyncio.ensure_future(caller("maker"))
    await asyncio.sleep(0)
    joiner = asyncio.ensure_future(caller("joiner"))
    await asyncio.sleep(0)
    answer.set_result("answer")
    while len(woke) < 2:
        turns += 1
        await asyncio.sleep(0)
    await asyncio.gather(maker, joiner)
    assert woke == {"maker": 1, "joiner": 2}


@pytest.fixture(scope="module")
def frugal(logs: Path, emulator: Emulator) -> Iterator[Subgraph]:
    """Two Personalize calls per operation at most, memory cache on."""
    yield from start_subgraph(
        logs,
        "subgraph-frugal",
        {
            **UPSTREAM,
            "SUBGRAPH_PERSONALIZE__ENDPOINT_URL": emulator.url,
            "SUBGRAPH_LIMITS__MAX_CALLS": "2",
        },
    )


def test_stored_answers_cost_nothing_from_the_call_budget(
    frugal: Subgraph, fresh_emulator: Emulator
) -> None:
    def fields(*sizes: int) -> str:
        return " ".join(
            f"n{n}: popularItems(useCase: MOST_VIEWED, numResults: {n}) {{ source }}" for n in sizes
        )

    assert "errors" not in frugal.query(f"{{ {fields(1, 2)} }}")
    assert fresh_emulator.calls() == 2
    # Two stored answers and two new calls: within a budget of two calls.
    body = frugal.query(f"{{ {fields(1, 2, 3, 4)} }}")
    assert "errors" not in body, body
    assert fresh_emulator.calls() == 4
    # A third new call is over the budget.
    body = frugal.query(f"{{ {fields(5, 6, 7)} }}")
    assert codes(body) == ["OPERATION_TOO_EXPENSIVE"]
    assert fresh_emulator.calls() == 6
