"""Batch schedules of K models at once: shuffled epochs (non-private) and Poisson sampling (DP).

Each model has its own rows and its own generators, seeded from its own seed, so a model's
batches do not depend on which other models it is trained with.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from fairleak.train import native

__all__ = ["BatchSampler", "PoissonBlock"]


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
        sampling = seeds if sampling_seeds is None else sampling_seeds
        self.rngs = (
            own if sampling_seeds is None else [np.random.default_rng(s) for s in sampling_seeds]
        )
        self._sampling = [int(s) for s in sampling]
        self.keys: np.ndarray | None = None  # the compiled sampler's, set up at the first block

    def _native_setup(self) -> bool:
        """One 64-bit key per model from its sampling seed (the compiled sampler's)."""
        if self.keys is None and native.available():
            self.keys = np.array(
                [np.random.SeedSequence(s).generate_state(1, np.uint64)[0] for s in self._sampling],
                dtype=np.uint64,
            )
            self.rows = [np.ascontiguousarray(r, dtype=np.int64) for r in self.rows]
        return self.keys is not None

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

    def poisson(self, q: np.ndarray, steps: np.ndarray, start: int, n_steps: int) -> PoissonBlock:
        """Poisson-sampled batches of steps ``start .. start + n_steps - 1`` for every model: at
        each of its steps every row of model k joins independently with probability q_k (a
        model whose schedule has ended draws nothing).

        Why not a Bernoulli draw per row and step: that is n_k uniforms per model and step. The
        gaps between successes of a Bernoulli(q) sequence are iid Geometric(q), so the
        inclusions of a whole block of steps (rows laid end to end, step after step) come from
        about n_k q_k draws per step. Where the compiled kernels build, the gaps come from a
        counter-based generator (Philox under the model's key, the block's first step in the
        counter; see native.py) and the layout is written in C, threaded over models (measured
        ~5x faster than the numpy version, which was a tenth of a DP step); otherwise numpy's
        geometric draws from each model's own generator: the same distribution, another stream.
        """
        t_left = np.clip(np.asarray(steps) - start, 0, n_steps).astype(np.int64)
        q = np.asarray(q, dtype=np.float64)
        compiled = self._native_setup()
        if compiled:
            pos, npos, counts = native.poisson_positions(
                self.keys, self.n_rows, t_left, q, start, n_steps
            )
        else:
            pos, npos, counts = self._numpy_positions(q, t_left, n_steps)
        widths = np.maximum(counts.max(0), 1)  # each step padded to its largest batch only
        offsets = np.concatenate([[0], np.cumsum(self.K * widths)])
        idx = np.zeros(int(offsets[-1]), dtype=np.int64)
        valid = np.zeros(int(offsets[-1]), dtype=np.float32)
        if compiled:
            native.poisson_scatter(pos, npos, self.n_rows, self.rows, offsets, widths, idx, valid)
        else:
            for k in range(self.K):
                p = pos[k, : npos[k]]
                n = int(self.n_rows[k])
                st = p // n
                first = np.cumsum(counts[k]) - counts[k]
                o = offsets[st] + k * widths[st] + np.arange(len(p)) - first[st]
                idx[o] = self.rows[k][p - st * n]
                valid[o] = 1.0
        return PoissonBlock(torch.from_numpy(idx), torch.from_numpy(valid), offsets, widths, self.K)

    def _numpy_positions(
        self, q: np.ndarray, t_left: np.ndarray, n_steps: int
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Inclusion positions (step * n_k + row) and per-step counts from numpy's generators."""
        picks = []
        counts = np.zeros((self.K, n_steps), dtype=np.int64)
        for k, rng in enumerate(self.rngs):
            n = int(self.n_rows[k])
            L = int(t_left[k]) * n
            if L <= 0:
                picks.append(np.zeros(0, dtype=np.int64))
                continue
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
            counts[k] = np.bincount(pos // n, minlength=n_steps)
            picks.append(pos)
        npos = np.array([len(p) for p in picks], dtype=np.int64)
        out = np.zeros((self.K, max(1, int(npos.max()))), dtype=np.int64)
        for k, p in enumerate(picks):
            out[k, : len(p)] = p
        return out, npos, counts


@dataclass(frozen=True)
class PoissonBlock:
    """Poisson batches of a block of steps, step-major with a width per step (its largest
    batch): step t's row ids are ``idx[offsets[t] : offsets[t] + K * widths[t]]`` viewed as
    [K, widths[t]], each model's batch first, then padding (row 0, validity 0)."""

    idx: torch.Tensor  # int64, flat
    valid: torch.Tensor  # float32 0/1, flat
    offsets: np.ndarray
    widths: np.ndarray
    K: int

    def step(self, t: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Row ids and validity of step t, [K, widths[t]] each (contiguous views)."""
        a, w = int(self.offsets[t]), int(self.widths[t])
        return self.idx[a : a + self.K * w].view(self.K, w), self.valid[a : a + self.K * w].view(
            self.K, w
        )

    def dense(self) -> tuple[np.ndarray, np.ndarray]:
        """Every step padded to the block's largest batch: idx [T, K, M], bool valid [T, K, M]."""
        T, M = len(self.widths), int(self.widths.max())
        idx = np.zeros((T, self.K, M), dtype=np.int64)
        valid = np.zeros((T, self.K, M), dtype=bool)
        for t in range(T):
            i, v = self.step(t)
            idx[t, :, : i.shape[1]] = i.numpy()
            valid[t, :, : i.shape[1]] = v.numpy() > 0
        return idx, valid
