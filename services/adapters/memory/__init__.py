"""In-memory twins of the adapters, for unit tests: the same semantics, dicts and lists for tables."""
