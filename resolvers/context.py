"""What every resolver of one GraphQL request can reach."""

from dataclasses import dataclass

from backends.events import EventSender
from loaders.recommendations import Loaders
from settings import Settings


@dataclass(frozen=True, slots=True)
class Context:
    """Built fresh for each HTTP request by the server; loaders are never shared."""

    loaders: Loaders
    settings: Settings
    # The process's event queue; None when no event tracker is configured.
    events: EventSender | None = None
