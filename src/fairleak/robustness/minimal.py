"""The smallest change to a record that flips a model's decision, record by record.

Within a :class:`~fairleak.robustness.PerturbationSpace` (numeric coordinates move, clipped to
their reference range; protected and immutable columns stay; one-hot blocks change only as a
whole, to another valid category), in L2 or L-inf on the encoded record:

- :func:`exact_linear`: linear models in closed form, ``|f(x)| / ||w ⊙ m||_2`` (L2) and
  ``|f(x)| / ||w ⊙ m||_1`` (L-inf); flagged where the minimiser leaves the numeric range (there
  the figure is a lower bound of the range-constrained one);
- :func:`deepfool`: binary DeepFool (Moosavi-Dezfooli et al. 2016) on any differentiable margin;
- :func:`pgd_minimal`: PGD (Madry et al. 2018) with a bisection on the budget, L2 or L-inf;
- :func:`boundary_search`: decision-based, for any model with ``predict`` (a HopSkipJump-style
  search, Chen et al. 2020): start from an adversarial point, bisect to the boundary, estimate the
  boundary's normal from decisions around it, step, bisect again.

Every reported distance belongs to a point the model was checked to classify differently, so the
attacks give upper bounds of the true minimum (the exact figure for linear models); each result
is refined by bisection on the segment from the record to its flipped point. Written here rather
than taken from ART: ART's attacks clip every feature to one box, do not know one-hot blocks,
and loop over records in Python; these run all records at once (ART is a test-time cross-check).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import torch

from fairleak.errors import DataValidationError
from fairleak.robustness.models import (
    Decision,
    Margin,
    decision_function_of,
    linear_margin,
    torch_margin,
)
from fairleak.robustness.space import Norm, PerturbationSpace, norm_of

__all__ = [
    "MinimalPerturbation",
    "boundary_search",
    "deepfool",
    "exact_linear",
    "minimal_perturbation",
    "pgd_minimal",
]

Method = Literal["auto", "exact", "deepfool", "pgd", "boundary"]


@dataclass
class MinimalPerturbation:
    """Per record: ``distance`` (inf where no flip was found), the flipped point ``x_adv`` (the
    record itself where none), ``category_change`` (index of the one-hot block changed, -1 for
    none), ``bound_active`` (exact linear only: the unconstrained minimiser leaves the numeric
    range, so the figure is a lower bound), the ``method``, ``norm`` and decision ``queries``."""

    distance: np.ndarray
    x_adv: np.ndarray
    method: str
    norm: Norm
    category_change: np.ndarray
    bound_active: np.ndarray | None = None
    queries: int = 0

    @property
    def flipped(self) -> np.ndarray:
        return np.isfinite(self.distance)


def _result(X: np.ndarray, method: str, norm: Norm) -> MinimalPerturbation:
    n = len(X)
    return MinimalPerturbation(np.full(n, np.inf), X.copy(), method, norm, np.full(n, -1, np.int64))


# ------------------------------------------------------------------ linear: exact
def exact_linear(
    w: np.ndarray, b: float, X: np.ndarray, space: PerturbationSpace, *, norm: Norm = "l2"
) -> MinimalPerturbation:
    """Closed-form minimal distance of a linear margin ``f(x) = w·x + b`` (numeric coordinates)."""
    X = space.check(X)
    w = np.asarray(w, dtype=np.float64).reshape(-1)
    if len(w) != space.n_features:
        raise DataValidationError(f"w has {len(w)} weights; the records have {space.n_features} features.")
    f = X.astype(np.float64) @ w + float(b)
    wm = w * space.mask
    res = _result(X, "exact", norm)
    if norm == "l2":
        scale = float(wm @ wm)
        dist = np.abs(f) / np.sqrt(scale) if scale > 0 else np.full(len(X), np.inf)
        step = -np.outer(f / max(scale, 1e-300), wm)
    else:
        l1 = float(np.abs(wm).sum())
        dist = np.abs(f) / l1 if l1 > 0 else np.full(len(X), np.inf)
        step = -np.outer(np.sign(f) * dist, np.sign(wm))
    dist = np.where(f == 0, 0.0, dist)
    ok = np.isfinite(dist)
    x_adv = X.astype(np.float64) + step
    res.distance = dist
    res.x_adv = np.where(ok[:, None], x_adv, X).astype(np.float32)
    # the float32 point a hair past the boundary, so that it really is classified the other way
    push = -np.sign(np.where(f == 0, 1.0, f))[:, None] * np.sign(wm)[None, :]
    for k in range(12):
        # checked in float64 and float32 (scikit-learn scores float32 input in float32)
        side = res.x_adv.astype(np.float64) @ w + float(b)
        side32 = res.x_adv @ w.astype(np.float32) + np.float32(b)
        bad = ok & (((side > 0) == (f > 0)) | ((side32 > 0) == (f > 0)) | (side32 == 0))
        if not bad.any():
            break
        res.x_adv[bad] = (x_adv[bad] + push[bad] * (1e-7 * 4.0**k) * (1 + np.abs(x_adv[bad]))).astype(np.float32)
    inside = np.isclose(space.clip(x_adv), x_adv, rtol=0, atol=1e-9).all(axis=1)
    res.bound_active = ok & ~inside
    return res


# ------------------------------------------------------------------ helpers
def _signs(margin: Margin, X: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        f = margin(torch.as_tensor(X)).numpy()
    return np.where(f > 0, 1.0, -1.0)


def _refine_segment(
    flips: Any, X: np.ndarray, x_adv: np.ndarray, ok: np.ndarray, steps: int, clip: Any
) -> tuple[np.ndarray, int]:
    """Move each flipped point toward its record along the segment while it stays flipped
    (bisection on t in [0, 1]; ``flips(points, idx)`` says which points are flipped)."""
    idx = np.flatnonzero(ok)
    if not len(idx) or steps <= 0:
        return x_adv, 0
    lo, hi = np.zeros(len(idx)), np.ones(len(idx))
    x0, d = X[idx].astype(np.float64), (x_adv[idx] - X[idx]).astype(np.float64)
    for _ in range(steps):
        mid = (lo + hi) / 2
        pts = (x0 + mid[:, None] * d).astype(np.float32)
        f = flips(pts, idx)
        hi = np.where(f, mid, hi)
        lo = np.where(f, lo, mid)
    out = x_adv.copy()
    # a relative 1e-4 past the bisected crossing, so that the point stays flipped under another
    # float32 evaluation of the same model (scikit-learn's, ONNX's); the old point where not
    t = hi * (1 + 1e-4) + 1e-6
    out[idx] = clip(x0 + t[:, None] * d).astype(np.float32)
    bad = ~flips(out[idx], idx)
    out[idx[bad]] = x_adv[idx[bad]]
    return out, steps * len(idx)


def _margin_flips(margin: Margin, sign: np.ndarray) -> Any:
    def flips(pts: np.ndarray, idx: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            f = margin(torch.as_tensor(pts)).numpy()
        return (np.where(f > 0, 1.0, -1.0) != sign[idx])

    return flips


def _finish(
    res: MinimalPerturbation, X: np.ndarray, x_adv: np.ndarray, ok: np.ndarray, flips: Any,
    refine: int, space: PerturbationSpace,
) -> MinimalPerturbation:
    x_adv, q = _refine_segment(flips, X, x_adv, ok, refine, space.clip)
    res.x_adv = np.where(ok[:, None], x_adv, X).astype(np.float32)
    res.distance = np.where(ok, norm_of(res.x_adv.astype(np.float64) - X, res.norm), np.inf)
    res.queries += q
    return res


# ------------------------------------------------------------------ DeepFool
def deepfool(
    margin: Margin, X: np.ndarray, space: PerturbationSpace, *, max_iter: int = 50,
    overshoot: float = 0.02, refine: int = 20,
) -> MinimalPerturbation:  # fmt: skip
    """Binary DeepFool in L2: ``x <- x - (1 + overshoot) f(x) (g ⊙ m) / ||g ⊙ m||²`` until the
    decision flips (at most ``max_iter`` steps), numeric range enforced after each step."""
    X = space.check(X)
    sign = _signs(margin, X)
    m = torch.as_tensor(space.mask)
    x = torch.as_tensor(X).clone()
    active = torch.ones(len(X), dtype=torch.bool)
    res = _result(X, "deepfool", "l2")
    for _ in range(max_iter):
        if not active.any():
            break
        xa = x[active].clone().requires_grad_(True)
        f = margin(xa)
        (g,) = torch.autograd.grad(f.sum(), xa)
        s = torch.as_tensor(sign)[active].to(f.dtype)
        done = (f.detach() > 0) != (s > 0)
        g = g * m
        gn = (g * g).sum(1).clamp_min(1e-12)
        step = -(1 + overshoot) * (f.detach() / gn)[:, None] * g
        nxt = xa.detach() + torch.where(done[:, None], torch.zeros_like(step), step)
        nxt = torch.as_tensor(space.clip(nxt.numpy()))
        ids = torch.nonzero(active).reshape(-1)
        x[ids] = nxt
        active[ids[done]] = False
        res.queries += len(ids)
    x_adv = x.numpy()
    ok = _signs(margin, x_adv) != sign
    return _finish(res, X, x_adv, ok, _margin_flips(margin, sign), refine, space)


# ------------------------------------------------------------------ PGD + bisection
def _project(delta: torch.Tensor, eps: torch.Tensor, norm: Norm) -> torch.Tensor:
    if norm == "l2":
        n = delta.norm(dim=1).clamp_min(1e-12)
        return delta * torch.clamp(eps / n, max=1.0)[:, None]
    return torch.maximum(torch.minimum(delta, eps[:, None]), -eps[:, None])


def _pgd_run(
    margin: Margin, x0: torch.Tensor, sign: torch.Tensor, eps: torch.Tensor, space: PerturbationSpace,
    norm: Norm, steps: int, gen: torch.Generator, random_start: bool,
) -> tuple[torch.Tensor, torch.Tensor]:  # fmt: skip
    """One PGD attack at per-record budgets ``eps``; returns (flipped?, smallest flipped point)."""
    m = torch.as_tensor(space.mask)
    lo = torch.as_tensor(space.lower if space.lower is not None else np.full(space.n_features, -np.inf), dtype=x0.dtype)
    hi = torch.as_tensor(space.upper if space.upper is not None else np.full(space.n_features, np.inf), dtype=x0.dtype)
    # a start at the record itself, or a random one in the ball (mutable coordinates only)
    if not random_start:
        delta = torch.zeros_like(x0)
    elif norm == "l2":
        u = torch.randn(x0.shape, generator=gen) * m
        u = u / u.norm(dim=1, keepdim=True).clamp_min(1e-12)
        r = torch.rand(len(x0), generator=gen) ** (1.0 / max(int(m.sum()), 1))
        delta = u * (eps * r)[:, None]
    else:
        delta = (torch.rand(x0.shape, generator=gen) * 2 - 1) * eps[:, None] * m
    alpha = 2.5 * eps / steps
    best = x0.clone()
    best_n = torch.full((len(x0),), float("inf"), dtype=torch.float64)
    for _ in range(steps + 1):
        delta = torch.clamp(x0 + delta, lo, hi) - x0
        xa = (x0 + delta).requires_grad_(True)
        f = margin(xa)
        fl = (f.detach() > 0) != (sign > 0)
        n = (delta.norm(dim=1) if norm == "l2" else delta.abs().amax(dim=1)).double()
        better = fl & (n < best_n)
        best[better] = xa.detach()[better]
        best_n[better] = n[better]
        (g,) = torch.autograd.grad((f * sign).sum(), xa)
        g = g * m
        if norm == "l2":
            g = g / g.norm(dim=1, keepdim=True).clamp_min(1e-12)
            delta = delta - alpha[:, None] * g
        else:
            delta = delta - alpha[:, None] * torch.sign(g)
        delta = _project(delta, eps, norm)
    return torch.isfinite(best_n), best


def pgd_minimal(
    margin: Margin, X: np.ndarray, space: PerturbationSpace, *, norm: Norm = "linf",
    steps: int = 20, bisection: int = 8, random_starts: int = 1, max_doublings: int = 8,
    seed: int = 0, refine: int = 20,
) -> MinimalPerturbation:  # fmt: skip
    """Smallest budget at which PGD flips each record: from twice the first-order estimate
    ``|f| / ||g ⊙ m||_*`` (dual norm), doubled until PGD flips the record (at most
    ``max_doublings`` times), then ``bisection`` halvings of the bracket. At each budget,
    ``steps`` PGD steps of size 2.5 ε / steps from the record itself and from ``random_starts``
    random points of the ball. Records never flipped: inf."""
    X = space.check(X)
    sign_np = _signs(margin, X)
    sign = torch.as_tensor(sign_np, dtype=torch.float32)
    x0 = torch.as_tensor(X)
    gen = torch.Generator().manual_seed(int(seed))
    res = _result(X, "pgd", norm)
    n = len(X)
    xg = x0.clone().requires_grad_(True)
    f0 = margin(xg)
    (g0,) = torch.autograd.grad(f0.sum(), xg)
    g0 = (g0 * torch.as_tensor(space.mask)).double()
    dual = g0.norm(dim=1) if norm == "l2" else g0.abs().sum(dim=1)
    est = f0.detach().double().abs() / dual.clamp_min(1e-12)
    lo = torch.zeros(n, dtype=torch.float32)
    hi = (2 * est).clamp(1e-4, 1e3).float()
    found = torch.zeros(n, dtype=torch.bool)
    best = x0.clone()
    best_n = torch.full((n,), float("inf"), dtype=torch.float64)

    def attempt(eps: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
        any_ok = torch.zeros(len(rows), dtype=torch.bool)
        for start in range(1 + random_starts):
            ok, pts = _pgd_run(margin, x0[rows], sign[rows], eps[rows], space, norm, steps, gen,
                               random_start=start > 0)  # fmt: skip
            res.queries += len(rows) * (steps + 1)
            dn = norm_of(pts.numpy().astype(np.float64) - X[rows.numpy()], norm)
            dn_t = torch.as_tensor(np.where(ok.numpy(), dn, np.inf))
            imp = dn_t < best_n[rows]
            best[rows[imp]] = pts[imp]
            best_n[rows[imp]] = dn_t[imp]
            any_ok |= ok
        return any_ok

    rows = torch.arange(n)
    for _ in range(max_doublings + 1):
        todo = rows[~found]
        if not len(todo):
            break
        ok = attempt(hi, todo)
        found[todo[ok]] = True
        lo[todo[~ok]] = hi[todo[~ok]]
        hi[todo[~ok]] *= 2
    hi = torch.minimum(hi, best_n.float())
    for _ in range(bisection):
        todo = rows[found]
        if not len(todo):
            break
        mid = (lo + hi) / 2
        ok = attempt(mid, todo)
        hi[todo[ok]] = mid[todo[ok]]
        lo[todo[~ok]] = mid[todo[~ok]]
    ok_np = torch.isfinite(best_n).numpy()
    return _finish(res, X, best.numpy(), ok_np, _margin_flips(margin, sign_np), refine, space)


# ------------------------------------------------------------------ decision-based search
def _blend(x: np.ndarray, xa: np.ndarray, t: np.ndarray, norm: Norm, dist_inf: np.ndarray) -> np.ndarray:
    """Points between records and adversarial points: the segment (L2), or the L-inf ball of
    radius t·||xa - x||_inf around x clipped onto xa (HopSkipJump's L-inf projection)."""
    if norm == "l2":
        return (x + t[:, None] * (xa - x)).astype(np.float32)
    r = (t * dist_inf)[:, None]
    return np.clip(xa, x - r, x + r).astype(np.float32)


def _bisect_boundary(
    flips: Any, x: np.ndarray, xa: np.ndarray, idx: np.ndarray, norm: Norm, rounds: int,
    points: int = 4,
) -> tuple[np.ndarray, int]:
    """The point nearest the record on the path from it to ``xa`` that is still flipped: per
    round, ``points - 1`` inner points of the current bracket in one batched model call (the
    bracket shrinks ``points``-fold; ``points=2`` is bisection: fewer queries, more calls)."""
    dinf = np.abs(xa - x).max(axis=1)
    n = len(x)
    lo, hi = np.zeros(n), np.ones(n)
    frac = np.arange(1, points) / points
    rr = np.arange(n)
    for _ in range(rounds):
        t = lo[:, None] + (hi - lo)[:, None] * frac[None, :]  # [n, points - 1], inside (lo, hi)
        pts = np.concatenate([_blend(x, xa, t[:, k], norm, dinf) for k in range(points - 1)])
        f = flips(pts, np.tile(idx, points - 1)).reshape(points - 1, n).T
        t = np.concatenate([t, hi[:, None]], axis=1)  # hi is flipped
        f = np.concatenate([f, np.ones((n, 1), dtype=bool)], axis=1)
        first = f.argmax(1)
        new_lo = np.where(first > 0, t[rr, np.maximum(first - 1, 0)], lo)
        hi, lo = t[rr, first], new_lo
    return _blend(x, xa, hi, norm, dinf), rounds * (points - 1) * n


def boundary_search(
    predict: Decision, X: np.ndarray, space: PerturbationSpace, *, norm: Norm = "l2",
    pool: np.ndarray | None = None, iterations: int = 25, directions: int = 40,
    init_tries: int = 20, bisection: int = 5, step_tries: int = 6, seed: int = 0,
) -> MinimalPerturbation:  # fmt: skip
    """Decision-based minimal perturbation for any model (only its decisions are used).

    Start: the nearest flipped point among ``init_tries`` candidates per record (the record with
    its mutable numeric coordinates taken from ``pool`` rows the model classifies the other
    way, and Gaussian draws of growing scale). Then ``iterations`` rounds of: search back toward
    the record for the boundary (``bisection`` rounds of 3 points: resolution 4^-k of the
    segment), estimate the boundary's normal from the decisions at ``directions`` random nearby
    points, step along it (the longest of ``step_tries`` halving steps that stays flipped), keep
    the point if it is closer. Every stage is one batched call of the model per round, whatever
    the number of records.
    """
    X = space.check(X)
    rng = np.random.default_rng(seed)
    n, D = X.shape
    res = _result(X, "boundary", norm)
    m = space.mask.astype(bool)
    if not m.any():
        return res
    y0 = np.asarray(predict(X, np.arange(n))).astype(np.int8)
    queries = n

    def flips(pts: np.ndarray, idx: np.ndarray) -> np.ndarray:
        return np.asarray(predict(space.clip(pts), idx)).astype(np.int8) != y0[idx]

    # ---- initial adversarial points
    best = X.copy()
    best_d = np.full(n, np.inf)
    sd = 1.0
    src = pool if pool is not None and len(pool) else X
    y_src = np.asarray(predict(src, None)).astype(np.int8) if src is not X else y0
    queries += len(src) if src is not X else 0
    cands = []
    for t in range(init_tries):
        cand = X.copy()
        if t % 2 == 0:  # transplant a pool row of the other decision (mutable coordinates)
            pick = np.empty(n, dtype=np.int64)
            for c in (0, 1):
                rows = np.flatnonzero(y0 == c)
                other = np.flatnonzero(y_src != c)
                if len(other):
                    pick[rows] = rng.choice(other, len(rows))
                else:
                    pick[rows] = rng.integers(0, len(src), len(rows))
            cand[:, m] = src[pick][:, m]
        else:  # Gaussian draws of growing scale
            scale = sd * 2.0 ** (t // 2 - 2)
            cand[:, m] += (rng.standard_normal((n, int(m.sum()))) * scale).astype(np.float32)
        cands.append(space.clip(cand))
    every = np.concatenate(cands)
    f_all = flips(every, np.tile(np.arange(n), init_tries)).reshape(init_tries, n)
    queries += n * init_tries
    for t, cand in enumerate(cands):
        d = norm_of(cand.astype(np.float64) - X, norm)
        better = f_all[t] & (d < best_d)
        best[better], best_d[better] = cand[better], d[better]
    ok = np.isfinite(best_d)
    idx = np.flatnonzero(ok)
    if not len(idx):
        res.queries = queries
        return res
    x, xa = X[idx], best[idx]
    xa, q = _bisect_boundary(flips, x, xa, idx, norm, bisection)
    queries += q
    d = norm_of(xa.astype(np.float64) - x, norm)
    k = int(m.sum())
    for it in range(iterations):
        # normal of the boundary at xa, from decisions at nearby points (baseline-subtracted)
        delta = np.maximum(d, 1e-4) * 0.02  # probe radius: a small fraction of the distance
        u = rng.standard_normal((len(idx), directions, k))
        u /= np.linalg.norm(u, axis=2, keepdims=True)
        probe = np.repeat(xa[:, None, :], directions, axis=1)
        probe[:, :, m] += (delta[:, None, None] * u).astype(np.float32)
        phi = flips(probe.reshape(-1, D), np.repeat(idx, directions)).reshape(len(idx), directions)
        queries += len(idx) * directions
        phi = np.where(phi, 1.0, -1.0)
        phi = phi - phi.mean(axis=1, keepdims=True)
        g = np.einsum("nb,nbk->nk", phi, u)
        if norm == "linf":
            g = np.sign(g)
        gn = np.linalg.norm(g, axis=1, keepdims=True)
        g = np.where(gn > 0, g / np.maximum(gn, 1e-12), 0.0)
        # geometric step search along the normal: the longest of d/sqrt(it+1) / 2^k that stays
        # on the flipped side (all tried in one call)
        xi0 = d / np.sqrt(it + 1)
        steps = []
        for h in range(step_tries):
            step = xa.copy()
            step[:, m] += ((xi0 / 2**h)[:, None] * g).astype(np.float32)
            steps.append(space.clip(step))
        f = flips(np.concatenate(steps), np.tile(idx, step_tries)).reshape(step_tries, len(idx))
        queries += step_tries * len(idx)
        first = np.where(f.any(0), f.argmax(0), -1)
        cand = xa.copy()
        for h in range(step_tries):
            take = first == h
            cand[take] = steps[h][take]
        new, q = _bisect_boundary(flips, x, cand, idx, norm, bisection)
        queries += q
        nd = norm_of(new.astype(np.float64) - x, norm)
        imp = nd < d
        xa[imp], d[imp] = new[imp], nd[imp]
    best[idx] = xa
    res.queries = queries
    return _finish(res, X, best, ok, flips, 0, space)


# ------------------------------------------------------------------ dispatch
def minimal_perturbation(
    model: Any, X: np.ndarray, space: PerturbationSpace | None = None, *, norm: Norm = "l2",
    method: Method = "auto", categorical: Literal["fixed", "swap"] = "fixed",
    decode: Any = None, member: int = 0, seed: int = 0, **options: Any,
) -> MinimalPerturbation:  # fmt: skip
    """Minimal decision-flipping perturbation of every record of ``X`` (encoded) for ``model``.

    ``method="auto"``: exact for linear models, DeepFool (L2; PGD for the records it does not
    flip) or PGD (L-inf) for differentiable ones (fairleak ensembles, ``FairleakClassifier``, torch modules), the decision-based
    boundary search for anything else (``decode(X, rows)`` maps encoded rows to its input;
    ``rows``: the record of ``X`` each derives from, or None).
    ``categorical="swap"`` also tries every single change of a mutable one-hot block to another
    valid category, then the numeric attack from there; the distance of a combination is the
    norm of the whole change (a swap costs sqrt(2) in L2, 1 in L-inf). ``options`` go to the
    routine (e.g. ``steps``, ``iterations``, ``pool``).
    """
    if norm not in ("l2", "linf"):
        raise DataValidationError(f"norm must be 'l2' or 'linf'; got {norm!r}.")
    X = np.asarray(X, dtype=np.float32)
    space = space or PerturbationSpace.all_numeric(X.shape[1])
    X = space.check(X)
    lin = linear_margin(model, member) if decode is None and method in ("auto", "exact") else None
    marg = torch_margin(model, member) if decode is None and method != "boundary" else None
    if method == "exact" and lin is None:
        raise DataValidationError(f"method='exact' needs a linear model; {type(model).__name__} is not one.")
    if method in ("deepfool", "pgd") and marg is None:
        raise DataValidationError(
            f"method='{method}' needs a differentiable torch model; {type(model).__name__} is not "
            "one (use method='boundary')."
        )
    if method == "deepfool" and norm != "l2":
        raise DataValidationError("DeepFool measures L2 distances; use method='pgd' for 'linf'.")

    def run(rows: np.ndarray, origin: np.ndarray | None = None) -> MinimalPerturbation:
        if lin is not None:
            return exact_linear(lin[0], lin[1], rows, space, norm=norm)
        if marg is not None and method == "deepfool":
            return deepfool(marg, rows, space, **options)
        if marg is not None and method == "auto" and norm == "l2":
            res = deepfool(marg, rows, space)
            miss = np.flatnonzero(~res.flipped)
            if len(miss):  # where DeepFool stalls (e.g. against the numeric range): PGD
                sub = pgd_minimal(marg, rows[miss], space, norm="l2", seed=seed, **options)
                res.distance[miss], res.x_adv[miss] = sub.distance, sub.x_adv
                res.queries += sub.queries
                res.method = "deepfool+pgd"
            return res
        if marg is not None:
            return pgd_minimal(marg, rows, space, norm=norm, seed=seed, **options)
        predict = decision_function_of(model, decode=decode)
        if origin is not None:  # rows derived from other records: decode with their origin
            inner = predict

            def predict(Z: np.ndarray, r: np.ndarray | None, _o: np.ndarray = origin) -> np.ndarray:
                return inner(Z, None if r is None else _o[r])

        return boundary_search(predict, rows, space, norm=norm, seed=seed, **options)

    res = run(X)
    if categorical == "fixed" or not space.blocks:
        return res
    # one category change, then the numeric attack; only where it could beat the numeric figure
    cost = space.swap_cost(norm)
    rows, src, blk = space.category_swaps(X)
    keep = res.distance[src] > cost
    rows, src, blk = rows[keep], src[keep], blk[keep]
    if not len(rows):
        return res
    base = _decisions(model, marg, lin, decode, X, np.arange(len(X)))
    swapped = _decisions(model, marg, lin, decode, rows, src)
    flipped_alone = swapped != base[src]
    total = np.full(len(rows), cost)
    x_adv = rows.copy()
    rest = np.flatnonzero(~flipped_alone)
    if len(rest):
        sub = run(rows[rest], src[rest])
        # these swapped rows keep the record's decision, so flipping theirs flips the record's
        valid = sub.flipped
        d = sub.distance
        total[rest] = np.where(valid, np.sqrt(cost**2 + d**2) if norm == "l2" else np.maximum(cost, d), np.inf)
        x_adv[rest] = sub.x_adv
        res.queries += sub.queries
    res.queries += len(rows)
    order = np.lexsort((total, src))
    first = np.r_[True, src[order][1:] != src[order][:-1]]
    for i in order[first]:
        r = src[i]
        if total[i] < res.distance[r]:
            res.distance[r] = total[i]
            res.x_adv[r] = x_adv[i]
            res.category_change[r] = blk[i]
            if res.bound_active is not None:
                res.bound_active[r] = False
    return res


def _decisions(
    model: Any, marg: Any, lin: Any, decode: Any, X: np.ndarray, rows: np.ndarray
) -> np.ndarray:
    if lin is not None:
        return (X.astype(np.float64) @ lin[0] + lin[1] > 0).astype(np.int8)
    if marg is not None:
        return (_signs(marg, X) > 0).astype(np.int8)
    return decision_function_of(model, decode=decode)(X, rows)
