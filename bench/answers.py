"""A server's answers to a bench query: whether one is clean, and whether two say the same.

Numbers about servers that answer differently compare nothing, so before any load the
bench asks each server the same query and compares their `data`; under load it counts
every answer that is not a clean 200 with data, by status or error code.
"""

import random
from typing import Any

import httpx
import orjson

from bench.processes import Target
from bench.workloads import Workload

HEADERS = {"content-type": "application/json", "accept": "application/json"}


def clean(content: bytes) -> bool:
    """A quick yes for the common answer: an object opening with non-null data and with no
    "errors" anywhere in it (then it has no errors key). No means: ask `problems`."""
    return content.startswith(b'{"data":{') and b'"errors"' not in content


def problems(status: int, content: bytes) -> list[str]:
    """Why an answer is not a clean 200 with data: HTTP status or error codes."""
    if status != 200:
        return [f"HTTP {status}"]
    try:
        body = orjson.loads(content)
    except orjson.JSONDecodeError:
        return ["not JSON"]
    found = [
        str((e.get("extensions") or {}).get("code") or "uncoded error")
        for e in body.get("errors") or ()
    ]
    if body.get("data") is None:
        found.append("no data")
    return found


def _normalised(value: Any) -> Any:
    """`data` with every recommendationId blanked: ids are per call, never equal twice."""
    if isinstance(value, dict):
        return {
            k: ("<id>" if k == "recommendationId" and v is not None else _normalised(v))
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [_normalised(v) for v in value]
    return value


def _first_difference(a: Any, b: Any, path: str = "data") -> str:
    if type(a) is not type(b):
        return f"{path}: {type(a).__name__} vs {type(b).__name__}"
    if isinstance(a, dict):
        for key in sorted(set(a) | set(b)):
            if key not in a or key not in b:
                return f"{path}.{key}: present on one side only"
            if a[key] != b[key]:
                return _first_difference(a[key], b[key], f"{path}.{key}")
    if isinstance(a, list):
        if len(a) != len(b):
            return f"{path}: {len(a)} vs {len(b)} entries"
        for n, (x, y) in enumerate(zip(a, b, strict=True)):
            if x != y:
                return _first_difference(x, y, f"{path}[{n}]")
    return f"{path}: {str(a)[:80]} vs {str(b)[:80]}"


def sample(url: str, workload: Workload, seed: int = 2024) -> dict[str, Any]:
    """One answer to the workload's query with fixed variables; raises unless it is clean."""
    response = httpx.post(
        url, content=workload.payload(random.Random(seed)), headers=HEADERS, timeout=60.0
    )
    found = problems(response.status_code, response.content)
    if found:
        raise RuntimeError(f"{workload.name} at {url}: {found}: {response.text[:500]}")
    body: dict[str, Any] = response.json()
    return body


def same_data(workload: Workload, ours: Target, theirs: Target) -> str | None:
    """None when both answer the same `data` for the same query, else what differs."""
    a = _normalised(sample(ours.url, workload)["data"])
    b = _normalised(sample(theirs.url, workload)["data"])
    return None if a == b else _first_difference(a, b)
