"""Filters bound to the engine's data and evaluated per request into item masks.

``CompiledFilter`` binds a parsed expression to a dataset, which is where fields are
looked up and typed, and ``allowed()`` gives the items one request may receive.
Semantics follow the service:

- ``Interactions.EVENT_TYPE IN (...)`` looks at the user's latest 100 events of each
  listed type (``"*"`` = every type); event types compare case-insensitively, item
  metadata case-sensitively. A request may bring the user's history with real-time
  events merged in (``UserHistory``); it replaces the dataset's for that request.
- Categorical fields may hold several values separated by ``|``; IN matches when any
  of them is listed (NOT IN when none is).
- ``CurrentItem.F`` is the request's ``itemId``'s own value of F, so it only works on
  related-items requests; an itemId missing from the Items dataset matches nothing.
- ``IF CurrentUser.F ...`` reads the requesting user's row of the Users dataset; when
  the condition does not hold (or the user has no row) the clause does not apply.
- Parts joined by ``|`` combine as the union of applying INCLUDEs minus the union of
  EXCLUDEs.
- INCLUDE parts need every ``$PARAM`` in ``filterValues``; a clause of an EXCLUDE part
  whose parameter is missing is skipped.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

from ..data import Column, Dataset, UserHistory
from ..errors import InvalidInputException
from .categories import Categorical
from .parameters import filter_parameters, parse_filter_value
from .parser import parse_filter
from .syntax import FilterSyntaxError
from .tree import (
    Atom,
    BoolOp,
    Comparison,
    Condition,
    CurrentItemRef,
    LiteralValue,
    Membership,
    Param,
    Value,
    atom_values,
)

INTERACTION_LOOKBACK = 100
"""Events per event type that Interactions filters consider, as in the service."""

Mask = NDArray[np.bool_]


@dataclass(frozen=True)
class EvalContext:
    """What a request contributes to evaluation.

    ``user`` indexes the Interactions users, ``user_row`` the Users dataset and
    ``item_row`` the Items dataset (the request's itemId); ``values`` are the parsed
    filterValues; ``history``, when given, is the user's history with real-time events.
    """

    user: int | None
    user_row: int | None
    item_row: int | None
    values: Mapping[str, list[str]]
    history: UserHistory | None = None


_Evaluator = Callable[[EvalContext], Mask | None]
_Predicate = Callable[[EvalContext], bool | None]
_Getter = Callable[[EvalContext], list[str] | None]

# Any: the same operators compare whole arrays (items) and single floats (the user).
_COMPARE: dict[str, Callable[[Any, Any], Any]] = {
    "=": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}


class CompiledFilter:
    """A filter bound to a dataset; ``allowed()`` gives the item mask for one request."""

    def __init__(self, arn: str, expression: str, dataset: Dataset) -> None:
        self.arn = arn
        self.expression = parse_filter(expression)
        self.kinds = filter_parameters(expression)
        self._dataset = dataset
        self._n_items = len(dataset.items)
        self._categoricals: dict[tuple[str, str], Categorical] = {}
        self.uses_current_item = False
        self.parameters: dict[str, Literal["INCLUDE", "EXCLUDE"]] = {}
        self._parts: list[tuple[Literal["INCLUDE", "EXCLUDE"], _Predicate | None, _Evaluator]] = []
        for part in self.expression.parts:
            params: set[str] = set()
            evaluator = self._bind(part.condition, params)
            predicate = None if part.when is None else self._bind_user(part.when, params)
            for p in params:
                # A name used by any INCLUDE part is required.
                if self.parameters.get(p) != "INCLUDE":
                    self.parameters[p] = part.action
            self._parts.append((part.action, predicate, evaluator))

    def allowed(
        self,
        user: int | None,
        filter_values: Mapping[str, str],
        *,
        user_id: str | None = None,
        item_id: str | None = None,
        history: UserHistory | None = None,
    ) -> Mask:
        """Boolean mask over the Items table of the items this filter lets through.

        ``user`` indexes the Interactions users; ``user_id`` (derived from ``user``
        when omitted) finds the Users row for IF conditions; ``item_id`` is the
        related-items request's item, which CurrentItem refers to; ``history``
        (real-time events merged in) replaces the user's Interactions rows.
        """
        values = {k: parse_filter_value(k, v) for k, v in filter_values.items()}
        missing = sorted(
            p for p, action in self.parameters.items() if action == "INCLUDE" and p not in values
        )
        if missing:
            raise InvalidInputException(
                f"Filter {self.arn} requires filterValues for: {', '.join(missing)}"
            )
        if self.uses_current_item and item_id is None:
            raise InvalidInputException(
                f"Filter {self.arn} uses CurrentItem, which needs an itemId: use it with "
                "related-items recommendations"
            )
        inter = self._dataset.interactions
        if user_id is None and user is not None:
            user_id = inter.user_ids[user]
        ctx = EvalContext(
            user,
            None if user_id is None else self._dataset.users.index.get(user_id),
            None if item_id is None else self._dataset.items.index.get(item_id),
            values,
            history,
        )
        include: Mask | None = None
        exclude: Mask | None = None
        for action, predicate, evaluator in self._parts:
            # False (condition fails) and None (its EXCLUDE parameter is missing) both
            # mean the clause does not apply to this request.
            if predicate is not None and not predicate(ctx):
                continue
            mask = evaluator(ctx)
            if action == "INCLUDE":
                mask = mask if mask is not None else np.zeros(self._n_items, dtype=bool)
                include = mask if include is None else include | mask
            elif mask is not None:
                exclude = mask if exclude is None else exclude | mask
        result = include.copy() if include is not None else np.ones(self._n_items, dtype=bool)
        if exclude is not None:
            result &= ~exclude
        return result

    # Binding turns each syntax node into a closure over precomputed arrays, so request
    # time is a handful of vectorised numpy operations.
    def _bind(self, cond: Condition, params: set[str]) -> _Evaluator:
        if isinstance(cond, BoolOp):
            subs = [self._bind(c, params) for c in cond.operands]
            return self._bool(cond.op, subs)
        params.update(v.name for v in atom_values(cond) if isinstance(v, Param))
        if cond.field.dataset == "Interactions":
            return self._bind_interactions(cond)
        return self._bind_items(cond)

    @staticmethod
    def _bool(op: str, subs: list[_Evaluator]) -> _Evaluator:
        def run(ctx: EvalContext) -> Mask | None:
            result: Mask | None = None
            for sub in subs:
                mask = sub(ctx)
                if mask is None:  # a skipped EXCLUDE clause drops out of AND and OR alike
                    continue
                if result is None:
                    result = mask
                elif op == "AND":
                    result = result & mask
                else:
                    result = result | mask
            return result

        return run

    def _categorical(self, table: str, column: Column) -> Categorical:
        key = (table, column.name)
        if key not in self._categoricals:
            self._categoricals[key] = Categorical(column)
        return self._categoricals[key]

    def _item_column(self, name: str, position: int) -> Column:
        column = self._dataset.items.columns.get(name)
        if column is None:
            raise FilterSyntaxError(f"unknown Items field {name}", position)
        if column.kind == "text":
            raise FilterSyntaxError(f"textual field {name} cannot be used in filters", position)
        return column

    def _getter(self, value: Value) -> _Getter:
        if isinstance(value, LiteralValue):
            fixed = [value.value]
            return lambda ctx: fixed
        if isinstance(value, Param):
            name = value.name
            return lambda ctx: ctx.values.get(name)
        self.uses_current_item = True
        column = self._item_column(value.name, value.position)
        if column.codes is not None:
            cat = self._categorical("Items", column)
            return lambda ctx: [] if ctx.item_row is None else sorted(cat.tokens(ctx.item_row))
        numbers = column.numbers
        assert numbers is not None
        return lambda ctx: [] if ctx.item_row is None else [repr(float(numbers[ctx.item_row]))]

    def _resolver(self, values: tuple[Value, ...]) -> _Getter:
        getters = [self._getter(v) for v in values]

        def resolve(ctx: EvalContext) -> list[str] | None:
            out: list[str] = []
            for get in getters:
                got = get(ctx)
                if got is None:
                    return None
                out.extend(got)
            return out

        return resolve

    def _bind_interactions(self, cond: Atom) -> _Evaluator:
        if cond.field.name != "EVENT_TYPE" or not isinstance(cond, Membership) or cond.negated:
            raise FilterSyntaxError(
                "only Interactions.EVENT_TYPE IN (...) is supported", cond.field.position
            )
        for v in cond.values:
            if isinstance(v, CurrentItemRef):
                raise FilterSyntaxError(
                    "CurrentItem cannot be compared with Interactions fields", v.position
                )
        resolve = self._resolver(cond.values)
        inter = self._dataset.interactions
        dataset_codes: dict[str, list[int]] = {}
        for i, e in enumerate(inter.event_types):
            dataset_codes.setdefault(e.lower(), []).append(i)
        n_items = self._n_items

        def run(ctx: EvalContext) -> Mask | None:
            wanted = resolve(ctx)
            if wanted is None:
                return None
            mask = np.zeros(n_items, dtype=bool)
            lowered = {w.lower() for w in wanted}
            history = ctx.history
            items: NDArray[np.integer[Any]]
            events: NDArray[np.integer[Any]]
            if history is not None:
                items, events = history.items, history.events
                type_codes = {name: [code] for name, code in history.type_code.items()}
            elif ctx.user is not None:
                rows = inter.history(ctx.user)
                items, events = inter.item[rows], inter.event[rows]
                type_codes = dataset_codes
            else:
                return mask
            codes = [
                code
                for name, group in type_codes.items()
                if "*" in lowered or name in lowered
                for code in group
            ]
            for code in codes:
                # Items the Items table lacks (-1) still count among the latest 100.
                latest = items[events == code][-INTERACTION_LOOKBACK:]
                mask[latest[latest >= 0]] = True
            return mask

        return run

    def _bind_items(self, cond: Atom) -> _Evaluator:
        column = self._item_column(cond.field.name, cond.field.position)
        if column.codes is not None:
            cat = self._categorical("Items", column)
            values, negated = _as_membership(cond)
            resolve = self._resolver(values)

            def run_categorical(ctx: EvalContext) -> Mask | None:
                wanted = resolve(ctx)
                if wanted is None:
                    return None
                mask = cat.mask(wanted)
                return ~mask if negated else mask

            return run_categorical
        numbers = column.numbers
        assert numbers is not None
        if isinstance(cond, Comparison):
            return self._bind_comparison(cond, numbers)
        resolve = self._resolver(cond.values)
        name = cond.field.name

        def run_numeric(ctx: EvalContext) -> Mask | None:
            wanted = resolve(ctx)
            if wanted is None:
                return None
            mask = np.isin(numbers, [_number(name, w) for w in wanted])
            return ~mask if cond.negated else mask

        return run_numeric

    def _bind_comparison(self, cond: Comparison, numbers: NDArray[np.float64]) -> _Evaluator:
        compare = _COMPARE[cond.op]
        value = cond.value
        if isinstance(value, CurrentItemRef):
            self.uses_current_item = True
            ref = self._item_column(value.name, value.position).numbers
            if ref is None:
                raise FilterSyntaxError(f"CurrentItem.{value.name} is not numeric", value.position)
            n_items = self._n_items

            def run_current(ctx: EvalContext) -> Mask | None:
                if ctx.item_row is None:
                    return np.zeros(n_items, dtype=bool)
                return np.asarray(compare(numbers, float(ref[ctx.item_row])), dtype=bool)

            return run_current
        number = self._number_of(cond.field.name, value, cond.op)

        def run(ctx: EvalContext) -> Mask | None:
            threshold = number(ctx)
            if threshold is None:
                return None
            return np.asarray(compare(numbers, threshold), dtype=bool)

        return run

    @staticmethod
    def _number_of(
        field: str, value: LiteralValue | Param, op: str
    ) -> Callable[[EvalContext], float | None]:
        if isinstance(value, LiteralValue):
            try:
                fixed = float(value.value)
            except ValueError:
                raise FilterSyntaxError(
                    f"{field} must be compared with a number", value.position
                ) from None
            return lambda ctx: fixed
        name = value.name

        def get(ctx: EvalContext) -> float | None:
            if name not in ctx.values:
                return None
            given = ctx.values[name]
            if len(given) != 1:
                raise InvalidInputException(
                    f"filterValues {name} must hold exactly one number for {op}"
                )
            return _number(name, given[0])

        return get

    def _bind_user(self, cond: Atom, params: set[str]) -> _Predicate:
        params.update(v.name for v in atom_values(cond) if isinstance(v, Param))
        for v in atom_values(cond):
            if isinstance(v, CurrentItemRef):
                raise FilterSyntaxError("CurrentItem cannot be used in an IF condition", v.position)
        column = self._dataset.users.columns.get(cond.field.name)
        if column is None:
            raise FilterSyntaxError(f"unknown Users field {cond.field.name}", cond.field.position)
        if column.kind == "text":
            raise FilterSyntaxError(
                f"textual field {cond.field.name} cannot be used in filters", cond.field.position
            )
        if column.codes is not None:
            cat = self._categorical("Users", column)
            values, negated = _as_membership(cond)
            resolve = self._resolver(values)

            def categorical(ctx: EvalContext) -> bool | None:
                wanted = resolve(ctx)
                if wanted is None:
                    return None
                if ctx.user_row is None:
                    return False
                return bool(cat.tokens(ctx.user_row) & set(wanted)) != negated

            return categorical
        numbers = column.numbers
        assert numbers is not None
        if isinstance(cond, Comparison):
            assert not isinstance(cond.value, CurrentItemRef)
            compare = _COMPARE[cond.op]
            number = self._number_of(cond.field.name, cond.value, cond.op)

            def numeric(ctx: EvalContext) -> bool | None:
                threshold = number(ctx)
                if threshold is None:
                    return None
                if ctx.user_row is None:
                    return False
                return bool(compare(float(numbers[ctx.user_row]), threshold))

            return numeric
        resolve = self._resolver(cond.values)
        name, negated = cond.field.name, cond.negated

        def numeric_in(ctx: EvalContext) -> bool | None:
            wanted = resolve(ctx)
            if wanted is None:
                return None
            if ctx.user_row is None:
                return False
            hit = float(numbers[ctx.user_row]) in {_number(name, w) for w in wanted}
            return hit != negated

        return numeric_in


def _as_membership(cond: Atom) -> tuple[tuple[Value, ...], bool]:
    """A test on a categorical field as (values, negated): ``= "x"`` is ``IN ("x")``."""
    if isinstance(cond, Membership):
        return cond.values, cond.negated
    # Only a single literal (or CurrentItem) makes sense for = / != on a category;
    # a $PARAM there would be typed as a number by filter_parameters, so require IN.
    if (
        cond.op not in ("=", "!=")
        or isinstance(cond.value, Param)
        or (isinstance(cond.value, LiteralValue) and cond.value.is_number)
    ):
        raise FilterSyntaxError(
            f'{cond.field.name} is categorical: use IN (...) or = "value"', cond.field.position
        )
    return (cond.value,), cond.op == "!="


def _number(name: str, text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise InvalidInputException(f"Filter value for {name} must be a number: {text!r}") from None
    if not np.isfinite(value):
        raise InvalidInputException(f"Filter value for {name} must be a finite number")
    return value
