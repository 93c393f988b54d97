"""The subgraph's value types and error codes: what every layer above speaks.

Requests, results and errors live here so that the schema, resolvers, loaders and
backends share them without importing each other. This package imports nothing else of
the project.
"""
