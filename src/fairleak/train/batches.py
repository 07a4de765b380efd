"""Batch schedules of K models at once: shuffled epochs (non-private) and Poisson sampling (DP).

Each model has its own rows and its own generators, seeded from its own seed, so a model's
batches do not depend on which other models it is trained with.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch

__all__ = ["BatchSampler"]


class BatchSampler:
    """Batches of K models, each over its own rows (``rows[k]``: row ids into the data)."""

    def __init__(
        self,
        rows: Sequence[np.ndarray],
        seeds: Sequence[int],
        batch_size: int,
        sampling_seeds: Sequence[int] | None = None,
    ) -> None:
        """``seeds``: per model, for the epochs' batch order; ``sampling_seeds``: per model, for
        Poisson sampling (DP), default the same streams as ``seeds``. A DP release draws them
        from OS entropy (see ``DPConfig.noise``)."""
        self.rows = [np.asarray(r) for r in rows]
        self.rows_t = [torch.from_numpy(r) for r in self.rows]
        self.n_rows = np.array([len(r) for r in self.rows])
        self.K = len(self.rows)
        self.batch_size = batch_size
        own = [np.random.default_rng(s) for s in seeds]
        # batch-order generators, one per model, seeded from that model's own stream
        self.perm_gens = [torch.Generator().manual_seed(int(rng.integers(2**62))) for rng in own]
        self.rngs = own if sampling_seeds is None else [np.random.default_rng(s) for s in sampling_seeds]

    @property
    def steps_per_epoch(self) -> np.ndarray:
        return np.ceil(self.n_rows / self.batch_size).astype(int)

    def epoch(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Shuffled batches of every model for one epoch, step-major so that a step's rows of a
        chunk of models are contiguous: row ids [S, K, B] and a float 0/1 validity mask
        [S, K, B] (models with fewer rows are padded at the end of their schedule).

        Permutations come from torch's ``randperm`` with a generator per model: twice as fast as
        numpy's ``permutation`` here, and drawing 64 of them an epoch was a tenth of the
        non-private step time. (Sorting the rows of each batch to walk memory in order was
        measured: no faster.)
        """
        B = self.batch_size
        S = math.ceil(self.n_rows.max() / B)
        idx = torch.zeros((self.K, S * B), dtype=torch.int64)
        for k, gen in enumerate(self.perm_gens):
            n = int(self.n_rows[k])
            torch.index_select(self.rows_t[k], 0, torch.randperm(n, generator=gen), out=idx[k, :n])
        valid = (torch.arange(S * B) < torch.from_numpy(self.n_rows).view(-1, 1)).float()
        idx = idx.view(self.K, S, B).transpose(0, 1).contiguous()
        valid = valid.view(self.K, S, B).transpose(0, 1).contiguous()
        return idx, valid

    def poisson(
        self, q: np.ndarray, steps: np.ndarray, start: int, n_steps: int
    ) -> tuple[np.ndarray, np.ndarray]:
        """Poisson-sampled batches of steps ``start .. start + n_steps - 1`` for every model:
        idx [T, K, M], valid [T, K, M] (views of model-major arrays); at each of its steps every
        row of model k joins independently with probability q_k.

        Why not a Bernoulli draw per row and step: that is n_k uniforms per model and step. The
        gaps between successes of a Bernoulli(q) sequence are iid Geometric(q), so the
        inclusions of a whole block of steps (rows laid end to end, step after step) come from
        about n_k q_k draws per step: the same distribution, a few numpy calls per model.
        Each model's draws land in its own contiguous [T, M] block, and validity follows from
        the batch sizes (slot < size), so no strided scatter is needed.
        """
        picks = []
        counts = np.zeros((self.K, n_steps), dtype=np.int64)
        for k, rng in enumerate(self.rngs):
            n = int(self.n_rows[k])
            t_k = int(min(n_steps, steps[k] - start))
            if t_k <= 0:
                picks.append(None)
                continue
            L = t_k * n
            if q[k] >= 1.0:
                pos = np.arange(L)
            else:
                chunks, end = [], -1
                while end < L - 1:
                    m = int(L * q[k] + 6 * math.sqrt(L * q[k]) + 16)
                    c = end + np.cumsum(rng.geometric(q[k], size=m))
                    chunks.append(c)
                    end = int(c[-1])
                pos = np.concatenate(chunks)
                pos = pos[pos < L]
            st = pos // n
            counts[k] = np.bincount(st, minlength=n_steps)
            picks.append((st, self.rows[k][pos - st * n]))
        M = max(1, int(counts.max()))
        idx = np.zeros((self.K, n_steps, M), dtype=np.int64)
        for k, pick in enumerate(picks):
            if pick is None:
                continue
            st, rows = pick
            first = np.cumsum(counts[k]) - counts[k]
            slot = np.arange(len(st)) - first[st]  # steps are sorted: position within the step
            idx[k].reshape(-1)[st * M + slot] = rows
        valid = np.arange(M) < counts[:, :, None]
        return idx.transpose(1, 0, 2), valid.transpose(1, 0, 2)
