"""Per-request loaders: an operation's Personalize requests, deduplicated and run concurrently."""
