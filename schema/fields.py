"""Fields whose arguments are only known at start-up (use-case enums, filter inputs).

Strawberry reads a resolver's arguments from its signature, so a generic resolver gets
a signature built from configuration; the resolvers themselves stay plain functions.
`ResolverFields` remembers, for one schema, the plain function behind each such field,
so that the fast paths (`schema.compiled`) can call it without Strawberry's wrapper.
"""

import inspect
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, Any

import strawberry
from strawberry.types.field import StrawberryField
from strawberry.utils.str_converters import to_camel_case


@dataclass(frozen=True)
class Arg:
    """One GraphQL argument: Python name, type annotation, default and description."""

    name: str
    annotation: Any
    default: Any = inspect.Parameter.empty
    description: str | None = None


# A field's plain function: `impl(root, info, **arguments)`, as graphql-core would call it.
FieldFunction = Callable[..., Awaitable[Any]]


class ResolverFields:
    """The fields of one schema made by `field`, each with the plain function behind it."""

    def __init__(self) -> None:
        # By the wrapper Strawberry was given: what its field definition points back to.
        self._functions: dict[Callable[..., Any], FieldFunction] = {}

    def function(self, wrapper: Callable[..., Any] | None) -> FieldFunction | None:
        """The plain function behind a field's resolver `wrapper`, if `field` made it."""
        return None if wrapper is None else self._functions.get(wrapper)

    def field(
        self,
        impl: FieldFunction,
        *,
        name: str,
        args: list[Arg],
        returns: Any,
        description: str,
        requires: list[str] | None = None,
    ) -> StrawberryField:
        """A Strawberry field calling `impl(root, info, **arguments)` with the given
        arguments, remembered with `impl`."""
        field, wrapper = _resolver_field(
            impl,
            name=name,
            args=args,
            returns=returns,
            description=description,
            requires=requires,
        )
        self._functions[wrapper] = impl
        return field


def _resolver_field(
    impl: FieldFunction,
    *,
    name: str,
    args: list[Arg],
    returns: Any,
    description: str,
    requires: list[str] | None,
) -> tuple[StrawberryField, Callable[..., Any]]:

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
    field: StrawberryField
    if requires:
        field = strawberry.federation.field(
            resolver=resolver, description=description, requires=requires
        )
    else:
        field = strawberry.field(resolver=resolver, description=description)
    return field, resolver
