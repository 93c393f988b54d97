"""Answers in a Redis every replica shares: only ever an optimisation.

An error or a slow answer is a miss and the call goes to Personalize; an outage is
logged once, not per request (`backends.outage`).
"""

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from urllib.parse import urlsplit

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import MaxConnectionsError, RedisError

from backends.cache_codec import cache_key, decode, encode
from backends.entry import Entry
from backends.outage import Outage
from domain.request import RecommendationRequest
from domain.result import RecommendationResult
from settings import CacheSettings

# The logger the Redis store has always logged under (see backends.outage).
log = logging.getLogger("backends.cache")

# Connections to Redis per process; beyond it a lookup is a miss rather than a wait.
REDIS_MAX_CONNECTIONS = 256
# Writes in flight per process; beyond it (Redis far slower than Personalize) answers
# are simply not stored.
_MAX_PENDING_WRITES = 1_000


class RedisStore:
    """Answers in a Redis shared by every replica, under `key_prefix`, expiring by Redis TTL."""

    kind = "redis"

    def __init__(self, client: "Redis", settings: CacheSettings) -> None:
        self._client = client
        self._prefix = settings.key_prefix
        self._timeout = settings.redis_timeout
        url = urlsplit(settings.redis_url)
        # Never the whole URL in a log line: it may carry a password.
        self._outage = Outage(url.path if url.scheme == "unix" else f"{url.hostname}:{url.port}")
        self._writes: set[asyncio.Task[None]] = set()

    @classmethod
    @asynccontextmanager
    async def open(cls, settings: CacheSettings) -> AsyncIterator["RedisStore"]:
        """A store whose client is closed, pending writes given a moment, when the block ends."""
        client = Redis.from_url(
            settings.redis_url,
            socket_timeout=settings.redis_timeout,
            socket_connect_timeout=settings.redis_timeout,
            # redis-py retries 10 times with backoff by default: a down Redis would then
            # hold every request for seconds. One try; a failure is a miss.
            retry=Retry(NoBackoff(), 0),
            max_connections=REDIS_MAX_CONNECTIONS,
        )
        store = cls(client, settings)
        try:
            await store.check()
            yield store
        finally:
            await store.aclose()

    async def check(self) -> bool:
        """Ping once at start-up; a Redis that is down is logged, never fatal."""
        try:
            async with asyncio.timeout(self._timeout):
                await self._client.ping()
        except (RedisError, OSError, TimeoutError) as exc:
            self._outage.failed(exc)
            return False
        return True

    def peek(self, request: RecommendationRequest) -> Entry | None:
        """Always None: every answer here is a round trip away, which `get` makes."""
        return None

    async def get(self, request: RecommendationRequest, budget: float) -> Entry | None:
        if self._outage.skip() or budget <= 0:
            return None
        key = cache_key(request, self._prefix)
        timeout = min(self._timeout, budget)
        try:
            async with asyncio.timeout(timeout):
                raw = await self._client.get(key)
        except MaxConnectionsError:
            return None  # a burst, not an outage
        except TimeoutError as exc:
            # Cut short by the operation's own deadline: no fault of Redis's.
            if timeout >= self._timeout:
                self._outage.failed(exc)
            return None
        except (RedisError, OSError) as exc:
            self._outage.failed(exc)
            return None
        self._outage.recovered()
        if raw is None:
            return None
        try:
            return decode(raw)
        except ValueError as exc:
            log.warning("ignoring unreadable cache entry %s: %s", key, exc)
            return None

    def put(
        self, request: RecommendationRequest, result: RecommendationResult, keep: float
    ) -> None:
        if self._outage.skip() or len(self._writes) >= _MAX_PENDING_WRITES:
            return
        key = cache_key(request, self._prefix)
        value = encode(Entry(result, time.time()))
        task = asyncio.ensure_future(self._write(key, value, keep))
        self._writes.add(task)
        task.add_done_callback(self._writes.discard)

    async def _write(self, key: str, value: bytes, keep: float) -> None:
        try:
            async with asyncio.timeout(self._timeout):
                await self._client.set(key, value, px=max(1, round(keep * 1000)))
        except MaxConnectionsError:
            return
        except (RedisError, OSError, TimeoutError) as exc:
            self._outage.failed(exc)
            return
        self._outage.recovered()

    async def aclose(self) -> None:
        if self._writes:
            await asyncio.wait(set(self._writes), timeout=self._timeout)
            for task in set(self._writes):
                task.cancel()
        await self._client.aclose()
