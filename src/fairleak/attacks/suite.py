"""Run the membership-inference attacks on a target model: reference models, scores, metrics.

Reference and shadow models are trained with the vectorised ensemble trainer (K at once); any
scikit-learn classifier also works through ``sklearn.base.clone`` on a slower path (K fits).
The target can be a fairleak :class:`~fairleak.train.Ensemble` or ``FairleakClassifier`` (exact
logits) or any object with ``predict_proba``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn.base import clone

from fairleak.attacks.defences import restrict_output
from fairleak.attacks.lira import lira_scores
from fairleak.attacks.metrics import AttackMetrics, attack_metrics
from fairleak.attacks.rmia import rmia_likelihood_ratio, rmia_scores
from fairleak.attacks.scores import logit_scaled_confidence, membership_score
from fairleak.attacks.shadow import ShadowAttack
from fairleak.attacks.threshold import threshold_for_fpr
from fairleak.errors import DataValidationError
from fairleak.train import DPConfig, Ensemble, FairnessConfig, TrainConfig, train_ensemble

__all__ = [
    "ALL_ATTACKS",
    "AttackResult",
    "ReferenceModels",
    "model_outputs",
    "paired_half_masks",
    "run_attacks",
    "shadow_masks",
    "train_reference_models",
]

THRESHOLD_ATTACKS = ("loss", "confidence", "entropy", "modified_entropy", "correctness")
ALL_ATTACKS = (
    *(f"threshold_{s}" for s in THRESHOLD_ATTACKS),
    "shadow",
    "lira_online",
    "lira_online_fixed_variance",
    "lira_offline",
    "rmia_online",
    "rmia_offline",
)


@dataclass
class AttackResult:
    """Scores of one attack on the audit points and their metrics."""

    name: str
    scores: np.ndarray
    metrics: AttackMetrics
    decision: dict[str, float] | None = None

    def to_dict(self) -> dict[str, Any]:
        out = {"name": self.name, **self.metrics.to_dict()}
        if self.decision is not None:
            out["decision"] = self.decision
        return out


@dataclass
class ReferenceModels:
    """K reference (or shadow) models' outputs on a pool and which pool rows each trained on."""

    proba: np.ndarray  # [K, N, 2]
    logits: np.ndarray | None  # [K, N, 2] when known exactly
    masks: np.ndarray  # [K, N] bool
    ensemble: Ensemble | None = None


def model_outputs(model: Any, X: np.ndarray) -> tuple[np.ndarray | None, np.ndarray]:
    """(logits or None, probabilities) [N, C] of a model on X."""
    ens = model if isinstance(model, Ensemble) else getattr(model, "ensemble_", None)
    if isinstance(ens, Ensemble):
        if ens.n_models != 1:
            raise DataValidationError("The target must be a single model (an Ensemble of size 1).")
        z = ens.predict_logits(X)[0].astype(np.float64)
        p = np.exp(z - z.max(1, keepdims=True))
        return z, p / p.sum(1, keepdims=True)
    if not hasattr(model, "predict_proba"):
        raise DataValidationError(
            f"The target model ({type(model).__name__}) has no predict_proba; membership attacks need scores."
        )
    p = np.asarray(model.predict_proba(X), dtype=np.float64)
    return None, p


