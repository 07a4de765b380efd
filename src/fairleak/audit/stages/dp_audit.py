"""Stage: empirical lower bounds on epsilon (DP auditing), per model and per group.

For every audited model with a training recipe, canaries are trained into models built with
that recipe on the model's own training rows (the model bank), and their scores turned into a
lower bound on epsilon by :func:`fairleak.attacks.audit_epsilon` (ALGORITHMS-2.md section 9):

- **one run** (Steinke, Nasr, Jagielski 2023), the default design: ``runs`` models, each with
  its own ``canaries`` canaries (disjoint sets, pooled into one test), each canary included with
  probability 1/2. A black-box canary is a population row (never in any model's training rows)
  with its label flipped, drawn stratified by the intersection of the protected attributes
  (equal numbers per group where the population allows), so every group gets a bound.
  Canaries are scored by LiRA offline (Carlini et al. 2022) against the other runs, which never
  trained on them and do not depend on their inclusion, or by the run's own loss.
- **multi-run** (Jagielski et al. 2020; Nasr et al. 2021), when ``multi_run_models > 0``: one
  canary per group (and intersection), each included with probability 1/2 in each of
  ``multi_run_models`` models; per canary a Clopper-Pearson bound from its independent trials,
  overall the best canary at a Bonferroni-corrected level.

Results sit next to the model's accountant epsilon; non-private models get the empirical figure
too (the only privacy number that puts DP and non-DP models on one scale). A bound above the
accountant's epsilon means the DP code (or its accounting) is wrong, and is flagged.

How a recipe's canaries are built and scored is pluggable: :data:`CANARY_SCORERS` maps a
recipe kind to a scorer (e.g. white-box gradient canaries inside fairleak's DP trainer, Nasr et
al. 2021/2023); a scorer returning None falls back to the black-box canaries.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

import numpy as np
import pandas as pd
from pydantic import Field, field_validator

from fairleak.attacks import (
    EpsilonBound,
    audit_epsilon,
    lira_scores,
    logit_scaled_confidence,
)
from fairleak.audit.bank import ModelBank
from fairleak.audit.blocks import Bars, Block, RefLine, Series, Table, Text
from fairleak.audit.cache import stable_hash
from fairleak.audit.recipes import Inputs, Recipe
from fairleak.audit.stages.base import (
    AuditContext,
    Column,
    Stage,
    StageConfig,
    StageOutput,
    check_model_names,
    register_stage,
)
from fairleak.data import group_views, intersection_labels, sorted_groups

__all__ = [
    "CANARY_SCORERS",
    "CanaryDesign",
    "CanaryScorer",
    "CanaryScores",
    "DPAuditSection",
    "DPAuditStage",
    "black_box_canaries",
    "draw_canaries",
    "register_canary_scorer",
]

DEFAULT_DELTA = 1e-5  # the delta of a non-private model's bound (DPConfig's default)


class DPAuditSection(StageConfig):
    enabled: bool = Field(False, description="off by default: it trains `runs` more models per audited model")
    models: list[str] | None = Field(None, description="models to audit; null: every model with a training recipe")
    runs: int = Field(4, ge=1, description="one-run design: training runs per model, disjoint canary sets, pooled")
    canaries: int = Field(250, ge=2, description="canaries per run (flipped-label population rows)")
    score: Literal["lira_offline", "loss"] = Field(
        "lira_offline", description="black-box canary score: LiRA offline against the other runs, or the loss"
    )
    scorer: Literal["auto", "black_box"] = Field(
        "auto", description="auto: a scorer registered for the recipe's kind (white box) when there is one"
    )
    k_plus: int | None = Field(None, ge=1, description="IN guesses; null: chosen without peeking")
    threshold_strategy: Literal["split", "bonferroni"] = "split"
    confidence: float = Field(0.95, gt=0, lt=1)
    delta: float | None = Field(None, ge=0, lt=1, description="null: the model's own delta, else 1e-5")
    multi_run_models: int = Field(0, ge=0, description="multi-run design: models per audited model; 0: skip")

    @field_validator("multi_run_models")
    @classmethod
    def _enough(cls, v: int) -> int:
        if 0 < v < 8:
            raise ValueError("must be 0 (skip the multi-run design) or at least 8")
        return v


# ------------------------------------------------------------------------------- the canaries
@dataclass(frozen=True)
class CanaryDesign:
    """The one-run design of one audited model, as a scorer receives it.

    Every run trains on ``rows`` (the audited model's training rows) plus its own canaries
    ``canary_rows[run == k]`` whose ``is_in`` is True. ``canary_rows`` are population rows (their
    protected attributes stratify the design; a white-box scorer may use them as its canaries'
    groups only). ``seed`` is the runs' named seed; ``score`` the black-box statistic."""

    rows: np.ndarray
    canary_rows: np.ndarray
    run: np.ndarray
    is_in: np.ndarray
    n_runs: int
    seed: int
    score: str = "lira_offline"
    task: str = "DP audit"


@dataclass
class CanaryScores:
    """One score per canary of a :class:`CanaryDesign` (higher = IN), what produced them
    (``method``), the runs' accountant figures (``privacy``: ``epsilon`` per run, ``delta``)."""

    scores: np.ndarray
    method: str
    privacy: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


#: scorer(ctx, recipe, design) -> CanaryScores, or None where it does not apply.
CanaryScorer = Callable[[AuditContext, Recipe, CanaryDesign], "CanaryScores | None"]

#: Canary scorers by recipe kind (``Recipe.kind``: "fairleak", "sklearn", ...). Empty by
#: default: every recipe gets :func:`black_box_canaries`.
CANARY_SCORERS: dict[str, CanaryScorer] = {}


def register_canary_scorer(kind: str, scorer: CanaryScorer) -> CanaryScorer:
    """Score the canaries of recipes of ``kind`` with ``scorer`` (e.g. the DP trainer's white-box
    gradient canaries). It returns None for recipes it does not handle (say, non-private ones):
    those get the black-box canaries."""
    CANARY_SCORERS[kind] = scorer
    return scorer


def flipped_view(inputs: Inputs, rows: np.ndarray) -> Inputs:
    """The same inputs with the labels of ``rows`` flipped (the canaries), sharing the encoding.
    A view rather than a change to the bank or the recipes: every recipe trains on ``inputs.y``,
    and the canary rows are population rows no other model set trains on. They are no longer
    public rows: a recipe with public pretraining must not see a canary whether it is in or out."""
    y = inputs.y.copy()
    y[rows] = 1 - y[rows]
    public = None if inputs.public is None else np.setdiff1d(inputs.public, rows)
    return dataclasses.replace(
        inputs, y=y, make_matrix=lambda: inputs.matrix, _matrix=None, public=public
    )


def _view_bank(ctx: AuditContext, flipped: np.ndarray) -> ModelBank:
    """A model bank over the flipped view; its cache entries are keyed by which labels flipped."""
    digest = hashlib.sha256(np.sort(flipped).astype(np.int64).tobytes()).hexdigest()[:24]
    fp = stable_hash({"data": ctx.bank.fingerprint, "flipped": digest})
    return ModelBank(flipped_view(ctx.data.inputs, flipped), fp, ctx.bank.cache, ctx.bank.progress)


def _phi(outputs: Any, y: np.ndarray) -> np.ndarray:
    if outputs.logits is not None:
        return logit_scaled_confidence(outputs.logits, y)
    return logit_scaled_confidence(outputs.proba, y, from_probabilities=True)


def black_box_canaries(ctx: AuditContext, recipe: Recipe, design: CanaryDesign) -> CanaryScores:
    """Train the design's runs with ``recipe`` on the flipped view (one model set, K at once)
    and score each canary on its own run: LiRA offline against the other runs (which never
    trained on it, so they are OUT models that do not depend on its inclusion), or the loss."""
    n_rest, n = len(design.rows), len(design.canary_rows)
    rows = np.concatenate([design.rows, design.canary_rows])
    masks = np.zeros((design.n_runs, len(rows)), dtype=bool)
    masks[:, :n_rest] = True
    masks[design.run, n_rest + np.arange(n)] = design.is_in
    bank = _view_bank(ctx, design.canary_rows)
    ms = bank.train(recipe, rows=rows, masks=masks, seed=design.seed, eval_rows=design.canary_rows,
                    task=design.task)  # fmt: skip
    ctx.bank.trainings += bank.trainings
    y_canary = bank.inputs.y[design.canary_rows]
    phi = _phi(ms.outputs, y_canary)  # [K, n]
    own = phi[design.run, np.arange(n)]
    notes: list[str] = []
    score = design.score
    if score == "lira_offline" and design.n_runs < 2:
        score = "loss"
        notes.append("LiRA offline needs at least 2 runs (the others are its reference models): scored by loss.")
    if score == "loss":
        scores = -np.logaddexp(0.0, -own)  # log p(flipped label), monotone in phi
        method = "black box: flipped-label canaries, loss of their own run"
    else:
        scores = np.empty(n)
        fixed = design.n_runs - 1 < 16  # few reference models: one global variance (Carlini et al.)
        for k in range(design.n_runs):
            idx = np.flatnonzero(design.run == k)
            others = np.delete(np.arange(design.n_runs), k)
            refs = phi[np.ix_(others, idx)]
            scores[idx] = lira_scores(own[idx], refs, np.zeros_like(refs, dtype=bool), mode="offline",
                                      fixed_variance=fixed)  # fmt: skip
        method = (f"black box: flipped-label canaries, LiRA offline against the other {design.n_runs - 1} "
                  f"run(s){' (fixed variance)' if fixed else ''}")  # fmt: skip
    return CanaryScores(scores, method, dict(ms.privacy), notes)


def _waterfill(total: int, available: np.ndarray) -> np.ndarray:
    """Equal numbers per cell, as far as each cell's rows allow; the rest to the larger cells."""
    alloc = np.zeros(len(available), dtype=np.int64)
    left = min(int(total), int(available.sum()))
    open_ = available > 0
    while left > 0 and open_.any():
        share = max(left // int(open_.sum()), 1)
        for c in np.flatnonzero(open_):
            take = min(share, int(available[c] - alloc[c]), left)
            alloc[c] += take
            left -= take
            if alloc[c] >= available[c]:
                open_[c] = False
            if left == 0:
                break
    return alloc


def draw_canaries(
    cells: np.ndarray, n_total: int, n_runs: int, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """``n_total`` distinct positions into ``cells`` (a group label per candidate row), equally
    many per group where possible, dealt round-robin to ``n_runs`` runs so that every run is
    stratified too. Returns (positions, run of each)."""
    rng = np.random.default_rng(seed)
    names, codes = np.unique(np.asarray(cells, dtype=str), return_inverse=True)
    alloc = _waterfill(n_total, np.bincount(codes, minlength=len(names)))
    picked = [rng.choice(np.flatnonzero(codes == c), a, replace=False) for c, a in enumerate(alloc) if a]
    pos = np.concatenate(picked) if picked else np.zeros(0, dtype=np.int64)
    offset = int(rng.integers(n_runs))
    run = (np.arange(len(pos)) + offset) % n_runs
    return pos.astype(np.int64), run.astype(np.int64)


# ------------------------------------------------------------------------------------- the stage
def _bound_dict(b: EpsilonBound) -> dict[str, Any]:
    return b.to_dict()


@register_stage
class DPAuditStage(Stage):
    name = "dp_audit"
    title = "Empirical epsilon (DP auditing)"
    order = 50
    Config = DPAuditSection
    columns = (
        Column("empirical_epsilon", "empirical eps", digits=2,
               help="one-run lower bound on epsilon at 95% confidence, from canaries (dp_audit)"),
        Column("empirical_epsilon_ceiling", "eps ceiling", digits=2,
               help="the largest bound these canaries could show (a perfect attack)"),
    )  # fmt: skip
    glossary: ClassVar[dict[str, str]] = {
        "empirical epsilon": "a lower bound on epsilon proven, with the stated confidence, by how "
        "well canaries' membership is guessed: above the accountant's epsilon means the DP "
        "implementation or its accounting is wrong",
        "ceiling": "the largest empirical epsilon a given number of canaries can prove (every "
        "guess right); a bound at its ceiling may understate the leakage",
    }

    _BOUND: ClassVar[dict[str, Any]] = {
        "type": "object",
        "required": ["value", "ceiling", "method", "confidence", "delta", "m", "r", "v", "notes"],
        "properties": {
            "value": {"type": "number", "minimum": 0}, "ceiling": {"type": "number", "minimum": 0},
            "method": {"enum": ["one_run", "clopper_pearson"]},
            "confidence": {"type": "number"}, "delta": {"type": "number"},
            "m": {"type": "integer"}, "r": {"type": "integer"}, "v": {"type": "integer"},
            "by_group": {"type": "object", "additionalProperties": {"type": "object",
                         "additionalProperties": {"type": "object", "required": ["value", "ceiling", "m"]}}},
        },
    }  # fmt: skip
    schema: ClassVar[dict[str, Any] | None] = {
        "oneOf": [
            {"type": "object", "required": ["skipped"]},
            {"type": "object",
             "required": ["private", "accountant_epsilon", "delta", "canaries", "one_run", "multi_run",
                          "exceeds_accountant", "notes"],
             "properties": {
                 "private": {"type": "boolean"}, "accountant_epsilon": {"$ref": "#/$defs/num"},
                 "runs_epsilon": {"$ref": "#/$defs/num"}, "delta": {"type": "number"},
                 "canaries": {"type": "object", "required": ["runs", "per_run", "total", "method"]},
                 "one_run": _BOUND,
                 "multi_run": {"oneOf": [{"type": "null"}, _BOUND]},
                 "exceeds_accountant": {"type": ["boolean", "null"]},
                 "notes": {"type": "array", "items": {"type": "string"}},
             }},
        ]
    }  # fmt: skip

    @classmethod
    def check_config(cls, cfg: DPAuditSection, audit: Any) -> None:
        check_model_names(cfg.models or [], audit, "dp_audit.models")

    # ---- running
    def run(self, ctx: AuditContext, cfg: DPAuditSection) -> StageOutput:
        d = ctx.data
        chosen = cfg.models if cfg.models is not None else list(ctx.targets)
        attrs = list(d.ds.sensitive.columns)
        pop_cells = intersection_labels(d.ds.sensitive.iloc[d.population].reset_index(drop=True), attrs)
        n_mr_cap = sum(len(set(v.tolist())) for v in group_views(d.sensitive(d.population)).values())
        notes: list[str] = []
        budget = len(d.population) - (n_mr_cap if cfg.multi_run_models else 0)
        per_run = min(cfg.canaries, max(budget // cfg.runs, 0))
        if per_run < cfg.canaries:
            notes.append(f"dp_audit: the population holds {len(d.population):,} rows; {per_run} canaries "
                         f"per run instead of {cfg.canaries}.")  # fmt: skip
        pos, run = draw_canaries(pop_cells, per_run * cfg.runs, cfg.runs, ctx.seed("dp_audit canaries"))
        canary_rows = d.population[pos]
        is_in = np.random.default_rng(ctx.seed("dp_audit inclusion")).random(len(pos)) < 0.5
        rest = np.setdiff1d(np.arange(len(d.population)), pos)
        results, tables = {}, []
        for name in chosen:
            target = ctx.targets[name]
            if target.recipe is None:
                results[name] = {"skipped": "no training recipe: canaries must be trained in by the model's own recipe"}
                continue
            design = CanaryDesign(
                rows=d.members, canary_rows=canary_rows, run=run, is_in=is_in, n_runs=cfg.runs,
                seed=ctx.seed("dp_audit runs"), score=cfg.score, task=f"DP audit (one run) · {name}",
            )  # fmt: skip
            out, table = self._audit_model(ctx, cfg, name, design, rest)
            results[name] = out
            tables.append(table)
            if out["exceeds_accountant"]:
                notes.append(
                    f"dp_audit: the empirical lower bound of '{name}' ({out['one_run']['value']:.2f}) is "
                    f"above its accountant epsilon ({out['accountant_epsilon']:.2f}): its DP guarantee fails."
                )  # fmt: skip
        return StageOutput(results, {"dp_audit_canaries": tables} if tables else {}, notes)

    def _audit_model(
        self, ctx: AuditContext, cfg: DPAuditSection, name: str, design: CanaryDesign,
        rest: np.ndarray,
    ) -> tuple[dict[str, Any], pd.DataFrame]:  # fmt: skip
        d, target = ctx.data, ctx.targets[name]
        recipe = target.recipe
        assert recipe is not None
        scorer = CANARY_SCORERS.get(recipe.kind) if cfg.scorer == "auto" else None
        scored = scorer(ctx, recipe, design) if scorer is not None else None
        if scored is None:
            scored = black_box_canaries(ctx, recipe, design)
        eps = target.privacy.get("epsilon")
        accountant = float(max(eps)) if eps else None
        delta = cfg.delta if cfg.delta is not None else target.privacy.get("delta") or DEFAULT_DELTA
        bound = audit_epsilon(
            scored.scores, design.is_in, method="one_run", delta=delta, confidence=cfg.confidence,
            k_plus=cfg.k_plus, threshold_strategy=cfg.threshold_strategy,
            seed=ctx.seed("dp_audit bound", name), groups=d.sensitive(design.canary_rows),
        )  # fmt: skip
        runs_eps = scored.privacy.get("epsilon")
        notes = list(scored.notes)
        multi = None
        if cfg.multi_run_models:
            multi = self._multi_run(ctx, cfg, name, recipe, rest, delta)
        exceeds = None if accountant is None else bool(
            bound.value > max(accountant, max(runs_eps) if runs_eps else 0.0) + 1e-9
            or (multi is not None and multi.value > accountant + 1e-9)
        )  # fmt: skip
        if accountant is not None and bound.ceiling < accountant:
            notes.append(
                f"With these canaries no bound above {bound.ceiling:.2f} is possible (the ceiling), below "
                f"the accountant's epsilon {accountant:.2f}: more canaries or runs would be needed to "
                "catch an epsilon claimed too low."
            )  # fmt: skip
        views = group_views(d.sensitive(design.canary_rows))
        out = {
            "private": accountant is not None,
            "accountant_epsilon": accountant,
            "runs_epsilon": float(max(runs_eps)) if runs_eps else None,
            "delta": float(delta),
            "canaries": {
                "runs": design.n_runs, "per_run": int(len(design.canary_rows) // max(design.n_runs, 1)),
                "total": len(design.canary_rows), "included": int(design.is_in.sum()),
                "method": scored.method, "kind": "population rows, flipped labels, stratified by group",
                "per_group": {v: {str(g): int((lab == g).sum()) for g in sorted_groups(set(lab.tolist()))}
                              for v, lab in views.items()},
            },
            "one_run": _bound_dict(bound),
            "multi_run": None if multi is None else _bound_dict(multi),
            "exceeds_accountant": exceeds,
            "notes": notes,
        }  # fmt: skip
        source = d.ds.source_rows[design.canary_rows] if len(d.ds.source_rows) else design.canary_rows
        table = pd.DataFrame({"model": name, "row": source, "run": design.run, "is_in": design.is_in,
                              "score": scored.scores})  # fmt: skip
        return out, table

    def _multi_run(
        self, ctx: AuditContext, cfg: DPAuditSection, name: str, recipe: Recipe, rest: np.ndarray,
        delta: float,
    ) -> EpsilonBound:  # fmt: skip
        """One canary per group and intersection, each IN for a random half of the models; a
        Clopper-Pearson bound per canary from the model's own score (trials stay independent);
        overall: the best canary at ``alpha / #canaries``."""
        d = ctx.data
        sens = d.sensitive(d.population[rest])
        rng = np.random.default_rng(ctx.seed("dp_audit multi-run canaries"))
        picks: list[tuple[str, str, int]] = []
        used: set[int] = set()
        for view, labels in group_views(sens).items():
            lab = np.asarray(labels, dtype=str)
            for g in sorted_groups(set(lab.tolist())):
                cand = [int(i) for i in np.flatnonzero(lab == g) if int(i) not in used]
                if cand:
                    i = int(rng.choice(cand))
                    used.add(i)
                    picks.append((view, g, i))
        canaries = d.population[rest[[p[2] for p in picks]]]
        n_models, n_c = cfg.multi_run_models, len(canaries)
        S = np.random.default_rng(ctx.seed("dp_audit multi-run inclusion")).random((n_models, n_c)) < 0.5
        rows = np.concatenate([d.members, canaries])
        masks = np.concatenate([np.ones((n_models, len(d.members)), bool), S], 1)
        bank = _view_bank(ctx, canaries)
        ms = bank.train(recipe, rows=rows, masks=masks, seed=ctx.seed("dp_audit multi-run"),
                        eval_rows=canaries, task=f"DP audit (multi-run) · {name}")  # fmt: skip
        ctx.bank.trainings += bank.trainings
        phi = _phi(ms.outputs, bank.inputs.y[canaries])  # [n_models, n_c]: model k's own output only
        kw = {"method": "clopper_pearson", "delta": delta, "threshold_strategy": cfg.threshold_strategy}
        seeds = [ctx.seed("dp_audit multi-run bound", name, c) for c in range(n_c)]
        alpha = 1.0 - cfg.confidence
        overall = [audit_epsilon(phi[:, c], S[:, c], confidence=1 - alpha / n_c, seed=seeds[c], **kw)
                   for c in range(n_c)]  # fmt: skip
        best = max(range(n_c), key=lambda c: (overall[c].value, -c))
        res = dataclasses.replace(overall[best], confidence=cfg.confidence,
                                  ceiling=max(b.ceiling for b in overall), notes=[
            *overall[best].notes,
            f"best of {n_c} canaries (one per group), each at confidence {1 - alpha / n_c:.4f} (Bonferroni); "
            f"this one: {picks[best][0]} = {picks[best][1]}",
        ])  # fmt: skip
        for c, (view, g, _) in enumerate(picks):
            res.by_group.setdefault(view, {})[g] = audit_epsilon(
                phi[:, c], S[:, c], confidence=cfg.confidence, seed=seeds[c], **kw
            )
        return res

    # ---- presenting
    def summary(self, results: Mapping[str, Any], model: str) -> dict[str, Any]:
        r = results.get(model)
        if r is None or "one_run" not in r:
            return {}
        return {"empirical_epsilon": r["one_run"]["value"], "empirical_epsilon_ceiling": r["one_run"]["ceiling"]}

    def report(self, results: Mapping[str, Any], model: str | None) -> list[Block]:
        r = results.get(model or "")
        if r is None:
            return []
        if "skipped" in r:
            return [Text(f"DP audit skipped: {r['skipped']}.", "warn")]
        acc = r["accountant_epsilon"]
        blocks: list[Block] = []
        if r.get("exceeds_accountant"):
            blocks.append(Text(f"The empirical lower bound is above the accountant's epsilon ({acc:.2f}): "
                               "the model's DP guarantee does not hold.", "warn"))  # fmt: skip
        c = r["canaries"]
        blocks.append(Text(
            f"{c['total']:,} canaries ({c['kind']}) in {c['runs']} run(s) of the model's recipe, each "
            f"included with probability 1/2; {c['method']}. Bounds at delta = {r['delta']:.2g}.", "note",
        ))  # fmt: skip
        rows = []
        for label, key in (("one run (Steinke et al. 2023)", "one_run"),
                           ("multi-run, Clopper-Pearson", "multi_run")):  # fmt: skip
            b = r.get(key)
            if b is None:
                continue
            rows.append([label, b["value"], b["ceiling"], acc, b["confidence"], b["m"], b["r"], b["v"]])
        blocks.append(Table(["design", "empirical eps >=", "ceiling", "accountant eps", "confidence",
                             "canaries / trials", "guesses / bounded", "right"], rows))  # fmt: skip
        lines = [RefLine(acc, "accountant epsilon")] if acc is not None else []
        for view, groups in r["one_run"].get("by_group", {}).items():
            cats = list(groups)
            blocks.append(Bars(
                f"Empirical epsilon per group of {view} ({model}, one run)", cats,
                [Series("lower bound", [groups[g]["value"] for g in cats], counts=[groups[g]["m"] for g in cats]),
                 Series("ceiling", [groups[g]["ceiling"] for g in cats], muted=[True] * len(cats))],
                y_label="epsilon", lines=lines,
                note=f"each bound at {r['one_run']['confidence']:.0%} confidence on its own; grey: the ceiling",
            ))  # fmt: skip
        blocks += [Text(n, "note") for n in r.get("notes", [])]
        return blocks
