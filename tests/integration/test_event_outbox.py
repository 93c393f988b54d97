"""The event outbox: what recordEvents accepted survives the process, and one throttled
batch does not hold up every session.

Real processes throughout: `python server.py` on the Personalize backend, PutEvents through
aioboto3 to the emulator (which lists every event it took: `GET /_emulator/events`), real
signals, a real redis-server, and the dead-letter command as a subprocess.
"""

import json
import os
import signal
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from local_personalize.resources import DEMO_TRACKING_ID
from tests.conftest import Emulator, Subgraph, codes, most_overlapping
from tests.redis_server import RedisServer, running_redis
from tests.servers import AWS_TEST_ENV, REPO_ROOT, free_port, python, running

RECORD = """mutation Record($session: String!, $events: [EventInput!]!) {
  recordEvents(userId: "user-0001", sessionId: $session, events: $events) {
    accepted delivered } }"""
# Every PutEvents call refused with a retryable 503: batches pile up in the outbox.
FAILING = {
    "rules": [
        {"match": {"trackingId": DEMO_TRACKING_ID}, "error": "ServiceUnavailable", "status": 503}
    ]
}


def server_env(emulator: Emulator, journal: Path, **events: str) -> dict[str, str]:
    env = {
        "SUBGRAPH_BACKEND": "personalize",
        "SUBGRAPH_PERSONALIZE__ENDPOINT_URL": emulator.url,
        "SUBGRAPH_EVENTS__TRACKING_ID": DEMO_TRACKING_ID,
        "SUBGRAPH_EVENTS__ENDPOINT_URL": emulator.url,
        "SUBGRAPH_EVENTS__JOURNAL_DIR": str(journal),
        # recordEvents answers once the batch is stored: the tests fill the outbox fast.
        "SUBGRAPH_EVENTS__WAIT_MS": "0",
        "SUBGRAPH_EVENTS__RETRY_BASE": "0.05",
        "SUBGRAPH_EVENTS__RETRY_CAP": "0.2",
        "SUBGRAPH_EVENTS__FLUSH_TIMEOUT": "1",
        "SUBGRAPH_CACHE__ENABLED": "false",
        "LOG_LEVEL": "INFO",
    }
    env.update({f"SUBGRAPH_EVENTS__{k.upper()}": v for k, v in events.items()})
    return env


@contextmanager
def subgraph(
    log: Path, env: dict[str, str]
) -> Iterator[tuple[Subgraph, "subprocess.Popen[bytes]"]]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with running(
        python("server.py"), f"{url}/healthz", log, env={"SUBGRAPH_SERVER__PORT": str(port), **env}
    ) as proc:
        yield Subgraph(url), proc


def record(server: Subgraph, session: str, items: list[str]) -> None:
    events = [{"eventType": "View", "itemId": item} for item in items]
    body = server.query(RECORD, {"session": session, "events": events})
    assert body == {"data": {"recordEvents": {"accepted": len(items), "delivered": False}}}, body


def plan(sessions: int, batches: int, size: int) -> dict[str, list[list[str]]]:
    """Each session's batches of distinct item ids, in the order they are recorded."""
    n = iter(range(1, sessions * batches * size + 1))
    return {
        f"session-{s:03d}": [[f"item-{next(n):04d}" for _ in range(size)] for _ in range(batches)]
        for s in range(sessions)
    }


def record_all(server: Subgraph, sent: dict[str, list[list[str]]]) -> None:
    """Each session's batches in order: round by round, the sessions of a round at once."""
    with ThreadPoolExecutor(8) as pool:
        for round_ in range(max(len(b) for b in sent.values())):
            calls = [pool.submit(record, server, s, b[round_]) for s, b in sent.items()]
            for call in calls:
                call.result()


def received(emulator: Emulator) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = httpx.get(f"{emulator.url}/_emulator/events").json()["events"]
    return events


def wait_for(emulator: Emulator, count: int, timeout: float) -> list[dict[str, Any]]:
    """The events the emulator took once `count` distinct eventIds arrived."""
    deadline = time.monotonic() + timeout
    while True:
        events = received(emulator)
        if len({e["eventId"] for e in events}) >= count or time.monotonic() > deadline:
            return events
        time.sleep(0.1)


