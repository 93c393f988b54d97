"""A cart's plan and its reciprocal-rank fusion (resolvers.cart): the rules' edges."""

import pytest

from domain.errors import InvalidArgument
from domain.result import ResultItem
from resolvers.cart import FUSION_K, fuse, plan_cart
from settings import Settings, load_settings


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


def _with_metadata() -> Settings:
    settings = load_settings()
    case = settings.use_cases["similarItems"].model_copy(update={"metadata_columns": ("TITLE",)})
    return settings.model_copy(update={"use_cases": {**settings.use_cases, "similarItems": case}})


def _asked(settings: Settings, seeds: int, shows: int) -> set[int | None]:
    planned = plan_cart(
        settings,
        item_ids=[f"item-{n:04d}" for n in range(seeds)],
        user_id=None,
        use_case=None,
        num_results=shows,
        filter=None,
        context=None,
    )
    assert len(planned.requests) == seeds
    return {r.num_results for r in planned.requests}


def test_each_seed_over_fetches_by_the_carts_size_within_the_service_bounds() -> None:
    settings = load_settings()
    assert _asked(settings, 5, 25) == {30}
    assert _asked(settings, 20, 490) == {500}
    # A use case returning metadata: at most 50 items a call.
    assert _asked(_with_metadata(), 5, 25) == {30}
    assert _asked(_with_metadata(), 20, 40) == {50}
    with pytest.raises(InvalidArgument, match="between 1 and 50 when item metadata"):
        _asked(_with_metadata(), 2, 51)
