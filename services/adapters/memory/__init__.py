"""In-memory twins of the ports (dicts and lists), with the PostgreSQL adapters' semantics, for unit tests."""
