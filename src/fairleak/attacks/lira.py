"""LiRA: the likelihood-ratio attack of Carlini et al. 2022 ("Membership Inference Attacks From
First Principles"), online, offline and fixed-variance, as pure array functions.

``phi`` is the logit-scaled confidence (:func:`fairleak.attacks.scores.logit_scaled_confidence`)
of the target [N] and of K reference models [K, N]; ``ref_in`` [K, N] says which reference
models trained on which point.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Literal

import numpy as np
from scipy.stats import norm

from fairleak.attacks.base import Attack, AttackData, AttackScores, register_attack
from fairleak.attacks.scores import logit_scaled_confidence
from fairleak.errors import DataValidationError

__all__ = ["LiRA", "lira_scores"]

_MIN_STD = 1e-3


def _masked_moments(phi: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    n = mask.sum(0)
    mean = np.where(n > 0, (phi * mask).sum(0) / np.maximum(n, 1), np.nan)
    var = np.where(n > 1, (((phi - mean) ** 2) * mask).sum(0) / np.maximum(n - 1, 1), np.nan)
    return mean, np.sqrt(var), n


def lira_scores(
    target_phi: np.ndarray,
    ref_phi: np.ndarray,
    ref_in: np.ndarray,
    *,
    mode: Literal["online", "offline"] = "online",
    fixed_variance: bool = False,
) -> np.ndarray:
    """LiRA membership scores (higher = member).

    online: ``log N(phi; mu_in, s_in^2) - log N(phi; mu_out, s_out^2)``.
    offline (OUT models only, one-sided): ``log Phi((phi - mu_out) / s_out)``, a monotone
    transform of ALGORITHMS.md's ``Phi(...)`` that keeps precision in the tails.
    ``fixed_variance``: one global standard deviation per side instead of per-point ones (more
    stable with few reference models). Points lacking two IN (or OUT) models fall back to the
    global standard deviation; a point with no IN model gets the offline score in online mode.
    """
    t = np.asarray(target_phi, dtype=np.float64)
    r = np.asarray(ref_phi, dtype=np.float64)
    m = np.asarray(ref_in, dtype=bool)
    if r.ndim != 2 or r.shape != m.shape or r.shape[1] != t.shape[0]:
        raise DataValidationError(
            f"ref_phi and ref_in must be [K, N] with N = len(target_phi) = {t.shape[0]}; "
            f"got {r.shape} and {m.shape}."
        )
    mu_out, s_out, n_out = _masked_moments(r, ~m)
    if (n_out == 0).any():
        raise DataValidationError(
            f"{int((n_out == 0).sum())} point(s) have no OUT reference model; train more reference "
            "models (each point must be left out of some)."
        )
    glob_out = np.nanmedian(s_out) if np.isfinite(s_out).any() else 1.0
    s_out = np.where(np.isfinite(s_out) & ~fixed_variance, s_out, glob_out)
    s_out = np.maximum(s_out, _MIN_STD)
    offline = norm.logcdf((t - mu_out) / s_out)
    if mode == "offline":
        return offline
    if mode != "online":
        raise DataValidationError(f"mode must be 'online' or 'offline'; got {mode!r}.")
    mu_in, s_in, n_in = _masked_moments(r, m)
    glob_in = np.nanmedian(s_in) if np.isfinite(s_in).any() else glob_out
    s_in = np.where(np.isfinite(s_in) & ~fixed_variance, s_in, glob_in)
    s_in = np.maximum(s_in, _MIN_STD)
    online = norm.logpdf(t, mu_in, s_in) - norm.logpdf(t, mu_out, s_out)
    return np.where(n_in > 0, online, offline)


@dataclass(frozen=True)
class LiRA(Attack):
    """LiRA on the target's logit-scaled confidence against reference models trained on halves of
    the audit points (exact logits when both sides have them, else from probabilities)."""

    name: ClassVar[str] = "lira"
    needs: ClassVar[frozenset[str]] = frozenset({"references"})
    description: ClassVar[str] = "likelihood ratio of Gaussians fitted to reference models (Carlini et al. 2022)"
    mode: Literal["online", "offline"] = "online"
    fixed_variance: bool = False

    def score(self, data: AttackData) -> AttackScores:
        refs, n = data.references, data.n_audit
        assert refs is not None and data.reference_in is not None
        if data.target.logits is not None and refs.logits is not None:
            phi_t = logit_scaled_confidence(data.target.logits, data.y)
            phi_r = logit_scaled_confidence(refs.logits[:, :n], data.y)
        else:
            phi_t = logit_scaled_confidence(data.target.proba, data.y, from_probabilities=True)
            phi_r = logit_scaled_confidence(refs.proba[:, :n], data.y, from_probabilities=True)
        ref_in = data.reference_in[:, :n]
        return AttackScores(
            lira_scores(phi_t, phi_r, ref_in, mode=self.mode, fixed_variance=self.fixed_variance)
        )


register_attack(LiRA, rank=30, name="lira_online")
register_attack(LiRA, rank=30, name="lira_online_fixed_variance", fixed_variance=True)
register_attack(LiRA, rank=30, name="lira_offline", mode="offline")
