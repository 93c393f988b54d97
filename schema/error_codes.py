"""The one place where exceptions become GraphQL errors with `extensions.code`.

Our own errors (`errors.SubgraphError`) keep their message and get their code; GraphQL
syntax and validation errors get Apollo's standard codes; anything else is a bug, logged
with its traceback here and shown to the client only as "Internal server error".
"""

import logging
from collections.abc import Iterator

from graphql import GraphQLError, GraphQLSyntaxError
from strawberry.extensions import SchemaExtension

from domain.errors import ErrorCode, SubgraphError
from schema.limits import TOKEN_LIMIT_MESSAGE

log = logging.getLogger(__name__)


class ErrorCodes(SchemaExtension):
    """Codes every error and masks the unexpected ones."""

    def on_operation(self) -> Iterator[None]:
        self._executed = False
        yield
        result = self.execution_context.result
        errors = getattr(result, "errors", None)
        beside = getattr(self.execution_context.context, "errors", None)
        if result is not None and beside:
            # Errors a resolver reported beside its data (resolvers.cart), after the
            # executor's own.
            errors = result.errors = [*(errors or []), *beside]
        if result is not None and errors:
            result.errors = [coded(e, executed=self._executed) for e in errors]

    def on_execute(self) -> Iterator[None]:
        self._executed = True
        yield


def coded(error: GraphQLError, *, executed: bool) -> GraphQLError:
    """`error` with its `extensions.code`; an unexpected one is logged and masked.

    `executed`: whether the operation had started executing (a GraphQL error without
    a code is then a bad variable or argument value, else a validation failure).
    """
    original = error.original_error
    extensions = dict(error.extensions or {})
    if isinstance(original, SubgraphError):
        extensions["code"] = original.code
    elif original is None or isinstance(original, GraphQLError):
        if "code" not in extensions:
            extensions["code"] = _graphql_code(error, executed)
    else:
        log.error(
            "unexpected error in %s",
            ".".join(map(str, error.path or ())) or "operation",
            exc_info=original,
        )
        return GraphQLError(
            "Internal server error",
            nodes=error.nodes,
            source=error.source,
            positions=error.positions,
            path=error.path,
            extensions={"code": ErrorCode.INTERNAL_SERVER_ERROR},
        )
    return GraphQLError(
        error.message,
        nodes=error.nodes,
        source=error.source,
        positions=error.positions,
        path=error.path,
        original_error=original,
        extensions=extensions,
    )


def _graphql_code(error: GraphQLError, executed: bool) -> str:
    if isinstance(error, GraphQLSyntaxError):
        if TOKEN_LIMIT_MESSAGE in error.message:
            return ErrorCode.MAX_TOKENS_LIMIT
        return ErrorCode.GRAPHQL_PARSE_FAILED
    # Errors before execution are validation; during it, bad variable or argument values.
    return ErrorCode.BAD_USER_INPUT if executed else ErrorCode.GRAPHQL_VALIDATION_FAILED
