"""Whether this process should get traffic: /readyz for load balancers and orchestrators.

Ready means the backend is open (the local engine is built; for Personalize, credentials
were resolved and the endpoint accepts a TCP connection) and the process is not
shutting down. The endpoint check is a TCP connect, never a Personalize call (calls are
billed); its answer is kept for `ttl` seconds and concurrent probes share one check.
"""

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol
from urllib.parse import urlsplit

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Verdict:
    """Ready or not, and why not."""

    ready: bool
    reason: str = ""


Check = Callable[[], Awaitable[Verdict]]


class Target(Protocol):
    """Where calls go and with what credentials (`backends.personalize.RuntimeTarget`)."""

    @property
    def endpoint(self) -> str: ...
    @property
    def credentials(self) -> object | None: ...


def tcp_check(endpoint: str, timeout: float) -> Check:
    """A check that the endpoint's host accepts a TCP connection within `timeout`."""
    url = urlsplit(endpoint)
    host = url.hostname or ""
    port = url.port or (443 if url.scheme == "https" else 80)

    async def check() -> Verdict:
        try:
            async with asyncio.timeout(timeout):
                _, writer = await asyncio.open_connection(host, port)
        except (OSError, TimeoutError) as exc:
            return Verdict(False, f"the Personalize endpoint is unreachable ({type(exc).__name__})")
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
        return Verdict(True)

    return check


class Readiness:
    """The process's readiness: not ready until `opened`, and never again once draining."""

    def __init__(self, ttl: float = 5.0) -> None:
        self._ttl = ttl
        self._check: Check | None = None
        self._problem: str | None = "starting"
        self._draining = False
        self._last: Verdict | None = None
        self._checked_at = 0.0
        self._pending: asyncio.Task[Verdict] | None = None

    def opened(self, check: Check | None = None, problem: str | None = None) -> None:
        """The backend is open; `check` (if any) is asked again every `ttl` seconds."""
        self._check = check
        self._problem = problem

    def drain(self) -> None:
        """Shutting down: answer not ready from now on, so load balancers stop sending."""
        self._draining = True

    @property
    def draining(self) -> bool:
        return self._draining

    async def verdict(self) -> Verdict:
        if self._draining:
            return Verdict(False, "shutting down")
        if self._problem is not None:
            return Verdict(False, self._problem)
        if self._check is None:
            return Verdict(True)
        if self._last is not None and time.monotonic() - self._checked_at < self._ttl:
            return self._last
        if self._pending is None:
            self._pending = asyncio.ensure_future(self._run(self._check))
        return await asyncio.shield(self._pending)

    async def _run(self, check: Check) -> Verdict:
        try:
            verdict = await check()
        finally:
            self._pending = None
        if self._last is not None and verdict.ready != self._last.ready:
            log.warning("readiness changed: %s", "ready" if verdict.ready else verdict.reason)
        self._last, self._checked_at = verdict, time.monotonic()
        return verdict


def personalize_check(target: Target, connect_timeout: float) -> tuple[Check | None, str | None]:
    """(check, problem) for the Personalize backend, from what the backend itself resolved."""
    if target.credentials is None:
        return None, "no AWS credentials were found"
    return tcp_check(target.endpoint, connect_timeout), None
