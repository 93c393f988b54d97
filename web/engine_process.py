"""The one engine process behind the workers of `WORKERS` > 1 on the embedded engine.

Each worker is a process of its own; an engine built in each would keep its own events,
so a purchase recorded through one worker would still be recommended by the others. The
supervisor (`web.workers.Supervisor`) instead starts one engine process, the emulator
of `local_personalize` (`python -m local_personalize serve`, so nothing of it is
imported here) built from the same `[local]` settings (seed or resources file), on a
loopback port picked here, and every worker calls it as it would call Personalize
(`backends.engine_client`, through `local.engine_url`).

- Start: the workers start only once the engine answers (`start` waits for its health
  endpoint), so no worker serves before it can answer.
- Watch: an engine that dies is started again on the same port, held for it (after a
  growing pause when it keeps dying young); meanwhile the workers' calls fail fast
  (connection refused), and fallback chains or coded errors answer. The new engine
  starts from its data again: events recorded before are gone, as after any restart.
- Stop: last, after the workers (which flush their queued events into it).

It runs in a process group of its own, so that a terminal's Ctrl-C, which reaches every
process of the foreground group, does not stop it before the workers have finished.
Its stderr is logged line by line through this module's logger, keeping the log format.
"""

import http.client
import importlib.util
import logging
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO

from backends.engine_client import ENGINE_ACCESS_KEY, ENGINE_SECRET_KEY
from domain.backoff import backoff_ceiling
from settings import LocalSettings

log = logging.getLogger(__name__)

# The engine dying sooner than this after starting is restarted after a pause that doubles
# each time (up to the cap), not at once.
_QUICK_DEATH_S = 10.0
_BACKOFF_CAP_S = 30.0
_READY_POLL_S = 0.1
_STOP_TIMEOUT_S = 10.0


def _reserve_port(host: str) -> socket.socket:
    """A port of our own for the engine, held while the supervisor runs.

    Bound with SO_REUSEADDR and never listening, the socket lets the engine (which binds
    with SO_REUSEADDR too) listen on the port, each time it is started, while the system
    gives the port to nobody else: no port-0 bind (the workers' own sockets, outgoing
    connections) picks it, and a plain bind is refused. With no engine listening,
    connections to it are refused at once, so the workers' calls fail fast.
    """
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, 0))
    return sock


def _package_root() -> Path:
    """The directory `python -m local_personalize` must run from (found, not imported)."""
    spec = importlib.util.find_spec("local_personalize")
    if spec is None or spec.origin is None:
        raise RuntimeError("the local_personalize package is not installed beside the subgraph")
    return Path(spec.origin).resolve().parent.parent


def _answers(host: str, port: int) -> bool:
    """Whether the engine's health endpoint answers 200 (http.client: no proxy applies)."""
    conn = http.client.HTTPConnection(host, port, timeout=1.0)
    try:
        conn.request("GET", "/_emulator/health")
        return conn.getresponse().status == 200
    except (OSError, http.client.HTTPException):
        return False
    finally:
        conn.close()


def _relay(stream: IO[bytes], pid: int) -> None:
    """Log each line the engine writes to stderr, in the subgraph's log format."""
    with stream:
        for raw in stream:
            line = raw.decode("utf-8", "replace").rstrip()
            if line:
                log.warning("engine: %s", line, extra={"engine_pid": pid})


class EngineProcess:
    """Starts, watches and stops `python -m local_personalize serve` on a loopback port."""

    def __init__(self, local: LocalSettings, host: str = "127.0.0.1") -> None:
        self._host = host
        self._reserved = _reserve_port(host)
        self._port: int = self._reserved.getsockname()[1]
        # What the workers call (settings' local.engine_url).
        self.url = f"http://{host}:{self._port}"
        source = (
            ["--resources", str(local.resources.resolve())]
            if local.resources is not None
            else ["--seed", str(local.seed)]
        )
        self._args = [
            sys.executable,
            "-m",
            "local_personalize",
            "serve",
            "--host",
            host,
            "--port",
            str(self._port),
            "--log-level",
            "warning",
            # Calls must be signed with the workers' fixed credentials, as on AWS.
            "--verify-signatures",
            *source,
        ]
        self._env = {
            **os.environ,
            "AWS_ACCESS_KEY_ID": ENGINE_ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": ENGINE_SECRET_KEY,
        }
        self._cwd = _package_root()
        self._process: subprocess.Popen[bytes] | None = None
        self._started = 0.0
        self._quick_deaths = 0
        self._restart_at = 0.0

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    @property
    def returncode(self) -> int | None:
        """The engine's exit status once it has exited (2: a mistake in its files)."""
        return self._process.poll() if self._process is not None else None

    def _spawn(self) -> None:
        process = subprocess.Popen(
            self._args,
            cwd=self._cwd,
            env=self._env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            # Out of the terminal's foreground group: Ctrl-C reaches the workers, not it.
            process_group=0,
        )
        assert process.stderr is not None
        threading.Thread(
            target=_relay, args=(process.stderr, process.pid), name="engine-stderr", daemon=True
        ).start()
        self._process = process
        self._started = time.monotonic()
        log.info("engine process started", extra={"pid": process.pid, "url": self.url})

    def start(self, stopping: Callable[[], bool]) -> bool:
        """Start the engine and wait until it answers.

        False when it exited first (its own error is in the log) or `stopping()` turned
        true meanwhile (a signal to the supervisor).
        """
        self._spawn()
        assert self._process is not None
        while not stopping():
            if self._process.poll() is not None:
                log.error(
                    "engine process could not start", extra={"exitcode": self._process.returncode}
                )
                return False
            if _answers(self._host, self._port):
                log.info("engine process ready", extra={"pid": self._process.pid})
                return True
            time.sleep(_READY_POLL_S)
        return False

    def watch(self) -> None:
        """From the supervisor's loop: start another engine if this one has died."""
        process = self._process
        if process is None or process.poll() is None:
            return
        now = time.monotonic()
        if self._restart_at == 0.0:
            quick = now - self._started < _QUICK_DEATH_S
            self._quick_deaths = self._quick_deaths + 1 if quick else 0
            pause = backoff_ceiling(self._quick_deaths + 1, 0.5, _BACKOFF_CAP_S) if quick else 0.0
            self._restart_at = now + pause
            log.error(
                "engine process died; starting another (the workers' fallbacks answer meanwhile)",
                extra={"pid": process.pid, "exitcode": process.returncode, "in_s": round(pause, 1)},
            )
        if now >= self._restart_at:
            self._restart_at = 0.0
            self._spawn()

    def stop(self) -> None:
        """SIGTERM (uvicorn's graceful shutdown), then SIGKILL if it does not end in time."""
        self._reserved.close()
        process = self._process
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(_STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            log.warning(
                "engine process did not stop in time; killing it", extra={"pid": process.pid}
            )
            process.kill()
            process.wait()
