"""Names of the GraphQL things generated from configuration (use-case enum values, filter
inputs and their fields).

The schema generates inputs under these names and the resolvers read arguments by them,
so they live in the lower of the two layers.
"""

import keyword


def enum_member(use_case: str) -> str:
    """`recommendedForYou` -> `RECOMMENDED_FOR_YOU`, the GraphQL enum value of a use case."""
    out: list[str] = []
    for i, ch in enumerate(use_case):
        if ch.isupper() and i and (use_case[i - 1].islower() or use_case[i - 1].isdigit()):
            out.append("_")
        out.append(ch.upper())
    return "".join(out)


def param_attr(param: str) -> str:
    """The Python attribute of a filter parameter: `MAX_PRICE` -> `max_price`."""
    name = param.lower()
    return f"{name}_" if keyword.iskeyword(name) or name[0].isdigit() else name


def param_field(param: str) -> str:
    """The GraphQL field of a filter parameter: `MAX_PRICE` -> `maxPrice`."""
    head, *rest = param.lower().split("_")
    name = head + "".join(part.capitalize() for part in rest)
    return name if name and not name[0].isdigit() else f"p{name}"


def type_name(name: str) -> str:
    """`byCategory` -> `ByCategory`, for the input type generated for a filter."""
    return name[:1].upper() + name[1:]
