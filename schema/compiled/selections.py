"""Reading the plain selections the compiled path accepts, and declining the rest."""

from graphql import FieldNode, SelectionSetNode

# (response key, field name, the field's node) of one selection set.
Selected = list[tuple[str, str, FieldNode]]

TYPENAME = "__typename"


class Declined(Exception):
    """graphql-core must answer this operation; nothing has been called for it yet."""


def response_key(node: FieldNode) -> str:
    """The field's key in the response: its alias, else its name."""
    return node.alias.value if node.alias else node.name.value


def plain_fields(selection: SelectionSetNode) -> list[FieldNode]:
    """The fields of a selection made only of fields without directives; else Declined."""
    fields = []
    for node in selection.selections:
        if not isinstance(node, FieldNode) or node.directives:
            raise Declined
        fields.append(node)
    return fields


def selected(selection: SelectionSetNode) -> Selected:
    """(key, name, node) of a plain selection whose response keys are all distinct; else
    Declined (a repeated key merges fields: graphql-core's)."""
    fields = [(response_key(node), node.name.value, node) for node in plain_fields(selection)]
    if len({key for key, _, _ in fields}) != len(fields):
        raise Declined
    return fields
