"""`WORKERS=N python server.py` (what `make serve WORKERS=N` and the Docker image run)
serves from N processes."""

import os
import signal
import socket
import time
from pathlib import Path

import httpx

from tests.servers import free_port, python, running


def children(pid: int) -> list[int]:
    found = []
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            lines = status.read_text().splitlines()
        except OSError:
            continue
        if any(line == f"PPid:\t{pid}" for line in lines):
            found.append(int(status.parent.name))
    return found


def cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


def test_workers_env_starts_that_many_processes(logs: Path) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {"SUBGRAPH_SERVER__PORT": str(port), "SUBGRAPH_BACKEND": "local", "WORKERS": "2"}
    log = logs / "subgraph-workers.log"
    with running(python("server.py"), f"{url}/healthz", log, env=env) as proc:
        answers = [
            httpx.post(
                f"{url}/graphql", json={"query": "{ popularItems(numResults: 1) { source } }"}
            ).json()
            for _ in range(6)
        ]
        assert answers == [{"data": {"popularItems": {"source": "LOCAL"}}}] * 6
        # The supervisor spawns the workers (beside multiprocessing's resource tracker).
        workers = [c for c in children(proc.pid) if b"spawn_main" in cmdline(c)]
        assert len(workers) == 2
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=20)
    # SIGTERM to the supervisor stops its workers too.
    assert not [c for c in workers if b"spawn_main" in cmdline(c)]


def listeners(port: int) -> int:
    """Sockets listening on `port` (a worker's socket listens once its worker serves)."""
    count = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if int(fields[1].rsplit(":", 1)[1], 16) == port and fields[3] == "0A":
                count += 1
    return count


def established_connections(pid: int, port: int) -> int:
    """Established TCP connections on local `port` that process `pid` holds open."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = fd.readlink().name
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[len("socket:[") : -1])
    count = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            local_port = int(fields[1].rsplit(":", 1)[1], 16)
            if local_port == port and fields[3] == "01" and fields[9] in inodes:
                count += 1
    return count


def test_keep_alive_connections_opened_at_once_spread_over_the_workers(logs: Path) -> None:
    # A gateway opens its pool in a burst and keeps it: with one shared listening socket,
    # the first worker to wake accepted all of them (and served all their traffic).
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {"SUBGRAPH_SERVER__PORT": str(port), "SUBGRAPH_BACKEND": "local", "WORKERS": "2"}
    with running(
        python("server.py"), f"{url}/healthz", logs / "subgraph-spread.log", env=env
    ) as proc:
        workers = [c for c in children(proc.pid) if b"spawn_main" in cmdline(c)]
        assert len(workers) == 2
        # /healthz answered from the first worker up; wait for the other one to serve.
        deadline = time.monotonic() + 30
        while listeners(port) < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert listeners(port) == 2
        connections = [socket.create_connection(("127.0.0.1", port)) for _ in range(16)]
        try:
            for conn in connections:
                conn.sendall(b"GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n")
            for conn in connections:
                assert conn.recv(4096).startswith(b"HTTP/1.1 200")
            held = {pid: established_connections(pid, port) for pid in workers}
        finally:
            for conn in connections:
                conn.close()
    assert sum(held.values()) == 16
    # Spread by the kernel's hash: all 16 on one of 2 workers has odds of 2 in 65,536.
    assert min(held.values()) >= 1, held


def test_a_worker_that_dies_is_replaced(logs: Path) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {"SUBGRAPH_SERVER__PORT": str(port), "SUBGRAPH_BACKEND": "local", "WORKERS": "2"}
    with running(
        python("server.py"), f"{url}/healthz", logs / "subgraph-replace.log", env=env
    ) as proc:
        first = sorted(c for c in children(proc.pid) if b"spawn_main" in cmdline(c))
        assert len(first) == 2
        os.kill(first[0], signal.SIGKILL)
        deadline = time.monotonic() + 30
        now: list[int] = []
        while time.monotonic() < deadline:
            now = sorted(c for c in children(proc.pid) if b"spawn_main" in cmdline(c))
            if len(now) == 2 and first[0] not in now:
                break
            time.sleep(0.1)
        assert first[1] in now
        assert len(now) == 2
        assert first[0] not in now
        # The dead worker's socket stayed open in the supervisor: its share of new
        # connections waits in the backlog for the replacement instead of being refused.
        for _ in range(8):
            assert httpx.get(f"{url}/healthz", timeout=10).status_code == 200
