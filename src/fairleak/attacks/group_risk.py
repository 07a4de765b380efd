"""Group privacy risk: IPR per record, GPR per group, GPRP, from the PA-ALOOA game.

Yang, Huang, Tang, Yao 2025 ("On the Fairness of Privacy Protection", arXiv 2510.09114); the
procedure follows the authors' code as described in ALGORITHMS.md section 4:

- R models in R/2 complementary pairs of random halves, so every audited record is IN for
  exactly R/2 models and OUT for R/2; all records are audited from the same R models.
- Score per record and model: ``-loss``.
- IPR(x) = 2 acc(x) - 1, acc(x) the best fraction of the R models whose membership of x is
  guessed right by "member iff score >= t" (oracle threshold, optimistic), or with t chosen on
  half of the pairs and evaluated on the other half (held-out).
- GPR_k = mean IPR over group k; GPRP = max_k GPR_k - min_k GPR_k.
- Average-case baselines: PA-GA (one threshold per model) and PA-GBA (one per model and group).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from fairleak.data.groups import group_views, normalize_sensitive, sorted_groups
from fairleak.errors import DataValidationError

__all__ = [
    "GroupRiskResult",
    "best_accuracy_per_model",
    "gpr_by_group",
    "gprp",
    "ipr_heldout",
    "ipr_oracle",
    "ipr_oracle_direct",
]


def _best_correct(
    scores: np.ndarray, is_in: np.ndarray, axis: int
) -> tuple[np.ndarray, np.ndarray]:
    """Most correct guesses of "member iff score >= t" along ``axis``, and the threshold reaching it.

    Thresholds range over the distinct scores and +inf (nobody is a member); sorting once per
    line makes it O(R log R) per record instead of O(R^2).
    """
    s = np.moveaxis(scores, axis, -1)
    m = np.moveaxis(is_in, axis, -1)
    order = np.argsort(s, axis=-1, kind="stable")
    ss = np.take_along_axis(s, order, -1)
    mi = np.take_along_axis(m, order, -1).astype(np.int64)
    R = s.shape[-1]
    zeros = np.zeros((*s.shape[:-1], 1), dtype=np.int64)
    in_below = np.concatenate([zeros, np.cumsum(mi, -1)], -1)  # j rows below threshold
    out_below = np.arange(R + 1) - in_below
    correct = (in_below[..., -1:] - in_below) + out_below  # IN at/above + OUT below
    valid = np.ones_like(correct, dtype=bool)
    valid[..., 1:R] = ss[..., 1:] > ss[..., :-1]  # a threshold sits between distinct values
    correct = np.where(valid, correct, -1)
    j = correct.argmax(-1)
    best = np.take_along_axis(correct, j[..., None], -1)[..., 0]
    thr = np.where(
        j < R, np.take_along_axis(ss, np.minimum(j, R - 1)[..., None], -1)[..., 0], np.inf
    )
    return best, thr


def ipr_oracle(scores: np.ndarray, is_in: np.ndarray) -> np.ndarray:
    """IPR per record [N] from scores [R, N] and membership [R, N], best threshold per record."""
    best, _ = _best_correct(np.asarray(scores, float), np.asarray(is_in, bool), axis=0)
    return 2.0 * best / scores.shape[0] - 1.0


def ipr_oracle_direct(scores: np.ndarray, is_in: np.ndarray) -> np.ndarray:
    """The same as :func:`ipr_oracle` by a plain loop over records and thresholds (for tests)."""
    R, N = scores.shape
    out = np.empty(N)
    for i in range(N):
        best = 0
        for t in [*np.unique(scores[:, i]), np.inf]:
            best = max(best, int(((scores[:, i] >= t) == is_in[:, i]).sum()))
        out[i] = 2.0 * best / R - 1.0
    return out


def ipr_heldout(scores: np.ndarray, is_in: np.ndarray) -> np.ndarray:
    """IPR with each record's threshold chosen on the first half of the model pairs and its
    accuracy measured on the second half (no optimistic bias; zero in expectation for a record
    whose scores do not depend on membership)."""
    R = scores.shape[0]
    half = (R // 4) * 2  # whole pairs
    if half < 2 or R - half < 2:
        raise DataValidationError(f"The held-out IPR needs at least 4 models (2 pairs); got {R}.")
    _, thr = _best_correct(scores[:half], is_in[:half], axis=0)
    pred = scores[half:] >= thr[None, :]
    acc = (pred == is_in[half:]).mean(0)
    return 2.0 * acc - 1.0


def best_accuracy_per_model(scores: np.ndarray, is_in: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per model (row): the threshold with the most correct guesses over its records, and it."""
    best, thr = _best_correct(scores, is_in, axis=1)
    return best / scores.shape[1], thr


def gpr_by_group(
    values: np.ndarray, labels: np.ndarray, *, min_group_size: int = 1
) -> dict[str, dict[str, Any]]:
    """Mean (GPR), std and count of per-record values within each group; groups with fewer
    than ``min_group_size`` records are marked ``too_small``."""
    out = {}
    for g in sorted_groups(set(labels.tolist())):
        v = values[labels == g]
        out[str(g)] = {
            "gpr": float(v.mean()),
            "std": float(v.std()),
            "n": len(v),
            "too_small": len(v) < min_group_size,
        }
    return out


def gprp(groups: dict[str, dict[str, Any]]) -> float | None:
    """max_k GPR_k - min_k GPR_k over the groups that are not too small (None if fewer than 2)."""
    vals = [v["gpr"] for v in groups.values() if not v.get("too_small", False)]
    return float(max(vals) - min(vals)) if len(vals) >= 2 else None


