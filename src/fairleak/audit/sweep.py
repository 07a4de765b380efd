"""Sweeps: train a grid of candidate models in one audit and choose one on the front.

A sweep is an audit (:func:`~fairleak.audit.pipeline.run_audit`, the same code as
``fairleak audit``) whose audited models are a grid of candidates: fairleak MLPs for every
fairness weight x DP epsilon, FairBoost models for every number of rounds, and the models the
config names (your own estimator in ``target:`` / ``models:``), with the ``front`` stage on.
Candidates that differ only in the penalty weight train as one ensemble (a weight per model;
under DP, penalised and unpenalised models apart), FairBoost candidates that differ only in
rounds are one fit: 50 candidates cost about what 50 models in a few ensembles cost.

By default a sweep runs the attacks that need no extra models (threshold attacks on the
population); reference-model attacks (LiRA, RMIA) can be asked for and train references per
candidate.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from fairleak.audit.bank import Progress
from fairleak.audit.config import AuditConfig, ModelSpec, config_from_dict
from fairleak.audit.pipeline import AuditResult, run_audit
from fairleak.data import TabularDataset
from fairleak.errors import ConfigError, DataValidationError
from fairleak.train import DPConfig, FairnessConfig

__all__ = [
    "SWEEP_ATTACKS",
    "SweepGrid",
    "export_selected",
    "load_sweep_config",
    "run_sweep",
    "sweep_config",
]

#: Attacks a sweep runs by default: none of them trains a model.
SWEEP_ATTACKS = ["threshold_loss", "threshold_confidence", "threshold_modified_entropy", "threshold_correctness"]
#: Stages a sweep turns off unless asked (they train many models per candidate).
_EXPENSIVE = ("fd_mia", "group_risk", "dp_audit")


class SweepGrid(BaseModel):
    """The candidates of a sweep (the ``sweep:`` section of a sweep config)."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)
    fairness_weights: list[float] = Field(default_factory=lambda: [0.0, 0.5, 1.0, 2.0, 5.0],
                                          description="MLP penalty weights (0: no penalty)")  # fmt: skip
    epsilons: list[float | None] = Field(default_factory=lambda: [None, 8.0],
                                         description="DP epsilons of the MLPs (null: not private)")  # fmt: skip
    penalty: str = Field("demographic_parity", description="the MLPs' fairness penalty")
    fairboost_rounds: list[int] = Field(default_factory=list, description="FairBoost candidates: rounds used")
    fairboost_constraints: list[str] = Field(default_factory=lambda: ["equalized_odds"])
    fairboost_estimators: int | None = Field(None, ge=1, description="rounds fitted (default: the largest of fairboost_rounds)")
    include_models: bool = Field(True, description="the config's own models are candidates too")
    attacks: list[str] | None = Field(default_factory=lambda: list(SWEEP_ATTACKS),
                                      description="attacks to run (null: the config's)")  # fmt: skip
    keep_stages: list[str] = Field(default_factory=list, description=f"of {list(_EXPENSIVE)}, those to keep on")
    attack_bootstrap: int | None = Field(
        50, ge=0, description="resamples of each attack's intervals (per group too; null: the config's)"
    )

    @field_validator("fairness_weights")
    @classmethod
    def _weights(cls, v: list[float]) -> list[float]:
        if any(not np.isfinite(w) or w < 0 for w in v):
            raise ValueError(f"fairness weights must be finite and >= 0; got {v}")
        return sorted(set(v))

    @field_validator("epsilons")
    @classmethod
    def _eps(cls, v: list[float | None]) -> list[float | None]:
        if any(e is not None and (not np.isfinite(e) or e <= 0) for e in v):
            raise ValueError(f"epsilons must be positive numbers or null (not private); got {v}")
        return v

    @field_validator("fairboost_rounds")
    @classmethod
    def _rounds(cls, v: list[int]) -> list[int]:
        if any(r < 1 for r in v):
            raise ValueError(f"FairBoost rounds must be >= 1; got {v}")
        return sorted(set(v))

    @field_validator("fairboost_constraints")
    @classmethod
    def _constraints(cls, v: list[str]) -> list[str]:
        ok = ("equalized_odds", "equal_opportunity", "demographic_parity", "none")
        bad = [c for c in v if c not in ok]
        if bad:
            raise ValueError(f"unknown FairBoost constraint(s) {bad}; choose from {list(ok)}")
        return v

    @field_validator("keep_stages")
    @classmethod
    def _keep(cls, v: list[str]) -> list[str]:
        bad = [s for s in v if s not in _EXPENSIVE]
        if bad:
            raise ValueError(f"keep_stages: {bad} are not optional stages; choose from {list(_EXPENSIVE)}")
        return v

    def candidates(self) -> list[ModelSpec]:
        """The grid as audited-model specs, named by their settings."""
        out = []
        for eps in self.epsilons:
            for w in self.fairness_weights:
                name = f"mlp_w{w:g}" + ("" if eps is None else f"_eps{eps:g}")
                out.append(ModelSpec(
                    name=name,
                    fairness=None if w == 0 else FairnessConfig(penalty=self.penalty, weight=w),
                    dp=None if eps is None else DPConfig(target_epsilon=eps),
                ))  # fmt: skip
        n_est = self.fairboost_estimators or (max(self.fairboost_rounds) if self.fairboost_rounds else 0)
        short = {"equalized_odds": "eo", "equal_opportunity": "eop", "demographic_parity": "dp", "none": "ada"}
        for c in self.fairboost_constraints if self.fairboost_rounds else []:
            for r in self.fairboost_rounds:
                out.append(ModelSpec(
                    name=f"fairboost_{short[c]}_t{r}",
                    estimator="fairleak.train.fairboost.FairBoostClassifier",
                    params={"n_estimators": n_est, "constraint": None if c == "none" else c, "selection": r},
                ))  # fmt: skip
        return out


