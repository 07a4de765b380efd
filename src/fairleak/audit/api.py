"""Single audit pieces on arrays or DataFrames, for Python users and the study.

Each function builds a small audit (its rows, the target, the model bank) and runs the same
stage code as ``fairleak audit``: :func:`run_attacks` is the attacks stage for one model,
:func:`run_fd_mia` the FD-MIA stage for one pair, :func:`run_pa_alooa` the group-risk stage's game.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pandas as pd

from fairleak.attacks import AttackResult, FDMIAResult, GroupRiskResult, ModelOutputs
from fairleak.audit.bank import ModelBank
from fairleak.audit.cache import StageCache
from fairleak.audit.config import AuditConfig
from fairleak.audit.data import AuditData
from fairleak.audit.recipes import FairleakRecipe, Inputs, Recipe, SklearnRecipe
from fairleak.audit.stages import AuditContext
from fairleak.audit.stages.attacks import AttackSection, attack_target
from fairleak.audit.stages.fd_mia import attack_pair
from fairleak.audit.stages.group_risk import GroupRiskSection, play_pa_alooa
from fairleak.audit.target import AuditTarget, recipe_of
from fairleak.data import TabularDataset, normalize_sensitive
from fairleak.errors import DataValidationError
from fairleak.train import DPConfig, Ensemble, FairnessConfig, TrainConfig

__all__ = ["run_attacks", "run_fd_mia", "run_pa_alooa"]


def _stack(a: Any, b: Any) -> Any:
    if isinstance(a, pd.DataFrame):
        return pd.concat([a, b], ignore_index=True)
    return np.concatenate([np.asarray(a), np.asarray(b)])


def _array_context(
    X: Any, y: np.ndarray, sensitive: Any, audit: np.ndarray, is_member: np.ndarray,
    population: np.ndarray, seed: int, progress: Any = None,
) -> AuditContext:  # fmt: skip
    y = np.asarray(y).astype(np.int64)
    if isinstance(X, pd.DataFrame):
        frame = X.reset_index(drop=True)

        def make_matrix() -> np.ndarray:
            try:
                return np.ascontiguousarray(frame.to_numpy(np.float32))
            except (TypeError, ValueError) as exc:
                raise DataValidationError(
                    f"fairleak's models read numbers; X has non-numeric columns ({exc}). Encode "
                    "them first, or audit a scikit-learn Pipeline."
                ) from None
    else:
        matrix = np.ascontiguousarray(np.asarray(X, dtype=np.float32))
        if matrix.ndim != 2 or len(matrix) != len(y):
            raise DataValidationError(f"X must be [n_rows={len(y)}, n_features]; got {matrix.shape}.")
        frame = pd.DataFrame(matrix, columns=[f"x{i}" for i in range(matrix.shape[1])])

        def make_matrix() -> np.ndarray:
            return matrix

    sens = (
        pd.DataFrame({"all": np.full(len(y), "all", dtype=object)})
        if sensitive is None
        else normalize_sensitive(sensitive, n_rows=len(y))
    )
    ds = TabularDataset("arrays", frame, y, sens, "y", "1", source_rows=np.arange(len(y)), raw=frame)
    # "raw" is X as the caller gave it (a DataFrame, or the array), what their model reads
    raw = X.reset_index(drop=True) if isinstance(X, pd.DataFrame) else make_matrix()
    inputs = Inputs(frame, y, sens, raw=raw, make_matrix=make_matrix)
    h = hashlib.sha256()
    for arr in (y, audit, is_member, population):
        h.update(np.ascontiguousarray(arr).tobytes())
    h.update(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes())
    data = AuditData(ds, inputs, np.asarray(audit), np.asarray(is_member, bool),
                     np.asarray(population), h.hexdigest()[:32], "arrays")  # fmt: skip
    cfg = AuditConfig(seed=seed, models=[])
    bank = ModelBank(inputs, data.fingerprint, StageCache(".", read=False, write=False), progress)
    return AuditContext(cfg, data, bank, {}, progress=progress)


def _attach(ctx: AuditContext, name: str, model: Any, recipe: Recipe | None) -> AuditTarget:
    """Add a fitted model (read as it is) as audited target ``name``."""
    t = AuditTarget(name, "fitted", recipe, fitted=model)
    if isinstance(model, Ensemble):
        if model.n_models != 1:
            raise DataValidationError("The target must be a single model (an Ensemble of size 1).")
        t.outputs = ModelOutputs.from_logits(model.predict_logits(ctx.data.inputs.matrix))
    elif not hasattr(model, "predict_proba"):
        raise DataValidationError(
            f"The target model ({type(model).__name__}) has no predict_proba; membership attacks need scores."
        )
    else:
        t.outputs = t.outputs_of_fitted(ctx.data.inputs, ctx.data.ds.positive)
    ctx.targets[name] = t
    return t


def _default_recipe(model: Any) -> tuple[Recipe | None, list[str]]:
    if isinstance(model, Ensemble):
        return FairleakRecipe(model.config), [
            "Reference models use the target Ensemble's TrainConfig; pass fairness= / dp= if the "
            "target was trained with a penalty or DP-SGD."
        ]
    return recipe_of(model), []


def run_attacks(
    target: Any,
    X_audit: Any,
    y_audit: np.ndarray,
    is_member: np.ndarray,
    X_population: Any,
    y_population: np.ndarray,
    *,
    attacks: Sequence[str] | None = None,
    params: dict[str, dict[str, Any]] | None = None,
    n_reference: int = 16,
    n_shadow: int = 4,
    recipe: Recipe | None = None,
    estimator: Any = None,
    config: TrainConfig | None = None,
    fairness: FairnessConfig | None = None,
    dp: DPConfig | None = None,
    groups_audit: Any = None,
    groups_population: Any = None,
    output: str = "full",
    n_bootstrap: int = 200,
    seed: int = 0,
    progress: Callable[[str, int, int, str], None] | None = None,
) -> dict[str, AttackResult]:
    """Attack a model on audit points (members and non-members) and measure each attack, per
    group with ``groups_audit``.

    ``target``: any model with ``predict_proba`` (a scikit-learn estimator or Pipeline taking
    ``X_*`` as given, DataFrames included), a ``FairleakClassifier`` or an ``Ensemble`` of one
    model (exact logits). Reference and shadow models are trained like the target: clones of a
    scikit-learn target, fairleak's recipe for fairleak's models. Override with ``recipe``, an
    ``estimator`` to clone (another kind than the target's is noted in the results), or
    fairleak's ``config`` / ``fairness`` / ``dp``. An opaque target (no recipe) gets only the
    attacks that need no reference models.
    """
    y = np.concatenate([np.asarray(y_audit), np.asarray(y_population)])
    n_a, n_p = len(y_audit), len(y_population)
    X = _stack(X_audit, X_population)
    sens = None
    if groups_audit is not None:
        ga = normalize_sensitive(groups_audit, n_rows=n_a)
        gp = (
            normalize_sensitive(groups_population, n_rows=n_p)
            if groups_population is not None
            else pd.DataFrame({c: np.full(n_p, "(population)", dtype=object) for c in ga.columns})
        )
        sens = pd.concat([ga, gp], ignore_index=True)
    ctx = _array_context(X, y, sens, np.arange(n_a), np.asarray(is_member, bool),
                         np.arange(n_a, n_a + n_p), seed, progress)  # fmt: skip
    notes: list[str] = []
    if recipe is None and estimator is not None:
        recipe = SklearnRecipe(estimator=estimator, input="raw")
        if type(estimator) is not type(target):
            notes.append(
                f"Reference models are {type(estimator).__name__}, the target is "
                f"{type(target).__name__}: attack figures may understate its leakage."
            )
    elif recipe is None and (config is not None or fairness is not None or dp is not None):
        recipe = FairleakRecipe(config or TrainConfig(), fairness, dp)
    elif recipe is None:
        recipe, notes = _default_recipe(target)
    t = _attach(ctx, "target", target, recipe)
    t.notes += notes
    section = AttackSection(
        names=list(attacks) if attacks is not None else AttackSection().names,
        params=params or {}, n_reference=n_reference, n_shadow=n_shadow,
        n_bootstrap=n_bootstrap, output=output,
    )  # fmt: skip
    results, settings = attack_target(ctx, section, "target")
    for r in results.values():
        r.params = {**r.params, "notes": settings["notes"]} if settings["notes"] else r.params
    return results


def run_fd_mia(
    X: np.ndarray,
    y: np.ndarray,
    sensitive: Any,
    members: np.ndarray,
    nonmembers: np.ndarray,
    population: np.ndarray,
    *,
    fairness: FairnessConfig,
    config: TrainConfig | None = None,
    groups_audit: Any = None,
    seed: int = 0,
    n_bootstrap: int = 200,
) -> FDMIAResult:
    """Train a biased (fairness weight 0) and a fair (``fairness``) model on ``members`` with the
    same seed, and attack the pair with FD-MIA (the audit's FD-MIA stage).

    ``sensitive``: protected attributes of every row (their codes train the penalty); per-group
    metrics use ``groups_audit`` (default: ``sensitive`` of the audit rows)."""
    audit = np.concatenate([members, nonmembers])
    is_member = np.r_[np.ones(len(members), bool), np.zeros(len(nonmembers), bool)]
    ctx = _array_context(X, y, sensitive, audit, is_member, np.asarray(population), seed)
    train = config or TrainConfig()
    biased = FairleakRecipe(train, FairnessConfig(**{**fairness.model_dump(), "weight": 0.0}))
    fair = FairleakRecipe(train, fairness)
    everything = np.arange(len(y))
    for name, rec in (("biased", biased), ("fair", fair)):
        ms = ctx.train(rec, rows=np.asarray(members), masks=np.ones((1, len(members)), bool),
                       seed=ctx.seed("target"), eval_rows=everything, task=f"model · {name}")  # fmt: skip
        ctx.targets[name] = AuditTarget(name, "fairleak", rec, outputs=ms.outputs)
    if groups_audit is not None:
        ga = normalize_sensitive(groups_audit, n_rows=len(audit))
        full = pd.DataFrame({c: np.full(len(y), "?", dtype=object) for c in ga.columns})
        full.iloc[audit] = ga.to_numpy()
        ctx.data.ds = TabularDataset("arrays", ctx.data.ds.features, ctx.data.ds.y, full, "y", "1",
                                     source_rows=ctx.data.ds.source_rows)  # fmt: skip
    return attack_pair(ctx, "biased", "fair", n_bootstrap)


def run_pa_alooa(
    X: np.ndarray,
    y: np.ndarray,
    sensitive: Any,
    *,
    n_models: int = 400,
    config: TrainConfig | None = None,
    fairness: FairnessConfig | None = None,
    dp: DPConfig | None = None,
    recipe: Recipe | None = None,
    audit_subset: np.ndarray | None = None,
    max_records: int | None = None,
    min_group_size: int = 30,
    null: bool = True,
    seed: int = 0,
    progress: Callable[[str, int, int, str], None] | None = None,
) -> GroupRiskResult:
    """Play the PA-ALOOA game on every row of (X, y) with fairleak's recipe (or ``recipe``) and
    compute IPR, GPR, GPRP with PA-GA / PA-GBA and null levels (the audit's group-risk stage).

    ``audit_subset`` (row positions) or ``max_records`` audits only some rows (the others are
    always IN)."""
    n = len(y)
    rows = np.arange(n)
    ctx = _array_context(X, y, sensitive, rows, np.zeros(n, bool), rows[:0], seed, progress)
    rec = recipe or FairleakRecipe(config or TrainConfig(), fairness, dp)
    section = GroupRiskSection(n_models=n_models, max_records=max_records, min_group_size=min_group_size)
    subset = None if audit_subset is None else np.sort(np.asarray(audit_subset))
    return play_pa_alooa(ctx, rec, rows, section, task="PA-ALOOA", null=null, subset=subset)
