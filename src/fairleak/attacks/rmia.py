"""RMIA (Zarifzadeh et al., ICML 2024): membership from likelihood ratios against population points.

``LR(x) = p(x | theta) / p(x)`` with ``p(x)`` the mean of ``p(x | theta_ref)`` over reference
models (offline with OUT models only: ``p(x) = ((1 + a) p_out(x) + (1 - a)) / 2``).
``Score(x)`` = fraction of population points z with ``LR(x) / LR(z) > gamma``.

Privacy Meter builds an N_audit x N_population matrix for the last step; here the LR(z) are
sorted once and each x's count is found by binary search, O((N + M) log M) time and O(N + M)
memory. The search evaluates the very same floating-point predicate ``LR(x) / LR(z) > gamma``
(correctly rounded division is monotone in z), so the counts equal the direct matrix's exactly.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from fairleak.attacks.base import Attack, AttackData, AttackScores, register_attack
from fairleak.attacks.scores import confidence_score
from fairleak.errors import DataValidationError

__all__ = ["RMIA", "rmia_likelihood_ratio", "rmia_scores", "rmia_scores_direct"]


def rmia_likelihood_ratio(
    p_target: np.ndarray,
    p_ref: np.ndarray,
    *,
    ref_in: np.ndarray | None = None,
    offline_a: float | None = None,
) -> np.ndarray:
    """``LR = p(x|theta) / p(x)`` from true-label probabilities of the target [N] and refs [K, N].

    Online (``offline_a=None``): ``p(x)`` is the mean over all reference models. Offline: the mean
    over the models that did not train on x (``ref_in`` false; all if ``ref_in`` is None),
    corrected with ``a`` in [0, 1].
    """
    pt = np.asarray(p_target, dtype=np.float64)
    pr = np.asarray(p_ref, dtype=np.float64)
    if pr.ndim != 2 or pr.shape[1] != pt.shape[0]:
        raise DataValidationError(f"p_ref must be [K, {pt.shape[0]}]; got {pr.shape}.")
    if offline_a is None:
        px = pr.mean(0)
    else:
        if not 0 <= offline_a <= 1:
            raise DataValidationError(f"offline_a must be in [0, 1]; got {offline_a}.")
        out = np.ones_like(pr, dtype=bool) if ref_in is None else ~np.asarray(ref_in, dtype=bool)
        n = out.sum(0)
        if (n == 0).any():
            raise DataValidationError(
                "Offline RMIA needs at least one OUT reference model per point."
            )
        p_out = (pr * out).sum(0) / n
        px = ((1 + offline_a) * p_out + (1 - offline_a)) / 2
    return pt / np.maximum(px, 1e-30)


def rmia_scores(lr_x: np.ndarray, lr_z: np.ndarray, gamma: float = 1.0) -> np.ndarray:
    """Fraction of population points z with ``lr_x / lr_z > gamma``, by sorted counting."""
    x = np.asarray(lr_x, dtype=np.float64)
    z = np.sort(np.asarray(lr_z, dtype=np.float64))
    if len(z) == 0:
        raise DataValidationError("RMIA needs population points (lr_z is empty).")
    if gamma <= 0 or (z < 0).any() or (x < 0).any():
        raise DataValidationError("gamma must be positive and every likelihood ratio non-negative.")
    # predicate(j) = x / z[j] > gamma is true on a prefix of the ascending z: find its length.
    lo = np.zeros(len(x), dtype=np.int64)  # predicate holds for all j < lo
    hi = np.full(len(x), len(z), dtype=np.int64)  # and fails for all j >= hi
    while True:
        active = lo < hi
        if not active.any():
            break
        mid = (lo + hi) // 2
        with np.errstate(divide="ignore", invalid="ignore"):  # LR(z) = 0: x / 0 = inf (or nan)
            ok = (x / z[np.minimum(mid, len(z) - 1)]) > gamma
        lo = np.where(active & ok, mid + 1, lo)
        hi = np.where(active & ~ok, mid, hi)
    return lo / len(z)


def rmia_scores_direct(lr_x: np.ndarray, lr_z: np.ndarray, gamma: float = 1.0) -> np.ndarray:
    """The N x M computation (Privacy Meter's), for checking :func:`rmia_scores` on small data."""
    x = np.asarray(lr_x, dtype=np.float64)[:, None]
    z = np.asarray(lr_z, dtype=np.float64)[None, :]
    with np.errstate(divide="ignore", invalid="ignore"):
        return ((x / z) > gamma).mean(1)


@dataclass(frozen=True)
class RMIA(Attack):
    """RMIA with reference models trained on halves of the audit points (online: all of them;
    offline: for each point the models that did not train on it, corrected with ``offline_a``)."""

    name: ClassVar[str] = "rmia"
    needs: ClassVar[frozenset[str]] = frozenset({"references", "population"})
    description: ClassVar[str] = "likelihood ratios against population points (Zarifzadeh et al. 2024)"
    gamma: float = 1.0
    offline_a: float | None = None

    def score(self, data: AttackData) -> AttackScores:
        refs, n = data.references, data.n_audit
        assert refs is not None and data.reference_in is not None
        assert data.target_population is not None and data.y_population is not None
        conf_t = confidence_score(data.target.proba, data.y)
        conf_r = confidence_score(refs.proba[:, :n], data.y)
        conf_tz = confidence_score(data.target_population.proba, data.y_population)
        conf_rz = confidence_score(refs.proba[:, n:], data.y_population)
        a = self.offline_a
        lr_x = rmia_likelihood_ratio(conf_t, conf_r, ref_in=data.reference_in[:, :n], offline_a=a)
        lr_z = rmia_likelihood_ratio(conf_tz, conf_rz, ref_in=data.reference_in[:, n:], offline_a=a)
        return AttackScores(rmia_scores(lr_x, lr_z, self.gamma))


register_attack(RMIA, rank=40, name="rmia_online")
register_attack(RMIA, rank=40, name="rmia_offline", offline_a=0.3)
