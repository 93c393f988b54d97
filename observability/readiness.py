"""Whether this process should get traffic: /readyz for load balancers and orchestrators.

Ready means what this process controls: the configuration loaded, the backend open
(the local engine built, the Personalize client made) and the process not shutting
down. The Personalize endpoint's reachability is not part of it: every replica shares
the endpoint, and the fallbacks answer while it is down. `tcp_check` is the cheap check
(a TCP connect, never a billed call) that `observability.endpoint` reports in /metrics.
"""

import asyncio
import contextlib
import logging
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
    """The process's readiness: not ready until `opened`, and never again once draining.

    Only what this process controls: its configuration loaded, its backend (engine or
    client) built, not shutting down. The Personalize endpoint's reachability is every
    replica's alike and is not part of it (`observability.endpoint`).
    """

    def __init__(self) -> None:
        self._problem: str | None = "starting"
        self._draining = False

    def opened(self) -> None:
        """The backend is open: ready from now on, until draining."""
        self._problem = None

    def drain(self) -> None:
        """Shutting down: answer not ready from now on, so load balancers stop sending."""
        self._draining = True

    @property
    def draining(self) -> bool:
        return self._draining

    def verdict(self) -> Verdict:
        if self._draining:
            return Verdict(False, "shutting down")
        if self._problem is not None:
            return Verdict(False, self._problem)
        return Verdict(True)


def personalize_check(target: Target, connect_timeout: float) -> Check:
    """The endpoint check for the Personalize backend (a TCP connect to its endpoint)."""
    return tcp_check(target.endpoint, connect_timeout)
