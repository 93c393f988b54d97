"""The processes a bench runs against: starting them, knowing when they answer, stopping them.

Every server under test, and the backend they call, is a real process on a free
loopback port, started from the repo root with the tests' AWS environment and its
output in a log of its own. `cpu_seconds` reads what a process (and its children,
for a multi-worker service) has spent, from /proc.
"""

import os
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from tests.servers import AWS_TEST_ENV, REPO_ROOT, free_port

_TICK = os.sysconf("SC_CLK_TCK")


@dataclass
class Target:
    """A GraphQL server under test: its name in the table, /graphql URL and process id."""

    name: str
    url: str
    pid: int


@dataclass
class Proc:
    """A started process: its name in messages, the handle, the URL that says it is up, its log."""

    name: str
    proc: subprocess.Popen[bytes]
    ready_url: str
    log: Path


def start_process(
    name: str, args: list[str], ready_url: str, logs: Path, env: Mapping[str, str]
) -> Proc:
    """Start `python args` from the repo root with the tests' AWS environment and `env`,
    logging to `logs/name.log`; `running` waits until its `ready_url` answers."""
    log = logs / f"{name}.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, *args],
            cwd=REPO_ROOT,
            env={**os.environ, **AWS_TEST_ENV, **env},
            stdout=out,
            stderr=out,
        )
    return Proc(name, proc, ready_url, log)


def _wait_ready(procs: Sequence[Proc], timeout: float = 90.0) -> None:
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


def check_alive(procs: Sequence[Proc]) -> None:
    """Stop the run with the log's tail when a process under test has gone away."""
    for p in procs:
        if p.proc.poll() is not None:
            raise RuntimeError(
                f"{p.name} (pid {p.proc.pid}) exited with {p.proc.returncode} during the run "
                f"(a negative status is a signal from outside); its log {p.log}:\n"
                f"{p.log.read_text()[-3000:]}"
            )


@contextmanager
def running(procs: Sequence[Proc]) -> Iterator[None]:
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


def start_emulator(logs: Path, delay_ms: float) -> tuple[Proc, str]:
    """The Personalize Runtime emulator, answering every call `delay_ms` after it arrived."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    args = ["-m", "local_personalize", "serve", "--host", "127.0.0.1", "--port", str(port)]
    args += ["--delay-ms", f"{delay_ms:g}", "--log-level", "warning"]
    return start_process("emulator", args, f"{url}/_emulator/health", logs, {}), url


def start_ideal_backend(logs: Path, delay_ms: float) -> tuple[Proc, str]:
    """`bench.ideal_backend`: fixed answers exactly `delay_ms` after arrival, no engine."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    args = ["-m", "bench.ideal_backend", "--port", str(port), "--delay-ms", f"{delay_ms:g}"]
    return start_process("ideal-backend", args, f"{url}/_emulator/health", logs, {}), url


def start_service(name: str, logs: Path, emulator: str, env: Mapping[str, str]) -> tuple[Proc, str]:
    """The subgraph as shipped (`server.py`, personalize backend), pointed at `emulator`."""
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
    return start_process(name, ["server.py"], f"{url}/healthz", logs, full_env), url


def start_naive(logs: Path, emulator: str) -> tuple[Proc, str]:
    """`bench.naive_subgraph`: a first Strawberry implementation of the same schema subset."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {"AWS_ENDPOINT_URL_PERSONALIZE_RUNTIME": emulator}
    args = ["-m", "bench.naive_subgraph", "--host", "127.0.0.1", "--port", str(port)]
    return start_process("naive", args, f"{url}/healthz", logs, env), url


def start_bare(name: str, logs: Path, emulator: str, burn_ms: float = 0.0) -> tuple[Proc, str]:
    """`bench.bare_home`: the home page with nothing but HTTP, its 4 calls and orjson."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    args = ["-m", "bench.bare_home", "--port", str(port), "--emulator", emulator]
    args += ["--burn-ms", f"{burn_ms:g}"]
    return start_process(name, args, f"{url}/healthz", logs, {}), url


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
