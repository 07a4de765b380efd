"""Stage: group privacy risk (IPR, GPR, GPRP) from the PA-ALOOA game, with PA-GA and PA-GBA.

R models in complementary pairs of random halves of the audit set (or of an audited subset, the
m-audited-records variant), trained with the model's recipe through the model bank; every record
is IN for R/2 of them. Figures and their null levels: ``fairleak.attacks.group_risk``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np
import pandas as pd
from pydantic import Field, field_validator

from fairleak.attacks import GroupRiskResult, group_risk_from_scores, loss_score, pa_alooa_masks
from fairleak.audit.blocks import Bars, Block, RefLine, Series, Text
from fairleak.audit.recipes import FairleakRecipe, Recipe
from fairleak.audit.stages.base import (
    AuditContext,
    Column,
    Stage,
    StageConfig,
    StageOutput,
    check_model_names,
    register_stage,
)
from fairleak.data import sorted_groups

__all__ = ["GroupRiskSection", "GroupRiskStage", "play_pa_alooa"]


class GroupRiskSection(StageConfig):
    n_models: int = Field(32, ge=4, description="R of the PA-ALOOA game (400 in the paper), even")
    models: list[str] | None = Field(
        None, description="models whose recipe plays the game; null: the first plain model and "
        "every DP model at the largest epsilon",
    )  # fmt: skip
    max_records: int | None = Field(
        8000, ge=10, description="audit a random subset of this size (m-audited records); null: all"
    )
    min_group_size: int = Field(
        30, ge=1, description="groups with fewer audited records are marked too small, not in GPRP"
    )

    @field_validator("n_models")
    @classmethod
    def _even(cls, v: int) -> int:
        if v % 2:
            raise ValueError("must be even (models come in complementary pairs)")
        return v


def play_pa_alooa(
    ctx: AuditContext, recipe: Recipe, rows: np.ndarray, cfg: GroupRiskSection, *, task: str,
    null: bool = True, subset: np.ndarray | None = None,
) -> GroupRiskResult:  # fmt: skip
    """Play the game on data ``rows`` with ``recipe`` and compute every figure. ``subset``
    (positions into ``rows``) audits only those records; otherwise ``cfg.max_records`` random ones."""
    d = ctx.data
    if subset is None and cfg.max_records is not None and cfg.max_records < len(rows):
        rng = np.random.default_rng(ctx.seed("pa_alooa subset"))
        subset = np.sort(rng.choice(len(rows), cfg.max_records, replace=False))
    masks = pa_alooa_masks(len(rows), cfg.n_models, seed=ctx.seed("pa_alooa masks"), audit_subset=subset)
    audited = np.arange(len(rows)) if subset is None else subset
    ms = ctx.train(recipe, rows=rows, masks=masks, seed=ctx.seed("pa_alooa"),
                   eval_rows=rows[audited], task=task)  # fmt: skip
    y = d.y[rows][audited]
    # -loss per model and record (from logits when known: exact even where p_y rounds to 1)
    out = ms.outputs
    if out.logits is not None:
        z = out.logits
        zy = np.where(y[None, :] == 1, z[..., 1], z[..., 0])
        scores = zy - np.logaddexp(z[..., 0], z[..., 1])
    else:
        scores = loss_score(out.proba, y)
    sens = d.sensitive(rows[audited])
    res = group_risk_from_scores(
        scores, ms.trained_on, sens, min_group_size=cfg.min_group_size,
        null_seed=ctx.seed("pa_alooa null") if null else None,
    )  # fmt: skip
    res.audited = audited
    eps = ms.privacy.get("epsilon")
    res.epsilon = None if not eps else float(max(eps))
    # Utility of the game's models: accuracy on the records each model did not train on.
    outside = ~ms.trained_on
    correct = (out.proba[..., 1] > 0.5) == (y == 1)[None, :]
    res.accuracy_out = float((correct & outside).sum() / max(outside.sum(), 1))
    for attr in sens.columns:
        labels = sens[attr].to_numpy()
        res.accuracy_by_group[attr] = {
            str(g): float((correct & outside & (labels == g)).sum() / max((outside & (labels == g)).sum(), 1))
            for g in sorted_groups(set(labels.tolist()))
        }
    return res


@register_stage
class GroupRiskStage(Stage):
    name = "group_risk"
    title = "Group privacy risk (PA-ALOOA)"
    order = 40
    Config = GroupRiskSection
    columns = (Column("gprp", "GPRP", help="held-out PA-ALOOA, first protected attribute"),)
    glossary: ClassVar[dict[str, str]] = {
        "IPR": "individual privacy risk: how often an attacker with the record's best threshold "
        "guesses its membership right across the game's models, rescaled to [-1, 1]",
        "GPR": "group privacy risk: the mean IPR of a group's records",
        "GPRP": "group privacy risk parity gap: largest minus smallest GPR across groups",
    }

    schema: ClassVar[dict[str, Any] | None] = {
        "oneOf": [
            {"type": "object", "required": ["skipped"]},
            {"type": "object", "required": ["n_models", "gpr", "gprp", "mean_ipr", "attribute"],
             "properties": {"gprp": {"type": "object", "additionalProperties": {
                 "type": "object", "additionalProperties": {"$ref": "#/$defs/num"}}}}},
        ]
    }  # fmt: skip

    @classmethod
    def check_config(cls, cfg: GroupRiskSection, audit: Any) -> None:
        check_model_names(cfg.models or [], audit, "group_risk.models")

    @staticmethod
    def chosen(cfg: GroupRiskSection, targets: Mapping[str, Any]) -> list[str]:
        """Models whose recipe plays the game: explicit, or the first model without a fairness
        penalty or DP, and the DP models at the largest epsilon."""
        if cfg.models is not None:
            return list(cfg.models)
        recipes = {n: t.recipe for n, t in targets.items()}
        plain = [n for n, r in recipes.items()
                 if not isinstance(r, FairleakRecipe) or (r.fairness is None and r.dp is None)][:1]  # fmt: skip
        dp = {n: r.dp.target_epsilon or 0.0 for n, r in recipes.items()
              if isinstance(r, FairleakRecipe) and r.dp is not None and r.fairness is None}  # fmt: skip
        if dp:
            top = max(dp.values())
            plain += [n for n, e in dp.items() if e == top]
        return plain

    def run_model(self, ctx: AuditContext, cfg: GroupRiskSection, target: Any) -> StageOutput | None:
        if target.name not in self.chosen(cfg, ctx.targets):
            return None
        recipe = target.attack_recipe
        if recipe is None:
            return StageOutput({"skipped": "no training recipe: the game needs models trained like it"})
        d = ctx.data
        res = play_pa_alooa(ctx, recipe, d.audit, cfg, task=f"PA-ALOOA · {target.name}")
        rows = d.ds.source_rows[d.audit] if len(d.ds.source_rows) else d.audit
        per_record = pd.DataFrame({"model": target.name, "row": rows[res.audited], "ipr": res.ipr,
                                   "ipr_heldout": res.ipr_heldout})  # fmt: skip
        out = res.to_dict()
        out["attribute"] = d.ds.protected[0]
        out["epsilon"] = res.epsilon
        out["accuracy_out"] = res.accuracy_out
        return StageOutput(out, {"per_record": [per_record]})

    def summary(self, results: Mapping[str, Any], model: str) -> dict[str, Any]:
        r = results.get(model)
        if r is None or "gprp" not in r:
            return {}
        return {"gprp": r["gprp"][r["attribute"]]["pa_alooa_heldout"]}

    def report(self, results: Mapping[str, Any], model: str | None) -> list[Block]:
        r = results.get(model or "")
        if r is None:
            return []
        if "skipped" in r:
            return [Text(f"Group privacy risk skipped: {r['skipped']}.", "warn")]
        blocks: list[Block] = []
        null = r.get("null_gpr") or {}
        for attr, methods in r["gpr"].items():
            first = next(iter(methods.values()))
            cats = list(first)
            series = []
            for method, groups in methods.items():
                series.append(Series(
                    method, [groups[g]["gpr"] for g in cats], counts=[groups[g]["n"] for g in cats],
                    muted=[groups[g]["too_small"] for g in cats],
                ))  # fmt: skip
                nl = null.get(attr, {}).get(method)
                if nl:  # each figure's own null level, drawn beside it
                    series.append(Series(
                        f"{method}: null level", [(nl.get(g) or {}).get("gpr") for g in cats],
                        muted=[True] * len(cats),
                    ))  # fmt: skip
            lines = [RefLine(0.0, "no risk")]
            gprp = ", ".join(f"{k} {v:.3f}" for k, v in r["gprp"][attr].items() if v is not None)
            labels = [f"{g} (n={first[g]['n']})" for g in cats]
            blocks.append(Bars(f"GPR per group of {attr} ({model})", labels, series, y_label="GPR",
                               lines=lines, note=f"GPRP: {gprp}. Grey bars beside each method: its null "
                               "level (models that never saw the records); risk is what stands above it."))  # fmt: skip
        blocks += [Text(n, "note") for n in r.get("notes", [])]
        return blocks
