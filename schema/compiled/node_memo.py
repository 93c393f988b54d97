"""Values worked out once per node of a parsed document, kept no longer than the document.

The fast path keeps plans and converted arguments by the identity of AST nodes: the
document cache hands every operation of one query text the same parsed nodes. A memo
that held those nodes would keep their whole documents (source text, every token)
alive after the document cache dropped them, past its bound. This one holds weak
references only: an entry goes as soon as one of its nodes is freed, and the least
recently used entries go beyond `maxsize`.
"""

import weakref
from collections import OrderedDict
from collections.abc import Hashable, Sequence
from typing import Generic, TypeVar

from graphql import Node

V = TypeVar("V")

Key = tuple[Hashable, tuple[int, ...]]


class NodeMemo(Generic[V]):
    """`tag` and a sequence of live nodes (by identity) -> a value."""

    def __init__(self, maxsize: int) -> None:
        self.maxsize = maxsize
        self._entries: OrderedDict[Key, tuple[tuple[weakref.ref[Node], ...], V]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, tag: Hashable, nodes: Sequence[Node]) -> tuple[V] | None:
        """`(value,)` if one is kept for these very nodes, else None."""
        key = (tag, tuple(map(id, nodes)))
        entry = self._entries.get(key)
        if entry is None:
            return None
        refs, value = entry
        if not all(ref() is node for ref, node in zip(refs, nodes, strict=True)):
            # Not reachable while the callbacks below run at each node's death; checked
            # anyway, since a wrong hit would answer one document with another's plan.
            del self._entries[key]
            return None
        self._entries.move_to_end(key)
        return (value,)

    def put(self, tag: Hashable, nodes: Sequence[Node], value: V) -> None:
        key = (tag, tuple(map(id, nodes)))
        entries = self._entries

        def forget(_: object, key: Key = key) -> None:
            entries.pop(key, None)

        entries[key] = (tuple(weakref.ref(node, forget) for node in nodes), value)
        entries.move_to_end(key)
        if len(entries) > self.maxsize:
            entries.popitem(last=False)
