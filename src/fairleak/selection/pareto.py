"""Choosing a model on the Pareto front of several objectives, all minimised (pure numpy).

Candidates are rows of an objective matrix ``F`` [N, M] (e.g. error, worst fairness gap,
leakage). Spec: ``ALGORITHMS-2.md`` section 2. Sources: Deb et al. 2002 (non-dominated sorting);
Zitzler & Thiele 1998 (hypervolume) with the dimension sweep of Fonseca, Paquete & Lopez-Ibanez
2006 for three objectives; Das 1999 / Branke et al. 2004 (knee points); Miettinen 1999
(augmented Tchebycheff scalarisation, epsilon-constraint); pymoo's pseudo-weights (as mmm-fair
uses them). Written here rather than imported because pymoo / moocore would be new dependencies
for a few dozen lines, and the fronts here are small (hundreds of candidates).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from fairleak.errors import DataValidationError, ParameterError

__all__ = [
    "Choice",
    "Constraint",
    "FrontSummary",
    "bootstrap_indices",
    "constrained_choice",
    "dominance_matrix",
    "duplicate_mask",
    "front_probability",
    "hypervolume",
    "hypervolume_contributions",
    "knee_point",
    "non_dominated",
    "normalize",
    "pareto_ranks",
    "parse_constraints",
    "pseudo_weight_choice",
    "reference_point",
    "summarize_front",
    "weighted_choice",
]


def _objectives(F: Any, name: str = "F", *, finite: bool = False) -> np.ndarray:
    """``F`` as a float [N, M] array with N >= 1, M >= 1 and no NaN (+-inf allowed unless
    ``finite``)."""
    arr = np.asarray(F, dtype=np.float64)
    if arr.ndim == 1:
        raise DataValidationError(
            f"{name} must be a 2-D array [n_candidates, n_objectives]; got a 1-D array of shape "
            f"{arr.shape}. For one objective pass F.reshape(-1, 1)."
        )
    if arr.ndim != 2 or arr.shape[0] == 0 or arr.shape[1] == 0:
        raise DataValidationError(
            f"{name} must be a non-empty 2-D array [n_candidates, n_objectives]; got shape {arr.shape}."
        )
    if np.isnan(arr).any():
        rows = np.flatnonzero(np.isnan(arr).any(1))[:5].tolist()
        raise DataValidationError(
            f"{name} has NaN objective values (rows {rows}...); an undefined objective cannot be "
            "compared. Drop those candidates or replace NaN by a worst-case value."
        )
    if finite and not np.isfinite(arr).all():
        raise DataValidationError(
            f"{name} must be finite here; got infinite values in rows "
            f"{np.flatnonzero(~np.isfinite(arr).all(1))[:5].tolist()}."
        )
    return arr


# ---------------------------------------------------------------- dominance
def dominance_matrix(F: Any) -> np.ndarray:
    """``D[i, j]`` is True iff candidate i dominates j: ``F_i <= F_j`` everywhere and ``<``
    somewhere. Memory O(N^2 M): fine up to a few thousand candidates."""
    F = _objectives(F)
    le = (F[:, None, :] <= F[None, :, :]).all(-1)
    lt = (F[:, None, :] < F[None, :, :]).any(-1)
    return le & lt


def non_dominated(F: Any) -> np.ndarray:
    """Boolean mask of the candidates no other candidate dominates (identical rows all stay)."""
    return ~dominance_matrix(F).any(0)


def pareto_ranks(F: Any) -> np.ndarray:
    """Front rank by peeling: 0 for the non-dominated set, 1 for the next front, ..."""
    D = dominance_matrix(F)
    ranks = np.full(D.shape[0], -1, dtype=np.int64)
    left = np.ones(D.shape[0], dtype=bool)
    r = 0
    while left.any():
        front = left & ~(D[left].any(0))
        ranks[front] = r
        left &= ~front
        r += 1
    return ranks


def duplicate_mask(F: Any) -> np.ndarray:
    """True for candidates whose objective vector equals another candidate's."""
    F = _objectives(F)
    _, inverse, counts = np.unique(F, axis=0, return_inverse=True, return_counts=True)
    return counts[inverse.ravel()] > 1


