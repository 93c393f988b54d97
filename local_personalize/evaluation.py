"""Offline evaluation: hold out each sampled user's last view and score top-k lists.

Kept next to the engine so the CLI (``evaluate``) and the tests measure the same thing
the same way: fit on the remaining events, ask the engine through its public API, and
report hit rate and NDCG at k for each campaign.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from .data import Dataset
from .engine import Engine
from .resources import ARN_PREFIX


@dataclass(frozen=True)
class Holdout:
    """A training dataset and, per held-out user, the item of their last view."""

    train: Dataset
    targets: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class Score:
    """Hit rate and NDCG at ``k`` over the held-out users."""

    hit_rate: float
    ndcg: float
    k: int
    users: int


def holdout_last_view(dataset: Dataset, n_users: int = 500, seed: int = 0) -> Holdout:
    """Remove each sampled user's last View and every later event (its cart/purchase)."""
    inter = dataset.interactions
    view_code = inter.event_types.index("View")
    counts = np.diff(inter.offsets)
    eligible = np.flatnonzero(counts >= 5)
    rng = np.random.default_rng(seed)
    users = np.sort(rng.choice(eligible, size=min(n_users, eligible.size), replace=False))
    keep = np.ones(len(inter), dtype=bool)
    targets: list[tuple[str, str]] = []
    for u in users.tolist():
        rows = np.arange(inter.offsets[u], inter.offsets[u + 1])
        views = rows[inter.event[rows] == view_code]
        last = int(views[-1])
        keep[rows[rows >= last]] = False
        targets.append((inter.user_ids[u], dataset.items.ids[int(inter.item[last])]))
    return Holdout(dataset.with_interactions(inter.select(keep)), tuple(targets))


def score_campaign(
    engine: Engine, campaign: str, targets: Iterable[tuple[str, str]], k: int = 10
) -> Score:
    """Ask ``campaign/<campaign>`` for each user's top ``k`` and score it against the target."""
    arn = f"{ARN_PREFIX}campaign/{campaign}"
    hits, gain, n = 0, 0.0, 0
    for user_id, item_id in targets:
        answer = engine.get_recommendations(
            {"campaignArn": arn, "userId": user_id, "numResults": k}
        )
        ids = [entry["itemId"] for entry in answer["itemList"]]
        n += 1
        if item_id in ids:
            hits += 1
            gain += 1.0 / math.log2(ids.index(item_id) + 2)
    return Score(hits / n if n else 0.0, gain / n if n else 0.0, k, n)
