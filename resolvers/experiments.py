"""A field asked for an experiment in place of a use case (`experiment: HOME_HERO`).

The variant comes from `domain.experiments` (a hash of the experiment, its salt and the
user's id, or the anonymous visitor's sessionId). The field then runs as if the client
had named the variant's use case (and its filter or promotion, when the query gives
none of its own); the answer says which variant it was and the attribution source that
recordEvents should send back. The exposure is counted once the request is built, so a
variant whose call fails (and falls back, as its use case says) still counts.

A disabled experiment answers with its control, counts nothing and attributes nothing
(`experiment` and `attributionSource` are null).
"""

from dataclasses import dataclass
from enum import Enum
from typing import Any, Protocol

from domain.errors import InvalidArgument
from domain.experiments import assign
from resolvers.arguments import check_id, given
from settings import Settings


class ExperimentCounts(Protocol):
    """Where exposures and attributed events are counted (the metrics, in server.py)."""

    def exposed(self, experiment: str, variant: str) -> None: ...

    def attributed(self, source: str, event_type: str) -> None: ...


@dataclass(frozen=True, slots=True)
class ExperimentView:
    """What `ExperimentAssignment` reads: the experiment and the variant answering."""

    name: str
    variant: str


@dataclass(frozen=True, slots=True)
class Assignment:
    """One field's variant, and whether it counts as an exposure."""

    view: ExperimentView
    use_case: str
    # None when the experiment is off: nothing is attributed.
    attribution_source: str | None


class _Chosen:
    """A configured filter chosen by name, read as `resolve_filter` reads the input type."""

    def __init__(self, name: str) -> None:
        setattr(self, name, True)


@dataclass(frozen=True, slots=True)
class _Promotion:
    name: str
    percent_promoted_items: int
    filter: _Chosen


def experiment_name(args: dict[str, Any]) -> str | None:
    """The experiment a field's arguments ask for, checked against `useCase`."""
    chosen = args.get("experiment")
    if not given(chosen):
        return None
    if given(args.get("use_case")):
        raise InvalidArgument("give useCase or experiment, not both")
    return str(chosen.value if isinstance(chosen, Enum) else chosen)


def assignment(settings: Settings, name: str, unit: str | None) -> Assignment:
    """The variant answering `unit` (a userId or sessionId) in experiment `name`."""
    experiment = settings.experiments[name]
    if not experiment.enabled:
        control = experiment.control
        arm = experiment.variants[control]
        return Assignment(ExperimentView(name, control), arm.use_case, None)
    if unit is None:
        raise InvalidArgument(f"experiment {name} needs a userId, or a sessionId when anonymous")
    names = list(experiment.variants)
    weights = [v.weight for v in experiment.variants.values()]
    variant = names[assign(name, experiment.salt, unit, weights)]
    arm = experiment.variants[variant]
    return Assignment(ExperimentView(name, variant), arm.use_case, experiment.source(name, variant))


def variant_arguments(
    settings: Settings, args: dict[str, Any], chosen: Assignment
) -> dict[str, Any]:
    """The field's arguments as the variant's use case takes them."""
    arm = settings.experiments[chosen.view.name].variants[chosen.view.variant]
    out = {**args, "use_case": chosen.use_case}
    if arm.filter is not None and not given(args.get("filter")):
        out["filter"] = _Chosen(arm.filter)
    name, source = arm.promotion, arm.promotion_filter
    if name is not None and source is not None and not given(args.get("promotion")):
        out["promotion"] = _Promotion(name, arm.promotion_percent, _Chosen(source))
    return out


def unit_of(user_id: Any, args: dict[str, Any]) -> str | None:
    """The bucketed id: the user's, else the anonymous visitor's sessionId."""
    if given(user_id):
        return check_id(user_id, "userId")
    session = args.get("session_id")
    return check_id(session, "sessionId") if given(session) else None
