"""Fairness metrics for any classifier: per group, per intersection, with bootstrap intervals.

Rates and gaps are declared once (:data:`RATES`, :data:`GAPS`); :func:`register_gap` adds one to
every report, the audit's results and its schema.
"""

from fairleak.fairness.degenerate import PredictorCheck, check_predictor
from fairleak.fairness.metrics import (
    GAP_NAMES,
    GAPS,
    RATES,
    FairnessReport,
    Gap,
    GapResult,
    Rate,
    fairness_report,
    group_metrics,
    register_gap,
    register_rate,
    resampled_gaps,
)

__all__ = [
    "GAPS",
    "GAP_NAMES",
    "RATES",
    "FairnessReport",
    "Gap",
    "GapResult",
    "PredictorCheck",
    "Rate",
    "check_predictor",
    "fairness_report",
    "group_metrics",
    "register_gap",
    "register_rate",
    "resampled_gaps",
]
