"""Infinite scroll on one call: `after` and `Recommendations.pageInfo`.

When a window is fetched. A list scrolls only when the client says it will: it passes
`after`, or it selects `pageInfo`. Otherwise the field is answered exactly as before
(the same call, the same numResults). A first page that scrolls asks Personalize once
for the use case's window (`page_window`, else `pagination.window`: 100 by default, at
most 500, or 50 when the use case returns item metadata, and never fewer than the page
shows), keeps it `pagination.ttl` seconds in the answer store (`backends.windows`), and
shows its first numResults items with a cursor. A later page (`after`) reads the window
from the store and makes no call: its items follow the previous page's, none repeated,
with the window's recommendationId and source; `hasNextPage` is false at its end.

A cursor made for another question, or altered, is refused with BAD_USER_INPUT; one
whose window is gone (past its ttl, or lost by the store) with CURSOR_EXPIRED.
"""

import dataclasses
import logging
import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from graphql import (
    BooleanValueNode,
    FieldNode,
    FragmentSpreadNode,
    InlineFragmentNode,
    SelectionSetNode,
    VariableNode,
)

from backends.store import Store
from backends.windows import Windows
from domain.errors import CursorExpired, InvalidArgument
from domain.request import RecommendationRequest
from domain.result import RecommendationResult, ResultItem, Source
from resolvers.arguments import given, max_results
from resolvers.cursors import Cursor, Cursors, question
from settings import Settings

log = logging.getLogger(__name__)

# What Personalize shows when numResults is left out.
DEFAULT_PAGE = 25
PAGE_INFO = "pageInfo"


@dataclass(frozen=True, slots=True)
class PageInfoView:
    """What the `PageInfo` type reads: Relay's names."""

    end_cursor: str | None
    has_next_page: bool


@dataclass(frozen=True, slots=True)
class Scrolling:
    """The process's windows and cursors, for every operation's resolvers."""

    windows: Windows
    cursors: Cursors


@dataclass(frozen=True, slots=True)
class Slice:
    """One page of a window: its items and what the `pageInfo` shows."""

    items: tuple[ResultItem, ...]
    page_info: PageInfoView


def open_scrolling(settings: Settings, store: Store) -> Scrolling:
    """The process's scrolling over `store`, signing with `pagination.secret`.

    Unset, the secret is drawn at random for this process, which then refuses every
    other process's cursors: logged as a warning where other processes may serve the
    next page (the Personalize backend, several workers, a Redis store).
    """
    secret = settings.pagination.secret
    if secret is not None:
        key = secret.get_secret_value().encode()
    else:
        key = secrets.token_bytes(32)
        if settings.backend == "personalize" or settings.workers > 1 or store.kind == "redis":
            log.warning(
                "pagination.secret is unset: scroll cursors are signed with a random key of "
                "this process, and every other process (replica, worker) refuses them"
            )
    windows = Windows(store, settings.pagination, settings.cache)
    return Scrolling(windows, Cursors(key))


def window_size(settings: Settings, request: RecommendationRequest, shows: int) -> int:
    case = settings.use_cases[request.use_case]
    cap = max_results(with_metadata=bool(request.metadata_columns))
    wanted = case.page_window or settings.pagination.window
    return min(max(wanted, shows), cap)


def distinct(items: Sequence[ResultItem], shown: set[str] | None = None) -> tuple[ResultItem, ...]:
    """`items` in order, each item once, less those in `shown`."""
    seen = set(shown or ())
    kept = []
    for item in items:
        if item.item_id not in seen:
            seen.add(item.item_id)
            kept.append(item)
    return tuple(kept)


def first_page(
    scrolling: Scrolling,
    request: RecommendationRequest,
    window: RecommendationResult,
    source: Source,
    shows: int,
) -> Slice:
    """Keep `window` (already without repeats) and show its first `shows` items."""
    window_id = secrets.token_urlsafe(12)
    scrolling.windows.keep(window_id, window)
    expires = time.time() + scrolling.windows.ttl
    opened = Cursor(window_id, 0, question(request), expires, source.value)
    return page_from(scrolling, opened, window.items, shows)


