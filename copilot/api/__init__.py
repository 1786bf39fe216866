"""HTTP interface: FastAPI app factory, routes, OpenAI-compatible endpoints, web UI."""
