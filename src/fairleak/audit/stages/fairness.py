"""Stage: fairness of each audited model on the non-members (rows it never trained on)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np
from pydantic import Field
from scipy.stats import norm

from fairleak.audit.blocks import Bars, Block, Estimate, Series, Table, Text
from fairleak.audit.stages.base import (
    AuditContext,
    Column,
    Stage,
    StageConfig,
    StageOutput,
    register_stage,
)
from fairleak.data import sorted_groups
from fairleak.fairness import GAPS, check_predictor, fairness_report

__all__ = ["FairnessStage"]


class FairnessSection(StageConfig):
    min_group_size: int = Field(30, ge=1, description="groups below this are left out of gaps")
    n_bootstrap: int = Field(500, ge=0)
    confidence: float = Field(0.95, gt=0, lt=1)
    constant_share: float = Field(
        0.01, ge=0, lt=0.5,
        description="a model giving the minority decision to fewer rows than this is a constant predictor",
    )
    majority_margin: float = Field(
        0.0, ge=0, lt=1, description="accuracy must beat the majority rate by more than this"
    )


def _wilson(k: int, n: int, confidence: float) -> list[float] | None:
    """Wilson score interval of a proportion k / n (scipy has no vectorised one for plain counts)."""
    if n == 0:
        return None
    z = float(norm.ppf(0.5 + confidence / 2))
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return [float(max(0.0, centre - half)), float(min(1.0, centre + half))]


def _rate_intervals(y: np.ndarray, yhat: np.ndarray, sensitive: Any, confidence: float) -> dict[str, Any]:
    """Per attribute (not intersections) and group: Wilson intervals of the selection rate and TPR."""
    out: dict[str, Any] = {}
    for attr in sensitive.columns:
        labels = sensitive[attr].to_numpy(dtype=str)
        out[attr] = {}
        for g in sorted_groups(set(labels.tolist())):
            m = labels == g
            pos = m & (y == 1)
            out[attr][g] = {
                "selection_rate": _wilson(int(yhat[m].sum()), int(m.sum()), confidence),
                "tpr": _wilson(int(yhat[pos].sum()), int(pos.sum()), confidence),
            }
    return out


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
        Column("predictor_warning", "warning", digits=0,
               help="a (nearly) constant predictor or one no better than the majority rate"),
    )
    glossary: ClassVar[dict[str, str]] = {
        "DP gap": "demographic parity difference: the largest minus the smallest selection rate across groups",
        "EO gap": "equalized odds difference: the larger of the TPR gap and the FPR gap across groups",
        "majority rate": "the accuracy of always predicting the more frequent label: a model must beat it to be useful",
        "constant predictor": "a model that gives (nearly) everyone the same decision: its fairness gaps are 0 "
        "but say nothing, so fairleak marks them not meaningful",
        "selection rate": "share of a group predicted positive",
        "TPR / FPR": "true positive rate (share of actual positives predicted positive) / false positive rate",
        "ECE": "expected calibration error: mean gap between predicted probability and observed rate",
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
        check = check_predictor(d.y[non], y_pred, constant_share=cfg.constant_share,
                                margin=cfg.majority_margin, positive_label=d.ds.positive)  # fmt: skip
        p_train = ctx.target_outputs(target.name, mem).proba
        by_group: dict[str, dict[str, Any]] = {}
        for row in fr.table.to_dict(orient="records"):
            by_group.setdefault(row["attribute"], {})[row["group"]] = {
                "n": row["count"], "accuracy": row["accuracy"], "too_small": row["too_small"],
            }  # fmt: skip
        fr_dict = fr.to_dict()
        if check.degenerate:
            for gaps in fr_dict["gaps"].values():
                for g in gaps.values():
                    g["note"] = check.gap_note + (f"; {g['note']}" if g["note"] else "")
        result = {
            **fr_dict,
            "rate_ci": _rate_intervals(d.y[non], y_pred, d.sensitive(non), cfg.confidence),
            "predictor": check.to_dict(),
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
        pred = r.get("predictor") or {}
        if pred.get("degenerate"):
            shown = "n/m (constant)" if pred.get("constant") else "n/m (<= majority)"
            return {"test_accuracy": r["accuracy"]["test"], "demographic_parity_difference": shown,
                    "equalized_odds_difference": shown,
                    "predictor_warning": "constant predictor" if pred.get("constant") else "no better than majority"}  # fmt: skip
        return {
            "test_accuracy": r["accuracy"]["test"],
            "demographic_parity_difference": gaps.get("demographic_parity_difference", {}).get("value"),
            "equalized_odds_difference": gaps.get("equalized_odds_difference", {}).get("value"),
            "predictor_warning": None,
        }

    def report(self, results: Mapping[str, Any], model: str | None) -> list[Block]:
        r = results.get(model or "")
        if r is None:
            return []
        acc = r["accuracy"]
        pred = r.get("predictor") or {}
        majority = f" (majority rate {pred['majority_rate']:.3f})" if pred else ""
        blocks: list[Block] = [
            Text(f"Accuracy: train {acc['train']:.3f}, test {acc['test']:.3f}{majority}.", "note")
        ]
        if pred.get("degenerate"):
            blocks.append(Text(
                f"Warning: {pred['reason']}. Its fairness gaps are {pred['gap_note']}: every group "
                "gets (nearly) the same decision, which says nothing about how it would treat them.", "warn",
            ))  # fmt: skip
        rows = []
        for attr, gaps in r["gaps"].items():
            for gname, g in gaps.items():
                shown = "not meaningful" if pred.get("degenerate") else Estimate(g["value"], g["ci_low"], g["ci_high"])
                rows.append([attr, gname, shown, g["note"] or ""])
        conf = round(100 * r["confidence"])
        blocks.append(Table(["attribute", "gap", f"value [{conf}% CI]", "note"], rows, left=2))
        cols = ["selection_rate", "tpr", "fpr", "precision", "accuracy", "ece"]
        rows = [
            [g["attribute"], g["group"], g["count"], *[g[c] for c in cols], "too small" if g["too_small"] else ""]
            for g in r["groups"]
        ]
        blocks.append(Table(["attribute", "group", "n", "selection", "TPR", "FPR", "precision",
                             "accuracy", "ECE", ""], rows, left=2))  # fmt: skip
        blocks += _rate_bars(r, model or "")
        return blocks


def _rate_bars(r: Mapping[str, Any], model: str) -> list[Block]:
    """Selection rate and TPR per group of each attribute, with their intervals; small groups grey."""
    cis = r.get("rate_ci") or {}
    groups = {(g["attribute"], g["group"]): g for g in r["groups"]}
    blocks: list[Block] = []
    for attr, per in cis.items():
        cats = [g for g in per if (attr, g) in groups]
        if not cats:
            continue
        series = []
        for rate, label in (("selection_rate", "selection rate"), ("tpr", "TPR")):
            vals = [groups[(attr, g)][rate] for g in cats]
            ci = [per[g][rate] or [None, None] for g in cats]
            series.append(Series(label, vals, [c[0] for c in ci], [c[1] for c in ci],
                                 counts=[groups[(attr, g)]["count"] for g in cats],
                                 muted=[bool(groups[(attr, g)]["too_small"]) for g in cats]))  # fmt: skip
        labels = [f"{g} (n={groups[(attr, g)]['count']})" for g in cats]
        blocks.append(Bars(f"Selection rate and TPR per group of {attr} ({model}), 95% Wilson intervals",
                           labels, series, y_label="rate", y_range=(0.0, 1.0),
                           note=f"Grey: groups below {r['min_group_size']} rows (left out of the gaps)."))  # fmt: skip
    return blocks
