"""The HTTP edge: the GraphQL-over-HTTP endpoint and the middleware around it."""
