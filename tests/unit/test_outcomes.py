"""Call outcomes: the labels dashboards know, and a name for every error there is."""

import asyncio

import domain.errors
from backends.outcomes import OUTCOMES, outcome
from domain.errors import CircuitOpen, DeadlineSpent, SubgraphError, UpstreamThrottled


def _errors() -> list[type[SubgraphError]]:
    found: list[type[SubgraphError]] = []
    pending: list[type[SubgraphError]] = [SubgraphError]
    while pending:
        kind = pending.pop()
        found.append(kind)
        pending.extend(kind.__subclasses__())
    return found


def test_calls_are_labelled_as_they_always_were() -> None:
    assert outcome(CircuitOpen("x")) == "circuit_open"
    assert outcome(DeadlineSpent("x")) == "deadline_spent"
    assert outcome(UpstreamThrottled("x")) == "upstream_throttled"
    assert outcome(asyncio.CancelledError()) == "cancelled"
    assert outcome(KeyError("x")) == "internal_error"


def test_every_error_of_the_domain_names_its_own_outcome() -> None:
    ours = [kind for kind in _errors() if kind.__module__ == domain.errors.__name__]
    assert set(ours) == set(OUTCOMES)
    assert len(set(OUTCOMES.values())) == len(OUTCOMES)
