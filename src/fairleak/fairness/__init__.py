"""Fairness metrics for any classifier: per group, per intersection, with bootstrap intervals."""

from fairleak.fairness.metrics import (
    GAP_NAMES,
    FairnessReport,
    GapResult,
    fairness_report,
    group_metrics,
)

__all__ = ["GAP_NAMES", "FairnessReport", "GapResult", "fairness_report", "group_metrics"]
