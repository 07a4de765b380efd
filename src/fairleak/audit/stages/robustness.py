"""Stage: robustness disparity, who is easiest to push across the decision boundary.

For every audited model it can query, on the same random records (members and non-members):
the smallest change that flips each record's decision, within what a user may change (numeric
features, clipped to the population's range; protected attributes and ``immutable`` columns
fixed; with ``categorical: swap``, one-hot blocks switched whole to another valid category);
in standardised units of fairleak's encoding (fitted on the population rows), L2 and/or L-inf.
fairleak's models are attacked white-box (exact for linear ones, DeepFool for L2, PGD with a
bisection on the budget for L-inf), any other model through its decisions only (boundary
search, on fairleak's encoding decoded back to the table it reads). Then
(:mod:`fairleak.robustness.groups`), on the correctly classified non-members: per group and
intersection the median and quantiles of the distance, the share flipped within each budget,
with bootstrap intervals; the disparity (most against least brittle group) with intervals; the
correlation with group size; the agreement of each model's group ranking with the reference
(plain) model's; and the distance as a label-only membership score on members vs non-members.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import numpy as np
import pandas as pd
from pydantic import Field
from scipy import stats

from fairleak.audit.blocks import Bars, Block, Estimate, RefLine, Series, Table, Text
from fairleak.audit.cache import stable_hash
from fairleak.audit.recipes import FairleakRecipe, SklearnRecipe, positive_column
from fairleak.audit.stages.base import (
    AuditContext,
    Column,
    Stage,
    StageConfig,
    StageOutput,
    check_model_names,
    register_stage,
)
from fairleak.data import TabularPreprocessor, group_views
from fairleak.errors import DataValidationError
from fairleak.robustness import PerturbationSpace, decision_function_of, minimal_perturbation
from fairleak.robustness.groups import group_robustness, membership_link
from fairleak.train import model_seeds

__all__ = ["RobustnessSection", "RobustnessStage"]


class RobustnessSection(StageConfig):
    enabled: bool = Field(True, description="on by default (measured: a small share of the audit's time)")
    models: list[str] | None = Field(None, description="models to attack; null: every model that can be queried")
    norms: list[Literal["l2", "linf"]] = Field(["l2"], min_length=1, description="distances to measure")
    method: Literal["auto", "exact", "deepfool", "pgd", "boundary"] = Field(
        "auto", description="auto: exact (linear), DeepFool (L2) / PGD (L-inf) for fairleak's "
        "models, the decision-based boundary search for any other",
    )  # fmt: skip
    categorical: Literal["fixed", "swap"] = Field(
        "fixed", description="swap: also one change of a categorical feature to another valid category"
    )
    immutable: list[str] = Field(
        default_factory=list, description="feature columns a user cannot change (protected ones always fixed)"
    )
    max_records: int | None = Field(2000, ge=10, description="records attacked (half members); null: all audited")
    budgets: list[float] = Field([0.1, 0.25, 0.5, 1.0], min_length=1, description="distances for 'flipped within'")
    n_bootstrap: int = Field(200, ge=0)
    confidence: float = Field(0.95, gt=0, lt=1)
    min_group_size: int = Field(30, ge=1, description="groups with fewer correct non-members: no figures")
    boundary_iterations: int = Field(15, ge=0, description="boundary search: refinement rounds")
    boundary_directions: int = Field(24, ge=2, description="boundary search: probes per round")


def _digest(a: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(a).tobytes()).hexdigest()[:24]


def _records(ctx: AuditContext, cfg: RobustnessSection) -> np.ndarray:
    """Positions into the audit rows: all, or ``max_records`` with members and non-members halved."""
    d = ctx.data
    n = len(d.audit)
    if cfg.max_records is None or cfg.max_records >= n:
        return np.arange(n)
    rng = np.random.default_rng(ctx.seed("robustness records"))
    mem, non = np.flatnonzero(d.is_member), np.flatnonzero(~d.is_member)
    k_non = min(len(non), cfg.max_records - min(len(mem), cfg.max_records // 2))
    k_mem = min(len(mem), cfg.max_records - k_non)
    return np.sort(np.r_[rng.choice(mem, k_mem, replace=False), rng.choice(non, k_non, replace=False)])


class _Encoding:
    """fairleak's encoding of the features (fitted on the population, as the audit's is) and
    its inverse to the table a scikit-learn model reads."""

    def __init__(self, ctx: AuditContext) -> None:
        d = ctx.data
        feats = d.ds.features
        self.population = d.population
        self.pre = TabularPreprocessor().fit(feats.iloc[d.population])
        self.matrix = d.inputs.matrix
        self.features = feats
        enc = self.pre.column_transformer_.named_transformers_
        self.num = enc["num"] if self.pre.numeric_ else None
        self.cat = enc["cat"] if self.pre.categorical_ else None
        # each one-hot category back to the column's own value (the encoder saw strings)
        self.values: dict[str, np.ndarray] = {}
        if self.cat is not None:
            for c, cats in zip(self.pre.categorical_, self.cat.categories_, strict=True):
                own = {str(v): v for v in pd.unique(feats[c].iloc[d.population])}
                self.values[c] = np.array([own.get(str(v), v) for v in cats], dtype=object)

    def space(self, immutable: list[str], categorical: bool) -> PerturbationSpace:
        fixed = [c for c in immutable if c in self.features.columns]
        return PerturbationSpace.from_preprocessor(
            self.pre, self.matrix[self.population], immutable=fixed, categorical=categorical
        )

    def decode(self, Z: np.ndarray, base: pd.DataFrame, rows: np.ndarray | None) -> pd.DataFrame:
        """Encoded rows back to ``base``'s columns (the table the model reads); columns the
        encoding leaves out come from each row's source record ``rows`` (positions into base)."""
        src = base.iloc[rows if rows is not None else np.zeros(len(Z), dtype=np.int64)]
        out = src.reset_index(drop=True).copy()
        nn = len(self.pre.numeric_)
        if self.num is not None:
            vals = Z[:, :nn].astype(np.float64) * self.num.scale_ + self.num.mean_
            for j, c in enumerate(self.pre.numeric_):
                if c in out.columns:
                    out[c] = vals[:, j]
        if self.cat is not None:
            start = nn
            for c, cats in zip(self.pre.categorical_, self.cat.categories_, strict=True):
                block = Z[:, start : start + len(cats)]
                start += len(cats)
                if c in out.columns:
                    keep = block.max(1) < 0.5  # an unseen category (all zeros): unchanged
                    new = self.values[c][block.argmax(1)]
                    out[c] = np.where(keep, out[c].to_numpy(dtype=object), new)
        return out


