"""Real servers on loopback for the tests: processes (start, wait until ready, stop, keep the
log) and, for an app of this process, uvicorn in a thread."""

import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import ExitStack, contextmanager
from pathlib import Path

import httpx
import uvicorn
from starlette.types import ASGIApp

REPO_ROOT = Path(__file__).resolve().parent.parent

# No credentials lookups, no metadata probes: tests never reach AWS.
AWS_TEST_ENV = {
    "AWS_EC2_METADATA_DISABLED": "true",
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def free_ports(count: int) -> list[int]:
    """`count` distinct free ports: every socket is held until all are chosen, so the
    kernel cannot hand out one port twice (as separate `free_port()` calls may)."""
    with ExitStack() as stack:
        socks = [stack.enter_context(socket.socket()) for _ in range(count)]
        for sock in socks:
            sock.bind(("127.0.0.1", 0))
        return [int(sock.getsockname()[1]) for sock in socks]


@contextmanager
def running(
    args: list[str],
    ready_url: str,
    log: Path,
    env: Mapping[str, str] | None = None,
    # Only a broken start waits this long; a loaded machine can be slow to import.
    timeout: float = 180.0,
    headers: Mapping[str, str] | None = None,
    cwd: Path = REPO_ROOT,
) -> Iterator[subprocess.Popen[bytes]]:
    """Start `args` in `cwd`, wait until GET `ready_url` answers 200, and stop it
    afterwards."""
    full_env = {**os.environ, **AWS_TEST_ENV, **(env or {})}
    with log.open("wb") as out:
        proc = subprocess.Popen(args, cwd=cwd, env=full_env, stdout=out, stderr=out)
        try:
            deadline = time.monotonic() + timeout
            while True:
                if proc.poll() is not None:
                    raise RuntimeError(f"{args} exited with {proc.returncode}:\n{log.read_text()}")
                try:
                    if httpx.get(ready_url, timeout=1.0, headers=headers).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{args} not ready after {timeout} s:\n{log.read_text()}")
                time.sleep(0.1)
            yield proc
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def python(*args: str) -> list[str]:
    return [sys.executable, *args]


@contextmanager
def serving_in_thread(app: ASGIApp, name: str = "server") -> Iterator[str]:
    """`app` on uvicorn in a thread of this process, on a free loopback port: its URL."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, f"{name} did not start"
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()
