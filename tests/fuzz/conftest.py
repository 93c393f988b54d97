"""The fuzz tests' shared pieces: what a response must never contain, and the tally."""

import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import httpx
import orjson
import pytest
from hypothesis import HealthCheck, Phase, settings

# What would show that internals reached a client: tracebacks, source paths, exception
# class names (ours, the standard library's, and those of the libraries underneath).
# Paths must look like paths: Hypothesis also draws strings such as "x.py", which error
# messages may rightly echo.
LEAKS = re.compile(
    r"Traceback|(?:/[\w.-]+)+\.py\b|\b\w+\.py:\d+|/work\b|site-packages|File \"|"
    r"\b(?:Type|Value|Key|Attribute|Index|Runtime|Assertion|Lookup|Unicode\w*|JSONDecode|"
    r"JSONEncode|Name|Recursion|Overflow|ZeroDivision|NotImplemented|OS|Import|Validation)"
    r"Error\b|\bSubgraphError\b|\bInvalidArgument\b|\bUpstream\w+\b|\bPersonalizeError\b|"
    r"\bInvalidOperationTypeError\b|\bCannotGetOperationTypeError\b|\bStrawberry\w*Error\b"
)
JSON_TYPES = ("application/json", "application/graphql-response+json")


@dataclass
class Tally:
    """Cases tried, by suite and outcome, for the closing note."""

    cases: Counter[str] = field(default_factory=Counter)
    outcomes: dict[str, Counter[str]] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)

    def record(self, suite: str, response: httpx.Response, seconds: float) -> None:
        self.cases[suite] += 1
        self.seconds[suite] = self.seconds.get(suite, 0.0) + seconds
        outcome = str(response.status_code)
        if media_type(response) in JSON_TYPES:
            body = orjson.loads(response.content)
            if isinstance(body, dict):
                outcome += " data" if body.get("data") else " errors"
        self.outcomes.setdefault(suite, Counter())[outcome] += 1


TALLY = Tally()


def media_type(response: httpx.Response) -> str:
    header: str = response.headers.get("content-type", "")
    return header.split(";")[0].strip().lower()


def assert_safe(response: httpx.Response, request: Any = None) -> Any:
    """The properties of every answer: no 5xx, no leak, coded JSON errors. Returns the JSON."""
    text = response.text
    assert response.status_code < 500, (request, response.status_code, text[:1000])
    leak = LEAKS.search(text)
    assert leak is None, (request, response.status_code, leak.group(0), text[:1000])
    if media_type(response) not in JSON_TYPES:
        return None
    body = orjson.loads(response.content)
    if isinstance(body, dict) and "errors" in body:
        errors = body["errors"]
        assert isinstance(errors, list), (request, body)
        assert errors, (request, body)
        for error in errors:
            code = (error.get("extensions") or {}).get("code")
            assert isinstance(code, str), (request, error)
            assert code, (request, error)
            assert code != "INTERNAL_SERVER_ERROR", (request, error)
    return body


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not TALLY.cases:
        return
    for suite, count in sorted(TALLY.cases.items()):
        outcomes = ", ".join(f"{k}: {v}" for k, v in sorted(TALLY.outcomes[suite].items()))
        terminalreporter.write_line(
            f"fuzz {suite}: {count} cases, {TALLY.seconds[suite]:.1f} s waiting on the server "
            f"({outcomes})"
        )


def fuzz_settings(examples: int) -> settings:
    """The same `examples` cases on every run (derandomized, no example database), with
    the explicit ones first and no health check: each case is a live HTTP request."""
    return settings(
        max_examples=examples,
        deadline=None,
        derandomize=True,
        database=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
