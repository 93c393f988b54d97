"""Exponential backoff's ceiling, shared by every retry loop and restart pause."""

# Past this many doublings any practical cap is reached; bounding the exponent keeps a
# count that grows for hours (a long outage, a crash loop) from overflowing a float.
_MAX_DOUBLINGS = 64


def backoff_ceiling(attempt: int, base: float, cap: float) -> float:
    """The longest pause before try `attempt` + 1: `base` doubled per attempt, at most `cap`.

    Attempt 1 waits up to `base`; any attempt count, however large, gives a number.
    """
    doublings = min(max(attempt - 1, 0), _MAX_DOUBLINGS)
    return min(cap, base * 2.0**doublings)
