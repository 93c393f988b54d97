"""`WORKERS=2` on the embedded engine: one engine process behind both workers.

Each worker used to build an engine of its own, so an event reached only the engine of
the worker that took the mutation, and the other worker kept recommending what the user
had just bought. The supervisor now starts one engine process (web/engine_process.py)
that every worker calls; these tests run `python server.py` with `WORKERS=2` as a
deployment does, and look at the processes in /proc.
"""

import http.client
import json
import os
import re
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Subgraph, codes
from tests.integration.test_readme_examples import (
    SUBGRAPH_OPERATIONS,
    Example,
    assert_answered,
)
from tests.integration.test_workers import children, cmdline, listeners, two_workers
from tests.servers import AWS_TEST_ENV, REPO_ROOT, free_port, python

RECORD = """mutation Record($user: ID, $events: [EventInput!]!) {
  recordEvents(userId: $user, sessionId: "s-1", events: $events) { accepted delivered } }"""


def picks_query(user: str) -> str:
    return f"""{{ _entities(representations: [{{__typename: "User", id: "{user}"}}]) {{
      ... on User {{ recommendations(numResults: 25, filter: {{excludePurchased: true}}) {{
        source recommendationId items {{ itemId }} }} }} }} }}"""


def post(conn: http.client.HTTPConnection, query: str, variables: Any = None) -> dict[str, Any]:
    """POST /graphql on this connection (kept open): the JSON body of a 200."""
    body = json.dumps({"query": query, "variables": variables or {}})
    conn.request("POST", "/graphql", body, {"content-type": "application/json"})
    response = conn.getresponse()
    raw = response.read()
    assert response.status == 200, raw
    answer: dict[str, Any] = json.loads(raw)
    return answer


def engine_pids(supervisor: int) -> list[int]:
    return [c for c in children(supervisor) if b"local_personalize\x00serve" in cmdline(c)]


def engine_port(pid: int) -> int:
    args = cmdline(pid).split(b"\x00")
    return int(args[args.index(b"--port") + 1])


