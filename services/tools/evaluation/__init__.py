"""Evaluation of a labelled event log: sensitivity, lead time, workload, precision, calibration.

`run` puts the log through the pipeline once per policy, `metrics` computes the figures (pure),
`report` writes them as Markdown with plots and as JSON. See docs/evaluation.md.
"""
