"""Adapters: PostgreSQL and in-memory implementations of the ports the stages, the gateway, the
workflow and the API use. All SQL of Riskwatch lives under services/storage/postgres."""