# ---------------------------------------------------------------- hypervolume
def _reference(reference: Any, M: int) -> np.ndarray:
    r = np.asarray(reference, dtype=np.float64)
    if r.shape != (M,) or not np.isfinite(r).all():
        raise DataValidationError(
            f"reference must be {M} finite numbers (one per objective); got {reference!r}."
        )
    return r


def _hv2d(P: np.ndarray, r: np.ndarray) -> float:
    """Area dominated by points P [n, 2] (all strictly better than r) and bounded by r."""
    if len(P) == 0:
        return 0.0
    P = P[np.lexsort((P[:, 1], P[:, 0]))]
    best_f2 = np.minimum.accumulate(P[:, 1])  # staircase height after each point, by f1
    widths = np.diff(np.append(P[:, 0], r[0]))
    return float(np.sum(widths * (r[1] - best_f2)))


def hypervolume(F: Any, reference: Any) -> float:
    """Exact volume dominated by the candidates and bounded by ``reference`` (minimisation).

    One objective: ``r - min``; two: sum of the staircase rectangles (f1 ascending); three: the
    dimension sweep over f3 of two-dimensional areas, O(n^2 log n). Points that do not strictly
    dominate the reference add nothing. Volumes are comparable only under the same reference
    point and units.
    """
    F = _objectives(F, finite=True)
    M = F.shape[1]
    r = _reference(reference, M)
    P = F[(F < r).all(1)]
    if len(P) == 0:
        return 0.0
    if M == 1:
        return float(r[0] - P[:, 0].min())
    if M == 2:
        return _hv2d(P, r)
    if M == 3:
        P = P[np.argsort(P[:, 2], kind="stable")]
        heights = np.diff(np.append(P[:, 2], r[2]))
        return float(sum(h * _hv2d(P[: k + 1, :2], r[:2]) for k, h in enumerate(heights) if h > 0))
    raise ParameterError(
        f"Exact hypervolume is implemented for 1, 2 and 3 objectives; got {M}. Select at most "
        "three objectives (e.g. error, worst gap, leakage)."
    )


def hypervolume_contributions(F: Any, reference: Any) -> np.ndarray:
    """Exclusive contribution of each candidate: ``HV(all) - HV(all but i)`` (0 if dominated
    or duplicated)."""
    F = _objectives(F, finite=True)
    total = hypervolume(F, reference)
    keep = np.ones(len(F), dtype=bool)
    out = np.zeros(len(F))
    for i in range(len(F)):
        keep[i] = False
        out[i] = total - hypervolume(F[keep], reference) if keep.any() else total
        keep[i] = True
    return np.maximum(out, 0.0)


def reference_point(F: Any, *, margin: float = 0.1) -> np.ndarray:
    """A reference point just beyond the front's nadir: ``nadir + margin * (nadir - ideal)``
    per objective (``margin * max(|nadir|, 1)`` where the front's range is 0), so that every
    front point contributes volume.

    For raw units that stay comparable across runs, pass a fixed point instead, e.g. (error of
    the constant majority predictor, 1.0, 0.5) for (error, gap, AUC - 0.5).
    """
    if not (isinstance(margin, int | float) and math.isfinite(margin) and margin > 0):
        raise ParameterError(f"margin must be a positive number; got {margin!r}.")
    F = _objectives(F, finite=True)
    front = F[non_dominated(F)]
    ideal, nadir = front.min(0), front.max(0)
    span = nadir - ideal
    return nadir + margin * np.where(span > 0, span, np.maximum(np.abs(nadir), 1.0))


# ---------------------------------------------------------------- choosing one
def normalize(F: Any, *, ideal: Any = None, nadir: Any = None) -> np.ndarray:
    """``(F - ideal) / (nadir - ideal)`` with the front's ideal and nadir by default; an
    objective whose range is 0 becomes 0 everywhere (pymoo divides by zero there)."""
    F = _objectives(F, finite=True)
    front = F[non_dominated(F)]
    lo = front.min(0) if ideal is None else np.asarray(ideal, dtype=np.float64)
    hi = front.max(0) if nadir is None else np.asarray(nadir, dtype=np.float64)
    span = hi - lo
    safe = np.where(span > 0, span, 1.0)
    return np.where(span > 0, (F - lo) / safe, 0.0)


