"""Reciprocal-rank fusion of a cart's lists (resolvers.cart.fuse): the rule's edges."""

from domain.result import ResultItem
from resolvers.cart import FUSION_K, fuse


def items(*ids: str) -> tuple[ResultItem, ...]:
    return tuple(ResultItem(i, score=0.5, metadata=(("RANK", i),)) for i in ids)


def test_agreement_outranks_one_lists_first_place() -> None:
    merged = fuse(["s1", "s2"], [items("a", "b"), items("c", "b")], 10)
    # b: 1/62 + 1/62 beats a and c (1/61 each).
    assert [i.item_id for i in merged] == ["b", "a", "c"]
    assert merged[0].score == 2 / (FUSION_K + 2)


def test_ties_go_to_the_best_rank_then_the_id() -> None:
    # p and q tie exactly (rank 1 each), and so do m and n (rank 2): ids decide.
    merged = fuse(["s"], [items("q", "m"), items("p", "n")], 10)
    assert [i.item_id for i in merged] == ["p", "q", "m", "n"]
    # The same score in either order of the lists.
    assert fuse(["s"], [items("p", "n"), items("q", "m")], 10) == merged


def test_seeds_and_repeats_are_left_out_and_the_best_occurrence_kept() -> None:
    first = (ResultItem("a", metadata=(("FROM", "first"),)), ResultItem("s2"), ResultItem("a"))
    second = (ResultItem("s1"), ResultItem("b"), ResultItem("a", metadata=(("FROM", "second"),)))
    merged = fuse(["s1", "s2"], [first, second], 10)
    assert [i.item_id for i in merged] == ["a", "b"]
    # a counted once per list (ranks 1 and 3), with its first list's metadata.
    assert merged[0].score == 1 / (FUSION_K + 1) + 1 / (FUSION_K + 3)
    assert merged[0].metadata == (("FROM", "first"),)


def test_the_merge_is_cut_to_what_it_shows() -> None:
    assert [i.item_id for i in fuse(["s"], [items("a", "b", "c")], 2)] == ["a", "b"]
