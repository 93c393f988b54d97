"""The recommender models behind the demo campaigns and recommenders.

* ``Popularity`` — popularity-count: share of events (optionally of some event types)
  per item. Scores sum to 1 over the catalogue.
* ``Sims`` — item-to-item cosine similarity on the binary user x item matrix with a
  shrinkage term, keeping the top-k neighbours per item, built from the sparse
  co-occurrence matrix (it scales with interactions, not catalogue squared). Scores
  are the (shrunk) cosine, in [0, 1). When filters leave too few neighbours the list
  is topped up with popular items scored 0.0, as Personalize's SIMS falls back to popular items.
* ``UserPersonalization`` — EASE (a closed-form item-item linear autoencoder) scored
  over the user's history with recent items weighted up. The recipe does not remove
  items the user has already seen, like Personalize's USER_PERSONALIZATION; use a
  filter (``exclude-purchased``) for that. The ``recommended-for-you`` domain recipe
  is this model with the purchases left out automatically (the engine's automatic
  filter, ``Deployment.excluded_event_types``). Scores are a softmax over the catalogue of
  the standardised EASE scores, so they sum to 1 like Personalize's.
  Personalized ranking reuses the same model over the caller's input list.
  A ``sequence`` (the user's item indices, oldest first, real-time events included)
  replaces the training history for one call: only that user's scores are recomputed,
  the fitted weights never change.
  EASE inverts a dense items x items matrix, so above ``ease_max_items`` (default
  5,000; a hyperparameter) the same class scores with sparse item-kNN instead: the
  history's SIMS neighbour lists, weighted by recency — linear in history x k.
* ``TrendingNow`` — items whose interaction count grew most from the previous window
  to the most recent one (windows end at the newest event).

Customers-who-viewed-X (directed co-views on View events) is in ``domain_recipes``.

All models work on item indices of the dataset's Items table; ``allowed`` masks from
filters are boolean arrays over that table.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Collection
from typing import Any

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray

from .data import Interactions

Ranked = tuple[NDArray[np.int64], NDArray[np.float64]]
"""Item indices and their scores, best first."""

RECENCY_SCALE = 10.0
RECENCY_BOOST = 10.0
# Users whose scores a UserPersonalization model keeps (about 32 KB each at 2,000 items:
# raw scores and their softmax).
RECENT_USERS = 256


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


def cooccurrence(matrix: sp.csr_matrix) -> sp.csr_matrix:
    """Items x items co-occurrence counts (sparse); the diagonal holds item counts."""
    gram: sp.csr_matrix = (matrix.T @ matrix).tocsr()
    return gram


SIMS_DISCOUNT = 0.1
"""Default popularity discount of SIMS neighbours (a hyperparameter per resource)."""


class Sims:
    """Item-to-item cosine similarity with shrinkage and a popularity discount, top-k per item.

    The discount divides each neighbour's similarity by its interaction count to the
    power ``popularity_discount``, so best-sellers do not crowd every related list.

    Neighbour lists are padded with -1 (similarity 0) where an item has fewer than k
    co-occurring items, so they stay one rectangular array.
    """

    def __init__(
        self,
        gram: sp.csr_matrix,
        popularity: Popularity,
        *,
        shrinkage: float = 10.0,
        k: int = 200,
        popularity_discount: float = 0.0,
    ) -> None:
        n = gram.shape[0]
        coo = gram.tocoo()
        rows, cols = coo.row.astype(np.int64), coo.col.astype(np.int64)
        norms = np.sqrt(np.maximum(gram.diagonal(), 1e-12))
        sims = coo.data / (norms[rows] * norms[cols] + shrinkage)
        if popularity_discount > 0.0:
            sims = sims * np.power(gram.diagonal()[cols] + 1.0, -popularity_discount)
        off = rows != cols
        rows, cols, sims = rows[off], cols[off], sims[off]
        # One global sort by (row, -similarity, column) ranks every row's entries at
        # once; no per-item Python loop, so a million-item catalogue stays vectorised.
        order = np.lexsort((cols, -sims, rows))
        rows, cols, sims = rows[order], cols[order], sims[order]
        starts = np.searchsorted(rows, np.arange(n))
        rank = np.arange(rows.shape[0]) - starts[rows]
        k = max(1, min(k, n - 1))
        keep = rank < k
        self.neighbours: NDArray[np.int64] = np.full((n, k), -1, dtype=np.int64)
        self.similarity: NDArray[np.float64] = np.zeros((n, k), dtype=np.float64)
        self.neighbours[rows[keep], rank[keep]] = cols[keep]
        self.similarity[rows[keep], rank[keep]] = sims[keep]
        self.popularity = popularity

    def related(self, item: int, n: int, allowed: NDArray[np.bool_] | None = None) -> Ranked:
        return related_then_popular(
            self.neighbours[item], self.similarity[item], item, n, allowed, self.popularity
        )


def related_then_popular(
    neighbours: NDArray[np.int64],
    scores: NDArray[np.float64],
    item: int,
    n: int,
    allowed: NDArray[np.bool_] | None,
    popularity: Popularity,
) -> Ranked:
    """An item's neighbour list (padded with -1, score 0), best first, topped up with
    popular items it did not cover, scored 0.0, so a list is never short while the
    catalogue has allowed items."""
    keep = scores > 0.0
    if allowed is not None:
        # Padding (-1) is already out by its score; the index only has to be valid.
        keep &= allowed[np.maximum(neighbours, 0)]
    chosen, kept = neighbours[keep][:n], scores[keep][:n]
    if chosen.shape[0] >= n:
        return chosen, kept
    fill_ok = np.ones(popularity.scores.shape[0], dtype=bool) if allowed is None else allowed.copy()
    fill_ok[chosen] = False
    fill_ok[item] = False
    extra, _ = popularity.recommend(n - chosen.shape[0], fill_ok)
    return np.concatenate([chosen, extra]), np.concatenate([kept, np.zeros(extra.shape[0])])


EASE_MAX_ITEMS = 5_000
"""Above this many items EASE's dense inverse is too slow (cubic) and too big (square)."""


