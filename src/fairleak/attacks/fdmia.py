"""FD-MIA: membership from the discrepancy between a biased and a fairness-enhanced model.

Tian et al. 2023 ("When Fairness Meets Privacy", arXiv 2311.03865), in the buildable design of
ALGORITHMS.md section 3: an attacker who queries both the original (biased) model T_b and the
fair model T_f, trained on the same members with the same recipe except the fairness penalty,
scores membership from their predictions' discrepancy. Direction and threshold (threshold
variant) or an attack classifier (learned variant) come from a *shadow pair* trained with the
same two recipes on population data. Baselines on the same splits: threshold and shadow attacks
on each model alone.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn.ensemble import HistGradientBoostingClassifier

from fairleak.attacks.base import AttackResult
from fairleak.attacks.metrics import attack_metrics
from fairleak.attacks.scores import confidence_score, loss_score
from fairleak.attacks.shadow import ShadowAttack
from fairleak.attacks.threshold import best_threshold
from fairleak.errors import DataValidationError

__all__ = ["FDMIAResult", "fd_mia", "fd_mia_features"]


_TOL = 1e-6  # below float32 resolution of a probability in [0, 1] (about 6e-8 near 1): rounding


def fd_mia_features(p_b: np.ndarray, p_f: np.ndarray, y: np.ndarray) -> np.ndarray:
    """``[p_b, p_f, p_b - p_f, y]`` with p the probability each model gives the true label."""
    return np.column_stack([p_b, p_f, p_b - p_f, np.asarray(y, dtype=np.float64)])


@dataclass
class FDMIAResult:
    """FD-MIA attacks and their single-model baselines on one target pair."""

    attacks: dict[str, AttackResult]
    discrepancy_members: np.ndarray
    discrepancy_nonmembers: np.ndarray
    fairness_weight: float | None = None

    def to_dict(self, *, histogram_bins: int = 30) -> dict[str, Any]:
        hi = float(
            max(
                self.discrepancy_members.max(initial=0),
                self.discrepancy_nonmembers.max(initial=0),
                1e-9,
            )
        )
        edges = np.linspace(0, hi, histogram_bins + 1)
        return {
            "fairness_weight": self.fairness_weight,
            "attacks": {k: v.to_dict() for k, v in self.attacks.items()},
            "discrepancy_histogram": {
                "edges": edges.tolist(),
                "members": np.histogram(self.discrepancy_members, edges)[0].tolist(),
                "nonmembers": np.histogram(self.discrepancy_nonmembers, edges)[0].tolist(),
            },
        }


def fd_mia(
    proba_b: np.ndarray,
    proba_f: np.ndarray,
    y: np.ndarray,
    is_member: np.ndarray,
    shadow_proba_b: np.ndarray,
    shadow_proba_f: np.ndarray,
    shadow_y: np.ndarray,
    shadow_is_member: np.ndarray,
    *,
    groups: Any = None,
    n_bootstrap: int = 200,
    random_state: int = 0,
) -> FDMIAResult:
    """FD-MIA (threshold: absolute and signed discrepancy; learned) and baselines.

    ``proba_*``: [N, C] outputs of the target pair on the audit points (members and
    non-members); ``shadow_*``: the shadow pair's outputs on points whose membership of the
    shadow pair is known.
    """
    y = np.asarray(y)
    is_member = np.asarray(is_member, dtype=bool)
    shadow_is_member = np.asarray(shadow_is_member, dtype=bool)
    if proba_b.shape != proba_f.shape or len(proba_b) != len(y):
        raise DataValidationError(
            "The biased and fair outputs must both be [N, C] for the same N audit points."
        )
    # Probabilities are compared at float32 resolution: two models trained alike can differ by
    # rounding (an ulp, e.g. when trained at different positions of one batched ensemble), and
    # that noise is no discrepancy the fairness intervention made.
    pb, pf = confidence_score(proba_b, y), confidence_score(proba_f, y)
    spb, spf = confidence_score(shadow_proba_b, shadow_y), confidence_score(shadow_proba_f, shadow_y)
    pf = np.where(np.abs(pb - pf) < _TOL, pb, pf)
    spf = np.where(np.abs(spb - spf) < _TOL, spb, spf)
    results: dict[str, AttackResult] = {}

    def add(name: str, scores: np.ndarray, decision: dict[str, float] | None = None) -> None:
        m = attack_metrics(
            scores, is_member, groups=groups, n_bootstrap=n_bootstrap, random_state=random_state
        )
        results[name] = AttackResult(name, scores, m, decision)

    for name, d, sd in (
        ("fd_mia_abs", np.abs(pb - pf), np.abs(spb - spf)),
        ("fd_mia_signed", pb - pf, spb - spf),
    ):
        rule = best_threshold(sd[shadow_is_member], sd[~shadow_is_member], learn_direction=True)
        pred = rule.predict(d)
        add(name, rule.oriented(d), {
            "threshold": rule.threshold, "direction": float(rule.direction), "chosen_on": "shadow pair",
            "tpr_on_audit": float(pred[is_member].mean()), "fpr_on_audit": float(pred[~is_member].mean()),
        })  # fmt: skip
    clf = HistGradientBoostingClassifier(max_iter=100, random_state=random_state)
    clf.fit(fd_mia_features(spb, spf, shadow_y), shadow_is_member)
    add("fd_mia_learned", clf.predict_proba(fd_mia_features(pb, pf, y))[:, 1])
    for tag, p, sp in (("biased", proba_b, shadow_proba_b), ("fair", proba_f, shadow_proba_f)):
        add(f"threshold_loss_{tag}", loss_score(p, y))
        atk = ShadowAttack(random_state=random_state).fit(
            sp[None], shadow_y, shadow_is_member[None]
        )
        add(f"shadow_{tag}", atk.score(p, y))
    disc = np.abs(pb - pf)
    return FDMIAResult(results, disc[is_member], disc[~is_member])