@dataclass
class _Attackable:
    model: Any
    X: np.ndarray
    space: PerturbationSpace
    decode: Any
    numeric_names: list[str]
    one_change: PerturbationSpace | None  # every mutable category block (None: no encoding)
    notes: list[str]


class _Decoded:
    """A scikit-learn model behind fairleak's encoding: positive-class column second."""

    def __init__(self, est: Any, j: int) -> None:
        self.est, self.j = est, j
        self.classes_ = np.array([0, 1])

    def predict_proba(self, inp: pd.DataFrame) -> np.ndarray:
        p = np.asarray(self.est.predict_proba(inp), dtype=np.float64)
        return np.stack([p[:, 1 - self.j], p[:, self.j]], 1)


def _attackable(
    ctx: AuditContext, target: Any, enc: _Encoding, cfg: RobustnessSection, audit_rows: np.ndarray
) -> _Attackable | str:
    """The model, its records and space, or why it is skipped."""
    d = ctx.data
    immutable = list(dict.fromkeys([*d.ds.protected, *cfg.immutable]))
    categorical = cfg.categorical == "swap"
    notes: list[str] = []
    recipe = target.recipe
    if target.kind == "predictions":
        return "only the model's predictions are known: the search needs to query the model"
    if target.fitted is not None:
        model = target.fitted
    elif target.trained is not None:
        model = target.trained
    else:  # trained in an earlier run (outputs cached): train it again, same rows and seed
        model = recipe.fit(d.inputs, d.members, np.ones((1, len(d.members)), bool),
                           model_seeds(ctx.seed("target"), 1))  # fmt: skip
        z = model.outputs(d.inputs, audit_rows).proba
        if not np.allclose(z, ctx.target_outputs(target.name, audit_rows).proba, atol=1e-4):
            notes.append("The model was trained again for this stage and differs from the cached one.")
    # a model trained on oversampled rows (audit/resampled.py): the base recipe's model, queried as it is
    parts = getattr(model, "parts", None)
    if parts is not None and len(parts) == 1:
        model = parts[0]
    recipe = getattr(recipe, "base", recipe)
    ens = getattr(model, "ensemble", None)
    if ens is None:
        ens = getattr(model, "ensemble_", None)
    X = enc.matrix[audit_rows]
    if ens is not None and isinstance(recipe, FairleakRecipe) and recipe.input == "matrix":
        return _Attackable(ens, X, enc.space(immutable, categorical), None, list(enc.pre.numeric_),
                           enc.space(immutable, True), notes)  # fmt: skip
    if ens is not None:  # fairleak's model on the user's numeric columns: distances in their units
        cols = [str(c) for c in (recipe.columns or [])] if recipe is not None else []
        Xr = recipe.features(d.inputs) if recipe is not None else np.asarray(d.inputs.table("raw"), np.float32)
        fixed = [i for i, c in enumerate(cols) if c in immutable]
        pop = Xr[d.population]
        sp = PerturbationSpace.all_numeric(Xr.shape[1], immutable=fixed, lower=pop.min(0), upper=pop.max(0))
        notes.append("The model reads raw numeric columns: distances are in those columns' units.")
        return _Attackable(ens, Xr[audit_rows], sp, None, cols, None, notes)
    # any other model: its decisions on fairleak's encoding decoded to the table it reads
    fitted_models = getattr(model, "models", None)
    est = fitted_models[0] if fitted_models else model
    if isinstance(recipe, SklearnRecipe) and target.fitted is None:
        base = d.inputs.table(recipe.input, recipe.columns)
    else:
        names = getattr(est, "feature_names_in_", None)
        base = d.inputs.table("raw", None if names is None else tuple(str(c) for c in names))
    if isinstance(base, np.ndarray):
        return "the model reads a plain array, not a table fairleak can encode"
    base = base.iloc[audit_rows].reset_index(drop=True)
    j = positive_column(est, d.ds.positive) if hasattr(est, "classes_") else 1
    mapped = _PipelineMap.of(est, enc, base)
    if mapped is not None:  # fairleak's preprocessor in front: no DataFrames per query
        return _Attackable(_Decoded(mapped.rest, j), X, enc.space(immutable, categorical), mapped,
                           list(enc.pre.numeric_), enc.space(immutable, True), notes)  # fmt: skip
    return _Attackable(_Decoded(est, j), X, enc.space(immutable, categorical),
                       lambda Z, rows: enc.decode(Z, base, rows), list(enc.pre.numeric_),
                       enc.space(immutable, True), notes)  # fmt: skip


