"""Whole GraphQL requests over the served schema, drawn for the compiled-path equivalence test.

A drawn request has root fields `_entities` (User and Item representations, good and
bad), `popularItems`, `_service` and `__typename`. The calls and their arguments come
from `tests.properties.arguments.calls` (every argument, within and beyond its limits);
this module draws what surrounds them: selections with aliases, repeated response keys,
inline and named fragments, `@include`/`@skip`, `__typename`, nested `item` and
`metadata`; arguments inline or as variables (left out or of the wrong type now and
then); operation names; GET or POST and the Accept header.

Each request records why the compiled path may decline it, from that path's documented
scope rather than its code: it takes a query of `_entities` and Query's Personalize
fields; under `_entities`, `__typename` and inline fragments on the entity types
holding `__typename`, the key and Personalize fields; under those, `__typename`,
`recommendationId`, `source` and `items` with the item leaves, `item { __typename id }`
and `metadata`; no directives, named fragments or repeated response keys; a valid
document within the operation limits. Of that shape, with every argument, key and
variable within limits, the compiled path must answer rather than decline.

Half the requests are tame: they break none of that, so that the compiled path answers
a good share of them; the wild half breaks a little of everything.
"""

import itertools
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from graphql import FieldNode, GraphQLSyntaxError, Visitor, parse, visit
from hypothesis import strategies as st

from settings import LimitsSettings
from tests.properties.arguments import OMITTED, Call, EnumValue, calls, judge
from tests.properties.graph import Graph
from tests.properties.operations import literal

# Inline literals are kept small so that documents stay within the parser's token limit.
_INLINE_MAX_ITEMS = 6
_INLINE_MAX_CHARS = 200
# GET only for requests whose query string stays short.
_GET_MAX_CHARS = 1_500
ACCEPTS = (
    None,
    "application/json",
    "application/graphql-response+json",
    "application/graphql-response+json, application/json;q=0.9",
)
_LIMITS = LimitsSettings()
_ALIASES = ("a", "b", "c", "first", "second")
_PREDICTED_FIELDS = (
    "itemId",
    "score",
    "promotionName",
    "reasons",
    "__typename",
    "item",
    "metadata",
)
_RECOMMENDATIONS_FIELDS = ("__typename", "recommendationId", "source", "items")


def within_limits(query: str) -> bool:
    """Whether the document keeps to the configured token and alias limits (the defaults
    of `settings.LimitsSettings`), as graphql-core's parser reads it."""
    try:
        document = parse(query, max_tokens=_LIMITS.max_tokens)
    except GraphQLSyntaxError:
        return False
    aliases = 0

    class Aliases(Visitor):
        def enter_field(self, node: FieldNode, *_: Any) -> None:
            nonlocal aliases
            aliases += node.alias is not None

    visit(document, Aliases())
    # Fragments count once per spread; drawn documents with fragments are not compiled
    # anyway, so counting each once is enough here.
    return aliases <= _LIMITS.max_aliases


@dataclass(frozen=True)
class Steering:
    """Values the backend is told to fail on, drawn far more often than chance would."""

    users: tuple[str, ...] = ()
    items: tuple[str, ...] = ()
    num_results: tuple[int, ...] = ()


@dataclass(frozen=True)
class Drawn:
    """One request as sent, and what was drawn into it."""

    method: str
    query: str
    variables: dict[str, Any] | None
    operation_name: str | None
    accept: str | None
    # Why the compiled path may decline it: empty when it is of that path's shape with
    # every argument, key and variable within limits.
    declined: tuple[str, ...]
    calls: int

    @property
    def compiled(self) -> bool:
        """Whether the compiled path must answer it (rather than decline)."""
        return not self.declined


def _inline(value: Any) -> bool:
    if isinstance(value, str):
        return len(value) <= _INLINE_MAX_CHARS
    if isinstance(value, list):
        return len(value) <= _INLINE_MAX_ITEMS and all(_inline(v) for v in value)
    if isinstance(value, dict):
        return all(_inline(v) for v in value.values())
    return True


