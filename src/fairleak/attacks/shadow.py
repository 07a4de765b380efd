"""Shokri et al. 2017 shadow-model attack: an attack classifier learns member / non-member from
shadow models' outputs (sorted probability vector and label), then scores the target's outputs."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
from sklearn.ensemble import HistGradientBoostingClassifier

from fairleak.attacks.base import Attack, AttackData, AttackScores, register_attack
from fairleak.attacks.scores import loss_score
from fairleak.errors import DataValidationError

__all__ = ["ShadowAttack", "ShadowModelAttack", "shadow_features"]


def shadow_features(proba: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Attack features of each record: probabilities sorted descending, the label, and log p_y."""
    p = np.asarray(proba, dtype=np.float64)
    srt = -np.sort(-p, axis=-1)
    return np.column_stack([srt, np.asarray(y, dtype=np.float64), loss_score(p, y)])


class ShadowAttack:
    """Fit on shadow models' outputs with known membership; score any model's outputs.

    Uses scikit-learn's HistGradientBoostingClassifier as the attack model (one model with the
    label as a feature, rather than one per class).
    """

    def __init__(self, random_state: int = 0) -> None:
        self.model = HistGradientBoostingClassifier(max_iter=100, random_state=random_state)

    def fit(self, shadow_proba: np.ndarray, y: np.ndarray, shadow_in: np.ndarray) -> ShadowAttack:
        """``shadow_proba`` [K, N, C] of K shadow models on N records, ``shadow_in`` [K, N] bool."""
        sp = np.asarray(shadow_proba)
        si = np.asarray(shadow_in, dtype=bool)
        if sp.ndim != 3 or si.shape != sp.shape[:2]:
            raise DataValidationError(
                f"shadow outputs [K, N, C] and membership [K, N] expected; got {sp.shape}, {si.shape}."
            )
        feats = np.concatenate([shadow_features(sp[k], y) for k in range(sp.shape[0])])
        labels = si.reshape(-1)
        if labels.all() or not labels.any():
            raise DataValidationError("Shadow data needs both members and non-members.")
        self.model.fit(feats, labels)
        return self

    def score(self, proba: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Attack probability of membership of each record (higher = member)."""
        return self.model.predict_proba(shadow_features(proba, y))[:, 1]


@register_attack(rank=20)
@dataclass(frozen=True)
class ShadowModelAttack(Attack):
    """Shokri et al. 2017 with shadow models trained like the target on population rows: the
    attack classifier learns from the shadow models' outputs on their pool (IN for half of them,
    OUT for the other half) and scores the target's outputs."""

    name: ClassVar[str] = "shadow"
    needs: ClassVar[frozenset[str]] = frozenset({"shadows", "population"})
    description: ClassVar[str] = "an attack classifier trained on shadow models' outputs"

    def score(self, data: AttackData) -> AttackScores:
        assert data.shadows is not None and data.shadow_in is not None
        used = data.shadow_in.any(0)  # the shadow pool: IN for half of the models, OUT for half
        assert data.y_population is not None
        atk = ShadowAttack(random_state=data.seed).fit(
            data.shadows.proba[:, used], data.y_population[used], data.shadow_in[:, used]
        )
        return AttackScores(atk.score(data.target.proba, data.y))
