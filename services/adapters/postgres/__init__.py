"""PostgreSQL adapters of the ports: all the SQL of Riskwatch."""