class UserPersonalization:
    """EASE (or sparse item-kNN for big catalogues) over recency-weighted histories.

    Cold users get popularity.
    """

    def __init__(
        self,
        gram: sp.csr_matrix,
        interactions: Interactions,
        popularity: Popularity,
        *,
        l2: float = 300.0,
        ease_max_items: int = EASE_MAX_ITEMS,
        neighbours: Sims | None = None,
    ) -> None:
        self.interactions = interactions
        self.popularity = popularity
        self._recent: OrderedDict[
            tuple[int | None, bytes | None], list[NDArray[np.float64] | None]
        ] = OrderedDict()
        n = gram.shape[0]
        self.weights: NDArray[np.float32] | None = None
        self.knn: Sims | None = None
        if n <= ease_max_items:
            g = np.asarray(gram.toarray(), dtype=np.float64)
            g[np.diag_indices_from(g)] += l2
            p = np.linalg.inv(g)
            b = -p / np.diag(p)[None, :]
            np.fill_diagonal(b, 0.0)
            self.weights = b.astype(np.float32)
        else:
            self.knn = neighbours if neighbours is not None else Sims(gram, popularity, k=100)
            # A prior far below any co-occurrence score orders the items no neighbour
            # reaches by popularity instead of by catalogue position.
            top = float(popularity.scores.max()) or 1.0
            self._prior = 1e-6 * popularity.scores / top

    @property
    def method(self) -> str:
        """``ease`` or ``item-knn``: which scorer the catalogue size selected."""
        return "ease" if self.weights is not None else "item-knn"

    def history(
        self, user: int | None, *, sequence: NDArray[np.int64] | None = None
    ) -> tuple[NDArray[np.int64], NDArray[np.float64]]:
        """Distinct items of the user's history with recency weights (latest = 11).

        ``sequence`` (item indices, oldest first; -1 for items the model does not know)
        replaces the user's training history.
        """
        events: NDArray[np.integer[Any]]
        if sequence is not None:
            events = sequence[sequence >= 0][::-1]
        elif user is None:
            return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.float64)
        else:
            events = self.interactions.item[self.interactions.history(user)][::-1]
        # np.unique on the reversed history finds each item's most recent position.
        items, first = np.unique(events, return_index=True)
        rank = np.argsort(np.argsort(first, kind="stable"), kind="stable")
        weights = 1.0 + RECENCY_BOOST * np.exp(-rank / RECENCY_SCALE)
        return items.astype(np.int64), weights

    def raw_scores(
        self, user: int | None, *, sequence: NDArray[np.int64] | None = None
    ) -> NDArray[np.float64] | None:
        """EASE scores over the catalogue (read-only), or None for a user without history."""
        return self._recent_entry(user, sequence)[0]

    def _recent_entry(
        self, user: int | None, sequence: NDArray[np.int64] | None
    ) -> list[NDArray[np.float64] | None]:
        """[raw scores, their softmax once asked for] of this user and history.

        A page asks one model about one user several times (carousels, a ranking), each
        call on its own: the latest users' scores are kept, keyed by all they depend on
        (the model's weights are fixed once fitted), as read-only arrays.
        """
        key = (user, None if sequence is None else sequence.tobytes())
        entry = self._recent.get(key)
        if entry is not None:
            self._recent.move_to_end(key)
            return entry
        raw = self._raw_scores(user, sequence)
        if raw is not None:
            raw.setflags(write=False)
        entry = [raw, None]
        self._recent[key] = entry
        if len(self._recent) > RECENT_USERS:
            self._recent.popitem(last=False)
        return entry

    @staticmethod
    def _probabilities(entry: list[NDArray[np.float64] | None]) -> NDArray[np.float64] | None:
        """The softmax of an entry's raw scores over the whole catalogue, kept in it."""
        raw, probabilities = entry
        if raw is not None and probabilities is None:
            probabilities = _softmax_standardised(raw)
            probabilities.setflags(write=False)
            entry[1] = probabilities
        return probabilities

    def _raw_scores(
        self, user: int | None, sequence: NDArray[np.int64] | None
    ) -> NDArray[np.float64] | None:
        items, weights = self.history(user, sequence=sequence)
        if items.shape[0] == 0:
            return None
        if self.weights is not None:
            return (weights.astype(np.float32) @ self.weights[items]).astype(np.float64)
        assert self.knn is not None
        neigh = self.knn.neighbours[items]
        contrib = self.knn.similarity[items] * weights[:, None]
        valid = neigh >= 0
        scores = np.bincount(neigh[valid], weights=contrib[valid], minlength=self._prior.shape[0])
        out: NDArray[np.float64] = scores + self._prior
        return out

    def scores(
        self, user: int | None, *, sequence: NDArray[np.int64] | None = None
    ) -> NDArray[np.float64]:
        probabilities = self._probabilities(self._recent_entry(user, sequence))
        return self.popularity.scores if probabilities is None else probabilities

    def recommend(
        self,
        user: int | None,
        n: int,
        allowed: NDArray[np.bool_] | None = None,
        *,
        sequence: NDArray[np.int64] | None = None,
    ) -> Ranked:
        entry = self._recent_entry(user, sequence)
        raw, probabilities = entry[0], self._probabilities(entry)
        if raw is None or probabilities is None:
            return self.popularity.recommend(n, allowed)
        chosen, _ = top_n(raw, n, allowed)
        return chosen, probabilities[chosen]

    def rank(
        self,
        user: int | None,
        items: NDArray[np.int64],
        *,
        sequence: NDArray[np.int64] | None = None,
    ) -> Ranked:
        """Order ``items`` for the user; scores are a softmax over ``items`` alone."""
        if items.shape[0] == 0:
            return items, np.empty(0, dtype=np.float64)
        raw = self.raw_scores(user, sequence=sequence)
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


