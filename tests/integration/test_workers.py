"""`WORKERS=N python server.py` (what `make serve WORKERS=N` and the Docker image run)
serves from N processes."""

import signal
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
        # uvicorn's supervisor spawns the workers (beside multiprocessing's resource tracker).
        workers = [c for c in children(proc.pid) if b"spawn_main" in cmdline(c)]
        assert len(workers) == 2
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=20)
    # SIGTERM to the supervisor stops its workers too.
    assert not [c for c in workers if b"spawn_main" in cmdline(c)]
