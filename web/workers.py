"""`WORKERS=N` (settings' `workers`): N uvicorn processes, each with its own SO_REUSEPORT socket.

uvicorn's own supervisor hands every worker the same listening socket, and whichever
worker wakes first accepts every connection waiting. A gateway opens its pool of
keep-alive connections in a burst and keeps it, so the burst (and all the traffic it
carries afterwards) stays on one worker, which does nearly all the work. With a socket
per worker, all bound to the port with SO_REUSEPORT, the kernel spreads new connections
over the workers by their address hash (tests/integration/test_workers.py checks that a
burst is spread).

The supervisor binds the N sockets itself, after checking with a plain bind that nobody
holds the port (so a port in use fails at once, in the foreground), and starts each
worker with multiprocessing's spawn. It replaces a worker that dies (after a growing
pause when it keeps dying young), and stops with uvicorn's start-up failure status when a
worker cannot start the application. On SIGTERM, SIGINT or SIGHUP it sends the workers
SIGTERM and waits for their graceful shutdown (uvicorn's `timeout_graceful_shutdown` in
each); a second signal kills them. On the embedded engine it also runs the one engine
process every worker calls (web/engine_process.py): started and answering before the
workers start, restarted if it dies, stopped after them.
"""

import contextlib
import logging
import multiprocessing
import signal
import socket
import sys
import time
from types import FrameType
from typing import TYPE_CHECKING, Any

import uvicorn

from domain.backoff import backoff_ceiling

if TYPE_CHECKING:
    from web.engine_process import EngineProcess

log = logging.getLogger(__name__)

# How often the supervisor looks for a worker that has died.
_WATCH_INTERVAL_S = 0.5
# uvicorn's exit status when the application fails to start.
_STARTUP_FAILURE = 3
# The status of a command refused for a mistake in what it was given (its files).
_USAGE_ERROR = 2
# A worker that dies sooner than this after starting is restarted after a pause that
# doubles each time (up to the cap), not at once.
_QUICK_DEATH_S = 10.0
_BACKOFF_CAP_S = 30.0


