"""The fast path's memos keep nothing alive: entries go with their documents."""

import gc

from graphql import Source, parse

from backends.local import LocalBackend
from schema.build import build_schema
from schema.compiled.documents import DocumentStore
from schema.compiled.node_memo import NodeMemo
from settings import load_settings
from tests.schema.test_fast_path import answer


def test_an_entry_goes_when_its_node_is_freed() -> None:
    memo: NodeMemo[str] = NodeMemo(maxsize=10)
    document = parse("{ a b }")
    a, b = document.definitions[0].selection_set.selections  # type: ignore[attr-defined]
    memo.put("t", [a, b], "plan")
    assert memo.get("t", [a, b]) == ("plan",)
    # Only the very same nodes, in order, under the same tag.
    assert memo.get("t", [b, a]) is None
    assert memo.get("other", [a, b]) is None
    assert memo.get("t", [parse("{ a }").definitions[0]]) is None
    del a, b, document
    gc.collect()
    assert len(memo) == 0


def test_the_least_recently_used_entry_goes_beyond_the_bound() -> None:
    memo: NodeMemo[int] = NodeMemo(maxsize=2)
    documents = [parse(f"{{ f{n} }}") for n in range(3)]
    memo.put(None, [documents[0]], 0)
    memo.put(None, [documents[1]], 1)
    assert memo.get(None, [documents[0]]) == (0,)  # now the most recent
    memo.put(None, [documents[2]], 2)
    assert memo.get(None, [documents[1]]) is None
    assert memo.get(None, [documents[0]]) == (0,)
    assert memo.get(None, [documents[2]]) == (2,)


async def test_documents_the_cache_dropped_are_not_kept_by_the_fast_path(
    backend: LocalBackend,
) -> None:
    settings = load_settings()
    schema = build_schema(settings)
    # More distinct documents than the document cache keeps, each one through a list
    # plan and a direct resolver with literal arguments (both memoised by node).
    count = DocumentStore.maxsize + 100
    gc.collect()
    before = sum(isinstance(o, Source) for o in gc.get_objects())
    for n in range(count):
        query = f"{{ q{n}: popularItems(numResults: 2) {{ items {{ itemId }} }} }}"
        assert b'"item-' in await answer(schema, settings, backend, query)
    gc.collect()
    alive = sum(isinstance(o, Source) for o in gc.get_objects()) - before
    # The document cache's own documents, and no more.
    assert DocumentStore.maxsize - 5 <= alive <= DocumentStore.maxsize
