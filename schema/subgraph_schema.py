"""The subgraph's federation schema: Strawberry's, with expected errors kept quiet and
representations checked before Strawberry resolves them."""

import logging
from typing import Any

from graphql import GraphQLError
from strawberry.federation import Schema
from strawberry.federation.schema import FederationAny
from strawberry.types import ExecutionContext, Info

from domain.errors import InvalidArgument
from schema.compiled import CompiledPath

log = logging.getLogger(__name__)


class SubgraphSchema(Schema):
    """The federation schema, with expected errors kept quiet and representations checked.

    Client mistakes and upstream failures are expected and already coded; the unexpected
    ones are logged once, with their traceback, by ErrorCodes.
    """

    def __init__(self, *args: Any, entity_names: frozenset[str], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # The entity types `_entities` resolves.
        self.entity_names = entity_names
        # The compiled path for the operations a gateway sends; None: graphql-core only.
        self.compiled: CompiledPath | None = None

    # Strawberry builds the `_entities` field from this signature: keep its annotations.
    def entities_resolver(
        self, info: Info, representations: list[FederationAny]
    ) -> list[FederationAny]:
        """Strawberry's resolver, after refusing representations it would crash on.

        A representation that is not an object with the `__typename` of one of our
        entities gets a coded error at its own index instead of failing the whole list.
        """
        results: list[Any] = [None] * len(representations)
        raw: list[Any] = list(representations)
        good: list[tuple[int, dict[str, Any]]] = []
        for index, representation in enumerate(raw):
            typename = (
                representation.get("__typename") if isinstance(representation, dict) else None
            )
            if isinstance(typename, str) and typename in self.entity_names:
                # Strawberry pops `__typename` from the dict it is given: give it a copy.
                good.append((index, dict(representation)))
            else:
                names = ", ".join(sorted(self.entity_names))
                results[index] = InvalidArgument(
                    f"representations[{index}] must be an object whose __typename is one of {names}"
                )
        # Representations are `_Any` scalars: plain dicts at run time.
        chosen: list[Any] = [r for _, r in good]
        resolved = super().entities_resolver(info, chosen) if good else []
        for (index, _), result in zip(good, resolved, strict=True):
            results[index] = result
        return results  # Exceptions in place: each becomes an error at its own index.

    def process_errors(
        self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None
    ) -> None:
        for error in errors:
            log.debug("graphql error at %s: %s", error.path, error.message)