def bind_reuseport(host: str, port: int) -> socket.socket:
    """A listening TCP socket on (host, port) that other SO_REUSEPORT sockets may share."""
    sock = socket.socket(_family(host), socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    try:
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    sock.set_inheritable(True)
    return sock


def _family(host: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ":" in host else socket.AF_INET


def _port_is_free(host: str, port: int) -> None:
    # SO_REUSEPORT would let us share the port with another server of the same user,
    # silently splitting its traffic: a plain bind first says whether anyone holds it.
    probe = socket.socket(_family(host), socket.SOCK_STREAM)
    try:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        probe.bind((host, port))
    finally:
        probe.close()


def _serve(config_kwargs: dict[str, Any], sock: socket.socket) -> None:
    # In the worker process (uvicorn.Config applies its log_config here). uvicorn raises
    # the SIGINT it handled again once it has shut down gracefully (a terminal's Ctrl-C
    # reaches every worker): nothing is left to report then.
    server = uvicorn.Server(uvicorn.Config(**config_kwargs))
    with contextlib.suppress(KeyboardInterrupt):
        server.run(sockets=[sock])
    if not server.started:
        sys.exit(_STARTUP_FAILURE)  # what uvicorn.run exits with in this case


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
        engine: "EngineProcess | None" = None,
    ) -> None:
        """`engine`: the embedded engine's process, started before the workers, kept
        running while they run and stopped after them (web/engine_process.py)."""
        if workers < 2:
            raise ValueError("the supervisor is for 2 or more workers")
        self._config = config_kwargs
        self._stop_timeout = stop_timeout
        if port:
            _port_is_free(host, port)
        first = bind_reuseport(host, port)
        port = first.getsockname()[1]  # the one the system chose, for port 0
        self._sockets = [first] + [bind_reuseport(host, port) for _ in range(workers - 1)]
        self.address = (host, port)
        self._context = multiprocessing.get_context("spawn")
        self._processes: list[Any] = [None] * workers
        self._started = [0.0] * workers
        self._quick_deaths = [0] * workers
        self._restart_at = [0.0] * workers
        self._stopping = False
        self.exit_code = 0
        self._engine = engine

    def _start(self, slot: int) -> None:
        process = self._context.Process(
            target=_serve,
            args=(self._config, self._sockets[slot]),
            name=f"worker-{slot}",
        )
        process.start()
        self._processes[slot] = process
        self._started[slot] = time.monotonic()
        log.info("worker started", extra={"worker": slot, "pid": process.pid})

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        if self._stopping:
            # Asked twice: stop now, without waiting for requests in flight.
            for process in self._processes:
                if process is not None and process.is_alive():
                    process.kill()
        self._stopping = True

    def run(self) -> int:
        """Start the workers, keep them running, stop them on SIGTERM, SIGINT or SIGHUP.

        Returns the exit status for the process: 0, or uvicorn's start-up failure status
        when a worker could not start its application.
        """
        for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(signum, self._on_signal)
        host, port = self.address
        shown = f"[{host}]" if ":" in host else host
        log.info("serving on http://%s:%d with %d workers", shown, port, len(self._sockets))
        try:
            if not self._start_engine():
                return self.exit_code
            for slot in range(len(self._sockets)):
                self._start(slot)
            while not self._stopping:
                if self._engine is not None:
                    self._engine.watch()
                for slot, process in enumerate(self._processes):
                    if not self._stopping and not process.is_alive():
                        self._replace(slot, process.exitcode)
                time.sleep(_WATCH_INTERVAL_S)
        finally:
            self._stop()
            if self._engine is not None:
                self._engine.stop()  # last: the workers flush their events into it
        return self.exit_code

    def _start_engine(self) -> bool:
        """Start the engine process, if any, and wait until it answers; False to stop."""
        if self._engine is None:
            return True
        if self._engine.start(lambda: self._stopping):
            return True
        if not self._stopping:  # it failed on its own, not on our signal
            # A mistake in the resources or datasets (the engine's status 2, its one line
            # relayed in the log) is the user's to fix, as with WORKERS=1: status 2 too.
            mistake = self._engine.returncode == _USAGE_ERROR
            self.exit_code = _USAGE_ERROR if mistake else _STARTUP_FAILURE
        return False

    def _replace(self, slot: int, exitcode: int | None) -> None:
        now = time.monotonic()
        if exitcode == _STARTUP_FAILURE:
            # The application cannot start (bad settings, say): another try fails alike.
            log.error("worker could not start the application; stopping", extra={"worker": slot})
            self.exit_code = _STARTUP_FAILURE
            self._stopping = True
            return
        if self._restart_at[slot] == 0.0:
            quick = now - self._started[slot] < _QUICK_DEATH_S
            self._quick_deaths[slot] = self._quick_deaths[slot] + 1 if quick else 0
            deaths = self._quick_deaths[slot]
            pause = backoff_ceiling(deaths + 1, 0.5, _BACKOFF_CAP_S) if quick else 0.0
            self._restart_at[slot] = now + pause
            log.error(
                "worker died; starting another",
                extra={"worker": slot, "exitcode": exitcode, "in_s": round(pause, 1)},
            )
        if now >= self._restart_at[slot]:
            self._restart_at[slot] = 0.0
            self._start(slot)

    def _stop(self) -> None:
        live = [p for p in self._processes if p is not None and p.is_alive()]
        for process in live:
            # SIGTERM, whatever the supervisor got: uvicorn takes a second SIGINT (a
            # terminal's Ctrl-C reaches the workers too) as "quit without finishing".
            process.terminate()
        deadline = time.monotonic() + self._stop_timeout
        for process in live:
            process.join(max(0.0, deadline - time.monotonic()))
            if process.is_alive():
                log.warning("worker did not stop in time; killing it", extra={"pid": process.pid})
                process.kill()
                process.join()
        for sock in self._sockets:
            sock.close()
