"""Stage: FD-MIA, an attacker holding both a biased and a fairness-enhanced model (Tian et al. 2023).

For each (biased, fair) pair of audited models, a shadow pair is trained with the same two
recipes and the same seed on ``|members|`` population rows, evaluated against as many others;
:func:`fairleak.attacks.fd_mia` learns from it and attacks the target pair, next to single-model
baselines on the same splits.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np
from pydantic import Field

from fairleak.attacks import FDMIAResult, fd_mia, shadow_pair_split
from fairleak.audit.blocks import Block, Estimate, Histogram, Table, Text
from fairleak.audit.stages.base import (
    AuditContext,
    Column,
    Stage,
    StageConfig,
    StageOutput,
    check_model_names,
    register_stage,
)

__all__ = ["FDMIASection", "FDMIAStage", "attack_pair"]


class FDMIASection(StageConfig):
    pairs: list[tuple[str, str]] | None = Field(
        None, description="(biased model, fair model) names; null: every non-private fair model "
        "against the first plain one",
    )  # fmt: skip
    n_bootstrap: int = Field(200, ge=0)


def attack_pair(ctx: AuditContext, biased: str, fair: str, n_bootstrap: int) -> FDMIAResult:
    """FD-MIA on the audited pair (``biased``, ``fair``), with its shadow pair from the bank."""
    d = ctx.data
    sh_in, sh_out = (np.sort(r) for r in shadow_pair_split(
        d.population, int(d.is_member.sum()), ctx.seed("fd_mia shadow split")))  # fmt: skip
    sh_pts = np.concatenate([sh_in, sh_out])
    sh_member = np.r_[np.ones(len(sh_in), bool), np.zeros(len(sh_out), bool)]
    shadow = []
    for name in (biased, fair):
        recipe = ctx.targets[name].attack_recipe
        assert recipe is not None
        ms = ctx.train(
            recipe, rows=sh_in, masks=np.ones((1, len(sh_in)), bool), seed=ctx.seed("fd_mia shadows"),
            eval_rows=sh_pts, task=f"FD-MIA shadow · {name}",
        )  # fmt: skip
        shadow.append(ms.outputs.model(0).proba)
    res = fd_mia(
        ctx.target_outputs(biased, d.audit).proba, ctx.target_outputs(fair, d.audit).proba,
        d.y[d.audit], d.is_member, shadow[0], shadow[1], d.y[sh_pts], sh_member,
        groups=d.sensitive(d.audit), n_bootstrap=n_bootstrap,
        random_state=ctx.seed("fd_mia bootstrap", biased, fair),
    )  # fmt: skip
    fair_recipe = ctx.targets[fair].recipe
    fairness = getattr(fair_recipe, "fairness", None)
    res.fairness_weight = None if fairness is None else fairness.weight
    return res


@register_stage
class FDMIAStage(Stage):
    name = "fd_mia"
    title = "FD-MIA: discrepancy between a biased and a fair model"
    scope = "audit"
    order = 30
    Config = FDMIASection
    columns = (Column("fd_mia_auc", "FD-MIA AUC", help="learned FD-MIA against this fair model"),)
    glossary: ClassVar[dict[str, str]] = {
        "FD-MIA": "fairness-discrepancy membership inference: an attacker who queries both the "
        "original and the fairness-enhanced model scores membership from their disagreement",
    }

    schema: ClassVar[dict[str, Any] | None] = {
        "type": "object",
        "required": ["pairs", "notes"],
        "properties": {"pairs": {"type": "array", "items": {
            "type": "object",
            "required": ["biased", "fair", "fairness_weight", "attacks", "discrepancy_histogram"],
            "properties": {"attacks": {"type": "object", "additionalProperties": {"$ref": "#/$defs/attack"}}},
        }}},
    }  # fmt: skip

    @classmethod
    def check_config(cls, cfg: FDMIASection, audit: Any) -> None:
        check_model_names([n for pair in cfg.pairs or [] for n in pair], audit, "fd_mia.pairs")

    @staticmethod
    def pairs(cfg: FDMIASection, audit: Any) -> list[tuple[str, str]]:
        if not cfg.enabled:
            return []
        if cfg.pairs is not None:
            return [tuple(p) for p in cfg.pairs]  # type: ignore[misc]
        own = [m for m in audit.models if m.kind == "fairleak"]
        plain = [m.name for m in own if m.fairness is None and m.dp is None]
        fair = [m.name for m in own if m.fairness is not None and m.dp is None]
        return [(plain[0], f) for f in fair] if plain else []

    def run(self, ctx: AuditContext, cfg: FDMIASection) -> StageOutput:
        out, notes = [], []
        for biased, fair in self.pairs(cfg, ctx.config):
            missing = [n for n in (biased, fair) if ctx.targets[n].attack_recipe is None]
            if missing:
                notes.append(f"FD-MIA ({biased}, {fair}) skipped: no training recipe for {missing}.")
                continue
            res = attack_pair(ctx, biased, fair, cfg.n_bootstrap)
            out.append({"biased": biased, "fair": fair, **res.to_dict()})
        return StageOutput({"pairs": out, "notes": notes}, notes=notes)

    def summary(self, results: Mapping[str, Any], model: str) -> dict[str, Any]:
        aucs = [p["attacks"]["fd_mia_learned"]["auc"] for p in results.get("pairs", []) if p["fair"] == model]
        return {"fd_mia_auc": max(aucs)} if aucs else {}

    def report(self, results: Mapping[str, Any], model: str | None) -> list[Block]:
        if model is not None:
            return []
        blocks: list[Block] = [Text(n, "warn") for n in results.get("notes", [])]
        for pair in results.get("pairs", []):
            h = pair["discrepancy_histogram"]
            blocks.append(Histogram(
                f"|p_b - p_f| for {pair['biased']} vs {pair['fair']} (fairness weight {pair['fairness_weight']})",
                h["edges"], [("members", h["members"]), ("non-members", h["nonmembers"])],
                x_label="|p_b(y|x) - p_f(y|x)|",
            ))  # fmt: skip
            rows = []
            for a, v in pair["attacks"].items():
                ci = v.get("ci", {})
                rows.append([a, Estimate(v["auc"], *(ci.get("auc") or (None, None))),
                             Estimate(v["tpr_at_1%_fpr"], *(ci.get("tpr_at_1%_fpr") or (None, None))),
                             Estimate(v["advantage"], *(ci.get("advantage") or (None, None))),
                             v.get("n_members"), v.get("n_nonmembers")])  # fmt: skip
            blocks.append(Table(["attack", "AUC [95% CI]", "TPR@1%FPR [95% CI]", "advantage [95% CI]",
                                 "members", "non-members"], rows))  # fmt: skip
        return blocks