def assert_all_arrived_once(events: list[dict[str, Any]], sent: dict[str, list[list[str]]]) -> None:
    """Every event arrived, in its session's order; a copy only ever repeats an eventId."""
    ids: dict[tuple[str, str], set[str]] = {}
    for e in events:
        ids.setdefault((e["sessionId"], e["itemId"]), set()).add(e["eventId"])
    expected = {(s, item) for s, batches in sent.items() for batch in batches for item in batch}
    assert set(ids) == expected
    assert all(len(eventIds) == 1 for eventIds in ids.values())
    assert len({e["eventId"] for e in events}) == len(expected)
    for session, batches in sent.items():
        order = [e["itemId"] for e in events if e["sessionId"] == session]
        first = sorted(set(order), key=order.index)
        assert first == [item for batch in batches for item in batch], session


def metric(server: Subgraph, name: str) -> float:
    for line in httpx.get(f"{server.url}/metrics").text.splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            return float(line.split()[-1])
    raise AssertionError(f"{name} not in /metrics")


def journal_rows(journal: Path) -> int:
    with sqlite3.connect(journal / "events.sqlite3") as db:
        return int(db.execute("SELECT count(*) FROM batches").fetchone()[0])


def stop(proc: "subprocess.Popen[bytes]", how: signal.Signals) -> int:
    proc.send_signal(how)
    return proc.wait(timeout=30)


@pytest.fixture(scope="module")
def redis(logs: Path) -> Iterator[RedisServer]:
    with running_redis(logs / "redis-outbox.log") as server:
        yield server


@pytest.mark.parametrize(
    ("outbox", "how"),
    [
        ("journal", signal.SIGTERM),
        ("journal", signal.SIGKILL),
        ("redis", signal.SIGTERM),
        ("redis", signal.SIGKILL),
    ],
    ids=["journal-sigterm", "journal-sigkill", "redis-sigterm", "redis-sigkill"],
)
def test_queued_events_survive_the_process_and_arrive_after_a_restart(
    outbox: str,
    how: signal.Signals,
    fresh_emulator: Emulator,
    tmp_path: Path,
    request: pytest.FixtureRequest,
) -> None:
    env = server_env(fresh_emulator, tmp_path / "journal", outbox=outbox, lease="3")
    if outbox == "redis":
        redis: RedisServer = request.getfixturevalue("redis")
        env["SUBGRAPH_CACHE__REDIS_URL"] = redis.url
        env["SUBGRAPH_CACHE__KEY_PREFIX"] = f"{tmp_path.name}:"
    # 40 sessions x 2 batches x 5 events: 400 events behind a failing PutEvents.
    sent = plan(40, 2, 5)
    fresh_emulator.faults(**FAILING)
    first_log = tmp_path / "first.log"
    with subgraph(first_log, env) as (server, proc):
        record_all(server, sent)
        assert metric(server, "personalize_subgraph_event_queue_depth") == 80
        assert metric(server, "personalize_subgraph_event_oldest_age_seconds") > 0
        status = stop(proc, how)
    assert status == -how or (how == signal.SIGTERM and status == 0)
    assert received(fresh_emulator) == []
    if how == signal.SIGTERM:
        lines = [json.loads(line) for line in first_log.read_text().splitlines() if "{" in line]
        kept = [
            line
            for line in lines
            if line.get("message") == "events kept in the outbox for the next start"
        ]
        assert [(k["events"], k["batches"], k["outbox"]) for k in kept] == [(400, 80, outbox)]
        assert not [line for line in lines if "lost" in line.get("message", "")]
    if outbox == "journal":
        assert journal_rows(tmp_path / "journal") == 80
    else:
        assert redis.client().xlen(f"{tmp_path.name}:events:batches") == 80

    fresh_emulator.faults()
    with subgraph(tmp_path / "second.log", env) as (server, _):
        events = wait_for(fresh_emulator, 400, timeout=60)
        assert_all_arrived_once(events, sent)
        deadline = time.monotonic() + 10
        while (
            metric(server, "personalize_subgraph_event_queue_depth") and time.monotonic() < deadline
        ):
            time.sleep(0.1)
        assert metric(server, "personalize_subgraph_event_queue_depth") == 0
        assert metric(server, 'personalize_subgraph_events_total{fate="delivered"}') == 400
    if outbox == "journal":
        assert journal_rows(tmp_path / "journal") == 0
    else:
        assert redis.client().xlen(f"{tmp_path.name}:events:batches") == 0


