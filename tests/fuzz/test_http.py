"""A bounded fuzz of /graphql as raw HTTP: methods, media types, bodies, query strings.

Every answer must be free of 5xx and of internals (see conftest.LEAKS), and every JSON
error must carry `extensions.code`. Beyond that, each drawn request is classified and its
status checked against the GraphQL-over-HTTP specification:

- a body that is not JSON, not one object, or whose `query`/`variables`/`operationName`/
  `extensions` have the wrong type: 400;
- a POST that is not `application/json`: 415;
- a method other than GET and POST: 405; GET with a mutation: 405;
- a document that does not parse or validate, or variables that do not coerce: 200 with
  `application/json`, or 400 when the client accepts `application/graphql-response+json`;
- an Accept header allowing neither JSON type may also get 406; a very large body 413.

The document is classified here with graphql-core against the live schema, so the
expectation follows whatever the subgraph serves.
"""

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import graphql
import httpx
import pytest
from graphql.execution import get_variable_values
from hypothesis import given
from hypothesis import strategies as st

from tests.conftest import Subgraph
from tests.fuzz.conftest import TALLY, assert_safe, fuzz_settings, media_type

GRAPHQL_RESPONSE = "application/graphql-response+json"
JSON = "application/json"
EXAMPLES = 150
HUGE = 200_000  # bigger than any sensible body limit, far smaller than memory

DOCUMENTS = [
    "{ __typename }",
    "{ popularItems(numResults: 2) { items { itemId } } }",
    "query Q($n: Int) { popularItems(numResults: $n) { source items { itemId score } } }",
    "query Q($u: ID!) { popularItems(userId: $u, numResults: 1) { items { itemId } } }",
    '{ _entities(representations: [{__typename: "User", id: "user-0001"}]) {'
    " ... on User { recommendations(numResults: 2) { items { itemId } } } } }",
    "query Q($r: [_Any!]!) { _entities(representations: $r) { __typename } }",
    "{ _service { sdl } }",
    "{ popularItems(numResults: 100000) { items { itemId } } }",
    "query A { __typename } query B { __typename }",
    "{ nope }",
    '{ popularItems(numResults: "two") { items { itemId } } }',
    "{ popularItems { items }",
    "{",
    "",
    "   ",
    "query",
    "mutation M { __typename }",
    "mutation { popularItems { items { itemId } } }",
    "subscription S { __typename }",
    "query Q { __typename } mutation M { __typename }",
    "{ __schema { queryType { name } } }",
    "fragment F on Query { __typename } { ...F }",
    "fragment F on Query { ...F } { ...F }",
]

VARIABLES = st.one_of(
    st.none(),
    st.none(),
    st.none(),
    st.just({}),
    st.fixed_dictionaries({"n": st.one_of(st.integers(-5, 600), st.text(max_size=3))}),
    st.fixed_dictionaries({"u": st.one_of(st.text(max_size=8), st.integers(), st.none())}),
    st.fixed_dictionaries(
        {"r": st.lists(st.fixed_dictionaries({"__typename": st.sampled_from(["User", "Item"])}))}
    ),
    # Not an object: each of these must be refused with 400.
    st.lists(st.integers(), max_size=2),
    st.text(max_size=5),
    st.integers(),
    st.booleans(),
)

OPERATION_NAMES: st.SearchStrategy[Any] = st.one_of(
    st.none(), st.sampled_from(["Q", "A", "B", "M", "S", "Nope", ""]), st.integers(), st.just([])
)

CONTENT_TYPES = st.sampled_from(
    [
        None,
        *[JSON] * 8,
        f"{JSON}; charset=utf-8",
        f"{JSON};charset=UTF-8",
        f"{JSON}; charset=latin-1",
        GRAPHQL_RESPONSE,
        "application/graphql",
        "text/plain",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
        "application/xml",
        "",
        "json",
        "application/json-patch+json",
    ]
)

ACCEPTS = st.sampled_from(
    [
        None,
        None,
        None,
        JSON,
        JSON,
        GRAPHQL_RESPONSE,
        GRAPHQL_RESPONSE,
        f"{GRAPHQL_RESPONSE}, {JSON};q=0.9",
        f"{JSON}, {GRAPHQL_RESPONSE};q=0.5",
        "*/*",
        "application/*",
        "text/html",
        "text/html, */*;q=0.1",
        "application/xml",
        f"{GRAPHQL_RESPONSE};q=0",
        "garbage;;q=x,",
    ]
)


@dataclass
class Probe:
    """One HTTP request and what the specification allows in answer."""

    method: str
    headers: dict[str, str]
    content: bytes | None = None
    params: dict[str, str] | None = None
    # Why this request is unusual, and the statuses that may answer it.
    kind: str = "valid"
    allowed: set[int] = field(default_factory=set)

    def __repr__(self) -> str:
        content = None if self.content is None else self.content[:300]
        return f"Probe({self.method} {self.params} {self.headers} {content!r} [{self.kind}])"


