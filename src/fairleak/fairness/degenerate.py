"""Is a classifier's output worth measuring fairness on? A (nearly) constant predictor, or one no
more accurate than always predicting the majority class, has gaps near 0 that say nothing about
fairness: every group gets the same (non-)decision. The audit flags such models and marks their
gaps "not meaningful" instead of showing a reassuring 0.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

__all__ = ["PredictorCheck", "check_predictor"]

NOT_MEANINGFUL = "not meaningful (constant predictor)"
NOT_BETTER = "not meaningful (no better than the majority rate)"


@dataclass(frozen=True)
class PredictorCheck:
    """``positive_share``: share of rows predicted positive; ``majority_rate``: accuracy of always
    predicting the more frequent class; ``constant``: one class for all but ``constant_share`` of
    the rows; ``no_better_than_majority``: accuracy <= majority rate + ``margin``;
    ``degenerate``: either; ``reason``: what to show instead of the gaps."""

    n: int
    accuracy: float
    positive_share: float
    majority_rate: float
    majority_class: int
    constant: bool
    no_better_than_majority: bool
    degenerate: bool
    reason: str | None
    gap_note: str | None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def check_predictor(
    y_true: Any, y_pred: Any, *, constant_share: float = 0.01, margin: float = 0.0,
    positive_label: str | None = None,
) -> PredictorCheck:
    """Flag a (nearly) constant predictor or one no better than the majority rate.

    ``y_true`` and ``y_pred`` are 0/1 arrays (the audit's non-members and the model's decisions).
    A predictor is *constant* when fewer than ``constant_share`` of the rows get the minority
    decision, and *no better than the majority rate* when its accuracy does not exceed the
    majority class's share by more than ``margin``. ``positive_label`` names the positive class
    in the reason ("predicts 'good' for 100.0% of rows").
    """
    y = np.asarray(y_true).astype(np.int64)
    yhat = np.asarray(y_pred).astype(np.int64)
    n = len(y)
    if n == 0:
        raise ValueError("check_predictor needs at least one row")
    acc = float((y == yhat).mean())
    share = float(yhat.mean())
    base = float(y.mean())
    majority_class = int(base >= 0.5)
    majority = max(base, 1 - base)
    constant = min(share, 1 - share) < constant_share
    worse = acc <= majority + margin
    reason = gap_note = None
    if constant:
        pos = "positive" if positive_label is None else f"'{positive_label}'"
        decided = pos if share >= 0.5 else f"not {pos}"
        reason = (f"constant predictor: predicts {decided} for {max(share, 1 - share):.1%} of rows "
                  f"(accuracy {acc:.3f}, majority rate {majority:.3f})")  # fmt: skip
        gap_note = NOT_MEANINGFUL
    elif worse:
        reason = f"no better than the majority rate: accuracy {acc:.3f} vs {majority:.3f}"
        gap_note = NOT_BETTER
    return PredictorCheck(n, acc, share, majority, majority_class, bool(constant), bool(worse),
                          bool(constant or worse), reason, gap_note)  # fmt: skip
