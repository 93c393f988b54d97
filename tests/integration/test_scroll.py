"""Infinite scroll on one call: `after` and `pageInfo`, through real servers.

Subgraphs run as real processes on the Personalize backend against the emulator, whose
counters and request log show the calls that really went out; the Redis test shares a
real redis-server between two subgraph processes.
"""

import base64
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Emulator, Subgraph, codes, start_subgraph
from tests.integration.test_cache import subgraph_running
from tests.redis_server import running_redis

SECRET = "scroll-test-secret"
UPSTREAM = {
    "SUBGRAPH_BACKEND": "personalize",
    "SUBGRAPH_PERSONALIZE__MAX_ATTEMPTS": "1",
    "SUBGRAPH_BREAKER__FAILURES": "0",
    "SUBGRAPH_PAGINATION__SECRET": SECRET,
}
PAGE = "{ recommendationId source items { itemId } pageInfo { endCursor hasNextPage } }"


def env(emulator: Emulator, **extra: str) -> dict[str, str]:
    return {**UPSTREAM, "SUBGRAPH_PERSONALIZE__ENDPOINT_URL": emulator.url, **extra}


@pytest.fixture(scope="module")
def scrolling(logs: Path, emulator: Emulator) -> Iterator[Subgraph]:
    yield from start_subgraph(logs, "subgraph-scroll", env(emulator))


def user_list(user: str, arguments: str, selection: str = PAGE) -> str:
    return (
        f'{{ _entities(representations: [{{__typename: "User", id: "{user}"}}]) '
        f"{{ ... on User {{ recommendations({arguments}) {selection} }} }} }}"
    )


def recommendations(body: dict[str, Any]) -> dict[str, Any]:
    assert "errors" not in body, body
    found: dict[str, Any] = body["data"]["_entities"][0]["recommendations"]
    return found


def ids(answer: dict[str, Any]) -> list[str]:
    return [i["itemId"] for i in answer["items"]]


def after(cursor: str) -> str:
    return f'after: "{cursor}"'


def scroll(
    subgraph: Subgraph, user: str, pages: int, size: int, extra: str = ""
) -> list[dict[str, Any]]:
    seen: list[dict[str, Any]] = []
    cursor = None
    for _ in range(pages):
        arguments = f"numResults: {size}{extra}" + (f", {after(cursor)}" if cursor else "")
        page = recommendations(subgraph.query(user_list(user, arguments)))
        seen.append(page)
        cursor = page["pageInfo"]["endCursor"]
    return seen


def asked(emulator: Emulator) -> list[dict[str, Any]]:
    requests = emulator.requests()
    return [r["body"] for r in requests]


def test_five_pages_of_twenty_are_one_call_and_the_same_hundred_items(
    scrolling: Subgraph, fresh_emulator: Emulator
) -> None:
    pages = scroll(scrolling, "user-0007", 5, 20)
    assert fresh_emulator.calls() == 1
    assert [body["numResults"] for body in asked(fresh_emulator)] == [100]
    scrolled = [item for page in pages for item in ids(page)]
    assert len(scrolled) == 100 == len(set(scrolled))
    # One call for 100 items shows the same items in the same order.
    whole = recommendations(
        scrolling.query(user_list("user-0007", "numResults: 100", "{ items { itemId } }"))
    )
    assert ids(whole) == scrolled
    assert fresh_emulator.calls() == 2
    # Every page keeps the window's recommendationId and source.
    assert len({page["recommendationId"] for page in pages}) == 1
    assert pages[0]["recommendationId"] is not None
    assert {page["source"] for page in pages} == {"PERSONALIZE"}
    assert [page["pageInfo"]["hasNextPage"] for page in pages] == [True] * 4 + [False]


def test_a_list_that_does_not_scroll_is_asked_as_before(
    scrolling: Subgraph, fresh_emulator: Emulator
) -> None:
    plain = recommendations(
        scrolling.query(user_list("user-0008", "numResults: 20", "{ items { itemId } }"))
    )
    assert len(ids(plain)) == 20
    assert [body["numResults"] for body in asked(fresh_emulator)] == [20]
    # Skipped, pageInfo is not selected: no window either.
    skipped = "{ items { itemId } pageInfo @include(if: false) { hasNextPage } }"
    assert "pageInfo" not in recommendations(
        scrolling.query(user_list("user-0008", "numResults: 20", skipped))
    )
    assert [body["numResults"] for body in asked(fresh_emulator)] == [20, 20]
    # Through a variable, on a fragment: included, the list scrolls; skipped, it does not.
    fragment = (
        "query($scroll: Boolean!, $quiet: Boolean!) { _entities(representations: "
        '[{__typename: "User", id: "user-0008"}]) { ... on User { recommendations('
        "numResults: 20) { items { itemId } ...Where @include(if: $scroll) "
        "... @skip(if: $quiet) { source } } } } } "
        "fragment Where on Recommendations { pageInfo { hasNextPage } }"
    )
    for scroll in (False, True):
        body = scrolling.query(fragment, {"scroll": scroll, "quiet": False})
        assert ("pageInfo" in recommendations(body)) is scroll
    assert [body["numResults"] for body in asked(fresh_emulator)] == [20, 20, 20, 100]


