"""Offline evaluation: hold out each sampled user's newest events and score top-k lists.

Kept next to the engine so the CLI (``evaluate``) and the tests measure the same thing
the same way: fit on the remaining events, ask the engine through its public API, and
report Personalize's offline metrics (coverage, MRR@25, NDCG@5/10/25, precision@5/10/25)
for each campaign and recommender, with popularity-count side by side.
``holdout_last_view``/``score_campaign`` are the older single-target helpers.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from .data import Dataset
from .engine import Engine
from .resources import ARN_PREFIX, Deployment, Recipe, Resources


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


# --- Personalize's offline metrics ------------------------------------------------------

METRIC_NAMES: tuple[str, ...] = (
    "coverage",
    "mrr@25",
    "ndcg@5",
    "ndcg@10",
    "ndcg@25",
    "precision@5",
    "precision@10",
    "precision@25",
    "hit@10",
)
"""Personalize's solution-version metrics, plus hit@10 (truth found in the top 10)."""


@dataclass(frozen=True)
class SplitHoldout:
    """Training data plus, per held-out user, their newest events' items as truth.

    ``anchor`` is each user's newest training item: the item related-items recipes
    (SIMS) are asked about, as a product page would.
    """

    train: Dataset
    truth: tuple[tuple[str, frozenset[str]], ...]
    anchor: dict[str, str]


def holdout_newest(
    dataset: Dataset, *, fraction: float = 0.1, n_users: int = 1000, seed: int = 0
) -> SplitHoldout:
    """Hold out the newest ``fraction`` of each sampled user's events (at least one).

    Users need 5+ events so some history remains to fit on. As in Personalize's own
    evaluation, the truth is the set of items in the held-out events.
    """
    inter = dataset.interactions
    counts = np.diff(inter.offsets)
    eligible = np.flatnonzero(counts >= 5)
    rng = np.random.default_rng(seed)
    users = np.sort(rng.choice(eligible, size=min(n_users, eligible.size), replace=False))
    keep = np.ones(len(inter), dtype=bool)
    truth: list[tuple[str, frozenset[str]]] = []
    anchor: dict[str, str] = {}
    ids = dataset.items.ids
    for u in users.tolist():
        start, end = int(inter.offsets[u]), int(inter.offsets[u + 1])
        cut = end - max(1, math.floor((end - start) * fraction))
        keep[cut:end] = False
        user_id = inter.user_ids[u]
        truth.append((user_id, frozenset(ids[i] for i in inter.item[cut:end].tolist())))
        anchor[user_id] = ids[int(inter.item[cut - 1])]
    return SplitHoldout(dataset.with_interactions(inter.select(keep)), tuple(truth), anchor)


def _list_metrics(ranked: list[str], relevant: frozenset[str]) -> dict[str, float]:
    hits = [item in relevant for item in ranked[:25]]
    out: dict[str, float] = {}
    first = next((i for i, h in enumerate(hits) if h), None)
    out["mrr@25"] = 0.0 if first is None else 1.0 / (first + 1)
    for k in (5, 10, 25):
        dcg = sum(1.0 / math.log2(i + 2) for i, h in enumerate(hits[:k]) if h)
        ideal = sum(1.0 / math.log2(i + 2) for i in range(min(k, len(relevant))))
        out[f"ndcg@{k}"] = dcg / ideal if ideal else 0.0
        out[f"precision@{k}"] = sum(hits[:k]) / k
    out["hit@10"] = 1.0 if any(hits[:10]) else 0.0
    return out


def evaluate_deployment(engine: Engine, arn: str, holdout: SplitHoldout) -> dict[str, float]:
    """Mean metrics of one campaign/recommender over the held-out users.

    Personalized-ranking campaigns rank the truth mixed with 100 random catalogue
    items per user (Personalize ranks a caller's list; there is no list to recommend).
    Coverage is the share of the catalogue that appears in any top-25 list.
    """
    described = {d["arn"]: d for d in engine.describe()["deployments"]}[arn]
    member = "campaignArn" if described["type"] == "campaign" else "recommenderArn"
    catalogue = engine.dataset.items.ids
    rng = np.random.default_rng(0)
    totals = dict.fromkeys(METRIC_NAMES, 0.0)
    shown: set[str] = set()
    for user_id, relevant in holdout.truth:
        if described["recipe"] == "personalized-ranking":
            pool = {catalogue[i] for i in rng.integers(0, len(catalogue), 100).tolist()}
            answer = engine.get_personalized_ranking(
                {"campaignArn": arn, "userId": user_id, "inputList": sorted(pool | relevant)}
            )
            ranked = [e["itemId"] for e in answer["personalizedRanking"]][:25]
        else:
            request: dict[str, object] = {member: arn, "numResults": 25}
            if described["requiresItemId"]:
                request["itemId"] = holdout.anchor[user_id]
            if described["requiresUserId"] or not described["requiresItemId"]:
                request["userId"] = user_id
            ranked = [e["itemId"] for e in engine.get_recommendations(request)["itemList"]]
        shown.update(ranked)
        for name, value in _list_metrics(ranked, relevant).items():
            totals[name] += value
    n = len(holdout.truth)
    out = {name: total / n if n else 0.0 for name, total in totals.items()}
    out["coverage"] = len(shown) / len(catalogue) if catalogue else 0.0
    return out


POPULARITY_BASELINE = "(popularity baseline)"


def evaluate_resources(
    dataset: Dataset, resources: Resources, *, n_users: int = 1000, seed: int = 0
) -> dict[str, dict[str, float]]:
    """Refit every resource on the training split and score it; adds the popularity row.

    The baseline is popularity-count over all events of the same training split, so
    every row is compared on the same users and the same truth.
    """
    holdout = holdout_newest(dataset, n_users=n_users, seed=seed)
    baseline = Deployment("__baseline-popularity", "campaign", Recipe.POPULARITY)
    fitted = Engine(
        holdout.train,
        Resources((*resources.deployments, baseline), resources.filters),
    )
    rows = {d.arn: evaluate_deployment(fitted, d.arn, holdout) for d in resources.deployments}
    rows[POPULARITY_BASELINE] = evaluate_deployment(fitted, baseline.arn, holdout)
    return rows


def format_table(rows: dict[str, dict[str, float]]) -> str:
    """A fixed-width table: one row per ARN (its last path segment), one column per metric."""
    names = {arn: arn.rsplit(":", 1)[-1] for arn in rows}
    width = max(len(n) for n in names.values())
    lines = [f"{'resource':<{width}}  " + "  ".join(f"{m:>12}" for m in METRIC_NAMES)]
    for arn, metrics in rows.items():
        cells = "  ".join(f"{metrics[m]:>12.4f}" for m in METRIC_NAMES)
        lines.append(f"{names[arn]:<{width}}  {cells}")
    return "\n".join(lines)
