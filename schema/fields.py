"""Fields whose arguments are only known at start-up (use-case enums, filter inputs).

Strawberry reads a resolver's arguments from its signature, so a generic resolver gets
a signature built from configuration; the resolvers themselves stay plain functions.
"""

import inspect
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, Any

import strawberry
from strawberry.utils.str_converters import to_camel_case


@dataclass(frozen=True)
class Arg:
    """One GraphQL argument: Python name, type annotation, default and description."""

    name: str
    annotation: Any
    default: Any = inspect.Parameter.empty
    description: str | None = None


Resolver = Callable[..., Awaitable[Any]]


def resolver_field(
    impl: Resolver,
    *,
    name: str,
    args: list[Arg],
    returns: Any,
    description: str,
    requires: list[str] | None = None,
) -> Any:
    """A Strawberry field calling `impl(root, info, **arguments)` with the given arguments."""

    async def resolver(root: Any, info: strawberry.Info, **kwargs: Any) -> Any:
        return await impl(root, info, **kwargs)

    parameters = [
        inspect.Parameter("root", inspect.Parameter.POSITIONAL_OR_KEYWORD),
        inspect.Parameter(
            "info", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=strawberry.Info
        ),
    ]
    for arg in args:
        # The GraphQL name is given, not derived: Strawberry would otherwise camel-case
        # every argument name again on every call (a fifth of a warm batch's CPU).
        annotation = arg.annotation
        annotation = Annotated[
            annotation,
            strawberry.argument(description=arg.description, name=to_camel_case(arg.name)),
        ]
        parameters.append(
            inspect.Parameter(
                arg.name, inspect.Parameter.KEYWORD_ONLY, annotation=annotation, default=arg.default
            )
        )
    resolver.__signature__ = inspect.Signature(parameters, return_annotation=returns)  # type: ignore[attr-defined]
    resolver.__annotations__ = {p.name: p.annotation for p in parameters[1:]} | {"return": returns}
    resolver.__name__ = resolver.__qualname__ = name
    if requires:
        return strawberry.federation.field(
            resolver=resolver, description=description, requires=requires
        )
    return strawberry.field(resolver=resolver, description=description)