def drain(
    emulator: Emulator, journal: Path, log: Path, in_flight: int, delay_ms: int
) -> tuple[float, int]:
    """Seconds for 2,000 events of 200 sessions, stored first, to reach an emulator that
    throttles 30 % of calls and answers in `delay_ms`, and the most PutEvents calls that
    overlapped meanwhile; every event checked to arrive once and in its session's order."""
    sent = plan(200, 2, 5)
    emulator.reset()
    emulator.faults(**FAILING)
    env = server_env(emulator, journal, max_in_flight=str(in_flight))
    with subgraph(log, env) as (server, _):
        record_all(server, sent)
        started = time.monotonic()
        emulator.faults(seed=17, throttle_rate=0.3, delay_ms=delay_ms)
        events = wait_for(emulator, 2000, timeout=240)
        took = time.monotonic() - started
        assert_all_arrived_once(events, sent)
        assert metric(server, "personalize_subgraph_event_retries_total") > 0
    # The emulator's log (its latest 500 calls) of the drain: the calls refused by the
    # FAILING rule while the outbox filled are left out.
    calls = [
        c
        for c in emulator.requests()
        if c["operation"] == "PutEvents" and c["fault"] != "rule" and "answered" in c
    ]
    assert len(calls) >= 400, len(calls)
    return took, most_overlapping(calls)


def test_throttling_holds_up_one_session_not_all(fresh_emulator: Emulator, tmp_path: Path) -> None:
    in_order, one = drain(
        fresh_emulator, tmp_path / "one", tmp_path / "one.log", in_flight=1, delay_ms=20
    )
    # Calls slow enough that the senders keep the client's connections busy on a loaded
    # machine too, where the client's and the emulator's work per call is much of 20 ms.
    concurrent, many = drain(
        fresh_emulator, tmp_path / "many", tmp_path / "many.log", in_flight=16, delay_ms=100
    )
    print(
        f"drain of 2,000 events: max_in_flight=1 {in_order:.2f} s at 20 ms "
        f"({one} overlapping), 16 {concurrent:.2f} s at 100 ms ({many} overlapping)"
    )
    # One in flight: each call waits for the previous answer. Sixteen: a throttled
    # session's retries do not stop the others, which keep many calls open at once.
    assert one == 1, one
    # More than botocore's default pool of 10 connections would allow: the client's
    # pool is sized to max_in_flight.
    assert many >= 12, many