def knee_point(F: Any) -> int:
    """Index of the knee of the front: in normalised units, the non-dominated point farthest
    on the ideal side of the hyperplane through the M extreme points (the line through the two
    extremes for two objectives); the point closest to the ideal if that plane is degenerate
    or no point lies beyond it. Ties: lowest index."""
    F = _objectives(F, finite=True)
    idx = np.flatnonzero(non_dominated(F))
    Z = normalize(F)[idx]
    active = np.ptp(Z, axis=0) > 0
    if len(idx) == 1 or not active.any():
        return int(idx[0])
    Za = Z[:, active]
    # Extreme point of axis m: the achievement-scalarising minimiser with weight 1 on m and
    # 1e-6 elsewhere (as pymoo / NSGA-III find them), i.e. the point best in all other axes.
    k = Za.shape[1]
    w = np.full((k, k), 1e-6) + np.eye(k) * (1 - 1e-6)
    ext = [int(np.argmin((Za / w[m]).max(1))) for m in range(k)]
    E = Za[ext]
    fallback = int(idx[np.argmin(np.linalg.norm(Z, axis=1))])
    if k < 2 or len(set(ext)) < k or abs(np.linalg.det(E)) < 1e-12:
        return fallback
    normal = np.linalg.solve(E, np.ones(k))  # plane: normal . z = 1
    dist = (1.0 - Za @ normal) / np.linalg.norm(normal)
    if dist.max() <= 1e-12:
        return fallback
    return int(idx[np.argmax(dist)])


def _weights(weights: Any, M: int) -> np.ndarray:
    w = np.asarray(weights, dtype=np.float64)
    if w.shape != (M,) or not np.isfinite(w).all() or (w < 0).any() or w.sum() <= 0:
        raise ParameterError(
            f"weights must be {M} non-negative numbers (one per objective) with a positive sum; "
            f"got {weights!r}."
        )
    return w / w.sum()


def weighted_choice(F: Any, weights: Any, *, rho: float = 1e-4) -> int:
    """Index minimising the augmented Tchebycheff function of the normalised objectives,
    ``max_m w_m f~_m + rho sum_m w_m f~_m`` (Miettinen 1999), over the non-dominated points.
    ``weights`` express how much each objective matters (normalised to sum 1)."""
    F = _objectives(F, finite=True)
    w = _weights(weights, F.shape[1])
    idx = np.flatnonzero(non_dominated(F))
    Z = normalize(F)[idx] * w
    score = Z.max(1) + rho * Z.sum(1)
    return int(idx[np.argmin(score)])


def pseudo_weight_choice(F: Any, preference: Any) -> int:
    """Index whose pymoo pseudo-weights ``((nadir - f) / (nadir - ideal))``, row-normalised,
    are closest (L1) to ``preference`` (mmm-fair's rule, over the non-dominated points)."""
    F = _objectives(F, finite=True)
    w = _weights(preference, F.shape[1])
    idx = np.flatnonzero(non_dominated(F))
    front = F[idx]
    span = np.ptp(front, axis=0)
    active = span > 0
    if not active.any():
        return int(idx[0])
    pw = (front.max(0)[active] - front[:, active]) / span[active]
    tot = pw.sum(1, keepdims=True)
    pw = np.divide(pw, tot, out=np.full(pw.shape, 1.0 / active.sum()), where=tot > 0)
    target = w[active] / w[active].sum()
    return int(idx[np.argmin(np.abs(pw - target).sum(1))])


_OPS = ("<=", ">=", "<", ">")
_CONSTRAINT = re.compile(
    r"^\s*(?P<name>[A-Za-z_][\w.*/\[\]-]*)\s*(?P<op><=|>=|<|>)\s*"
    r"(?P<bound>[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?|[-+]?inf)\s*$"
)


