"""Recipes on small hand-made data: trending-now, sparse SIMS, item-kNN selection and
customers-who-viewed's co-views."""

from __future__ import annotations

import numpy as np
import pytest

from local_personalize.data import EVENT_TYPES, Interactions
from local_personalize.domain_recipes import CustomersWhoViewed
from local_personalize.recipes import (
    Popularity,
    Sims,
    TrendingNow,
    UserPersonalization,
    cooccurrence,
    user_item_matrix,
)

DAY = 86_400


def interactions(
    rows: list[tuple[int, int, int]], n_users: int, events: list[str] | None = None
) -> Interactions:
    """Rows of (user, item, time); every event a View unless ``events`` names each one."""
    user, item, ts = (np.array(col) for col in zip(*rows, strict=True))
    codes = [EVENT_TYPES.index(e) for e in events] if events else [0] * len(rows)
    return Interactions.build(
        [f"u{i}" for i in range(n_users)],
        user.astype(np.int32),
        item.astype(np.int32),
        ts.astype(np.int64),
        np.array(codes, dtype=np.int8),
        EVENT_TYPES,
    )


def test_trending_ranks_by_growth_not_by_volume() -> None:
    now = 100 * DAY
    rows = []
    # Item 0: most popular overall but flat (5 last week, 5 this week).
    rows += [(u, 0, now - 10 * DAY) for u in range(5)] + [(u, 0, now - DAY) for u in range(5)]
    # Item 1: rising from 0 to 3; item 2: rising from 1 to 2; item 3: falling.
    rows += [(u, 1, now - 2 * DAY) for u in range(3)]
    rows += [(0, 2, now - 9 * DAY), (1, 2, now - DAY), (2, 2, now)]
    rows += [(u, 3, now - 12 * DAY) for u in range(4)]
    model = TrendingNow(interactions(rows, 5), 5, window_days=7)
    chosen, scores = model.recommend(5)
    assert chosen[:2].tolist() == [1, 2]
    assert scores[:2].tolist() == [0.75, 0.25]
    assert scores[2:].tolist() == [0.0, 0.0, 0.0]
    # Flat item 0 (recent 5) before falling item 3 (recent 0) and never-seen item 4.
    assert chosen[2:].tolist() == [0, 3, 4]
    allowed = np.array([True, False, True, True, True])
    assert model.recommend(2, allowed)[0].tolist() == [2, 0]


def test_sparse_sims_equals_dense_shrunk_cosine() -> None:
    rng = np.random.default_rng(0)
    rows = [(int(u), int(i), t) for t, (u, i) in enumerate(rng.integers(0, 40, (600, 2)))]
    inter = interactions(rows, 40)
    matrix = user_item_matrix(inter, 40)
    gram = cooccurrence(matrix)
    sims = Sims(gram, Popularity(inter, 40), shrinkage=10.0, k=39)
    dense = matrix.T.toarray() @ matrix.toarray()
    norms = np.sqrt(np.diag(dense))
    cosine = dense / (np.outer(norms, norms) + 10.0)
    for item in (0, 7, 23):
        expected = cosine[item].copy()
        expected[item] = 0.0
        got = np.zeros(40)
        valid = sims.neighbours[item] >= 0
        got[sims.neighbours[item][valid]] = sims.similarity[item][valid]
        assert np.allclose(got, expected)
        assert np.all(np.diff(sims.similarity[item][valid]) <= 0)  # best first


def test_the_popularity_discount_demotes_popular_neighbours() -> None:
    rng = np.random.default_rng(1)
    # Skewed item draws: low item numbers are far more popular.
    items = np.minimum(rng.zipf(1.6, 3000) - 1, 59)
    rows = [
        (int(u), int(i), t)
        for t, (u, i) in enumerate(zip(rng.integers(0, 80, 3000), items, strict=True))
    ]
    inter = interactions(rows, 80)
    gram = cooccurrence(user_item_matrix(inter, 60))
    counts = gram.diagonal()
    plain = Sims(gram, Popularity(inter, 60), k=10)
    discounted = Sims(gram, Popularity(inter, 60), k=10, popularity_discount=0.5)

    def mean_neighbour_count(model: Sims) -> float:
        valid = model.neighbours >= 0
        return float(counts[model.neighbours[valid]].mean())

    assert mean_neighbour_count(discounted) < 0.9 * mean_neighbour_count(plain)


