"""How Personalize's failures reach clients: timeouts, missing resources, no endpoint."""

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from settings import DEMO_CONFIG
from tests.conftest import Emulator, Subgraph, codes, start_subgraph
from tests.servers import free_port

MISSING_ARN = "arn:aws:personalize:us-east-1:000000000000:campaign/does-not-exist"


@pytest.fixture(scope="module")
def impatient_subgraph(logs: Path, emulator: Emulator) -> Iterator[Subgraph]:
    """A subgraph with a 0.3 s read timeout, one attempt, and a use case whose ARN is gone."""
    config = logs / "impatient.toml"
    config.write_text(
        DEMO_CONFIG.read_text()
        + f'\n[use_cases.retired]\narn = "{MISSING_ARN}"\nfield = "popularItems"\ninput = "none"\n'
    )
    yield from start_subgraph(
        logs,
        "subgraph-impatient",
        {
            "SUBGRAPH_CONFIG": str(config),
            "SUBGRAPH_BACKEND": "personalize",
            "SUBGRAPH_PERSONALIZE__ENDPOINT_URL": emulator.url,
            "SUBGRAPH_PERSONALIZE__READ_TIMEOUT": "0.3",
            "SUBGRAPH_PERSONALIZE__MAX_ATTEMPTS": "1",
        },
    )


@pytest.fixture(scope="module")
def stranded_subgraph(logs: Path) -> Iterator[Subgraph]:
    """A subgraph whose Personalize endpoint has nothing listening."""
    yield from start_subgraph(
        logs,
        "subgraph-stranded",
        {
            "SUBGRAPH_BACKEND": "personalize",
            "SUBGRAPH_PERSONALIZE__ENDPOINT_URL": f"http://127.0.0.1:{free_port()}",
            "SUBGRAPH_PERSONALIZE__MAX_ATTEMPTS": "1",
        },
    )


def test_a_slow_upstream_times_out_with_a_code(
    impatient_subgraph: Subgraph, fresh_emulator: Emulator
) -> None:
    fresh_emulator.faults(delay_ms=1500)
    started = time.perf_counter()
    body = impatient_subgraph.query("{ popularItems { items { itemId } } }")
    elapsed = time.perf_counter() - started
    assert body["data"]["popularItems"] is None
    assert codes(body) == ["UPSTREAM_TIMEOUT"]
    # The read timeout, not the emulator's delay, bounds the wait.
    assert elapsed < 1.2


def test_a_missing_resource_is_not_configured(
    impatient_subgraph: Subgraph, fresh_emulator: Emulator
) -> None:
    body = impatient_subgraph.query(
        "{ popularItems(useCase: RETIRED) { items { itemId } } "
        "  ok: popularItems(useCase: BEST_SELLERS, numResults: 1) { items { itemId } } }"
    )
    assert body["data"]["popularItems"] is None
    assert len(body["data"]["ok"]["items"]) == 1
    assert codes(body) == ["NOT_CONFIGURED"]
    assert MISSING_ARN not in str(body)


def test_an_unreachable_upstream_is_unavailable(stranded_subgraph: Subgraph) -> None:
    body = stranded_subgraph.query("{ popularItems { items { itemId } } }")
    assert body["data"]["popularItems"] is None
    assert codes(body) == ["UPSTREAM_UNAVAILABLE"]
    assert "127.0.0.1" not in str(body)
