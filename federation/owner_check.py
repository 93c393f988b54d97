"""Check this subgraph's entities against the SDL of the subgraph that owns them.

Composition accepts a subgraph saying `Item @key(fields: "id")` where the owner says
`Product @key(fields: "sku")`: the two simply never meet, and queries fail later. This
check compares entity names, key fields and key types (and the fields @requires needs)
and names every mismatch.

    python -m federation.owner_check path/to/owner.graphql   # make check-supergraph OWNER=...

Exit status 1 names the mismatches; 2 is a file it cannot use (unreadable, not UTF-8,
not GraphQL, or a bad SUBGRAPH_CONFIG), said in one line on stderr.
"""

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path

from graphql import (
    DocumentNode,
    FieldDefinitionNode,
    GraphQLSyntaxError,
    ListTypeNode,
    NonNullTypeNode,
    ObjectTypeDefinitionNode,
    ObjectTypeExtensionNode,
    StringValueNode,
    TypeNode,
    parse,
    print_ast,
)

from domain.errors import ConfigurationError
from settings import FederationSettings, load_settings

PROG = "python -m federation.owner_check"


@dataclass(frozen=True)
class Entity:
    """What this subgraph expects of one entity owned elsewhere."""

    role: str  # "user" or "item", for messages
    type_name: str
    key: str
    key_type: str  # as printed: ID! or String!
    fields: tuple[str, ...] = ()


def expected_entities(federation: FederationSettings) -> list[Entity]:
    return [
        Entity(
            "user",
            federation.user_type,
            federation.user_key,
            f"{federation.user_key_scalar}!",
            tuple(federation.user_context_fields),
        ),
        Entity("item", federation.item_type, federation.item_key, f"{federation.item_key_scalar}!"),
    ]


def _types(document: DocumentNode) -> dict[str, list[ObjectTypeDefinitionNode]]:
    found: dict[str, list[ObjectTypeDefinitionNode]] = {}
    for node in document.definitions:
        if isinstance(node, ObjectTypeDefinitionNode | ObjectTypeExtensionNode):
            found.setdefault(node.name.value, []).append(node)  # type: ignore[arg-type]
    return found


def _keys(nodes: list[ObjectTypeDefinitionNode]) -> list[str]:
    keys: list[str] = []
    for node in nodes:
        for directive in node.directives or ():
            if directive.name.value != "key":
                continue
            for argument in directive.arguments or ():
                if argument.name.value == "fields" and isinstance(argument.value, StringValueNode):
                    keys.append(" ".join(argument.value.value.split()))
    return keys


def _fields(nodes: list[ObjectTypeDefinitionNode]) -> dict[str, FieldDefinitionNode]:
    return {f.name.value: f for node in nodes for f in node.fields or ()}


def _printed(node: TypeNode) -> str:
    if isinstance(node, NonNullTypeNode):
        return _printed(node.type) + "!"
    if isinstance(node, ListTypeNode):
        return f"[{_printed(node.type)}]"
    return print_ast(node)


def mismatches(owner_sdl: str, entities: list[Entity]) -> list[str]:
    """Every difference between what we declare and what the owner declares."""
    types = _types(parse(owner_sdl))
    keyed = sorted(name for name, nodes in types.items() if _keys(nodes))
    problems: list[str] = []
    for entity in entities:
        nodes = types.get(entity.type_name)
        if not nodes:
            problems.append(
                f"{entity.role} entity: the owner has no type {entity.type_name}"
                f" (its entities: {', '.join(keyed) or 'none'}); set federation.{entity.role}_type"
            )
            continue
        keys = _keys(nodes)
        if entity.key not in keys:
            problems.append(
                f"{entity.role} entity {entity.type_name}: the owner's keys are "
                f"{', '.join(repr(k) for k in keys) or 'none'}, not {entity.key!r};"
                f" set federation.{entity.role}_key"
            )
        fields = _fields(nodes)
        key_field = fields.get(entity.key)
        if key_field is not None and _printed(key_field.type) != entity.key_type:
            problems.append(
                f"{entity.role} entity {entity.type_name}: key {entity.key} is "
                f"{_printed(key_field.type)} in the owner, {entity.key_type} here;"
                f" set federation.{entity.role}_key_scalar"
            )
        for name in entity.fields:
            if name not in fields:
                problems.append(
                    f"{entity.role} entity {entity.type_name}: the owner has no field {name}"
                    " (needed by @requires for context)"
                )
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__)
    parser.add_argument("owner", type=Path, help="SDL file of the subgraph owning the entities")
    args = parser.parse_args(argv)
    owner: Path = args.owner
    try:
        sdl = owner.read_text(encoding="utf-8")
    except OSError as exc:
        return _fail(f"cannot read {owner}: {exc.strerror or exc}")
    except UnicodeDecodeError as exc:
        return _fail(f"{owner}: not UTF-8 text: {exc.reason}")
    try:
        federation = load_settings().federation
        problems = mismatches(sdl, expected_entities(federation))
    except ConfigurationError as exc:
        return _fail(str(exc))
    except GraphQLSyntaxError as exc:
        # Its str() quotes the offending source lines beneath the message; the position is
        # enough here, as file:line:column, which editors open.
        where = "".join(f":{loc.line}:{loc.column}" for loc in (exc.locations or ())[:1])
        return _fail(f"{owner}{where}: not GraphQL SDL: {exc.message}")
    for problem in problems:
        print(f"MISMATCH {problem}")
    if problems:
        return 1
    print(f"entities match {args.owner}")
    return 0


def _fail(message: str) -> int:
    print(f"{PROG}: error: {message}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