def test_popular_and_related_lists_scroll_too(
    scrolling: Subgraph, fresh_emulator: Emulator
) -> None:
    query = "{ popularItems(numResults: 30%s) %s }"
    first = scrolling.query(query % ("", PAGE))["data"]["popularItems"]
    cursor = first["pageInfo"]["endCursor"]
    second = scrolling.query(query % (", " + after(cursor), PAGE))["data"]["popularItems"]
    assert not set(ids(first)) & set(ids(second))
    assert len(ids(second)) == 30
    related = (
        '{ _entities(representations: [{__typename: "Item", id: "item-0042"}]) '
        "{ ... on Item { related(numResults: 10%s) %s } } }"
    )
    one = scrolling.query(related % ("", PAGE))["data"]["_entities"][0]["related"]
    two = scrolling.query(related % (", " + after(one["pageInfo"]["endCursor"]), PAGE))
    assert not set(ids(one)) & set(ids(two["data"]["_entities"][0]["related"]))
    assert fresh_emulator.calls() == 2


def test_the_window_ends_the_scroll(scrolling: Subgraph, fresh_emulator: Emulator) -> None:
    pages = scroll(scrolling, "user-0009", 3, 45)
    assert [len(ids(page)) for page in pages] == [45, 45, 10]
    assert [page["pageInfo"]["hasNextPage"] for page in pages] == [True, True, False]
    beyond = recommendations(
        scrolling.query(
            user_list("user-0009", f"numResults: 5, {after(pages[2]['pageInfo']['endCursor'])}")
        )
    )
    assert ids(beyond) == []
    assert beyond["pageInfo"]["hasNextPage"] is False
    assert fresh_emulator.calls() == 1


def flipped(cursor: str) -> str:
    middle = len(cursor) // 2
    swapped = "A" if cursor[middle] != "A" else "B"
    return cursor[:middle] + swapped + cursor[middle + 1 :]


def test_cursors_are_refused_for_another_question_or_when_altered(
    scrolling: Subgraph, fresh_emulator: Emulator
) -> None:
    first = recommendations(scrolling.query(user_list("user-0010", "numResults: 10")))
    cursor = first["pageInfo"]["endCursor"]
    refusals = {
        "another user": user_list("user-0011", f"numResults: 10, {after(cursor)}"),
        "another use case": user_list(
            "user-0010", f"useCase: USER_PERSONALIZATION, numResults: 10, {after(cursor)}"
        ),
        "a flipped byte": user_list("user-0010", f"numResults: 10, {after(flipped(cursor))}"),
        "not base64": user_list("user-0010", 'numResults: 10, after: "%%%"'),
        "a forged tag": user_list(
            "user-0010",
            "numResults: 10, "
            + after(base64.urlsafe_b64encode(b"0" * 16 + b'["w",0,"q",9e99,"LOCAL"]').decode()),
        ),
    }
    for why, query in refusals.items():
        body = scrolling.query(query)
        assert codes(body) == ["BAD_USER_INPUT"], (why, body)
        assert body["data"]["_entities"][0]["recommendations"] is None
    # The same user and question with another page size is the same list.
    again = recommendations(
        scrolling.query(user_list("user-0010", f"numResults: 5, {after(cursor)}"))
    )
    assert not set(ids(again)) & set(ids(first))
    assert fresh_emulator.calls() == 1


def test_a_cursor_is_refused_for_another_filter_value(
    scrolling: Subgraph, fresh_emulator: Emulator
) -> None:
    shoes = 'filter: {byCategory: {category: ["shoes"]}}'
    bags = 'filter: {byCategory: {category: ["tops"]}}'
    first = recommendations(scrolling.query(user_list("user-0012", f"numResults: 5, {shoes}")))
    cursor = first["pageInfo"]["endCursor"]
    same = scrolling.query(user_list("user-0012", f"numResults: 5, {shoes}, {after(cursor)}"))
    assert not set(ids(recommendations(same))) & set(ids(first))
    for other in (bags, "filter: {excludePurchased: true}", ""):
        body = scrolling.query(user_list("user-0012", f"numResults: 5, {other}, {after(cursor)}"))
        assert codes(body) == ["BAD_USER_INPUT"], (other, body)
    assert fresh_emulator.calls() == 1


def test_an_expired_cursor_has_a_code_of_its_own(logs: Path, emulator: Emulator) -> None:
    with subgraph_running(
        logs, "subgraph-scroll-brief", env(emulator, SUBGRAPH_PAGINATION__TTL="0.5")
    ) as brief:
        first = recommendations(brief.query(user_list("user-0013", "numResults: 10")))
        time.sleep(0.7)
        cursor = first["pageInfo"]["endCursor"]
        body = brief.query(user_list("user-0013", f"numResults: 10, {after(cursor)}"))
        assert codes(body) == ["CURSOR_EXPIRED"], body
        assert "first page" in body["errors"][0]["message"]


