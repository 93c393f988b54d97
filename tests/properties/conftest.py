"""A subgraph on loopback for the property tests: the demo configuration, local engine.

One change to the demo: the `userPersonalization` use case returns item metadata, so the
properties also cover its lower numResults limit (50). Everything else is `make serve`.
"""

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.conftest import Subgraph, start_subgraph
from tests.properties.graph import Graph, live_schema, load_graph
from tests.properties.operations import TALLY
from tests.servers import REPO_ROOT

DEMO = REPO_ROOT / "config" / "demo.toml"
_METADATA_CASE = re.compile(r"^\[use_cases\.userPersonalization\]\s*$", re.MULTILINE)


@dataclass
class Live:
    """The running subgraph, an HTTP client for it, and what it serves."""

    url: str
    client: httpx.Client
    graph: Graph


def _config(directory: Path) -> Path:
    text = DEMO.read_text(encoding="utf-8")
    text = _METADATA_CASE.sub(lambda m: f'{m.group(0)}\nmetadata_columns = ["CATEGORY"]', text)
    path = directory / "properties.toml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture(scope="session")
def property_config(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _config(tmp_path_factory.mktemp("properties"))


@pytest.fixture(scope="session")
def property_subgraph(logs: Path, property_config: Path) -> Iterator[Subgraph]:
    env = {"SUBGRAPH_BACKEND": "local", "SUBGRAPH_CONFIG": str(property_config)}
    yield from start_subgraph(logs, "subgraph-properties", env)


@pytest.fixture(scope="session")
def live(property_subgraph: Subgraph, property_config: Path) -> Iterator[Live]:
    url = f"{property_subgraph.url}/graphql"
    with httpx.Client(timeout=30.0) as client:
        yield Live(url, client, load_graph(live_schema(client, url), property_config))


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if TALLY.operations:
        terminalreporter.write_line(
            f"properties: {TALLY.operations} operations ({TALLY.calls} field calls) sent in "
            f"{TALLY.seconds:.1f} s; HTTP statuses {dict(sorted(TALLY.statuses.items()))}"
        )
