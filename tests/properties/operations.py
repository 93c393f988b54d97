"""Operations built from drawn calls, sent to a running subgraph, and judged.

Each call becomes one aliased root field (`popularItems`) or one aliased `_entities`
with a single representation, as a gateway sends it. Arguments go as variables, or
written inline as literals when small (the parser's string escapes are another way in).
"""

import json
import time
from dataclasses import dataclass, field
from typing import Any

import httpx
import orjson
from hypothesis import HealthCheck, Phase, settings

from tests.properties.arguments import OMITTED, Call, EnumValue, Verdict
from tests.properties.graph import Graph

SELECTION = (
    "{ recommendationId source items { itemId score promotionName reasons"
    " item { __typename } metadata { key value } } }"
)
UPSTREAM_REJECTED = "Personalize rejected the request"
# Big values stay variables so that documents keep within the parser's token limit.
_INLINE_MAX_ITEMS = 10
_INLINE_MAX_CHARS = 300


@dataclass
class Tally:
    """What the property tests sent, for the closing note."""

    operations: int = 0
    calls: int = 0
    seconds: float = 0.0
    statuses: dict[int, int] = field(default_factory=dict)


TALLY = Tally()

# How every property here runs against a live subgraph (max_examples is per test).
BOUNDED = settings(
    deadline=None,
    # No shrinking: a failing example is reported as drawn (strategies start small), and
    # a failure costs no more time than a pass.
    phases=[Phase.explicit, Phase.generate],
    derandomize=True,
    database=None,
    print_blob=False,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.large_base_example,
    ],
)


