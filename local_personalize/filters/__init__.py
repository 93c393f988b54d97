"""Personalize's filter expression language: lexer, syntax tree, parser and evaluator.

Each stage depends only on those before it, so the language can be parsed and checked
without any data:

- ``syntax``: tokens, the lexer and ``FilterSyntaxError``;
- ``tree``: the syntax tree's node types;
- ``parser``: expressions into trees (the grammar is documented there);
- ``parameters``: each ``$PARAM``'s kind and the ``filterValues`` format;
- ``categories``: multi-valued categorical fields as sets, for any-of matching;
- ``evaluation``: a tree bound to a dataset (``CompiledFilter``), applied per request.

Re-exported here: the names used from outside the package.
"""

from .evaluation import CompiledFilter
from .parameters import filter_parameters, parse_filter_value
from .parser import parse_filter
from .syntax import FilterSyntaxError
from .tree import BoolOp, Membership, Param

__all__ = [
    "BoolOp",
    "CompiledFilter",
    "FilterSyntaxError",
    "Membership",
    "Param",
    "filter_parameters",
    "parse_filter",
    "parse_filter_value",
]
