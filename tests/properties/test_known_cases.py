"""The smallest requests behind each failure the properties found, one test per rule.

The property tests find these among many draws; here each is written out so that a
failure names the rule it breaks and the fix can be checked on its own.
"""

from typing import Any

import pytest

from tests.properties.conftest import Live

USER_RECS = (
    "query Q($rep: _Any!, $context: [ContextEntry!]) { _entities(representations: [$rep]) {"
    " ... on %s { recommendations(numResults: 1, context: $context) { items { itemId } } } } }"
)


def post(live: Live, query: str, variables: dict[str, Any]) -> dict[str, Any]:
    response = live.client.post(live.url, json={"query": query, "variables": variables})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def user(live: Live, key: Any = "user-0001", **extra: Any) -> dict[str, Any]:
    representation = {"__typename": live.graph.user_type, **extra}
    if key is not ...:
        representation[live.graph.user_key] = key
    return representation


@pytest.mark.parametrize(
    "key",
    [
        "\u0663",  # ARABIC-INDIC DIGIT THREE
        "device\uff11",  # FULLWIDTH DIGIT ONE
        "\u0966x",  # DEVANAGARI DIGIT ZERO
    ],
)
def test_context_keys_outside_ascii_are_refused(live: Live, key: str) -> None:
    """The schema documents keys as [A-Za-z0-9_]; Python's `\\d` also takes other digits.

    Personalize's pattern `[A-Za-z\\d_]+` is a Java regex, whose `\\d` is ASCII only, so
    such a key would be sent and rejected upstream (the embedded engine, using Python's
    `re`, accepts it and hides the problem).
    """
    body = post(
        live,
        USER_RECS % live.graph.user_type,
        {"rep": user(live), "context": [{"key": key, "value": "x"}]},
    )
    errors = body.get("errors") or []
    assert errors, body
    assert errors[0]["extensions"]["code"] == "BAD_USER_INPUT", errors
    assert "context" in errors[0]["message"], errors


@pytest.mark.parametrize(
    ("name", "key"),
    [
        ("missing key", ...),
        ("null key", None),
        ("boolean key", True),
        ("object key", {"a": 1}),
        ("list key", ["user-0001"]),
    ],
)
def test_representations_without_a_usable_key_are_refused(live: Live, name: str, key: Any) -> None:
    """A representation must carry its key as an id; anything else is the caller's error.

    Today a missing key is an INTERNAL_SERVER_ERROR, and a null, boolean or structured key
    is turned into text (`"None"`, `"True"`, `"{'a': 1}"`) and sent to Personalize as the
    userId.
    """
    body = post(live, USER_RECS % live.graph.user_type, {"rep": user(live, key)})
    errors = body.get("errors") or []
    assert errors, (name, body)
    assert errors[0]["extensions"]["code"] == "BAD_USER_INPUT", (name, errors)
