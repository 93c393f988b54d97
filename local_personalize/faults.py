"""Fault injection for the emulator: what can go wrong with a call, and the draw that decides.

A fault config (``FaultConfig``) gives every call a seeded, reproducible fate: a
lognormal latency with spikes, then either an answer or a throttle, a 5xx, a hang past
the client's read timeout, or a connection dropped mid-response; per-ARN overrides and
match rules refine it. ``FaultConfig.parse`` validates the JSON of ``POST
/_emulator/faults`` (and of ``--faults FILE``). Nothing here touches HTTP: the emulator
turns a fate into a response.
"""

from __future__ import annotations

import math
import random
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import orjson

FaultKind = Literal["throttle", "error", "timeout", "drop"]
FAULT_KINDS: tuple[FaultKind, ...] = ("throttle", "error", "timeout", "drop")
# What the stats count: the random kinds, rule hits, and latency spikes.
FAULT_COUNTERS = (*FAULT_KINDS, "rule", "spike")

# Upper bound for every duration in a config: larger values are a unit mistake, not a test.
MAX_DURATION_MS = 3_600_000.0
# exp(sigma * z) must stay finite; a sigma this wide is no longer a latency distribution.
MAX_SIGMA = 10.0
DEFAULT_HANG_MS = 30_000.0

_ARN = re.compile(r"arn:[^:]+:personalize:[^:]*:[^:]*:(?:campaign|recommender)/.+")


class FaultConfigError(ValueError):
    """A fault config that cannot be used; the message names the offending field."""


@dataclass(frozen=True)
class FaultRule:
    """Answer requests whose body has every ``match`` member equal with error ``error``.

    ``status`` defaults to the error's usual HTTP status (400 for unknown codes).
    """

    match: Mapping[str, Any]
    error: str
    status: int | None = None

    def matches(self, body: Mapping[str, Any]) -> bool:
        return all(body.get(k) == v for k, v in self.match.items())

    def to_json(self) -> dict[str, Any]:
        return {"match": dict(self.match), "error": self.error, "status": self.status}


@dataclass(frozen=True)
class Latency:
    """A lognormal delay (``median_ms``, shape ``sigma``; 0 = fixed) capped at ``max_ms``,
    plus ``spike_ms`` with probability ``spike_rate``."""

    median_ms: float = 0.0
    sigma: float = 0.0
    max_ms: float | None = None
    spike_rate: float = 0.0
    spike_ms: float = 0.0

    def sample(self, z: float, u: float) -> tuple[float, bool]:
        """The delay for normal draw ``z`` and uniform draw ``u``, and whether it spiked."""
        delay = self.median_ms * math.exp(self.sigma * z) if self.median_ms > 0 else 0.0
        if self.max_ms is not None:
            delay = min(delay, self.max_ms)
        spiked = u < self.spike_rate
        return (delay + self.spike_ms if spiked else delay), spiked

    def to_json(self) -> dict[str, Any]:
        return {
            "median_ms": self.median_ms,
            "sigma": self.sigma,
            "max_ms": self.max_ms,
            "spike_rate": self.spike_rate,
            "spike_ms": self.spike_ms,
        }


@dataclass(frozen=True)
class FaultProfile:
    """What can happen to one call: its latency and the probability of each fault kind."""

    latency: Latency = field(default_factory=Latency)
    throttle_rate: float = 0.0
    error_rate: float = 0.0
    timeout_rate: float = 0.0
    drop_rate: float = 0.0
    hang_ms: float = DEFAULT_HANG_MS

    def fault(self, u: float) -> FaultKind | None:
        """The fault for uniform draw ``u``: each kind owns a slice of [0, 1) its rate wide."""
        edge = 0.0
        for kind, rate in zip(FAULT_KINDS, self._rates(), strict=True):
            edge += rate
            if u < edge:
                return kind
        return None

    def _rates(self) -> tuple[float, float, float, float]:
        return (self.throttle_rate, self.error_rate, self.timeout_rate, self.drop_rate)

    def to_json(self) -> dict[str, Any]:
        return {
            "latency": self.latency.to_json(),
            "throttle_rate": self.throttle_rate,
            "error_rate": self.error_rate,
            "timeout_rate": self.timeout_rate,
            "drop_rate": self.drop_rate,
            "hang_ms": self.hang_ms,
        }


