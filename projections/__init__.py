"""Risk projections: the pure risk model (normalize, fold, assess, alerts) and its read-model store."""
