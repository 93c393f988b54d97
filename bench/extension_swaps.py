"""The document cache and the token limit against Strawberry's own extensions, in-process.

Both sides are the subgraph's schema as server.py builds it (`schema.build.build_schema`
with the `OperationInfo` observer), from `bench.home_at_hand`'s settings (the compiled
path off). The library side then has one extension replaced, in its place in the list:

- document cache: `DocumentCache` by `ParserCache` and `ValidationCache` (maxsize 512, as
  `DocumentStore`'s);

An operation is `schema.execute` of the home query, as the /graphql endpoint calls it,
with a fresh context over the app's backend (every answer from its cache); CPU is this
process's. Before timing, the same refused documents (too many tokens, a syntax error,
an unknown field twice: once parsed, once cached) go through both schemas, and the
errors they answer (message and `extensions.code`) are compared.
"""

import functools
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from strawberry.extensions import ParserCache, ValidationCache
from strawberry.types import ExecutionResult
from strawberry.types.graphql import OperationType

from bench.home_at_hand import home_variables
from bench.side_by_side import Comparison, Side, compare
from bench.workloads import HOME
from resolvers.context import Context
from schema.build import build_schema
from schema.compiled.documents import DocumentCache, DocumentStore
from schema.subgraph_schema import SubgraphSchema
from settings import Settings

# What the endpoint allows over POST.
ALLOWED = {OperationType.QUERY, OperationType.MUTATION}


@dataclass(frozen=True)
class Swap:
    """One of ours against the library's extensions in its place: CPU, and how errors differ."""

    comparison: Comparison
    # One line per refused document whose errors differ between the two schemas.
    differences: tuple[str, ...]


def subgraph_schema(settings: Settings) -> SubgraphSchema:
    """The schema as server.create_app builds it."""
    return build_schema(settings)


def with_replaced(schema: SubgraphSchema, ours: type, library: Sequence[Any]) -> SubgraphSchema:
    """`schema` with its one extension of class `ours` replaced by `library`, in place."""
    extensions: list[Any] = []
    for extension in schema.extensions:
        # build_schema passes our parametrised extensions as partials.
        if isinstance(extension, functools.partial) and extension.func is ours:
            extensions.extend(library)
        else:
            extensions.append(extension)
    if len(extensions) != len(schema.extensions) + len(library) - 1:
        raise RuntimeError(f"the schema has no single {ours.__name__} extension to replace")
    schema.extensions = tuple(extensions)
    return schema


def strawberry_caches(settings: Settings) -> SubgraphSchema:
    """The subgraph's schema with Strawberry's parser and validation caches for DocumentCache."""
    size = DocumentStore().maxsize
    return with_replaced(
        subgraph_schema(settings),
        DocumentCache,
        [
            functools.partial(ParserCache, maxsize=size),
            functools.partial(ValidationCache, maxsize=size),
        ],
    )


async def _execute(
    schema: SubgraphSchema, query: str, variables: dict[str, Any] | None, context: Context
) -> ExecutionResult:
    result: ExecutionResult = await schema.execute(
        query, variable_values=variables, context_value=context, allowed_operation_types=ALLOWED
    )
    return result


def _home(
    schema: SubgraphSchema, context: Callable[[], Context]
) -> Callable[[int], Awaitable[None]]:
    variables = home_variables()

    async def run(n: int) -> None:
        for _ in range(n):
            result = await _execute(schema, HOME.query, variables, context())
            if result.errors:
                raise RuntimeError(f"the home query failed: {result.errors[0]}")

    return run


def refused_documents(max_tokens: int) -> list[tuple[str, str]]:
    """(what it is, query) of documents the subgraph refuses before execution."""
    return [
        ("too many tokens", "query { " + "__typename " * (max_tokens + 1) + "}"),
        ("syntax error", "query { _service { sdl }"),
        ("unknown field", "query { unknownField }"),
        ("unknown field, cached", "query { unknownField }"),
    ]


async def _errors(schema: SubgraphSchema, query: str, context: Context) -> str:
    """The answer's errors as `message [code]`, joined."""
    try:
        result = await _execute(schema, query, None, context)
    except Exception as exc:
        return f"raised {type(exc).__name__}: {exc}"
    return "; ".join(
        f"{error.message} [{(error.extensions or {}).get('code', 'no code')}]"
        for error in result.errors or ()
    )


async def error_differences(
    ours: SubgraphSchema,
    library: SubgraphSchema,
    settings: Settings,
    context: Callable[[], Context],
) -> tuple[str, ...]:
    """One line per refused document that the two schemas answer with different errors."""
    found = []
    for what, query in refused_documents(settings.limits.max_tokens):
        a = await _errors(ours, query, context())
        b = await _errors(library, query, context())
        if a != b:
            found.append(f"{what}: ours {a!r}, library {b!r}")
    return tuple(found)


async def swap(
    ours: SubgraphSchema,
    library: SubgraphSchema,
    settings: Settings,
    context: Callable[[], Context],
    *,
    ops: int,
    rounds: int,
) -> Swap:
    """Errors compared, same home answer checked, then CPU µs per home operation of each."""
    differences = await error_differences(ours, library, settings, context)
    variables = home_variables()
    a = await _execute(ours, HOME.query, variables, context())
    b = await _execute(library, HOME.query, variables, context())
    if a.errors or b.errors or a.data != b.data:
        raise RuntimeError(f"the two schemas answer the home query differently: {a} / {b}")
    comparison = await compare(
        Side(_home(ours, context), time.process_time),
        Side(_home(library, context), time.process_time),
        ops=ops,
        rounds=rounds,
    )
    return Swap(comparison, differences)