def paired_half_masks(n_rows: int, n_models: int, seed: int = 0) -> np.ndarray:
    """Masks [n_models, n_rows] in complementary pairs of random halves: each row is IN for
    exactly half of the models (n_models even), as in LiRA's and PA-ALOOA's games."""
    if n_models < 2 or n_models % 2:
        raise DataValidationError(f"n_models must be an even number >= 2; got {n_models}.")
    rng = np.random.default_rng(seed)
    masks = np.zeros((n_models, n_rows), dtype=bool)
    for k in range(0, n_models, 2):
        half = rng.permutation(n_rows)[: n_rows // 2]
        masks[k, half] = True
        masks[k + 1] = ~masks[k]
    return masks


def train_reference_models(
    X: np.ndarray,
    y: np.ndarray,
    n_models: int,
    *,
    config: TrainConfig | None = None,
    seed: int = 0,
    masks: np.ndarray | None = None,
    groups: np.ndarray | None = None,
    fairness: FairnessConfig | None = None,
    dp: DPConfig | None = None,
    estimator: Any = None,
    X_extra: np.ndarray | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> ReferenceModels:
    """Train ``n_models`` models on complementary random halves of (X, y), K at once.

    With ``estimator`` (any scikit-learn classifier) it is cloned and fitted once per model
    instead (slower; no exact logits). Outputs cover the rows of X followed by those of
    ``X_extra`` (rows no model trains on; their masks are false).
    """
    masks = (
        paired_half_masks(len(y), n_models, seed)
        if masks is None
        else np.asarray(masks, dtype=bool)
    )
    X_all = X if X_extra is None else np.concatenate([X, X_extra])
    masks_all = masks if X_extra is None else np.pad(masks, ((0, 0), (0, len(X_extra))))
    if estimator is not None:
        probas = []
        for k, m in enumerate(masks):
            fitted = clone(estimator).fit(X[m], y[m])
            probas.append(np.asarray(fitted.predict_proba(X_all), dtype=np.float64))
            if progress:
                progress(k + 1, len(masks))
        return ReferenceModels(np.stack(probas), None, masks_all)
    ens = train_ensemble(
        X, y, masks, config=config or TrainConfig(), seed=seed, groups=groups, fairness=fairness,
        dp=dp, progress=progress,
    )  # fmt: skip
    z = ens.predict_logits(X_all).astype(np.float64)
    p = np.exp(z - z.max(-1, keepdims=True))
    return ReferenceModels(p / p.sum(-1, keepdims=True), z, masks_all, ens)


def shadow_masks(n_population: int, n_members: int, n_models: int, seed: int = 0) -> np.ndarray:
    """Shadow models' membership [n_models, n_population]: complementary halves of a random
    pool of ``2 * n_members`` population rows (all of them if fewer), so that each shadow model
    trains on as many rows as the target did; rows outside the pool are never trained on."""
    size = min(n_population, 2 * n_members)
    pool = np.sort(np.random.default_rng(seed).permutation(n_population)[:size])
    masks = np.zeros((n_models, n_population), dtype=bool)
    masks[:, pool] = paired_half_masks(size, n_models, seed)
    return masks


def run_attacks(
    target: Any,
    X_audit: np.ndarray,
    y_audit: np.ndarray,
    is_member: np.ndarray,
    X_population: np.ndarray,
    y_population: np.ndarray,
    *,
    attacks: Sequence[str] = ALL_ATTACKS,
    n_reference: int = 32,
    n_shadow: int = 8,
    config: TrainConfig | None = None,
    fairness: FairnessConfig | None = None,
    dp: DPConfig | None = None,
    groups_audit: Any = None,
    groups_train_audit: np.ndarray | None = None,
    groups_train_population: np.ndarray | None = None,
    output: str = "full",
    rmia_gamma: float = 1.0,
    rmia_offline_a: float = 0.3,
    n_bootstrap: int = 200,
    estimator: Any = None,
    references: ReferenceModels | None = None,
    shadows: ReferenceModels | None = None,
    seed: int = 0,
    progress: Callable[[str, int, int], None] | None = None,
) -> dict[str, AttackResult]:
    """Attack ``target`` on the audit points (members and non-members) and measure each attack.

    Reference models for LiRA and RMIA are trained on complementary random halves of the audit
    points, as in LiRA (online setting: the target trained on one such half, so reference models
    see as many rows as it did and every audit point is IN for half of them); offline variants
    use, for each point, the models that did not train on it. RMIA compares with population
    points, which no reference model trains on. Shadow models (Shokri) train on halves of
    ``2 * n_members`` population rows (:func:`shadow_masks`), again the target's training size.
    ``groups_audit`` (protected attributes of the audit rows) adds per-group metrics;
    ``groups_train_*`` are the int codes the trainer needs when ``fairness`` or DP-SGD-S is used.
    ``output`` restricts what the target releases (``"label_only"``, ``"top1"``).
    Pre-trained ``references`` (outputs on audit + population, in that order) and ``shadows``
    (outputs on the population, masks false outside the shadow pool) can be passed in, e.g.
    from a cache.
    """
    unknown = set(attacks) - set(ALL_ATTACKS)
    if unknown:
        raise DataValidationError(
            f"Unknown attack(s) {sorted(unknown)}; choose from {list(ALL_ATTACKS)}."
        )
    is_member = np.asarray(is_member, dtype=bool)
    n_a = len(y_audit)
    logits_t, proba_t = model_outputs(target, X_audit)
    _, proba_pop_t = model_outputs(target, X_population)
    if output != "full":
        proba_t = restrict_output(proba_t, output)
        proba_pop_t = restrict_output(proba_pop_t, output)
        logits_t = None
    results: dict[str, AttackResult] = {}

    def finish(name: str, scores: np.ndarray, decision: dict[str, float] | None = None) -> None:
        metrics = attack_metrics(
            scores, is_member, groups=groups_audit, n_bootstrap=n_bootstrap, random_state=seed
        )
        results[name] = AttackResult(name, scores, metrics, decision)

    for s in THRESHOLD_ATTACKS:
        name = f"threshold_{s}"
        if name not in attacks:
            continue
        sc = membership_score(proba_t, y_audit, s)
        pop = membership_score(proba_pop_t, y_population, s)
        rule = threshold_for_fpr(pop, 0.01)  # chosen on population data, never on audit labels
        pred = rule.predict(sc)
        decision = {
            "threshold": rule.threshold,
            "chosen_on": "population, FPR 1%",
            "tpr_on_audit": float(pred[is_member].mean()),
            "fpr_on_audit": float(pred[~is_member].mean()),
        }
        finish(name, sc, decision)

    need_refs = any(a.startswith(("lira", "rmia")) for a in attacks)
    if need_refs:
        if references is None:
            references = train_reference_models(
                X_audit, y_audit, n_reference, config=config, seed=seed + 1,
                groups=groups_train_audit, fairness=fairness, dp=dp, estimator=estimator,
                X_extra=X_population,
                progress=(lambda d, t: progress("reference models", d, t)) if progress else None,
            )  # fmt: skip
        ref_p = references.proba
        if output != "full":
            ref_p = restrict_output(ref_p, output)
        ref_in_a = references.masks[:, :n_a]
        if any(a.startswith("lira") for a in attacks):
            if logits_t is not None and references.logits is not None:
                phi_t = logit_scaled_confidence(logits_t, y_audit)
                phi_r = logit_scaled_confidence(references.logits[:, :n_a], y_audit)
            else:
                phi_t = logit_scaled_confidence(proba_t, y_audit, from_probabilities=True)
                phi_r = logit_scaled_confidence(ref_p[:, :n_a], y_audit, from_probabilities=True)
            for name, mode, fixed in (
                ("lira_online", "online", False),
                ("lira_online_fixed_variance", "online", True),
                ("lira_offline", "offline", False),
            ):
                if name in attacks:
                    finish(
                        name, lira_scores(phi_t, phi_r, ref_in_a, mode=mode, fixed_variance=fixed)
                    )
        if any(a.startswith("rmia") for a in attacks):
            conf_t = membership_score(proba_t, y_audit, "confidence")
            conf_r = membership_score(ref_p[:, :n_a], y_audit, "confidence")
            conf_tz = membership_score(proba_pop_t, y_population, "confidence")
            conf_rz = membership_score(ref_p[:, n_a:], y_population, "confidence")
            ref_in_z = references.masks[:, n_a:]
            for name, a in (("rmia_online", None), ("rmia_offline", rmia_offline_a)):
                if name in attacks:
                    lr_x = rmia_likelihood_ratio(conf_t, conf_r, ref_in=ref_in_a, offline_a=a)
                    lr_z = rmia_likelihood_ratio(conf_tz, conf_rz, ref_in=ref_in_z, offline_a=a)
                    finish(name, rmia_scores(lr_x, lr_z, rmia_gamma))
    if "shadow" in attacks and shadows is None:
        masks = shadow_masks(len(y_population), int(is_member.sum()), n_shadow, seed + 2)
        shadows = train_reference_models(
            X_population, y_population, n_shadow, masks=masks, config=config, seed=seed + 2,
            groups=groups_train_population, fairness=fairness, dp=dp, estimator=estimator,
            progress=(lambda d, t: progress("shadow models", d, t)) if progress else None,
        )  # fmt: skip
    if "shadow" in attacks:
        assert shadows is not None
        sp = shadows.proba if output == "full" else restrict_output(shadows.proba, output)
        used = shadows.masks.any(0)  # the shadow pool: IN for half of the models, OUT for half
        atk = ShadowAttack(random_state=seed).fit(
            sp[:, used], y_population[used], shadows.masks[:, used]
        )
        finish("shadow", atk.score(proba_t, y_audit))
    return {a: results[a] for a in attacks if a in results}