class _PipelineMap:
    """A scikit-learn Pipeline whose first step is a fitted :class:`TabularPreprocessor` (what
    ``preprocess: auto`` builds), queried on fairleak's encoding without DataFrames: the record's
    own encoding by the pipeline, with the coordinates fairleak's encoding covers mapped in
    (numerics affinely: both are standardisations of the same column; categories by value).
    The decision-based search makes millions of queries; a DataFrame per query batch through
    the pipeline's one-hot encoder cost ~100x more."""

    def __init__(self, pipe: Any, enc: _Encoding, base: pd.DataFrame) -> None:
        pre = pipe.steps[0][1]
        self.rest = pipe[1:]
        self.base = np.asarray(pre.transform(base), dtype=np.float32)
        nn_p = len(pre.numeric_)
        num_p = pre.column_transformer_.named_transformers_["num"] if nn_p else None
        # (ours, theirs, our scale and mean, their mean and scale): the same float64 operations
        # as decoding to the raw value and their StandardScaler, so the same float32 inputs
        self.num: list[tuple[int, int, float, float, float, float]] = []
        for i, c in enumerate(enc.pre.numeric_):
            if num_p is not None and c in pre.numeric_:
                k = pre.numeric_.index(c)
                self.num.append((i, k, float(enc.num.scale_[i]), float(enc.num.mean_[i]),
                                 float(num_p.mean_[k]), float(num_p.scale_[k])))  # fmt: skip
        self.cat: list[tuple[int, int, int, int, np.ndarray]] = []
        cat_p = pre.column_transformer_.named_transformers_["cat"] if pre.categorical_ else None
        start_p = {}
        pos = nn_p
        if cat_p is not None:
            for c, cats in zip(pre.categorical_, cat_p.categories_, strict=True):
                start_p[c] = (pos, [str(v) for v in cats])
                pos += len(cats)
        start = len(enc.pre.numeric_)
        if enc.cat is not None:
            for c, cats in zip(enc.pre.categorical_, enc.cat.categories_, strict=True):
                if c in start_p:
                    ps, pcats = start_p[c]
                    where = np.array([pcats.index(str(v)) if str(v) in pcats else -1 for v in cats])
                    self.cat.append((start, len(cats), ps, len(pcats), where))
                start += len(cats)

    @classmethod
    def of(cls, est: Any, enc: _Encoding, base: pd.DataFrame) -> _PipelineMap | None:
        from sklearn.pipeline import Pipeline

        if not (isinstance(est, Pipeline) and len(est.steps) > 1
                and isinstance(est.steps[0][1], TabularPreprocessor)):  # fmt: skip
            return None
        return cls(est, enc, base)

    def __call__(self, Z: np.ndarray, rows: np.ndarray | None) -> np.ndarray:
        P = self.base[rows if rows is not None else np.zeros(len(Z), dtype=np.int64)].copy()
        for i, k, sc, mu, mu_p, sc_p in self.num:
            P[:, k] = ((Z[:, i].astype(np.float64) * sc + mu) - mu_p) / sc_p
        n = np.arange(len(Z))
        for s, size, ps, psize, where in self.cat:
            block = Z[:, s : s + size]
            seen = block.max(1) >= 0.5  # all zeros: a category unseen by fairleak's encoding, kept
            tgt = where[block.argmax(1)]
            P[seen, ps : ps + psize] = 0.0
            ok = seen & (tgt >= 0)
            P[n[ok], ps + tgt[ok]] = 1.0
        return P