class _Writer:
    """One document being written: its variables and fragments, and whether it keeps to
    the compiled path's shape and to the limits."""

    def __init__(self, draw: st.DrawFn, graph: Graph, steering: Steering, *, wild: bool) -> None:
        self.draw = draw
        self.graph = graph
        self.steering = steering
        # Only a wild document breaks the compiled path's shape, a limit or a variable:
        # something broken somewhere in every document would leave that path idle.
        self.wild = wild
        self.declared: list[str] = []
        self.variables: dict[str, Any] = {}
        self.fragments: list[str] = []
        self._names = itertools.count()
        self.shaped = True
        self.within = True
        self.calls: list[Call] = []

    def fresh(self, prefix: str) -> str:
        return f"{prefix}{next(self._names)}"

    def chance(self, one_in: int) -> bool:
        # True on the last value, not the first: where Hypothesis runs out of data it
        # draws the simplest value (0), which must not add mischief everywhere.
        return self.draw(st.integers(0, one_in - 1)) == one_in - 1

    def mischief(self, one_in: int) -> bool:
        """A chance, in a wild document only."""
        return self.wild and self.chance(one_in)

    # --- values

    def value(self, graphql_type: str, value: Any) -> str:
        """`value` written inline, or passed as a variable of `graphql_type`."""
        if _inline(value) and self.draw(st.booleans()):
            return literal(value)
        name = self.fresh("v")
        if value is not None and not graphql_type.endswith("!") and self.chance(4):
            # A non-null variable may stand for a nullable argument.
            graphql_type += "!"
        self.declared.append(f"${name}: {graphql_type}")
        if self.mischief(12):
            # Not sent: a nullable argument is then left out, a `!` one is an error.
            self.within = False
        elif graphql_type != "_Any!" and self.mischief(12):
            self.variables[name] = {"not": ["of", "this", "type"]}
            self.within = False
        else:
            self.variables[name] = value
        return f"${name}"

    # --- selections

    def keyed(self, name: str, taken: set[str]) -> str:
        """`name`, or `alias: name`; a key that siblings already use only by mistake."""
        choice = self.draw(st.sampled_from((name, *_ALIASES))) if self.chance(3) else None
        if (choice or name) in taken and not self.mischief(4):
            choice = self.fresh("k")
        key = choice or name
        if key in taken:
            # A key siblings use: the same field merged, or a validation error.
            self.shaped = False
        taken.add(key)
        return name if choice is None else f"{choice}: {name}"

    def block(self, type_name: str, entries: list[str]) -> str:
        """`{ entries }`, now and then with one repeated, wrapped or under a directive."""
        entries = list(entries)
        if entries and self.mischief(8):
            # The same text twice: one response key for both, merged.
            entries.insert(
                self.draw(st.integers(0, len(entries))), self.draw(st.sampled_from(entries))
            )
            self.shaped = False
        if entries and self.mischief(6):
            start = self.draw(st.integers(0, len(entries) - 1))
            end = self.draw(st.integers(start + 1, len(entries)))
            entries[start:end] = [self._wrapped(type_name, " ".join(entries[start:end]))]
            self.shaped = False
        return "{ " + " ".join(entries) + " }"

    def _wrapped(self, type_name: str, inner: str) -> str:
        kind = self.draw(st.sampled_from(("typed", "untyped", "named", "include", "skip")))
        if kind == "typed":
            return f"... on {type_name} {{ {inner} }}"
        if kind == "untyped":
            return f"... {{ {inner} }}"
        if kind == "named":
            fragment = self.fresh("F")
            self.fragments.append(f"fragment {fragment} on {type_name} {{ {inner} }}")
            return f"...{fragment}"
        condition = self.value("Boolean!", self.draw(st.booleans()))
        return f"... @{kind}(if: {condition}) {{ {inner} }}"

    def subset(self, names: Sequence[str], max_size: int) -> list[str]:
        chosen: list[str] = self.draw(
            st.lists(st.sampled_from(names), min_size=1, max_size=max_size, unique=True)
        )
        return chosen

    def item(self) -> str:
        taken: set[str] = set()
        entries = [
            self.keyed(name, taken) for name in self.subset(("__typename", self.graph.item_key), 2)
        ]
        if self.mischief(12):
            # A Personalize call per listed item: graphql-core's, and a drain on the budget.
            entries.append(self.keyed("related", taken) + "(numResults: 1) { items { itemId } }")
            self.shaped = False
        return self.block(self.graph.item_type, entries)

    def predicted(self) -> str:
        taken: set[str] = set()
        entries = []
        for name in self.subset(_PREDICTED_FIELDS, 5):
            key = self.keyed(name, taken)
            if name == "item":
                key += " " + self.item()
            elif name == "metadata":
                fields = self.subset(("key", "value", "__typename"), 3)
                keys: set[str] = set()
                key += " " + self.block("MetadataEntry", [self.keyed(f, keys) for f in fields])
            entries.append(key)
        return self.block("PredictedItem", entries)

    def recommendations(self) -> str:
        taken: set[str] = set()
        entries = []
        for name in self.subset(_RECOMMENDATIONS_FIELDS, 4):
            key = self.keyed(name, taken)
            entries.append(f"{key} {self.predicted()}" if name == "items" else key)
        return self.block("Recommendations", entries)

    # --- calls

    def call(self, field_name: str) -> Call:
        """A drawn call, now and then steered onto a value the backend fails on."""
        edgy = self.draw(st.integers(0, 2)) if self.wild else 0
        drawn = self.draw(calls(self.graph, field_name, edgy), label=field_name)
        spec = drawn.field
        key = drawn.key
        args = dict(drawn.args)
        steer = self.steering
        if spec.owner == "user" and steer.users and self.chance(4):
            key = self.draw(st.sampled_from(steer.users))
        if spec.owner == "item" and steer.items and self.chance(4):
            key = self.draw(st.sampled_from(steer.items))
        if "numResults" in spec.arg_types and steer.num_results and self.chance(6):
            args["numResults"] = self.draw(st.sampled_from(steer.num_results))
        chosen = args.get("useCase")
        case = spec.use_case(chosen if isinstance(chosen, EnumValue) else None)
        call = judge(self.graph, Call(spec, key, args), case.metadata, case.input)
        self.calls.append(call)
        return call

    def field(self, call: Call, taken: set[str]) -> str:
        rendered = [
            f"{name}: {self.value(call.field.arg_types[name], value)}"
            for name, value in call.args.items()
            if value is not OMITTED
        ]
        arguments = f"({', '.join(rendered)})" if rendered else ""
        return f"{self.keyed(call.field.name, taken)}{arguments} {self.recommendations()}"

    # --- root fields

    def entities(self, taken: set[str]) -> str:
        graph = self.graph
        owners = {
            "user": (graph.user_type, graph.user_key),
            "item": (graph.item_type, graph.item_key),
        }
        names = {
            owner: [f for f, spec in graph.fields.items() if spec.owner == owner]
            for owner in owners
        }
        representations: list[Any] = []
        fragments: list[str] = []
        # Response keys of every entity type: `__typename` outside the typed fragments.
        common: set[str] = set()
        if self.chance(3):
            fragments.append(self.keyed("__typename", common))
        untyped = f"... {{ {self.keyed('__typename', common)} }}" if self.chance(6) else None
        for owner, (type_name, key_field) in owners.items():
            chosen = self.draw(st.lists(st.sampled_from(names[owner]), max_size=2))
            drawn = [self.call(name) for name in chosen]
            representations += [{"__typename": type_name, key_field: c.key} for c in drawn]
            inside = set(common)
            entries = []
            if self.chance(3):
                entries.append(self.keyed("__typename", inside))
            if self.chance(3):
                entries.append(self.keyed(key_field, inside))
            entries += [self.field(c, inside) for c in drawn]
            if not entries:
                continue
            if self.mischief(5):
                fragment = self.fresh("E")
                self.fragments.append(
                    f"fragment {fragment} on {type_name} {self.block(type_name, entries)}"
                )
                fragments.append(f"...{fragment}")
                self.shaped = False
            else:
                fragments.append(f"... on {type_name} {self.block(type_name, entries)}")
        if untyped is not None:
            fragments.append(untyped)
        if not representations or self.mischief(4):
            representations += self._odd_representations()
        permuted = self.draw(st.permutations(representations))
        body = self.block("_Entity", fragments) if fragments else "{ __typename }"
        arguments = f"(representations: {self._representations(permuted)})"
        return f"{self.keyed('_entities', taken)}{arguments} {body}"

    def _odd_representations(self) -> list[Any]:
        graph = self.graph
        known = {"__typename": graph.user_type, graph.user_key: "user-0001"}
        odd = self.draw(
            st.lists(
                st.sampled_from(
                    [
                        known,
                        {"__typename": graph.item_type, graph.item_key: "item-0001"},
                        {"__typename": graph.user_type},
                        {"__typename": graph.user_type, graph.user_key: 12},
                        {"__typename": graph.item_type, graph.item_key: None},
                        {"__typename": "Nope", "id": "x"},
                        {graph.user_key: "user-0001"},
                        "user-0001",
                    ]
                ),
                min_size=1,
                max_size=2,
            )
        )
        if any(r is not known for r in odd):
            self.within = False
        return list(odd)

    def _representations(self, representations: list[Any]) -> str:
        if self.draw(st.booleans()):
            return self.value("[_Any!]!", representations)
        return "[" + ", ".join(self.value("_Any!", r) for r in representations) + "]"

    def root(self, kind: str, taken: set[str]) -> str:
        if kind == "entities":
            return self.entities(taken)
        if kind == "popular":
            return self.field(self.call("popularItems"), taken)
        self.shaped = False
        if kind == "service":
            return f"{self.keyed('_service', taken)} {{ sdl }}"
        return self.keyed("__typename", taken)


