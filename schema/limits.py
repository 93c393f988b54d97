"""Operation limits enforced before execution: depth, aliases, tokens, introspection.

Depth and aliases are validation rules, so they run once per distinct document under
the validation cache and report errors with their own `extensions.code`. Fields inside
`__schema` / `__type` do not count towards depth (the standard introspection query is
15 deep) but their aliases do; turn introspection off in production. The token limit
is graphql-core's own parser limit, which stops parsing early.
"""

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

from domain.errors import ErrorCode
from settings import LimitsSettings

_INTROSPECTION = frozenset({"__schema", "__type"})
# graphql-core's message when the parser's token limit stops it.
TOKEN_LIMIT_MESSAGE = "Document contains more than"


class _Measure:
    """Depth and alias count of selection sets, each fragment measured once.

    Expanding fragments at every spread would take exponential time on a small
    document (each fragment spreading the next twice); measuring each fragment once
    keeps validation linear. Alias counts are capped just past the limit.
    """

    def __init__(self, context: ASTValidationContext, alias_cap: int) -> None:
        self._context = context
        self._cap = alias_cap
        self._fragments: dict[str, tuple[int, int]] = {}

    def selection_set(self, selection_set: SelectionSetNode) -> tuple[int, int]:
        depth = aliases = 0
        for selection in selection_set.selections:
            if isinstance(selection, FieldNode):
                below, below_aliases = (
                    self.selection_set(selection.selection_set)
                    if selection.selection_set is not None
                    else (0, 0)
                )
                # Introspection's own nesting (15 levels in the standard query) is not
                # held to the depth limit; its aliases still count.
                if selection.name.value not in _INTROSPECTION:
                    depth = max(depth, 1 + below)
                aliases += below_aliases + (selection.alias is not None)
            elif isinstance(selection, FragmentSpreadNode):
                fragment_depth, fragment_aliases = self.fragment(selection.name.value)
                depth = max(depth, fragment_depth)
                aliases += fragment_aliases
            elif isinstance(selection, InlineFragmentNode):
                inline_depth, inline_aliases = self.selection_set(selection.selection_set)
                depth = max(depth, inline_depth)
                aliases += inline_aliases
        return depth, min(aliases, self._cap)

    def fragment(self, name: str) -> tuple[int, int]:
        known = self._fragments.get(name)
        if known is not None:
            return known
        definition = self._context.get_fragment(name)
        # Marked first: a cycle (reported by NoFragmentCyclesRule) measures as nothing.
        self._fragments[name] = (0, 0)
        if definition is not None:
            self._fragments[name] = self.selection_set(definition.selection_set)
        return self._fragments[name]


def _limit_error(message: str, node: Any, code: str) -> GraphQLError:
    return GraphQLError(message, node, extensions={"code": code})


def limit_rules(limits: LimitsSettings) -> list[type[ASTValidationRule]]:
    """Validation rules for these limits, as classes (instances would defeat caching)."""

    class OperationLimits(ASTValidationRule):
        def enter_operation_definition(self, node: OperationDefinitionNode, *_: Any) -> None:
            measure = _Measure(self.context, limits.max_aliases + 1)
            depth, aliases = measure.selection_set(node.selection_set)
            name = node.name.value if node.name else "anonymous"
            if depth > limits.max_depth:
                self.report_error(
                    _limit_error(
                        f"operation {name} is {depth} levels deep; the limit is {limits.max_depth}",
                        node,
                        ErrorCode.MAX_DEPTH_LIMIT,
                    )
                )
            if aliases > limits.max_aliases:
                self.report_error(
                    _limit_error(
                        f"operation {name} uses {aliases} aliases; the limit is "
                        f"{limits.max_aliases}",
                        node,
                        ErrorCode.MAX_ALIASES_LIMIT,
                    )
                )

    rules: list[type[ASTValidationRule]] = [OperationLimits]
    return rules


def introspection_rules(enabled: bool) -> list[type[ASTValidationRule]]:
    """graphql-core's rule refusing `__schema` and `__type` when introspection is off."""
    return [] if enabled else [NoSchemaIntrospectionCustomRule]