def _one_change(model: Any, X: np.ndarray, space: PerturbationSpace, decode: Any) -> np.ndarray:
    """Whether one change of a categorical feature to another valid category flips each record."""
    out = np.zeros(len(X), dtype=bool)
    if not space.blocks:
        return out
    predict = decision_function_of(model, decode=decode)
    base = predict(X, np.arange(len(X)))
    rows, src, _ = space.category_swaps(X)
    np.logical_or.at(out, src, predict(rows, src) != base[src])
    return out


@register_stage
class RobustnessStage(Stage):
    name = "robustness"
    title = "Robustness disparity: who is easiest to push across the boundary"
    order = 45
    Config = RobustnessSection
    columns = (
        Column("robust_median", "median flip dist.", help="median L2 (first norm) distance that flips a correctly classified non-member"),
        Column("brittle_ratio", "brittle ratio", help="worst / best group median distance, full intersection (1 = equal)"),
        Column("distance_mia_auc", "dist. MIA AUC", help="boundary distance as a label-only membership score"),
    )  # fmt: skip
    glossary: ClassVar[dict[str, str]] = {
        "flip distance": "the smallest change (standardised units of fairleak's encoding, within "
        "the features a user may change) that flips the model's decision on a record",
        "brittle ratio": "median flip distance of the most brittle group divided by that of the "
        "least brittle one (1 = equally robust)",
    }
    schema: ClassVar[dict[str, Any] | None] = {
        "oneOf": [
            {"type": "object", "required": ["skipped"]},
            {"type": "object", "required": ["records", "method", "norms", "space"],
             "properties": {"norms": {"type": "object", "additionalProperties": {
                 "type": "object", "required": ["groups", "disparity", "overall", "membership"]}}}},
        ]
    }  # fmt: skip

    @classmethod
    def check_config(cls, cfg: RobustnessSection, audit: Any) -> None:
        check_model_names(cfg.models or [], audit, "robustness.models")

    def run(self, ctx: AuditContext, cfg: RobustnessSection) -> StageOutput:
        d = ctx.data
        enc: _Encoding | None = None  # built only when a model is attacked (not from the cache)
        known = set(d.ds.features.columns)
        bad = [c for c in cfg.immutable if c not in known]
        notes: list[str] = []
        if bad:
            notes.append(f"robustness.immutable names {bad}, which are not feature columns: ignored.")
        recs = _records(ctx, cfg)
        rows = d.audit[recs]
        member = d.is_member[recs]
        results: dict[str, Any] = {}
        tables: list[pd.DataFrame] = []
        chosen = cfg.models if cfg.models is not None else list(ctx.targets)
        cache = ctx.bank.cache
        for name in chosen:
            target = ctx.targets[name]
            if target.kind == "predictions":
                results[name] = {"skipped": "only the model's predictions are known: the search "
                                 "needs to query the model"}  # fmt: skip
                continue
            key = stable_hash({
                "stage": self.name, "version": 1, "data": d.fingerprint, "seed": ctx.config.seed,
                "target": target.describe(), "rows": _digest(rows),
                "outputs": _digest(np.round(ctx.target_outputs(name, rows).proba, 6)),
                "cfg": cfg.model_dump(include={"norms", "method", "categorical", "immutable",
                                               "boundary_iterations", "boundary_directions"}),
            })  # fmt: skip
            raw = cache.get_arrays(self.name, key)
            if raw is None:
                enc = enc or _Encoding(ctx)
                got = _attackable(ctx, target, enc, cfg, rows)
                if isinstance(got, str):
                    results[name] = {"skipped": got}
                    continue
                try:
                    raw = self._attack(ctx, cfg, name, got)
                except DataValidationError as exc:  # e.g. method: exact for a model that is not linear
                    results[name] = {"skipped": str(exc)}
                    notes.append(f"robustness skipped '{name}': {exc}")
                    continue
                cache.put_arrays(self.name, key, raw)
            res_model, table = self._figures(ctx, cfg, name, raw, rows, member)
            results[name] = res_model
            tables.append(table)
        self._compare(results, ctx)
        return StageOutput(results, {"robustness_per_record": tables} if tables else {}, notes)

    def _attack(
        self, ctx: AuditContext, cfg: RobustnessSection, name: str, att: _Attackable
    ) -> dict[str, np.ndarray]:
        """The per-record arrays (what the cache keeps): distances, category changes, methods."""
        space = att.space
        info = {
            "space": {"numeric": [att.numeric_names[i] for i in space.numeric if i < len(att.numeric_names)],
                      "categorical": list(space.block_names)},
            "notes": att.notes, "methods": {}, "queries": {}, "one_change": [],
        }  # fmt: skip
        raw: dict[str, np.ndarray] = {}
        for norm in cfg.norms:
            opts: dict[str, Any] = {}
            if att.decode is not None or cfg.method == "boundary":
                opts = {"iterations": cfg.boundary_iterations, "directions": cfg.boundary_directions}
            res = minimal_perturbation(
                att.model, att.X, space, norm=norm, method=cfg.method, categorical=cfg.categorical,
                decode=att.decode, seed=ctx.seed("robustness", name, norm), **opts,
            )  # fmt: skip
            raw[f"distance_{norm}"] = res.distance
            raw[f"category_{norm}"] = res.category_change
            if res.bound_active is not None:
                raw[f"bound_{norm}"] = res.bound_active
            info["methods"][norm] = res.method
            info["queries"][norm] = int(res.queries)
        if att.one_change is not None and att.one_change.blocks:
            raw["one_change"] = _one_change(att.model, att.X, att.one_change, att.decode)
            info["one_change"] = list(att.one_change.block_names)
        raw["info"] = np.array(json.dumps(info))
        return raw

    def _figures(
        self, ctx: AuditContext, cfg: RobustnessSection, name: str, raw: Mapping[str, np.ndarray],
        rows: np.ndarray, member: np.ndarray,
    ) -> tuple[dict[str, Any], pd.DataFrame]:  # fmt: skip
        d = ctx.data
        info = json.loads(str(raw["info"]))
        y = d.y[rows]
        sens = d.sensitive(rows)
        p = ctx.target_outputs(name, rows).proba[:, 1]
        correct = (p > 0.5) == (y == 1)
        non = ~member
        out: dict[str, Any] = {
            "records": len(rows), "members": int(member.sum()), "nonmembers": int(non.sum()),
            "method": info["methods"][cfg.norms[-1]],
            "space": {**info["space"], "fixed": sorted(set(d.ds.protected)
                                                       | (set(cfg.immutable) & set(d.ds.features.columns)))},
            "norms": {},
        }  # fmt: skip
        src = d.ds.source_rows[rows] if len(d.ds.source_rows) else rows
        table = pd.DataFrame({"model": name, "row": src, "member": member, "correct": correct})
        for norm in cfg.norms:
            dist = raw[f"distance_{norm}"]
            g = group_robustness(
                dist[non], correct=correct[non], y_true=y[non], sensitive=sens[non],
                budgets=cfg.budgets, n_bootstrap=cfg.n_bootstrap, confidence=cfg.confidence,
                min_group_size=cfg.min_group_size, seed=ctx.seed("robustness bootstrap", name, norm),
            )  # fmt: skip
            link = membership_link(dist, correct=correct, is_member=member, sensitive=sens,
                                   n_bootstrap=cfg.n_bootstrap,
                                   seed=ctx.seed("robustness membership", name, norm))  # fmt: skip
            g["membership"] = link.to_dict(roc=False)
            g["method"] = info["methods"][norm]
            if f"bound_{norm}" in raw:
                g["bound_active_share"] = float(raw[f"bound_{norm}"].mean())
            g["category_changes"] = int((raw[f"category_{norm}"] >= 0).sum())
            g["queries"] = info["queries"][norm]
            out["norms"][norm] = g
            table[f"distance_{norm}"] = dist
        if "one_change" in raw:
            flips = raw["one_change"].astype(bool)
            sel = non & correct
            views = group_views(sens[sel].reset_index(drop=True))
            out["one_change"] = {
                "features": info["one_change"],
                "share": float(flips[sel].mean()) if sel.any() else None,
                "groups": {v: {str(k): {"n": int((lab == k).sum()), "share": float(flips[sel][lab == k].mean())}
                               for k in sorted(set(lab.tolist()))} for v, lab in views.items()},
            }  # fmt: skip
            table["one_change_flips"] = flips
        out["notes"] = info["notes"]
        return out, table

    @staticmethod
    def _reference(ctx: AuditContext, names: list[str]) -> str | None:
        for n in names:
            r = ctx.targets[n].recipe
            if not isinstance(r, FairleakRecipe) or (r.fairness is None and r.dp is None):
                return n
        return None

    def _compare(self, results: dict[str, Any], ctx: AuditContext) -> None:
        """Does each model rank the groups like the reference (plain) model? Spearman of the
        group medians and whether the most brittle group is the same, per norm and view."""
        ok = [n for n, r in results.items() if "norms" in r]
        ref = self._reference(ctx, ok)
        if ref is None:
            return
        for n in ok:
            cmp: dict[str, Any] = {"reference": ref}
            for norm, g in results[n]["norms"].items():
                rg = results[ref]["norms"][norm]
                per: dict[str, Any] = {}
                for view, groups in g["groups"].items():
                    common = [k for k, v in groups.items() if not v["too_small"] and v["median"] is not None
                              and not rg["groups"][view].get(k, {}).get("too_small", True)
                              and rg["groups"][view][k]["median"] is not None]  # fmt: skip
                    rho = None
                    if len(common) >= 3:
                        a = [groups[k]["median"] for k in common]
                        b = [rg["groups"][view][k]["median"] for k in common]
                        rho = float(stats.spearmanr(a, b)[0]) if len(set(a)) > 1 and len(set(b)) > 1 else None
                    dw, rw = g["disparity"].get(view), rg["disparity"].get(view)
                    per[view] = {"spearman": rho, "n_groups": len(common),
                                 "same_worst": None if not (dw and rw) else dw["worst"] == rw["worst"]}  # fmt: skip
                cmp[norm] = per
            results[n]["vs_reference"] = cmp
        self._link_group_risk(results, ctx)

    @staticmethod
    def _link_group_risk(results: dict[str, Any], ctx: AuditContext) -> None:
        """Where the group_risk stage ran for a model: Spearman across groups of the median flip
        distance against the held-out GPR (are the brittle groups the privacy-exposed ones?)."""
        gr = ctx.results.get("group_risk") or {}
        for n, r in results.items():
            risk = gr.get(n)
            if "norms" not in r or not risk or "gpr" not in risk:
                continue
            link: dict[str, Any] = {}
            for norm, g in r["norms"].items():
                per = {}
                for view, groups in g["groups"].items():
                    gp = (risk["gpr"].get(view) or {}).get("pa_alooa_heldout") or {}
                    common = [k for k, v in groups.items() if not v["too_small"] and v["median"] is not None
                              and k in gp and not gp[k].get("too_small") and gp[k].get("gpr") is not None]  # fmt: skip
                    rho = None
                    if len(common) >= 3:
                        a = [groups[k]["median"] for k in common]
                        b = [gp[k]["gpr"] for k in common]
                        rho = float(stats.spearmanr(a, b)[0]) if len(set(a)) > 1 and len(set(b)) > 1 else None
                    per[view] = {"spearman": rho, "n_groups": len(common)}
                link[norm] = per
            r["vs_group_risk"] = link

    # ---- presenting
    @staticmethod
    def _finest(r: Mapping[str, Any]) -> str | None:
        g = next(iter(r["norms"].values()))["groups"]
        return max(g, key=lambda v: v.count("*")) if g else None

    def summary(self, results: Mapping[str, Any], model: str) -> dict[str, Any]:
        r = results.get(model)
        if r is None or "norms" not in r:
            return {}
        g = next(iter(r["norms"].values()))
        view = self._finest(r)
        disp = g["disparity"].get(view) if view else None
        return {"robust_median": g["overall"]["median"], "brittle_ratio": disp["ratio"] if disp else None,
                "distance_mia_auc": g["membership"]["auc"]}  # fmt: skip

    def report(self, results: Mapping[str, Any], model: str | None) -> list[Block]:
        r = results.get(model or "")
        if r is None:
            return []
        if "skipped" in r:
            return [Text(f"Robustness skipped: {r['skipped']}.", "warn")]
        sp = r["space"]
        blocks: list[Block] = [Text(
            f"{r['records']} records attacked ({r['members']} members, {r['nonmembers']} non-members) "
            f"with {r['method']}; changeable: {', '.join(sp['numeric']) or 'no numeric feature'}"
            + (f"; categories of {', '.join(sp['categorical'])}" if sp["categorical"] else "")
            + f"; fixed: {', '.join(sp['fixed'])}. Distances in standardised units, on correctly "
            "classified non-members.", "note",
        )]  # fmt: skip
        for norm, g in r["norms"].items():
            rows = []
            for view, disp in g["disparity"].items():
                sc = g["size_correlation"].get(view, {})
                vs = r.get("vs_reference", {}).get(norm, {}).get(view, {})
                vg = r.get("vs_group_risk", {}).get(norm, {}).get(view, {})
                if disp is None:
                    rows.append([view, "", "", None, None, sc.get("spearman"), vs.get("spearman"),
                                 vg.get("spearman")])  # fmt: skip
                    continue
                rows.append([
                    view, disp["worst"], disp["best"],
                    Estimate(disp["ratio"], *disp["ratio_ci"]),
                    Estimate(disp["difference"], *disp["difference_ci"]),
                    sc.get("spearman"), vs.get("spearman"), vg.get("spearman"),
                ])  # fmt: skip
            conf = round(100 * g["confidence"])
            blocks.append(Table(
                ["view", "most brittle", "least brittle", f"ratio of medians [{conf}% CI]",
                 "difference", "size vs median (Spearman)", "ranking vs reference (Spearman)",
                 "median vs GPR (Spearman)"],
                rows, title=f"Robustness disparity ({norm.upper()}, {model})", left=3,
            ))  # fmt: skip
            for view, groups in g["groups"].items():
                cats = list(groups)
                blocks.append(Bars(
                    f"Median flip distance per group of {view} ({norm.upper()}, {model})", cats,
                    [Series("median", [groups[c]["median"] for c in cats],
                            low=[(groups[c].get("median_ci") or [None])[0] for c in cats],
                            high=[(groups[c].get("median_ci") or [None, None])[1] for c in cats],
                            counts=[groups[c]["n_correct"] for c in cats],
                            muted=[groups[c]["too_small"] for c in cats])],
                    y_label="distance", lines=[RefLine(g["overall"]["median"] or 0.0, "all records")],
                ))  # fmt: skip
            mem = g["membership"]
            if mem.get("auc") is not None:
                view = self._finest(r) or ""
                bg = mem.get("by_group", {}).get(view, {})
                cats = list(bg)
                blocks.append(Bars(
                    f"Boundary distance as a membership score: AUC per group of {view} ({norm.upper()})",
                    cats, [Series("AUC", [bg[c]["auc"] for c in cats],
                                  low=[(bg[c]["ci"].get("auc") or [None])[0] for c in cats],
                                  high=[(bg[c]["ci"].get("auc") or [None, None])[1] for c in cats])],
                    y_label="AUC", lines=[RefLine(0.5, "chance")],
                    note=f"overall AUC {mem['auc']:.3f} (above 0.5: members sit farther from the "
                    "boundary than non-members, a label-only membership signal)",
                ))  # fmt: skip
        oc = r.get("one_change")
        if oc and oc.get("features"):
            blocks.append(Text(
                f"One change of a categorical feature ({', '.join(oc['features'])}) flips "
                f"{100 * (oc['share'] or 0):.1f}% of correctly classified non-members.", "note",
            ))  # fmt: skip
        blocks += [Text(n, "note") for n in r.get("notes", [])]
        return blocks
