"""The recommender models behind the demo campaigns and recommenders.

* ``Popularity`` — popularity-count: share of events (optionally of some event types)
  per item. Scores sum to 1 over the catalogue.
* ``Sims`` — item-to-item cosine similarity on the binary user x item matrix with a
  shrinkage term, keeping the top-k neighbours per item. Scores are the (shrunk)
  cosine, in [0, 1). When filters leave too few neighbours the list is topped up with
  popular items scored 0.0, as Personalize's SIMS falls back to popular items.
* ``UserPersonalization`` — EASE (a closed-form item-item linear autoencoder) scored
  over the user's history with recent items weighted up. The recipe does not remove
  items the user has already seen, like Personalize's USER_PERSONALIZATION; use a
  filter (``exclude-purchased``) for that. Scores are a softmax over the catalogue of
  the standardised EASE scores, so they sum to 1 like Personalize's.
  Personalized ranking reuses the same model over the caller's input list.

All models work on item indices of the dataset's Items table; ``allowed`` masks from
filters are boolean arrays over that table.
"""

from __future__ import annotations

from collections.abc import Collection

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray

from .data import Interactions

Ranked = tuple[NDArray[np.int64], NDArray[np.float64]]
"""Item indices and their scores, best first."""

RECENCY_SCALE = 10.0
RECENCY_BOOST = 10.0


def top_n(scores: NDArray[np.float64], n: int, allowed: NDArray[np.bool_] | None) -> Ranked:
    """The ``n`` best allowed items, ties broken by item index so answers are stable."""
    candidates = np.flatnonzero(allowed) if allowed is not None else np.arange(scores.shape[0])
    k = min(n, int(candidates.shape[0]))
    if k <= 0:
        return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.float64)
    cand_scores = scores[candidates]
    if k < candidates.shape[0]:
        part = np.argpartition(-cand_scores, k - 1)[:k]
        candidates, cand_scores = candidates[part], cand_scores[part]
    order = np.lexsort((candidates, -cand_scores))
    return candidates[order].astype(np.int64), cand_scores[order].astype(np.float64)


def user_item_matrix(interactions: Interactions, n_items: int) -> sp.csr_matrix:
    """Binary users x items matrix: 1 where the user had any event with the item."""
    n_users = len(interactions.user_ids)
    matrix = sp.csr_matrix(
        (np.ones(len(interactions), dtype=np.float64), (interactions.user, interactions.item)),
        shape=(n_users, n_items),
    )
    matrix.sum_duplicates()
    matrix.data[:] = 1.0
    return matrix


class Popularity:
    """Popularity-count: how often each item appears among the chosen event types."""

    def __init__(
        self,
        interactions: Interactions,
        n_items: int,
        event_types: Collection[str] | None = None,
    ) -> None:
        rows = np.ones(len(interactions), dtype=bool)
        if event_types is not None:
            wanted = {e.lower() for e in event_types}
            codes = [i for i, e in enumerate(interactions.event_types) if e.lower() in wanted]
            rows = np.isin(interactions.event, codes)
        counts = np.bincount(interactions.item[rows], minlength=n_items).astype(np.float64)
        total = counts.sum()
        self.scores: NDArray[np.float64] = counts / total if total > 0 else counts
        # Stable sort: equally popular items keep catalogue order.
        self.order: NDArray[np.int64] = np.argsort(-self.scores, kind="stable").astype(np.int64)

    def recommend(self, n: int, allowed: NDArray[np.bool_] | None = None) -> Ranked:
        order = self.order if allowed is None else self.order[allowed[self.order]]
        chosen = order[:n]
        return chosen, self.scores[chosen]


