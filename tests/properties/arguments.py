"""Hypothesis strategies for every argument of the fields that call Personalize.

Each drawn call carries a verdict per argument, computed here from the documented limits
(DESIGN.md "Personalize facts", the schema's own descriptions), never from the
subgraph's code:

- OK: within the limits; the subgraph must answer with data.
- BAD: beyond them; the subgraph must refuse with BAD_USER_INPUT naming the argument,
  before any call.
- EITHER: the service model allows it but the subgraph documents a narrower range
  (numResults 0, an empty id, duplicate context keys, an empty itemIds list); refusing is
  fine, as long as the refusal is coded and named.

Strings mix the characters that break encodings (quotes, backslashes, commas, NUL,
astral and non-ASCII digits) with any Unicode, and long strings are built by repeating a
drawn unit so that lengths sit exactly around each limit without huge draws.
"""

import dataclasses
import re
from dataclasses import dataclass
from enum import IntEnum
from typing import Any

from hypothesis import strategies as st

from tests.properties.graph import FieldSpec, FilterSpec, Graph

MAX_ID = 256
MAX_RESULTS = 500
MAX_RESULTS_WITH_METADATA = 50
MAX_CONTEXT = 150
MAX_FILTER_VALUE = 1000
MAX_CONTEXT_VALUE = 1000
MAX_INPUT_LIST = 500
INT32 = (-(2**31), 2**31 - 1)
# The schema documents `[A-Za-z0-9_]{1,150}`: ASCII only. (Python's `\d` also matches
# other scripts' digits; the service's Java-style pattern does not.)
CONTEXT_KEY = re.compile(r"[A-Za-z0-9_]{1,150}", re.ASCII)
PROMOTION_NAME = re.compile(r"[a-zA-Z0-9][a-zA-Z0-9_-]{0,62}", re.ASCII)
USERS = 5000
ITEMS = 2000

# Characters that end, split or corrupt a quoted, comma-separated value, plus non-ASCII
# letters and digits (U+0663 ARABIC-INDIC DIGIT THREE, U+FF11 FULLWIDTH DIGIT ONE).
TRICKY = "\"\\,'$()[]{}|: \t\n\r\x00\u200b\u00e9\u65e5\U0001f600\u0663\uff11"
CHARS = st.one_of(st.sampled_from(TRICKY), st.characters(codec="utf-8"))
KEY_CHARS = st.sampled_from("abcXYZ019_")
_ALNUM = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
ASCII_KEYS = st.text(st.sampled_from(_ALNUM + "_"), min_size=1, max_size=12)
"""Context keys within the documented pattern (drawn directly: from_regex rejects a lot)."""
PROMOTION_NAMES = st.tuples(
    st.sampled_from(_ALNUM), st.text(st.sampled_from(_ALNUM + "_-"), max_size=20)
).map("".join)


class Verdict(IntEnum):
    """What the documented limits say about an argument; the worst one counts."""

    OK = 0
    EITHER = 1
    BAD = 2


class _Omitted:
    def __repr__(self) -> str:
        return "OMITTED"


OMITTED: Any = _Omitted()
"""An argument left out of the query (as opposed to an explicit null)."""


class EnumValue(str):
    """A string that is written as a GraphQL enum value, not a string literal."""

    __slots__ = ()


@dataclass
class Call:
    """One field call: the entity key (if any), the arguments and their verdicts."""

    field: FieldSpec
    key: str | None
    args: dict[str, Any]
    verdicts: dict[str, Verdict] = dataclasses.field(default_factory=dict)

    def judge(self, name: str, verdict: Verdict) -> None:
        """Record `verdict` for the argument a refusal would name (worst verdict wins)."""
        if verdict is not Verdict.OK:
            self.verdicts[name] = max(verdict, self.verdicts.get(name, Verdict.OK))

    @property
    def refused(self) -> set[str]:
        """Arguments a refusal must name one of (BAD and EITHER)."""
        return set(self.verdicts)

    @property
    def must_fail(self) -> bool:
        return Verdict.BAD in self.verdicts.values()


