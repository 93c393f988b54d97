"""The document cache is bounded in bytes: its budget evicts, large documents are not kept,
and what it charges for a document is at least what the document holds."""

import gc
import tracemalloc

import pytest
from graphql import parse

from backends.local import LocalBackend
from schema.build import build_schema
from schema.compiled.documents import DocumentStore, document_cost
from schema.compiled.items import COMPILED_EXPRESSION_MAX, compile_items
from settings import MemorySettings, Settings, load_settings
from tests.schema.test_fast_path import answer

QUERY = "{ popularItems(numResults: 2) { items { itemId } } }"


def with_memory(**memory: int) -> Settings:
    settings = load_settings()
    return settings.model_copy(update={"memory": MemorySettings(**memory)})


def store_of(schema: object) -> DocumentStore:
    store: DocumentStore = schema.compiled._documents  # type: ignore[attr-defined]
    return store


@pytest.mark.parametrize(
    "query",
    [
        QUERY,
        # A long comment: the token keeps a copy of its text.
        QUERY + "\n#" + "c" * 50_000,
        # Many tokens, long names and strings.
        "{ "
        + " ".join(f'a{n}_{"x" * 40}: popularItems(userId: "{n}") {{ source }}' for n in range(150))
        + " }",
        # Non-ASCII text takes more bytes per character.
        QUERY + "\n# " + "é€😀" * 5_000,
    ],
)
def test_the_charge_is_at_least_what_a_document_holds(query: str) -> None:
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        text = query.encode().decode()  # a text of its own, allocated under tracing
        document = parse(text, max_tokens=100_000)
        held = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert document_cost(text, document) >= held


async def test_a_document_over_the_size_limit_is_not_cached(backend: LocalBackend) -> None:
    settings = with_memory(document_max_bytes=20_000)
    schema = build_schema(settings)
    store = store_of(schema)
    large = QUERY + "\n#" + "c" * 30_000
    for _ in range(2):
        assert b'"item-' in await answer(schema, settings, backend, large)
    assert large not in store.entries
    # Nor when its text fits but its tokens do not (a second copy in the comment's token).
    halves = QUERY + "\n#" + "c" * 9_000
    assert store.keeps(halves)
    assert b'"item-' in await answer(schema, settings, backend, halves + "c" * 2_000)
    assert halves + "c" * 2_000 not in store.entries
    # A small one is kept, and charged.
    assert b'"item-' in await answer(schema, settings, backend, QUERY)
    assert QUERY in store.entries
    assert store.size == sum(entry.cost for entry in store.entries.values()) > 0


async def test_the_byte_budget_evicts_the_least_recently_used(backend: LocalBackend) -> None:
    settings = with_memory(documents_bytes=200_000, document_max_bytes=100_000)
    schema = build_schema(settings)
    store = store_of(schema)
    documents = [f"{QUERY} # {n}\n#" + "c" * 20_000 for n in range(20)]
    for query in documents:
        assert b'"item-' in await answer(schema, settings, backend, query)
        # Each one is charged at least its text and its comment's copy.
        assert store.entries[query].cost >= 2 * 20_000
        assert store.size <= 200_000
    # Far fewer than 20 fit; the newest are those kept.
    kept = list(store.entries)
    assert 2 <= len(kept) < 10
    assert kept == documents[-len(kept) :]
    # Using one makes it the most recent: the next one evicts another.
    assert b'"item-' in await answer(schema, settings, backend, kept[0])
    newest = f"{QUERY} # new\n#" + "c" * 20_000
    assert b'"item-' in await answer(schema, settings, backend, newest)
    assert newest in store.entries
    assert kept[0] in store.entries
    assert kept[1] not in store.entries


async def test_validation_errors_are_charged_to_their_document(backend: LocalBackend) -> None:
    settings = load_settings()
    schema = build_schema(settings)
    store = store_of(schema)
    # Each error's message names the field the document wrote.
    invalid = "{ " + " ".join(f"f{n}{'z' * 1_000}" for n in range(20)) + " }"
    before = store.size
    first = await answer(schema, settings, backend, invalid)
    assert b"GRAPHQL_VALIDATION_FAILED" in first
    entry = store.entries[invalid]
    assert entry.errors
    assert entry.cost >= document_cost(invalid, entry.document) + 20 * 1_000
    assert store.size == before + entry.cost


async def test_long_aliases_are_not_kept_by_the_list_builders(backend: LocalBackend) -> None:
    settings = load_settings()
    schema = build_schema(settings)
    alias = "a" * (COMPILED_EXPRESSION_MAX + 10)
    query = f"{{ popularItems(numResults: 2) {{ items {{ {alias}: itemId }} }} }}"
    kept = compile_items.cache_info().currsize
    for _ in range(2):  # the second time through the compiled path
        assert alias.encode() in await answer(schema, settings, backend, query)
    assert compile_items.cache_info().currsize == kept


async def test_a_dropped_document_leaves_its_tokens_to_reference_counting(
    backend: LocalBackend,
) -> None:
    # graphql-core links tokens both ways; a comment's token holds a copy of the comment.
    # Left as a cycle, a document the cache dropped waited for a full collection, which
    # after start-up came rarely: about 1 MB per dropped document of a long comment.
    settings = with_memory(documents_bytes=100_000, document_max_bytes=100_000)
    schema = build_schema(settings)
    store = store_of(schema)
    # Each costs over 60 KB: the budget keeps one.
    first, second = (f"{QUERY} # {n}\n#" + "c" * 30_000 for n in range(2))
    assert b'"item-' in await answer(schema, settings, backend, first)
    assert list(store.entries) == [first]
    # Validating a document leaves a cycle of graphql-core's holding it: gone now.
    gc.collect()
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        assert b'"item-' in await answer(schema, settings, backend, second)
        assert list(store.entries) == [second]
        gc.collect()
        comments = [
            o for o in gc.garbage if type(o).__name__ == "Token" and o.kind.value == "Comment"
        ]
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
    # The first document's tokens went with it when the cache dropped it.
    assert not comments