def test_another_process_serves_the_next_page_through_redis(logs: Path, emulator: Emulator) -> None:
    with running_redis(logs / "redis-scroll.log") as redis:
        shared = env(
            emulator,
            SUBGRAPH_CACHE__BACKEND="redis",
            SUBGRAPH_CACHE__REDIS_URL=redis.url,
            SUBGRAPH_CACHE__KEY_PREFIX="scroll:",
        )
        with (
            subgraph_running(logs, "subgraph-scroll-a", shared) as one,
            subgraph_running(logs, "subgraph-scroll-b", shared) as other,
        ):
            emulator.reset()
            first = recommendations(one.query(user_list("user-0014", "numResults: 20")))
            client = redis.client()
            deadline = time.monotonic() + 2
            while not client.keys("scroll:v1:window:*") and time.monotonic() < deadline:
                time.sleep(0.01)
            client.close()
            cursor = first["pageInfo"]["endCursor"]
            second = recommendations(
                other.query(user_list("user-0014", f"numResults: 20, {after(cursor)}"))
            )
            assert len(ids(second)) == 20
            assert not set(ids(first)) & set(ids(second))
            assert second["recommendationId"] == first["recommendationId"]
            assert emulator.calls() == 1
            whole = recommendations(
                one.query(user_list("user-0014", "numResults: 40", "{ items { itemId } }"))
            )
            assert ids(whole) == ids(first) + ids(second)
            # A window the store has lost: the cursor has expired, whatever its ttl.
            client = redis.client()
            client.flushall()
            client.close()
            body = other.query(user_list("user-0014", f"numResults: 20, {after(cursor)}"))
            assert codes(body) == ["CURSOR_EXPIRED"], body
            # A process without the shared secret signs with its own and refuses the
            # others' cursors, as its start-up warning says.
            unsigned = {k: v for k, v in shared.items() if k != "SUBGRAPH_PAGINATION__SECRET"}
            with subgraph_running(logs, "subgraph-scroll-unsigned", unsigned) as stranger:
                body = stranger.query(user_list("user-0014", f"numResults: 20, {after(cursor)}"))
            assert codes(body) == ["BAD_USER_INPUT"], body
            log = (logs / "subgraph-scroll-unsigned.log").read_text()
            assert "pagination.secret is unset" in log
            assert "pagination.secret is unset" not in (logs / "subgraph-scroll-a.log").read_text()


def user_page(user: str, sections: str) -> str:
    return (
        f'{{ _entities(representations: [{{__typename: "User", id: "{user}"}}]) '
        f"{{ ... on User {{ recommendationPage(sections: [{sections}]) {PAGE} }} }} }}"
    )


def page_sections(body: dict[str, Any]) -> list[Any]:
    sections: list[Any] = body["data"]["_entities"][0]["recommendationPage"]
    return sections


def test_a_section_of_a_page_scrolls(scrolling: Subgraph, fresh_emulator: Emulator) -> None:
    home = "{useCase: BEST_SELLERS, numResults: 10}, {useCase: RECOMMENDED_FOR_YOU, numResults: 10}"
    body = scrolling.query(user_page("user-0015", home))
    assert "errors" not in body, body
    best, mine = page_sections(body)
    assert not set(ids(best)) & set(ids(mine))
    assert fresh_emulator.calls() == 2
    cursor = mine["pageInfo"]["endCursor"]
    # Its next page alone: no call, nothing it or the sections before it showed.
    more = f'{{useCase: RECOMMENDED_FOR_YOU, numResults: 10, after: "{cursor}"}}'
    body = scrolling.query(user_page("user-0015", more))
    assert "errors" not in body, body
    (following,) = page_sections(body)
    assert len(ids(following)) == 10
    assert not set(ids(following)) & (set(ids(best)) | set(ids(mine)))
    assert following["recommendationId"] == mine["recommendationId"]
    assert fresh_emulator.calls() == 2
    # Beside a fresh section, it skips what that one shows and goes on past it.
    body = scrolling.query(
        user_page("user-0015", f"{{useCase: POPULARITY, numResults: 30}}, {more}")
    )
    assert "errors" not in body, body
    popular, beside = page_sections(body)
    assert len(ids(beside)) == 10
    assert not set(ids(beside)) & (set(ids(popular)) | set(ids(best)) | set(ids(mine)))
    # The same cursor for another section's question, or on a ranking, is refused.
    wrong = f'{{useCase: USER_PERSONALIZATION, numResults: 10, after: "{cursor}"}}'
    ranking = f'{{useCase: PERSONALIZED_RANKING, itemIds: ["item-0001"], after: "{cursor}"}}'
    body = scrolling.query(user_page("user-0015", f"{wrong}, {ranking}"))
    assert codes(body) == ["BAD_USER_INPUT", "BAD_USER_INPUT"], body
    assert page_sections(body) == [None, None]
