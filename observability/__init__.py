"""What an operator sees of the running subgraph: metrics, traces, logs and readiness."""