def _accepted_media(accept: str | None) -> str | None:
    """Which JSON type the client accepts best (a spec-following reading), or None."""
    if accept is None or not accept.strip():
        return JSON
    best: tuple[float, int, str] | None = None
    for part in accept.split(","):
        kind, *params = (p.strip() for p in part.split(";"))
        q = 1.0
        for p in params:
            name, _, value = p.partition("=")
            if name.strip() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        if q <= 0:
            continue
        rank = {GRAPHQL_RESPONSE: 1, JSON: 0, "*/*": 0, "application/*": 0}.get(kind.lower())
        if rank is None:
            continue
        choice = (q, rank, GRAPHQL_RESPONSE if rank else JSON)
        if best is None or choice > best:
            best = choice
    return best[2] if best else None


@dataclass
class Classifier:
    """Classifies a GraphQL request (query, variables, operation) as the spec sees it."""

    schema: graphql.GraphQLSchema

    def document_outcome(self, params: dict[str, Any], method: str) -> str:
        """valid | invalid (a request error) | mutation-over-get | bad-params."""
        query, variables = params.get("query"), params.get("variables")
        name, extensions = params.get("operationName"), params.get("extensions")
        if not isinstance(query, str) or not query.strip():
            return "bad-params"
        if variables is not None and not isinstance(variables, dict):
            return "bad-params"
        if name is not None and not isinstance(name, str):
            return "bad-params"
        if extensions is not None and not isinstance(extensions, dict):
            return "bad-params"
        try:
            document = graphql.parse(query)
        except graphql.GraphQLError:
            return "invalid"
        operation = graphql.get_operation_ast(document, name or None)
        if method == "GET" and operation is not None and operation.operation.value != "query":
            return "mutation-over-get"
        if operation is None:
            return "invalid"
        if graphql.validate(self.schema, document):
            return "invalid"
        coerced = get_variable_values(
            self.schema, operation.variable_definitions or (), variables or {}
        )
        return "invalid" if isinstance(coerced, list) else "valid"

    def allowed(self, outcome: str, accept: str | None) -> set[int]:
        media = _accepted_media(accept)
        if outcome == "bad-params":
            return {400}
        if outcome == "mutation-over-get":
            return {405}
        if outcome == "invalid":
            return {400} if media == GRAPHQL_RESPONSE else {200}
        return {200}


def _json_bytes(value: Any) -> bytes:
    # ensure_ascii keeps lone surrogates as \ud800 escapes, which is valid JSON text.
    return json.dumps(value).encode()


@st.composite
def graphql_params(draw: st.DrawFn) -> dict[str, Any]:
    params: dict[str, Any] = {}
    query = draw(
        st.one_of(
            st.sampled_from(DOCUMENTS),
            st.sampled_from(DOCUMENTS),
            st.text(max_size=30),
            st.none(),
            st.integers(),
            st.lists(st.text(max_size=3), max_size=2),
            st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
        )
    )
    if query is not None or draw(st.booleans()):
        params["query"] = query
    variables = draw(VARIABLES)
    if variables is not None or draw(st.booleans()):
        params["variables"] = variables
    name = draw(OPERATION_NAMES)
    if name is not None:
        params["operationName"] = name
    if draw(st.integers(0, 9)) == 0:
        params["extensions"] = draw(st.one_of(st.just({}), st.integers(), st.text(max_size=3)))
    return params


STRANGE_TEXT = st.text(
    st.one_of(st.characters(), st.sampled_from('\x00\ud800\udfff\ufffe\U0010ffff"\\')),
    max_size=12,
)


