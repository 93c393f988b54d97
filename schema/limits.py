"""Operation limits enforced before execution: depth, aliases, tokens, introspection.

Depth and aliases are validation rules, so they run once per distinct document under
the validation cache and report errors with their own `extensions.code`. Fields inside
`__schema` / `__type` do not count towards depth (the standard introspection query is
15 deep); turn introspection off in production instead. The token limit is graphql-core's
own parser limit, which stops parsing early.
"""

from collections.abc import Iterator
from typing import Any

from graphql import (
    FieldNode,
    FragmentSpreadNode,
    GraphQLError,
    InlineFragmentNode,
    OperationDefinitionNode,
    SelectionSetNode,
)
from graphql.validation import (
    ASTValidationContext,
    ASTValidationRule,
    NoSchemaIntrospectionCustomRule,
)
from strawberry.extensions import SchemaExtension

from settings import LimitsSettings

_INTROSPECTION = frozenset({"__schema", "__type"})
# graphql-core's message when the parser's token limit stops it.
TOKEN_LIMIT_MESSAGE = "Document contains more than"


def _walk(
    context: ASTValidationContext, selection_set: SelectionSetNode, seen: frozenset[str]
) -> Iterator[tuple[FieldNode, int]]:
    """Every field below `selection_set` with its depth, fragments expanded."""
    for selection in selection_set.selections:
        if isinstance(selection, FieldNode):
            if selection.name.value in _INTROSPECTION:
                continue
            yield selection, 1
            if selection.selection_set is not None:
                for field, depth in _walk(context, selection.selection_set, seen):
                    yield field, depth + 1
        elif isinstance(selection, FragmentSpreadNode):
            name = selection.name.value
            fragment = context.get_fragment(name)
            # A cycle is reported by NoFragmentCyclesRule; just do not follow it.
            if fragment is not None and name not in seen:
                yield from _walk(context, fragment.selection_set, seen | {name})
        elif isinstance(selection, InlineFragmentNode):
            yield from _walk(context, selection.selection_set, seen)


def _limit_error(message: str, node: Any, code: str) -> GraphQLError:
    return GraphQLError(message, node, extensions={"code": code})


def limit_rules(limits: LimitsSettings) -> list[type[ASTValidationRule]]:
    """Validation rules for these limits, as classes (instances would defeat caching)."""

    class OperationLimits(ASTValidationRule):
        def enter_operation_definition(self, node: OperationDefinitionNode, *_: Any) -> None:
            depth = aliases = 0
            for field, level in _walk(self.context, node.selection_set, frozenset()):
                depth = max(depth, level)
                aliases += field.alias is not None
            name = node.name.value if node.name else "anonymous"
            if depth > limits.max_depth:
                self.report_error(
                    _limit_error(
                        f"operation {name} is {depth} levels deep; the limit is {limits.max_depth}",
                        node,
                        "MAX_DEPTH_LIMIT",
                    )
                )
            if aliases > limits.max_aliases:
                self.report_error(
                    _limit_error(
                        f"operation {name} uses {aliases} aliases; the limit is "
                        f"{limits.max_aliases}",
                        node,
                        "MAX_ALIASES_LIMIT",
                    )
                )

    rules: list[type[ASTValidationRule]] = [OperationLimits]
    return rules


def introspection_rules(enabled: bool) -> list[type[ASTValidationRule]]:
    """graphql-core's rule refusing `__schema` and `__type` when introspection is off."""
    return [] if enabled else [NoSchemaIntrospectionCustomRule]


class TokenLimit(SchemaExtension):
    """Stops the parser after `max_tokens` tokens (a cheap guard against huge documents)."""

    def __init__(self, max_tokens: int) -> None:
        self._max_tokens = max_tokens

    def on_operation(self) -> Iterator[None]:
        self.execution_context.parse_options["max_tokens"] = self._max_tokens
        yield
