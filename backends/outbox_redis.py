"""The event outbox in a Redis stream, for replicas whose disks do not outlive them.

Keys, under the cache's `key_prefix`: `events:batches` (a stream: session, params,
added), `events:owner-of` (a hash: batch id -> owner token), `events:owner:<token>`
(the owner's lease: a key that expires unless renewed) and `events:dead` (a stream of
dead letters). Storing a batch and taking over batches are Lua scripts, so each is one
atomic step (storing renews the lease too): two processes never both own a batch.
Batches are as durable as the Redis is configured to be (AOF with `appendfsync always`
or replicas with WAIT for the strictest); a Redis Cluster is not supported (the
scripts touch keys they compute). Under a `maxmemory-policy` that may evict any key
(allkeys-*), Redis at its limit may drop stored batches: the outbox says so in a warning
at start-up (read from INFO; CONFIG GET is often disabled on managed Redis). Contract and
ownership: `backends.outbox`.
"""

import logging
import time
from collections.abc import AsyncIterator, Awaitable, Container
from contextlib import asynccontextmanager
from typing import Any, TypeVar, cast

import orjson
from redis.asyncio import Redis
from redis.exceptions import RedisError

from backends.outbox import DeadLetter, OutboxError, Stored, owner_token

T = TypeVar("T")

log = logging.getLogger(__name__)

# Policies under which Redis, at its memory limit, may evict any key: stored batches too.
_EVICTS_ANY_KEY = frozenset({"allkeys-lru", "allkeys-lfu", "allkeys-random"})

# Generous: these are writes the client waits for, not cache lookups.
_TIMEOUT = 5.0

_ADD = """
local id = redis.call('XADD', KEYS[1], '*', 'session', ARGV[1], 'params', ARGV[2], 'added', ARGV[3])
redis.call('HSET', KEYS[2], id, ARGV[4])
redis.call('SET', ARGV[5], '1', 'PX', ARGV[6])
return id
"""

# Entries nobody (alive) owns become this process's, whole; the ids of those it owns
# already come back too (ids only: the caller fetches those it does not hold).
_TAKE = """
local taken, mine = {}, {}
for _, entry in ipairs(redis.call('XRANGE', KEYS[1], '-', '+')) do
  local owner = redis.call('HGET', KEYS[2], entry[1])
  if owner == ARGV[1] then
    table.insert(mine, entry[1])
  elseif (not owner) or redis.call('EXISTS', ARGV[2] .. owner) == 0 then
    redis.call('HSET', KEYS[2], entry[1], ARGV[1])
    table.insert(taken, entry)
  end
end
return {taken, mine}
"""

_REQUEUE = """
local moved = 0
for _, entry in ipairs(redis.call('XRANGE', KEYS[1], '-', '+')) do
  local f = {}
  for i = 1, #entry[2], 2 do f[entry[2][i]] = entry[2][i + 1] end
  redis.call('XADD', KEYS[2], '*', 'session', f['session'], 'params', f['params'],
    'added', f['added'])
  moved = moved + 1
end
redis.call('DEL', KEYS[1])
return moved
"""


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _order(entry_id: str) -> tuple[int, int]:
    ms, _, seq = entry_id.partition("-")
    return int(ms), int(seq or 0)


def _fields(raw: Any) -> dict[str, str]:
    if isinstance(raw, dict):
        return {_text(k): _text(v) for k, v in raw.items()}
    items = [_text(x) for x in raw]
    return dict(zip(items[::2], items[1::2], strict=True))


def _stored(entry_id: Any, values: Any) -> Stored:
    entry, fields = _text(entry_id), _fields(values)
    params = orjson.loads(fields["params"])
    return Stored(entry, _order(entry), fields["session"], params, float(fields["added"]))


