"""Shared fixtures: the emulator and subgraphs as real processes on 127.0.0.1."""

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.servers import free_port, python, running


@dataclass
class Emulator:
    """The Personalize Runtime emulator, with its test-control endpoints."""

    url: str

    def reset(self) -> None:
        httpx.post(f"{self.url}/_emulator/reset").raise_for_status()

    def faults(self, **config: Any) -> None:
        httpx.post(f"{self.url}/_emulator/faults", json=config).raise_for_status()

    def calls(self) -> int:
        total: int = httpx.get(f"{self.url}/_emulator/stats").json()["total"]
        return total

    def requests(self) -> list[dict[str, Any]]:
        """The latest calls (500), each with its `arrived` and `answered` times (seconds
        on the emulator's monotonic clock; `answered` missing while it is in flight)."""
        found: list[dict[str, Any]] = httpx.get(f"{self.url}/_emulator/requests").json()["requests"]
        return found


def most_overlapping(calls: list[dict[str, Any]]) -> int:
    """The largest number of `calls` the emulator was answering at the same moment."""
    # An answer at the same instant as an arrival ends first: that is no overlap.
    edges = sorted([(c["arrived"], 1) for c in calls] + [(c["answered"], -1) for c in calls])
    most = now = 0
    for _, step in edges:
        now += step
        most = max(most, now)
    return most


@dataclass
class Subgraph:
    """A running subgraph and a client for its /graphql endpoint."""

    url: str

    def query(self, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        response = httpx.post(
            f"{self.url}/graphql",
            json={"query": query, "variables": variables or {}},
            timeout=30.0,
        )
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body


def start_subgraph(log_dir: Path, name: str, env: dict[str, str]) -> Iterator[Subgraph]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with running(
        python("server.py"),
        f"{url}/healthz",
        log_dir / f"{name}.log",
        env={
            "SUBGRAPH_SERVER__PORT": str(port),
            "LOG_LEVEL": "WARNING",
            # Each server its own event journal: none sends another's batches.
            "SUBGRAPH_EVENTS__JOURNAL_DIR": str(log_dir / f"{name}-events"),
            **env,
        },
    ):
        yield Subgraph(url)


@pytest.fixture(scope="session")
def logs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("logs")


@pytest.fixture(scope="session")
def emulator(logs: Path) -> Iterator[Emulator]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with running(
        # Every call must be signed with the test credentials (tests.servers.AWS_TEST_ENV).
        python(
            "-m",
            "local_personalize",
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--verify-signatures",
        ),
        f"{url}/_emulator/health",
        logs / "emulator.log",
    ):
        yield Emulator(url)


@pytest.fixture
def fresh_emulator(emulator: Emulator) -> Iterator[Emulator]:
    """The emulator with zeroed counters and no faults, cleaned up after the test too."""
    emulator.reset()
    yield emulator
    emulator.reset()


@pytest.fixture(scope="session")
def aws_subgraph(logs: Path, emulator: Emulator) -> Iterator[Subgraph]:
    """The subgraph on the Personalize backend with its default client (`direct`: signed
    calls of our own), pointed at the emulator by the AWS endpoint convention."""
    yield from start_subgraph(
        logs,
        "subgraph-personalize",
        {"SUBGRAPH_BACKEND": "personalize", "AWS_ENDPOINT_URL_PERSONALIZE_RUNTIME": emulator.url},
    )


@pytest.fixture(scope="session")
def local_subgraph(logs: Path) -> Iterator[Subgraph]:
    """The subgraph on the embedded engine, as `make serve` runs it."""
    yield from start_subgraph(logs, "subgraph-local", {"SUBGRAPH_BACKEND": "local"})


def codes(body: dict[str, Any]) -> list[str]:
    return [e["extensions"]["code"] for e in body.get("errors") or []]
