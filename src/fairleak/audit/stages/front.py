"""Stage: the Pareto front of the audited models over error, unfairness and leakage, and the
model chosen on it.

Every audited model is a candidate (a ``fairleak sweep`` audits a grid of them). Objectives, all
minimised and measured on rows the models never trained on: the error (or balanced error) on the
non-members; the worst value over attributes and intersections of one fairness gap; the
strongest configured attack's AUC - 0.5, 0 when at or below chance (or its TPR at 1% FPR). The accountant's epsilon is never
an axis (infinite for non-private models) but can be constrained (``epsilon <= 8``). A model is
chosen by constraints (lowest error among those meeting them), by weights (augmented Tchebycheff),
or as the knee of the front. Each candidate's probability of being on the front comes from a
paired bootstrap: the same resamples of the evaluation rows (non-members stratified by group x
label, members likewise) recompute every candidate's objectives and the front.
Spec: ALGORITHMS-2.md section 2.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any, ClassVar, Literal

import numpy as np
from pydantic import Field, ValidationInfo, field_validator, model_validator

from fairleak.attacks import resampled_attack_metrics
from fairleak.audit.blocks import Block, Estimate, Front, Table, Text
from fairleak.audit.stages.base import (
    AuditContext,
    Column,
    Stage,
    StageConfig,
    StageOutput,
    register_stage,
)
from fairleak.data import group_views
from fairleak.errors import ConfigError
from fairleak.fairness import GAPS, resampled_gaps
from fairleak.selection import (
    bootstrap_indices,
    constrained_choice,
    front_probability,
    hypervolume,
    hypervolume_contributions,
    knee_point,
    non_dominated,
    pareto_ranks,
    parse_constraints,
    weighted_choice,
)

__all__ = ["FrontSection", "FrontStage", "candidate_columns"]

#: Short names of the worst gaps, for constraints ("dp_gap <= 0.05").
GAP_ALIASES = {
    "dp_gap": "demographic_parity_difference",
    "eo_gap": "equalized_odds_difference",
    "eop_gap": "equal_opportunity_difference",
    "dp_ratio": "demographic_parity_ratio",
    "accuracy_gap": "accuracy_difference",
}
_FIXED = {
    "accuracy": "accuracy on the non-members",
    "error": "1 - accuracy",
    "balanced_error": "1 - (TPR + TNR) / 2",
    "epsilon": "the accountant's epsilon (inf: not private)",
    "attack_auc": "the strongest attack's AUC",
    "attack_tpr_at_1pct_fpr": "the strongest attack's TPR at 1% FPR",
    "attack_advantage": "the strongest attack's advantage (max TPR - FPR)",
}


def candidate_columns() -> list[str]:
    """The names constraints may use: fixed columns, each registered gap (its worst value over
    attributes and intersections; ``name[view]`` for one view) and the short gap names."""
    return [*_FIXED, *GAPS, *GAP_ALIASES]


def _check_name(name: str) -> None:
    base = re.sub(r"\[[^\]]*\]$", "", name)
    if base not in candidate_columns() or (base != name and base not in GAPS and base not in GAP_ALIASES):
        raise ValueError(
            f"unknown column '{name}' in the constraints; use one of {candidate_columns()} "
            "(a gap of one attribute or intersection as NAME[view], e.g. dp_gap[sex])"
        )


class FrontSection(StageConfig):
    enabled: bool = False
    error: Literal["error", "balanced_error"] = Field("error", description="first objective")
    gap: str = Field("equalized_odds_difference", description="second objective: a registered gap, worst over views")
    privacy: Literal["auc", "tpr_at_1pct_fpr", "none"] = Field(
        "auc", description="third objective: the strongest attack's AUC - 0.5, its TPR at 1% FPR, or none"
    )
    constraints: str | None = Field(None, description="e.g. 'dp_gap <= 0.05, epsilon <= 8'")
    weights: list[float] | None = Field(None, description="one per objective: augmented Tchebycheff choice")
    n_bootstrap: int = Field(200, ge=0, description="resamples for each candidate's P(on the front)")
    robust: float = Field(0.8, gt=0, le=1, description="P(front) at which a point is 'robustly on the front'")

    @field_validator("gap")
    @classmethod
    def _gap(cls, v: str) -> str:
        v = GAP_ALIASES.get(v, v)
        if v not in GAPS or "ece" in GAPS[v].rates:
            raise ValueError(f"unknown gap '{v}'; choose from {[g for g in GAPS if 'ece' not in GAPS[g].rates]}")
        return v

    @field_validator("constraints")
    @classmethod
    def _constraints(cls, v: str | None) -> str | None:
        if v is None or not v.strip():
            return None
        try:
            cons = parse_constraints(v)
        except Exception as exc:  # ParameterError: its message says how to write one
            raise ValueError(str(exc)) from None
        for c in cons:
            _check_name(c.name)
        return v

    @field_validator("weights")
    @classmethod
    def _weights(cls, w: list[float] | None, info: ValidationInfo) -> list[float] | None:
        if w is None:
            return None
        privacy = info.data.get("privacy", "auc")
        m = 2 if privacy == "none" else 3
        if len(w) != m or any(not math.isfinite(x) or x < 0 for x in w) or sum(w) <= 0:
            raise ValueError(
                f"give {m} non-negative numbers, one per objective (error, gap"
                f"{'' if m == 2 else ', leakage'}), with a positive sum; got {w}"
            )
        if info.data.get("constraints") is not None:
            raise ValueError("give either constraints or weights, not both")
        return w

    @model_validator(mode="after")
    def _not_both(self) -> FrontSection:
        if self.weights is not None and self.constraints is not None:
            raise ValueError("front: give either constraints or weights, not both")
        return self

    @property
    def objective_keys(self) -> list[str]:
        keys = [self.error, self.gap]
        if self.privacy != "none":
            keys.append("attack_auc" if self.privacy == "auc" else "attack_tpr_at_1pct_fpr")
        return keys


def _family(target: Any) -> tuple[str, dict[str, Any]]:
    """A candidate's family (for the plot's symbols) and its distinguishing settings."""
    key = target.recipe.key() if target.recipe is not None else None
    if key is None:
        return target.kind, {}
    if key["kind"] == "fairleak":
        fair, dp = key.get("fairness"), key.get("dp")
        params = {"fairness_weight": 0.0 if fair is None else fair["weight"],
                  "penalty": None if fair is None else fair["penalty"],
                  "target_epsilon": None if dp is None else dp.get("target_epsilon")}  # fmt: skip
        return ("mlp_dp" if dp is not None else "mlp"), params
    cls = key.get("class", "")
    if cls.endswith("FairBoostClassifier"):
        p = target.recipe.estimator.get_params()
        return "fairboost", {k: p.get(k) for k in ("constraint", "selection", "n_estimators", "tradeoff_c")}
    return cls.rsplit(".", 1)[-1] or target.kind, {}


def _worst(values: list[float | None], gap: str) -> float | None:
    v = [x for x in values if x is not None and math.isfinite(x)]
    if not v:
        return None
    return min(v) if GAPS[gap].ratio else max(v)


def _as_objective(gap: str, value: float) -> float:
    """Gaps are minimised; a ratio (1 is fair) enters as 1 - ratio."""
    return 1.0 - value if GAPS[gap].ratio else value


@register_stage
class FrontStage(Stage):
    name = "front"
    title = "Choosing a model: the accuracy-fairness-privacy front"
    scope = "audit"
    order = 90
    Config = FrontSection
    columns = (
        Column("front_rank", "front rank", 0, "0: on the Pareto front (not dominated by another model)"),
        Column("p_front", "P(front)", 2, "share of bootstrap resamples in which the model is on the front"),
    )
    glossary: ClassVar[dict[str, str]] = {
        "Pareto front": "the models no other model beats on every objective at once",
        "P(front)": "how often a model stays on the front when the evaluation rows are resampled",
        "hypervolume": "the objective space the front dominates up to a reference point (larger is better)",
        "knee": "the front's point of best balance: farthest beyond the plane through its extremes",
    }
    schema: ClassVar[dict[str, Any] | None] = {
        "type": "object",
        "required": ["objectives", "candidates", "front", "selected", "selection_rule", "why",
                     "hypervolume", "reference_point", "knee", "n_bootstrap", "notes"],
        "properties": {
            "objectives": {"type": "array", "items": {"type": "string"}},
            "candidates": {"type": "array", "items": {
                "type": "object",
                "required": ["name", "family", "params", "accuracy", "error", "balanced_error",
                             "epsilon", "attack", "gaps", "worst_gaps", "constant", "objectives",
                             "rank", "on_front", "p_front", "feasible"],
                "properties": {"p_front": {"type": ["number", "null"], "minimum": 0, "maximum": 1},
                               "on_front": {"type": "boolean"}},
            }},
            "front": {"type": "array", "items": {"type": "string"}},
            "selected": {"type": ["string", "null"]},
        },
    }  # fmt: skip

    @classmethod
    def check_data(cls, cfg: FrontSection, data: Any) -> None:
        """A constraint on one view (``dp_gap[sex]``) must name an attribute or intersection
        of this data: checked before anything trains."""
        if cfg.constraints is None:
            return
        views = list(group_views(data.ds.sensitive))
        for c in parse_constraints(cfg.constraints):
            m = re.search(r"\[([^\]]*)\]$", c.name)
            if m is not None and m.group(1) not in views:
                raise ConfigError(
                    f"The constraint '{c}' names the view '{m.group(1)}', which this data does not "
                    f"have; its attributes and intersections are {views}."
                )

    # ------------------------------------------------------------------ running
    def run(self, ctx: AuditContext, cfg: FrontSection) -> StageOutput:
        d = ctx.data
        notes: list[str] = []
        fair = ctx.results.get("fairness")
        if fair is None:
            return StageOutput({}, notes=["front: needs the fairness stage; it was disabled."])
        attacks = ctx.results.get("attacks") if cfg.privacy != "none" else None
        keys = cfg.objective_keys
        if cfg.privacy != "none" and not attacks:
            notes.append("front: no attack results (attacks stage disabled): privacy is not an objective.")
            keys = keys[:2]
        non = d.nonmembers
        y = d.y[non]
        names = [n for n in ctx.targets if n in fair]
        rows: list[dict[str, Any]] = []
        yhat: dict[str, np.ndarray] = {}
        for name in names:
            t = ctx.targets[name]
            p1 = ctx.target_outputs(name, non).proba[:, 1]
            yh = (p1 > 0.5).astype(int)
            yhat[name] = yh
            tpr = float(yh[y == 1].mean()) if (y == 1).any() else 0.0
            tnr = float(1 - yh[y == 0].mean()) if (y == 0).any() else 0.0
            fr = fair[name]
            gaps = {v: {g: {k: r.get(k) for k in ("value", "ci_low", "ci_high")} for g, r in gs.items()}
                    for v, gs in fr["gaps"].items()}  # fmt: skip
            worst = {g: _worst([gaps[v][g]["value"] for v in gaps if g in gaps[v]], g) for g in GAPS}
            eps = t.privacy.get("epsilon")
            row: dict[str, Any] = {
                "name": name, **dict(zip(("family", "params"), _family(t), strict=True)),
                "accuracy": fr["accuracy"]["test"], "error": 1.0 - fr["accuracy"]["test"],
                "balanced_error": 1.0 - (tpr + tnr) / 2,
                "epsilon": None if not eps else float(eps[0]),
                "attack": None, "gaps": gaps, "worst_gaps": worst,
                "constant": bool(yh.min() == yh.max()),
            }  # fmt: skip
            if attacks and name in attacks and attacks[name]["strongest"] is not None:
                a = attacks[name]["strongest"]
                r = attacks[name]["results"][a]
                ci = r.get("ci", {})
                row["attack"] = {"name": a, "auc": r["auc"], "auc_ci": ci.get("auc"),
                                 "tpr_at_1pct_fpr": r["tpr_at_1%_fpr"], "tpr_ci": ci.get("tpr_at_1%_fpr"),
                                 "advantage": r["advantage"]}  # fmt: skip
            rows.append(row)
        values = self._columns(rows)
        F = np.column_stack([self._objective(values, k, cfg) for k in keys]) if rows else np.zeros((0, len(keys)))
        valid = np.isfinite(F).all(1)
        if (~valid).any():
            notes.append(
                "front: left out of the front (an objective is undefined): "
                + ", ".join(n for n, ok in zip(names, valid, strict=True) if not ok) + "."
            )
        idx = np.flatnonzero(valid)
        ranks = np.full(len(rows), -1)
        on_front = np.zeros(len(rows), bool)
        contrib = np.zeros(len(rows))
        ref = self._reference(keys, y, cfg)
        hv, knee = 0.0, None
        if len(idx):
            Fv = F[idx]
            ranks[idx] = pareto_ranks(Fv)
            on_front[idx] = non_dominated(Fv)
            hv = hypervolume(Fv, ref)
            contrib[idx] = hypervolume_contributions(Fv, ref)
            knee = int(idx[knee_point(Fv)])
        p_front = np.full(len(rows), np.nan)
        if cfg.n_bootstrap > 0 and len(idx):
            Fb = self._bootstrap(ctx, cfg, keys, [names[i] for i in idx], yhat, rows, idx)
            p_front[idx] = front_probability(Fb)
        # ---- the choice
        chosen, rule, why, feasible = self._choose(cfg, rows, values, F, idx, knee, keys, notes)
        for i, row in enumerate(rows):
            row.update(objectives=[None if not math.isfinite(v) else float(v) for v in F[i]],
                       rank=int(ranks[i]) if ranks[i] >= 0 else None, on_front=bool(on_front[i]),
                       p_front=None if np.isnan(p_front[i]) else float(p_front[i]),
                       hv_contribution=float(contrib[i]), feasible=bool(feasible[i]))  # fmt: skip
        constant = [r["name"] for r in rows if r["constant"]]
        if constant:
            notes.append(
                f"front: {', '.join(constant)} predict(s) one class for every non-member: every "
                "rate-difference gap is trivially 0 there (no classifier); constrain accuracy to exclude them."
            )
        if 0 < len(idx) <= 3:
            notes.append("front: three or fewer candidates: a few points with overlapping intervals are not a trade-off curve.")
        notes.append(
            "front: the choice is made on the same non-member rows its figures are measured on, so "
            "the chosen model's figures are optimistic; P(front) shows how stable the choice is. "
            "The leakage axis takes the strongest of several attacks per model, which is optimistic too."
        )
        results = {
            "objectives": keys,
            "candidates": rows,
            "front": [rows[i]["name"] for i in np.flatnonzero(on_front)],
            "selected": None if chosen is None else rows[chosen]["name"],
            "selection_rule": rule,
            "why": why,
            "hypervolume": hv,
            "reference_point": [float(v) for v in ref],
            "knee": None if knee is None else rows[knee]["name"],
            "n_bootstrap": cfg.n_bootstrap,
            "robust_threshold": cfg.robust,
            "constraints": cfg.constraints,
            "weights": cfg.weights,
            "notes": notes,
        }
        return StageOutput(results, notes=[])

    @staticmethod
    def _columns(rows: list[dict[str, Any]]) -> dict[str, np.ndarray]:
        """One number per candidate for every name a constraint may use (NaN: undefined)."""

        def col(f: Any) -> np.ndarray:
            return np.array([np.nan if (v := f(r)) is None else float(v) for r in rows], dtype=np.float64)

        out = {k: col(lambda r, k=k: r[k]) for k in ("accuracy", "error", "balanced_error")}
        out["epsilon"] = np.array([np.inf if r["epsilon"] is None else r["epsilon"] for r in rows], dtype=np.float64)
        for k, src in (("attack_auc", "auc"), ("attack_tpr_at_1pct_fpr", "tpr_at_1pct_fpr"),
                       ("attack_advantage", "advantage")):  # fmt: skip
            out[k] = col(lambda r, src=src: None if r["attack"] is None else r["attack"][src])
        for g in GAPS:
            out[g] = col(lambda r, g=g: r["worst_gaps"][g])
            for v in (rows[0]["gaps"] if rows else {}):
                out[f"{g}[{v}]"] = col(lambda r, g=g, v=v: r["gaps"].get(v, {}).get(g, {}).get("value"))
        for alias, g in GAP_ALIASES.items():
            for k in [c for c in list(out) if c == g or c.startswith(g + "[")]:
                out[alias + k[len(g):]] = out[k]
        return out

    @staticmethod
    def _objective(values: Mapping[str, np.ndarray], key: str, cfg: FrontSection) -> np.ndarray:
        v = values[key]
        if key == cfg.gap and GAPS[key].ratio:
            return 1.0 - v
        if key == "attack_auc":
            # the strongest attack below chance is noise around 0.5, not negative leakage
            return np.maximum(v - 0.5, 0.0)
        return v

    @staticmethod
    def _reference(keys: list[str], y: np.ndarray, cfg: FrontSection) -> np.ndarray:
        """Fixed reference point in raw units (comparable across runs): the constant majority
        predictor's error (0.5 for balanced error), a gap of 1, an attack at AUC 1 (0.5 above
        chance) or TPR 1."""
        ref = []
        for k in keys:
            if k == "error":
                ref.append(float(min(y.mean(), 1 - y.mean())) if len(y) else 0.5)
            elif k == "balanced_error":
                ref.append(0.5)
            elif k == "attack_auc":
                ref.append(0.5)
            else:
                ref.append(1.0)
        return np.array(ref)

    def _bootstrap(self, ctx, cfg, keys, names, yhat, rows, idx) -> np.ndarray:
        """Objectives [B, n_candidates, M] on paired resamples: non-members stratified by the
        intersection of the protected attributes x label (every candidate the same rows), members
        likewise for the attack; the strongest attack of each model as in the data."""
        d = ctx.data
        non, mem = d.nonmembers, d.members
        B = cfg.n_bootstrap
        seed = ctx.seed("front bootstrap")

        def strata(r: np.ndarray) -> np.ndarray:
            views = group_views(d.sensitive(r))
            inter = list(views.values())[-1]
            return np.char.add(np.asarray(inter, dtype=str), d.y[r].astype(str))

        draw_non = bootstrap_indices(len(non), B, seed=seed, strata=strata(non))
        c_non = np.stack([np.bincount(r, minlength=len(non)) for r in draw_non])
        y = d.y[non]
        sens = d.sensitive(non)
        out = np.zeros((B, len(names), len(keys)))
        c_audit = None
        if len(keys) == 3:
            draw_mem = bootstrap_indices(len(mem), B, seed=ctx.seed("front bootstrap", "members"),
                                         strata=strata(mem))  # fmt: skip
            c_mem = np.stack([np.bincount(r, minlength=len(mem)) for r in draw_mem])
            c_audit = np.concatenate([c_mem, c_non], 1).astype(np.int32)  # audit rows: members, non-members
            per_record = ctx.tables.get("per_record", [])
        for j, name in enumerate(names):
            row = rows[idx[j]]
            yh = yhat[name]
            wrong = (yh != y).astype(float)
            err = c_non @ wrong / len(y)
            tp = c_non @ ((yh == 1) & (y == 1)).astype(float)
            tn = c_non @ ((yh == 0) & (y == 0)).astype(float)
            npos = c_non @ (y == 1).astype(float)
            nneg = c_non @ (y == 0).astype(float)
            ber = 1 - 0.5 * (np.divide(tp, npos, out=np.zeros(B), where=npos > 0)
                             + np.divide(tn, nneg, out=np.zeros(B), where=nneg > 0))  # fmt: skip
            g = resampled_gaps(y, yh, sensitive_features=sens, counts=c_non, gaps=(cfg.gap,),
                               min_group_size=ctx.config.fairness.min_group_size)  # fmt: skip
            per_view = np.stack([v[cfg.gap] for v in g.values()], 1)  # [B, views]
            with np.errstate(all="ignore"):
                worst = np.nanmin(per_view, 1) if GAPS[cfg.gap].ratio else np.nanmax(per_view, 1)
            full = self._objective({cfg.gap: np.array([row["worst_gaps"][cfg.gap]])}, cfg.gap, cfg)[0]
            gap_obj = _as_objective(cfg.gap, worst)
            cols = [err if keys[0] == "error" else ber, np.where(np.isfinite(gap_obj), gap_obj, full)]
            if c_audit is not None:
                atk = row["attack"]["name"]
                frame = next(f for f in per_record if len(f) and f["model"].iat[0] == name and f["attack"].iat[0] == atk)
                m = resampled_attack_metrics(frame["score"].to_numpy(), frame["is_member"].to_numpy(), c_audit)
                cols.append(np.maximum(m["auc"] - 0.5, 0.0) if keys[2] == "attack_auc" else m["tpr_at_1%_fpr"])
            out[:, j, :] = np.column_stack(cols)
        return out

    @staticmethod
    def _choose(cfg, rows, values, F, idx, knee, keys, notes):
        n = len(rows)
        feasible = np.ones(n, bool)
        if not len(idx):
            return None, "none", "No candidate has every objective defined.", feasible
        if cfg.constraints is not None:
            cons = parse_constraints(cfg.constraints)
            for c in cons:
                if c.name not in values:
                    notes.append(f"front: the constraint column '{c.name}' does not exist in this audit "
                                 f"(its views are {sorted({k.split('[')[1][:-1] for k in values if '[' in k})}).")  # fmt: skip
                    return None, "none", f"Unknown constraint column '{c.name}'.", feasible
            sub = {k: v[idx] for k, v in values.items()}
            choice = constrained_choice(sub, cons, minimize=keys[0])
            for c in cons:
                feasible &= c.satisfied(values[c.name])
            chosen = int(idx[choice.index])
            if choice.feasible:
                why = (f"Lowest {keys[0].replace('_', ' ')} ({values[keys[0]][chosen]:.4f}) among the "
                       f"{choice.n_feasible} of {len(idx)} candidates that meet "
                       f"{', '.join(str(c) for c in cons)}.")  # fmt: skip
            else:
                why = (f"No candidate meets {', '.join(str(c) for c in cons)}; this one violates them "
                       f"least (normalised total violation {choice.violation:.3g}).")  # fmt: skip
            return chosen, choice.rule, why, feasible
        if cfg.weights is not None:
            chosen = int(idx[weighted_choice(F[idx], cfg.weights)])
            w = ", ".join(f"{k} {x:g}" for k, x in zip(keys, cfg.weights, strict=True))
            return chosen, f"augmented Tchebycheff, weights {w}", (
                f"On the front, the smallest weighted worst normalised objective (weights {w})."), feasible
        return knee, "knee", (
            "The knee of the front: in normalised objectives, the front point farthest beyond the "
            "plane through the front's extreme points (best balance; no constraints or weights given)."
        ), feasible

    # ------------------------------------------------------------------ presenting
    def summary(self, results: Mapping[str, Any], model: str) -> dict[str, Any]:
        for c in results.get("candidates", []):
            if c["name"] == model:
                return {"front_rank": c["rank"], "p_front": c["p_front"]}
        return {}

    def report(self, results: Mapping[str, Any], model: str | None) -> list[Block]:
        cands = results.get("candidates", [])
        if not cands:
            return [Text(n, "warn") for n in results.get("notes", [])]
        keys = results["objectives"]
        sel = results.get("selected")
        blocks: list[Block] = []
        if sel is not None:
            blocks.append(Text(f"Chosen: {sel} ({results['selection_rule']}). {results['why']}"))
        blocks.append(Text(
            f"{len(cands)} candidates, {len(results['front'])} on the front; hypervolume "
            f"{results['hypervolume']:.4g} (reference point {results['reference_point']}).", "note"))
        labels = {"error": "error", "balanced_error": "balanced error", "attack_auc": "attack AUC - 0.5 (0 at or below chance)",
                  "attack_tpr_at_1pct_fpr": "attack TPR at 1% FPR"}  # fmt: skip
        axes = [labels.get(k, f"worst {k}") for k in keys]
        names = [c["name"] for c in cands]
        hover = []
        for c in cands:
            eps = "not private" if c["epsilon"] is None else f"epsilon {c['epsilon']:.2f}"
            params = ", ".join(f"{k} {v}" for k, v in c["params"].items() if v is not None)
            hover.append(f"{c['family']} ({params}); {eps}; P(front) "
                         f"{'–' if c['p_front'] is None else format(c['p_front'], '.2f')}")  # fmt: skip
        blocks.append(Front(
            "The front: every candidate (filled: on the front; star: chosen)", names, axes,
            [c["objectives"] for c in cands], [c["family"] for c in cands],
            [c["on_front"] for c in cands], [c["p_front"] for c in cands],
            None if sel is None else names.index(sel), hover,
        ))  # fmt: skip
        gap = keys[1]
        rows = []
        for c in sorted(cands, key=lambda c: (c["rank"] is None, c["rank"] or 0, c["objectives"][0] or 1)):
            a = c["attack"] or {}
            worst_view = max(((v, g[gap]) for v, g in c["gaps"].items() if gap in g and g[gap]["value"] is not None),
                             key=lambda t: t[1]["value"], default=(None, None))  # fmt: skip
            wv = worst_view[1] or {}
            rows.append([
                ("★ " if c["name"] == sel else "") + c["name"], c["family"],
                Estimate(c["accuracy"]), Estimate(c["balanced_error"]),
                Estimate(wv.get("value"), wv.get("ci_low"), wv.get("ci_high")), worst_view[0] or "–",
                Estimate(a.get("auc"), *(a.get("auc_ci") or (None, None))),
                Estimate(a.get("tpr_at_1pct_fpr"), *(a.get("tpr_ci") or (None, None))),
                c["epsilon"], c["rank"], c["p_front"], "yes" if c["feasible"] else "",
            ])  # fmt: skip
        blocks.append(Table(
            ["candidate", "family", "accuracy", "balanced error", f"worst {gap} [95% CI]", "worst view",
             "attack AUC [95% CI]", "TPR@1%FPR", "epsilon", "rank", "P(front)", "meets constraints"],
            rows, left=2, title="Every candidate (front first)",
        ))  # fmt: skip
        blocks += [Text(n, "note") for n in results.get("notes", [])]
        return blocks
