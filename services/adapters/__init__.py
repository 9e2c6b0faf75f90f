"""Adapters: the PostgreSQL, Kafka and in-memory implementations of the ports that the stages, the
gateway, the workflow and the API use. All SQL of Riskwatch lives under services/adapters/postgres."""
