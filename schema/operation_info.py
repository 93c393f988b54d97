"""Telling the request who is listening which operation ran, once it is parsed.

A document with one named operation need not repeat its name in `operationName`, so the
name and type are known only after Strawberry has parsed it; this extension reports them
to the request's `Context.on_operation`. The compiled path reports them itself
(`schema.compiled.path`).
"""

from collections.abc import Iterator

from strawberry.extensions import SchemaExtension

from resolvers.context import Context


class OperationInfo(SchemaExtension):
    """Reports the parsed operation's name and type to `Context.on_operation`."""

    def on_operation(self) -> Iterator[None]:
        yield
        execution = self.execution_context
        context = execution.context
        if not isinstance(context, Context) or context.on_operation is None:
            return
        name = kind = None
        try:
            name = execution.operation_name
            kind = execution.operation_type.value
        except Exception:  # no document (parse error) or no such operation
            pass
        context.on_operation(name, kind)
