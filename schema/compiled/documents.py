"""Parse and validate each distinct document once, keyed by its text.

Gateways send the same few operations over and over, and parsing and validating are a
large share of a small operation's work. Strawberry's ParserCache raises syntax errors
while extension hooks are being entered (which skips ErrorCodes), and its
ValidationCache hashes the whole document tree on every lookup; this cache keys both on
the query text instead, and never raises: a document that does not parse is simply not cached.

Query texts come from clients, so the cache is bounded by what its entries hold, not
only by their count: each entry is charged an estimate of its bytes (`document_cost`:
the text, every token with its value, a comment's text being a second copy of it, the
syntax tree, later its validation errors and compiled operations), the least recently
used go past `max_bytes`, and a document costing more than `max_document_bytes` is
parsed for its own request and never kept.
"""

import sys
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from graphql import DocumentNode, GraphQLError
from strawberry.extensions import SchemaExtension

from schema.graphql_core_internals import unlink_tokens

# Bytes charged per lexical token: the Token, its Location and its share of the syntax
# tree's nodes (measured with tracemalloc at 320-650 per token, the first ones dearest;
# tests/schema/test_document_budget.py holds the estimate above the measure).
TOKEN_BYTES = 768
# Bytes charged per entry besides its tokens: the entry, the document node, dict slots.
ENTRY_BYTES = 4096
# Bytes charged per validation error besides its message, and per compiled operation
# besides twice the text (a plan keeps names and generated code drawn from the text).
ERROR_BYTES = 1024


def document_cost(query: str, document: DocumentNode) -> int:
    """The bytes a cached `document` of `query` holds, estimated from above."""
    cost = ENTRY_BYTES + sys.getsizeof(query)
    token = document.loc.start_token if document.loc is not None else None
    while token is not None:
        cost += TOKEN_BYTES
        if token.value:
            # Names, strings and comments are slices of the text: copies of their own.
            cost += sys.getsizeof(token.value)
        token = token.next
    return cost


@dataclass
class CachedDocument:
    """One query text, parsed; its validation errors; its compiled operations."""

    document: DocumentNode
    # None until the document has been validated against this schema's rules.
    errors: list[GraphQLError] | None = None
    # The compiled path's operations of this document, by operation name
    # (`schema.compiled.planning`; None: that operation is graphql-core's).
    compiled: dict[str | None, Any] = field(default_factory=dict)
    # Bytes charged to the store for this entry (`document_cost` and what was added).
    cost: int = 0


@dataclass
class DocumentStore:
    """The shared LRU of parsed (and validated) documents of one schema.

    Bounded three ways: `maxsize` entries, `max_bytes` charged in all, and no entry
    costing more than `max_document_bytes` (`settings.MemorySettings`).
    """

    maxsize: int = 512
    max_bytes: int = 64 * 1024 * 1024
    max_document_bytes: int = 256 * 1024
    entries: OrderedDict[str, CachedDocument] = field(default_factory=OrderedDict)
    # Bytes charged to the entries kept.
    size: int = 0

    def keeps(self, query: str) -> bool:
        """Whether a document of this text could be kept at all (its text alone fits)."""
        return sys.getsizeof(query) + ENTRY_BYTES <= self.max_document_bytes

    def get(self, query: str) -> CachedDocument | None:
        entry = self.entries.get(query)
        if entry is not None:
            self.entries.move_to_end(query)
        return entry

    def put(self, query: str, document: DocumentNode) -> CachedDocument:
        """The entry of `query`, kept when it fits (else it serves its request only)."""
        entry = CachedDocument(document, cost=document_cost(query, document))
        if entry.cost > min(self.max_document_bytes, self.max_bytes) or not self.keeps(query):
            return entry
        previous = self.entries.pop(query, None)
        if previous is not None:
            self.size -= previous.cost
        self.entries[query] = entry
        self.size += entry.cost
        self._evict()
        return entry

    def charge(self, query: str, entry: CachedDocument, cost: int) -> None:
        """`entry` now holds `cost` more bytes (validation errors, a compiled operation)."""
        entry.cost += cost
        if self.entries.get(query) is not entry:
            return
        if entry.cost > min(self.max_document_bytes, self.max_bytes):
            # Grown past what one document may hold: it serves its requests and goes.
            del self.entries[query]
            self.size -= entry.cost - cost
            return
        self.size += cost
        self._evict()

    def _evict(self) -> None:
        entries = self.entries
        while len(entries) > self.maxsize or (self.size > self.max_bytes and entries):
            _, dropped = entries.popitem(last=False)
            self.size -= dropped.cost


def errors_cost(errors: list[GraphQLError]) -> int:
    """The bytes validation errors hold: messages name what the document wrote."""
    return sum(ERROR_BYTES + sys.getsizeof(error.message) for error in errors)


def compiled_cost(query: str) -> int:
    """The bytes charged for one compiled operation of the document of `query`."""
    return ERROR_BYTES + 2 * sys.getsizeof(query)


class DocumentCache(SchemaExtension):
    """Per-operation view of a DocumentStore (schema extensions are made per operation)."""

    def __init__(self, store: DocumentStore) -> None:
        self._store = store
        self._entry: CachedDocument | None = None

    def on_parse(self) -> Iterator[None]:
        context = self.execution_context
        query = context.query
        if query is not None and context.graphql_document is None and self._store.keeps(query):
            self._entry = self._store.get(query)
            if self._entry is not None:
                # Strawberry skips parsing when a document is already there.
                context.graphql_document = self._entry.document
        yield
        document = context.graphql_document
        if self._entry is None and document is not None:
            # Parsed now: its tokens must go with it, not wait for the cyclic collector.
            unlink_tokens(document)
            if query is not None and self._store.keeps(query):
                self._entry = self._store.put(query, document)

    def on_validate(self) -> Iterator[None]:
        context = self.execution_context
        entry = self._entry
        if entry is not None and entry.errors is not None:
            # Strawberry validates only while this is None.
            context.pre_execution_errors = list(entry.errors)
        yield
        if entry is not None and entry.errors is None and context.pre_execution_errors is not None:
            entry.errors = list(context.pre_execution_errors)
            query = context.query
            if entry.errors and query is not None:
                self._store.charge(query, entry, errors_cost(entry.errors))
