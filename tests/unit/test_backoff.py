"""The backoff ceiling every retry loop uses: doubling, capped, and total for any count."""

import pytest

from domain.backoff import backoff_ceiling


def test_it_doubles_from_the_base_up_to_the_cap() -> None:
    assert [backoff_ceiling(n, 0.2, 5.0) for n in range(1, 8)] == [
        0.2,
        0.4,
        0.8,
        1.6,
        3.2,
        5.0,
        5.0,
    ]


def test_the_unbounded_formula_overflows_where_the_senders_died() -> None:
    # 0.2 * 2 ** 1024 is beyond a float: the event senders died on it after 1,025
    # failed tries of one batch (about an hour of a Personalize outage).
    with pytest.raises(OverflowError):
        _ = 0.2 * 2 ** (1_025 - 1)


@pytest.mark.parametrize("attempt", [1_025, 10**6, 10**12])
def test_a_count_that_grew_for_hours_still_gives_the_cap(attempt: int) -> None:
    assert backoff_ceiling(attempt, 0.2, 5.0) == 5.0


def test_attempt_zero_or_less_waits_the_base() -> None:
    assert backoff_ceiling(0, 0.5, 30.0) == 0.5
