"""Service functions: what the handlers and the worker call, written against the ports only."""