class RedisOutbox:
    """See the module docstring."""

    kind = "redis"

    def __init__(self, client: "Redis", prefix: str, lease: float) -> None:
        self._client = client
        self._lease_ms = max(1, round(lease * 1000))
        self._token = owner_token()
        base = f"{prefix}events:"
        self._batches = f"{base}batches"
        self._owner_of = f"{base}owner-of"
        self._owners = f"{base}owner:"
        self._dead = f"{base}dead"

    @classmethod
    @asynccontextmanager
    async def open(cls, url: str, prefix: str, lease: float) -> AsyncIterator["RedisOutbox"]:
        client = Redis.from_url(url, socket_timeout=_TIMEOUT, socket_connect_timeout=_TIMEOUT)
        outbox = cls(client, prefix, lease)
        try:
            try:
                await outbox.renew()
                await outbox.check_eviction()
            except OutboxError:
                log.exception("event outbox in Redis unavailable at start-up")
            yield outbox
        finally:
            await client.aclose()

    async def check_eviction(self) -> None:
        """Warn when this Redis may evict the outbox's keys (it shares the cache's Redis).

        Read from INFO: managed Redis (ElastiCache, ...) disables CONFIG GET.
        """
        info = await self._call(self._client.info("memory"))
        policy = _text(info.get("maxmemory_policy", ""))
        if policy in _EVICTS_ANY_KEY:
            log.warning(
                f"event outbox: this Redis has maxmemory-policy {policy}, which evicts any "
                "key at its memory limit, stored event batches included: accepted events "
                "may be lost; use noeviction or a volatile-* policy for the outbox's Redis",
                extra={"maxmemory_policy": policy, "maxmemory": info.get("maxmemory")},
            )

    async def _call(self, work: Awaitable[T]) -> T:
        try:
            return await work
        except (RedisError, OSError) as exc:
            raise OutboxError(f"event outbox in Redis: {exc}") from exc

    async def add(self, params: dict[str, Any]) -> Stored:
        session, added = str(params["sessionId"]), time.time()
        raw = await self._call(
            self._client.eval(
                _ADD,
                2,
                self._batches,
                self._owner_of,
                session,
                orjson.dumps(params),
                repr(added),
                self._token,
                self._owners + self._token,
                self._lease_ms,
            )
        )
        entry_id = _text(raw)
        return Stored(entry_id, _order(entry_id), session, params, added)

    async def take(self, held: Container[str] = frozenset()) -> list[Stored]:
        taken_raw, mine = await self._call(
            self._client.eval(_TAKE, 2, self._batches, self._owner_of, self._token, self._owners)
        )
        taken = [_stored(entry_id, values) for entry_id, values in taken_raw]
        # Ours already, yet not held: the reply of an earlier take or add was lost.
        # Fetched after the check: a batch leaves `held` only once it left the stream.
        missing = [entry for entry in map(_text, mine) if entry not in held]
        if missing:
            async with self._client.pipeline(transaction=False) as pipe:
                for entry in missing:
                    pipe.xrange(self._batches, entry, entry)
                found = await self._call(pipe.execute())
            taken += [_stored(entry_id, values) for rows in found for entry_id, values in rows]
        return sorted(taken, key=lambda s: s.order)

    async def renew(self) -> None:
        await self._call(self._client.set(self._owners + self._token, b"1", px=self._lease_ms))

    async def done(self, stored: Stored) -> None:
        async with self._client.pipeline(transaction=True) as pipe:
            pipe.xdel(self._batches, stored.id)
            pipe.hdel(self._owner_of, stored.id)
            await self._call(pipe.execute())

    async def dead(self, stored: Stored, code: str, reason: str) -> None:
        letter = {
            "batch": stored.id,
            "session": stored.session,
            "params": orjson.dumps(stored.params),
            "added": repr(stored.added),
            "failed": repr(time.time()),
            "code": code,
            "reason": reason,
        }
        async with self._client.pipeline(transaction=True) as pipe:
            pipe.xadd(self._dead, cast("Any", letter))
            pipe.xdel(self._batches, stored.id)
            pipe.hdel(self._owner_of, stored.id)
            await self._call(pipe.execute())

    async def dead_count(self) -> int:
        return int(await self._call(self._client.xlen(self._dead)))

    async def dead_letters(self, limit: int) -> list[DeadLetter]:
        raw = await self._call(self._client.xrange(self._dead, count=limit))
        letters = []
        for entry_id, values in raw or []:
            f = _fields(values)
            letters.append(
                DeadLetter(
                    _text(entry_id),
                    f["session"],
                    orjson.loads(f["params"]),
                    float(f["added"]),
                    float(f["failed"]),
                    f["code"],
                    f["reason"],
                )
            )
        return letters

    async def requeue(self) -> int:
        moved = await self._call(self._client.eval(_REQUEUE, 2, self._dead, self._batches))
        return int(moved)

    async def release(self) -> None:
        # Without the lease key every batch this process owned is free to take at once.
        await self._call(self._client.delete(self._owners + self._token))
