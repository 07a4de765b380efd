"""Stage: membership-inference attacks on each audited model, per group.

Reference models (LiRA, RMIA) train on complementary random halves of the audit set (the online
setting: every audit point is IN for half of them, and each trains on about as many rows as the
target); offline variants use, for each point, the models that did not train on it. Shadow models
(Shokri) train on halves of ``2 x |members|`` population rows. Both use the target's own recipe
(for a fitted scikit-learn model: clones of it); where the target has none, the attacks that need
them are skipped with a note.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, ClassVar, Literal

import numpy as np
import pandas as pd
from pydantic import Field, field_validator

from fairleak.attacks import (
    ATTACKS,
    AttackData,
    AttackResult,
    default_attacks,
    evaluate_attacks,
    make_attack,
    paired_half_masks,
    shadow_masks,
)
from fairleak.audit.blocks import Bars, Block, Curves, Estimate, RefLine, Series, Table, Text
from fairleak.audit.recipes import batches
from fairleak.audit.stages.base import (
    AuditContext,
    Column,
    Stage,
    StageConfig,
    StageOutput,
    register_stage,
)
from fairleak.errors import DataValidationError
from fairleak.train import model_seeds

__all__ = ["AttackSection", "AttacksStage", "attack_target"]

#: Per-group bars of groups with fewer members or non-members than this are drawn grey.
SMALL_GROUP = 30


class AttackSection(StageConfig):
    names: list[str] = Field(default_factory=default_attacks, description="registered attacks to run")
    params: dict[str, dict[str, Any]] = Field(
        default_factory=dict, description="per attack, its parameters (rmia_online: {gamma: 2})"
    )
    n_reference: int = Field(16, ge=2, description="reference models, even: complementary pairs")
    n_shadow: int = Field(4, ge=2, description="shadow models, even")
    n_bootstrap: int = Field(200, ge=0)
    output: Literal["full", "label_only", "top1"] = "full"

    @field_validator("n_reference", "n_shadow")
    @classmethod
    def _even(cls, v: int) -> int:
        if v % 2:
            raise ValueError("must be even (models come in complementary pairs)")
        return v

    @field_validator("names")
    @classmethod
    def _known(cls, v: list[str]) -> list[str]:
        bad = [a for a in v if a not in ATTACKS]
        if bad:
            raise ValueError(f"unknown attack(s) {bad}; choose from {sorted(ATTACKS)}")
        return v

    @field_validator("params")
    @classmethod
    def _params(cls, v: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
        for name, params in v.items():
            try:
                make_attack(name, **params)
            except DataValidationError as exc:
                raise ValueError(str(exc)) from None
        return v


def _designs(ctx: AuditContext, cfg: AttackSection) -> list[dict[str, Any]]:
    """The model sets the configured attacks need, as :func:`attack_target` requests them."""
    d = ctx.data
    needs = set().union(*(make_attack(a, **cfg.params.get(a, {})).needs for a in cfg.names)) if cfg.names else set()
    out = []
    if "references" in needs:
        out.append({"rows": d.audit, "masks": paired_half_masks(len(d.audit), cfg.n_reference, ctx.seed("reference masks")),
                    "seed": ctx.seed("references"), "eval_rows": np.concatenate([d.audit, d.population]),
                    "task": "reference models"})  # fmt: skip
    if "shadows" in needs:
        out.append({"rows": d.population, "seed": ctx.seed("shadows"), "eval_rows": d.population,
                    "masks": shadow_masks(len(d.population), int(d.is_member.sum()), cfg.n_shadow,
                                          ctx.seed("shadow masks")), "task": "shadow models"})  # fmt: skip
    return out


def attack_target(
    ctx: AuditContext, cfg: AttackSection, name: str
) -> tuple[dict[str, AttackResult], dict[str, Any]]:
    """Run the configured attacks on audited model ``name``: train what they need with its
    recipe (through the model bank), score, measure per group. Returns the results and the
    settings / notes that go with them."""
    d, target = ctx.data, ctx.targets[name]
    attacks = {a: make_attack(a, **cfg.params.get(a, {})) for a in cfg.names}
    recipe = target.attack_recipe
    notes = list(target.notes)
    needs = set().union(*(a.needs for a in attacks.values())) if attacks else set()
    if recipe is None and needs & {"references", "shadows"}:
        skipped = [a for a, atk in attacks.items() if atk.needs & {"references", "shadows"}]
        notes.append(
            f"Skipped {', '.join(skipped)}: they need models trained like the target, and "
            f"'{name}' has no known training recipe (give a fitted scikit-learn estimator, or a "
            "reference_estimator)."
        )
        attacks = {a: atk for a, atk in attacks.items() if a not in skipped}
        needs -= {"references", "shadows"}
    audit, pop = d.audit, d.population
    target_out = ctx.target_outputs(name, audit).restricted(cfg.output)
    pop_out = ctx.target_outputs(name, pop).restricted(cfg.output)
    settings: dict[str, Any] = {"output": cfg.output}
    refs = ref_in = shadows = shadow_in = None
    if "references" in needs:
        assert recipe is not None
        masks = paired_half_masks(len(audit), cfg.n_reference, ctx.seed("reference masks"))
        ms = ctx.train(
            recipe, rows=audit, masks=masks, seed=ctx.seed("references"),
            eval_rows=np.concatenate([audit, pop]), task=f"reference models · {name}",
        )  # fmt: skip
        refs, ref_in = ms.outputs.restricted(cfg.output), ms.trained_on
        settings["reference_models"] = {"n": cfg.n_reference, "rows_each": len(audit) // 2,
                                        "target_rows": int(d.is_member.sum())}  # fmt: skip
    if "shadows" in needs:
        assert recipe is not None
        masks = shadow_masks(len(pop), int(d.is_member.sum()), cfg.n_shadow, ctx.seed("shadow masks"))
        ms = ctx.train(
            recipe, rows=pop, masks=masks, seed=ctx.seed("shadows"), eval_rows=pop,
            task=f"shadow models · {name}",
        )  # fmt: skip
        shadows, shadow_in = ms.outputs.restricted(cfg.output), ms.trained_on
        settings["shadow_models"] = {"n": cfg.n_shadow, "rows_each": int(masks[0].sum())}
    data = AttackData(
        y=d.y[audit], target=target_out.model(0) if target_out.n_models > 1 else target_out,
        y_population=d.y[pop], target_population=pop_out, references=refs, reference_in=ref_in,
        shadows=shadows, shadow_in=shadow_in, seed=ctx.seed("attack models", name),
    )  # fmt: skip
    results = evaluate_attacks(
        attacks, data, d.is_member, groups=d.sensitive(audit), n_bootstrap=cfg.n_bootstrap,
        random_state=ctx.seed("attack bootstrap", name), progress=ctx.ticker(f"attacks · {name}", "attacks"),
    )  # fmt: skip
    settings["notes"] = notes
    return results, settings


@register_stage
class AttacksStage(Stage):
    name = "attacks"
    title = "Membership inference"
    order = 20
    Config = AttackSection
    columns = (
        Column("strongest_attack", "strongest attack"),
        Column("strongest_attack_auc", "AUC"),
        Column("strongest_attack_tpr_at_1%_fpr", "TPR@1%FPR"),
    )
    glossary: ClassVar[dict[str, str]] = {
        "AUC": "area under the attack's ROC curve: 0.5 is chance, 1 always right",
        "TPR@1%FPR": "share of members found when only 1% of non-members are wrongly flagged",
        "advantage": "the largest TPR - FPR over thresholds (0: no better than chance)",
    }

    schema: ClassVar[dict[str, Any] | None] = {
        "type": "object",
        "required": ["results", "strongest", "output", "notes"],
        "properties": {
            "results": {"type": "object", "additionalProperties": {"$ref": "#/$defs/attack"}},
            "strongest": {"type": ["string", "null"]},
        },
    }

    def run(self, ctx: AuditContext, cfg: AttackSection) -> StageOutput:
        """Every audited model's attacks. Models whose recipes can train together (a sweep's
        candidates differing only in the penalty weight, see ``recipes.batches``) get their
        reference and shadow models trained together too, one group at a time (each set equal
        to the one trained alone, so the results do not change)."""
        names = list(ctx.targets)
        recipes = {n: ctx.targets[n].attack_recipe for n in names}
        with_recipe = [n for n in names if recipes[n] is not None]
        groups = [[with_recipe[i] for i in g] for g in batches([recipes[n] for n in with_recipe])]
        order = [g for g in groups if len(g) > 1] + [[n] for n in names if all(n not in g for g in groups if len(g) > 1)]
        done: dict[str, StageOutput | None] = {}
        for group in order:
            if len(group) > 1:
                unique = list({json.dumps(recipes[n].key(), sort_keys=True, default=str): recipes[n]
                               for n in group}.values())  # fmt: skip
                for design in _designs(ctx, cfg):
                    ctx.bank.train_many(unique, rows=design["rows"], masks=design["masks"],
                                        seeds=model_seeds(design["seed"], len(design["masks"])),
                                        eval_rows=design["eval_rows"], task=design["task"], keep=True)  # fmt: skip
            for n in group:
                done[n] = self.run_model(ctx, cfg, ctx.targets[n])
        results, tables, notes = {}, {}, []
        for n in names:  # the audit's model order, however they were grouped
            out = done[n]
            if out is None:
                continue
            results[n] = out.results
            for k, v in out.tables.items():
                tables.setdefault(k, []).extend(v)
            notes += out.notes
        return StageOutput(results, tables, notes)

    def run_model(self, ctx: AuditContext, cfg: AttackSection, target: Any) -> StageOutput:
        results, settings = attack_target(ctx, cfg, target.name)
        strongest = max(results.values(), key=lambda r: r.metrics.auc or 0.0) if results else None
        d = ctx.data
        rows = d.ds.source_rows[d.audit] if len(d.ds.source_rows) else d.audit
        per_record = [
            pd.DataFrame({"model": target.name, "attack": a, "row": rows, "is_member": d.is_member,
                          "score": r.scores})
            for a, r in results.items()
        ]
        per_group = [
            pd.DataFrame([
                {"model": target.name, "attack": a, "attribute": attr, "group": g, "auc": gm.auc,
                 "tpr_at_1%_fpr": gm.tpr_at_1_fpr, "n_members": gm.n_members,
                 "n_nonmembers": gm.n_nonmembers}
                for a, r in results.items() for attr, gs in r.metrics.by_group.items()
                for g, gm in gs.items()
            ])
        ]  # fmt: skip
        out = {
            "results": {a: r.to_dict() for a, r in results.items()},
            "strongest": None if strongest is None else strongest.name,
            **settings,
        }
        return StageOutput(out, {"per_record": per_record, "per_group_attacks": per_group})

    def summary(self, results: Mapping[str, Any], model: str) -> dict[str, Any]:
        r = results.get(model)
        if r is None or r["strongest"] is None:
            return {}
        s = r["results"][r["strongest"]]
        return {"strongest_attack": r["strongest"], "strongest_attack_auc": s["auc"],
                "strongest_attack_tpr_at_1%_fpr": s["tpr_at_1%_fpr"]}  # fmt: skip

    def report(self, results: Mapping[str, Any], model: str | None) -> list[Block]:
        r = results.get(model or "")
        if r is None:
            return []
        blocks: list[Block] = [Text(n, "warn") for n in r.get("notes", [])]
        attacks = r["results"]
        if not attacks:
            return blocks
        blocks.append(Curves(
            f"ROC curves, log-log ({model})",
            [(f"{a} (AUC {v['auc']:.3f})", v["roc"]["fpr"], v["roc"]["tpr"])
             for a, v in attacks.items() if "roc" in v and v["auc"] is not None],
            x_label="false positive rate", y_label="true positive rate", log=True, diagonal="chance",
        ))  # fmt: skip
        rows, footnotes = [], {}
        for a, v in attacks.items():
            ci = v.get("ci", {})
            marks = [f"[{footnotes.setdefault(w, len(footnotes) + 1)}]" for w in v.get("warnings", [])]
            rows.append([
                a, Estimate(v["auc"], *(ci.get("auc") or (None, None))),
                Estimate(v["tpr_at_0.1%_fpr"]), Estimate(v["tpr_at_1%_fpr"], *(ci.get("tpr_at_1%_fpr") or (None, None))),
                Estimate(v["advantage"], *(ci.get("advantage") or (None, None))), v["n_members"],
                v["n_nonmembers"], " ".join(marks),
            ])  # fmt: skip
        blocks.append(Table(["attack", "AUC [95% CI]", "TPR@0.1%FPR", "TPR@1%FPR [95% CI]", "advantage [95% CI]",
                             "members", "non-members", "notes"], rows))  # fmt: skip
        blocks += [Text(f"[{i}] {w}", "note") for w, i in footnotes.items()]
        strongest = r["strongest"]
        by_group = attacks.get(strongest, {}).get("by_group", {})
        cats, vals, lo, hi, n, muted = [], [], [], [], [], []
        for attr, groups in by_group.items():
            for g, v in groups.items():
                ci = (v.get("ci") or {}).get("auc") or (None, None)
                size = min(v["n_members"], v["n_nonmembers"])
                cats.append(f"{attr}={g} (n={size})")
                vals.append(v["auc"])
                lo.append(ci[0])
                hi.append(ci[1])
                n.append(size)
                muted.append(v["auc"] is None or size < SMALL_GROUP)
        if cats:
            blocks.append(Bars(
                f"Per-group AUC of {strongest} ({model}), 95% intervals", cats,
                [Series("AUC", vals, lo, hi, n, muted)], y_label="attack AUC",
                lines=[RefLine(0.5, "chance (0.5)")], y_range=(0.0, 1.0),
                note=f"Grey: groups with fewer than {SMALL_GROUP} members or non-members (n = the smaller "
                "count): their AUC is too uncertain to read.",
            ))  # fmt: skip
        return blocks