class TrendingNow:
    """Items gaining interactions fastest: recent-window count minus previous-window count.

    Both windows end relative to the newest event in the data (not the wall clock), so
    the answer is reproducible. Scores are each rising item's share of the total rise;
    items that did not rise follow by recent count with score 0.0, so a list is never
    short while the catalogue has allowed items.
    """

    def __init__(self, interactions: Interactions, n_items: int, *, window_days: float = 7.0):
        window = int(window_days * 86_400)
        now = int(interactions.timestamp.max()) if len(interactions) else 0
        ts = interactions.timestamp
        recent_rows = ts > now - window
        previous_rows = (ts > now - 2 * window) & ~recent_rows
        recent = np.bincount(interactions.item[recent_rows], minlength=n_items)
        previous = np.bincount(interactions.item[previous_rows], minlength=n_items)
        gain = np.maximum(recent - previous, 0).astype(np.float64)
        total = gain.sum()
        self.scores: NDArray[np.float64] = gain / total if total > 0 else gain
        self.order: NDArray[np.int64] = np.lexsort(
            (np.arange(n_items), -recent, -self.scores)
        ).astype(np.int64)

    def recommend(self, n: int, allowed: NDArray[np.bool_] | None = None) -> Ranked:
        order = self.order if allowed is None else self.order[allowed[self.order]]
        chosen = order[:n]
        return chosen, self.scores[chosen]
