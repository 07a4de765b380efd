"""Threshold attacks (Yeom et al. 2018): a membership score above a threshold means member.

AUC needs no threshold. A *decision* threshold is chosen on data the attacker may use
(population / shadow outputs), never on the audit labels.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from fairleak.attacks.base import Attack, AttackData, AttackScores, register_attack
from fairleak.attacks.scores import membership_score
from fairleak.errors import DataValidationError

__all__ = ["ThresholdAttack", "ThresholdRule", "best_threshold", "threshold_for_fpr"]


@dataclass(frozen=True)
class ThresholdRule:
    """``member iff score >= threshold`` (or ``<=`` when ``direction == -1``)."""

    threshold: float
    direction: int = 1

    def predict(self, scores: np.ndarray) -> np.ndarray:
        s = np.asarray(scores, dtype=np.float64)
        return s >= self.threshold if self.direction == 1 else s <= self.threshold

    def oriented(self, scores: np.ndarray) -> np.ndarray:
        """Scores turned so that higher means member."""
        return self.direction * np.asarray(scores, dtype=np.float64)


def threshold_for_fpr(nonmember_scores: np.ndarray, fpr: float) -> ThresholdRule:
    """Threshold whose false-positive rate on known non-members (population data) is <= ``fpr``."""
    if not 0 < fpr < 1:
        raise DataValidationError(f"fpr must be in (0, 1); got {fpr}.")
    s = np.sort(np.asarray(nonmember_scores, dtype=np.float64))
    k = int(np.floor(fpr * len(s)))  # at most k non-members may be at or above the threshold
    thr = np.nextafter(s[-1], np.inf) if k == 0 else s[len(s) - k]
    if k > 0 and (s >= thr).sum() > k:
        thr = np.nextafter(thr, np.inf)
    return ThresholdRule(float(thr))


def best_threshold(
    member_scores: np.ndarray, nonmember_scores: np.ndarray, *, learn_direction: bool = False
) -> ThresholdRule:
    """Threshold (and, optionally, direction) with the best balanced accuracy on shadow data."""
    mi = np.asarray(member_scores, dtype=np.float64)
    mo = np.asarray(nonmember_scores, dtype=np.float64)
    if len(mi) == 0 or len(mo) == 0:
        raise DataValidationError("Choosing a threshold needs both member and non-member scores.")
    best = (-1.0, 0.0, 1)
    for direction in (1, -1) if learn_direction else (1,):
        a, b = direction * mi, direction * mo
        cand = np.unique(np.concatenate([a, b]))
        tpr = 1 - np.searchsorted(np.sort(a), cand, side="left") / len(a)
        fpr = 1 - np.searchsorted(np.sort(b), cand, side="left") / len(b)
        bal = (tpr + 1 - fpr) / 2
        i = int(np.argmax(bal))
        if bal[i] > best[0]:
            best = (float(bal[i]), float(direction * cand[i]), direction)
    return ThresholdRule(best[1], best[2])


@dataclass(frozen=True)
class ThresholdAttack(Attack):
    """Yeom et al. 2018: a membership score of the target's output on each point, with a decision
    threshold at ``fpr`` false positives chosen on population points (never the audit labels)."""

    name: ClassVar[str] = "threshold"
    needs: ClassVar[frozenset[str]] = frozenset({"population"})
    description: ClassVar[str] = "a membership score of the target's output above a threshold"
    score_name: str = "loss"
    fpr: float = 0.01

    def score(self, data: AttackData) -> AttackScores:
        p = data.target.proba
        sc = membership_score(p, data.y, self.score_name)
        assert data.target_population is not None and data.y_population is not None
        pop = membership_score(data.target_population.proba, data.y_population, self.score_name)
        rule = threshold_for_fpr(pop, self.fpr)
        decision = {"threshold": rule.threshold, "chosen_on": f"population, FPR {self.fpr:.0%}"}
        return AttackScores(sc, decision, rule.predict(sc))


for _score in ("loss", "confidence", "entropy", "modified_entropy", "correctness"):
    register_attack(ThresholdAttack, rank=10, name=f"threshold_{_score}", default=_score != "entropy", score_name=_score
    )
