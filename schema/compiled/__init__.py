"""The compiled path: the operations a federation gateway sends, answered without the
general executor's per-field work, with the same bytes as graphql-core or not at all.

A gateway sends the same few operations over and over. Through graphql-core every field
is completed on its own, every async field is a task gathered with its siblings, and the
loader waits a loop turn to batch. Three shortcuts, in order of reach:

- **compiled operations** (`path`, `planning`, `running`, `rendering`): a query of
  `_entities` and Query's Personalize fields is compiled once per cached document; each
  run builds every request first, starts all the calls as one batch, and assembles the
  answer straight from the results;
- **item lists** (`lists`, `items`): under graphql-core, a `[PredictedItem!]!` list
  whose selection needs nothing but the answer is built by one generated comprehension;
- **direct resolvers** (`direct`): graphql-core calls a field's plain function, not
  Strawberry's wrapper around it.

Beside them: `documents` parses and validates each query text once, and `node_memo`
keeps per-node values no longer than their document.

Invariants (each held by code or a test, not by care):

- Same answer or decline. Every field the compiled path answers is answered byte for
  byte as graphql-core answers it, errors included
  (`tests/properties/test_compiled_equivalence.py` draws operations over the whole
  schema). Anything it does not fully understand is `Declined` before any call starts,
  and graphql-core answers.
- Refused input declines; bugs surface. A bad variable, representation or argument
  (GraphQLError, SubgraphError) declines: nothing has been called, and graphql-core's
  error is the definition. Any other exception while building a request is a bug: it
  becomes that field's error, logged with its traceback and coded
  INTERNAL_SERVER_ERROR by `schema.error_codes.coded`, exactly as the resolver's would.
- Calls start in one synchronous step (`OperationCalls.start`): outcomes arrive from the
  calls' tasks, which cannot run before every waiting field is noted.
- Schema extensions are not run on compiled operations, so `CompiledPath` refuses, at
  start-up, a schema with an extension it does not know. Known: `ErrorCodes` (errors
  are coded by the same function), `MaxTokensLimiter` and `AddValidationRules` (only documents
  that parsed and validated clean are compiled), `DocumentCache` (where compiled
  operations are kept) and `OperationInfo` (the compiled path reports the operation's
  name and type to `Context.on_operation` itself).
- Everything kept is bounded: documents by count and by bytes in `DocumentStore`
  (`memory` settings), per-node values by `NodeMemo` (and by their documents),
  generated comprehensions by an LRU of short expressions.
"""

from schema.compiled.path import CompiledPath

__all__ = ["CompiledPath"]
