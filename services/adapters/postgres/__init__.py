"""The PostgreSQL adapters (asyncpg): every SQL statement of Riskwatch, and the migrations."""
