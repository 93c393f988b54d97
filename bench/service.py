"""`make bench`: speed and cost of the subgraph, side by side with a naive one and the floor.

``python -m bench.service [--delay-ms 20] [--seconds 3] [--concurrency 1,8,32] [--quick]``

Starts, as real processes on free loopback ports: the Personalize Runtime emulator
(a fixed `--delay-ms` per call), our subgraph (`python server.py` with the personalize
backend and its default `personalize.client`, pointed at the emulator) and the naive
Strawberry subgraph (`bench.naive_subgraph`). Then it drives each workload of
`bench.workloads` at each concurrency, one keep-alive connection per concurrent client
(`backends.http1`, the subgraph's own Personalize client) on uvloop, every cell bounded
by time (`--seconds`) and by count (`--max-queries`), and measures per cell:

- queries/s: completed queries over the cell's wall time;
- p50/p99 latency minus the injected delay (each workload's calls run concurrently, so
  an ideal query takes one delay; the rest is overhead: client, server, emulator);
- Personalize calls per query: the emulator's call counter delta over queries;
- CPU ms per query: utime + stime of the server process and its children, if any
  (`WORKERS`, default 1; from /proc/<pid>/stat, the emulator excluded) over queries.

The floor is measured in this process: for each workload, the same response JSON is
built as plain dicts from the raw (itemId, score) lists of one real answer and
serialised with orjson; its CPU time per query (time.process_time, the least of three
rounds of many repetitions; every floor one after the other, before the load) is
compared with the server's CPU per query (ratio service/floor).

The batch-warm workload is batch's query over a fixed, repeating set of 20 batches of
50 users, against a second instance of the subgraph whose default `recommendations`
use case keeps answers for 300 s (`cache_ttl = 300.0` added to a copy of
config/demo.toml, named by SUBGRAPH_CONFIG). Each batch is sent once before measuring,
so the measured queries make no Personalize calls: the server's CPU per query is then
HTTP + GraphQL + JSON from answers at hand, which is what the floor measures. The naive
subgraph has no cache; its columns are n/a there.

The zipf workload (product pages + best sellers, Zipf-distributed items and users)
runs against a fresh subgraph with the popular/related cache on
(`SUBGRAPH_CACHE__BACKEND=memory`, per-use-case defaults), from a cold cache, and
reports the fields that asked Personalize against the calls that reached it.

Everything runs in one go so that the noise of a shared machine hits all columns alike.
"""

import argparse
import asyncio
import gc
import math
import os
import random
import subprocess
import sys
import tempfile
import time
import zlib
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import orjson
import uvloop

from backends.http1 import ConnectionFailed, Pool
from bench.workloads import BATCH_WARM, WORKLOADS, Workload
from tests.servers import AWS_TEST_ENV, REPO_ROOT, free_port

_TICK = os.sysconf("SC_CLK_TCK")
_HEADERS = {"content-type": "application/json", "accept": "application/json"}
# Opens a client's connection before a cell without asking Personalize anything.
_WARMUP = orjson.dumps({"query": "{ __typename }"})
# The checks of the issue, evaluated at this concurrency where they name none.
CHECK_CONCURRENCY = 8
FLOOR_RATIO_MAX = 10.0
HOME_P99_OVERHEAD_MAX_MS = 5.0
# The p99 check gets a cell of its own, ten times a table cell's time (same query cap):
# a 3 s cell holds about 1,000 home pages, so its p99 rests on its 10 slowest.
CHECK_CELL_TIME_FACTOR = 10
HOME_QPS_RATIO_MIN = 3.0
CACHE_SAVING_MIN = 0.5
# batch-warm compares like for like only when its queries make no Personalize calls.
WARM_CALLS_PER_QUERY_MAX = 0.01
WARM_CACHE_TTL = 300.0


# --- processes ---------------------------------------------------------------------------


@dataclass
class Target:
    """A GraphQL server under test: its name in the table, /graphql URL and process id."""

    name: str
    url: str
    pid: int


@dataclass
class _Proc:
    name: str
    proc: subprocess.Popen[bytes]
    ready_url: str
    log: Path


def _start(name: str, args: list[str], ready_url: str, logs: Path, env: Mapping[str, str]) -> _Proc:
    log = logs / f"{name}.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, *args],
            cwd=REPO_ROOT,
            env={**os.environ, **AWS_TEST_ENV, **env},
            stdout=out,
            stderr=out,
        )
    return _Proc(name, proc, ready_url, log)