def alive(pid: int) -> bool:
    """Running (a zombie, dead but not reaped yet, is not)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    return re.search(r"^State:\s+Z", status, re.M) is None


@pytest.fixture(scope="module")
def shared(logs: Path) -> Iterator[tuple[int, list[int]]]:
    """WORKERS=2 on the demo engine: its port and its two workers' pids.

    The environment names an HTTP proxy that answers nothing: the engine is on loopback,
    and neither the workers' calls nor their events may try to go through it.
    """
    dead_proxy = f"http://127.0.0.1:{free_port()}"
    proxies = {"HTTP_PROXY": dead_proxy, "HTTPS_PROXY": dead_proxy, "NO_PROXY": ""}
    # recordEvents waits for delivery long enough for a slow machine.
    env = {**proxies, "SUBGRAPH_EVENTS__WAIT_MS": "5000"}
    with two_workers(logs / "subgraph-workers-engine.log", env) as (proc, port, workers):
        assert len(engine_pids(proc.pid)) == 1
        yield port, workers


def test_a_purchase_recorded_once_reaches_every_worker(shared: tuple[int, list[int]]) -> None:
    port, workers = shared
    user = "user-0321"
    first = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    before = post(first, picks_query(user))["data"]["_entities"][0]["recommendations"]
    assert before["source"] == "LOCAL"
    bought = before["items"][0]["itemId"]
    event = {
        "eventType": "Purchase",
        "itemId": bought,
        "recommendationId": before["recommendationId"],
    }
    recorded = post(first, RECORD, {"user": user, "events": [event]})
    assert recorded == {"data": {"recordEvents": {"accepted": 1, "delivered": True}}}
    first.close()
    # A fresh connection for each: the kernel spreads them over the workers, and the
    # worker holding a connection is the one that answered on it.
    answers, answered_by = [], []
    for _ in range(50):
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        try:
            answers.append(post(conn, picks_query(user)))
            answered_by.append(worker_of(conn, port, workers))
        finally:
            conn.close()
    # Both answered (all 50 on one worker: odds of 2 in 2**50).
    assert set(answered_by) == set(workers), answered_by
    for answer in answers:
        recommendations = answer["data"]["_entities"][0]["recommendations"]
        assert recommendations["source"] == "LOCAL"
        items = [i["itemId"] for i in recommendations["items"]]
        assert len(items) == 25
        assert bought not in items


# What the demo shows, each through the engine process: a recommender it does not deploy
# (its fallback chain answers), item metadata, a promotion, filters with values,
# ranking, related items, context.
DEMO_FEATURES = """{
  newArrivals: popularItems(useCase: NEW_ARRIVALS, numResults: 3) {
    source recommendationId items { itemId } }
  withDetails: popularItems(useCase: BEST_SELLERS_WITH_DETAILS, numResults: 2) {
    source items { itemId metadata { key value } } }
  cheap: popularItems(useCase: MOST_VIEWED, numResults: 4, filter: { maxPrice: { maxPrice: 25 } }) {
    items { itemId } }
  _entities(representations: [
    { __typename: "Item", id: "item-0042" }
    { __typename: "User", id: "user-0007" }
  ]) {
    ... on Item { related(numResults: 5) { source items { itemId score } } }
    ... on User {
      shoes: recommendations(numResults: 3, filter: { byCategory: { category: ["shoes"] } }) {
        items { itemId } }
      promoted: recommendations(numResults: 10, context: [{ key: "DEVICE", value: "mobile" }],
          promotion: { name: "shoes", percentPromotedItems: 30,
                       filter: { byCategory: { category: ["shoes"] } } }) {
        items { itemId promotionName } }
      rankedItems(itemIds: ["item-0001", "item-0002", "item-0003", "item-9999"]) {
        source items { itemId score } }
    }
  }
}"""


def without_ids(value: Any) -> Any:
    """The answer without its recommendationIds, which are new on every call."""
    if isinstance(value, dict):
        return {k: without_ids(v) for k, v in value.items() if k != "recommendationId"}
    if isinstance(value, list):
        return [without_ids(v) for v in value]
    return value


def test_the_demo_answers_as_the_engine_in_process_does(
    shared: tuple[int, list[int]], local_subgraph: Subgraph
) -> None:
    port, _ = shared
    in_process = local_subgraph.query(DEMO_FEATURES)
    assert "errors" not in in_process, in_process
    data = in_process["data"]
    # The comparison is worth something only if the features show.
    assert data["newArrivals"]["source"] == "FALLBACK"
    assert data["newArrivals"]["recommendationId"] is None
    assert data["withDetails"]["items"][0]["metadata"]
    assert any(i["promotionName"] == "shoes" for i in data["_entities"][1]["promoted"]["items"])
    assert data["_entities"][1]["rankedItems"]["items"][-1]["itemId"] == "item-9999"
    for _ in range(4):  # fresh connections: either worker
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        try:
            answer = post(conn, DEMO_FEATURES)
        finally:
            conn.close()
        assert without_ids(answer) == without_ids(in_process)


@pytest.mark.parametrize("example", SUBGRAPH_OPERATIONS, ids=str)
def test_readme_example_runs_on_two_workers(
    example: Example, shared: tuple[int, list[int]]
) -> None:
    port, _ = shared
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        answer = post(conn, example.text)
    finally:
        conn.close()
    assert_answered(example, answer)
    if "recordEvents" in example.text:
        assert answer["data"]["recordEvents"]["delivered"] is True, answer


def test_a_dead_engine_is_replaced_and_answers_fall_back_meanwhile(logs: Path) -> None:
    log = logs / "subgraph-engine-restart.log"
    query = picks_query("user-0099")
    mixed = """{ newArrivals: popularItems(useCase: NEW_ARRIVALS, numResults: 3) {
        source items { itemId } }
      _entities(representations: [{__typename: "User", id: "user-0099"}]) {
        ... on User { recommendations(numResults: 3) { source items { itemId } } } } }"""
    with two_workers(log) as (proc, port, workers):
        [engine] = engine_pids(proc.pid)
        engine_at = engine_port(engine)
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        assert post(conn, query)["data"]["_entities"][0]["recommendations"]["source"] == "LOCAL"
        conn.close()
        os.kill(engine, signal.SIGKILL)
        # While no engine answers on its port: fallbacks, or coded errors, never a 500.
        seen = 0
        deadline = time.monotonic() + 5
        while seen < 6 and time.monotonic() < deadline:
            if engine_answers(engine_at):
                break
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            try:
                answer = post(conn, mixed)
            finally:
                conn.close()
            assert answer["data"]["newArrivals"]["source"] == "FALLBACK", answer
            # Its chain's best sellers need the engine too: the static list answers.
            items = [i["itemId"] for i in answer["data"]["newArrivals"]["items"]]
            assert items == ["item-0001", "item-0002", "item-0003"], answer
            assert answer["data"]["_entities"] == [{"recommendations": None}], answer
            assert codes(answer) == ["UPSTREAM_UNAVAILABLE"], answer
            seen += 1
        assert seen >= 3, "the engine came back before the test could ask"
        # The supervisor starts another on the same port; answers come from it again
        # (once the breaker, opened by the failures, lets a call through).
        deadline = time.monotonic() + 90
        source = None
        while time.monotonic() < deadline:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            try:
                answer = post(conn, query)
            finally:
                conn.close()
            assert "INTERNAL_SERVER_ERROR" not in codes(answer), answer
            recommendations = answer["data"]["_entities"][0]["recommendations"]
            source = recommendations and recommendations["source"]
            if source == "LOCAL":
                break
            time.sleep(0.5)
        assert source == "LOCAL", log.read_text()
        [replacement] = engine_pids(proc.pid)
        assert replacement != engine
        # The workers were not restarted: only the engine was.
        assert sorted(c for c in children(proc.pid) if b"spawn_main" in cmdline(c)) == workers
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=40) == 0
    # Nothing left behind: the engine (stopped last) and the workers are gone.
    assert not alive(replacement)
    assert not any(alive(pid) for pid in workers)
    assert "Traceback" not in log.read_text()


def engine_answers(port: int) -> bool:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
    try:
        conn.request("GET", "/_emulator/health")
        return conn.getresponse().status == 200
    except OSError:
        return False
    finally:
        conn.close()


def worker_of(conn: http.client.HTTPConnection, port: int, workers: list[int]) -> int | None:
    """Which of `workers` holds the server side of this open connection."""
    assert conn.sock is not None
    client_port = conn.sock.getsockname()[1]
    owners = {}
    for pid in workers:
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            try:
                target = fd.readlink().name
            except OSError:
                continue
            if target.startswith("socket:["):
                owners[target[len("socket:[") : -1]] = pid
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        local, remote = fields[1].rsplit(":", 1)[1], fields[2].rsplit(":", 1)[1]
        if int(local, 16) == port and int(remote, 16) == client_port and fields[9] in owners:
            return owners[fields[9]]
    return None


def test_an_engine_that_cannot_start_stops_the_supervisor_before_any_worker(
    logs: Path, tmp_path: Path
) -> None:
    # The demo's resources with a dataset that is not there: the file itself reads well
    # (start-up checks pass), the engine fails when it loads the data.
    demo = (REPO_ROOT / "config" / "local_resources.toml").read_text()
    assert "[datasets]\ndemo = true\nseed = 7\n" in demo
    resources = tmp_path / "resources.toml"
    resources.write_text(
        demo.replace(
            "[datasets]\ndemo = true\nseed = 7\n",
            '[datasets.interactions]\npath = "missing.csv"\nschema = "missing.json"\n',
        )
    )
    env = {
        **os.environ,
        **AWS_TEST_ENV,
        "SUBGRAPH_SERVER__PORT": str(free_port()),
        "SUBGRAPH_BACKEND": "local",
        "SUBGRAPH_LOCAL__RESOURCES": str(resources),
        "WORKERS": "2",
    }
    done = subprocess.run(
        python("server.py"), cwd=REPO_ROOT, env=env, capture_output=True, timeout=120
    )
    err = done.stderr.decode()
    # A mistake in the files: status 2, as `python server.py` exits with one worker.
    assert done.returncode == 2, err
    # The engine's own line, relayed through the supervisor's log.
    assert re.search(r"engine: python -m local_personalize serve: error: .*missing", err), err
    assert "worker started" not in err


def test_ctrl_c_stops_the_workers_then_the_engine(logs: Path) -> None:
    # A terminal's Ctrl-C reaches the whole foreground group at once. The engine runs in
    # a group of its own, so it still answers while the workers finish, and the
    # supervisor stops it last.
    port = free_port()
    env = {
        **os.environ,
        **AWS_TEST_ENV,
        "SUBGRAPH_SERVER__PORT": str(port),
        "SUBGRAPH_BACKEND": "local",
        "WORKERS": "2",
    }
    log = logs / "subgraph-engine-ctrl-c.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            python("server.py"),
            cwd=REPO_ROOT,
            env=env,
            stdout=out,
            stderr=out,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 90
        while listeners(port) < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert listeners(port) == 2, log.read_text()
        [engine] = engine_pids(proc.pid)
        workers = [c for c in children(proc.pid) if b"spawn_main" in cmdline(c)]
        assert os.getpgid(engine) != proc.pid  # not in the group Ctrl-C reaches
        os.killpg(proc.pid, signal.SIGINT)
        assert proc.wait(timeout=40) == 0
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert not alive(engine)
    assert not any(alive(pid) for pid in workers)
    text = log.read_text()
    assert text.count("Application shutdown complete") == 2
    assert "Traceback" not in text