@dataclass(frozen=True)
class Constraint:
    """``name op bound``, e.g. ``dp_gap <= 0.05``."""

    name: str
    op: str
    bound: float

    def satisfied(self, values: np.ndarray) -> np.ndarray:
        v = np.asarray(values, dtype=np.float64)
        return {"<=": v <= self.bound, "<": v < self.bound, ">=": v >= self.bound,
                ">": v > self.bound}[self.op]  # fmt: skip

    def violation(self, values: np.ndarray) -> np.ndarray:
        """How far each value is on the wrong side of the bound (0 when satisfied)."""
        v = np.asarray(values, dtype=np.float64)
        with np.errstate(invalid="ignore"):
            gap = v - self.bound if self.op in ("<=", "<") else self.bound - v
        gap = np.where(np.isnan(gap), np.inf, gap)
        return np.where(self.satisfied(v), 0.0, np.maximum(gap, 0.0))

    def __str__(self) -> str:
        return f"{self.name} {self.op} {self.bound:g}"


def parse_constraints(text: str | Sequence[str]) -> list[Constraint]:
    """Read ``"dp_gap <= 0.05, epsilon <= 8"`` (comma- or semicolon-separated, or a list)."""
    parts = re.split(r"[,;]", text) if isinstance(text, str) else list(text)
    out = []
    for part in parts:
        if not str(part).strip():
            continue
        m = _CONSTRAINT.match(str(part))
        if m is None:
            raise ParameterError(
                f"Cannot read the constraint {str(part).strip()!r}: write NAME OP NUMBER with OP "
                "one of <=, <, >=, >, e.g. 'dp_gap <= 0.05, epsilon <= 8'."
            )
        out.append(Constraint(m["name"], m["op"], float(m["bound"])))
    if not out:
        raise ParameterError(f"No constraint found in {text!r}; e.g. 'dp_gap <= 0.05'.")
    return out


@dataclass(frozen=True)
class Choice:
    """The chosen candidate and why: ``feasible`` False means no candidate met every constraint
    and ``index`` is the least-violating one (``violation`` = its normalised total)."""

    index: int
    feasible: bool
    violation: float
    rule: str
    n_feasible: int = 0
    notes: list[str] = field(default_factory=list)


def constrained_choice(
    values: Mapping[str, Any],
    constraints: str | Sequence[Constraint | str],
    *,
    minimize: str,
) -> Choice:
    """Epsilon-constraint choice: the candidate with the lowest ``values[minimize]`` among those
    meeting every constraint (ties: lowest index). ``values`` maps names to one number per
    candidate (a DataFrame works); constraints may name columns that are not objectives (e.g.
    the accountant's epsilon, ``inf`` for non-private models). If none is feasible, the
    candidate with the smallest total violation, each constraint's violation divided by the
    finite range of its column, is returned with ``feasible=False``."""
    cons = (
        parse_constraints(constraints)
        if isinstance(constraints, str)
        else [c if isinstance(c, Constraint) else parse_constraints(c)[0] for c in constraints]
    )
    names = list(values.keys())
    for name in [minimize, *(c.name for c in cons)]:
        if name not in names:
            raise ParameterError(f"Unknown column {name!r} in the choice; available: {names}.")
    objective = np.asarray(values[minimize], dtype=np.float64)
    if objective.ndim != 1 or len(objective) == 0:
        raise DataValidationError(f"values[{minimize!r}] must be one number per candidate.")
    n = len(objective)
    if np.isnan(objective).any():
        raise DataValidationError(f"values[{minimize!r}] has NaN; cannot rank candidates by it.")
    total = np.zeros(n)
    feasible = np.ones(n, dtype=bool)
    for c in cons:
        col = np.asarray(values[c.name], dtype=np.float64)
        if col.shape != (n,):
            raise DataValidationError(
                f"values[{c.name!r}] has shape {col.shape}; expected one number per candidate ({n})."
            )
        feasible &= c.satisfied(col)
        fin = col[np.isfinite(col)]
        scale = float(np.ptp(fin)) if len(fin) > 1 and np.ptp(fin) > 0 else 1.0
        total = total + c.violation(col) / scale
    rule = f"minimise {minimize} subject to " + ", ".join(str(c) for c in cons)
    if feasible.any():
        cand = np.flatnonzero(feasible)
        best = int(cand[np.argmin(objective[cand])])
        return Choice(best, True, 0.0, rule, int(feasible.sum()))
    order = np.lexsort((objective, total))
    best = int(order[0])
    return Choice(
        best, False, float(total[best]), rule, 0,
        [f"No candidate meets every constraint; candidate {best} violates them least."],
    )  # fmt: skip


