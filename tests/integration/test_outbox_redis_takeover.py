"""The event outbox: batches owned by a live process it does not hold are still sent
(Redis and the journal alike), and a Redis that may evict any key is called out at
start-up.

A take or add whose reply never reached the process (a socket timeout on a large
backlog, a dropped connection) leaves batches in Redis owned by that process's token,
whose lease it keeps renewing, but not in its memory. The test makes that state behind
a running server's back, with the same atomic store-and-assign the outbox's scripts do
(or the row a lost journal reply would leave), and watches the server send them. Real
parts: `python server.py`, a real redis-server, the SQLite journal, PutEvents through
aioboto3 to the emulator.
"""

import json
import sqlite3
import time
import uuid
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.conftest import Emulator
from tests.integration.test_event_outbox import (
    FAILING,
    assert_all_arrived_once,
    metric,
    plan,
    record_all,
    server_env,
    subgraph,
    wait_for,
)
from tests.redis_server import RedisServer, running_redis

# What `_ADD` or `_TAKE` leaves when its reply is lost: a stream entry owned by the token.
LOST_REPLY = """
local id = redis.call('XADD', KEYS[1], '*', 'session', ARGV[1], 'params', ARGV[2], 'added', ARGV[3])
redis.call('HSET', KEYS[2], id, ARGV[4])
return id
"""


@pytest.fixture(scope="module")
def redis(logs: Path) -> Iterator[RedisServer]:
    with running_redis(logs / "redis-takeover.log") as server:
        yield server


def log_lines(log: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]


def wait_for_metric(server: Any, name: str, value: float, timeout: float) -> float:
    deadline = time.monotonic() + timeout
    while (seen := metric(server, name)) != value and time.monotonic() < deadline:
        time.sleep(0.1)
    return seen


class Store:
    """The outbox a running server uses, seen from outside: its owner token, a batch it
    stored, and a way to store a batch owned by it that it never heard of."""

    def __init__(self, outbox: str, redis: RedisServer | None, journal: Path, prefix: str):
        self.outbox, self.redis, self.journal, self.prefix = outbox, redis, journal, prefix

    def _client(self) -> Any:
        assert self.redis is not None
        return self.redis.client()

    def _db(self) -> sqlite3.Connection:
        return sqlite3.connect(self.journal / "events.sqlite3", timeout=10)

    def token(self) -> str:
        if self.outbox == "journal":
            with closing(self._db()) as db:
                tokens = [t for (t,) in db.execute("SELECT token FROM owners")]
        else:
            keys = self._client().keys(f"{self.prefix}events:owner:*")
            tokens = [
                (k.decode() if isinstance(k, bytes) else k).removeprefix(
                    f"{self.prefix}events:owner:"
                )
                for k in keys
            ]
        assert len(tokens) == 1, tokens
        return str(tokens[0])

    def template(self) -> dict[str, Any]:
        if self.outbox == "journal":
            with closing(self._db()) as db:
                (raw,) = db.execute("SELECT params FROM batches LIMIT 1").fetchone()
        else:
            entries = self._client().xrange(f"{self.prefix}events:batches", count=1)
            assert entries, "the recorded batches are in the stream"
            raw = entries[0][1][b"params"]
        params: dict[str, Any] = orjson.loads(raw)
        return params

    def store_lost(self, session: str, params: dict[str, Any], token: str) -> None:
        """What a take or add whose reply was lost leaves: a batch owned by `token`."""
        if self.outbox == "journal":
            with closing(self._db()) as db, db:
                db.execute(
                    "INSERT INTO batches (session, params, added, owner) VALUES (?, ?, ?, ?)",
                    (session, orjson.dumps(params), time.time(), token),
                )
            return
        self._client().eval(
            LOST_REPLY,
            2,
            f"{self.prefix}events:batches",
            f"{self.prefix}events:owner-of",
            session,
            orjson.dumps(params),
            repr(time.time()),
            token,
        )

    def left(self) -> int:
        if self.outbox == "journal":
            with closing(self._db()) as db:
                return int(db.execute("SELECT count(*) FROM batches").fetchone()[0])
        return int(self._client().xlen(f"{self.prefix}events:batches"))


