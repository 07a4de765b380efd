"""Robustness of an autoencoder per subgroup (the seeds' own setting).

Two seed abstracts (only the abstracts were available) ask how far a small, sample-specific
input perturbation can damage an (variational) autoencoder's reconstruction, whether that damage
differs across demographic subgroups (older women, in their study), and whether the attack
pushes a record's latent code toward another group's. For any torch ``encoder`` / ``decoder``
pair (a VAE's encoder may return ``(mu, logvar)``: the mean is used):

- :func:`attack_autoencoder`: PGD (L2 or L-inf ball of radius ``eps``, mutable coordinates of a
  :class:`~fairleak.robustness.PerturbationSpace` only) maximising the damage
  ``||D(E(x + d)) - D(E(x))||_2``; ``objective="layer_conditioning"`` maximises instead the sum
  over every intermediate layer of ``log ||h_l(x + d) - h_l(x)||`` (encoder and decoder layers
  alike), so that each layer, ill-conditioned intermediate ones included, feeds its own
  gradient to the attack rather than only through the output. This is our reading of the
  layer-conditioning abstract, not its authors' code;
- :func:`minimal_damage_budget`: per record, the smallest budget whose attack reaches a given
  damage (bisection, like :func:`~fairleak.robustness.pgd_minimal`);
- :func:`damage_by_group`: medians per group and intersection with bootstrap intervals and the
  disparity (most damaged group against least);
- :func:`latent_group_shift`: with a group classifier fitted on clean latent codes (the study's
  downstream classifier; fitted by the caller), how many records' codes move to another group.

Written here: ART's and torchattacks' attacks optimise a classifier's loss on labels; none
maximises a reconstruction change through an encoder / decoder pair or reads intermediate layers.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import torch

from fairleak.data import group_views, normalize_sensitive
from fairleak.errors import DataValidationError
from fairleak.robustness.groups import _boot_medians, _ci, _disparity, _finite, _quantile
from fairleak.robustness.space import Norm, PerturbationSpace

__all__ = [
    "AutoencoderAttack",
    "attack_autoencoder",
    "damage_by_group",
    "latent_group_shift",
    "minimal_damage_budget",
]

Objective = Literal["output", "layer_conditioning"]


@dataclass
class AutoencoderAttack:
    """Per record: the perturbed input ``x_adv``, the output ``damage`` ||x̂_adv - x̂||, the
    reconstruction errors ``error_clean`` ||x̂ - x|| and ``error_adv`` ||x̂_adv - x||, the
    latent codes ``z_clean`` / ``z_adv`` and the ``latent_shift`` ||z_adv - z_clean||."""

    x_adv: np.ndarray
    damage: np.ndarray
    error_clean: np.ndarray
    error_adv: np.ndarray
    z_clean: np.ndarray
    z_adv: np.ndarray
    latent_shift: np.ndarray
    eps: float
    norm: Norm
    objective: str


def _code(encoder: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    z = encoder(x)
    if isinstance(z, tuple | list):  # a VAE's (mu, logvar): the mean code
        z = z[0]
    return z


def _leaf_modules(*mods: torch.nn.Module) -> list[torch.nn.Module]:
    out = []
    for m in mods:
        leaves = [c for c in m.modules() if not list(c.children())]
        out += leaves or [m]
    return out


def _objective_fn(encoder: torch.nn.Module, decoder: torch.nn.Module, objective: Objective):
    """f(x, x_ref_outputs) -> per-record objective to maximise, and a way to record references."""
    if objective == "output":

        def f(x: torch.Tensor, ref: list[torch.Tensor]) -> torch.Tensor:
            out = decoder(_code(encoder, x))
            return ((out - ref[-1]) ** 2).sum(1).clamp_min(1e-20).sqrt()

        def refs(x: torch.Tensor) -> list[torch.Tensor]:
            with torch.no_grad():
                return [decoder(_code(encoder, x))]

        return f, refs
    if objective != "layer_conditioning":
        raise DataValidationError(f"objective must be 'output' or 'layer_conditioning'; got {objective!r}.")
    leaves = _leaf_modules(encoder, decoder)
    store: list[torch.Tensor] = []

    def hook(_m: Any, _i: Any, o: Any) -> None:
        store.append(o[0] if isinstance(o, tuple | list) else o)

    def run(x: torch.Tensor) -> list[torch.Tensor]:
        store.clear()
        handles = [m.register_forward_hook(hook) for m in leaves]
        try:
            decoder(_code(encoder, x))
        finally:
            for h in handles:
                h.remove()
        return [s.reshape(len(x), -1) for s in store]

    def f2(x: torch.Tensor, ref: list[torch.Tensor]) -> torch.Tensor:
        hs = run(x)
        total = torch.zeros(len(x), dtype=x.dtype)
        for h, r in zip(hs, ref, strict=True):
            total = total + torch.log(((h - r) ** 2).sum(1) + 1e-12) / 2
        return total

    def refs2(x: torch.Tensor) -> list[torch.Tensor]:
        with torch.no_grad():
            return [h.detach() for h in run(x)]

    return f2, refs2


def _pgd_damage(
    encoder: torch.nn.Module, decoder: torch.nn.Module, X: np.ndarray, eps: np.ndarray,
    space: PerturbationSpace, norm: Norm, steps: int, objective: Objective, seed: int,
) -> np.ndarray:  # fmt: skip
    """PGD maximising the objective within per-record budgets ``eps``; returns x_adv."""
    f, refs = _objective_fn(encoder, decoder, objective)
    x0 = torch.as_tensor(X)
    m = torch.as_tensor(space.mask)
    e = torch.as_tensor(eps, dtype=torch.float32)
    lo = torch.as_tensor(space.lower if space.lower is not None else np.full(space.n_features, -np.inf), dtype=x0.dtype)
    hi = torch.as_tensor(space.upper if space.upper is not None else np.full(space.n_features, np.inf), dtype=x0.dtype)
    gen = torch.Generator().manual_seed(int(seed))
    ref = refs(x0)
    # a small random start: the damage's gradient is zero at d = 0 (a minimum of ||x̂' - x̂||)
    delta = torch.randn(x0.shape, generator=gen) * m
    if norm == "l2":
        delta = delta / delta.norm(dim=1, keepdim=True).clamp_min(1e-12) * (0.1 * e)[:, None]
    else:
        delta = torch.sign(delta) * (0.1 * e)[:, None]
    alpha = 2.5 * e / steps
    for _ in range(steps):
        xa = torch.clamp(x0 + delta, lo, hi).requires_grad_(True)
        (g,) = torch.autograd.grad(f(xa, ref).sum(), xa)
        g = g * m
        if norm == "l2":
            delta = delta + alpha[:, None] * g / g.norm(dim=1, keepdim=True).clamp_min(1e-12)
            n = delta.norm(dim=1).clamp_min(1e-12)
            delta = delta * torch.clamp(e / n, max=1.0)[:, None]
        else:
            delta = delta + alpha[:, None] * torch.sign(g)
            delta = torch.maximum(torch.minimum(delta, e[:, None]), -e[:, None])
        delta = torch.clamp(x0 + delta, lo, hi) - x0
    return (x0 + delta).detach().numpy()


@torch.no_grad()
def _measure(encoder: torch.nn.Module, decoder: torch.nn.Module, X: np.ndarray, Xa: np.ndarray):
    x, xa = torch.as_tensor(X), torch.as_tensor(Xa)
    z, za = _code(encoder, x), _code(encoder, xa)
    r, ra = decoder(z), decoder(za)
    norm = lambda t: t.reshape(len(t), -1).norm(dim=1).double().numpy()  # noqa: E731
    return norm(ra - r), norm(r - x), norm(ra - x), z.numpy(), za.numpy(), norm(za - z)


def attack_autoencoder(
    encoder: torch.nn.Module, decoder: torch.nn.Module, X: np.ndarray, *, eps: float,
    norm: Norm = "l2", steps: int = 30, objective: Objective = "output",
    space: PerturbationSpace | None = None, seed: int = 0,
) -> AutoencoderAttack:  # fmt: skip
    """Sample-specific perturbations of norm at most ``eps`` that maximise the damage to each
    record's reconstruction (PGD, ``steps`` steps of 2.5 eps / steps from a small random start),
    measured as the change of the reconstruction ||x̂_adv - x̂||."""
    X = np.asarray(X, dtype=np.float32)
    space = space or PerturbationSpace.all_numeric(X.shape[1])
    X = space.check(X)
    if not eps > 0:
        raise DataValidationError(f"eps must be > 0; got {eps}.")
    encoder.eval()
    decoder.eval()
    Xa = _pgd_damage(encoder, decoder, X, np.full(len(X), float(eps)), space, norm, steps, objective, seed)
    dmg, e0, e1, z, za, shift = _measure(encoder, decoder, X, Xa)
    return AutoencoderAttack(Xa.astype(np.float32), dmg, e0, e1, z, za, shift, float(eps), norm, objective)


def minimal_damage_budget(
    encoder: torch.nn.Module, decoder: torch.nn.Module, X: np.ndarray, *, damage: float,
    norm: Norm = "l2", steps: int = 20, bisection: int = 8, max_eps: float = 8.0,
    objective: Objective = "output", space: PerturbationSpace | None = None, seed: int = 0,
) -> np.ndarray:  # fmt: skip
    """Per record, the smallest budget at which the attack reaches output damage ``damage``
    (bisection on [0, max_eps]; inf where even ``max_eps`` does not): an upper bound of the
    minimal perturbation, as for the classifiers' flips."""
    X = np.asarray(X, dtype=np.float32)
    space = space or PerturbationSpace.all_numeric(X.shape[1])
    X = space.check(X)
    encoder.eval()
    decoder.eval()
    n = len(X)
    lo, hi = np.zeros(n), np.full(n, float(max_eps))

    def reached(e: np.ndarray) -> np.ndarray:
        Xa = _pgd_damage(encoder, decoder, X, e, space, norm, steps, objective, seed)
        return _measure(encoder, decoder, X, Xa)[0] >= damage

    ok = reached(hi)
    for _ in range(bisection):
        mid = (lo + hi) / 2
        r = reached(mid)
        hi = np.where(ok & r, mid, hi)
        lo = np.where(ok & ~r, mid, lo)
    return np.where(ok, hi, np.inf)