@st.composite
def post_bodies(
    draw: st.DrawFn, classifier: Classifier, accept: str | None
) -> tuple[bytes, str, set[int]]:
    """(body, kind, allowed statuses) for a POST whose media type is right."""
    shape = draw(
        st.sampled_from(
            ["graphql", "graphql", "graphql", "not-json", "not-object", "huge", "strange"]
        )
    )
    if shape == "not-json":
        body = draw(
            st.one_of(
                st.binary(max_size=40),
                st.sampled_from([b"", b"{", b'{"query": "{ __typename }"', b"nul", b"\xff\xfe"]),
                st.sampled_from(DOCUMENTS).map(str.encode),
            )
        )
        try:
            json.loads(body)
        except ValueError:
            return body, "not-json", {400}
        shape = "not-object"
    if shape == "not-object":
        value = draw(
            st.one_of(
                st.lists(st.just({"query": "{ __typename }"}), min_size=1, max_size=2),
                st.integers(),
                st.text(max_size=5),
                st.none(),
                st.booleans(),
            )
        )
        return _json_bytes(value), "not-object", {400}
    if shape == "huge":
        filler = draw(st.sampled_from(["a", "é", "\\", '"', "日"]))
        where = draw(st.sampled_from(["query", "variables", "operationName"]))
        params: dict[str, Any] = {"query": "query Q($u: ID) { __typename }"}
        big = filler * HUGE
        params[where] = {"u": big} if where == "variables" else big
        outcome = classifier.document_outcome(params, "POST")
        allowed = {413, 400} | classifier.allowed(outcome, accept)
        return _json_bytes(params), "huge", allowed
    if shape == "strange":
        # Lone surrogates, NUL and non-characters in every string field.
        params = {
            "query": draw(st.sampled_from(["{ __typename }", "query Q($u: ID) { __typename }"])),
            "variables": {"u": draw(STRANGE_TEXT)},
            "operationName": draw(st.one_of(st.none(), STRANGE_TEXT)),
        }
        if draw(st.booleans()):
            params["query"] = draw(STRANGE_TEXT)
        outcome = classifier.document_outcome(params, "POST")
        # JSON with a lone surrogate escape may be refused as unreadable.
        allowed = classifier.allowed(outcome, accept) | {400}
        return _json_bytes(params), "strange", allowed
    params = draw(graphql_params())
    outcome = classifier.document_outcome(params, "POST")
    return _json_bytes(params), f"post {outcome}", classifier.allowed(outcome, accept)


@st.composite
def probes(draw: st.DrawFn, classifier: Classifier) -> Probe:
    method = draw(st.sampled_from(["POST"] * 6 + ["GET"] * 3 + ["PUT", "DELETE", "PATCH"]))
    accept = draw(ACCEPTS)
    headers = {} if accept is None else {"accept": accept}
    refusable = {406} if _accepted_media(accept) is None else set()
    if method not in ("GET", "POST"):
        headers["content-type"] = JSON
        body = _json_bytes({"query": "{ __typename }"})
        return Probe(method, headers, body, kind="method", allowed={405})
    if method == "GET":
        params = draw(graphql_params())
        query: dict[str, str] = {}
        for key, value in params.items():
            if isinstance(value, str):
                query[key] = value
            elif value is not None:
                query[key] = json.dumps(value) if key in ("variables", "extensions") else str(value)
        if "variables" in query and draw(st.integers(0, 4)) == 0:
            query["variables"] = draw(st.sampled_from(["{", "[1]", "nope", "1"]))
        decoded: dict[str, Any] = dict(query)
        for key in ("variables", "extensions"):
            if query.get(key) == "":
                del decoded[key]  # an empty parameter reads as an absent one
            elif key in query:
                try:
                    decoded[key] = json.loads(query[key])
                except ValueError:
                    decoded[key] = ...  # not JSON: a bad parameter
        if "query" not in query and "text/html" in (accept or ""):
            allowed = {200}  # GraphiQL
        else:
            outcome = classifier.document_outcome(decoded, "GET")
            allowed = classifier.allowed(outcome, accept)
        return Probe("GET", headers, params=query, kind="get", allowed=allowed | refusable)
    content_type = draw(CONTENT_TYPES)
    if content_type is not None:
        headers["content-type"] = content_type
    body, kind, allowed = draw(post_bodies(classifier, accept))
    media = (content_type or "").split(";")[0].strip().lower()
    lowered = (content_type or "").lower()
    charset_ok = "charset" not in lowered or "utf-8" in lowered
    if media != JSON or not charset_ok:
        kind, allowed = "media-type", {415}
    return Probe("POST", headers, body, kind=kind, allowed=allowed | refusable)


@pytest.fixture(scope="module")
def classifier(local_subgraph: Subgraph) -> Classifier:
    query = graphql.get_introspection_query(one_of=True)
    body = httpx.post(f"{local_subgraph.url}/graphql", json={"query": query}, timeout=30).json()
    return Classifier(graphql.build_client_schema(body["data"]))


@pytest.fixture(scope="module")
def http() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=30.0) as client:
        yield client


def _check(probe: Probe, response: httpx.Response) -> None:
    body = assert_safe(response, probe)
    # The status the specification asks for.
    assert response.status_code in probe.allowed, (probe, response.status_code, response.text[:500])
    if response.status_code == 200 and "text/html" in response.headers.get("content-type", ""):
        return
    # Everything else, errors included, is JSON in the negotiated media type.
    expected = _accepted_media(probe.headers.get("accept")) or JSON
    assert media_type(response) == expected, (probe, response.headers.get("content-type"))
    assert isinstance(body, dict), (probe, response.text[:500])
    if response.status_code >= 400:
        assert body.get("errors"), (probe, body)
    if response.status_code == 405:
        assert response.headers.get("allow"), (probe, response.headers)