def _wait_ready(procs: Sequence[_Proc], timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    waiting = list(procs)
    while waiting:
        for p in list(waiting):
            if p.proc.poll() is not None:
                raise RuntimeError(
                    f"{p.name} exited with {p.proc.returncode}:\n{p.log.read_text()[-3000:]}"
                )
            try:
                if httpx.get(p.ready_url, timeout=1.0).status_code == 200:
                    waiting.remove(p)
            except httpx.TransportError:
                pass
        if waiting and time.monotonic() > deadline:
            names = ", ".join(p.name for p in waiting)
            raise RuntimeError(f"not ready after {timeout:.0f} s: {names} (logs in {p.log.parent})")
        if waiting:
            time.sleep(0.1)


def _check_alive(procs: Sequence[_Proc]) -> None:
    """Stop the run with the log's tail when a process under test has gone away."""
    for p in procs:
        if p.proc.poll() is not None:
            raise RuntimeError(
                f"{p.name} (pid {p.proc.pid}) exited with {p.proc.returncode} during the run "
                f"(a negative status is a signal from outside); its log {p.log}:\n"
                f"{p.log.read_text()[-3000:]}"
            )


@contextmanager
def _running(procs: Sequence[_Proc]) -> Iterator[None]:
    """Wait until every process answers, and stop each one (by its pid) afterwards."""
    try:
        _wait_ready(procs)
        yield
    finally:
        for p in procs:
            p.proc.terminate()
        for p in procs:
            try:
                p.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.proc.kill()
                p.proc.wait()


def _emulator(logs: Path, delay_ms: float) -> tuple[_Proc, str]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    args = ["-m", "local_personalize", "serve", "--host", "127.0.0.1", "--port", str(port)]
    args += ["--delay-ms", f"{delay_ms:g}", "--log-level", "warning"]
    return _start("emulator", args, f"{url}/_emulator/health", logs, {}), url


def _ideal_backend(logs: Path, delay_ms: float) -> tuple[_Proc, str]:
    """`bench.ideal_backend`: fixed answers exactly `delay_ms` after arrival, no engine."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    args = ["-m", "bench.ideal_backend", "--port", str(port), "--delay-ms", f"{delay_ms:g}"]
    return _start("ideal-backend", args, f"{url}/_emulator/health", logs, {}), url


def _service(name: str, logs: Path, emulator: str, env: Mapping[str, str]) -> tuple[_Proc, str]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    full_env = {
        "SUBGRAPH_BACKEND": "personalize",
        "SUBGRAPH_PERSONALIZE__ENDPOINT_URL": emulator,
        "SUBGRAPH_SERVER__HOST": "127.0.0.1",
        "SUBGRAPH_SERVER__PORT": str(port),
        "LOG_LEVEL": "WARNING",
        "WORKERS": os.environ.get("WORKERS", "1"),
        **env,
    }
    return _start(name, ["server.py"], f"{url}/healthz", logs, full_env), url


def _naive(logs: Path, emulator: str) -> tuple[_Proc, str]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {"AWS_ENDPOINT_URL_PERSONALIZE_RUNTIME": emulator}
    args = ["-m", "bench.naive_subgraph", "--host", "127.0.0.1", "--port", str(port)]
    return _start("naive", args, f"{url}/healthz", logs, env), url


def _bare(name: str, logs: Path, emulator: str, burn_ms: float = 0.0) -> tuple[_Proc, str]:
    """`bench.bare_home`: the home page with nothing but HTTP, its 4 calls and orjson."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    args = ["-m", "bench.bare_home", "--port", str(port), "--emulator", emulator]
    args += ["--burn-ms", f"{burn_ms:g}"]
    return _start(name, args, f"{url}/healthz", logs, {}), url


def _descendants(pid: int) -> list[int]:
    parents: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rpartition(")")[2].split()
        except OSError:
            continue
        parents.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        todo.extend(parents.get(current, ()))
    return found


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process and its descendants (all threads), in seconds."""
    ticks = 0
    for p in _descendants(pid):
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rpartition(")")[2].split()
        except OSError:
            continue
        ticks += int(fields[11]) + int(fields[12])
    return ticks / _TICK


def warm_config(directory: Path) -> tuple[Path, str]:
    """A copy of config/demo.toml whose default `recommendations` use case caches answers.

    TOML cannot re-declare a table, so `cache_ttl` goes in as a line right after the use
    case's header. Returns the file and the use case's name.
    """
    import tomllib

    from settings import DEMO_CONFIG, Field_, Settings

    text = DEMO_CONFIG.read_text(encoding="utf-8")
    name = Settings(**tomllib.loads(text)).default_use_case(Field_.RECOMMENDATIONS)
    if name is None:
        raise RuntimeError(f"{DEMO_CONFIG} has no use case for User.recommendations")
    header = f"[use_cases.{name}]"
    lines = text.splitlines(keepends=True)
    at = [n for n, line in enumerate(lines) if line.strip() == header]
    if len(at) != 1:
        raise RuntimeError(f"{DEMO_CONFIG}: expected one line {header!r}, found {len(at)}")
    lines.insert(at[0] + 1, f"cache_ttl = {WARM_CACHE_TTL!r}\n")
    path = directory / "bench-warm.toml"
    path.write_text("".join(lines), encoding="utf-8")
    try:
        ttl = Settings(**tomllib.loads(path.read_text(encoding="utf-8"))).use_cases[name].cache_ttl
    except (tomllib.TOMLDecodeError, ValueError) as exc:
        raise RuntimeError(
            f"{path} (demo.toml + cache_ttl for {name}) is not valid: {exc}"
        ) from exc
    if ttl != WARM_CACHE_TTL:
        raise RuntimeError(f"{path}: {name}.cache_ttl is {ttl}, not {WARM_CACHE_TTL}")
    return path, name


def code_version() -> str:
    """The commit under test, and which tracked files differ from it (they are measured too)."""

    def git(*args: str) -> str:
        done = subprocess.run(
            ["git", *args], cwd=REPO_ROOT, capture_output=True, text=True, check=False
        )
        if done.returncode != 0:
            raise OSError(done.stderr.strip())
        return done.stdout

    try:
        commit = git("rev-parse", "--short", "HEAD").strip()
        changed = [
            line[3:] for line in git("status", "--porcelain", "--untracked-files=no").splitlines()
        ]
    except OSError:
        return "commit unknown (no git)"
    if not changed:
        return f"commit {commit}"
    return f"commit {commit} + uncommitted changes to {', '.join(changed)}"


def where(logs: Path) -> str:
    """The machine, its load, the code under test and the logs' place, for a run's first line."""
    return (
        f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}; {code_version()}; "
        f"logs in {logs}"
    )


# --- one cell: a workload at a concurrency against one target ---------------------------


@dataclass
class Cell:
    """What one workload at one concurrency did to one target."""

    target: str
    workload: str
    concurrency: int
    delay_ms: float
    queries: int = 0
    seconds: float = 0.0
    latencies_ms: list[float] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)
    calls: int = 0
    requests: int = 0  # fields that asked Personalize
    server_cpu_s: float = 0.0
    emulator_cpu_s: float = 0.0
    client_cpu_s: float = 0.0

    @property
    def qps(self) -> float:
        return self.queries / self.seconds if self.seconds else 0.0

    def overhead_ms(self, q: float) -> float:
        if not self.latencies_ms:
            return math.nan
        ordered = sorted(self.latencies_ms)
        index = max(0, math.ceil(q * len(ordered)) - 1)
        return ordered[index] - self.delay_ms

    @property
    def calls_per_query(self) -> float:
        return self.calls / self.queries if self.queries else math.nan

    @property
    def cpu_ms_per_query(self) -> float:
        return self.server_cpu_s * 1000 / self.queries if self.queries else math.nan

    def summary(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "workload": self.workload,
            "concurrency": self.concurrency,
            "queries": self.queries,
            "seconds": round(self.seconds, 3),
            "qps": round(self.qps, 2),
            "p50_minus_delay_ms": round(self.overhead_ms(0.5), 3),
            "p99_minus_delay_ms": round(self.overhead_ms(0.99), 3),
            "requests": self.requests,
            "calls": self.calls,
            "calls_per_query": round(self.calls_per_query, 3),
            "server_cpu_ms_per_query": round(self.cpu_ms_per_query, 3),
            "emulator_cpu_s": round(self.emulator_cpu_s, 3),
            "client_cpu_s": round(self.client_cpu_s, 3),
            "errors": dict(self.errors),
        }


def _clean(content: bytes) -> bool:
    """A quick yes for the common answer: an object opening with non-null data and with no
    "errors" anywhere in it (then it has no errors key). No means: ask `_problems`."""
    return content.startswith(b'{"data":{') and b'"errors"' not in content


def _problems(status: int, content: bytes) -> list[str]:
    """Why an answer is not a clean 200 with data: HTTP status or error codes."""
    if status != 200:
        return [f"HTTP {status}"]
    try:
        body = orjson.loads(content)
    except orjson.JSONDecodeError:
        return ["not JSON"]
    found = [
        str((e.get("extensions") or {}).get("code") or "uncoded error")
        for e in body.get("errors") or ()
    ]
    if body.get("data") is None:
        found.append("no data")
    return found


async def _emulator_calls(client: httpx.AsyncClient, emulator: str) -> int:
    response = await client.get(f"{emulator}/_emulator/stats")
    response.raise_for_status()
    total: int = response.json()["total"]
    return total


@contextmanager
def _collector_paused() -> Iterator[None]:
    """The load generator's cyclic collector off while it times queries.

    This process holds 70,000 to 96,000 tracked objects, most of them built by its
    imports (aioboto3 for the client it measures, httpx). In one home-only run its
    collector paused it twice for full collections (the longest 65 ms) and 3 times over
    2 ms for young ones; every query in flight during a pause is timed that much slower,
    as if the target had been. Rare enough not to move the p99 check (three paired runs:
    9.7-10.6 ms with pauses allowed, 9.1-11.0 ms without), but they are not the target's.
    A cell makes no reference cycles of note, so the collector runs before and after it.
    """
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()
        gc.collect()


async def run_cell(
    target: Target,
    workload: Workload,
    concurrency: int,
    *,
    seconds: float,
    max_queries: int,
    delay_ms: float,
    emulator: str,
    emulator_pid: int,
    seed: int,
) -> Cell:
    """Drive `workload` at `concurrency` for `seconds` or `max_queries`, whichever ends first.

    Each client first sends one unmeasured `{ __typename }` so that its connection is
    open; counters are read after that. The query stream depends only on `seed`.
    """
    cell = Cell(target.name, workload.name, concurrency, delay_ms)
    # The subgraph's own Personalize client, as load generator: keep-alive connections
    # (one per concurrent client), prebuilt requests, answers parsed by httptools.
    parts = urlsplit(target.url)
    headers = {"Host": parts.netloc, **_HEADERS}
    http = Pool(target.url, max_idle=concurrency, connect_timeout=10.0, read_timeout=60.0)
    try:
        async with httpx.AsyncClient(timeout=10.0) as control:
            await asyncio.gather(
                *(http.post(parts.path, headers, _WARMUP) for _ in range(concurrency))
            )
            calls_before = await _emulator_calls(control, emulator)
            cpu_before = cpu_seconds(target.pid)
            emulator_before = cpu_seconds(emulator_pid)
            # No collections of ours while queries are timed (see _collector_paused).
            with _collector_paused():
                client_before = time.process_time()
                started = time.perf_counter()
                stop_at = started + seconds

                async def worker(rng: random.Random) -> None:
                    while time.perf_counter() < stop_at and cell.queries < max_queries:
                        cell.queries += 1
                        body = workload.payload(rng)
                        sent = time.perf_counter()
                        try:
                            response = await http.post(parts.path, headers, body)
                        except (ConnectionFailed, TimeoutError) as exc:
                            cell.errors[f"{type(exc).__name__}: {exc}"] += 1
                            cell.latencies_ms.append((time.perf_counter() - sent) * 1000)
                            continue
                        cell.latencies_ms.append((time.perf_counter() - sent) * 1000)
                        if response.status != 200 or not _clean(response.body):
                            for problem in _problems(response.status, response.body):
                                cell.errors[problem] += 1

                rngs = [random.Random(seed * 1000 + n) for n in range(concurrency)]
                await asyncio.gather(*(worker(r) for r in rngs))
                cell.seconds = time.perf_counter() - started
                cell.client_cpu_s = time.process_time() - client_before
            cell.server_cpu_s = cpu_seconds(target.pid) - cpu_before
            cell.emulator_cpu_s = cpu_seconds(emulator_pid) - emulator_before
            cell.calls = await _emulator_calls(control, emulator) - calls_before
    finally:
        await http.aclose()
    cell.requests = cell.queries * workload.personalize_fields
    return cell


# --- sanity and floor --------------------------------------------------------------------


def _normalised(value: Any) -> Any:
    """`data` with every recommendationId blanked: ids are per call, never equal twice."""
    if isinstance(value, dict):
        return {
            k: ("<id>" if k == "recommendationId" and v is not None else _normalised(v))
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [_normalised(v) for v in value]
    return value


def _first_difference(a: Any, b: Any, path: str = "data") -> str:
    if type(a) is not type(b):
        return f"{path}: {type(a).__name__} vs {type(b).__name__}"
    if isinstance(a, dict):
        for key in sorted(set(a) | set(b)):
            if key not in a or key not in b:
                return f"{path}.{key}: present on one side only"
            if a[key] != b[key]:
                return _first_difference(a[key], b[key], f"{path}.{key}")
    if isinstance(a, list):
        if len(a) != len(b):
            return f"{path}: {len(a)} vs {len(b)} entries"
        for n, (x, y) in enumerate(zip(a, b, strict=True)):
            if x != y:
                return _first_difference(x, y, f"{path}[{n}]")
    return f"{path}: {str(a)[:80]} vs {str(b)[:80]}"


def sample(url: str, workload: Workload, seed: int = 2024) -> dict[str, Any]:
    """One answer to the workload's query with fixed variables; raises unless it is clean."""
    response = httpx.post(
        url, content=workload.payload(random.Random(seed)), headers=_HEADERS, timeout=60.0
    )
    problems = _problems(response.status_code, response.content)
    if problems:
        raise RuntimeError(f"{workload.name} at {url}: {problems}: {response.text[:500]}")
    body: dict[str, Any] = response.json()
    return body


async def warm_up(target: Target, workload: Workload, emulator: str) -> int:
    """Ask each of the workload's repeating batches once; returns the Personalize calls made."""
    async with httpx.AsyncClient(timeout=httpx.Timeout(60.0)) as client:
        before = await _emulator_calls(client, emulator)
        for variables in workload.repeating:
            body = orjson.dumps({"query": workload.query, "variables": variables})
            response = await client.post(target.url, content=body, headers=_HEADERS)
            problems = _problems(response.status_code, response.content)
            if problems:
                raise RuntimeError(f"warming {workload.name} at {target.url}: {problems}")
        return await _emulator_calls(client, emulator) - before


def same_data(workload: Workload, ours: Target, naive: Target) -> str | None:
    """None when both answer the same `data` for the same query, else what differs."""
    a = _normalised(sample(ours.url, workload)["data"])
    b = _normalised(sample(naive.url, workload)["data"])
    return None if a == b else _first_difference(a, b)


def floor_ms(workload: Workload, data: dict[str, Any], min_cpu_s: float) -> float:
    """CPU ms to build the answer's JSON from its raw lists and orjson it, per query.

    The least of three rounds of at least `min_cpu_s` each: the work is the same every
    time, and contention from other processes on a shared machine only ever adds.
    """
    run = workload.floor(data)
    for _ in range(5):
        run()
    rounds = []
    for _ in range(3):
        reps = 0
        started = time.process_time()
        while True:
            for _ in range(10):
                run()
            reps += 10
            spent = time.process_time() - started
            if spent >= min_cpu_s and reps >= 50:
                rounds.append(spent * 1000 / reps)
                break
    return min(rounds)


async def client_cpu_per_call(emulator: str, calls: int) -> float:
    """CPU ms one aioboto3 client spends per GetRecommendations (in this process)."""
    import aioboto3

    session = aioboto3.Session()
    async with session.client(
        "personalize-runtime",
        region_name="us-east-1",
        endpoint_url=emulator,
        aws_access_key_id=AWS_TEST_ENV["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=AWS_TEST_ENV["AWS_SECRET_ACCESS_KEY"],
    ) as client:
        arn = "arn:aws:personalize:us-east-1:000000000000:campaign/user-personalization"

        async def one(n: int) -> None:
            await client.get_recommendations(
                campaignArn=arn, userId=f"user-{n % 5000 + 1:04d}", numResults=25
            )

        await asyncio.gather(*(one(n) for n in range(10)))  # first-call costs out of the way
        # The least of three rounds: contention from other processes only ever adds.
        rounds = []
        for _ in range(3):
            started = time.process_time()
            for batch in range(0, calls, 10):
                await asyncio.gather(*(one(n) for n in range(batch, batch + 10)))
            rounds.append((time.process_time() - started) * 1000 / calls)
        return min(rounds)


# --- the report --------------------------------------------------------------------------


def _f(value: float, digits: int = 1) -> str:
    return "-" if math.isnan(value) else f"{value:,.{digits}f}"


def _ratio(a: float, b: float) -> float:
    return a / b if b else math.nan


def _nearest(values: Sequence[int], wanted: int) -> int:
    return min(values, key=lambda v: (abs(v - wanted), v))


def _verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


@dataclass
class Report:
    """Every measurement of the run, and how to print it."""

    delay_ms: float
    concurrency: list[int]
    cells: dict[tuple[str, str, int], Cell] = field(default_factory=dict)
    floors: dict[str, float] = field(default_factory=dict)
    mismatches: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    client_call_ms: float = math.nan
    cache_on: bool = False
    # batch-warm: the use case given a cache_ttl, and the calls its warm-up made.
    warm_use_case: str | None = None
    warm_up_calls: int = 0
    # What the service calls Personalize with (settings' personalize.client).
    service_client: str = "aioboto3"
    # The home p99 check's own, longer cell (the service only).
    home_check: Cell | None = None
    # The same cell against bench.bare_home: the stack's own p99, no GraphQL.
    bare_check: Cell | None = None

    def add(self, cell: Cell) -> None:
        self.cells[(cell.target, cell.workload, cell.concurrency)] = cell

    def cell(self, target: str, workload: str, concurrency: int) -> Cell | None:
        return self.cells.get((target, workload, concurrency))

    def table(self) -> str:
        head = (
            "| workload | conc | service q/s | p50-d ms | p99-d ms | calls/q | CPU ms/q "
            "| naive q/s | p50-d ms | p99-d ms | calls/q | CPU ms/q "
            "| floor CPU ms/q | service/floor | naive/floor |"
        )
        lines = [head, "|" + "---|" * head.count(" | ") + "---|"]
        for name in WORKLOADS:
            for c in self.concurrency:
                ours, naive = self.cell("service", name, c), self.cell("naive", name, c)
                if ours is None:
                    continue
                floor = self.floors.get(name, math.nan)
                row = [name, str(c)]
                for cell in (ours, naive):
                    if cell is None:  # batch-warm: the naive subgraph has no cache
                        row += ["n/a"] * 5
                        continue
                    row += [
                        _f(cell.qps),
                        _f(cell.overhead_ms(0.5)),
                        _f(cell.overhead_ms(0.99)),
                        _f(cell.calls_per_query, 2),
                        _f(cell.cpu_ms_per_query, 2),
                    ]
                row += [
                    _f(floor, 3),
                    f"{_f(ours.cpu_ms_per_query / floor)}x",
                    "n/a" if naive is None else f"{_f(naive.cpu_ms_per_query / floor)}x",
                ]
                lines.append("| " + " | ".join(row) + " |")
        return "\n".join(lines)

    def _floor_ratios(self, workload: str, c8: int) -> tuple[float, str]:
        """The service's CPU/query over the floor at c8, and the other concurrencies' ratios."""
        floor = self.floors[workload]
        main = self.cell("service", workload, c8)
        ratio = main.cpu_ms_per_query / floor if main is not None else math.nan
        others = ", ".join(
            f"c={c}: {_f(cell.cpu_ms_per_query / floor)}x"
            for c in self.concurrency
            if c != c8 and (cell := self.cell("service", workload, c)) is not None
        )
        return ratio, others

    def checks(self) -> list[tuple[str, str]]:
        """(PASS, FAIL, INFO or SKIP, text) for each check of the issue."""
        conc = self.concurrency
        c8 = _nearest(conc, CHECK_CONCURRENCY)
        results: list[tuple[str, str]] = []

        # Like for like: the floor builds the JSON from answers at hand, and so does the
        # service when every answer is cached (batch-warm, 0 Personalize calls).
        warm = self.cell("service", BATCH_WARM.name, c8)
        if warm is not None and BATCH_WARM.name in self.floors:
            ratio, others = self._floor_ratios(BATCH_WARM.name, c8)
            warm_cells = [
                cell for c in conc if (cell := self.cell("service", BATCH_WARM.name, c)) is not None
            ]
            # NaN (a cell without queries) counts as not warm.
            worst_calls = max(cell.calls_per_query for cell in warm_cells)
            warmed = all(cell.calls_per_query <= WARM_CALLS_PER_QUERY_MAX for cell in warm_cells)
            text = (
                f"batch CPU/query <= {FLOOR_RATIO_MAX:g}x the orjson floor, like for like "
                f"(batch-warm: {self.warm_use_case} cached, "
                f"{_f(warm.calls_per_query, 2)} Personalize calls/query; c={c8}): "
                f"service {_f(warm.cpu_ms_per_query, 2)} ms vs floor "
                f"{_f(self.floors[BATCH_WARM.name], 3)} ms -> {_f(ratio)}x ({others})"
            )
            if not warmed:
                text += (
                    f" -- NOT WARM: up to {_f(worst_calls, 2)} calls/query, so this is not "
                    "like for like"
                )
            results.append(
                (
                    _verdict(ratio <= FLOOR_RATIO_MAX and warmed),
                    text,
                )
            )
        elif "batch" in self.floors:
            results.append(
                (
                    "SKIP",
                    f"batch CPU/query <= {FLOOR_RATIO_MAX:g}x the orjson floor, like for like: "
                    "needs the batch-warm workload (--workloads)",
                )
            )

        batch = self.cell("service", "batch", c8)
        if batch is not None and "batch" in self.floors:
            ratio, others = self._floor_ratios("batch", c8)
            client = ""
            if self.service_client == "aioboto3" and not math.isnan(self.client_call_ms):
                client = (
                    f": ~{self.client_call_ms:.2f} ms of CPU per call, "
                    f"~{_f(batch.calls_per_query * self.client_call_ms, 1)} ms"
                )
            results.append(
                (
                    "INFO",
                    f"batch, cold (no cache) CPU/query vs the orjson floor (c={c8}): service "
                    f"{_f(batch.cpu_ms_per_query, 2)} ms vs floor {_f(self.floors['batch'], 3)} ms "
                    f"-> {_f(ratio)}x ({others}); includes {_f(batch.calls_per_query, 1)} "
                    "Personalize client calls per query (personalize.client = "
                    f"{self.service_client!r}{client}), which the floor does not make",
                )
            )

        table_home = self.cell("service", "home", c8)
        home = self.home_check or table_home
        if home is not None:
            p99 = home.overhead_ms(0.99)
            one = self.cell("service", "home", 1)
            cell_note = ""
            if self.home_check is not None and table_home is not None:
                cell_note = (
                    f"; the table's {table_home.queries:,}-query cell: "
                    f"p99 {_f(table_home.overhead_ms(0.99), 2)} ms"
                )
            bare_note = ""
            if self.bare_check is not None:
                bare = self.bare_check
                bare_note = (
                    f". The bare server (bench.bare_home: HTTP, the 4 calls and orjson, no "
                    f"GraphQL) in the same cell after it: p99 {_f(bare.overhead_ms(0.99), 2)} "
                    f"ms, p50 {_f(bare.overhead_ms(0.5), 2)} ms, "
                    f"{_f(bare.cpu_ms_per_query, 2)} CPU ms/query"
                )
            results.append(
                (
                    _verdict(p99 <= HOME_P99_OVERHEAD_MAX_MS),
                    f"home p99 latency over the {self.delay_ms:g} ms backend delay <= "
                    f"{HOME_P99_OVERHEAD_MAX_MS:g} ms at c={c8}: {_f(p99, 2)} ms over "
                    f"{home.queries:,} queries (p50 {_f(home.overhead_ms(0.5), 2)} ms, p90 "
                    f"{_f(home.overhead_ms(0.9), 2)} ms{cell_note}; c=1: p50 "
                    f"{_f(one.overhead_ms(0.5), 2) if one else 'n/a'} ms; the server busy "
                    f"{_f(home.server_cpu_s / home.seconds * 100, 0)}% of a core at "
                    f"{_f(home.qps)} q/s, {_f(home.cpu_ms_per_query, 2)} CPU ms/query, the "
                    f"emulator "
                    f"{_f(home.emulator_cpu_s / home.seconds * 100, 0)}%){bare_note}",
                )
            )

        top = max(conc)
        ours, naive = self.cell("service", "home", top), self.cell("naive", "home", top)
        if ours is not None and naive is not None:
            ratio = _ratio(ours.qps, naive.qps)
            cpu_ratio = _ratio(naive.cpu_ms_per_query, ours.cpu_ms_per_query)
            others = ", ".join(
                f"c={c}: {_f(o.qps / n.qps)}x"
                for c in conc
                if c != top
                and (o := self.cell("service", "home", c)) is not None
                and (n := self.cell("naive", "home", c)) is not None
                and n.qps
            )
            results.append(
                (
                    _verdict(ratio >= HOME_QPS_RATIO_MIN),
                    f"home q/s >= {HOME_QPS_RATIO_MIN:g}x naive (c={top}, highest concurrency): "
                    f"{_f(ours.qps)} vs {_f(naive.qps)} -> {_f(ratio)}x ({others}; server CPU "
                    f"per query naive/service {_f(cpu_ratio)}x)",
                )
            )

        zipf = [self.cell("service", "zipf", c) for c in conc]
        zipf_cells = [z for z in zipf if z is not None]
        if zipf_cells:
            requests = sum(z.requests for z in zipf_cells)
            calls = sum(z.calls for z in zipf_cells)
            saving = 1 - calls / requests if requests else math.nan
            cache = "cache on" if self.cache_on else "NO CACHE SETTINGS in this checkout"
            results.append(
                (
                    _verdict(saving >= CACHE_SAVING_MIN),
                    f"zipf stream ({cache}): Personalize calls >= {CACHE_SAVING_MIN:.0%} fewer "
                    f"than requests: {requests:,} requests (fields asking Personalize, "
                    f"{sum(z.queries for z in zipf_cells):,} queries), {calls:,} calls "
                    f"-> {_f(saving * 100)}% fewer",
                )
            )
        return results

    def where_cpu_goes(self) -> list[str]:
        if math.isnan(self.client_call_ms):
            return []
        c8 = _nearest(self.concurrency, CHECK_CONCURRENCY)
        lines = []
        for name in WORKLOADS:
            for target in ("service", "naive"):
                cell = self.cell(target, name, c8)
                if cell is None or not cell.queries:
                    continue
                if target == "service" and self.service_client != "aioboto3" and cell.calls:
                    lines.append(
                        f"  {name:8} {target:8} c={c8}: {_f(cell.cpu_ms_per_query, 2)} ms/query, "
                        f"{_f(cell.calls_per_query, 1)} calls over its "
                        f"personalize.client = {self.service_client!r} (not split: that "
                        "client's CPU per call is not measured here)"
                    )
                    continue
                client = cell.calls_per_query * self.client_call_ms
                rest = cell.cpu_ms_per_query - client
                if rest <= 0:
                    remainder = "the rest is within the noise"
                else:
                    remainder = f"~{_f(rest, 2)} ms HTTP/GraphQL/other"
                    if name in self.floors:
                        remainder += f" ({_f(rest / self.floors[name])}x floor)"
                lines.append(
                    f"  {name:8} {target:8} c={c8}: {_f(cell.cpu_ms_per_query, 2)} ms/query = "
                    f"~{_f(client, 2)} ms in the client ({_f(cell.calls_per_query, 1)} calls) "
                    f"+ {remainder}"
                )
        return lines

    def print(self) -> None:
        print()
        print(self.table())
        print()
        ran = {workload for _, workload, _ in self.cells}
        legend = (
            "q/s: completed queries per second; p50-d/p99-d: latency percentile minus the "
            f"injected {self.delay_ms:g} ms delay (client + server + emulator overhead); "
            "calls/q: Personalize calls per query (emulator counter); CPU ms/q: server "
            "process utime+stime per query (emulator and load generator excluded); floor: "
            "the same JSON built from raw lists + orjson.dumps, in-process (least of 3 "
            "rounds); x/floor: CPU ms per query over the floor's."
        )
        if BATCH_WARM.name in ran:
            legend += (
                f" batch-warm: the service column runs with {self.warm_use_case} cached "
                f"({WARM_CACHE_TTL:g} s) and warmed ({self.warm_up_calls:,} calls before "
                "measuring), and its p50-d/p99-d subtract nothing (no call to wait for); the "
                "naive subgraph has no cache (n/a)."
            )
        if "zipf" in ran:
            legend += " zipf: the service column runs with the cache on."
        print(legend)
        named = [(cell, "") for cell in self.cells.values()]
        if self.home_check is not None:
            named.append((self.home_check, " (the p99 check's cell)"))
        if self.bare_check is not None:
            named.append((self.bare_check, " (the bare server's p99 cell)"))
        errors = [
            f"  {cell.target} {cell.workload} c={cell.concurrency}{what}: "
            f"{sum(cell.errors.values())} problems in {cell.queries} queries {dict(cell.errors)}"
            for cell, what in named
            if cell.errors
        ]
        if errors:
            print("\nERRORS (their latencies are in the percentiles):")
            print("\n".join(errors))
        for mismatch in self.mismatches:
            print(f"\n!!! MISMATCH: {mismatch}")
        if not math.isnan(self.client_call_ms):
            print(
                "\nWhere server CPU goes, roughly: calls x the CPU a stock aioboto3 client "
                f"spends per call (measured in this process: {self.client_call_ms:.3f} ms; the "
                "naive subgraph's client), and the rest:"
            )
            print("\n".join(self.where_cpu_goes()))
        busy = [
            f"  {cell.target} {cell.workload} c={cell.concurrency}: emulator "
            f"{cell.emulator_cpu_s / cell.seconds:.0%} of a core, load generator "
            f"{cell.client_cpu_s / cell.seconds:.0%}"
            for cell in self.cells.values()
            if cell.seconds and max(cell.emulator_cpu_s, cell.client_cpu_s) / cell.seconds > 0.7
        ]
        if busy:
            print(
                "\nCells where the emulator or the load generator used > 70% of a core "
                "(their queueing shows up as overhead):"
            )
            print("\n".join(busy))
        for note in self.notes:
            print(f"\nNOTE: {note}")
        print("\nChecks:")
        for status, text in self.checks():
            print(f"{status}  {text}")


# --- the run -----------------------------------------------------------------------------


@dataclass
class Options:
    """The command line, resolved."""

    delay_ms: float
    seconds: float
    concurrency: list[int]
    max_queries: int
    workloads: list[str]
    floor_cpu_s: float
    client_calls: int
    json_out: Path | None


async def _drive(
    report: Report,
    opts: Options,
    workloads: Sequence[Workload],
    targets: Sequence[Target],
    emulator: str,
    emulator_pid: int,
    procs: Sequence[_Proc],
    *,
    delay_ms: float | None = None,
) -> None:
    """Run every cell; `delay_ms` is what an ideal query waits (default: one emulator delay)."""
    for workload in workloads:
        for c in opts.concurrency:
            for target in targets:
                _check_alive(procs)
                try:
                    cell = await run_cell(
                        target,
                        workload,
                        c,
                        seconds=opts.seconds,
                        max_queries=opts.max_queries,
                        delay_ms=opts.delay_ms if delay_ms is None else delay_ms,
                        emulator=emulator,
                        emulator_pid=emulator_pid,
                        # The same query stream for every target.
                        seed=zlib.crc32(f"{workload.name}/{c}".encode()),
                    )
                except (httpx.HTTPError, ConnectionFailed, TimeoutError):
                    _check_alive(procs)  # names the process that went away, if one did
                    raise
                _check_alive(procs)
                report.add(cell)
                print(
                    f"  {workload.name:8} c={c:<3} {target.name:8} {cell.queries:6,} queries "
                    f"{cell.qps:8,.1f} q/s  p50-d {cell.overhead_ms(0.5):7.1f} ms  "
                    f"p99-d {cell.overhead_ms(0.99):7.1f} ms  calls/q {cell.calls_per_query:5.2f}"
                    f"  CPU {cell.cpu_ms_per_query:6.2f} ms/q  (server "
                    f"{cell.server_cpu_s / cell.seconds:4.0%}, emulator "
                    f"{cell.emulator_cpu_s / cell.seconds:4.0%}, load generator "
                    f"{cell.client_cpu_s / cell.seconds:4.0%} of a core)"
                    + (f"  errors {sum(cell.errors.values())}" if cell.errors else ""),
                    flush=True,
                )


async def _check_cell(
    target: Target, opts: Options, c: int, emulator: str, emulator_pid: int, warm: bool
) -> Cell:
    """The home p99 check's cell (ten table cells' time) against `target`.

    A target that has not served yet (`warm` false) first gets a table cell's time of
    the same workload, unmeasured, as the service got its table cells.
    """
    common: dict[str, Any] = {
        "delay_ms": opts.delay_ms,
        "emulator": emulator,
        "emulator_pid": emulator_pid,
        "seed": zlib.crc32(f"home/{c}/check".encode()),
    }
    if not warm:
        await run_cell(
            target, WORKLOADS["home"], c, seconds=opts.seconds, max_queries=10**6, **common
        )
    return await run_cell(
        target,
        WORKLOADS["home"],
        c,
        seconds=opts.seconds * CHECK_CELL_TIME_FACTOR,
        max_queries=opts.max_queries,
        **common,
    )


def _service_client() -> str:
    """The Personalize client the service uses by default (aioboto3 before the setting)."""
    from settings import PersonalizeSettings

    found = PersonalizeSettings.model_fields.get("client")
    return str(found.default) if found is not None else "aioboto3"


def _cache_settings_exist() -> bool:
    from settings import Settings

    return "cache" in Settings.model_fields


def run(opts: Options) -> Report:
    report = Report(
        delay_ms=opts.delay_ms, concurrency=opts.concurrency, service_client=_service_client()
    )
    logs = Path(tempfile.mkdtemp(prefix="bench-logs-"))
    own_service = ("zipf", BATCH_WARM.name)
    plain = [WORKLOADS[name] for name in opts.workloads if name not in own_service]
    zipf = WORKLOADS["zipf"] if "zipf" in opts.workloads else None
    warm = BATCH_WARM if BATCH_WARM.name in opts.workloads else None
    print(
        f"make bench: delay {opts.delay_ms:g} ms, {opts.seconds:g} s or {opts.max_queries:,} "
        f"queries per cell, concurrency {','.join(map(str, opts.concurrency))}, "
        f"{where(logs)}",
        flush=True,
    )
    with ExitStack() as stack:
        emulator, emulator_url = _emulator(logs, opts.delay_ms)
        service, service_url = _service("service", logs, emulator_url, {})
        naive, naive_url = _naive(logs, emulator_url)
        bare, bare_url = _bare("bare", logs, emulator_url)
        stack.enter_context(_running([emulator, service, naive, bare]))
        ours = Target("service", f"{service_url}/graphql", service.proc.pid)
        theirs = Target("naive", f"{naive_url}/graphql", naive.proc.pid)

        print("sanity (same data from both) and floor:", flush=True)
        # Every floor is measured here, one after the other, so that they share the
        # machine's conditions; batch-warm's answer is the same whether cached or not
        # (ids aside), and its cached answer is compared with the naive one further down.
        for name in opts.workloads:
            workload = WORKLOADS[name]
            difference = None
            if workload is not BATCH_WARM:
                difference = same_data(workload, ours, theirs)
            if difference is not None:
                report.mismatches.append(
                    f"{name}: the service and the naive subgraph answer different data: "
                    f"{difference}"
                )
            data = sample(ours.url, workload)["data"]
            report.floors[name] = floor_ms(workload, data, opts.floor_cpu_s)
            if workload is BATCH_WARM:
                same = "compared once cached, below"
            else:
                same = "same data" if difference is None else f"MISMATCH: {difference}"
            print(
                f"  {name:8} {same}; floor {report.floors[name]:.3f} CPU ms/query "
                f"({len(orjson.dumps({'data': data})):,} bytes)",
                flush=True,
            )
        if opts.client_calls:
            report.client_call_ms = uvloop.run(client_cpu_per_call(emulator_url, opts.client_calls))

        uvloop.run(
            _drive(
                report,
                opts,
                plain,
                [ours, theirs],
                emulator_url,
                emulator.proc.pid,
                [emulator, service, naive],
            )
        )
        c8 = _nearest(opts.concurrency, CHECK_CONCURRENCY)
        if "home" in opts.workloads:
            # The check's cell, then the same cell against the bare server: what this
            # machine and stack give a home page with no GraphQL at all, in this run.
            bare_target = Target("bare", f"{bare_url}/graphql", bare.proc.pid)
            difference = same_data(WORKLOADS["home"], ours, bare_target)
            if difference is not None:
                report.mismatches.append(f"home: the service and the bare server: {difference}")
            for target in (ours, bare_target):
                cell = uvloop.run(
                    _check_cell(target, opts, c8, emulator_url, emulator.proc.pid, target is ours)
                )
                _check_alive([emulator, service, naive, bare])
                if target is ours:
                    report.home_check = cell
                else:
                    report.bare_check = cell
                print(
                    f"  home     c={c8:<3} {target.name:7} {cell.queries:6,} queries for the p99 "
                    f"check: p50-d {cell.overhead_ms(0.5):.1f} ms  p90-d "
                    f"{cell.overhead_ms(0.9):.1f} ms  p99-d {cell.overhead_ms(0.99):.1f} ms  CPU "
                    f"{cell.cpu_ms_per_query:.2f} ms/q"
                    + (f"  errors {sum(cell.errors.values())}" if cell.errors else ""),
                    flush=True,
                )
            bare.proc.terminate()
            bare.proc.wait(timeout=15)

        if warm is not None or zipf is not None:
            # Idle from here on: the cached ones take over.
            service.proc.terminate()
            service.proc.wait(timeout=15)

        if warm is not None:
            config, report.warm_use_case = warm_config(logs)
            env = {"SUBGRAPH_CONFIG": str(config), "SUBGRAPH_CACHE__BACKEND": "memory"}
            warmed, warmed_url = _service("service-warm", logs, emulator_url, env)
            with _running([warmed]):
                target = Target("service", f"{warmed_url}/graphql", warmed.proc.pid)
                report.warm_up_calls = uvloop.run(warm_up(target, warm, emulator_url))
                # The service answers from its cache now; the naive one asks Personalize.
                difference = same_data(warm, target, theirs)
                if difference is not None:
                    report.mismatches.append(
                        f"{warm.name}: the service (cached) and the naive subgraph answer "
                        f"different data: {difference}"
                    )
                try:
                    # The floor, measured above, rebuilds exactly this cached answer.
                    warm.floor(sample(target.url, warm)["data"])
                except ValueError as exc:
                    report.mismatches.append(f"{warm.name} (cached): {exc}")
                same = "same data" if difference is None else f"MISMATCH: {difference}"
                print(
                    f"  {warm.name:8} {same} (service answering from its cache, naive asking "
                    f"Personalize); service with {report.warm_use_case}.cache_ttl = "
                    f"{WARM_CACHE_TTL:g} ({config.name}), warmed with {len(warm.repeating)} "
                    f"batches: {report.warm_up_calls:,} Personalize calls",
                    flush=True,
                )
                uvloop.run(
                    _drive(
                        report,
                        opts,
                        [warm],
                        [target],
                        emulator_url,
                        emulator.proc.pid,
                        [emulator, warmed],
                        # Answers from the cache wait for no call: nothing to subtract.
                        delay_ms=0.0,
                    )
                )

        if zipf is not None:
            report.cache_on = _cache_settings_exist()
            env = {"SUBGRAPH_CACHE__BACKEND": "memory"} if report.cache_on else {}
            if not report.cache_on:
                report.notes.append(
                    "settings.Settings has no `cache` section yet: the zipf service ran "
                    "WITHOUT a cache (SUBGRAPH_CACHE__BACKEND=memory would be refused); "
                    "its calls/request is what the cache has to beat."
                )
            cached, cached_url = _service("service-cache", logs, emulator_url, env)
            with _running([cached]):
                target = Target("service", f"{cached_url}/graphql", cached.proc.pid)
                # From a cold cache: only `{ __typename }` ran before the stream.
                uvloop.run(
                    _drive(
                        report,
                        opts,
                        [zipf],
                        [target, theirs],
                        emulator_url,
                        emulator.proc.pid,
                        [emulator, cached, naive],
                    )
                )
                difference = same_data(zipf, target, theirs)
                if difference is not None:
                    report.mismatches.append(
                        f"zipf (cache on, after the stream): the service and the naive subgraph "
                        f"answer different data: {difference}"
                    )
    if opts.json_out is not None:
        opts.json_out.write_bytes(
            orjson.dumps(
                {
                    "delay_ms": opts.delay_ms,
                    "floors_ms": report.floors,
                    "warm_use_case": report.warm_use_case,
                    "warm_up_calls": report.warm_up_calls,
                    "client_cpu_ms_per_call": report.client_call_ms,
                    "cache_on": report.cache_on,
                    "cells": [cell.summary() for cell in report.cells.values()],
                    "home_p99_check_cell": (
                        report.home_check.summary() if report.home_check is not None else None
                    ),
                    "home_p99_bare_cell": (
                        report.bare_check.summary() if report.bare_check is not None else None
                    ),
                    "mismatches": report.mismatches,
                },
                option=orjson.OPT_INDENT_2,
            )
        )
    return report


def parse_args(argv: Sequence[str] | None = None) -> Options:
    parser = argparse.ArgumentParser(
        prog="python -m bench.service", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--delay-ms", type=float, default=20.0, help="emulator delay per call")
    parser.add_argument("--seconds", type=float, default=None, help="time per cell (default 3)")
    parser.add_argument("--concurrency", default="1,8,32", help="comma-separated")
    parser.add_argument("--max-queries", type=int, default=None, help="count per cell (5000)")
    parser.add_argument(
        "--workloads", default=",".join(WORKLOADS), help=f"subset of {','.join(WORKLOADS)}"
    )
    parser.add_argument("--quick", action="store_true", help="a smoke run: 1 s cells")
    parser.add_argument("--json", type=Path, default=None, help="also write every cell here")
    args = parser.parse_args(argv)
    concurrency = sorted({int(c) for c in args.concurrency.split(",") if c.strip()})
    workloads = [w.strip() for w in args.workloads.split(",") if w.strip()]
    unknown = [w for w in workloads if w not in WORKLOADS]
    if unknown or not concurrency or min(concurrency) < 1:
        parser.error(f"bad --workloads {unknown} or --concurrency {args.concurrency!r}")
    return Options(
        delay_ms=args.delay_ms,
        seconds=args.seconds if args.seconds is not None else (1.0 if args.quick else 3.0),
        concurrency=concurrency,
        max_queries=args.max_queries or (1000 if args.quick else 5000),
        workloads=[w for w in WORKLOADS if w in workloads],
        floor_cpu_s=0.1 if args.quick else 0.5,
        client_calls=100 if args.quick else 400,
        json_out=args.json,
    )


def main(argv: Sequence[str] | None = None) -> None:
    opts = parse_args(argv)
    started = time.monotonic()
    try:
        report = run(opts)
    except RuntimeError as exc:
        print(f"\nmake bench: {exc}", file=sys.stderr)
        raise SystemExit(1) from None
    report.print()
    print(f"\n(the whole run took {time.monotonic() - started:.0f} s)")
    if report.mismatches:
        # Numbers about different answers compare nothing; the checks stay advisory.
        raise SystemExit(1)


if __name__ == "__main__":
    main()