_ROOTS = ("entities", "entities", "popular")
_WILD_ROOTS = (*_ROOTS, *_ROOTS, "service", "typename")


@st.composite
def requests(draw: st.DrawFn, graph: Graph, steering: Steering) -> Drawn:
    """A request over the whole schema; see the module's docstring."""
    wild = draw(st.booleans())
    writer = _Writer(draw, graph, steering, wild=wild)
    kinds = draw(st.lists(st.sampled_from(_WILD_ROOTS if wild else _ROOTS), min_size=1, max_size=3))
    taken: set[str] = set()
    roots = [writer.root(kind, taken) for kind in kinds]
    if roots and writer.mischief(8):
        roots.append(draw(st.sampled_from(roots)))
        writer.shaped = False
    name = draw(st.sampled_from((None, "Q", "Page")))
    header = "query" + (f" {name}" if name else "")
    if writer.declared:
        header += f"({', '.join(writer.declared)})"
    body = "{ " + " ".join(roots) + " }"
    operation = body if header == "query" and writer.chance(2) else f"{header} {body}"
    documents = [operation, *writer.fragments]
    operation_name: str | None = None
    if name is not None and writer.chance(8):
        documents.insert(draw(st.integers(0, len(documents))), "query Other { __typename }")
        operation_name = name
    elif name is not None and writer.chance(3):
        operation_name = name
    if writer.mischief(15):
        operation_name = "Nope"
        writer.shaped = False
    query = "\n".join(documents)
    variables = writer.variables if writer.variables or writer.chance(2) else None
    size = len(query) + len(json.dumps(variables))
    method = "GET" if size <= _GET_MAX_CHARS and writer.chance(5) else "POST"
    declined = [
        reason
        for reason, broken in (
            ("shape", not writer.shaped),
            ("variables or representations", not writer.within),
            ("arguments beyond limits", any(c.verdicts for c in writer.calls)),
            ("operation limits", not within_limits(query)),
        )
        if broken
    ]
    return Drawn(
        method=method,
        query=query,
        variables=variables,
        operation_name=operation_name,
        accept=draw(st.sampled_from(ACCEPTS)),
        declined=tuple(declined),
        calls=len(writer.calls),
    )
