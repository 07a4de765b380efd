"""White-box gradient canaries for fairleak's own DP-SGD recipes (the dp_audit stage's scorer).

Nasr et al. 2021 and 2023 ("Tight Auditing of Differentially Private Machine Learning"): a
canary is a record whose clipped gradient is ``max_grad_norm`` on a coordinate of its own; the
auditor sees the noisy gradient sums DP-SGD releases (what the accountant's epsilon covers), so
the canary's summed coordinate separates IN from OUT as well as the mechanism allows, and the
empirical lower bound can come close to the accountant's epsilon. The canaries go through the
trainer's own Poisson sampling, clipping and noise stream (``train_ensemble(canaries=...)``), so
a bug there (too little noise, a wrong sampling rate) shows as a bound above the claim.
"""

from __future__ import annotations

import numpy as np

from fairleak.audit.recipes import FairleakRecipe, Recipe
from fairleak.audit.stages.base import AuditContext
from fairleak.audit.stages.dp_audit import CanaryDesign, CanaryScores, register_canary_scorer
from fairleak.train import group_columns, model_seeds, train_ensemble

__all__ = ["gradient_canaries"]


def gradient_canaries(ctx: AuditContext, recipe: Recipe, design: CanaryDesign) -> CanaryScores | None:
    """Scores of the design's canaries as white-box gradient canaries: one DP training run of the
    recipe per design run, on the design's rows, each with its own canaries (disjoint sets).
    None for recipes that are not fairleak's DP ones (they get the black-box canaries)."""
    if not isinstance(recipe, FairleakRecipe) or recipe.dp is None:
        return None
    inputs = ctx.data.inputs
    K = design.n_runs
    per_run = [np.flatnonzero(design.run == k) for k in range(K)]
    m = max((len(p) for p in per_run), default=0)
    inclusion = np.zeros((K, m), dtype=bool)
    for k, idx in enumerate(per_run):
        inclusion[k, : len(idx)] = design.is_in[idx]
    rows = design.rows
    penalised, clip = group_columns(recipe.fairness, recipe.dp, list(inputs.sensitive.columns))
    groups = np.stack([inputs.codes(c)[rows] for c in penalised], 1) if penalised else None
    ens = train_ensemble(
        recipe.features(inputs)[rows], inputs.y[rows], np.ones((K, len(rows)), dtype=bool),
        config=recipe.train, seeds=model_seeds(design.seed, K), groups=groups,
        fairness=recipe.fairness, dp=recipe.dp.model_copy(update={"noise": "reproducible"}),
        clip_groups=None if clip is None else inputs.codes(clip)[rows], canaries=inclusion,
        progress=ctx.ticker(f"{design.task} · gradient canaries", "steps"),
    )  # fmt: skip
    assert ens.canary_scores is not None
    scores = np.empty(len(design.run))
    for k, idx in enumerate(per_run):
        scores[idx] = ens.canary_scores[k, : len(idx)]
    return CanaryScores(
        scores, "white-box gradient canaries (noisy clipped gradient on a canary's own coordinate)",
        {"epsilon": ens.epsilon, "delta": ens.delta},
        ["Gradient canaries test the DP mechanism as the accountant sees it: every noisy gradient "
         "sum released. The canaries' groups are their rows' groups; their gradients do not depend on them."],
    )  # fmt: skip


register_canary_scorer("fairleak", gradient_canaries)
