"""Contract suites: one abstract test class per port, run on the in-memory twin and on PostgreSQL."""
