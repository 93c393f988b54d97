"""A Personalize endpoint behind an HTTP proxy is reached through it, as every AWS SDK
reaches it: the proxy from `HTTP_PROXY` / `HTTPS_PROXY`, except what `NO_PROXY` names.

A real forward proxy (`tests.forward_proxy`) runs on loopback between the subgraph and
the emulator, and says how many connections it carried.
"""

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import Emulator, start_subgraph
from tests.servers import free_port, python, running

QUERY = "{ popularItems(numResults: 3) { source items { itemId } } }"


@pytest.fixture(scope="module")
def proxy(logs: Path) -> Iterator[str]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with running(
        python("-m", "tests.forward_proxy", "--port", str(port)),
        f"{url}/_proxy/stats",
        logs / "forward-proxy.log",
    ):
        yield url


def _carried(proxy: str) -> int:
    stats = httpx.get(f"{proxy}/_proxy/stats", trust_env=False).json()
    return int(stats["connect"]) + int(stats["forwarded"])


def _env(emulator: Emulator, proxy: str, no_proxy: str) -> dict[str, str]:
    return {
        "SUBGRAPH_BACKEND": "personalize",
        "AWS_ENDPOINT_URL_PERSONALIZE_RUNTIME": emulator.url,
        "HTTP_PROXY": proxy,
        "http_proxy": proxy,
        "NO_PROXY": no_proxy,
        "no_proxy": no_proxy,
        "LOG_LEVEL": "WARNING",
    }


def test_calls_go_through_the_proxy_the_environment_names(
    logs: Path, emulator: Emulator, proxy: str
) -> None:
    before = _carried(proxy)
    for subgraph in start_subgraph(logs, "subgraph-proxied", _env(emulator, proxy, "")):
        body = subgraph.query(QUERY)
        assert body["data"]["popularItems"]["source"] == "PERSONALIZE", body
        assert len(body["data"]["popularItems"]["items"]) == 3
    assert _carried(proxy) > before
    log = (logs / "subgraph-proxied.log").read_text()
    assert "a proxy applies to the Personalize endpoint" in log


def test_no_proxy_keeps_the_direct_client(logs: Path, emulator: Emulator, proxy: str) -> None:
    before = _carried(proxy)
    env = _env(emulator, proxy, "127.0.0.1,localhost")
    for subgraph in start_subgraph(logs, "subgraph-no-proxy", env):
        body = subgraph.query(QUERY)
        assert body["data"]["popularItems"]["source"] == "PERSONALIZE", body
    assert _carried(proxy) == before
    assert "a proxy applies" not in (logs / "subgraph-no-proxy.log").read_text()
