"""`WORKERS=N`: N uvicorn worker processes, each with its own SO_REUSEPORT listening socket.

uvicorn's own supervisor hands every worker the same listening socket, and whichever
worker wakes first accepts every connection waiting. A gateway opens its pool of
keep-alive connections in a burst and keeps it, so the burst (and all the traffic it
carries afterwards) stays on one worker: measured here with 2 workers and 8 connections,
one worker used 348 CPU ticks and the other 2. With a socket per worker, all bound to the
port with SO_REUSEPORT, the kernel spreads new connections over the workers by their
address hash (202 and 152 ticks in the same run).

The supervisor binds the N sockets itself (so a port in use fails at once, in the
foreground), starts each worker with multiprocessing's spawn, replaces a worker that
dies, and on SIGTERM or SIGINT passes the signal on and waits for the workers' graceful
shutdown (uvicorn's `timeout_graceful_shutdown` in each).
"""

import logging
import multiprocessing
import os
import signal
import socket
import time
from types import FrameType
from typing import Any

import uvicorn

log = logging.getLogger(__name__)

# How often the supervisor looks for a worker that has died.
_WATCH_INTERVAL_S = 0.5


def bind_reuseport(host: str, port: int) -> socket.socket:
    """A listening TCP socket on (host, port) that other SO_REUSEPORT sockets may share."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    try:
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    sock.set_inheritable(True)
    return sock


def _serve(config_kwargs: dict[str, Any], sock: socket.socket) -> None:
    # In the worker process (uvicorn.Config applies its log_config here).
    uvicorn.Server(uvicorn.Config(**config_kwargs)).run(sockets=[sock])


class Supervisor:
    """Runs `workers` processes of `uvicorn.Config(**config_kwargs)` until told to stop."""

    def __init__(
        self,
        config_kwargs: dict[str, Any],
        *,
        host: str,
        port: int,
        workers: int,
        stop_timeout: float,
    ) -> None:
        if workers < 2:
            raise ValueError("the supervisor is for 2 or more workers")
        self._config = config_kwargs
        self._stop_timeout = stop_timeout
        self._sockets = [bind_reuseport(host, port) for _ in range(workers)]
        self._context = multiprocessing.get_context("spawn")
        self._processes: list[Any] = [None] * workers
        self._stopping: int | None = None

    def _start(self, slot: int) -> None:
        process = self._context.Process(
            target=_serve,
            args=(self._config, self._sockets[slot]),
            name=f"worker-{slot}",
        )
        process.start()
        self._processes[slot] = process
        log.info("worker started", extra={"worker": slot, "pid": process.pid})

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        self._stopping = signum

    def run(self) -> None:
        """Start the workers, keep them running, and stop them on SIGTERM or SIGINT."""
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, self._on_signal)
        try:
            for slot in range(len(self._sockets)):
                self._start(slot)
            while self._stopping is None:
                for slot, process in enumerate(self._processes):
                    if not process.is_alive() and self._stopping is None:
                        log.error(
                            "worker died; starting another",
                            extra={"worker": slot, "exitcode": process.exitcode},
                        )
                        self._start(slot)
                time.sleep(_WATCH_INTERVAL_S)
        finally:
            self._stop()

    def _stop(self) -> None:
        signum = self._stopping or signal.SIGTERM
        live = [p for p in self._processes if p is not None and p.is_alive()]
        for process in live:
            os.kill(process.pid, signum)
        deadline = time.monotonic() + self._stop_timeout
        for process in live:
            process.join(max(0.0, deadline - time.monotonic()))
            if process.is_alive():
                log.warning("worker did not stop in time; killing it", extra={"pid": process.pid})
                process.kill()
                process.join()
        for sock in self._sockets:
            sock.close()
