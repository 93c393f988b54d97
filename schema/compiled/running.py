"""Running a compiled operation: its requests built, its calls started at once, its
answer assembled as graphql-core would."""

import asyncio
import functools
import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from graphql import ExecutionResult, GraphQLError, located_error

from domain.errors import SubgraphError
from domain.request import RecommendationRequest
from loaders.recommendations import Answer
from resolvers.context import Context
from resolvers.recommendations import RecommendationsView, answered, recovered
from schema.compiled.planning import EntityPart, PersonalizeCall
from schema.error_codes import coded


@dataclass(slots=True)
class FieldCall:
    """One Personalize field of this operation: its request, or the bug that stopped it
    from being built (shown as that field's error, as graphql-core's resolver would)."""

    call: PersonalizeCall
    request: RecommendationRequest | None = None
    failure: Exception | None = None
    # Its index among the operation's requests (see OperationCalls); -1 without one.
    slot: int = -1


@dataclass(slots=True)
class ReadyEntity:
    """One representation of `_entities`: its type, parts, object and calls."""

    typename: str
    parts: list[EntityPart]
    entity: Any
    calls: list[FieldCall]


@dataclass(slots=True)
class ReadyRoot:
    """One root field, ready to run: a root call, or the entities of `_entities`."""

    key: str
    call: FieldCall | None = None
    entities: list[ReadyEntity] = field(default_factory=list)

    def calls(self) -> list[FieldCall]:
        """Its Personalize fields in field order: the root call, or its entities'."""
        if self.call is not None:
            return [self.call]
        return [c for e in self.entities for c in e.calls]


def numbered(roots: Sequence[ReadyRoot]) -> list[RecommendationRequest]:
    """Every request of the operation in field order; each field call learns its slot."""
    requests: list[RecommendationRequest] = []
    for root in roots:
        for call in root.calls():
            if call.request is not None:
                call.slot = len(requests)
                requests.append(call.request)
    return requests


class OperationCalls:
    """The calls of one operation, told of each outcome as it is known: a degradable
    failure starts its field's fallback at once, as the field's resolver would, and the
    operation goes on in the loop turn after its last call.

    Waiting here never cancels a call: calls are shared with other operations (the
    coalescer), so a cancelled operation leaves them running, as graphql-core's path
    does behind its shield. Fallbacks are the operation's own and are cancelled with it.
    """

    def __init__(self, context: Context, requests: list[RecommendationRequest]) -> None:
        self._context = context
        self._requests = requests
        # The slots of each called request (see `start`).
        self._slots: dict[RecommendationRequest, list[int]] = {}
        self._begun: Sequence[Answer | asyncio.Task[Answer]] | None = None
        self._pending: set[RecommendationRequest] = set()
        self._outcomes: dict[RecommendationRequest, Answer | BaseException] = {}
        self._recoveries: dict[int, asyncio.Task[RecommendationsView]] = {}
        self._done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._closed = False
        # When each called field's outcome became known, in order: its error is listed
        # there, as graphql-core lists errors in the order fields fail.
        self._sequence = itertools.count()
        self._known: dict[int, int] = {}

    def start(self) -> None:
        """Start every call as one batch and note which fields wait for which call.

        One synchronous step: outcomes arrive from the calls' tasks, which cannot run
        before it returns, so each finds the fields waiting for it.
        """
        begun = self._context.loaders.recommendations.begin(self._requests, self._settled)
        self._begun = begun
        # Only fields whose answer was not stored wait for the call (and its fallback):
        # a stored answer may expire between two fields of the same key.
        for slot, (request, started) in enumerate(zip(self._requests, begun, strict=True)):
            if not isinstance(started, Answer):
                self._pending.add(request)
                self._slots.setdefault(request, []).append(slot)
        self._check()

    async def wait(self) -> None:
        """Until every started call has an outcome and every fallback has ended."""
        await self._done

    def _settled(self, request: RecommendationRequest, outcome: Answer | BaseException) -> None:
        if self._begun is None:
            raise RuntimeError("a call settled before its operation had started its calls")
        if self._closed or request not in self._pending:
            return
        self._pending.discard(request)
        self._outcomes[request] = outcome
        degradable = isinstance(outcome, SubgraphError) and outcome.degradable
        for slot in self._slots[request]:
            if degradable:
                assert isinstance(outcome, SubgraphError)
                recovery = asyncio.ensure_future(recovered(self._context, request, outcome))
                recovery.add_done_callback(functools.partial(self._recovered, slot))
                self._recoveries[slot] = recovery
            else:
                self._known[slot] = next(self._sequence)
        self._check()

    def _recovered(self, slot: int, recovery: "asyncio.Task[RecommendationsView]") -> None:
        if not self._closed:
            self._known[slot] = next(self._sequence)
            self._check()

    def known_at(self, slot: int) -> int:
        """The rank of the moment the field at `slot` got its outcome (-1: at start, a
        stored answer)."""
        return self._known.get(slot, -1)

    def _check(self) -> None:
        if self._done.done() or self._pending:
            return
        if all(recovery.done() for recovery in self._recoveries.values()):
            self._done.set_result(None)

    def close(self) -> None:
        """Stop listening; cancel the fallbacks still running (the operation ended)."""
        self._closed = True
        for recovery in self._recoveries.values():
            if not recovery.done():
                recovery.cancel()
            elif not recovery.cancelled():
                # Read, so that a failure left unread (the operation was cancelled) is
                # not reported as never retrieved.
                recovery.exception()

    def outcome(self, slot: int) -> RecommendationsView | Exception:
        """What the field at `slot` shows: its answer (stored or called), its fallback's,
        or its error."""
        assert self._begun is not None, "outcome() before start()"
        started = self._begun[slot]
        if isinstance(started, Answer):
            return answered(started)
        recovery = self._recoveries.get(slot)
        if recovery is not None:
            if recovery.cancelled():
                raise asyncio.CancelledError
            failure = recovery.exception()
            if failure is None:
                return recovery.result()
            outcome: Answer | BaseException = failure
        else:
            outcome = self._outcomes[self._requests[slot]]
        if isinstance(outcome, Answer):
            return answered(outcome)
        if not isinstance(outcome, Exception):
            raise outcome  # cancelled (the app is shutting down)
        return outcome


