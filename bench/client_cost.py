"""The Personalize Runtime client, and its HTTP/1.1 client alone, against the libraries.

- **client**: the app's default client, `DirectPersonalizeBackend` (`backends.http1` +
  `backends.signing`), against `PersonalizeBackend` (aioboto3, with the `AioConfig` of
  `backends.personalize.client_config`), both opened by their own `open` from the same
  `settings.personalize` as the app loads it. Each call is the backend's whole
  `recommend`: parameters in, a checked `RecommendationResult` out.
- **HTTP alone**: `backends.http1.Pool.post` against an `aiohttp.ClientSession` post of
  the same prebuilt, signed request bodies and headers, the answer read as bytes. That
  is what swapping the HTTP client under the direct client would change.

Both sides send the same GetRecommendations requests (the default `recommendations`
use case, users drawn once, in the same order every round) to the emulator, and the
CPU is this process's (`time.process_time`): the client's work, the event loop's
included, and nothing of the emulator's.
"""

import asyncio
import random
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

import aiohttp
import orjson

from backends.http1 import Pool
from backends.personalize import PersonalizeBackend
from backends.personalize_direct import DirectPersonalizeBackend
from backends.signing import Credentials, Signer, host_header
from bench.side_by_side import Comparison, Side, compare
from bench.workloads import N_USERS, user_id
from domain.request import Operation, RecommendationRequest
from domain.result import RecommendationResult
from settings import ServedField, Settings
from tests.servers import AWS_TEST_ENV

PATH = "/recommendations"

T = TypeVar("T")


def recommendation_requests(settings: Settings, count: int) -> list[RecommendationRequest]:
    """`count` GetRecommendations of the default `recommendations` use case, 25 items each."""
    name = settings.default_use_case(ServedField.RECOMMENDATIONS)
    if name is None:
        raise RuntimeError("the configuration has no use case for User.recommendations")
    arn = settings.use_cases[name].arn
    rng = random.Random(3)
    return [
        RecommendationRequest(
            operation=Operation.GET_RECOMMENDATIONS,
            arn=arn,
            use_case=name,
            user_id=user_id(rng.randint(1, N_USERS)),
            num_results=25,
        )
        for _ in range(count)
    ]


def _runner(
    call: Callable[[T], Awaitable[object]], work: Sequence[T], concurrency: int
) -> Callable[[int], Awaitable[None]]:
    """Does the first n items of `work`, `concurrency` at a time (each worker one by one)."""

    async def run(n: int) -> None:
        items = iter(work[:n])

        async def worker() -> None:
            for item in items:
                await call(item)

        await asyncio.gather(*(worker() for _ in range(concurrency)))

    return run


def _same_items(a: RecommendationResult, b: RecommendationResult) -> bool:
    return [i.item_id for i in a.items] == [i.item_id for i in b.items]


async def personalize_clients(
    settings: Settings, calls: int, rounds: int, concurrencies: Sequence[int]
) -> dict[int, Comparison]:
    """CPU µs per call of each client, at each concurrency."""
    requests = recommendation_requests(settings, calls)
    found: dict[int, Comparison] = {}
    async with (
        DirectPersonalizeBackend.open(settings.personalize) as direct,
        PersonalizeBackend.open(settings.personalize) as sdk,
    ):
        for request in requests[:3]:
            ours, theirs = await direct.recommend(request), await sdk.recommend(request)
            if not ours.items or not _same_items(ours, theirs):
                raise RuntimeError(f"the two clients answer {request} differently")
        for concurrency in concurrencies:
            found[concurrency] = await compare(
                Side(_runner(direct.recommend, requests, concurrency), time.process_time),
                Side(_runner(sdk.recommend, requests, concurrency), time.process_time),
                ops=calls,
                rounds=rounds,
            )
    return found


async def http_clients(
    settings: Settings, endpoint: str, calls: int, rounds: int, concurrency: int
) -> Comparison:
    """CPU µs per POST of backends.http1 and of aiohttp, same signed requests."""
    personalize = settings.personalize
    signer = Signer(host_header(endpoint), "personalize", personalize.region)
    credentials = Credentials(
        AWS_TEST_ENV["AWS_ACCESS_KEY_ID"], AWS_TEST_ENV["AWS_SECRET_ACCESS_KEY"], None
    )
    prepared = []
    for request in recommendation_requests(settings, calls):
        body = orjson.dumps(request.to_api_params())
        prepared.append((body, signer.headers(credentials, PATH, body)))
    pool = Pool(
        endpoint,
        max_idle=personalize.max_concurrency,
        connect_timeout=personalize.connect_timeout,
        read_timeout=personalize.read_timeout,
    )
    # Configured as a client of this service would be: a pool as large as our
    # concurrency, the same connect and read timeouts.
    session = aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=personalize.max_concurrency),
        timeout=aiohttp.ClientTimeout(
            sock_connect=personalize.connect_timeout, sock_read=personalize.read_timeout
        ),
    )
    url = endpoint.rstrip("/") + PATH

    async def ours(item: tuple[bytes, dict[str, str]]) -> bytes:
        response = await pool.post(PATH, item[1], item[0])
        if response.status != 200:
            raise RuntimeError(f"http1: status {response.status}: {response.body[:200]!r}")
        return response.body

    async def library(item: tuple[bytes, dict[str, str]]) -> bytes:
        async with session.post(url, data=item[0], headers=item[1]) as response:
            body = await response.read()
            if response.status != 200:
                raise RuntimeError(f"aiohttp: status {response.status}: {body[:200]!r}")
            return body

    try:
        for item in prepared[:3]:
            a, b = orjson.loads(await ours(item)), orjson.loads(await library(item))
            if a["itemList"] != b["itemList"]:
                raise RuntimeError("http1 and aiohttp got different answers to one request")
        return await compare(
            Side(_runner(ours, prepared, concurrency), time.process_time),
            Side(_runner(library, prepared, concurrency), time.process_time),
            ops=calls,
            rounds=rounds,
        )
    finally:
        await session.close()
        await pool.aclose()
