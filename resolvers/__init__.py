"""Thin field resolvers: check arguments, build a request, await a loader."""