def page_from(
    scrolling: Scrolling,
    cursor: Cursor,
    items: tuple[ResultItem, ...],
    shows: int,
    skip: set[str] | None = None,
) -> Slice:
    """Up to `shows` items of the window from the cursor's position on, less those in
    `skip` (shown by an earlier section of the same page), and the cursor after them."""
    shown: list[ResultItem] = []
    end = cursor.position
    while end < len(items) and len(shown) < shows:
        item = items[end]
        end += 1
        if skip is None or item.item_id not in skip:
            shown.append(item)
    following = dataclasses.replace(cursor, position=end)
    return Slice(
        tuple(shown),
        PageInfoView(end_cursor=scrolling.cursors.write(following), has_next_page=end < len(items)),
    )


async def read(
    scrolling: Scrolling, request: RecommendationRequest, after: str
) -> tuple[Cursor, RecommendationResult]:
    """Cursor `after`, checked against `request`, and its window; no call is made."""
    cursor = scrolling.cursors.read(after)
    if cursor.question != question(request):
        raise InvalidArgument(
            "after was made for another list (user, item, use case, filter, filter values, "
            "context or promotion differ)"
        )
    if time.time() >= cursor.expires:
        raise CursorExpired("after has expired (pagination.ttl): start from the first page")
    window = await scrolling.windows.find(cursor.window)
    if window is None:
        raise CursorExpired("after's window is gone (pagination.ttl): start from the first page")
    return cursor, window


async def later_page(
    scrolling: Scrolling, request: RecommendationRequest, after: str, shows: int
) -> tuple[RecommendationResult, Source, Slice]:
    """The page after cursor `after`, from its window; no call is made."""
    cursor, window = await read(scrolling, request, after)
    return window, Source(cursor.source), page_from(scrolling, cursor, window.items, shows)


def shows(request: RecommendationRequest) -> int:
    return request.num_results if request.num_results is not None else DEFAULT_PAGE


def scrolls(info: Any, after: Any) -> bool:
    """Whether the client scrolls this field: it passes `after` or selects `pageInfo`."""
    return given(after) or selects(info, PAGE_INFO)


def selects(info: Any, name: str) -> bool:
    """Whether the field being resolved selects `name` (a field of its own selection,
    through fragments, not skipped by @skip or @include). `info` is graphql-core's (the
    direct resolvers of `schema.compiled.direct`) or Strawberry's."""
    nodes = getattr(info, "field_nodes", None)
    if nodes is not None:
        return any(
            node.selection_set is not None and _core_selects(info, node.selection_set, name)
            for node in nodes
        )
    return any(_strawberry_selects(field.selections, name) for field in info.selected_fields)


def _core_included(info: Any, node: Any) -> bool:
    """@skip and @include as graphql-core applies them, read from the node's `if`."""
    for directive in node.directives:
        name = directive.name.value
        if name not in ("skip", "include"):
            continue
        value: Any = None
        for argument in directive.arguments:
            if argument.name.value == "if":
                value = argument.value
        if isinstance(value, VariableNode):
            # graphql-core's VariableValues, or the plain dict of coerced values.
            variables = info.variable_values
            found = getattr(variables, "coerced", variables).get(value.name.value)
        else:
            found = isinstance(value, BooleanValueNode) and value.value
        if (name == "skip") == bool(found):
            return False
    return True


def _core_selects(info: Any, selection_set: SelectionSetNode, name: str) -> bool:
    for selection in selection_set.selections:
        if selection.directives and not _core_included(info, selection):
            continue
        if isinstance(selection, FieldNode):
            if selection.name.value == name:
                return True
        elif isinstance(selection, InlineFragmentNode):
            if _core_selects(info, selection.selection_set, name):
                return True
        elif isinstance(selection, FragmentSpreadNode):
            fragment = info.fragments.get(selection.name.value)
            if fragment is not None and _core_selects(info, fragment.selection_set, name):
                return True
    return False


def _strawberry_selects(selections: Sequence[Any], name: str) -> bool:
    for selection in selections:
        directives = selection.directives
        if directives.get("skip", {}).get("if") is True:
            continue
        if directives.get("include", {}).get("if") is False:
            continue
        if hasattr(selection, "arguments"):  # a SelectedField
            if selection.name == name:
                return True
        elif _strawberry_selects(selection.selections, name):
            return True
    return False
