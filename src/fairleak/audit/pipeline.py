"""The audit: load the data, get every audited model's outputs, run the registered stages.

The CLI, the Python API (:func:`audit_model`, :mod:`.api`) and the study all run through
:func:`run_audit`; stages are in :mod:`fairleak.audit.stages`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

import fairleak
from fairleak.audit.backends import make_backend
from fairleak.audit.bank import ModelBank, Progress
from fairleak.audit.cache import StageCache
from fairleak.audit.config import AuditConfig, ModelSpec, apply_overrides, default_config
from fairleak.audit.data import AuditData, prepare_data
from fairleak.audit.recipes import FairleakRecipe, SklearnRecipe, accepts_sensitive
from fairleak.audit.stages import STAGES, AuditContext
from fairleak.audit.target import AuditTarget, estimator_from_spec, load_fitted_model, recipe_of
from fairleak.audit.verdict import verdict
from fairleak.data import TabularDataset, dataset_summary, read_table
from fairleak.errors import DataValidationError
from fairleak.threads import limit_threads
from fairleak.train import TrainConfig
from fairleak.validation import replace as replace_params

__all__ = ["AuditResult", "Progress", "audit_model", "run_audit"]

#: The summary columns every audit has, before the stages' own.
BASE_COLUMNS = [
    {"key": "model", "label": "model", "stage": None, "digits": 0, "help": ""},
    {"key": "epsilon", "label": "epsilon", "stage": None, "digits": 2,
     "help": "the accountant's epsilon of a DP-trained model (empty: not private)"},
]  # fmt: skip


@dataclass
class AuditResult:
    """Everything an audit measured: ``results`` is what results.json holds; ``tables`` the
    Parquet tables by name; ``targets`` the audited models (with their outputs)."""

    results: dict[str, Any]
    tables: dict[str, pd.DataFrame]
    targets: dict[str, AuditTarget] = field(default_factory=dict)
    cache_hits: int = 0
    trainings: int = 0
    data: AuditData | None = None  # the data and split the audit ran on

    @property
    def per_record(self) -> pd.DataFrame:
        return self.tables.get("per_record", pd.DataFrame())


def _round(obj: Any, nd: int = 6) -> Any:
    """Round floats for results.json (stable, readable; figures are not meaningful past 6 places)."""
    if isinstance(obj, float):
        return None if not np.isfinite(obj) else round(obj, nd)
    if isinstance(obj, dict):
        return {str(k): _round(v, nd) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_round(v, nd) for v in obj]
    if isinstance(obj, np.generic):
        return _round(obj.item(), nd)
    if isinstance(obj, np.ndarray):
        return _round(obj.tolist(), nd)
    return obj


def _predictions(spec: ModelSpec, data: AuditData) -> np.ndarray:
    src = spec.predictions
    assert src is not None
    if src in data.columns:
        p = data.columns[src]
    else:
        path = Path(src)
        if not path.exists():
            raise DataValidationError(
                f"predictions '{src}' of model '{spec.name}' is neither a column of the data nor a file."
            )
        df = read_table(path)
        cols = [c for c in df.columns if str(c).lower() in ("proba", "probability", "score", "p1", "prediction")]
        if df.shape[1] != 1 and not cols:
            raise DataValidationError(
                f"The predictions file '{path}' has columns {list(df.columns)[:10]}: give one column, "
                "or name it proba, score or prediction."
            )
        col = df.columns[0] if df.shape[1] == 1 else cols[0]
        n_source = int(data.ds.source_rows.max()) + 1 if len(data.ds.source_rows) else len(data.y)
        if len(df) < n_source:
            raise DataValidationError(
                f"The predictions file '{path}' has {len(df)} rows; the data has {n_source} (one per row, same order)."
            )
        p = df[col].to_numpy()[data.ds.source_rows]
    try:
        p = np.asarray(p, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise DataValidationError(f"predictions of model '{spec.name}' must be numbers ({exc}).") from None
    if not np.isfinite(p).all() or p.min() < 0 or p.max() > 1:
        raise DataValidationError(
            f"predictions of model '{spec.name}' must be probabilities of the positive class in [0, 1]."
        )
    return p


def _small_data_schedule(
    train: TrainConfig, n_rows: int, min_batches: int | None, min_steps: int | None
) -> TrainConfig:
    """``train`` adapted to few rows: a batch small enough for ``min_batches`` batches an epoch on
    ``n_rows`` rows (never below 16), then enough epochs for ``min_steps`` optimiser steps. With
    few rows a fixed batch of 256 gives a handful of steps an epoch, and ten epochs of them leave
    the models (DP-SGD's above all, sampling rate near 1) at the majority class. Neither changes
    a model's privacy accounting: epsilon is calibrated for the schedule it trains with."""
    if min_batches is not None and n_rows < min_batches * train.batch_size:
        size = max(16, n_rows // min_batches)
        if size < train.batch_size:
            train = replace_params(train, batch_size=size)
    per_epoch = max(1, math.ceil(n_rows / train.batch_size))
    if min_steps is not None and train.epochs * per_epoch < min_steps:
        train = replace_params(train, epochs=math.ceil(min_steps / per_epoch))
    return train


#: public pretraining needs a population of at least this many rows (else a note, no pretraining)
_MIN_PUBLIC_ROWS = 100


def build_targets(
    cfg: AuditConfig, data: AuditData, fitted: Mapping[str, Any] | None = None
) -> dict[str, AuditTarget]:
    """The audited models of ``cfg`` (and the user's fitted objects ``fitted``, by name)."""
    targets: dict[str, AuditTarget] = {}
    for spec in cfg.models:
        notes: list[str] = []
        if spec.kind == "fairleak":
            asked = spec.train_config(cfg.train)
            train = _small_data_schedule(
                asked, len(data.members), cfg.min_batches_per_epoch, cfg.min_steps
            )
            if train.batch_size != asked.batch_size:
                notes.append(
                    f"'{spec.name}' trains with batch size {train.batch_size} instead of "
                    f"{asked.batch_size}: {len(data.members):,} training rows would "
                    f"give fewer than {cfg.min_batches_per_epoch} batches an epoch (min_batches_per_epoch)."
                )
            if train.epochs != asked.epochs:
                notes.append(
                    f"'{spec.name}' trains for {train.epochs} epochs instead of {asked.epochs}: "
                    f"{asked.epochs} would give fewer than {cfg.min_steps} optimiser steps on "
                    f"{len(data.members):,} training rows (min_steps)."
                )
            pretrain = None
            eps = None if spec.dp is None else spec.dp.target_epsilon
            limit = cfg.public_pretraining
            small = eps is not None and limit is not None and len(data.members) * eps < limit
            if small and len(data.population) < _MIN_PUBLIC_ROWS:
                notes.append(
                    f"'{spec.name}': {len(data.members):,} training rows x epsilon {eps:g} is below "
                    f"public_pretraining = {limit:g}, but the population has only "
                    f"{len(data.population):,} rows (fewer than {_MIN_PUBLIC_ROWS}): no public "
                    "pretraining; expect a model near the majority rate."
                )
                small = False
            if small:
                # DP-SGD on few rows at a small epsilon learns little beyond the base rate
                # (German, epsilon 1): start from a model trained on the public population
                tuned = replace_params(asked, lr=cfg.train.lr)
                pretrain = _small_data_schedule(
                    tuned, len(data.population), cfg.min_batches_per_epoch, cfg.min_steps
                )
                train = replace_params(train, lr=cfg.train.lr)
                step = f" at lr {train.lr:g} (the train section's) instead of {asked.lr:g}"
                step = step if asked.lr != train.lr else ""
                notes.append(
                    f"'{spec.name}' starts from a model trained without privacy on the "
                    f"{len(data.population):,} population rows (public pretraining: "
                    f"{len(data.members):,} training rows x epsilon {eps:g} is below "
                    f"public_pretraining = {limit:g}) and fine-tunes it with DP-SGD on its training "
                    f"rows{step}. Epsilon covers the training rows; the population rows are public "
                    "(the attacker's data) and not protected."
                )
            own = FairleakRecipe(train, spec.fairness, spec.dp, pretrain=pretrain)
            t = AuditTarget(spec.name, "fairleak", own)
        elif spec.kind == "sklearn":
            est = estimator_from_spec(spec.estimator or "", spec.params, "none")
            if spec.preprocess == "auto" and accepts_sensitive(est):
                # A Pipeline would not pass sensitive_features on to a fair estimator: it reads
                # fairleak's encoding instead (the same preprocessor, fitted on the population).
                recipe = SklearnRecipe(estimator=est, input="matrix")
            else:
                est = estimator_from_spec(spec.estimator or "", spec.params, spec.preprocess)
                recipe = SklearnRecipe(estimator=est)
            t = AuditTarget(spec.name, "sklearn", recipe)
        elif spec.kind == "fitted":
            model = load_fitted_model(spec.file or "", trust_pickle=spec.trust_pickle, trusted=spec.trusted_types)
            t = AuditTarget(spec.name, "fitted", recipe_of(model), fitted=model)
        else:
            t = AuditTarget(spec.name, "predictions", predictions=_predictions(spec, data))
        if spec.oversample is not None and t.recipe is not None:
            from fairleak.audit.resampled import ResampledRecipe

            t.recipe = ResampledRecipe(t.recipe, spec.oversample)
            notes.append(
                f"'{spec.name}' trains on its rows plus synthetic rows ({spec.oversample.generator}, "
                f"strategy {spec.oversample.strategy}); its reference and shadow models too."
            )
        if spec.reference_estimator is not None:
            ref = estimator_from_spec(spec.reference_estimator, spec.reference_params, "auto")
            t.reference_recipe = SklearnRecipe(estimator=ref)
            notes.append(
                f"Reference and shadow models of '{spec.name}' are {spec.reference_estimator}, not "
                "clones of the model: attack figures may understate its leakage."
            )
        t.notes += notes
        targets[spec.name] = t
    for name, model in (fitted or {}).items():
        if name in targets:
            raise DataValidationError(f"Two audited models are named '{name}'.")
        targets[name] = AuditTarget(name, "fitted", recipe_of(model), fitted=model)
    for t in targets.values():
        if t.recipe is None and t.kind == "fitted":
            t.notes.append(
                f"'{t.name}' ({type(t.fitted).__name__}) cannot be cloned: attacks that need models "
                "trained like it are skipped."
            )
    return targets


def _score_targets(ctx: AuditContext) -> None:
    """Every target's outputs on every row. Targets the audit trains go through the bank in one
    call, so that those that can train together (fairleak models differing only in the penalty
    weight, FairBoost models differing only in rounds) do: a sweep of K candidates costs about
    one ensemble of K models."""
    d = ctx.data
    everything = np.arange(len(d.y))
    trained = [t for t in ctx.targets.values() if t.trained_by_audit]
    if trained:
        sets = ctx.bank.train_each(
            [t.recipe for t in trained if t.recipe is not None], rows=d.members,
            seed=ctx.seed("target"), eval_rows=everything, task="models", names=[t.name for t in trained],
        )  # fmt: skip
        for t, ms in zip(trained, sets, strict=True):
            t.outputs, t.privacy, t.trained = ms.outputs, ms.privacy, ms.fitted
            if "oversample_added_rows" in ms.privacy:
                added = {k: int(v) for k, v in ms.privacy["oversample_added_rows"].items()}
                t.notes.append(f"Synthetic rows added to the members per (group|class) cell: {added}.")
                t.notes += ms.privacy.get("oversample_notes", [])
    for t in ctx.targets.values():
        if t.trained_by_audit:
            continue
        t.outputs = t.outputs_of_fitted(d.inputs, d.ds.positive)
        eps = getattr(t.fitted, "epsilon_", None)
        if eps is not None:
            t.privacy = {"epsilon": [float(eps)], "delta": getattr(t.fitted, "delta_", None)}


def run_audit(
    cfg: AuditConfig | None = None,
    *,
    out_dir: Path | str | None = None,
    dataset: TabularDataset | None = None,
    membership: np.ndarray | None = None,
    models: Mapping[str, Any] | None = None,
    progress: Progress | None = None,
    use_cache: bool = True,
    threads: int | None = None,
) -> AuditResult:
    """Run the audit described by ``cfg`` (default: :func:`default_config`).

    ``dataset``: a :class:`~fairleak.data.TabularDataset` instead of ``cfg.data``, with
    ``membership`` ("member" / "holdout" / "population" per row) when a model was fitted outside
    the audit; ``models``: models you fitted yourself, by name (their membership must be known:
    ``membership``, or ``cfg.data.member_column`` / ``cfg.data.train`` and ``holdout``).
    Finished model sets are cached under ``out_dir/.cache``: a killed run started again reuses
    them; ``use_cache=False`` recomputes everything (and refreshes the cache). ``threads``: for
    torch and BLAS (default: :func:`fairleak.threads.default_threads`).
    """
    with limit_threads(threads):
        return _run_audit(cfg, out_dir, dataset, membership, models, progress, use_cache)


def _run_audit(
    cfg: AuditConfig | None, out_dir: Path | str | None, dataset: TabularDataset | None,
    membership: np.ndarray | None, models: Mapping[str, Any] | None, progress: Progress | None,
    use_cache: bool,
) -> AuditResult:  # fmt: skip
    cfg = cfg or default_config()
    cache_root = Path(out_dir) / ".cache" if out_dir is not None else None
    cache = StageCache(cache_root or ".", read=use_cache and cache_root is not None,
                       write=cache_root is not None)  # fmt: skip
    if models and membership is None and not cfg.data.user_membership:
        raise DataValidationError(
            f"The model(s) {list(models)} were fitted outside the audit: say which rows they trained "
            "on (membership=..., or data.member_column / data.train and data.holdout)."
        )
    data = prepare_data(cfg, dataset, membership)
    for name, stage in STAGES.items():
        if cfg.stages[name].enabled:
            stage.check_data(cfg.stages[name], data)
    targets = build_targets(cfg, data, models)
    if not targets:
        raise DataValidationError("Nothing to audit: the config lists no models and none were given.")
    backend = make_backend(cfg.backend.name, address=cfg.backend.address, shards=cfg.backend.shards)
    bank = ModelBank(data.inputs, data.fingerprint, cache, progress, backend=backend)
    ctx = AuditContext(cfg, data, bank, targets, progress=progress)
    _score_targets(ctx)
    tables: dict[str, list[pd.DataFrame]] = {}
    notes: list[str] = [*data.ds.notes, *data.notes]
    for name, stage in STAGES.items():
        section = cfg.stages[name]
        if not section.enabled:
            continue
        if stage.scope == "audit":
            ctx.tick(stage.title, 0, 1, "stage")
        out = stage.run(ctx, section)
        if stage.scope == "audit":
            ctx.tick(stage.title, 1, 1, "stage")
        ctx.results[name] = out.results
        for k, v in out.tables.items():
            tables.setdefault(k, []).extend(v)
        ctx.tables = tables
        notes += out.notes
    results = _assemble(ctx, notes)
    results["verdict"] = verdict(_round(results), cfg.verdict)
    frames = {k: pd.concat(v, ignore_index=True) for k, v in tables.items() if v}
    return AuditResult(_round(results), frames, targets, cache.hits, ctx.bank.trainings, data)


def _assemble(ctx: AuditContext, notes: list[str]) -> dict[str, Any]:
    cfg, data = ctx.config, ctx.data
    columns = list(BASE_COLUMNS)
    for name, stage in STAGES.items():
        if cfg.stages[name].enabled:
            columns += [{"key": c.key, "label": c.label, "stage": name, "digits": c.digits, "help": c.help}
                        for c in stage.columns]  # fmt: skip
    models: dict[str, Any] = {}
    summary = []
    for name, t in ctx.targets.items():
        eps = t.privacy.get("epsilon")
        nm = t.privacy.get("noise_multiplier")
        entry: dict[str, Any] = {
            **t.describe(),
            "epsilon": None if not eps else float(eps[0]),
            "delta": t.privacy.get("delta") if eps else None,
            "noise_multiplier": None if not nm else float(nm[0]),
            "privacy": t.privacy.get("mechanism"),
            "notes": t.notes,
        }
        row: dict[str, Any] = {"model": name, "epsilon": entry["epsilon"]}
        for sname, stage in STAGES.items():
            if sname not in ctx.results:
                continue
            res = ctx.results[sname]
            if stage.scope == "model" and name in res:
                entry[sname] = res[name]
            row.update(stage.summary(res, name))
        models[name] = entry
        summary.append({c["key"]: row.get(c["key"]) for c in columns})
    results: dict[str, Any] = {
        "schema_version": 2,
        "fairleak_version": fairleak.__version__,
        "seed": cfg.seed,
        "config": cfg.to_dict(),
        "dataset": dataset_summary(data.ds),
        "split": data.split_summary(),
        "summary_columns": columns,
        "summary": summary,
        "models": models,
        "notes": [
            *notes,
            "Fairness figures are measured on the non-members (rows the models never trained on).",
            "Reference, shadow and game models are trained with each audited model's own recipe.",
            "fairleak's own models read a numeric encoding fitted on the population rows (public to "
            "the attacker), so the encoding reveals nothing about the members.",
        ],
    }
    for sname, stage in STAGES.items():
        if stage.scope == "audit" and sname in ctx.results:
            results[sname] = ctx.results[sname]
    return results


def audit_model(
    model: Any,
    train: pd.DataFrame,
    holdout: pd.DataFrame,
    *,
    label: str,
    protected: list[str],
    positive: Any = None,
    population: pd.DataFrame | None = None,
    bins: Mapping[str, list[float]] | None = None,
    name: str = "model",
    config: AuditConfig | Mapping[str, Any] | None = None,
    out_dir: Path | str | None = None,
    progress: Progress | None = None,
) -> AuditResult:
    """Audit a model you fitted yourself on ``train`` (the rows it trained on) against
    ``holdout`` (rows it never saw; split in half into audited non-members and the attacker's
    population unless ``population`` is given).

    ``model``: any fitted scikit-learn estimator or Pipeline that takes these DataFrames' columns
    (the label column is removed), or anything with ``predict_proba``. Reference, shadow and game
    models are clones of it, fitted on the same kind of DataFrame. ``config``: further settings,
    an :class:`AuditConfig` or a mapping of dotted overrides (``{"attacks.n_reference": 8}``).
    """
    from fairleak.data import load_table

    frames = [train.assign(__role__="member"), holdout.assign(__role__="holdout")]
    if population is not None:
        frames.append(population.assign(__role__="population"))
    df = pd.concat(frames, ignore_index=True)
    cfg = config if isinstance(config, AuditConfig) else default_config()
    cfg = apply_overrides(cfg, {"models": [], "data.protected": list(protected), "data.label": label})
    if isinstance(config, Mapping):
        cfg = apply_overrides(cfg, dict(config))
    ds = load_table(df, label=label, protected=protected, positive=positive, drop=["__role__"],
                    bins=bins, min_group_size=cfg.data.min_group_size)  # fmt: skip
    roles = df["__role__"].to_numpy()[ds.source_rows]
    return run_audit(cfg, dataset=ds, membership=roles, models={name: model}, out_dir=out_dir,
                     progress=progress)  # fmt: skip