class Sims:
    """Item-to-item cosine similarity with shrinkage, top-k neighbours per item."""

    def __init__(
        self,
        gram: NDArray[np.float64],
        popularity: Popularity,
        *,
        shrinkage: float = 10.0,
        k: int = 200,
    ) -> None:
        counts = np.diag(gram).copy()
        norms = np.sqrt(np.maximum(counts, 1e-12))
        cosine = gram / (np.outer(norms, norms) + shrinkage)
        np.fill_diagonal(cosine, -np.inf)
        k = min(k, cosine.shape[0] - 1)
        top = np.argpartition(-cosine, k - 1, axis=1)[:, :k]
        top_scores = np.take_along_axis(cosine, top, axis=1)
        order = np.argsort(-top_scores, axis=1, kind="stable")
        self.neighbours: NDArray[np.int64] = np.take_along_axis(top, order, axis=1)
        self.similarity: NDArray[np.float64] = np.take_along_axis(top_scores, order, axis=1)
        self.popularity = popularity

    def related(self, item: int, n: int, allowed: NDArray[np.bool_] | None = None) -> Ranked:
        neigh, sims = self.neighbours[item], self.similarity[item]
        keep = sims > 0.0
        if allowed is not None:
            keep &= allowed[neigh]
        chosen, scores = neigh[keep][:n], sims[keep][:n]
        if chosen.shape[0] >= n:
            return chosen, scores
        # Top up with popular items the neighbour list did not cover.
        fill_ok = (
            np.ones(self.neighbours.shape[0], dtype=bool) if allowed is None else allowed.copy()
        )
        fill_ok[chosen] = False
        fill_ok[item] = False
        extra, _ = self.popularity.recommend(n - chosen.shape[0], fill_ok)
        return (
            np.concatenate([chosen, extra]),
            np.concatenate([scores, np.zeros(extra.shape[0])]),
        )


class UserPersonalization:
    """EASE over recency-weighted histories; cold users get popularity."""

    def __init__(
        self,
        gram: NDArray[np.float64],
        interactions: Interactions,
        popularity: Popularity,
        *,
        l2: float = 300.0,
    ) -> None:
        g = gram.copy()
        g[np.diag_indices_from(g)] += l2
        p = np.linalg.inv(g)
        b = -p / np.diag(p)[None, :]
        np.fill_diagonal(b, 0.0)
        self.weights: NDArray[np.float32] = b.astype(np.float32)
        self.interactions = interactions
        self.popularity = popularity

    def history(self, user: int | None) -> tuple[NDArray[np.int64], NDArray[np.float64]]:
        """Distinct items of the user's history with recency weights (latest = 11)."""
        if user is None:
            return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.float64)
        events = self.interactions.item[self.interactions.history(user)][::-1]
        # np.unique on the reversed history finds each item's most recent position.
        items, first = np.unique(events, return_index=True)
        rank = np.argsort(np.argsort(first, kind="stable"), kind="stable")
        weights = 1.0 + RECENCY_BOOST * np.exp(-rank / RECENCY_SCALE)
        return items.astype(np.int64), weights

    def raw_scores(self, user: int | None) -> NDArray[np.float64] | None:
        """EASE scores over the catalogue, or None for a user without history."""
        items, weights = self.history(user)
        if items.shape[0] == 0:
            return None
        return (weights.astype(np.float32) @ self.weights[items]).astype(np.float64)

    def scores(self, user: int | None) -> NDArray[np.float64]:
        raw = self.raw_scores(user)
        if raw is None:
            return self.popularity.scores
        return _softmax_standardised(raw)

    def recommend(
        self, user: int | None, n: int, allowed: NDArray[np.bool_] | None = None
    ) -> Ranked:
        raw = self.raw_scores(user)
        if raw is None:
            return self.popularity.recommend(n, allowed)
        chosen, _ = top_n(raw, n, allowed)
        return chosen, _softmax_standardised(raw)[chosen]

    def rank(self, user: int | None, items: NDArray[np.int64]) -> Ranked:
        """Order ``items`` for the user; scores are a softmax over ``items`` alone."""
        if items.shape[0] == 0:
            return items, np.empty(0, dtype=np.float64)
        raw = self.raw_scores(user)
        source = self.popularity.scores if raw is None else raw
        sub = source[items]
        order = np.lexsort((np.arange(items.shape[0]), -sub))
        if raw is None:
            total = sub.sum()
            probs = sub / total if total > 0 else np.full(sub.shape, 1.0 / sub.shape[0])
        else:
            probs = _softmax_standardised(sub)
        return items[order], probs[order]


def _softmax_standardised(raw: NDArray[np.float64]) -> NDArray[np.float64]:
    # Standardising first keeps the softmax's sharpness independent of the EASE scale
    # (which grows with history length and weights).
    spread = raw.std()
    z = (raw - raw.max()) / (spread if spread > 0 else 1.0)
    e: NDArray[np.float64] = np.exp(z)
    out: NDArray[np.float64] = e / e.sum()
    return out