def test_catalogue_size_selects_ease_or_item_knn() -> None:
    # Two tastes: users 0-9 like items 0-4, users 10-19 like items 5-9.
    rows = [(u, (u // 10) * 5 + k, u * 10 + k) for u in range(20) for k in range(5)]
    rows = [r for r in rows if not (r[0] == 0 and r[1] == 4)]
    inter = interactions(rows, 20)
    gram = cooccurrence(user_item_matrix(inter, 10))
    pop = Popularity(inter, 10)
    ease = UserPersonalization(gram, inter, pop, ease_max_items=10)
    knn = UserPersonalization(gram, inter, pop, ease_max_items=9)
    assert (ease.method, knn.method) == ("ease", "item-knn")
    for model in (ease, knn):
        chosen, scores = model.recommend(0, 10)
        # User 0 never saw item 4; both scorers rank it above the other taste's items.
        assert set(chosen[:5].tolist()) == {0, 1, 2, 3, 4}
        assert np.isclose(scores.sum(), 1.0)  # the whole catalogue: softmax sums to 1
        # A cold user falls back to popularity.
        assert model.recommend(None, 3)[0].tolist() == pop.recommend(3)[0].tolist()


def test_kept_scores_follow_the_user_s_history_and_cannot_be_changed() -> None:
    rows = [(u, (u // 10) * 5 + k, u * 10 + k) for u in range(20) for k in range(5)]
    inter = interactions(rows, 20)
    gram = cooccurrence(user_item_matrix(inter, 10))
    pop = Popularity(inter, 10)
    for ease_max_items in (10, 9):  # EASE and item-kNN
        model = UserPersonalization(gram, inter, pop, ease_max_items=ease_max_items)
        fresh = UserPersonalization(gram, inter, pop, ease_max_items=ease_max_items)
        first = model.raw_scores(3)
        assert first is not None
        assert model.raw_scores(3) is first  # kept, not recomputed
        with pytest.raises(ValueError, match="read-only"):
            first[0] = 1.0  # shared by every caller: read-only
        # A new event changes the history, and so the scores asked for.
        for sequence in (np.array([7], dtype=np.int64), np.array([7, 8], dtype=np.int64)):
            kept = model.recommend(3, 10, sequence=sequence)
            again = fresh.recommend(3, 10, sequence=sequence)
            assert kept[0].tolist() == again[0].tolist()
            assert np.array_equal(kept[1], again[1])
            assert np.array_equal(
                model.scores(3, sequence=sequence), fresh.scores(3, sequence=sequence)
            )
        assert (
            model.recommend(3, 10)[0].tolist()
            != model.recommend(3, 10, sequence=np.array([7, 8], dtype=np.int64))[0].tolist()
        )


def test_customers_who_viewed_ranks_what_was_viewed_after_x_and_ignores_purchases() -> None:
    x, after, bought, before, popular, other = range(6)
    rows: list[tuple[int, int, int]] = []
    events: list[str] = []

    def add(user: int, item: int, event: str = "View") -> None:
        rows.append((user, item, len(rows)))
        events.append(event)

    for u in range(4):  # four customers view X, then `after`, and buy `bought` (unviewed)
        add(u, before)
        add(u, x)
        add(u, after)
        add(u, bought, "Purchase")
    for _ in range(3):  # a fifth goes back and forth: one customer counts once
        add(4, x)
        add(4, other)
    for u in range(5, 12):  # the most viewed item, never near X
        add(u, popular)
    inter = interactions(rows, 12, events)
    model = CustomersWhoViewed(inter, 6, window=10)
    chosen, scores = model.related(x, 5)
    # 4 of X's 5 viewers went on to `after`, 1 to `other`; then the most viewed top up.
    assert chosen.tolist() == [after, other, popular, before, bought]
    assert scores.tolist() == [0.8, 0.2, 0.0, 0.0, 0.0]
    # SIMS over all events ranks the co-purchased and the viewed-before items as related.
    gram = cooccurrence(user_item_matrix(inter, 6))
    sims, _ = Sims(gram, Popularity(inter, 6), shrinkage=0.0).related(x, 3)
    assert {bought, before} <= set(sims.tolist())
    # The window: with one next view only, `after` still follows X directly.
    assert CustomersWhoViewed(inter, 6, window=1).related(x, 1)[0].tolist() == [after]
    # Filters apply to the co-viewed items and the top-up alike.
    allowed = np.array([True, False, True, True, True, True])
    assert model.related(x, 3, allowed)[0].tolist() == [other, popular, before]