def test_raw_http(local_subgraph: Subgraph, classifier: Classifier, http: httpx.Client) -> None:
    url = f"{local_subgraph.url}/graphql"

    @fuzz_settings(EXAMPLES)
    @given(probe=probes(classifier))
    def run(probe: Probe) -> None:
        started = time.perf_counter()
        response = http.request(
            probe.method, url, headers=probe.headers, content=probe.content, params=probe.params
        )
        TALLY.record("raw http", response, time.perf_counter() - started)
        try:
            _check(probe, response)
        except AssertionError as exc:
            # Collected rather than raised: one run reports every kind of deviation.
            kind = (probe.kind, response.status_code, tuple(sorted(probe.allowed)))
            deviations.setdefault(kind, (probe, str(exc)[:600]))

    deviations: dict[tuple[str, int, tuple[int, ...]], tuple[Probe, str]] = {}
    run()
    report = "\n".join(
        f"{kind} answered {status}, allowed {list(allowed)}: {probe!r}\n    {why}"
        for (kind, status, allowed), (probe, why) in sorted(deviations.items())
    )
    assert not deviations, f"{len(deviations)} kinds of deviation:\n{report}"


# Each of these is a request the fuzz above draws; named here so that a failure says
# which rule of the specification is broken.
NAMED = {
    "invalid JSON -> 400": ("POST", {"content-type": JSON}, b"{", None, {400}),
    "JSON array (batch) -> 400": ("POST", {"content-type": JSON}, b"[{}]", None, {400}),
    "query not a string -> 400": ("POST", {"content-type": JSON}, b'{"query": 5}', None, {400}),
    "variables not an object -> 400": (
        "POST",
        {"content-type": JSON},
        b'{"query": "{ __typename }", "variables": [1]}',
        None,
        {400},
    ),
    "text/plain -> 415": ("POST", {"content-type": "text/plain"}, b"{}", None, {415}),
    "no content type -> 415": ("POST", {}, b'{"query": "{ __typename }"}', None, {400, 415}),
    "PUT -> 405": ("PUT", {"content-type": JSON}, b"{}", None, {405}),
    "GET mutation -> 405": ("GET", {}, None, {"query": "mutation { __typename }"}, {405}),
    "GET without query -> 400": ("GET", {"accept": JSON}, None, {}, {400}),
    "unknown operationName -> 200 json": (
        "POST",
        {"content-type": JSON},
        b'{"query": "query A { __typename }", "operationName": "B"}',
        None,
        {200},
    ),
    "unknown operationName -> 400 graphql-response+json": (
        "POST",
        {"content-type": JSON, "accept": GRAPHQL_RESPONSE},
        b'{"query": "query A { __typename }", "operationName": "B"}',
        None,
        {400},
    ),
    "parse error -> 200 json": ("POST", {"content-type": JSON}, b'{"query": "{"}', None, {200}),
    "parse error -> 400 graphql-response+json": (
        "POST",
        {"content-type": JSON, "accept": GRAPHQL_RESPONSE},
        b'{"query": "{"}',
        None,
        {400},
    ),
    "validation error -> 200 json": (
        "POST",
        {"content-type": JSON},
        b'{"query": "{ nope }"}',
        None,
        {200},
    ),
    "validation error -> 400 graphql-response+json": (
        "POST",
        {"content-type": JSON, "accept": GRAPHQL_RESPONSE},
        b'{"query": "{ nope }"}',
        None,
        {400},
    ),
    "lone surrogate echoed back -> no 5xx": (
        "POST",
        {"content-type": JSON},
        b'{"query": "query Q($r: [_Any!]!) { _entities(representations: $r) '
        b'{ ... on User { id } } }", '
        b'"variables": {"r": [{"__typename": "User", "id": "\\ud800"}]}}',
        None,
        {200, 400},
    ),
    "lone surrogate operationName -> no 5xx": (
        "POST",
        {"content-type": JSON},
        b'{"query": "{ __typename }", "operationName": "\\ud800"}',
        None,
        {200, 400},
    ),
    "huge query string -> 4xx": (
        "POST",
        {"content-type": JSON},
        b'{"query": "' + b"a" * HUGE + b'"}',
        None,
        {200, 400, 413},
    ),
}


@pytest.mark.parametrize("name", list(NAMED))
def test_named_http_cases(name: str, local_subgraph: Subgraph, http: httpx.Client) -> None:
    method, headers, content, params, allowed = NAMED[name]
    probe = Probe(method, headers, content, params, kind=name, allowed=allowed)
    started = time.perf_counter()
    response = http.request(
        method, f"{local_subgraph.url}/graphql", headers=headers, content=content, params=params
    )
    TALLY.record("named http", response, time.perf_counter() - started)
    _check(probe, response)
