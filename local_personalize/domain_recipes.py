"""Models of the domain recipes that no custom recipe answers the same way.

* ``CustomersWhoViewed`` — ``aws-ecomm-customers-who-viewed-x-also-viewed``: "items that
  customers also viewed based on an item that you specify", trained on ``View`` events
  only (Personalize's documented requirement). For item X it counts the customers who,
  having viewed X, viewed Y within their next ``window`` views (default 10): the
  browsing path out of X's page, not the whole-history co-occurrence SIMS uses. Each
  customer counts once per (X, Y), so one heavy browser cannot make a pair. The score
  is the share of X's viewers who went on to view Y, in (0, 1]. Purchases, carts and
  other events never make a pair. A list shorter than asked is topped up with the most
  viewed items scored 0.0; an item nobody viewed gets only those.

Personalize also removes, for this use case and for ``recommended-for-you``, the items
the user purchased (``Purchase`` events, real-time ones included); that automatic
filter is the engine's (``Deployment.excluded_event_types``), not the model's, because
it reads the user's live history.
"""

from __future__ import annotations

from collections.abc import Collection

import numpy as np
from numpy.typing import NDArray

from .data import Interactions
from .recipes import Popularity, Ranked, related_then_popular

CO_VIEW_WINDOW = 10
"""How many of a customer's next views count as "also viewed" (a hyperparameter)."""


class CustomersWhoViewed:
    """Directed co-views: who viewed Y within their next ``window`` views after X."""

    def __init__(
        self,
        interactions: Interactions,
        n_items: int,
        *,
        event_types: Collection[str] = ("View",),
        window: int = CO_VIEW_WINDOW,
        k: int = 200,
    ) -> None:
        wanted = {e.lower() for e in event_types}
        codes = [i for i, e in enumerate(interactions.event_types) if e.lower() in wanted]
        views = np.isin(interactions.event, codes)
        # Rows are sorted by (user, time), so a user's views stay in viewing order.
        user = interactions.user[views].astype(np.int64)
        item = interactions.item[views].astype(np.int64)
        self.popularity = Popularity(interactions, n_items, event_types)
        pairs = [
            np.stack([user[:-lag], item[:-lag], item[lag:]])[
                :, (user[:-lag] == user[lag:]) & (item[:-lag] != item[lag:])
            ]
            for lag in range(1, min(window, max(user.shape[0] - 1, 0)) + 1)
        ]
        triples = np.concatenate(pairs, axis=1) if pairs else np.empty((3, 0), np.int64)
        # One count per customer and pair: drop repeated (user, x, y) triples.
        if triples.shape[1]:
            order = np.lexsort(triples[::-1])
            triples = triples[:, order]
            first = np.ones(triples.shape[1], dtype=bool)
            first[1:] = (np.diff(triples, axis=1) != 0).any(axis=0)
            triples = triples[:, first]
        src, dst = triples[1], triples[2]
        # Viewers per item (each customer once): the denominator of the share.
        viewer_pairs = np.unique(user * n_items + item) if user.shape[0] else user
        viewers = np.bincount(viewer_pairs % n_items, minlength=n_items).astype(np.float64)
        keys, counts = np.unique(src * n_items + dst, return_counts=True)
        rows, cols = keys // n_items, keys % n_items
        share = counts / np.maximum(viewers[rows], 1.0)
        # Rank every row's entries at once: by row, then share, then item index.
        order = np.lexsort((cols, -share, rows))
        rows, cols, share = rows[order], cols[order], share[order]
        starts = np.searchsorted(rows, np.arange(n_items))
        rank = np.arange(rows.shape[0]) - starts[rows]
        k = max(1, min(k, n_items - 1))
        keep = rank < k
        self.neighbours: NDArray[np.int64] = np.full((n_items, k), -1, dtype=np.int64)
        self.share: NDArray[np.float64] = np.zeros((n_items, k), dtype=np.float64)
        self.neighbours[rows[keep], rank[keep]] = cols[keep]
        self.share[rows[keep], rank[keep]] = share[keep]

    def related(self, item: int, n: int, allowed: NDArray[np.bool_] | None = None) -> Ranked:
        """Items viewed after ``item``, best first, topped up with the most viewed."""
        return related_then_popular(
            self.neighbours[item], self.share[item], item, n, allowed, self.popularity
        )
