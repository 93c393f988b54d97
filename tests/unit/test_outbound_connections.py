"""The descriptors kept from the client connection cap: every pool the process opens."""

import pytest

from settings import load_settings
from web.connections import outbound_connections


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        # The demo: the embedded engine takes events in-process; no client of its own.
        ({}, 64),
        # Personalize and PutEvents through the AWS clients: 64 + 16 senders.
        ({"SUBGRAPH_BACKEND": "personalize"}, 64 + 16),
        # With the Redis cache's pool (256) and the Redis outbox's client.
        (
            {
                "SUBGRAPH_BACKEND": "personalize",
                "SUBGRAPH_CACHE__BACKEND": "redis",
                "SUBGRAPH_EVENTS__OUTBOX": "redis",
            },
            64 + 16 + 256 + 1,
        ),
        # No cache at all: no Redis pool, whatever the backend says.
        (
            {
                "SUBGRAPH_BACKEND": "personalize",
                "SUBGRAPH_CACHE__BACKEND": "redis",
                "SUBGRAPH_CACHE__ENABLED": "false",
                "SUBGRAPH_PERSONALIZE__MAX_CONCURRENCY": "8",
            },
            8 + 16,
        ),
    ],
)
def test_every_pool_is_counted(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], expected: int
) -> None:
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    assert outbound_connections(load_settings()) == expected
