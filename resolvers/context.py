"""What every resolver of one GraphQL request can reach."""

from collections.abc import Callable
from dataclasses import dataclass, field

from graphql import GraphQLError

from backends.events import EventSender
from loaders.recommendations import Loaders
from resolvers.experiments import ExperimentCounts
from resolvers.scroll import Scrolling
from settings import Settings


@dataclass(frozen=True, slots=True)
class Context:
    """Built fresh for each HTTP request by the server; loaders are never shared."""

    loaders: Loaders
    settings: Settings
    # The process's event queue; None when no event tracker is configured.
    events: EventSender | None = None
    # Told the operation's name and type once the document is parsed (for metrics and
    # traces; see schema.operation_info); None: nobody listens.
    on_operation: "Callable[[str | None, str | None], None] | None" = None
    # The process's scroll windows and cursors (`after`, `pageInfo`); None: no scrolling.
    scrolling: Scrolling | None = None
    # Errors beside a field's data (a cart's failed seed): `schema.error_codes` adds them
    # to the response's errors once the operation has run.
    errors: list[GraphQLError] = field(default_factory=list)
    # Where experiment exposures and attributed events are counted; None: nowhere.
    experiments: ExperimentCounts | None = None
