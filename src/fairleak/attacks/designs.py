"""Row designs: which rows each of K reference, shadow or game models trains on.

These are the experimental designs of the attacks (who is IN for which model), as boolean masks
[K, n_rows] over a pool of rows. Whoever trains the models (``fairleak.audit``) reads them.
"""

from __future__ import annotations

import numpy as np

from fairleak.errors import DataValidationError

__all__ = ["pa_alooa_masks", "paired_half_masks", "shadow_masks", "shadow_pair_split"]


def _even(n_models: int) -> None:
    if n_models < 2 or n_models % 2:
        raise DataValidationError(f"n_models must be an even number >= 2; got {n_models}.")


def paired_half_masks(n_rows: int, n_models: int, seed: int = 0) -> np.ndarray:
    """Masks [n_models, n_rows] in complementary pairs of random halves: each row is IN for
    exactly half of the models (n_models even), as in LiRA's and PA-ALOOA's games."""
    _even(n_models)
    rng = np.random.default_rng(seed)
    masks = np.zeros((n_models, n_rows), dtype=bool)
    for k in range(0, n_models, 2):
        half = rng.permutation(n_rows)[: n_rows // 2]
        masks[k, half] = True
        masks[k + 1] = ~masks[k]
    return masks


def shadow_masks(n_population: int, n_members: int, n_models: int, seed: int = 0) -> np.ndarray:
    """Shadow models' membership [n_models, n_population]: complementary halves of a random
    pool of ``2 * n_members`` population rows (all of them if fewer), so that each shadow model
    trains on as many rows as the target did; rows outside the pool are never trained on."""
    size = min(n_population, 2 * n_members)
    pool = np.sort(np.random.default_rng(seed).permutation(n_population)[:size])
    masks = np.zeros((n_models, n_population), dtype=bool)
    masks[:, pool] = paired_half_masks(size, n_models, seed)
    return masks


def pa_alooa_masks(
    n_rows: int, n_models: int, *, seed: int = 0, audit_subset: np.ndarray | None = None
) -> np.ndarray:
    """Membership [R, N] of the PA-ALOOA game: complementary pairs of random halves of the
    audited rows. With ``audit_subset`` (the m-audited-records variant), rows outside it are IN
    for every model and only the subset is halved per pair."""
    _even(n_models)
    rng = np.random.default_rng(seed)
    audited = np.arange(n_rows) if audit_subset is None else np.asarray(audit_subset)
    masks = np.ones((n_models, n_rows), dtype=bool)
    for k in range(0, n_models, 2):
        perm = rng.permutation(audited)
        masks[k, perm[len(perm) // 2 :]] = False
        masks[k + 1, perm[: len(perm) // 2]] = False
    return masks


def shadow_pair_split(
    population: np.ndarray, n_members: int, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Rows a FD-MIA shadow pair trains on and rows it is evaluated against: two disjoint random
    sets of ``n_members`` population rows each (half the population each if it is smaller), so
    the shadow pair trains on as many rows as the target pair."""
    pop = np.random.default_rng(seed).permutation(population)
    half = min(n_members, len(pop) // 2)
    return pop[:half], pop[half : 2 * half]