def dead_letters(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    outbox = {
        k: v for k, v in env.items() if k.startswith(("SUBGRAPH_EVENTS__", "SUBGRAPH_CACHE__"))
    }
    return subprocess.run(
        python("-m", "backends.outbox", "dead-letters", *args),
        cwd=REPO_ROOT,
        env={**os.environ, **AWS_TEST_ENV, **outbox},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )


@pytest.mark.parametrize("outbox", ["journal", "redis"])
def test_a_batch_refused_for_good_is_a_dead_letter_the_command_prints(
    outbox: str, fresh_emulator: Emulator, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    fresh_emulator.faults(
        rules=[{"match": {"sessionId": "doomed"}, "error": "AccessDeniedException", "status": 403}]
    )
    env = server_env(fresh_emulator, tmp_path / "journal", wait_ms="2000", lease="1", outbox=outbox)
    if outbox == "redis":
        redis: RedisServer = request.getfixturevalue("redis")
        env["SUBGRAPH_CACHE__REDIS_URL"] = redis.url
        env["SUBGRAPH_CACHE__KEY_PREFIX"] = f"{tmp_path.name}:"
    with subgraph(tmp_path / "server.log", env) as (server, _):
        events = [{"eventType": "Purchase", "itemId": "item-0042"}]
        body = server.query(RECORD, {"session": "doomed", "events": events})
        assert codes(body) == ["UPSTREAM_UNAVAILABLE"]
        # The other sessions go on.
        fine = server.query(RECORD, {"session": "fine", "events": events})
        assert fine == {"data": {"recordEvents": {"accepted": 1, "delivered": True}}}
        assert metric(server, "personalize_subgraph_event_dead_letters") == 1
        assert metric(server, 'personalize_subgraph_events_total{fate="rejected"}') == 1

        shown = dead_letters(env)
        letters = [json.loads(line) for line in shown.stdout.splitlines()]
        assert len(letters) == 1
        letter = letters[0]
        assert letter["sessionId"] == "doomed"
        assert letter["events"] == 1
        assert letter["code"] == "UPSTREAM_UNAVAILABLE"
        assert "AccessDeniedException" in letter["reason"]
        assert letter["params"]["eventList"][0]["itemId"] == "item-0042"
        assert f"1 dead letter(s) in the {outbox} outbox" in shown.stderr

        # Requeued once the refusal is fixed, the running server sends it.
        fresh_emulator.faults()
        requeued = dead_letters(env, "--requeue")
        assert "1 requeued" in requeued.stderr
        arrived = wait_for(fresh_emulator, 2, timeout=20)
        assert sorted(e["sessionId"] for e in arrived) == ["doomed", "fine"]
        assert dead_letters(env).stdout == ""


def test_processes_sharing_a_journal_never_send_each_others_batches_until_one_dies(
    fresh_emulator: Emulator, tmp_path: Path
) -> None:
    journal = tmp_path / "journal"
    env = server_env(fresh_emulator, journal, lease="3")
    first, second = plan(20, 2, 5), plan(10, 2, 5)
    second = {f"other-{s}": b for s, b in second.items()}
    fresh_emulator.faults(**FAILING)
    with (
        subgraph(tmp_path / "a.log", env) as (a, a_proc),
        subgraph(tmp_path / "b.log", env) as (b, _),
    ):
        record_all(a, first)
        record_all(b, second)
        # Several leases long, both alive: each keeps to its own batches.
        time.sleep(7)
        assert metric(a, "personalize_subgraph_event_queue_depth") == 40
        assert metric(b, "personalize_subgraph_event_queue_depth") == 20
        assert "taken over" not in (tmp_path / "b.log").read_text()
        assert stop(a_proc, signal.SIGKILL) == -signal.SIGKILL
        fresh_emulator.faults()
        # The survivor sends its own batches and, once it sees the owner gone, the dead one's.
        events = wait_for(fresh_emulator, 300, timeout=60)
        assert_all_arrived_once(events, {**first, **second})
        # Nothing was sent twice: no batch had two owners.
        assert len(events) == 300
        assert "owner gone" in (tmp_path / "b.log").read_text()
    assert journal_rows(journal) == 0


def test_an_outbox_that_cannot_store_refuses_with_a_code_and_recommendations_go_on(
    fresh_emulator: Emulator, tmp_path: Path
) -> None:
    # Nothing listens on this port: the Redis outbox is down from the start.
    env = server_env(fresh_emulator, tmp_path / "journal", outbox="redis")
    env["SUBGRAPH_CACHE__REDIS_URL"] = f"redis://127.0.0.1:{free_port()}/0"
    with subgraph(tmp_path / "server.log", env) as (server, _):
        events = [{"eventType": "View", "itemId": "item-0042"}]
        body = server.query(RECORD, {"session": "s", "events": events})
        assert codes(body) == ["EVENTS_QUEUE_FULL"]
        assert "could not be stored" in body["errors"][0]["message"]
        assert metric(server, 'personalize_subgraph_events_total{fate="refused"}') == 1
        assert received(fresh_emulator) == []
        picks = server.query(
            '{ _entities(representations: [{__typename: "User", id: "user-0001"}]) '
            "{ ... on User { recommendations(numResults: 3) { items { itemId } } } } }"
        )
        assert "errors" not in picks, picks