PROFILE_KEYS = frozenset(
    {"delay_ms", "latency", "throttle_rate", "error_rate", "timeout_rate", "drop_rate", "hang_ms"}
)
CONFIG_KEYS = PROFILE_KEYS | {"seed", "per_arn", "rules"}
LATENCY_KEYS = frozenset({"median_ms", "sigma", "max_ms", "spike_rate", "spike_ms"})


@dataclass(frozen=True)
class FaultConfig:
    """The whole fault injection setup; ``parse`` reads the JSON of POST /_emulator/faults.

    ``per_arn`` holds complete profiles: each override already merged over ``profile``.
    """

    seed: int = 0
    profile: FaultProfile = field(default_factory=FaultProfile)
    per_arn: Mapping[str, FaultProfile] = field(default_factory=dict)
    rules: tuple[FaultRule, ...] = ()

    @classmethod
    def parse(cls, raw: Any) -> FaultConfig:
        """Validate ``raw`` (decoded JSON); raises ``FaultConfigError`` naming the bad field."""
        obj = _object(raw, "the config", CONFIG_KEYS)
        seed = obj.get("seed", 0)
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise FaultConfigError(f"seed must be an integer, got {seed!r}")
        profile = _profile(obj, FaultProfile(), "")
        per_arn: dict[str, FaultProfile] = {}
        for arn, override in _object(obj.get("per_arn", {}), "per_arn", None).items():
            if not _ARN.fullmatch(arn):
                raise FaultConfigError(
                    f"per_arn key {arn!r} is not a Personalize campaign or recommender ARN"
                )
            where = f"per_arn[{arn!r}]."
            per_arn[arn] = _profile(_object(override, where[:-1], PROFILE_KEYS), profile, where)
        rules = obj.get("rules", [])
        if not isinstance(rules, list):
            raise FaultConfigError("rules must be a list")
        return cls(seed, profile, per_arn, tuple(_rule(r, i) for i, r in enumerate(rules)))

    @classmethod
    def load(cls, path: str | Path) -> FaultConfig:
        """Read and parse a JSON file; raises ``FaultConfigError`` (also for I/O problems)."""
        try:
            raw = orjson.loads(Path(path).read_bytes())
        except OSError as exc:
            raise FaultConfigError(f"cannot read {path}: {exc.strerror or exc}") from exc
        except orjson.JSONDecodeError as exc:
            raise FaultConfigError(f"{path} is not valid JSON: {exc}") from exc
        try:
            return cls.parse(raw)
        except FaultConfigError as exc:
            raise FaultConfigError(f"{path}: {exc}") from exc

    def profile_for(self, body: Mapping[str, Any]) -> FaultProfile:
        """The profile of the ARN a request targets (recommenderArn or campaignArn)."""
        if self.per_arn:
            for key in ("recommenderArn", "campaignArn"):
                arn = body.get(key)
                if isinstance(arn, str) and arn in self.per_arn:
                    return self.per_arn[arn]
        return self.profile

    def rule_for(self, body: Mapping[str, Any]) -> FaultRule | None:
        """The first rule that matches ``body``; rules win over the random faults."""
        return next((r for r in self.rules if r.matches(body)), None)

    def draw(
        self, rng: random.Random, body: Mapping[str, Any]
    ) -> tuple[FaultProfile, float, bool, FaultKind | None]:
        """Draw one call's fate: profile, delay in ms, spike or not, and random fault.

        Every call takes the same three draws whatever its profile, so a seed gives the
        same sequence of fates for the same sequence of calls.
        """
        z, spike_u, fault_u = rng.gauss(0.0, 1.0), rng.random(), rng.random()
        profile = self.profile_for(body)
        delay, spiked = profile.latency.sample(z, spike_u)
        return profile, delay, spiked, profile.fault(fault_u)

    def to_json(self) -> dict[str, Any]:
        return {
            "seed": self.seed,
            **self.profile.to_json(),
            "per_arn": {arn: p.to_json() for arn, p in self.per_arn.items()},
            "rules": [r.to_json() for r in self.rules],
        }


