"""Evaluation of a labelled event log: sensitivity, lead time, workload, precision, calibration.

`run` puts the log through the pipeline once per policy, `metrics` computes the figures (pure),
`report` writes them as Markdown with plots and as JSON. See docs/evaluation.md.
"""

from __future__ import annotations

import importlib.util

PLOTS_MISSING = ("riskwatch evaluate draws its plots with matplotlib, which is not installed: "
                 "pip install 'riskwatch[tools]'")


def plots_missing() -> str | None:
    """One line saying how to install the plots (the extra `tools`), or None when they can be drawn."""
    return None if importlib.util.find_spec("matplotlib") is not None else PLOTS_MISSING