def damage_by_group(
    values: Any, *, sensitive: Any, worse: Literal["high", "low"] = "high", n_bootstrap: int = 200,
    confidence: float = 0.95, min_group_size: int = 30, seed: int = 0,
) -> dict[str, Any]:  # fmt: skip
    """Median of a per-record figure per group and intersection, with bootstrap intervals, and
    the disparity between the worst group (highest damage with ``worse="high"``; lowest budget
    with ``"low"``) and the best: ``ratio`` is always <= 1 (1 = equal), ``worst`` names it."""
    v = np.asarray(values, dtype=np.float64).reshape(-1)
    if np.isnan(v).any():
        raise DataValidationError("values contain NaN.")
    sf = normalize_sensitive(sensitive, n_rows=len(v))
    rng = np.random.default_rng(seed)
    out: dict[str, Any] = {"groups": {}, "disparity": {}, "worse": worse}
    for view, labels in group_views(sf).items():
        lab = np.asarray(labels, dtype=str)
        groups, meds, boots = {}, {}, {}
        for g in sorted(set(lab.tolist())):
            vg = v[lab == g]
            s: dict[str, Any] = {"n": len(vg), "median": _finite(_quantile(vg, 0.5)),
                                 "too_small": len(vg) < min_group_size}  # fmt: skip
            if not s["too_small"]:
                b = _boot_medians(vg, n_bootstrap, rng)
                s["median_ci"] = _ci(b, confidence)
                meds[g], boots[g] = s["median"], b
            groups[g] = s
        out["groups"][view] = groups
        if worse == "high":  # the disparity code calls the smallest worst: invert, ratio <= 1
            inv = {g: (1.0 / m if m else None) for g, m in meds.items()}
            d = _disparity(inv, {g: 1.0 / np.maximum(b, 1e-300) for g, b in boots.items()}, confidence)
            if d is not None:
                d["worst_median"], d["best_median"] = meds[d["worst"]], meds[d["best"]]
                d["difference"] = d["worst_median"] - d["best_median"]
                bw, bb = boots[d["worst"]], boots[d["best"]]
                d["difference_ci"] = _ci(bw - bb, confidence)
        else:
            d = _disparity(meds, boots, confidence)
        out["disparity"][view] = d
    return out