@pytest.mark.parametrize("outbox", ["redis", "journal"])
def test_batches_owned_but_not_held_after_a_lost_reply_are_sent_once(
    outbox: str, fresh_emulator: Emulator, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    prefix = f"{tmp_path.name}:"
    env = server_env(fresh_emulator, tmp_path / "journal", outbox=outbox, lease="1")
    redis: RedisServer | None = None
    if outbox == "redis":
        redis = request.getfixturevalue("redis")
        env["SUBGRAPH_CACHE__REDIS_URL"] = redis.url
        env["SUBGRAPH_CACHE__KEY_PREFIX"] = prefix
    store = Store(outbox, redis, tmp_path / "journal", prefix)
    own = plan(10, 2, 5)  # 20 batches recorded through the API
    lost = {f"lost-{s}": b for s, b in plan(8, 2, 5).items()}  # 16 batches behind its back
    depth = "personalize_subgraph_event_queue_depth"
    fresh_emulator.faults(**FAILING)
    log = tmp_path / "server.log"
    with subgraph(log, env) as (server, _):
        record_all(server, own)
        # Several upkeep rounds (every lease / 3) while the batches are held and failing:
        # the ones it holds are never taken a second time.
        time.sleep(2.5)
        assert metric(server, depth) == 20
        token, params = store.token(), store.template()
        for session, batches in lost.items():
            for items in batches:
                events = [
                    {**params["eventList"][0], "itemId": item, "eventId": uuid.uuid4().hex}
                    for item in items
                ]
                batch = {**params, "sessionId": session, "eventList": events}
                store.store_lost(session, batch, token)
        # Within a few leases the process holds them too, each once.
        assert wait_for_metric(server, depth, 36, timeout=5) == 36
        time.sleep(1)
        assert metric(server, depth) == 36
        fresh_emulator.faults()
        arrived = wait_for(fresh_emulator, 180, timeout=60)
        assert_all_arrived_once(arrived, {**own, **lost})
        assert len(arrived) == 180  # no batch sent twice
        assert wait_for_metric(server, depth, 0, timeout=10) == 0
        assert metric(server, 'personalize_subgraph_events_total{fate="delivered"}') == 180
    assert store.left() == 0
    lines = log_lines(log)
    taken = [line for line in lines if line.get("message", "").startswith("event batches taken")]
    assert sum(line["batches"] for line in taken) == 16, taken
    assert {line["whence"] for line in taken} == {"owner gone or a reply lost"}
    # This Redis evicts nothing (noeviction): no warning about it.
    assert not [line for line in lines if "maxmemory" in line.get("message", "")]


def test_a_redis_that_may_evict_any_key_is_named_in_a_warning_at_start(
    logs: Path, fresh_emulator: Emulator, tmp_path: Path
) -> None:
    with running_redis(
        logs / "redis-allkeys-lru.log", extra=("--maxmemory-policy", "allkeys-lru")
    ) as lru:
        env = server_env(fresh_emulator, tmp_path / "journal", outbox="redis")
        env["SUBGRAPH_CACHE__REDIS_URL"] = lru.url
        log = tmp_path / "server.log"
        with subgraph(log, env) as (server, _):
            # It starts and takes events all the same.
            record_all(server, plan(1, 1, 1))
            assert wait_for(fresh_emulator, 1, timeout=20)
    warnings = [line for line in log_lines(log) if "maxmemory-policy" in line.get("message", "")]
    assert len(warnings) == 1, warnings
    warning = warnings[0]
    assert warning["maxmemory_policy"] == "allkeys-lru"
    assert "allkeys-lru" in warning["message"]
    assert "may be lost" in warning["message"]
    assert warning.get("level", warning.get("levelname")) in ("WARNING", "warning"), warning
