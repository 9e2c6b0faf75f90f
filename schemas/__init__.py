"""Riskwatch event contracts: the Avro schemas, the single-object codec, and the JSON ingest format."""
