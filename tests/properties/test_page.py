"""recommendationPage over drawn pages: any use cases, in any order, on the demo engine.

A drawn page has 1 to 6 sections of the demo's use cases (per-user, item-seeded,
popular, a ranking of drawn ids, and newArrivals, whose fallback chain answers), each
with a drawn numResults. Properties, judged against each section's question asked on
its own for 500 items (the single field of its use case, same ids):

- no item appears twice on the page;
- a section shows at most its numResults, only items of its own question's answer;
- a section is full whenever its own question has that many items that no earlier
  section shows, unless the over-fetch bound (50 with item metadata: the property
  config's userPersonalization) cut it short; a ranking shows every given id that no
  earlier section shows.
"""

from dataclasses import dataclass
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from tests.properties.conftest import Live
from tests.properties.operations import BOUNDED

SELECTION = "{ source items { itemId } }"


@dataclass(frozen=True)
class Section:
    use_case: str  # the PageUseCase value
    field: str  # its single field: recommendations, popularItems, related, rankedItems
    num_results: int | None
    item_id: str | None = None
    item_ids: tuple[str, ...] = ()
    cap: int = 500  # the over-fetch bound

    def literal(self) -> str:
        parts = [f"useCase: {self.use_case}"]
        if self.num_results is not None:
            parts.append(f"numResults: {self.num_results}")
        if self.item_id is not None:
            parts.append(f'itemId: "{self.item_id}"')
        if self.item_ids:
            parts.append("itemIds: [" + ", ".join(f'"{i}"' for i in self.item_ids) + "]")
        return "{" + ", ".join(parts) + "}"

    @property
    def shows(self) -> int:
        if self.item_ids:
            return len(set(self.item_ids))
        return 25 if self.num_results is None else self.num_results

    def question(self, user: str) -> str:
        """The section asked on its own, for as many items as Personalize gives."""
        n = min(self.cap, 500)
        if self.field == "recommendations":
            return f"recommendations(useCase: {self.use_case}, numResults: {n})"
        if self.field == "rankedItems":
            ids = ", ".join(f'"{i}"' for i in self.item_ids)
            return f"rankedItems(itemIds: [{ids}])"
        # popularItems (root) and related (on the item), with the page's user, as sent.
        return f'{self.field}(useCase: {self.use_case}, numResults: {n}, userId: "{user}")'


_ITEMS = st.integers(1, 2000).map(lambda n: f"item-{n:04d}")
_N = st.one_of(st.none(), st.integers(1, 60))


def _sections() -> st.SearchStrategy[Section]:
    def plain(use_case: str, field: str) -> st.SearchStrategy[Section]:
        return _N.map(lambda n: Section(use_case, field, n))

    return st.one_of(
        plain("RECOMMENDED_FOR_YOU", "recommendations"),
        st.integers(1, 50).map(
            lambda n: Section("USER_PERSONALIZATION", "recommendations", n, cap=50)
        ),
        plain("BEST_SELLERS", "popularItems"),
        plain("MOST_VIEWED", "popularItems"),
        plain("POPULARITY", "popularItems"),
        plain("NEW_ARRIVALS", "popularItems"),
        st.tuples(_N, _ITEMS).map(lambda a: Section("SIMILAR_ITEMS", "related", a[0], a[1])),
        st.tuples(_N, _ITEMS).map(lambda a: Section("CUSTOMERS_WHO_VIEWED", "related", a[0], a[1])),
        st.lists(_ITEMS, min_size=1, max_size=30).map(
            lambda ids: Section("PERSONALIZED_RANKING", "rankedItems", None, item_ids=tuple(ids))
        ),
    )


def _post(live: Live, query: str) -> dict[str, Any]:
    response = live.client.post(live.url, json={"query": query})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    assert "errors" not in body, (query, body["errors"])
    return body


def _alone(live: Live, section: Section, user: str) -> list[str]:
    question = f"{section.question(user)} {SELECTION}"
    if section.field == "popularItems":
        found = _post(live, f"{{ s: {question} }}")["data"]["s"]
    else:
        typename, key = ("Item", section.item_id) if section.field == "related" else ("User", user)
        found = _post(
            live,
            f'{{ _entities(representations: [{{__typename: "{typename}", id: "{key}"}}])'
            f" {{ ... on {typename} {{ s: {question} }} }} }}",
        )["data"]["_entities"][0]["s"]
    return [i["itemId"] for i in found["items"]]


EXAMPLES = 40


def test_a_drawn_page_shows_no_item_twice_and_keeps_its_sections_full(live: Live) -> None:
    # Not vacuous: how many sections the fullness and the ranking rules judged.
    seen = {"full": 0, "rankings": 0, "pages": 0}

    @settings(BOUNDED, max_examples=EXAMPLES)
    @given(
        user=st.integers(1, 5000).map(lambda n: f"user-{n:04d}"),
        sections=st.lists(_sections(), min_size=1, max_size=6),
    )
    def pages(user: str, sections: list[Section]) -> None:
        seen["pages"] += 1
        _check_page(live, user, sections, seen)

    pages()
    assert seen["pages"] >= EXAMPLES, seen
    assert seen["full"] >= EXAMPLES, seen
    assert seen["rankings"] >= 5, seen


def _check_page(live: Live, user: str, sections: list[Section], seen: dict[str, int]) -> None:
    page_sections = ", ".join(s.literal() for s in sections)
    body = _post(
        live,
        f'{{ _entities(representations: [{{__typename: "User", id: "{user}"}}]) {{ ... on User'
        f" {{ recommendationPage(sections: [{page_sections}]) {SELECTION} }} }} }}",
    )
    page = body["data"]["_entities"][0]["recommendationPage"]
    assert len(page) == len(sections)
    shown: list[str] = []
    earlier = 0
    for index, (section, answer) in enumerate(zip(sections, page, strict=True)):
        mine = [i["itemId"] for i in answer["items"]]
        alone = _alone(live, section, user)
        where = (index, section, mine)
        assert len(mine) <= section.shows, where
        assert set(mine) <= set(alone), where
        left = [i for i in dict.fromkeys(alone) if i not in shown]
        if section.item_ids:
            seen["rankings"] += 1
            assert mine == left, where
        elif len(left) >= section.shows and section.shows + earlier <= section.cap:
            seen["full"] += 1
            assert len(mine) == section.shows, (where, len(left))
        shown += mine
        earlier += section.shows
    assert len(shown) == len(set(shown)), shown
