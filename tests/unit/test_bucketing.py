"""domain.experiments: sticky, independent, weighted and stable under weight changes."""

import pytest

from domain.experiments import assign, bucket_point, variant_index

IDS = [f"user-{i}" for i in range(100_000)]


def test_the_same_user_always_gets_the_same_variant() -> None:
    first = [assign("HOME_HERO", "s1", u, [1, 1]) for u in IDS[:5_000]]
    again = [assign("HOME_HERO", "s1", u, [1, 1]) for u in IDS[:5_000]]
    assert first == again
    # Another salt reshuffles: the salt is part of the key.
    other = [assign("HOME_HERO", "s2", u, [1, 1]) for u in IDS[:5_000]]
    assert first != other


@pytest.mark.parametrize(
    "weights",
    [[50, 50], [90, 10], [0.2, 0.3, 0.5], [1, 1, 1, 1], [70, 0, 30]],
)
def test_weights_hold_within_one_percent_over_100000_ids(weights: list[float]) -> None:
    counts = [0] * len(weights)
    for u in IDS:
        counts[assign("EXP", "salt", u, weights)] += 1
    total = sum(weights)
    for count, weight in zip(counts, weights, strict=True):
        assert abs(count / len(IDS) - weight / total) < 0.01, (counts, weights)
    for count, weight in zip(counts, weights, strict=True):
        if weight == 0:
            assert count == 0


def test_experiments_bucket_independently() -> None:
    # Chi-square test of independence on the 2x2 table of two 50/50 experiments'
    # assignments over the same 100,000 users: at 1 degree of freedom, 10.83 is the
    # 0.1 % critical value. Correlated bucketing (e.g. hashing the user alone) gives
    # a statistic in the tens of thousands.
    table = [[0, 0], [0, 0]]
    for u in IDS:
        table[assign("A", "", u, [1, 1])][assign("B", "", u, [1, 1])] += 1
    n = len(IDS)
    rows = [sum(r) for r in table]
    cols = [table[0][j] + table[1][j] for j in range(2)]
    chi2 = sum(
        (table[i][j] - rows[i] * cols[j] / n) ** 2 / (rows[i] * cols[j] / n)
        for i in range(2)
        for j in range(2)
    )
    assert chi2 < 10.83, table
    # The same experiment against itself is perfectly dependent: the test can fail.
    same = [[0, 0], [0, 0]]
    for u in IDS[:1_000]:
        v = assign("A", "", u, [1, 1])
        same[v][assign("A", "", u, [1, 1])] += 1
    assert same[0][1] == same[1][0] == 0


def test_changing_weights_moves_only_the_share_that_changed() -> None:
    before = [assign("EXP", "s", u, [50, 50]) for u in IDS]
    after = [assign("EXP", "s", u, [60, 40]) for u in IDS]
    moved = [(b, a) for b, a in zip(before, after, strict=True) if b != a]
    # Only treatment -> control, and about the 10 % that changed.
    assert {m for m in moved} == {(1, 0)}
    assert abs(len(moved) / len(IDS) - 0.10) < 0.01


def test_adding_a_variant_at_the_end_moves_only_its_share() -> None:
    before = [assign("EXP", "s", u, [50, 50]) for u in IDS]
    after = [assign("EXP", "s", u, [50, 40, 10]) for u in IDS]
    moved = [(b, a) for b, a in zip(before, after, strict=True) if b != a]
    assert {m for m in moved} == {(1, 2)}
    assert abs(len(moved) / len(IDS) - 0.10) < 0.01


def test_points_lie_in_the_unit_interval_and_cuts_are_exact() -> None:
    points = [bucket_point("EXP", "s", u) for u in IDS[:10_000]]
    assert all(0.0 <= p < 1.0 for p in points)
    assert variant_index(0.0, [1, 1]) == 0
    assert variant_index(0.4999, [1, 1]) == 0
    assert variant_index(0.5, [1, 1]) == 1
    assert variant_index(0.9999999, [3, 0]) == 0
    with pytest.raises(ValueError, match="positive sum"):
        variant_index(0.1, [0, 0])
