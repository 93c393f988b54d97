"""Memory stays bounded by the configured budget while clients send large distinct documents.

A real `python server.py` on loopback receives 2,000 distinct documents of about 900 KB
(a query padded with a long comment or with blanks) over a few keep-alive connections;
its resident memory (VmRSS) must stay within the document budget plus the margin the
README documents, over its warmed baseline.
"""

import http.client
import json
import threading
from pathlib import Path

from tests.servers import free_port, python, running

DOCUMENTS = 2_000
CONNECTIONS = 4
PADDING = 900_000
BUDGET = 64 * 1024 * 1024
# README, "Limits and memory": requests in flight (the body, its decoded text and the
# parse of each) and what the allocator keeps around them.
MARGIN = 96 * 1024 * 1024
QUERY = "{ popularItems(numResults: 1) { items { itemId } } }"


def rss(pid: int) -> int:
    """Resident bytes of process `pid`."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


def body(n: int) -> bytes:
    """A distinct ~900 KB document: every fifth padded with a comment (its text is kept
    twice once parsed: the source and the comment's token; too large to be cached here),
    the others with blanks (cached)."""
    padding = "#" + "y" * PADDING if n % 5 == 0 else " " * PADDING
    return json.dumps({"query": f"{QUERY} # {n}\n{padding}"}).encode()


def send(port: int, numbers: range, failures: list[str]) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    try:
        for n in numbers:
            connection.request("POST", "/graphql", body(n), {"content-type": "application/json"})
            response = connection.getresponse()
            answer = response.read()
            if response.status != 200 or b'"item-' not in answer:
                failures.append(f"{n}: {response.status} {answer[:200]!r}")
                return
    finally:
        connection.close()


def send_all(port: int, numbers: range, pid: int, peaks: list[int]) -> None:
    failures: list[str] = []
    step = len(numbers) // CONNECTIONS
    threads = [
        threading.Thread(target=send, args=(port, numbers[i * step : (i + 1) * step], failures))
        for i in range(CONNECTIONS)
    ]
    for thread in threads:
        thread.start()
    while any(thread.is_alive() for thread in threads):
        peaks.append(rss(pid))
        threads[0].join(timeout=0.2)
    for thread in threads:
        thread.join()
    assert not failures, failures


def test_large_distinct_documents_stay_within_the_budget(logs: Path) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {
        "SUBGRAPH_SERVER__PORT": str(port),
        "LOG_LEVEL": "WARNING",
        "SUBGRAPH_LIMITS__MAX_BODY_BYTES": "2000000",
        # Documents padded with blanks are kept, so that the budget bounds them; those
        # with a comment cost twice as much and are not, so each is dropped by its
        # request (the lexer's token cycle held such documents: see README, "Memory").
        "SUBGRAPH_MEMORY__DOCUMENTS_BYTES": str(BUDGET),
        "SUBGRAPH_MEMORY__DOCUMENT_MAX_BYTES": str(PADDING * 3 // 2),
    }
    with running(python("server.py"), f"{url}/readyz", logs / "memory.log", env=env) as proc:
        warm: list[int] = []
        # Warmed: buffers, allocator arenas and the first compiled plans exist.
        send_all(port, range(DOCUMENTS, DOCUMENTS + 8), proc.pid, warm)
        baseline = rss(proc.pid)
        peaks: list[int] = []
        send_all(port, range(DOCUMENTS), proc.pid, peaks)
        peaks.append(rss(proc.pid))
    peak = max(peaks)
    mib = 1024 * 1024
    print(f"baseline {baseline // mib} MiB, peak {peak // mib} MiB, end {peaks[-1] // mib} MiB")
    assert peak <= baseline + BUDGET + MARGIN, (baseline // mib, peak // mib)