@dataclass
class GroupRiskResult:
    """IPR per record, GPR per group and GPRP per attribute, for PA-ALOOA and the baselines."""

    n_models: int
    ipr: np.ndarray
    ipr_heldout: np.ndarray
    audited: np.ndarray
    gpr: dict[str, dict[str, dict[str, dict[str, float]]]] = field(default_factory=dict)
    gprp: dict[str, dict[str, float | None]] = field(default_factory=dict)
    accuracy_out: float | None = None
    min_group_size: int = 1
    epsilon: float | None = None  # the game's models' (largest) epsilon when trained with DP
    null_gpr: dict[str, dict[str, dict[str, dict[str, float]]]] | None = None
    null_gprp: dict[str, dict[str, float | None]] | None = None
    accuracy_by_group: dict[str, dict[str, float]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "n_models": self.n_models,
            "n_audited": len(self.audited),
            "mean_ipr": {
                "pa_alooa": float(self.ipr.mean()),
                "pa_alooa_heldout": float(self.ipr_heldout.mean()),
            },
            "gpr": self.gpr,
            "gprp": self.gprp,
            "min_group_size": self.min_group_size,
            **(
                {}
                if self.null_gpr is None
                else {"null_gpr": self.null_gpr, "null_gprp": self.null_gprp}
            ),
            "notes": [
                "pa_alooa uses each record's oracle threshold (optimistic); pa_alooa_heldout chooses it "
                "on half of the model pairs and measures on the other half.",
                f"Groups with fewer than {self.min_group_size} audited records are marked too_small "
                "and left out of GPRP (null when fewer than two groups remain).",
                *(
                    []
                    if self.null_gpr is None
                    else [
                        "null_gpr / null_gprp: the same figures with membership swapped at random within model pairs "
                        "(no signal): the level each method reports by chance."
                    ]
                ),
            ],
        }

    def per_record(self, sensitive: pd.DataFrame | None = None) -> pd.DataFrame:
        df = pd.DataFrame({"row": self.audited, "ipr": self.ipr, "ipr_heldout": self.ipr_heldout})
        if sensitive is not None:
            df = pd.concat([df, sensitive.reset_index(drop=True)], axis=1)
        return df


def group_risk_from_scores(
    scores: np.ndarray,
    is_in: np.ndarray,
    sensitive: Any,
    *,
    intersections: bool = True,
    min_group_size: int = 30,
    null_seed: int | None = None,
) -> GroupRiskResult:
    """All figures from the game's scores [R, N] (-loss) and membership [R, N] of audited rows.

    Groups with fewer than ``min_group_size`` audited records are reported (marked
    ``too_small``) but left out of GPRP: a mean over a handful of records is noise, and the
    largest minus the smallest of several noisy means would measure the noise.

    With ``null_seed``, every GPR and GPRP is also computed with each record's membership
    swapped at random within each model pair (``null_gpr``, ``null_gprp``): what each method reports when
    membership carries no signal. Best-threshold methods are optimistic (the oracle IPR by about
    1/sqrt(R) for every record, PA-GBA by about 1/sqrt(n_k) for group k), and the null level
    shows by how much.
    """
    scores = np.asarray(scores, dtype=np.float64)
    is_in = np.asarray(is_in, dtype=bool)
    sf = normalize_sensitive(sensitive, n_rows=scores.shape[1])
    ipr = ipr_oracle(scores, is_in)
    ipr_h = ipr_heldout(scores, is_in)
    res = GroupRiskResult(scores.shape[0], ipr, ipr_h, np.arange(scores.shape[1]))
    _, thr_global = best_accuracy_per_model(scores, is_in)
    correct_global = (scores >= thr_global[:, None]) == is_in  # [R, N]
    for attr, labels in group_views(sf, intersections=intersections).items():
        names = sorted_groups(set(labels.tolist()))
        ga, gba = {}, {}
        for g in names:
            sel = labels == g
            acc_ga = correct_global[:, sel].mean(1)  # per model, at its global threshold
            acc_gba, _ = best_accuracy_per_model(scores[:, sel], is_in[:, sel])
            for out, acc in ((ga, acc_ga), (gba, acc_gba)):
                out[str(g)] = {
                    "gpr": float((2 * acc - 1).mean()),
                    "std": float((2 * acc - 1).std()),
                    "n": int(sel.sum()),
                    "too_small": int(sel.sum()) < min_group_size,
                }
        res.gpr[attr] = {
            "pa_alooa": gpr_by_group(ipr, labels, min_group_size=min_group_size),
            "pa_alooa_heldout": gpr_by_group(ipr_h, labels, min_group_size=min_group_size),
            "pa_ga": ga,
            "pa_gba": gba,
        }
        res.gprp[attr] = {method: gprp(d) for method, d in res.gpr[attr].items()}
    res.min_group_size = min_group_size
    if null_seed is not None:
        # Swap membership within each model pair (2k, 2k+1) at random, per record: this keeps
        # the game's structure (one IN per complementary pair, so both halves of the pairs
        # hold R/4 INs, which the held-out IPR relies on) and removes the signal.
        R = is_in.shape[0]
        flip = np.random.default_rng(null_seed).random((R // 2, is_in.shape[1])) < 0.5
        shuffled = is_in.copy()
        a, b = is_in[0 : R - R % 2 : 2], is_in[1 : R - R % 2 : 2]
        shuffled[0 : R - R % 2 : 2] = np.where(flip, b, a)
        shuffled[1 : R - R % 2 : 2] = np.where(flip, a, b)
        null = group_risk_from_scores(
            scores, shuffled, sf, intersections=intersections, min_group_size=min_group_size
        )
        res.null_gpr, res.null_gprp = null.gpr, null.gprp
    return res
