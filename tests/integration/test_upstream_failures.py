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
    # Far beyond the 0.3 s read timeout, so a slow machine cannot blur the two.
    fresh_emulator.faults(delay_ms=5000)
    started = time.perf_counter()
    body = impatient_subgraph.query("{ popularItems { items { itemId } } }")
    elapsed = time.perf_counter() - started
    assert body["data"]["popularItems"] is None
    assert codes(body) == ["UPSTREAM_TIMEOUT"]
    # The read timeout, not the emulator's delay, bounds the wait.
    assert elapsed < 2.5


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


@pytest.fixture(scope="module")
def forged_subgraph(logs: Path, emulator: Emulator) -> Iterator[Subgraph]:
    """A subgraph signing with a secret the emulator does not know for its key."""
    yield from start_subgraph(
        logs,
        "subgraph-forged",
        {
            "SUBGRAPH_BACKEND": "personalize",
            "SUBGRAPH_PERSONALIZE__ENDPOINT_URL": emulator.url,
            "AWS_SECRET_ACCESS_KEY": "not-the-secret",
        },
    )


def test_a_bad_signature_is_refused_and_not_retried(
    forged_subgraph: Subgraph, fresh_emulator: Emulator
) -> None:
    body = forged_subgraph.query("{ popularItems(numResults: 2) { items { itemId } } }")
    assert codes(body) == ["UPSTREAM_UNAVAILABLE"]
    assert fresh_emulator.calls() == 1


@pytest.fixture(scope="module")
def sdk_subgraph(logs: Path, emulator: Emulator) -> Iterator[Subgraph]:
    """The aioboto3 request pipeline instead of the direct client."""
    yield from start_subgraph(
        logs,
        "subgraph-sdk",
        {
            "SUBGRAPH_BACKEND": "personalize",
            "SUBGRAPH_PERSONALIZE__CLIENT": "aioboto3",
            "SUBGRAPH_PERSONALIZE__ENDPOINT_URL": emulator.url,
        },
    )


def test_both_clients_sign_validly_and_answer_alike(
    sdk_subgraph: Subgraph, aws_subgraph: Subgraph, fresh_emulator: Emulator
) -> None:
    query = """{ popularItems(numResults: 3) { source items { itemId score } }
        _entities(representations: [{__typename: "User", id: "user-0008"}]) { ... on User {
          rankedItems(itemIds: ["item-0002", "item-0001"]) { items { itemId } } } } }"""
    sdk, direct = sdk_subgraph.query(query), aws_subgraph.query(query)
    assert "errors" not in sdk, sdk
    assert sdk == direct
    # Four signed calls reached the emulator, which refuses a bad signature with 403.
    assert fresh_emulator.calls() == 4