async def run(
    roots: list[ReadyRoot], context: Context, process_errors: Callable[[list[GraphQLError]], Any]
) -> ExecutionResult:
    """Make the operation's calls and assemble its answer."""
    requests = numbered(roots)
    calls = OperationCalls(context, requests)
    calls.start()
    try:
        await calls.wait()
    finally:
        calls.close()
    outcomes = [calls.outcome(slot) for slot in range(len(requests))]
    known = [calls.known_at(slot) for slot in range(len(requests))]
    return _result(roots, outcomes, known, process_errors)


def _result(
    roots: list[ReadyRoot],
    outcomes: Sequence[RecommendationsView | Exception],
    known: Sequence[int],
    process_errors: Callable[[list[GraphQLError]], Any],
) -> ExecutionResult:
    # (when the outcome was known, field order, error): errors are listed as graphql-core
    # lists them, in the order the fields failed; a request that could not be built
    # failed before any call.
    found: list[tuple[int, int, GraphQLError]] = []
    data: dict[str, Any] = {}

    def show(field_call: FieldCall, path: list[str | int]) -> dict[str, Any] | None:
        call = field_call.call
        outcome: RecommendationsView | Exception
        if field_call.failure is not None:
            outcome, when = field_call.failure, -2
        else:
            outcome, when = outcomes[field_call.slot], known[field_call.slot]
        if not isinstance(outcome, Exception):
            try:
                return call.render(outcome)
            except Exception as exc:  # a bug: masked and logged by `coded`, as anywhere
                outcome = exc
        error = coded(located_error(outcome, [call.node], path), executed=True)
        found.append((when, len(found), error))
        return None

    for root in roots:
        if root.call is not None:
            data[root.key] = show(root.call, [root.key])
            continue
        listed: list[dict[str, Any]] = []
        for index, ready in enumerate(root.entities):
            calls = iter(ready.calls)
            shown: dict[str, Any] = {}
            for part in ready.parts:
                if part.call is not None:
                    shown[part.key] = show(next(calls), [root.key, index, part.key])
                elif part.key_field is not None:
                    shown[part.key] = getattr(ready.entity, part.key_field)
                else:
                    shown[part.key] = ready.typename
            listed.append(shown)
        data[root.key] = listed
    errors = [error for *_, error in sorted(found, key=lambda e: (e[0], e[1]))]
    if errors:
        process_errors(errors)
    return ExecutionResult(data, errors or None)
