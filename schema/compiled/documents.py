"""Parse and validate each distinct document once, keyed by its text.

Gateways send the same few operations over and over, and parsing and validating are a
large share of a small operation's work. Strawberry's ParserCache raises syntax errors
while extension hooks are being entered (which skips ErrorCodes), and its
ValidationCache hashes the whole document tree on every lookup; this cache keys both on
the query text instead, and never raises: a document that does not parse is simply not cached.
"""

from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from graphql import DocumentNode, GraphQLError
from strawberry.extensions import SchemaExtension


@dataclass
class CachedDocument:
    """One query text, parsed; its validation errors; its compiled operations."""

    document: DocumentNode
    # None until the document has been validated against this schema's rules.
    errors: list[GraphQLError] | None = None
    # The compiled path's operations of this document, by operation name
    # (`schema.compiled.planning`; None: that operation is graphql-core's).
    compiled: dict[str | None, Any] = field(default_factory=dict)


@dataclass
class DocumentStore:
    """The shared LRU of parsed (and validated) documents of one schema."""

    maxsize: int = 512
    entries: OrderedDict[str, CachedDocument] = field(default_factory=OrderedDict)

    def get(self, query: str) -> CachedDocument | None:
        entry = self.entries.get(query)
        if entry is not None:
            self.entries.move_to_end(query)
        return entry

    def put(self, query: str, document: DocumentNode) -> CachedDocument:
        entry = CachedDocument(document)
        self.entries[query] = entry
        if len(self.entries) > self.maxsize:
            self.entries.popitem(last=False)
        return entry


class DocumentCache(SchemaExtension):
    """Per-operation view of a DocumentStore (schema extensions are made per operation)."""

    def __init__(self, store: DocumentStore) -> None:
        self._store = store
        self._entry: CachedDocument | None = None

    def on_parse(self) -> Iterator[None]:
        context = self.execution_context
        query = context.query
        if query is not None and context.graphql_document is None:
            self._entry = self._store.get(query)
            if self._entry is not None:
                # Strawberry skips parsing when a document is already there.
                context.graphql_document = self._entry.document
        yield
        if self._entry is None and query is not None and context.graphql_document is not None:
            self._entry = self._store.put(query, context.graphql_document)

    def on_validate(self) -> Iterator[None]:
        context = self.execution_context
        entry = self._entry
        if entry is not None and entry.errors is not None:
            # Strawberry validates only while this is None.
            context.pre_execution_errors = list(entry.errors)
        yield
        if entry is not None and entry.errors is None and context.pre_execution_errors is not None:
            entry.errors = list(context.pre_execution_errors)
