"""Showing one answer as the compiled path's JSON: a `Recommendations` selection, planned
once per field node into a function from a `RecommendationsView` to a dict."""

from collections.abc import Callable
from typing import Any

from graphql import GraphQLObjectType, SelectionSetNode

from resolvers.recommendations import RecommendationsView
from schema.compiled.items import ItemNames, ItemsBuilder, items_builder, predicted_expression
from schema.compiled.selections import TYPENAME, Declined, selected

# Shows one field's answer: `Recommendations` as the response's dict.
Render = Callable[[RecommendationsView], dict[str, Any]]


def recommendations_renderer(
    names: ItemNames, recommendations: GraphQLObjectType, selection: SelectionSetNode
) -> Render:
    """How to show `selection` of a `Recommendations` answer; Declined if it holds more
    than `__typename`, `recommendationId`, `source` and an `items` that
    `schema.compiled.items` can build."""
    shown: list[tuple[str, Callable[[RecommendationsView], Any]]] = []
    for key, name, node in selected(selection):
        if name == TYPENAME:
            shown.append((key, _constant(recommendations.name)))
        elif name == "recommendationId" and node.selection_set is None:
            shown.append((key, _recommendation_id))
        elif name == "source" and node.selection_set is None:
            shown.append((key, _source))
        elif name == "items" and node.selection_set is not None:
            predicted = recommendations.fields["items"].type
            while not isinstance(predicted, GraphQLObjectType):
                predicted = predicted.of_type
            below: SelectionSetNode | None = node.selection_set
            expression = predicted_expression(names, predicted, below, _fields_of)
            if expression is None:
                raise Declined
            shown.append((key, _items(items_builder(expression))))
        else:
            raise Declined

    def render(view: RecommendationsView) -> dict[str, Any]:
        return {key: value(view) for key, value in shown}

    return render


def _fields_of(
    parent: GraphQLObjectType, selection: SelectionSetNode | None
) -> list[tuple[str, str, SelectionSetNode | None]] | None:
    """`schema.compiled.items.Fields` over plain selection sets."""
    if selection is None:
        return []
    try:
        fields = selected(selection)
    except Declined:
        return None
    for _, name, node in fields:
        if node.arguments or (name != TYPENAME and name not in parent.fields):
            return None
    return [(key, name, node.selection_set) for key, name, node in fields]


def _constant(value: str) -> Callable[[RecommendationsView], str]:
    return lambda view: value


def _recommendation_id(view: RecommendationsView) -> str | None:
    return view.recommendation_id


def _source(view: RecommendationsView) -> str:
    # The enum's GraphQL name, as graphql-core serialises it.
    return view.source.name


def _items(build: ItemsBuilder) -> Callable[[RecommendationsView], list[dict[str, Any]]]:
    return lambda view: build(view.items)
