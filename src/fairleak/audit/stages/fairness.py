"""Stage: fairness of each audited model on the non-members (rows it never trained on)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from pydantic import Field

from fairleak.audit.blocks import Block, Estimate, Table, Text
from fairleak.audit.stages.base import (
    AuditContext,
    Column,
    Stage,
    StageConfig,
    StageOutput,
    register_stage,
)
from fairleak.fairness import GAPS, fairness_report

__all__ = ["FairnessStage"]


class FairnessSection(StageConfig):
    min_group_size: int = Field(30, ge=1, description="groups below this are left out of gaps")
    n_bootstrap: int = Field(500, ge=0)
    confidence: float = Field(0.95, gt=0, lt=1)


@register_stage
class FairnessStage(Stage):
    name = "fairness"
    title = "Fairness on non-members"
    order = 10
    Config = FairnessSection
    columns = (
        Column("test_accuracy", "test acc"),
        Column("demographic_parity_difference", "DP gap"),
        Column("equalized_odds_difference", "EO gap"),
    )
    glossary: ClassVar[dict[str, str]] = {
        "DP gap": "demographic parity difference: the largest minus the smallest selection rate across groups",
        "EO gap": "equalized odds difference: the larger of the TPR gap and the FPR gap across groups",
    }

    @classmethod
    def json_schema(cls) -> dict[str, Any]:
        return {
            "type": "object",
            "required": ["gaps", "groups", "too_small", "min_group_size", "accuracy", "attribute"],
            "properties": {
                "gaps": {"type": "object", "additionalProperties": {
                    "type": "object", "required": list(GAPS), "additionalProperties": {"$ref": "#/$defs/gap"}}},
                "accuracy": {"type": "object", "required": ["train", "test", "test_by_group"]},
            },
        }  # fmt: skip

    def run_model(self, ctx: AuditContext, cfg: FairnessSection, target: Any) -> StageOutput:
        d = ctx.data
        non, mem = d.nonmembers, d.members
        p_test = ctx.target_outputs(target.name, non).proba
        y_pred = (p_test[:, 1] > 0.5).astype(int)
        fr = fairness_report(
            d.y[non], y_pred, sensitive_features=d.sensitive(non), y_score=p_test[:, 1],
            min_group_size=cfg.min_group_size, n_bootstrap=cfg.n_bootstrap,
            confidence=cfg.confidence, random_state=ctx.seed("fairness bootstrap", target.name),
        )  # fmt: skip
        p_train = ctx.target_outputs(target.name, mem).proba
        by_group: dict[str, dict[str, Any]] = {}
        for row in fr.table.to_dict(orient="records"):
            by_group.setdefault(row["attribute"], {})[row["group"]] = {
                "n": row["count"], "accuracy": row["accuracy"], "too_small": row["too_small"],
            }  # fmt: skip
        result = {
            **fr.to_dict(),
            "attribute": d.ds.protected[0],
            "accuracy": {
                "train": float(((p_train[:, 1] > 0.5) == d.y[mem]).mean()),
                "test": float((y_pred == d.y[non]).mean()),
                "test_by_group": by_group,
            },
        }
        table = fr.table.assign(model=target.name)
        return StageOutput(result, {"per_group_fairness": [table]})

    def summary(self, results: Mapping[str, Any], model: str) -> dict[str, Any]:
        r = results.get(model)
        if r is None:
            return {}
        gaps = r["gaps"].get(r["attribute"], {})
        return {
            "test_accuracy": r["accuracy"]["test"],
            "demographic_parity_difference": gaps.get("demographic_parity_difference", {}).get("value"),
            "equalized_odds_difference": gaps.get("equalized_odds_difference", {}).get("value"),
        }

    def report(self, results: Mapping[str, Any], model: str | None) -> list[Block]:
        r = results.get(model or "")
        if r is None:
            return []
        acc = r["accuracy"]
        blocks: list[Block] = [
            Text(f"Accuracy: train {acc['train']:.3f}, test {acc['test']:.3f}.", "note")
        ]
        rows = []
        for attr, gaps in r["gaps"].items():
            for gname, g in gaps.items():
                rows.append([attr, gname, Estimate(g["value"], g["ci_low"], g["ci_high"]), g["note"] or ""])
        conf = round(100 * r["confidence"])
        blocks.append(Table(["attribute", "gap", f"value [{conf}% CI]", "note"], rows, left=2))
        cols = ["selection_rate", "tpr", "fpr", "precision", "accuracy", "ece"]
        rows = [
            [g["attribute"], g["group"], g["count"], *[g[c] for c in cols], "too small" if g["too_small"] else ""]
            for g in r["groups"]
        ]
        blocks.append(Table(["attribute", "group", "n", "selection", "TPR", "FPR", "precision",
                             "accuracy", "ECE", ""], rows, left=2))  # fmt: skip
        return blocks