def literal(value: Any) -> str:
    """A GraphQL literal for a JSON-like value (strings escaped like JSON, which GraphQL reads)."""
    if value is None:
        return "null"
    if isinstance(value, EnumValue):
        return str(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list):
        return "[" + ", ".join(literal(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {literal(v)}" for k, v in value.items()) + "}"
    raise TypeError(type(value))


def _small(value: Any) -> bool:
    if isinstance(value, str):
        return len(value) <= _INLINE_MAX_CHARS
    if isinstance(value, list):
        return len(value) <= _INLINE_MAX_ITEMS and all(_small(v) for v in value)
    if isinstance(value, dict):
        return all(_small(v) for v in value.values())
    return True


@dataclass
class Operation:
    """A document, its variables, and where each call's value lands in `data`."""

    query: str
    variables: dict[str, Any]
    paths: list[list[str | int]]


def build(graph: Graph, calls: list[Call], inline: bool) -> Operation:
    declared: list[str] = []
    variables: dict[str, Any] = {}
    roots: list[str] = []
    paths: list[list[str | int]] = []
    for i, call in enumerate(calls):
        alias = f"c{i}"
        rendered = []
        for arg, value in call.args.items():
            if value is OMITTED:
                continue
            if inline and _small(value):
                rendered.append(f"{arg}: {literal(value)}")
            else:
                name = f"{alias}_{arg}"
                declared.append(f"${name}: {call.field.arg_types[arg]}")
                variables[name] = value
                rendered.append(f"{arg}: ${name}")
        args = f"({', '.join(rendered)})" if rendered else ""
        selected = f"{call.field.name}{args} {SELECTION}"
        if call.field.owner is None:
            roots.append(f"{alias}: {selected}")
            paths.append([alias])
            continue
        typename, key = (
            (graph.user_type, graph.user_key)
            if call.field.owner == "user"
            else (graph.item_type, graph.item_key)
        )
        representation = {"__typename": typename, key: call.key}
        if inline and _small(call.key):
            reps = f"[{literal(representation)}]"
        else:
            declared.append(f"${alias}_rep: _Any!")
            variables[f"{alias}_rep"] = representation
            reps = f"[${alias}_rep]"
        fragment = f"... on {typename} {{ f: {selected} }}"
        roots.append(f"{alias}: _entities(representations: {reps}) {{ {fragment} }}")
        paths.append([alias, 0, "f"])
    header = f"query Q({', '.join(declared)})" if declared else "query Q"
    return Operation(f"{header} {{ {' '.join(roots)} }}", variables, paths)


def send(client: httpx.Client, url: str, operation: Operation, calls: int) -> dict[str, Any]:
    """POST the operation; the answer must be a 200 JSON object."""
    started = time.perf_counter()
    response = client.post(url, json={"query": operation.query, "variables": operation.variables})
    TALLY.seconds += time.perf_counter() - started
    TALLY.operations += 1
    TALLY.calls += calls
    TALLY.statuses[response.status_code] = TALLY.statuses.get(response.status_code, 0) + 1
    assert response.status_code == 200, (response.status_code, response.text[:2000])
    assert response.headers["content-type"].startswith("application/json"), response.headers
    body: dict[str, Any] = orjson.loads(response.content)
    assert isinstance(body, dict), body
    return body


def short(value: Any) -> Any:
    """A value with long strings and lists cut, for failure messages."""
    if isinstance(value, str) and len(value) > 40:
        return f"{value[:20]!r}...({len(value)} chars)"
    if isinstance(value, list):
        head = [short(v) for v in value[:4]]
        return [*head, f"...({len(value)} items)"] if len(value) > 4 else head
    if isinstance(value, dict):
        return {k: short(v) for k, v in value.items()}
    return value


def describe(call: Call) -> str:
    args = {k: short(v) for k, v in call.args.items() if v is not OMITTED}
    verdicts = {k: v.name for k, v in call.verdicts.items()}
    return f"{call.field.name}(key={short(call.key)!r}, args={args}) limits say {verdicts or 'OK'}"


def _dig(data: Any, path: list[str | int]) -> Any:
    for step in path:
        if data is None:
            return None
        data = data[step]
    return data


def check(body: dict[str, Any], calls: list[Call], operation: Operation) -> None:
    """Properties (a), (b) and (c) for one response, call by call."""
    errors: list[dict[str, Any]] = body.get("errors") or []
    for error in errors:
        code = (error.get("extensions") or {}).get("code")
        # (a) every error is coded, and none is a masked bug.
        assert code, error
        assert code != "INTERNAL_SERVER_ERROR", (error, [describe(c) for c in calls])
        # (b) the subgraph never sends what Personalize would reject.
        assert not error["message"].startswith(UPSTREAM_REJECTED), (
            error,
            [describe(c) for c in calls],
        )
        assert code == "BAD_USER_INPUT", error
    matched = 0
    for call, path in zip(calls, operation.paths, strict=True):
        mine = [e for e in errors if list(e.get("path") or [])[: len(path)] == path]
        matched += len(mine)
        value = _dig(body.get("data"), path)
        if mine:
            # (c) a refusal names an argument that deserved it (and nothing within limits).
            assert call.refused, f"refused within the limits: {describe(call)}: {mine}"
            assert len(mine) == 1, mine
            message = mine[0]["message"]
            assert any(name in message for name in call.refused), (
                f"the refusal names none of {sorted(call.refused)}: {message!r}; {describe(call)}"
            )
            assert value is None, value
        else:
            assert not call.must_fail, f"accepted beyond the limits: {describe(call)}"
            assert value is not None, (body, path)
            _check_answer(call, value)
    # No error may land outside the calls (the whole operation failing, for instance).
    assert matched == len(errors), errors


def _check_answer(call: Call, value: dict[str, Any]) -> None:
    items = value["items"]
    assert value["source"] == "LOCAL", value["source"]
    n = call.args.get("numResults", OMITTED)
    limit = 25 if n is OMITTED or n is None else n
    if "itemIds" in call.args:
        assert len(items) <= len(set(call.args["itemIds"]))
        assert {i["itemId"] for i in items} <= set(call.args["itemIds"])
    else:
        assert len(items) <= limit
    promotion = call.args.get("promotion", OMITTED)
    names = {i["promotionName"] for i in items} - {None}
    if promotion is OMITTED or promotion is None:
        assert not names, names
    else:
        assert names <= {promotion["name"]}, names
    if call.verdicts:
        # Accepting an EITHER is fine; a BAD would have been caught above.
        assert Verdict.BAD not in call.verdicts.values()
