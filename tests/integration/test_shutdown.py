"""SIGTERM lets requests in flight finish before the process exits."""

import signal
import threading
import time
from pathlib import Path

import httpx

from tests.conftest import Emulator
from tests.servers import free_port, python, running


def test_sigterm_drains_requests_in_flight(logs: Path, fresh_emulator: Emulator) -> None:
    # Every Personalize call takes 0.6 s (within the 1 s read timeout), so the request is
    # surely in flight at SIGTERM.
    fresh_emulator.faults(delay_ms=600)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {
        "SUBGRAPH_SERVER__PORT": str(port),
        "SUBGRAPH_BACKEND": "personalize",
        "SUBGRAPH_PERSONALIZE__ENDPOINT_URL": fresh_emulator.url,
        "LOG_LEVEL": "INFO",
        # uvicorn's own access line format, read below.
        "LOG_FORMAT": "text",
    }
    outcome: dict[str, httpx.Response] = {}

    def ask() -> None:
        outcome["response"] = httpx.post(
            f"{url}/graphql",
            json={"query": "{ popularItems(numResults: 3) { source items { itemId } } }"},
            timeout=30,
        )

    log = logs / "subgraph-shutdown.log"
    with running(python("server.py"), f"{url}/healthz", log, env=env) as proc:
        client = threading.Thread(target=ask)
        client.start()
        deadline = time.monotonic() + 30
        while fresh_emulator.calls() == 0:
            assert time.monotonic() < deadline, "the request never reached Personalize"
            assert client.is_alive(), f"the request ended before its call: {outcome}"
            time.sleep(0.02)
        proc.send_signal(signal.SIGTERM)
        client.join(timeout=30)
        # uvicorn re-raises the signal once drained; server.py turns that into exit 0.
        assert proc.wait(timeout=15) == 0
    response = outcome["response"]
    assert response.status_code == 200
    body = response.json()
    assert body["data"]["popularItems"]["source"] == "PERSONALIZE"
    assert len(body["data"]["popularItems"]["items"]) == 3
    text = log.read_text()
    # The backend was closed after the request finished, and nothing went wrong.
    assert text.index('"POST /graphql HTTP/1.1" 200') < text.index("Application shutdown complete")
    assert "Traceback" not in text