def sized_text(sizes: st.SearchStrategy[int], chars: st.SearchStrategy[str] = CHARS) -> Any:
    """Text of exactly a drawn length, made by repeating a short drawn unit."""

    @st.composite
    def build(draw: st.DrawFn) -> str:
        n = draw(sizes)
        unit = draw(st.text(chars, min_size=1, max_size=6))
        return (unit * (n // len(unit) + 1))[:n]

    return build()


def around(*limits: int) -> st.SearchStrategy[int]:
    """Small sizes, and sizes just below, at and above each limit."""
    return st.one_of(st.integers(0, 4), *(st.integers(n - 2, n + 2) for n in limits))


def short_text() -> st.SearchStrategy[str]:
    return st.text(CHARS, max_size=8)


def ids(prefix: str, count: int) -> st.SearchStrategy[str]:
    """Known demo ids, arbitrary short ids, and ids around 256 characters."""
    known = st.integers(1, count).map(lambda i: f"{prefix}-{i:04d}")
    return st.one_of(known, known, short_text(), sized_text(st.integers(MAX_ID - 2, MAX_ID + 2)))


def id_verdict(value: str) -> Verdict:
    if not value:
        return Verdict.EITHER
    return Verdict.OK if len(value) <= MAX_ID else Verdict.BAD


def num_results() -> st.SearchStrategy[Any]:
    return st.one_of(
        st.just(OMITTED),
        st.none(),
        st.integers(-2, 3),
        st.integers(MAX_RESULTS_WITH_METADATA - 2, MAX_RESULTS_WITH_METADATA + 2),
        st.integers(MAX_RESULTS - 2, MAX_RESULTS + 2),
        st.sampled_from(INT32),
    )


def num_results_verdict(value: Any, *, metadata: bool) -> Verdict:
    if value is OMITTED or value is None:
        return Verdict.OK
    limit = MAX_RESULTS_WITH_METADATA if metadata else MAX_RESULTS
    if value == 0:
        # The model allows 0; the schema documents 1..500.
        return Verdict.EITHER
    return Verdict.OK if 1 <= value <= limit else Verdict.BAD


def context_keys() -> st.SearchStrategy[str]:
    ascii_key = ASCII_KEYS
    # Digits of other scripts: Python's `\d` takes them, the documented pattern does not.
    other_digit = st.tuples(ascii_key, st.sampled_from("\u0663\uff11\u0966")).map("".join)
    return st.one_of(
        ascii_key,
        other_digit,
        other_digit,
        sized_text(st.integers(MAX_CONTEXT - 2, MAX_CONTEXT + 2), KEY_CHARS),
        short_text(),
    )


def context_values() -> st.SearchStrategy[str]:
    return st.one_of(
        short_text(), sized_text(st.integers(MAX_CONTEXT_VALUE - 2, MAX_CONTEXT_VALUE + 2))
    )


@st.composite
def contexts(draw: st.DrawFn) -> Any:
    """OMITTED, null, or a list of {key, value} of 0..4 or about 150 entries."""
    if draw(st.integers(0, 5)) == 0:
        return draw(st.sampled_from([OMITTED, None]))
    n = draw(st.one_of(st.integers(0, 4), st.integers(MAX_CONTEXT - 2, MAX_CONTEXT + 2)))
    entry = st.tuples(context_keys(), context_values())
    special = draw(st.lists(entry, min_size=min(n, 1), max_size=min(n, 3)))
    entries = special + [(f"k{i}", "v") for i in range(n - len(special))]
    if entries and draw(st.integers(0, 7)) == 0:
        entries.append((entries[0][0], "again"))
    return [{"key": k, "value": v} for k, v in entries]


def context_verdict(value: Any) -> Verdict:
    if value is OMITTED or value is None:
        return Verdict.OK
    keys = [e["key"] for e in value]
    if any(not CONTEXT_KEY.fullmatch(k) for k in keys):
        return Verdict.BAD
    if any(len(e["value"]) > MAX_CONTEXT_VALUE for e in value):
        return Verdict.BAD
    if len(set(keys)) > MAX_CONTEXT:
        return Verdict.BAD
    if len(keys) != len(set(keys)) or len(keys) > MAX_CONTEXT:
        # A map on the wire cannot carry a key twice: refusing is the honest answer.
        return Verdict.EITHER
    return Verdict.OK


def filter_strings() -> st.SearchStrategy[str]:
    return st.one_of(
        st.sampled_from(["shoes", "bags", "Comedy", ""]),
        short_text(),
        sized_text(st.integers(MAX_FILTER_VALUE - 12, MAX_FILTER_VALUE + 2)),
    )


def string_lists() -> st.SearchStrategy[list[str]]:
    return st.one_of(
        st.lists(filter_strings(), max_size=4),
        # 200 values of "ab" quote to 999 characters; 201 to 1004.
        st.integers(195, 205).map(lambda n: ["ab"] * n),
    )


def encoded_length(values: list[str]) -> int:
    """Length of Personalize's filterValues form: `"a","b"` with `\\` and `"` escaped."""
    return len(",".join('"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"' for v in values))


def filter_numbers() -> st.SearchStrategy[float]:
    return st.one_of(
        st.floats(allow_nan=False, allow_infinity=False),
        st.integers(-(10**6), 10**6).map(float),
        st.sampled_from([0.0, -0.0, 5e-324, 1.7976931348623157e308, 1e16, 0.1]),
    )


def filter_value(spec: FilterSpec) -> st.SearchStrategy[Any]:
    """The value of one `RecommendationFilter` field."""
    if not spec.params:
        return st.booleans()
    kinds = {"strings": string_lists(), "string": filter_strings(), "number": filter_numbers()}
    return st.fixed_dictionaries({p.field: kinds[p.kind] for p in spec.params})


def filters(graph: Graph) -> st.SearchStrategy[Any]:
    """One configured filter with its parameters (a valid @oneOf value)."""
    return st.sampled_from(graph.filters).flatmap(
        lambda spec: filter_value(spec).map(lambda v: {spec.name: v})
    )


def filter_verdict(graph: Graph, value: Any, *, promotion: bool = False) -> Verdict:
    if value is OMITTED or value is None:
        return Verdict.OK
    ((name, chosen),) = value.items()
    spec = next(f for f in graph.filters if f.name == name)
    if not spec.params:
        # `false` asks for no filter, which a promotion cannot do without.
        return Verdict.BAD if promotion and chosen is False else Verdict.OK
    verdict = Verdict.OK
    for param in spec.params:
        given = chosen[param.field]
        if param.kind == "strings":
            if not given or encoded_length(given) > MAX_FILTER_VALUE:
                verdict = Verdict.BAD
        elif param.kind == "string" and encoded_length([given]) > MAX_FILTER_VALUE:
            verdict = Verdict.BAD
    return verdict


def promotion_names() -> st.SearchStrategy[str]:
    return st.one_of(
        PROMOTION_NAMES,
        sized_text(st.integers(61, 65), st.sampled_from("aZ9_-")),
        short_text(),
    )


def promotions(graph: Graph) -> st.SearchStrategy[Any]:
    return st.fixed_dictionaries(
        {
            "name": promotion_names(),
            "percentPromotedItems": st.one_of(
                st.integers(-1, 2), st.integers(99, 101), st.sampled_from(INT32)
            ),
            "filter": filters(graph),
        }
    )


def promotion_verdict(graph: Graph, value: Any) -> Verdict:
    if value is OMITTED or value is None:
        return Verdict.OK
    verdict = filter_verdict(graph, value["filter"], promotion=True)
    if not PROMOTION_NAME.fullmatch(value["name"]):
        verdict = Verdict.BAD
    if not 1 <= value["percentPromotedItems"] <= 100:
        verdict = Verdict.BAD
    return verdict


@st.composite
def item_id_lists(draw: st.DrawFn) -> list[str]:
    """0..4 or about 500 ids: mostly demo items, a few drawn ones (long, empty, odd)."""
    n = draw(st.one_of(st.integers(0, 4), st.integers(MAX_INPUT_LIST - 2, MAX_INPUT_LIST + 2)))
    special = draw(st.lists(ids("item", ITEMS), max_size=min(n, 3)))
    return special + [f"item-{i % ITEMS + 1:04d}" for i in range(n - len(special))]


def item_ids_verdict(value: list[str]) -> Verdict:
    if len(value) > MAX_INPUT_LIST or any(len(i) > MAX_ID for i in value):
        return Verdict.BAD
    if not value or any(not i for i in value):
        return Verdict.EITHER
    return Verdict.OK


def maybe(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Mostly the value; sometimes left out; sometimes an explicit null."""
    return st.one_of(strategy, strategy, strategy, st.just(OMITTED), st.none())


def valid_ids(prefix: str, count: int) -> st.SearchStrategy[str]:
    known = st.integers(1, count).map(lambda i: f"{prefix}-{i:04d}")
    return st.one_of(known, known, st.text(CHARS, min_size=1, max_size=12))


def valid_filters(graph: Graph, *, switch_off: bool = True) -> st.SearchStrategy[Any]:
    """A configured filter with values within limits; `switch_off`: `false` for switches."""

    def value(spec: FilterSpec) -> st.SearchStrategy[Any]:
        if not spec.params:
            return st.booleans() if switch_off else st.just(True)
        short = st.one_of(st.sampled_from(["shoes", "bags", ""]), short_text())
        kinds = {
            "strings": st.lists(short, min_size=1, max_size=4),
            "string": short,
            "number": filter_numbers(),
        }
        return st.fixed_dictionaries({p.field: kinds[p.kind] for p in spec.params})

    return st.sampled_from(graph.filters).flatmap(
        lambda spec: value(spec).map(lambda v: {spec.name: v})
    )


def valid_contexts() -> st.SearchStrategy[Any]:
    entries = st.lists(
        st.tuples(ASCII_KEYS, short_text()),
        max_size=4,
        unique_by=lambda e: e[0],
    ).map(lambda pairs: [{"key": k, "value": v} for k, v in pairs])
    return st.one_of(entries, entries, st.just(OMITTED), st.none())


def valid_promotions(graph: Graph) -> st.SearchStrategy[Any]:
    promotion = st.fixed_dictionaries(
        {
            "name": PROMOTION_NAMES,
            "percentPromotedItems": st.integers(1, 100),
            "filter": valid_filters(graph, switch_off=False),
        }
    )
    return st.one_of(promotion, st.just(OMITTED), st.none())


def _strategies(graph: Graph, needs_user: bool) -> dict[str, tuple[Any, Any]]:
    """Per argument: (values within the limits, values around and beyond them)."""
    users = valid_ids("user", USERS)
    return {
        "itemIds": (
            st.lists(valid_ids("item", ITEMS), min_size=1, max_size=5),
            item_id_lists(),
        ),
        "numResults": (st.one_of(st.just(OMITTED), st.none(), st.integers(1, 50)), num_results()),
        "userId": (users if needs_user else maybe(users), maybe(ids("user", USERS))),
        "filter": (maybe(valid_filters(graph)), filters(graph)),
        "context": (valid_contexts(), contexts()),
        "promotion": (valid_promotions(graph), promotions(graph)),
    }


@st.composite
def calls(draw: st.DrawFn, graph: Graph, field_name: str, edgy_max: int = 2) -> Call:
    """A call of `field_name`: a few arguments drawn around their limits, the rest valid.

    Breaking few arguments at a time keeps property (c) sharp: a refusal has to name
    the one argument that deserved it. `edgy_max`: at most that many (the entity key
    counts as one); 0 keeps every argument within its limits.
    """
    spec = graph.fields[field_name]
    chosen = draw(maybe(st.sampled_from([c.enum_value for c in spec.use_cases])))
    case = spec.use_case(chosen if isinstance(chosen, str) else None)
    strategies = _strategies(graph, case.input in ("user", "user_and_item"))
    names = [n for n in strategies if n in spec.arg_types]
    edgy = draw(st.sets(st.sampled_from([*names, "key"]), max_size=edgy_max))
    key = None
    if spec.owner is not None:
        prefix, count = ("user", USERS) if spec.owner == "user" else ("item", ITEMS)
        key = draw(ids(prefix, count) if "key" in edgy else valid_ids(prefix, count))
    args: dict[str, Any] = {}
    if "useCase" in spec.arg_types:
        args["useCase"] = EnumValue(chosen) if isinstance(chosen, str) else chosen
    for name in names:
        valid, edge = strategies[name]
        args[name] = draw(edge if name in edgy else valid, label=name)
    return judge(graph, Call(spec, key, args), case.metadata, case.input)


def judge(graph: Graph, call: Call, metadata: bool, needs: str) -> Call:
    """Fill in the verdicts of `call` from the documented limits."""
    args = call.args
    if call.key is not None:
        call.judge("userId" if call.field.owner == "user" else "itemId", id_verdict(call.key))
    if "numResults" in args:
        call.judge("numResults", num_results_verdict(args["numResults"], metadata=metadata))
    user = args.get("userId", OMITTED)
    if user is not OMITTED and user is not None:
        call.judge("userId", id_verdict(user))
    elif needs in ("user", "user_and_item") and call.field.owner != "user":
        call.judge("userId", Verdict.BAD)
    if "itemIds" in args:
        call.judge("itemIds", item_ids_verdict(args["itemIds"]))
    if "filter" in args:
        call.judge("filter", filter_verdict(graph, args["filter"]))
    if "context" in args:
        call.judge("context", context_verdict(args["context"]))
    if "promotion" in args:
        call.judge("promotion", promotion_verdict(graph, args["promotion"]))
    return call