def sweep_config(
    cfg: AuditConfig,
    grid: SweepGrid,
    *,
    front: Mapping[str, Any] | None = None,
) -> AuditConfig:
    """The audit config of a sweep: the grid's candidates (and the config's own models when
    ``grid.include_models``), the front stage on (``front``: its settings, e.g.
    ``{"constraints": "dp_gap <= 0.05"}``), the expensive stages off, the grid's attacks."""
    raw = cfg.to_dict()
    own = [m.model_dump(exclude_defaults=True, mode="json") for m in cfg.models] if grid.include_models else []
    cands = [m.model_dump(exclude_defaults=True, mode="json") for m in grid.candidates()]
    names = [m["name"] for m in own]
    clash = [m["name"] for m in cands if m["name"] in names]
    if clash:
        raise ConfigError(f"The config's models {clash} have the names of sweep candidates; rename them.")
    raw["models"] = own + cands
    if not raw["models"]:
        raise ConfigError("The sweep has no candidates: give fairness_weights and epsilons, fairboost_rounds, or models.")
    for name in _EXPENSIVE:
        if name in raw and name not in grid.keep_stages:
            raw[name] = {**raw[name], "enabled": False}
    if grid.attacks is not None:
        raw["attacks"] = {**raw.get("attacks", {}), "names": list(grid.attacks)}
    if grid.attack_bootstrap is not None:
        # Each attack's intervals (overall and per group) cost O(resamples) per candidate and
        # dominate a sweep's measuring time; P(front) has its own paired bootstrap.
        raw["attacks"] = {**raw.get("attacks", {}), "n_bootstrap": grid.attack_bootstrap}
    raw["front"] = {**raw.get("front", {}), **dict(front or {}), "enabled": True}
    return config_from_dict(raw, source="(sweep)")