def _object(raw: Any, where: str, allowed: frozenset[str] | None) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise FaultConfigError(f"{where} must be a JSON object")
    if allowed is not None:
        unknown = sorted(set(raw) - allowed)
        if unknown:
            raise FaultConfigError(
                f"unknown field {unknown[0]!r} in {where}; expected some of {sorted(allowed)}"
            )
    return raw


def _number(raw: Any, where: str, high: float) -> float:
    if isinstance(raw, bool) or not isinstance(raw, int | float) or not 0 <= raw <= high:
        bound = f"{high:g}" if high < 1000 else f"{high:.0f}"
        raise FaultConfigError(f"{where} must be a number in [0, {bound}], got {raw!r}")
    return float(raw)


def _rate(raw: Any, where: str) -> float:
    return _number(raw, where, 1.0)


def _ms(raw: Any, where: str) -> float:
    return _number(raw, where, MAX_DURATION_MS)


def _latency(raw: Any, where: str) -> Latency:
    obj = _object(raw, where, LATENCY_KEYS)
    max_ms = obj.get("max_ms")
    latency = Latency(
        median_ms=_ms(obj.get("median_ms", 0.0), f"{where}.median_ms"),
        sigma=_number(obj.get("sigma", 0.0), f"{where}.sigma", MAX_SIGMA),
        max_ms=None if max_ms is None else _ms(max_ms, f"{where}.max_ms"),
        spike_rate=_rate(obj.get("spike_rate", 0.0), f"{where}.spike_rate"),
        spike_ms=_ms(obj.get("spike_ms", 0.0), f"{where}.spike_ms"),
    )
    if latency.max_ms is not None and latency.max_ms < latency.median_ms:
        raise FaultConfigError(f"{where}.max_ms must be >= {where}.median_ms")
    if latency.spike_rate > 0 and latency.spike_ms == 0:
        raise FaultConfigError(f"{where}.spike_rate needs {where}.spike_ms > 0")
    return latency


def _profile(obj: Mapping[str, Any], base: FaultProfile, where: str) -> FaultProfile:
    """``base`` with the profile fields ``obj`` gives replaced (``latency`` as a whole)."""
    changes: dict[str, Any] = {}
    if "delay_ms" in obj and "latency" in obj:
        raise FaultConfigError(f"give {where}delay_ms or {where}latency, not both")
    if "delay_ms" in obj:
        changes["latency"] = Latency(median_ms=_ms(obj["delay_ms"], f"{where}delay_ms"))
    if "latency" in obj:
        changes["latency"] = _latency(obj["latency"], f"{where}latency")
    for name in ("throttle_rate", "error_rate", "timeout_rate", "drop_rate"):
        if name in obj:
            changes[name] = _rate(obj[name], f"{where}{name}")
    if "hang_ms" in obj:
        changes["hang_ms"] = _ms(obj["hang_ms"], f"{where}hang_ms")
    profile = replace(base, **changes)
    total = sum(profile._rates())
    if total > 1.0 + 1e-9:
        label = where.rstrip(".") or "the config"
        raise FaultConfigError(
            f"the fault rates of {label} add up to {total:g}; their sum must be <= 1"
        )
    if profile.timeout_rate > 0 and profile.hang_ms == 0:
        raise FaultConfigError(f"{where}timeout_rate needs {where}hang_ms > 0")
    return profile


def _rule(raw: Any, index: int = 0) -> FaultRule:
    if not isinstance(raw, dict):
        raise FaultConfigError(f"rules[{index}] must be an object")
    match = raw.get("match", {})
    error = raw.get("error")
    if not isinstance(match, dict) or not isinstance(error, str) or not error:
        raise FaultConfigError("a rule needs a 'match' object and an 'error' code")
    status = raw.get("status")
    if status is not None and (
        isinstance(status, bool) or not isinstance(status, int) or not 400 <= status <= 599
    ):
        raise FaultConfigError("a rule's status must be an HTTP error status (400-599)")
    return FaultRule(dict(match), error, status)