def latent_group_shift(
    group_classifier: Any, z_clean: np.ndarray, z_adv: np.ndarray, groups: Sequence[Any]
) -> dict[str, Any]:
    """Do perturbed records' latent codes move toward another group's? ``group_classifier``:
    fitted on clean codes (``predict_proba``, ``classes_``); ``groups``: each record's group.
    Per group: how many were recognised as their own group before, how many of those are
    assigned another group after, the mean change of the own-group probability, and where
    they went."""
    g = np.asarray(groups).astype(str)
    classes = [str(c) for c in np.asarray(group_classifier.classes_).tolist()]
    if len(g) != len(z_clean) or len(z_adv) != len(z_clean):
        raise DataValidationError("z_clean, z_adv and groups must have one row per record.")
    p0 = np.asarray(group_classifier.predict_proba(z_clean))
    p1 = np.asarray(group_classifier.predict_proba(z_adv))
    pred0 = np.asarray(classes, dtype=object)[p0.argmax(1)]
    pred1 = np.asarray(classes, dtype=object)[p1.argmax(1)]
    out: dict[str, Any] = {}
    for k in sorted(set(g.tolist())):
        sel = g == k
        own = classes.index(k) if k in classes else None
        right = sel & (pred0 == k)
        moved = right & (pred1 != k)
        to = {str(c): int((moved & (pred1 == c)).sum()) for c in classes if c != k}
        out[k] = {
            "n": int(sel.sum()),
            "recognised_clean": int(right.sum()),
            "moved_away": int(moved.sum()),
            "moved_share": float(moved.sum() / right.sum()) if right.any() else None,
            "own_probability_change": None if own is None else float((p1[sel, own] - p0[sel, own]).mean()),
            "moved_to": to,
        }
    return out
