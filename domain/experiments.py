"""Deterministic bucketing of users (or anonymous sessions) into an experiment's variants.

Pure: no I/O, no clock, no randomness of its own. A unit (a userId, or a sessionId for
an anonymous visitor) gets a point in [0, 1) from SHA-256 of (experiment, salt, unit);
the variants' weights cut [0, 1) into consecutive intervals, in configuration order,
and the interval holding the point is the variant.

- Sticky: the same (experiment, salt, unit) always gives the same point, in every
  process and on every replica (no state to share).
- Independent: the experiment's name and salt are hashed with the unit, so two
  experiments (or one with a new salt) place the same user at unrelated points.
- Changing the weights moves only the users whose point falls between an old and a new
  boundary. With two variants exactly the share that changed moves: control/treatment
  50/50 -> 60/40 moves the boundary from 0.5 to 0.6, so the users in [0.5, 0.6), 10 %
  of them, go from treatment to control and nobody else changes. With more variants
  every boundary after a changed weight moves by that change; append a new variant at
  the end (or take its share from the last one) to move nobody else.
"""

import hashlib
from collections.abc import Sequence

# Parts of the hashed key are separated by a byte no name or id of ours contains.
_SEPARATOR = b"\x1f"
_SCALE = float(1 << 64)


def bucket_point(experiment: str, salt: str, unit: str) -> float:
    """The unit's point in [0, 1) for this experiment: the first 64 bits of SHA-256."""
    key = _SEPARATOR.join((experiment.encode(), salt.encode(), unit.encode()))
    digest = hashlib.sha256(key).digest()
    return int.from_bytes(digest[:8], "big") / _SCALE


def variant_index(point: float, weights: Sequence[float]) -> int:
    """The index of the variant whose interval holds `point`; weights need not sum to 1.

    Weights are integers or floats, at least one above zero; a zero weight gets nobody.
    """
    total = float(sum(weights))
    if total <= 0 or any(w < 0 for w in weights):
        raise ValueError("weights must be non-negative with a positive sum")
    target = point * total
    edge = 0.0
    last = 0
    for index, weight in enumerate(weights):
        if weight <= 0:
            continue
        last = index
        edge += weight
        if target < edge:
            return index
    # Rounding at the very top of the range: the last variant with a share.
    return last


def assign(experiment: str, salt: str, unit: str, weights: Sequence[float]) -> int:
    """The variant index of `unit` in `experiment`."""
    return variant_index(bucket_point(experiment, salt, unit), weights)