# ---------------------------------------------------------------- uncertainty
def bootstrap_indices(
    n_rows: int, n_bootstrap: int, *, seed: int, strata: Any = None
) -> np.ndarray:
    """Row indices of ``n_bootstrap`` resamples with replacement [B, n_rows]; with ``strata``
    (e.g. group x label), each stratum is resampled within itself (its size is kept)."""
    if not isinstance(n_rows, int | np.integer) or n_rows < 1:
        raise ParameterError(f"n_rows must be a positive int; got {n_rows!r}.")
    if not isinstance(n_bootstrap, int | np.integer) or n_bootstrap < 1:
        raise ParameterError(f"n_bootstrap must be a positive int; got {n_bootstrap!r}.")
    rng = np.random.default_rng(seed)
    if strata is None:
        return rng.integers(0, n_rows, size=(n_bootstrap, n_rows))
    s = np.asarray(strata)
    if s.shape != (n_rows,):
        raise DataValidationError(f"strata must have one value per row ({n_rows}); got {s.shape}.")
    out = np.empty((n_bootstrap, n_rows), dtype=np.int64)
    for value in np.unique(s):
        rows = np.flatnonzero(s == value)
        out[:, rows] = rows[rng.integers(0, len(rows), size=(n_bootstrap, len(rows)))]
    return out


def front_probability(F_resampled: Any) -> np.ndarray:
    """Share of resamples in which each candidate is non-dominated, from objective estimates
    recomputed on B resamples of the evaluation rows: ``F_resampled`` [B, N, M].
    Candidates at >= 0.8 are "robustly on the front" (ALGORITHMS-2 section 2)."""
    arr = np.asarray(F_resampled, dtype=np.float64)
    if arr.ndim != 3 or 0 in arr.shape:
        raise DataValidationError(
            "F_resampled must be a 3-D array [n_resamples, n_candidates, n_objectives]; "
            f"got shape {arr.shape}."
        )
    return np.mean([non_dominated(arr[b]) for b in range(arr.shape[0])], axis=0)


# ---------------------------------------------------------------- summary
@dataclass
class FrontSummary:
    """Everything a report needs about one set of candidates (JSON-able via :meth:`to_dict`)."""

    objectives: list[str]
    front: list[int]
    ranks: list[int]
    duplicates: list[int]
    reference_point: list[float]
    hypervolume: float
    contributions: list[float]
    knee: int

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def summarize_front(
    F: Any, *, objectives: Sequence[str] | None = None, reference: Any = None
) -> FrontSummary:
    """Front, ranks, duplicates, hypervolume (reference: :func:`reference_point` unless given),
    each candidate's exclusive contribution and the knee, for up to three objectives."""
    F = _objectives(F, finite=True)
    names = [f"f{m + 1}" for m in range(F.shape[1])] if objectives is None else list(objectives)
    if len(names) != F.shape[1]:
        raise DataValidationError(
            f"objectives names {names} do not match the {F.shape[1]} columns of F."
        )
    r = reference_point(F) if reference is None else _reference(reference, F.shape[1])
    return FrontSummary(
        objectives=names,
        front=np.flatnonzero(non_dominated(F)).tolist(),
        ranks=pareto_ranks(F).tolist(),
        duplicates=np.flatnonzero(duplicate_mask(F)).tolist(),
        reference_point=r.tolist(),
        hypervolume=hypervolume(F, r),
        contributions=hypervolume_contributions(F, r).tolist(),
        knee=knee_point(F),
    )