def load_sweep_config(path: str | Path) -> tuple[AuditConfig, SweepGrid]:
    """A sweep config file: an audit config (docs/CONFIG.md) with an optional ``sweep:``
    section (:class:`SweepGrid`). Without ``models:`` / ``target:`` the candidates are the grid
    alone."""
    p = Path(path)
    if not p.exists():
        raise ConfigError(f"The config file '{p}' does not exist.")
    try:
        raw = yaml.safe_load(p.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"The config file '{p}' is not valid YAML: {str(exc).splitlines()[0]}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"Invalid config '{p.name}': the top level must be a mapping.")
    grid = sweep_grid(raw.pop("sweep", None) or {}, source=f"'{p.name}'")
    if "models" not in raw and "target" not in raw:
        raw["models"] = []
    return config_from_dict(raw, source=f"'{p.name}'"), grid


def sweep_grid(raw: Mapping[str, Any], *, source: str = "") -> SweepGrid:
    """Validate a ``sweep:`` section (errors name the key)."""
    try:
        return SweepGrid.model_validate(dict(raw))
    except ValidationError as exc:
        parts = []
        for e in exc.errors():
            loc = ".".join(str(x) for x in e["loc"])
            msg = e["msg"].removeprefix("Value error, ")
            parts.append(f"unknown key 'sweep.{loc}'" if e["type"] == "extra_forbidden" else f"'sweep.{loc}': {msg}")
        raise ConfigError(f"Invalid sweep settings {source}: " + "; ".join(parts) + ".") from None


def run_sweep(
    cfg: AuditConfig | None = None,
    grid: SweepGrid | Mapping[str, Any] | None = None,
    *,
    front: Mapping[str, Any] | None = None,
    out_dir: Path | str | None = None,
    dataset: TabularDataset | None = None,
    progress: Progress | None = None,
    use_cache: bool = True,
) -> AuditResult:
    """Train and audit every candidate of ``grid`` on ``cfg``'s data and choose one on the front.

    ``cfg``: the audit config (data, split, training, attacks; its ``models`` are candidates too
    unless ``grid.include_models`` is false; default: Adult with no models of its own).
    ``front``: the front stage's settings: ``constraints`` ("dp_gap <= 0.05, epsilon <= 8"),
    ``weights`` (one per objective), ``error``, ``gap``, ``privacy``, ``n_bootstrap``.
    Returns the audit's result: ``results["front"]`` holds every candidate, the front, the
    hypervolume, the knee and the chosen model with the reason.
    """
    from fairleak.audit.config import default_config

    if cfg is None:
        cfg = default_config().model_copy(update={"models": []})
    g = grid if isinstance(grid, SweepGrid) else sweep_grid(grid or {})
    return run_audit(sweep_config(cfg, g, front=front), out_dir=out_dir, dataset=dataset,
                     progress=progress, use_cache=use_cache)  # fmt: skip


def export_selected(result: AuditResult, path: str | Path, *, name: str | None = None) -> Path:
    """Export the chosen candidate (or ``name``) with its preprocessing as ONNX (extra
    ``export``): fairleak's encoding refitted on the audit's population rows (as the audit fits
    it) followed by the MLP or the FairBoost ensemble. A model the audit took from its cache is
    trained again with its recipe and seed (the same model). Other estimators are refused."""
    from fairleak.audit.recipes import FairleakRecipe, SklearnRecipe
    from fairleak.audit.seeds import named_seed
    from fairleak.data import TabularPreprocessor
    from fairleak.export import save_onnx
    from fairleak.train import model_seeds
    from fairleak.train.fairboost import FairBoostClassifier

    front = result.results.get("front") or {}
    name = name or front.get("selected")
    if name is None:
        raise DataValidationError("No model was chosen on the front, so there is nothing to export; name one.")
    target = result.targets.get(name)
    if target is None:
        raise DataValidationError(f"No candidate named '{name}'; candidates: {sorted(result.targets)}.")
    recipe = target.recipe
    ok = isinstance(recipe, FairleakRecipe) and recipe.input == "matrix"
    ok = ok or (isinstance(recipe, SklearnRecipe) and recipe.input == "matrix"
                and isinstance(recipe.estimator, FairBoostClassifier))  # fmt: skip
    if not ok or result.data is None:
        raise DataValidationError(
            f"'{name}' ({target.kind}) cannot be exported to ONNX: export covers fairleak's MLPs and "
            "FairBoost trained by the audit. Export your own estimator with skl2onnx."
        )
    data = result.data
    fitted = target.trained
    if fitted is None:  # from the cache: train it again, exactly as the audit did
        assert recipe is not None
        seed = model_seeds(named_seed(int(result.results["seed"]), "target"), 1)
        fitted = recipe.fit(data.inputs, data.members, np.ones((1, len(data.members)), bool), seed)
    model = fitted.ensemble if isinstance(recipe, FairleakRecipe) else fitted.models[0]
    pre = TabularPreprocessor().fit(data.ds.features.iloc[data.population])
    return save_onnx(model, path, preprocessor=pre)
